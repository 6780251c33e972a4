"""SynthMOSI: shape, determinism, speed, and the correctness of its Bayes-optimal oracle."""

from __future__ import annotations

import dataclasses
import hashlib
import time

import numpy as np
import pytest
from scipy.special import logsumexp, ndtr, ndtri

from mmim_lite.data import SPLITS, Sample
from mmim_lite.synth import (
    ADJ_PHRASES,
    ADJ_TEMPLATES,
    NARRATION,
    VERB_PHRASES,
    label_atoms,
    label_starvation,
    make_synthmosi,
    modality_mutual_information,
    text_bucket,
)


@pytest.fixture(scope="module")
def mosi():
    return make_synthmosi(seed=0)


def _mae(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - truth)))


def test_mosi_sizes_speakers_and_shapes(mosi):
    assert [len(mosi.splits[s]) for s in SPLITS] == [1284, 229, 686]
    videos = {s: {x.id.rsplit("_", 1)[0] for x in mosi.splits[s]} for s in SPLITS}
    assert [len(videos[s]) for s in SPLITS] == [52, 10, 31]
    assert not (
        videos["train"] & videos["valid"]
        or videos["train"] & videos["test"]
        or videos["valid"] & videos["test"]
    )
    assert any(
        "_" in v for vs in videos.values() for v in vs
    )  # ids exercise the last-underscore rule
    for s in SPLITS:
        assert len({x.id for x in mosi.splits[s]}) == len(mosi.splits[s])
        for x in mosi.splits[s]:
            assert (
                isinstance(x, Sample)
                and x.visual.dtype == np.float32
                and x.acoustic.dtype == np.float32
            )
            assert x.visual.shape[1] == 20 and x.acoustic.shape[1] == 5
            assert 10 <= len(x.visual) <= 50 and 10 <= len(x.acoustic) <= 50
            assert np.isfinite(x.visual).all() and np.isfinite(x.acoustic).all()
        assert np.array_equal([x.label for x in mosi.splits[s]], mosi.latent[s])


def test_labels_mosi_like(mosi):
    y = np.concatenate([mosi.latent[s] for s in SPLITS])
    assert y.min() >= -3 and y.max() <= 3 and 0.04 < np.mean(y == 0) < 0.12
    assert 0.3 < np.mean(y < 0) < 0.6
    lattice = np.isclose(y * 3, np.round(y * 3), atol=1e-5) | np.isclose(
        y * 5, np.round(y * 5), atol=1e-5
    )
    assert lattice.all()
    assert np.array_equal(y, y.astype(np.float32))  # float32 files store them exactly
    atoms = label_atoms()
    assert len(atoms) == 43 and abs(mosi.params.prior.sum() - 1) < 1e-12
    assert mosi.params.prior[atoms == 0][0] == pytest.approx(mosi.params.p_zero)


def test_deterministic_and_seed_dependent():
    a, b, c = (make_synthmosi(60, 20, 30, seed=s) for s in (7, 7, 8))
    for s in SPLITS:
        for x, y in zip(a.splits[s], b.splits[s]):
            assert (x.text, x.id, x.label) == (y.text, y.id, y.label)
            assert np.array_equal(x.visual, y.visual) and np.array_equal(x.acoustic, y.acoustic)
        assert np.array_equal(a.oracle(s), b.oracle(s))
    assert [x.text for x in a.splits["train"]] != [x.text for x in c.splits["train"]]


def test_mosi_size_generated_within_two_seconds():
    start = (
        time.process_time()
    )  # CPU time of this (single-threaded) process: robust to a busy machine
    make_synthmosi(seed=1)
    assert time.process_time() - start <= 2.0


