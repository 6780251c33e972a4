"""Tests of mmim_lite.config and mmim_lite.model (shapes, equations, ablation switches)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from mmim_lite import bounds
from mmim_lite.config import ConfigError, MMIMConfig, ModelConfig
from mmim_lite.model import MMIM, SequenceEncoder
from mmim_lite.text import TextEncoderError, resolve_text_encoder

V_DIM, A_DIM = 5, 7


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return resolve_text_encoder("tiny")


def make_batch(tokenizer, n: int = 12, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    texts = [
        ("a wonderful film" if i % 2 else "dull and boring") + f" number {i}" for i in range(n)
    ]
    tok = tokenizer(
        texts, padding="max_length", truncation=True, max_length=16, return_tensors="pt"
    )
    return dict(
        input_ids=tok["input_ids"],
        attention_mask=tok["attention_mask"],
        token_type_ids=tok["token_type_ids"],
        visual=torch.randn(n, 9, V_DIM, generator=g),
        visual_lengths=torch.randint(1, 10, (n,), generator=g),
        acoustic=torch.randn(n, 6, A_DIM, generator=g),
        acoustic_lengths=torch.randint(1, 7, (n,), generator=g),
        labels=torch.linspace(-3, 3, n),
        index=torch.arange(n),
    )


def make_model(tiny, seed: int = 0, **overrides) -> MMIM:
    torch.manual_seed(seed)
    cfg = MMIMConfig.preset("mosi", text_encoder="tiny", **overrides)
    return MMIM(cfg, V_DIM, A_DIM, text_encoder=tiny)


# ----------------------------------------------------------------------------- config
def test_presets_are_table3():
    mosi, mosei = MMIMConfig.preset("mosi"), MMIMConfig.preset("mosei")
    table3 = {  # item: (MOSI, MOSEI)
        "batch_size": (32, 64),
        "lr_lld": (5e-3, 1e-3),
        "lr_main": (1e-3, 5e-4),
        "alpha": (0.3, 0.1),
        "beta": (0.1, 0.05),
        "visual_hidden": (32, 64),
        "acoustic_hidden": (32, 16),
        "memory_size": (1, 1),
        "clip": (5.0, 5.0),
    }
    for key, (a, b) in table3.items():
        assert getattr(mosi, key) == a and getattr(mosei, key) == b, key
    for cfg in (mosi, mosei):
        assert (cfg.lr_bert, cfg.fusion_dim, cfg.weight_decay, cfg.lr_factor) == (
            5e-5,
            128,
            1e-4,
            0.5,
        )
        assert cfg.text_encoder == "bert-base-uncased" and not cfg.freeze_text
        assert (
            cfg.ba_pairs == ("tv", "ta")
            and cfg.cpc_terms == ("t", "v", "a")
            and cfg.entropy_mode == "gmm"
        )
    synth = MMIMConfig.preset("synthmosi")
    assert synth.text_encoder == "minilm" and synth.freeze_text and synth.cache_text_features
    # the fine-tuned SynthMOSI preset: the same run, with the text encoder trained at the paper's
    # BERT rate
    ft = MMIMConfig.preset("synthmosi-ft")
    differ = {k for k, v in ft.to_dict().items() if synth.to_dict()[k] != v}
    assert differ == {"freeze_text", "cache_text_features", "preset_name"} and not ft.freeze_text
    assert ft.lr_bert == 5e-5 and ft.text_encoder == "minilm"


def test_overrides_and_json_roundtrip():
    cfg = MMIMConfig.preset("mosei").replace(
        alpha=0.05,
        ba_pairs=["tv", "ta", "va"],
        cpc_terms=(),
        memory_size=0,
        freeze_text=True,
        predictor_hidden=None,
        entropy_mode="gaussian",
        epochs=3,
    )
    assert cfg.alpha == 0.05 and cfg.ba_pairs == ("tv", "ta", "va") and cfg.cpc_terms == ()
    assert cfg.memory_size == 0 and cfg.freeze_text is True and cfg.epochs == 3
    assert cfg.predictor_hidden is None and cfg.entropy_mode == "gaussian"
    assert cfg.batch_size == 64  # untouched fields keep the preset's value
    assert MMIMConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    "overrides, words",
    [
        (dict(ba_pairs=("tx",)), "tx"),
        (dict(cpc_terms=("t", "z")), "'z'"),
        (dict(ba_pairs=("tv", "tv")), "distinct"),
        (dict(cache_text_features=True), "freeze_text"),
        (dict(memory_size=-1), "memory_size"),
        (dict(entropy_mode="kde"), "entropy_mode"),
        (dict(batch_size=0), "batch_size"),
        (dict(alpha="much"), "alpha"),
        (dict(freeze_text="maybe"), "freeze_text.*bool"),
        (dict(nonsense=1), "nonsense"),
        (dict(dropout=1.0), "dropout"),
        (dict(lr_main=0), "lr_main"),
        (dict(epochs=2.5), "epochs.*int"),
        (dict(ba_pairs="tv,ta"), "ba_pairs"),
        (dict(stage1_fraction=0), "stage1_fraction"),
        (dict(modalities=("v",)), "modalities.*ba_pairs"),
        (dict(modalities=()), "modalities"),
        (dict(modalities=("t", "v"), ba_pairs=("tv",)), "modalities.*cpc_terms"),
        (dict(labeled_fraction=0.0), "labeled_fraction"),
        (dict(labeled_fraction=1.5), "labeled_fraction"),
        (dict(xmodal_pairs=("tx",)), "xmodal_pairs"),
        (dict(xmodal_dim=0), "xmodal_dim"),
        (dict(xmodal_temperature=0), "xmodal_temperature"),
        (dict(entropy_projection="relu"), "entropy_projection"),
        (
            dict(modalities=("t", "v"), ba_pairs=("tv",), cpc_terms=(), xmodal_pairs=("ta",)),
            "modalities.*xmodal",
        ),
    ],
)
def test_bad_config_raises(overrides, words):
    with pytest.raises(ConfigError, match=words):
        MMIMConfig.preset("mosi").replace(**overrides)


def test_unknown_preset_and_encoder():
    with pytest.raises(ConfigError, match="mosi"):
        MMIMConfig.preset("cmu")
    with pytest.raises(TextEncoderError, match="unknown text encoder"):
        resolve_text_encoder("roberta-nonexistent-xyz")


def test_bert_base_offline_suggests_minilm(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        resolve_text_encoder("bert-base-uncased")
    except TextEncoderError as err:
        assert "minilm" in str(err)
    else:
        pytest.skip("bert-base-uncased is in this machine's Hugging Face cache")


# ----------------------------------------------------------------------------- encoders
def test_local_folder_and_cls_is_h_t(tiny, tmp_path):
    torch.manual_seed(1)
    model, tokenizer = tiny
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, tok2 = resolve_text_encoder(str(tmp_path))
    batch = make_batch(tok2)
    mmim = MMIM(
        MMIMConfig(text_encoder=str(tmp_path)), V_DIM, A_DIM, text_encoder=(loaded, tok2)
    ).eval()
    ref = model.eval()(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        token_type_ids=batch["token_type_ids"],
    ).last_hidden_state[:, 0]
    torch.testing.assert_close(mmim.encode_text(batch), ref)  # Eq. 2: [CLS] of the last layer


def test_sequence_encoder_uses_each_sample_last_real_frame():
    torch.manual_seed(0)
    enc = SequenceEncoder(4, 8, 3)
    x, lengths = torch.randn(5, 7, 4), torch.tensor([7, 1, 3, 5, 2])
    out = enc(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        _, (h, _) = enc.lstm(x[i : i + 1, :n])  # the unpadded sequence alone
        torch.testing.assert_close(out[i], enc.proj(h[-1, 0]))
    x2 = x.clone()
    x2[1, 1:] = 99.0  # padding content must not matter
    torch.testing.assert_close(enc(x2, lengths), out)
    assert (
        enc.in_dim == 4 and SequenceEncoder(6, 8, 3, mean=True).in_dim == 6
    )  # read from the layers
    with pytest.raises(ValueError, match=r"\(B, L, 4\)"):
        enc(torch.randn(5, 7, 6), lengths)


def test_mean_frame_encoder_averages_each_sample_real_frames(tiny):
    """frame_encoder 'mean': Linear of the mean of the real frames (padding ignored); the model uses
    it for v and a."""
    torch.manual_seed(0)
    enc = SequenceEncoder(4, 8, 3, mean=True)
    assert enc.lstm is None
    x, lengths = torch.randn(5, 7, 4), torch.tensor([7, 1, 3, 5, 2])
    out = enc(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[i], enc.proj(x[i, :n].mean(0)))
    x2 = x.clone()
    x2[1, 1:] = 99.0  # padding content must not matter
    torch.testing.assert_close(enc(x2, lengths), out)
    model = make_model(tiny, frame_encoder="mean")
    assert model.visual_enc.lstm is None and model.acoustic_enc.lstm is None
    assert (
        model.visual_enc.proj.in_features == V_DIM and model.acoustic_enc.proj.in_features == A_DIM
    )
    with pytest.raises(ConfigError, match="frame_encoder"):
        MMIMConfig(frame_encoder="gru")


# ----------------------------------------------------------------------------- forward
def test_forward_structure_and_shapes(tiny):
    model = make_model(tiny, ba_pairs=("tv", "ta", "va")).eval()
    batch = make_batch(tiny[1])
    out = model(batch)
    n = 12
    assert out.pred.shape == (n,) and out.z.shape == (n, 128)
    assert out.h_t.shape == (n, 32) and out.h_v.shape == (n, 16) and out.h_a.shape == (n, 16)
    assert set(out.log_q) == set(out.entropy) == {"tv", "ta", "va"}
    assert all(v.shape == (n,) for v in out.log_q.values())
    assert all(v.shape == () for v in out.entropy.values())
    assert set(out.cpc_loss) == set(out.cpc_scores) == {"t", "v", "a"}
    for m in "tva":
        s = out.cpc_scores[m]
        assert s.shape == (n,) and bool(((s >= math.exp(-1) - 1e-6) & (s <= math.e + 1e-6)).all())
    assert set(model.memories) == {"v", "a"}  # one memory per BA target
    torch.testing.assert_close(model.predict(batch), out.pred)
    assert all(len(m) == 0 for m in model.memories.values())  # only update_memory=True pushes


def test_forward_without_labels_skips_only_the_entropies(tiny):
    model = make_model(tiny, ba_pairs=("tv", "ta")).eval()
    batch = make_batch(tiny[1])
    full = model(batch)
    unlabelled = {k: v for k, v in batch.items() if k != "labels"}
    out = model(unlabelled)
    assert out.entropy == {} and set(out.log_q) == {"tv", "ta"}
    torch.testing.assert_close(out.pred, full.pred)
    for m in "tva":
        torch.testing.assert_close(out.cpc_scores[m], full.cpc_scores[m])
    with pytest.raises(ValueError, match="labels"):
        model(unlabelled, update_memory=True)


def test_model_config_alone_builds_the_model(tiny):
    """MMIM needs only a ModelConfig (no training fields): forward and losses on a tiny batch."""
    torch.manual_seed(0)
    model = MMIM(ModelConfig(text_encoder="tiny"), V_DIM, A_DIM, text_encoder=tiny).eval()
    batch = make_batch(tiny[1], n=6)
    out = model(batch, update_memory=True)
    terms = model.losses(out, batch["labels"])
    assert (
        out.pred.shape == (6,)
        and set(out.log_q) == {"tv", "ta"}
        and set(out.cpc_loss) == {"t", "v", "a"}
    )
    assert torch.isfinite(terms["main"]) and {len(m) for m in model.memories.values()} == {1}
    assert torch.isfinite(model.lld_loss(out.h_t, out.h_v, out.h_a))


def test_losses_follow_eq_9_and_14(tiny):
    model = make_model(tiny).eval()
    batch, batch2 = make_batch(tiny[1]), make_batch(tiny[1], seed=1)
    model(batch, update_memory=True)  # fills the 1-batch memory with batch's h_v, h_a
    h_prev = {
        "v": model.visual_enc(batch["visual"], batch["visual_lengths"]).detach(),
        "a": model.acoustic_enc(batch["acoustic"], batch["acoustic_lengths"]).detach(),
    }
    out = model(batch2)
    y = batch2["labels"]
    terms = model.losses(out, y)
    # independent recomputation: entropy on batch2 + memory (= batch 1), Eq. 5-8
    for p in ("tv", "ta"):
        mem = bounds.HistoryMemory(1)
        mem.push(h_prev[p[1]], batch["labels"])
        h_y = out.h_v if p[1] == "v" else out.h_a
        torch.testing.assert_close(out.entropy[p], bounds.polarity_entropy(h_y, y, memory=mem))
        mu, logvar = model.predictors[p](out.h_t)  # soft floor at q_min_logvar = -2 applied
        assert model.predictors[p].min_logvar == -2.0 and (logvar >= -2.0).all()
        lq = (-0.5 * ((h_y - mu) ** 2 / logvar.exp() + logvar + math.log(2 * math.pi))).sum(-1)
        torch.testing.assert_close(out.log_q[p], lq)
    ba = -sum(out.log_q[p].mean() + out.entropy[p] for p in ("tv", "ta"))
    cpc = sum(out.cpc_loss.values())
    task = (out.pred - y).abs().mean()
    torch.testing.assert_close(terms["ba"], ba)
    torch.testing.assert_close(terms["main"], task + 0.3 * cpc + 0.1 * ba)


def test_unbounded_q_is_the_predictor_density(tiny):
    model = make_model(tiny, q_min_logvar=None).eval()
    out = model(make_batch(tiny[1]))
    torch.testing.assert_close(out.log_q["tv"], model.predictors["tv"].log_prob(out.h_t, out.h_v))


def test_ba_gradient_reaches_both_encoders(tiny):
    model = make_model(tiny).train()
    out = model(make_batch(tiny[1]))
    loss = model.losses(out, make_batch(tiny[1])["labels"])["ba"]
    loss.backward()
    for enc in (model.text_model, model.visual_enc, model.acoustic_enc):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


@pytest.mark.parametrize(
    "overrides, removed",
    [
        (dict(ba_pairs=("tv",)), {"ba_ta"}),
        (dict(ba_pairs=("ta",)), {"ba_tv"}),
        (dict(ba_pairs=()), {"ba_tv", "ba_ta"}),
        (dict(cpc_terms=("v", "a")), {"cpc_t"}),
        (dict(cpc_terms=("t", "a")), {"cpc_v"}),
        (dict(cpc_terms=("t", "v")), {"cpc_a"}),
        (dict(cpc_terms=()), {"cpc_t", "cpc_v", "cpc_a"}),
    ],
)
def test_each_ablation_removes_exactly_its_term(tiny, overrides, removed):
    full = make_model(tiny).eval()
    ablated = make_model(tiny, **overrides).eval()
    missing, unexpected = ablated.load_state_dict(full.state_dict(), strict=False)
    assert not missing and unexpected  # ablated = full minus the removed heads' parameters
    batch = make_batch(tiny[1])
    t_full = full.losses(full(batch), batch["labels"])
    t_abl = ablated.losses(ablated(batch), batch["labels"])
    assert set(t_full) - set(t_abl) == removed
    weight = {"cpc": 0.3, "ba": -0.1}  # L_BA = -sum I_BA
    drop = sum(weight[k.split("_")[0]] * t_full[k] for k in removed)
    torch.testing.assert_close(t_abl["main"], t_full["main"] - drop)
    for k in t_abl:
        if k not in ("main", "cpc", "ba"):
            torch.testing.assert_close(t_abl[k], t_full[k])


def test_memory_and_gmm_switches(tiny):
    batch, batch2 = make_batch(tiny[1]), make_batch(tiny[1], seed=3)
    with_mem = make_model(tiny).eval()
    no_mem = make_model(tiny, memory_size=0).eval()
    single = make_model(tiny, entropy_mode="gaussian").eval()
    for m in (with_mem, no_mem, single):
        m(batch, update_memory=True)
    out_mem, out_none, out_single = with_mem(batch2), no_mem(batch2), single(batch2)
    y = batch2["labels"]
    # w/o history: the entropy uses the current batch only
    torch.testing.assert_close(out_none.entropy["tv"], bounds.polarity_entropy(out_none.h_v, y))
    assert not torch.allclose(out_mem.entropy["tv"], out_none.entropy["tv"])
    # w/o GMM: one Gaussian over all samples (batch + memory)
    mem = single.memories["v"]
    torch.testing.assert_close(
        out_single.entropy["tv"],
        bounds.polarity_entropy(out_single.h_v, y, memory=mem, mode="gaussian"),
    )
    for k in ("task", "cpc"):  # the other terms are untouched
        torch.testing.assert_close(with_mem.losses(out_mem, y)[k], no_mem.losses(out_none, y)[k])


def test_frozen_text_and_parameter_groups(tiny):
    torch.manual_seed(0)
    own = resolve_text_encoder("tiny")  # freezing mutates the encoder: do not share the fixture's
    model = make_model(own, freeze_text=True, cache_text_features=True).train()
    assert not model.text_model.training and model.fusion.training
    assert model.text_parameters() == []
    main, pred = model.main_parameters(), model.predictor_parameters()
    ids = {id(p) for p in main}
    assert pred and not ids & {id(p) for p in pred}
    assert not ids & {id(p) for p in model.text_model.parameters()}
    trainable = make_model(tiny)
    n_all = sum(1 for _ in trainable.parameters())
    assert (
        len(trainable.main_parameters())
        + len(trainable.text_parameters())
        + len(trainable.predictor_parameters())
        == n_all
    )


def test_memory_state_roundtrip_weights_only(tiny, tmp_path):
    model = make_model(tiny)
    model(make_batch(tiny[1]), update_memory=True)
    torch.save(model.memory_state_dict(), tmp_path / "mem.pt")
    other = make_model(tiny)
    other.load_memory_state_dict(torch.load(tmp_path / "mem.pt", weights_only=True))
    for m in ("v", "a"):
        a, b = model.memories[m].read(), other.memories[m].read()
        assert all(torch.equal(a[c], b[c]) for c in (0, 1)) and len(other.memories[m]) == 1


def test_bad_dims_raise(tiny):
    with pytest.raises(ValueError, match="visual_dim"):
        MMIM(MMIMConfig(text_encoder="tiny"), 0, A_DIM, text_encoder=tiny)
    model = make_model(tiny)
    batch = make_batch(tiny[1])
    batch["visual"] = batch["visual"][..., :3]
    with pytest.raises(ValueError, match="sequence batch"):
        model(batch)


# ----------------------------------------------------------------------------- gradient paths
# Each MI term must move exactly the representations the paper says it moves, through every path.
# The property checked: perturb one representation, h_m + delta * D (D a fixed random (B, d)
# direction), and compare the autograd derivative of a loss w.r.t. delta with its central finite
# difference. A ``detach`` anywhere on a path zeroes that path's autograd contribution but not the
# finite difference. h_t is perturbed through the cached-feature input, h_v / h_a by a forward
# hook on their encoder. 48 clips and 4-d h_v / h_a keep every class covariance well conditioned.
def _wiring_model(tiny, **overrides) -> MMIM:
    model = make_model(tiny, visual_out=4, acoustic_out=4, **overrides).eval()  # eval: no dropout
    with (
        torch.no_grad()
    ):  # a q whose mean depends clearly on h_x (at initialisation it barely does)
        for q in model.predictors.values():
            q.mu[-1].weight.mul_(5.0)
    return model


def _derivatives(
    model: MMIM, batch: dict, m: str, loss_of, direction: torch.Tensor | int = 0, eps: float = 1e-3
) -> tuple[float, float]:
    """(autograd, central finite difference) derivative of ``loss_of(model(batch))`` w.r.t. delta
    in ``h_m + delta * direction`` (an int: a random direction with that seed); the model's
    memories are not updated."""
    with torch.no_grad():
        h_t = model.encode_text(batch)
    if isinstance(direction, int):
        dim = h_t.shape[1] if m == "t" else model.dims[m]
        direction = torch.randn(
            len(batch["labels"]), dim, generator=torch.Generator().manual_seed(direction)
        )
    delta = torch.zeros((), requires_grad=True)

    def value(d: torch.Tensor) -> torch.Tensor:
        shift = lambda module, inputs, out: out + d * direction  # noqa: E731
        encoder = {"v": model.visual_enc, "a": model.acoustic_enc}.get(m)
        handle = encoder.register_forward_hook(shift) if encoder is not None else None
        try:
            return loss_of(model(batch, h_t=h_t + d * direction if m == "t" else h_t))
        finally:
            if handle is not None:
                handle.remove()

    loss = value(delta)
    (auto,) = torch.autograd.grad(loss, delta, allow_unused=True) if loss.requires_grad else (None,)
    with torch.no_grad():
        fd = (value(torch.tensor(eps)) - value(torch.tensor(-eps))) / (2 * eps)
    return (0.0 if auto is None else float(auto)), float(fd)


def _assert_same(auto: float, fd: float, what) -> None:
    assert abs(fd) > 0.01, (what, fd)  # a real dependence, far above float32 round-off (~3e-4)
    assert auto == pytest.approx(fd, rel=0.05), (what, auto, fd)


def test_log_q_moves_both_h_x_and_h_y(tiny):
    """Eq. 4 inside L_BA: -mean log q(h_y | h_x) depends on h_x (q's input) and on h_y (the point
    where the density is evaluated); both carry gradient, the third modality none."""
    model = _wiring_model(tiny)
    batch = make_batch(tiny[1], n=48)
    for pair in ("tv", "ta"):
        loss_of = lambda out: -out.log_q[pair].mean()  # noqa: E731
        for m in pair:  # x side, then y side
            _assert_same(*_derivatives(model, batch, m, loss_of, ord(m)), (pair, m))
        other = "a" if pair == "tv" else "v"
        assert _derivatives(model, batch, other, loss_of) == (0.0, 0.0)


def test_entropy_moves_only_h_y(tiny):
    """Eq. 5-8: H(h_y) depends on h_y only (the stored memory batch and the labels are
    constants)."""
    model = _wiring_model(tiny)
    model(make_batch(tiny[1], n=48, seed=5), update_memory=True)  # a stored batch: read, not moved
    batch = make_batch(tiny[1], n=48)
    for pair in ("tv", "ta"):
        loss_of = lambda out: out.entropy[pair]  # noqa: E731
        _assert_same(*_derivatives(model, batch, pair[1], loss_of, 3), pair)
        for m in "tva".replace(pair[1], ""):
            assert _derivatives(model, batch, m, loss_of) == (0.0, 0.0), (pair, m)


def test_ba_term_keeps_both_parts_of_eq_3(tiny):
    """I_BA = E[log q] + H(Y) as the trainer differentiates it (``losses()["ba_<xy>"]``), each part
    isolated by a direction that leaves the other (nearly) unchanged:

    * shifting each polarity class of h_y by a constant leaves its covariances, hence H(Y)
      (Eq. 5-8), exactly unchanged (memory empty here): the whole derivative is log q's;
    * scaling h_y, h_y * (1 + delta), moves H(Y) by d nats per unit delta and log q much less.
    """
    model = _wiring_model(tiny)
    batch = make_batch(tiny[1], n=48)
    positive = (batch["labels"] >= 0).unsqueeze(1)
    g = torch.Generator().manual_seed(0)
    for pair in ("tv", "ta"):
        y = pair[1]
        encoder = model.visual_enc if y == "v" else model.acoustic_enc
        with torch.no_grad():
            h_y = encoder(
                batch["visual" if y == "v" else "acoustic"],
                batch[f"{'visual' if y == 'v' else 'acoustic'}_lengths"],
            )
        shift = torch.where(
            positive,
            torch.randn(1, model.dims[y], generator=g),
            torch.randn(1, model.dims[y], generator=g),
        )
        ba = lambda out: out.log_q[pair].mean() + out.entropy[pair]  # noqa: E731
        traced = lambda out: model.losses(out, batch["labels"])[f"ba_{pair}"]  # noqa: E731
        assert _derivatives(model, batch, y, lambda out: out.entropy[pair], shift)[
            1
        ] == pytest.approx(0.0, abs=1e-3)
        for direction in (shift, h_y):
            auto, fd = _derivatives(model, batch, y, traced, direction)
            _assert_same(auto, fd, (pair, "shift" if direction is shift else "scale"))
            assert fd == pytest.approx(_derivatives(model, batch, y, ba, direction)[1], abs=1e-3)
        log_q_part = _derivatives(model, batch, y, lambda out: out.log_q[pair].mean(), h_y)[1]
        assert abs(log_q_part) < 0.2 * abs(fd)  # along the scaling, H(Y) is most of the derivative
        _assert_same(*_derivatives(model, batch, pair[0], traced, 1), (pair, "x"))  # h_x: q's input


def test_main_loss_gradient_matches_finite_differences(tiny):
    """L_main (Eq. 14), the stage-2 loss: the autograd derivative w.r.t. each of h_t, h_v, h_a
    equals the finite difference (no path through task, CPC or BA terms is cut)."""
    model = _wiring_model(tiny)
    model(make_batch(tiny[1], n=48, seed=5), update_memory=True)
    batch = make_batch(tiny[1], n=48)
    loss_of = lambda out: model.losses(out, batch["labels"])["main"]  # noqa: E731
    for m in "tva":
        _assert_same(*_derivatives(model, batch, m, loss_of, 1), m)
    assert len(model.memories["v"]) == 1  # the checks above never pushed


def test_memory_is_read_before_the_batch_is_pushed(tiny):
    """Algorithm 1: H(Y) of batch k uses batch k plus the batches *before* it; batch k enters the
    memory only afterwards (with memory 1, the estimate of batch 2 pools batches 1 and 2)."""
    model = _wiring_model(tiny)
    batches = [make_batch(tiny[1], n=48, seed=s) for s in (11, 12, 13)]
    h_v = [model.visual_enc(b["visual"], b["visual_lengths"]).detach() for b in batches]
    outs = [model(b, update_memory=True) for b in batches]
    torch.testing.assert_close(
        outs[0].entropy["tv"], bounds.polarity_entropy(h_v[0], batches[0]["labels"])
    )
    for k in (1, 2):
        previous = bounds.HistoryMemory(1)
        previous.push(h_v[k - 1], batches[k - 1]["labels"])
        want = bounds.polarity_entropy(h_v[k], batches[k]["labels"], memory=previous)
        torch.testing.assert_close(outs[k].entropy["tv"], want)
        assert not torch.allclose(want, bounds.polarity_entropy(h_v[k], batches[k]["labels"]))
    torch.testing.assert_close(model.memories["v"].read()[1], h_v[2][batches[2]["labels"] >= 0])


# ----------------------------------------------------------------------------- study options (issue
# 11)
def _scaled_visual(model: MMIM, c: float) -> MMIM:
    """The same model with h_v multiplied by c (the visual encoder's last Linear scaled)."""
    with torch.no_grad():
        model.visual_enc.proj.weight.mul_(c)
        model.visual_enc.proj.bias.mul_(c)
    return model


@pytest.mark.parametrize("c", [0.25, 0.5, 4.0, 8.0])
def test_standardised_ba_term_is_scale_invariant_and_the_floored_one_is_not(tiny, c):
    """Scaling h_v by c leaves I_BA(t; v) unchanged with ba_standardize; with the plain targets and
    the log-variance floor it changes (H(Y) moves by d log c, log q is capped by the floor): the
    defect the option removes."""
    batch = make_batch(tiny[1], n=24)
    ba = {}
    for standardize in (True, False):
        for scale in (1.0, c):
            model = _scaled_visual(
                make_model(tiny, ba_pairs=("tv",), ba_standardize=standardize).eval(), scale
            )
            ba[standardize, scale] = model.losses(model(batch), batch["labels"])["ba_tv"].item()
    assert ba[True, c] == pytest.approx(ba[True, 1.0], rel=1e-4, abs=1e-4)
    assert abs(ba[False, c] - ba[False, 1.0]) > 0.5


def test_standardised_targets_reach_log_q_entropy_and_memory(tiny):
    model = make_model(tiny, ba_pairs=("tv",), ba_standardize=True).eval()
    batch = make_batch(tiny[1], n=24)
    out = model(batch, update_memory=True)
    y = bounds.standardize(out.h_v)
    assert torch.allclose(y.mean(0), torch.zeros(y.shape[1]), atol=1e-5)
    assert torch.allclose(y.std(0, unbiased=False), torch.ones(y.shape[1]), atol=1e-3)
    assert torch.allclose(out.log_q["tv"], model.predictors["tv"].log_prob(out.h_t, y), atol=1e-5)
    assert torch.allclose(out.entropy["tv"], bounds.polarity_entropy(y, batch["labels"]), atol=1e-5)
    stored = model.memories["v"].read()
    assert torch.allclose(
        torch.cat([stored[0], stored[1]]).std(0, unbiased=False), torch.ones(y.shape[1]), atol=1e-3
    )


def test_unlabelled_clips_skip_the_task_loss_and_take_the_predicted_polarity(tiny):
    model = make_model(tiny).eval()
    batch = make_batch(tiny[1], n=24)
    unknown = torch.arange(24) % 3 == 0
    with torch.no_grad():  # centre the predictions: unlabelled clips of both predicted polarities
        model.fusion.head.bias -= model.predict(batch).median()
    hidden = {**batch, "labels": torch.where(unknown, torch.nan, batch["labels"])}
    out = model(hidden)
    signs = (out.pred[unknown] >= 0).tolist()
    assert any(signs) and not all(signs) and signs != (batch["labels"][unknown] >= 0).tolist()
    terms = model.losses(out, hidden["labels"])
    mae_known = (out.pred - batch["labels"])[~unknown].abs().mean()
    assert terms["task"].item() == pytest.approx(mae_known.item(), rel=1e-6)
    filled = torch.where(unknown, out.pred.detach(), batch["labels"])
    for m in ("v", "a"):
        assert torch.allclose(
            out.entropy["t" + m], bounds.polarity_entropy(out.h_v if m == "v" else out.h_a, filled)
        )
    none_known = model.losses(out, torch.full_like(batch["labels"], torch.nan))
    assert none_known["task"].item() == 0.0 and math.isfinite(none_known["main"].item())


@pytest.mark.parametrize("keep", ["t", "v", "a"])
def test_a_unimodal_model_sees_only_its_modality(tiny, keep):
    model = make_model(tiny, modalities=(keep,), ba_pairs=(), cpc_terms=()).eval()
    assert model.fusion.fc1.in_features == model.dims[keep]
    batch, other = make_batch(tiny[1], seed=0), make_batch(tiny[1], seed=1)
    other = {
        **other,
        "input_ids": batch["input_ids"].flip(0),
        "attention_mask": batch["attention_mask"].flip(0),
        "token_type_ids": batch["token_type_ids"].flip(0),
    }
    mixed = {
        k: (
            batch
            if k.startswith(
                {"t": ("input", "attention", "token"), "v": ("visual",), "a": ("acoustic",)}[keep]
            )
            else other
        )[k]
        for k in batch
    }
    assert torch.equal(model.predict(mixed), model.predict(batch))
    assert not torch.equal(model.predict(other), model.predict(batch))


# ------------------------------------------------------------------ objectives beyond the paper
def _clip_loss_by_hand(a: np.ndarray, b: np.ndarray, tau: float) -> float:
    """CLIP's symmetric InfoNCE in numpy: S = cos(a_i, b_j) / tau, (CE(S, I) + CE(S^T, I)) / 2."""
    a, b = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (a, b))
    s = a @ b.T / tau
    ce = lambda m: np.mean(np.log(np.exp(m).sum(1)) - np.diag(m))  # noqa: E731
    return float((ce(s) + ce(s.T)) / 2)


