"""SynthMOSI: shape, determinism, speed, and the correctness of its Bayes-optimal oracle."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.special import logsumexp

from mmim_lite.data import SPLITS, Sample
from mmim_lite.synth import ADJ_PHRASES, ADJ_TEMPLATES, NARRATION, VERB_PHRASES, label_atoms, make_synthmosi, text_bucket


@pytest.fixture(scope="module")
def mosi():
    return make_synthmosi(seed=0)


def _mae(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - truth)))


def test_mosi_sizes_speakers_and_shapes(mosi):
    assert [len(mosi.splits[s]) for s in SPLITS] == [1284, 229, 686]
    videos = {s: {x.id.rsplit("_", 1)[0] for x in mosi.splits[s]} for s in SPLITS}
    assert [len(videos[s]) for s in SPLITS] == [52, 10, 31]
    assert not (videos["train"] & videos["valid"] or videos["train"] & videos["test"] or videos["valid"] & videos["test"])
    assert any("_" in v for vs in videos.values() for v in vs)  # ids exercise the last-underscore rule
    for s in SPLITS:
        assert len({x.id for x in mosi.splits[s]}) == len(mosi.splits[s])
        for x in mosi.splits[s]:
            assert isinstance(x, Sample) and x.visual.dtype == np.float32 and x.acoustic.dtype == np.float32
            assert x.visual.shape[1] == 20 and x.acoustic.shape[1] == 5
            assert 10 <= len(x.visual) <= 50 and 10 <= len(x.acoustic) <= 50
            assert np.isfinite(x.visual).all() and np.isfinite(x.acoustic).all()
        assert np.array_equal([x.label for x in mosi.splits[s]], mosi.latent[s])


def test_labels_mosi_like(mosi):
    y = np.concatenate([mosi.latent[s] for s in SPLITS])
    assert y.min() >= -3 and y.max() <= 3 and 0.04 < np.mean(y == 0) < 0.12
    assert 0.3 < np.mean(y < 0) < 0.6
    lattice = np.isclose(y * 3, np.round(y * 3), atol=1e-5) | np.isclose(y * 5, np.round(y * 5), atol=1e-5)
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
    start = time.process_time()  # CPU time of this (single-threaded) process: robust to a busy machine
    make_synthmosi(seed=1)
    assert time.process_time() - start <= 2.0


def test_configurable_real_sizes():
    d = make_synthmosi(4, 2, 2, seed=0, visual_dim=35, acoustic_dim=74, visual_frames=(400, 500),
                       acoustic_frames=(300, 375))
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
    assert err_tva[ironic].mean() < 0.75 * err_t[ironic].mean()  # face and voice partly rescue ironic clips


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