def test_configurable_real_sizes():
    d = make_synthmosi(
        4,
        2,
        2,
        seed=0,
        visual_dim=35,
        acoustic_dim=74,
        visual_frames=(400, 500),
        acoustic_frames=(300, 375),
    )
    x = d.splits["train"][0]
    assert x.visual.shape[1] == 35 and 400 <= len(x.visual) <= 500
    assert x.acoustic.shape[1] == 74 and 300 <= len(x.acoustic) <= 375
    with pytest.raises(ValueError):
        make_synthmosi(visual_frames=(0, 5))
    with pytest.raises(ValueError):
        make_synthmosi(irony_rate=1.5)
    with pytest.raises(ValueError, match="n_speakers"):
        make_synthmosi(n_speakers=(52, 10))


def test_number_of_speakers_is_a_knob():
    d = make_synthmosi(400, 40, 60, seed=0, n_speakers=(200, 4, 30))
    speakers = {s: {x.id.rsplit("_", 1)[0] for x in d.splits[s]} for s in SPLITS}
    assert [len(speakers[s]) for s in SPLITS] == [200, 4, 30]


def test_text_bucket_is_observable_from_text(mosi):
    for s in SPLITS:
        assert np.array_equal([text_bucket(x.text) for x in mosi.splits[s]], mosi.bucket[s])
    for line in NARRATION:
        assert text_bucket(line) == 0
    for lexicon in (ADJ_PHRASES, VERB_PHRASES):
        for bucket, phrases in lexicon.items():
            for p in phrases:
                text = ADJ_TEMPLATES[0].format(p) if lexicon is ADJ_PHRASES else p
                assert text_bucket(f"um {NARRATION[0]} so {text} and {NARRATION[-1]}") == bucket
    assert text_bucket("it was not bad") == 1 and text_bucket("it was bad") == -2
    assert text_bucket("incredibly boring") == -3 and text_bucket("i liked it") == 2


def test_oracle_headline_numbers(mosi):
    y = mosi.latent["test"]
    mean_mae = _mae(np.full_like(y, mosi.latent["train"].mean()), y)
    tri = _mae(mosi.oracle("test"), y)
    assert tri <= 0.6 * mean_mae
    for mods in [("t",), ("v",), ("a",), ("t", "v"), ("t", "a"), ("v", "a")]:
        assert _mae(mosi.oracle("test", mods), y) >= tri
    ironic = mosi.ironic["test"]
    assert 30 < ironic.sum() < 110
    err_t = np.abs(mosi.oracle("test", ("t",)) - y)
    assert err_t[ironic].mean() > 2.5 * err_t[~ironic].mean()
    err_tva = np.abs(mosi.oracle("test") - y)
    assert (
        err_tva[ironic].mean() < 0.75 * err_t[ironic].mean()
    )  # face and voice partly rescue ironic clips


def test_oracle_sees_only_observed_data(mosi):
    before = mosi.oracle("valid")
    saved = (mosi.latent["valid"], mosi.ironic["valid"], mosi.bucket["valid"])
    try:
        mosi.latent["valid"] = np.zeros_like(saved[0])
        mosi.ironic["valid"] = ~saved[1]
        mosi.bucket["valid"] = -saved[2]
        assert np.array_equal(mosi.oracle("valid"), before)
    finally:
        mosi.latent["valid"], mosi.ironic["valid"], mosi.bucket["valid"] = saved
    prior_only = mosi.oracle("valid", ())
    assert len(set(prior_only)) == 1
    with pytest.raises(ValueError):
        mosi.oracle("valid", ("x",))
    with pytest.raises(ValueError):
        mosi.oracle("nope")


def test_frame_likelihood_matches_numerical_integration(mosi):
    """Closed form (offset integrated analytically) vs quadrature over the offset."""
    ch = mosi.params.visual
    x = mosi.splits["test"][5].visual.astype(np.float64)
    atoms = mosi.params.atoms
    grid = np.linspace(-8, 8, 1601)[:, None] * ch.speaker_sd  # offset grid per channel
    dx = grid[1] - grid[0]
    brute = np.zeros(len(atoms))
    for k, a in enumerate(atoms):
        mu = ch.f(np.array([a]))[0] + grid  # (G, d)
        ll_frames = -0.5 * (((x[None] - mu[:, None]) / ch.frame_sd) ** 2).sum(1)  # (G, d)
        ll_prior = -0.5 * (grid / ch.speaker_sd) ** 2 - np.log(ch.speaker_sd * np.sqrt(2 * np.pi))
        brute[k] = (logsumexp(ll_frames + ll_prior, axis=0) + np.log(dx)).sum()
    closed = mosi.log_likelihood("test", "v")[5]
    np.testing.assert_allclose(closed - closed.max(), brute - brute.max(), atol=1e-6)