def test_cross_modal_infonce_is_clips_loss_of_two_projections(tiny):
    """Not in the paper: per pair xy, CLIP's loss of W_x h_x + b_x and W_y h_y + b_y (own heads), by
    hand; traced as xmodal_<xy> and their sum xmodal, weight * xmodal added to main; no label
    read."""
    kw = dict(xmodal_pairs=("tv", "va"), xmodal_dim=8, xmodal_temperature=0.2, xmodal_weight=0.3)
    model, plain = make_model(tiny, **kw).eval(), make_model(tiny).eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    batch = make_batch(tiny[1])
    out = model(batch)
    terms, base = model.losses(out, batch["labels"]), plain.losses(plain(batch), batch["labels"])
    h = {"t": out.h_t, "v": out.h_v, "a": out.h_a}
    arr = lambda t: t.detach().double().numpy()  # noqa: E731
    for p, heads in model.xmodal_heads.items():
        proj = [arr(h[m]) @ arr(f.weight).T + arr(f.bias) for m, f in zip(p, heads)]
        assert proj[0].shape == proj[1].shape == (12, 8)
        want = _clip_loss_by_hand(*proj, 0.2)
        assert terms[f"xmodal_{p}"].item() == pytest.approx(want, rel=1e-5)
    assert set(terms) - set(base) == {"xmodal_tv", "xmodal_va", "xmodal"}
    torch.testing.assert_close(terms["xmodal"], terms["xmodal_tv"] + terms["xmodal_va"])
    torch.testing.assert_close(terms["main"], base["main"] + 0.3 * terms["xmodal"])
    for k in base.keys() - {"main"}:
        assert torch.equal(terms[k], base[k]), k
    unlabelled = (
        {k: v for k, v in batch.items() if k != "labels"},
        {**batch, "labels": torch.full((12,), torch.nan)},
    )
    for b in unlabelled:  # every clip counts, labelled or not (as in the CPC terms)
        again = model(b).xmodal_loss
        assert all(torch.equal(again[p], out.xmodal_loss[p]) for p in kw["xmodal_pairs"])


@pytest.mark.parametrize("pair", ["tv", "va"])
def test_cross_modal_gradient_reaches_both_encoders_and_only_them(tiny, pair):
    model = make_model(tiny, xmodal_pairs=(pair,)).train()
    batch = make_batch(tiny[1])
    model.zero_grad(set_to_none=True)  # the text encoder is shared with other tests
    model.losses(model(batch), batch["labels"])[f"xmodal_{pair}"].backward()
    for m, enc in {"t": model.text_model, "v": model.visual_enc, "a": model.acoustic_enc}.items():
        moved = any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
        assert moved == (m in pair), m
    assert all(p.grad.abs().sum() > 0 for p in model.xmodal_heads[pair].parameters())


def test_objectives_beyond_the_paper_are_off_by_default(tiny):
    """The defaults add no parameter and no loss term; their other settings, while off, change
    nothing."""
    assert MMIMConfig().xmodal_pairs == () and MMIMConfig().entropy_projection == "none"
    default = make_model(tiny).eval()
    idle = make_model(
        tiny, xmodal_weight=0.7, xmodal_dim=8, xmodal_temperature=0.3, entropy_projection_dim=3
    ).eval()
    names = [n for n, _ in default.named_parameters()]
    assert not [n for n in names if n.startswith(("xmodal", "entropy_proj"))]
    sd, sd_idle = default.state_dict(), idle.state_dict()
    assert sd.keys() == sd_idle.keys() and all(torch.equal(sd[k], sd_idle[k]) for k in sd)
    batch, batch2 = make_batch(tiny[1]), make_batch(tiny[1], seed=1)
    terms = []
    for model in (default, idle):
        model(batch, update_memory=True)
        terms.append(model.losses(model(batch2), batch2["labels"]))
    assert set(terms[0]) == {
        "task",
        "cpc_t",
        "cpc_v",
        "cpc_a",
        "ba_tv",
        "ba_ta",
        "cpc",
        "ba",
        "main",
    }
    assert terms[0].keys() == terms[1].keys()
    assert all(torch.equal(terms[0][k], terms[1][k]) for k in terms[0])