def test_text_likelihood_matches_simulation(mosi):
    p, rng = mosi.params, np.random.default_rng(11)
    ll = mosi.log_likelihood("test", "t")
    for i in (0, 3, 8):
        b = text_bucket(mosi.splits["test"][i].text)
        for k in (5, 21, 35):
            s = p.atoms[k]
            e = np.where(rng.random(200_000) < p.irony_rate, -s, s)
            sim = np.clip(np.floor(e + p.text_noise * rng.standard_normal(e.shape) + 0.5), -3, 3)
            assert np.exp(ll[i, k]) == pytest.approx(np.mean(sim == b), abs=4e-3)


def test_posterior_is_calibrated_and_median_beats_mean():
    big = make_synthmosi(10, 10, 8000, seed=5, n_speakers=(5, 5, 2000))
    y = big.latent["test"]
    post = big.posterior("test")
    p_pos = post[:, big.params.atoms > 0].sum(1)
    bins = np.digitize(p_pos, np.linspace(0, 1, 6)[1:-1])
    for b in range(5):
        sel = bins == b
        assert sel.sum() > 300
        assert abs(np.mean(y[sel] > 0) - p_pos[sel].mean()) < 0.05
    median, mean = big.oracle("test"), post @ big.params.atoms
    assert _mae(median, y) < _mae(mean, y)
    # The check can fail: an oracle that forgets the speaker offset is overconfident.
    big.params.visual.speaker_sd = big.params.visual.speaker_sd * 1e-3
    big.params.acoustic.speaker_sd = big.params.acoustic.speaker_sd * 1e-3
    wrong = big.posterior("test")[:, big.params.atoms > 0].sum(1)
    sel = wrong > 0.95
    assert np.mean(y[sel] > 0) < wrong[sel].mean() - 0.05


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _within(a: tuple[float, float], b: tuple[float, float], z: float = 4.0) -> bool:
    """Two (estimate, standard error) pairs agree within z combined standard errors."""
    return abs(a[0] - b[0]) <= z * np.hypot(a[1], b[1]) + 1e-9


def test_modality_mi_closed_forms():
    """Limits with known values, in nats: a face without signal shares nothing with the text and
    only the frame count with the voice; noise-free face, voice and words (irony half the time)
    give I(text; face) = H(B) - H(B | S) and I(face; voice) = H(S) + I(L_v; L_a)."""
    r = modality_mutual_information(make_synthmosi(1, 1, 1, seed=3, visual_signal=0.0), n=4000)
    assert abs(r["tv"][0]) < 1e-9 and r["ta"][0] > 0.02
    assert r["va"][0] == pytest.approx(np.log(41), abs=1e-9)  # 41 counts, the same for both

    d = make_synthmosi(
        1,
        1,
        1,
        seed=3,
        irony_rate=0.5,
        text_noise=1e-4,
        visual_signal=1e3,
        acoustic_signal=1e3,
        speaker_sd=0.0,
        acoustic_frames=(5, 12),
    )
    r = modality_mutual_information(d, n=4000)
    atoms, prior = d.params.atoms, d.params.prior
    said = np.clip(np.floor(atoms + 0.5), -3, 3), np.clip(np.floor(-atoms + 0.5), -3, 3)
    p_b = sum(0.5 * np.bincount((b + 3).astype(int), weights=prior, minlength=7) for b in said)
    h_b_given_s = np.log(2) * prior[said[0] != said[1]].sum()  # a coin between two buckets
    assert _within(r["tv"], (_entropy(p_b) - h_b_given_s, 0.0)) and r["tv"][1] < 0.01
    assert _within(r["ta"], (_entropy(p_b) - h_b_given_s, 0.0))
    u = (np.arange(41 * 8 * 100) + 0.5) / (41 * 8 * 100)  # both counts from one uniform quantile
    counts = np.stack([10 + np.floor(u * 41), 5 + np.floor(u * 8)], 1)
    _, joint = np.unique(counts, axis=0, return_counts=True)
    h_lv = _entropy(np.bincount(counts[:, 0].astype(int)) / len(u))
    i_l = h_lv + np.log(8) - _entropy(joint / len(u))  # I(L_v; L_a) = H(L_v) + H(L_a) - H(L_v, L_a)
    assert _within(r["va"], (_entropy(prior) + i_l, 0.0))

    r = modality_mutual_information(make_synthmosi(1, 1, 1, seed=3, text_noise=1e3), n=2000)
    assert abs(r["tv"][0]) < 1e-4 and abs(r["ta"][0]) < 1e-4