def test_tanh_entropy_projection_is_the_authors_entropy(tiny):
    """entropy_projection 'tanh': H(Y) of Eqs. 5-8 on tanh(W h_y + b) (d_y // 4 dims by default),
    the memory holding the previous batch's projections; log q still models the raw h_y."""
    model = make_model(tiny, entropy_projection="tanh").eval()
    batch, batch2 = make_batch(tiny[1]), make_batch(tiny[1], seed=1)
    first = model(batch, update_memory=True)
    out = model(batch2)
    for m, before, now in (("v", first.h_v, out.h_v), ("a", first.h_a, out.h_a)):
        lin = model.entropy_proj[m][0]
        assert (lin.in_features, lin.out_features) == (16, 4)
        tanh = lambda h: torch.tanh(h.detach() @ lin.weight.T + lin.bias)  # noqa: E731, B023
        mem = bounds.HistoryMemory(1)
        mem.push(tanh(before), batch["labels"])
        want = bounds.polarity_entropy(tanh(now), batch2["labels"], memory=mem)
        torch.testing.assert_close(out.entropy["t" + m], want)
        raw = model.predictors["t" + m].log_prob(out.h_t, now)
        torch.testing.assert_close(out.log_q["t" + m], raw)
    three = make_model(tiny, entropy_projection="tanh", entropy_projection_dim=3)
    assert three.entropy_proj["v"][0].out_features == 3


@pytest.mark.parametrize("c", [1.0, 1e3])
def test_tanh_entropy_is_bounded_and_the_raw_one_is_not(tiny, c):
    """On [-1, 1]^k each class covariance has a diagonal <= 1, so (Hadamard) det(Sigma + eps I) <=
    (1 + eps)^k and H(Y) <= (k / 2) log(2 pi e (1 + eps)) however large h_y is (the ridge keeps
    saturated projections finite); the raw entropy (no ridge, 24 clips per polarity: full-rank
    covariances) moves by d log c when h_v is scaled by c."""
    batch, eps = make_batch(tiny[1], n=48), MMIMConfig().entropy_eps
    ent = {}
    for kw in (dict(entropy_eps=0.0), dict(entropy_projection="tanh")):
        for scale in (1.0, c):
            model = make_model(tiny, ba_pairs=("tv",), **kw).eval()
            out = _scaled_visual(model, scale)(batch)
            ent["entropy_eps" not in kw, scale] = out.entropy["tv"].item()
    assert ent[True, c] <= 2 * math.log(2 * math.pi * math.e * (1 + eps))  # k = 16 // 4
    assert ent[False, c] - ent[False, 1.0] == pytest.approx(16 * math.log(c), rel=1e-3, abs=1e-3)