@pytest.mark.parametrize("kappa", [0.0, 1.5])
def test_modality_mi_matches_the_generated_clips(kappa):
    """Against clips of make_synthmosi (one speaker each: a new speaker per clip), a different
    Monte Carlo: the mean over clips of log p(x, y) / (p(x) p(y)) with the realised texts, the
    oracle's likelihoods of each modality and of the pair (the nuisance u integrated out there in
    closed form too), and the realised frame counts' empirical joint."""
    d = make_synthmosi(
        1,
        1,
        20_000,
        seed=4,
        n_speakers=(1, 1, 20_000),
        visual_signal=0.75,
        acoustic_signal=0.6,
        acoustic_frames=(5, 12),
        nuisance=kappa,
    )
    r = modality_mutual_information(d, n=20_000, seed=1)
    log_prior = np.log(d.params.prior)
    ll = {m: d.log_likelihood("test", m) + log_prior for m in ("t", "v", "a", "tv", "ta", "va")}
    lengths = np.array([[len(x.visual), len(x.acoustic)] for x in d.splits["test"]])
    _, cell, joint = np.unique(lengths, axis=0, return_inverse=True, return_counts=True)
    marginals = [np.bincount(c)[c] for c in lengths.T]
    pmi_l = np.log(joint[cell.ravel()] * len(lengths) / (marginals[0] * marginals[1]))
    for q, extra in (("tv", 0), ("ta", 0), ("va", pmi_l)):
        pmi = (
            logsumexp(ll[q], axis=1)
            - logsumexp(ll[q[0]], axis=1)
            - logsumexp(ll[q[1]], axis=1)
            + extra
        )
        assert _within(r[q], (pmi.mean(), pmi.std() / np.sqrt(len(pmi)))), (q, r[q], pmi.mean())
    if kappa:  # the shared latent adds to what every pair shares
        kw = dict(seed=4, visual_signal=0.75, acoustic_signal=0.6, acoustic_frames=(5, 12))
        plain = modality_mutual_information(make_synthmosi(1, 1, 1, **kw), n=20_000)
        assert all(r[q][0] > plain[q][0] + 0.05 for q in r)


def test_modality_mi_of_a_splits_known_speakers():
    """Speakers far apart are named by face and by voice alike: then face and voice share the
    speaker's entropy plus what they share with its offsets known (speaker_sd 0, new speakers),
    and the text shares with the face what it shares with offsets known."""
    d = make_synthmosi(
        300,
        1,
        1,
        seed=6,
        n_speakers=(6, 1, 1),
        speaker_sd=40.0,
        visual_signal=0.75,
        acoustic_signal=0.6,
    )
    split = modality_mutual_information(d, n=6000, seed=2, split="train")
    v, a = (
        dataclasses.replace(ch, speaker_sd=0 * ch.speaker_sd)
        for ch in (d.params.visual, d.params.acoustic)
    )
    known = dataclasses.replace(d.params, visual=v, acoustic=a)
    fresh = modality_mutual_information(known, n=6000, seed=3)
    h_speaker = _entropy(np.bincount(d.speaker["train"]) / 300)
    assert _within(split["va"], (fresh["va"][0] + h_speaker, fresh["va"][1]))
    assert _within(split["tv"], fresh["tv"]) and _within(split["ta"], fresh["ta"])
    assert modality_mutual_information(d, n=6000, seed=2)["va"][0] < split["va"][0] - 1.0
    with pytest.raises(ValueError, match="split"):
        modality_mutual_information(d.params, split="train")
    with pytest.raises(ValueError, match="pairs"):
        modality_mutual_information(d, pairs=("tt",))


def test_modality_mi_symmetric_nonnegative_and_monotone():
    base = make_synthmosi(1, 1, 1, seed=8)
    r = modality_mutual_information(base, pairs=("tv", "vt", "ta", "va", "av"), n=5000)
    assert r["tv"] == r["vt"] and r["va"] == r["av"]
    swapped = dataclasses.replace(
        base.params, visual=base.params.acoustic, acoustic=base.params.visual
    )
    s = modality_mutual_information(swapped, n=5000, seed=5)
    assert _within(s["tv"], r["ta"]) and _within(s["ta"], r["tv"]) and _within(s["va"], r["va"])
    by_signal = [
        modality_mutual_information(make_synthmosi(1, 1, 1, seed=8, visual_signal=v), n=5000)
        for v in (0.1, 0.3, 0.9)
    ]
    by_noise = [
        modality_mutual_information(
            make_synthmosi(1, 1, 1, seed=8, text_noise=z), pairs=("tv",), n=5000
        )["tv"]
        for z in (0.3, 0.7, 2.0)
    ]
    for q in ("tv", "va"):
        values = [x[q][0] for x in by_signal]
        assert all(x[q][0] >= -3 * x[q][1] for x in by_signal) and values == sorted(values)
    assert [x[0] for x in by_noise] == sorted((x[0] for x in by_noise), reverse=True)
    assert by_noise[-1][0] > 0
    assert by_signal[0]["ta"] == pytest.approx(by_signal[-1]["ta"])  # the face's signal only


# ----------------------------------------------------------------------------- generator knobs
def _digest(d) -> str:
    h = hashlib.sha256()
    for s in SPLITS:
        for x in d.splits[s]:
            h.update(f"{x.id}|{x.text}|{x.label}".encode())
            h.update(x.visual.tobytes() + x.acoustic.tobytes())
        h.update(d.oracle(s).tobytes())
    return h.hexdigest()


def test_knobs_at_their_defaults_give_the_same_clips_and_oracle(mosi):
    """The clips and oracle of seed 0 as they were before the knobs existed, bit for bit."""
    before = "23b0d9f54e7451d03d87f5a4317e3bd487bf160536a7a1da630380854deead10"
    assert _digest(mosi) == before
    same = make_synthmosi(seed=0, nuisance=0.0, share_speaker=True, share_frame_count=True)
    assert _digest(same) == before
    for bad in (
        {"nuisance": -1.0},
        {"nuisance": float("nan")},
        {"share_speaker": "no"},
        {"share_frame_count": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            make_synthmosi(4, 2, 2, **bad)


def _unplace(text: str) -> str:
    """A text with each narration sentence named by its place within its half of NARRATION."""
    for i, line in enumerate(NARRATION):
        text = text.replace(line, f"<{i % 7}>")
    return text


def test_nuisance_enters_text_face_and_voice():
    """Against kappa = 0 with the same seed: the frames move by exactly u g, the texts keep their
    bucket and words but take their narration from the half the coin Phi(kappa u) picks."""
    base, d = (make_synthmosi(300, 10, 10, seed=2, nuisance=k) for k in (0.0, 1.5))
    u = d.nuisance["train"]
    assert np.array_equal(u, base.nuisance["train"]) and abs(u.std() - 1) < 0.15
    for m, ch in (("visual", d.params.visual), ("acoustic", d.params.acoustic)):
        white = ch.nuisance / ch.frame_sd  # kappa frame-noise SDs along a unit direction
        assert np.linalg.norm(white) == pytest.approx(1.5) and not np.any(
            base.params.visual.nuisance
        )
        for i, (x, y) in enumerate(zip(d.splits["train"], base.splits["train"])):
            np.testing.assert_allclose(
                getattr(x, m) - getattr(y, m),
                np.broadcast_to(u[i] * ch.nuisance, getattr(x, m).shape),
                atol=1e-5,
            )
    half = {line: i // 7 for i, line in enumerate(NARRATION)}
    sides, moved = [], 0
    for x, y, ui in zip(d.splits["train"], base.splits["train"], u):
        assert text_bucket(x.text) == text_bucket(y.text)
        used = [line for line in NARRATION if line in x.text]
        assert len({half[line] for line in used}) <= 1
        if used:
            sides.append((half[used[0]], ui))
        moved += x.text != y.text
        assert _unplace(x.text) == _unplace(y.text)
    c, ui = np.array(sides).T
    assert 150 < len(c) < 280 and moved > 50
    assert np.mean(c == (ui > 0)) > 0.75  # P(c = 1 | u) = Phi(1.5 u)


def test_sharing_switches_draw_the_voice_apart():
    kw = dict(n_train=400, n_valid=10, n_test=10, seed=3, speaker_sd=20.0)
    base = make_synthmosi(**kw)
    d = make_synthmosi(**kw, share_speaker=False, share_frame_count=False)
    spk, voice = d.speaker["train"], d.voice_speaker["train"]
    assert np.array_equal(spk, base.speaker["train"]) and np.array_equal(
        base.voice_speaker["train"], spk
    )
    assert np.mean(spk == voice) < 0.2
    means = np.stack([x.acoustic.mean(0) for x in d.splits["train"]])
    nearest = np.argmin(((means[:, None] - d.offsets["train"]["a"][None]) ** 2).sum(2), axis=1)
    assert np.mean(nearest == voice) > 0.95  # the voice follows its own speaker
    lengths = np.array([[len(x.visual), len(x.acoustic)] for x in d.splits["train"]])
    assert np.mean(lengths[:, 0] == lengths[:, 1]) < 0.1 and abs(np.corrcoef(lengths.T)[0, 1]) < 0.2
    for x, y in zip(d.splits["train"], base.splits["train"]):  # the text and face as before
        assert x.text == y.text and np.array_equal(x.visual, y.visual)


def _ignorant(d):
    """The same data read by an oracle that knows nothing of the nuisance."""
    v, a = (
        dataclasses.replace(ch, nuisance=0 * ch.nuisance)
        for ch in (d.params.visual, d.params.acoustic)
    )
    d.params = dataclasses.replace(d.params, nuisance=0.0, visual=v, acoustic=a)
    return d


def test_oracle_with_nuisance_beats_the_nuisance_ignorant_posterior():
    kw = dict(n_train=10, n_valid=10, n_test=6000, seed=5, n_speakers=(5, 5, 1500), nuisance=1.5)
    d, ignorant = make_synthmosi(**kw), _ignorant(make_synthmosi(**kw))
    y = d.latent["test"]
    assert _mae(d.oracle("test"), y) < _mae(ignorant.oracle("test"), y) - 0.005
    for mods in ("tv", "va", "v", "t"):  # the MAE-optimal median of each subset, too
        assert _mae(d.oracle("test", mods), y) <= _mae(ignorant.oracle("test", mods), y) + 1e-3


def test_oracle_with_nuisance_matches_numerical_integration():
    """The closed-form integral over u against an average over 20,000 stratified draws of
    u ~ N(0, 1) (its quantiles at (i + 1/2) / 20,000; the text's p(b | s), tested against
    simulation above, from the oracle's text likelihood). Without the narration's term for u
    some posteriors move by 0.006-0.033."""
    d = make_synthmosi(
        1,
        1,
        8,
        seed=9,
        nuisance=2.0,
        visual_frames=(1, 2),
        acoustic_frames=(1, 2),
        visual_signal=0.75,
        acoustic_signal=0.6,
    )
    p = d.params
    u = ndtri((np.arange(20_000) + 0.5) / 20_000)
    post, p_b = (
        d.posterior("test"),
        np.exp(d.log_likelihood("test", "t")),
    )  # p(b | s) / 2: no frames
    for i, x in enumerate(d.splits["test"]):
        side = next((j // 7 for j, line in enumerate(NARRATION) if line in x.text), -1)
        ll = np.log(p.prior)[:, None] + np.zeros((1, len(u)))
        for ch, frames in ((p.visual, x.visual), (p.acoustic, x.acoustic)):
            var = ch.speaker_sd**2 + ch.frame_sd**2 / len(frames)
            mu = ch.f(p.atoms)[:, None, :] + u[None, :, None] * ch.nuisance
            ll += -0.5 * (((frames.mean(0) - mu) ** 2) / var).sum(2)
        if side >= 0:
            ll += np.log(ndtr(p.nuisance * u if side else -p.nuisance * u))
        mc = np.exp(logsumexp(ll, axis=1)) * p_b[i]
        np.testing.assert_allclose(post[i], mc / mc.sum(), atol=2e-3)


def test_modality_mi_with_the_knobs():
    """No frame count shared: I(face; voice) of signal-free frames is 0 (log 41 when shared); no
    speaker shared: a split's far-apart speakers add nothing between face and voice; kappa > 0 is
    refused naming the option."""
    flat = dict(n_train=1, n_valid=1, n_test=1, seed=3, visual_signal=0.0, acoustic_signal=0.0)
    r = modality_mutual_information(make_synthmosi(**flat, share_frame_count=False), n=2000)
    assert abs(r["va"][0]) < 1e-9
    d = make_synthmosi(
        300,
        1,
        1,
        seed=6,
        n_speakers=(6, 1, 1),
        speaker_sd=40.0,
        share_speaker=False,
        share_frame_count=False,
        visual_signal=0.75,
        acoustic_signal=0.6,
    )
    split = modality_mutual_information(d, n=6000, seed=2, split="train")
    v, a = (
        dataclasses.replace(ch, speaker_sd=0 * ch.speaker_sd)
        for ch in (d.params.visual, d.params.acoustic)
    )
    known = dataclasses.replace(d.params, visual=v, acoustic=a)
    fresh = modality_mutual_information(known, n=6000, seed=3)
    assert all(_within(split[q], fresh[q]) for q in ("tv", "ta", "va")), (split, fresh)
    with pytest.raises(ValueError, match="share_speaker with nuisance"):
        modality_mutual_information(
            make_synthmosi(20, 1, 1, nuisance=0.5, share_speaker=False), split="train"
        )


def test_label_starvation_where_the_answer_is_known():
    """Frames without signal: R^2 about 0 with any number of labels; a noise-free face: ridge on its
    frame means reaches the oracle's R^2 (1) with 64 labels as with all."""
    none = label_starvation(
        make_synthmosi(seed=0, visual_signal=0.0, acoustic_signal=0.0), modalities="va"
    )
    assert set(none) == {"64", "all", "oracle"} and all(abs(v) < 0.03 for v in none.values())
    clean = label_starvation(
        make_synthmosi(seed=0, visual_signal=30.0, speaker_sd=0.0), modalities="v"
    )
    assert clean["oracle"] == pytest.approx(1.0, abs=1e-6)
    assert clean["64"] > clean["oracle"] - 0.01 and clean["all"] > clean["oracle"] - 0.01
    r = label_starvation(make_synthmosi(seed=0), (16, 64, None))
    assert r["16"] < r["all"] < r["oracle"]  # the default data is label-starved
    with pytest.raises(ValueError, match="n_labels"):
        label_starvation(make_synthmosi(seed=0), (5000,))
