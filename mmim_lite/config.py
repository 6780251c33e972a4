"""Model and training settings (Algorithm 1, Table 3) with every Table 4 switch, and the presets
``"mosi"``, ``"mosei"`` (Table 3, Sec. 4.3), ``"synthmosi"`` (CPU, frozen MiniLM) and
``"synthmosi-ft"`` (MiniLM fine-tuned). A field's ``help`` is its --help text."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ConfigError",
    "ModelConfig",
    "MMIMConfig",
    "PAIR_NAMES",
    "CPC_NAMES",
    "ENTROPY_MODES",
    "FRAME_ENCODERS",
    "PRESETS",
    "RESUMABLE_FIELDS",
    "check_resumable",
]

PAIR_NAMES = ("tv", "ta", "va")  #: BA pairs xy of Eq. 9 (x = first letter, y = second)
CPC_NAMES = ("t", "v", "a")  #: targets m of the CPC terms L_N^{z,m} (Eq. 12)
ENTROPY_MODES = ("gmm", "gaussian")  #: polarity GMM (Eq. 8) or one Gaussian (Table 4 "w/o GMM")
FRAME_ENCODERS = (
    "lstm",
    "mean",
)  #: Eq. 2's sLSTM, or the mean of the real frames (not in the paper)
_C = typing.TypeVar("_C", bound="ModelConfig")


class ConfigError(ValueError):
    """An unknown setting, a value of the wrong type or an impossible combination."""


def _f(default: Any, help: str, valid: Callable[[Any], bool] | None = None, want: str = "") -> Any:  # noqa: A002
    """A field with its --help text and, optionally, the check its value must pass (``want`` says
    it)."""
    return field(default=default, metadata={"help": help, "valid": valid, "want": want})


_POSITIVE, _NONNEG = (lambda v: v >= 1, ">= 1"), (lambda v: v >= 0, ">= 0")


def _names(allowed: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
    return (
        lambda v: set(v) <= set(allowed) and len(set(v)) == len(v)
    ), f"distinct names from {allowed}"


@dataclass(frozen=True)
class ModelConfig:
    """The model (Sec. 3) and its objective; the defaults are the ``"mosi"`` preset (Table 3)."""

    text_encoder: str = _f(
        "bert-base-uncased",
        "'bert-base-uncased', 'minilm', 'tiny', 'bert-base-random' or a folder",
        lambda v: bool(v.strip()),
        "a non-empty name or folder",
    )
    freeze_text: bool = _f(False, "keep the text encoder fixed (not trained, eval mode)")
    pack_text: bool = _f(True, "run a BertModel on the real tokens only (same h_t, faster)")
    max_length: int = _f(50, "tokens per text (truncation)", *_POSITIVE)
    visual_hidden: int = _f(32, "V-LSTM hidden size (Table 3)", *_POSITIVE)
    acoustic_hidden: int = _f(32, "A-LSTM hidden size (Table 3)", *_POSITIVE)
    visual_out: int = _f(16, "size of h_v after the linear map (not in the paper)", *_POSITIVE)
    acoustic_out: int = _f(16, "size of h_a after the linear map (not in the paper)", *_POSITIVE)
    frame_encoder: str = _f(
        "lstm",
        "'lstm' (Eq. 2's sLSTM) or 'mean' (the mean of the real frames, not in the paper; "
        "then visual_hidden and acoustic_hidden are unused)",
        FRAME_ENCODERS.__contains__,
        f"one of {FRAME_ENCODERS}",
    )
    fusion_dim: int = _f(128, "size of Z (Sec. 4.3)", *_POSITIVE)
    dropout: float = _f(
        0.1, "dropout at the input of the fusion network", lambda v: 0 <= v < 1, "in [0, 1)"
    )
    predictor_hidden: int | None = _f(
        None,
        "hidden size of q's networks (none: max(64, d_y))",
        lambda v: v is None or v >= 1,
        ">= 1 or none",
    )
    q_min_logvar: float | None = _f(
        -2.0,
        "soft floor on q's log-variance (none: unbounded)",
        lambda v: v is None or math.isfinite(v),
        "finite or none",
    )
    modalities: tuple[str, ...] = _f(
        ("t", "v", "a"),
        "modalities the fusion network sees, e.g. t (a unimodal "
        "model); BA, CPC and cross-modal terms may use only these",
        *_names(CPC_NAMES),
    )
    ba_standardize: bool = _f(
        False,
        "standardise h_y per dimension with batch statistics before log q and H(Y) "
        "(a scale-invariant BA term)",
    )
    cpc_layers: int = _f(1, "layers of each CPC head G_phi (Eq. 10)", *_POSITIVE)
    ba_pairs: tuple[str, ...] = _f(
        ("tv", "ta"), "BA pairs of Eq. 9, e.g. tv,ta ('none': no BA term)", *_names(PAIR_NAMES)
    )
    cpc_terms: tuple[str, ...] = _f(
        ("t", "v", "a"), "CPC terms of Eq. 12, e.g. t,v,a ('none': no CPC)", *_names(CPC_NAMES)
    )
    memory_size: int = _f(
        1, "history memory in batches (Table 3); 0 = 'w/o history data'", *_NONNEG
    )
    entropy_mode: str = _f(
        "gmm",
        "'gmm' (Eq. 8) or 'gaussian' ('w/o GMM')",
        ENTROPY_MODES.__contains__,
        f"one of {ENTROPY_MODES}",
    )
    entropy_eps: float = _f(1e-4, "ridge added to the covariances before log det", *_NONNEG)
    entropy_projection: str = _f(
        "none",
        "H(Y) of Eqs. 5-8 on 'none' (h_y, the paper) or 'tanh' (tanh(W h_y), the authors' "
        "code; W learnt in stage 2)",
        ("none", "tanh").__contains__,
        "'none' or 'tanh'",
    )
    entropy_projection_dim: int = _f(
        0, "size of the tanh projection (0: d_y // 4, as the authors)", *_NONNEG
    )
    alpha: float = _f(0.3, "weight of L_CPC in Eq. 14", *_NONNEG)
    beta: float = _f(0.1, "weight of L_BA in Eq. 14", *_NONNEG)
    xmodal_pairs: tuple[str, ...] = _f(
        (),
        "pairs xy of a symmetric cross-modal InfoNCE between projections of h_x and h_y "
        "(not in the paper; on all clips), e.g. tv,ta ('none': off)",
        *_names(PAIR_NAMES),
    )
    xmodal_dim: int = _f(64, "size of the cross-modal InfoNCE projections", *_POSITIVE)
    xmodal_temperature: float = _f(
        0.1, "temperature of the cross-modal InfoNCE", lambda v: v > 0, "> 0"
    )
    xmodal_weight: float = _f(
        0.1, "weight of the cross-modal InfoNCE, added to L_main (Eq. 14)", *_NONNEG
    )

    def __post_init__(self) -> None:
        """Each field holds its declared type (ints pass for floats, lists for name tuples) and
        passes its check."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, hint, args = getattr(self, f.name), hints[f.name], typing.get_args(hints[f.name])
            if type(None) in args:  # Optional[X]: None, or an X
                if value is None:
                    continue
                hint = next(a for a in args if a is not type(None))
            if typing.get_origin(hint) is tuple:
                if not isinstance(value, (tuple, list)) or not all(
                    isinstance(v, str) for v in value
                ):
                    raise ConfigError(f"{f.name} must be a sequence of names, got {value!r}")
                object.__setattr__(self, f.name, value := tuple(value))
            elif hint is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, value := float(value))
            elif not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
                raise ConfigError(f"{f.name} must be of type {hint.__name__}, got {value!r}")
            if hint is float and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
            if f.metadata["valid"] is not None and not f.metadata["valid"](value):
                raise ConfigError(f"{f.name} must be {f.metadata['want']}, got {value!r}")
        used = {m for p in self.ba_pairs + self.xmodal_pairs for m in p} | set(self.cpc_terms)
        if not self.modalities or used - set(self.modalities):
            raise ConfigError(
                f"modalities {self.modalities!r} must be non-empty and include every "
                f"modality of ba_pairs {self.ba_pairs!r}, cpc_terms "
                f"{self.cpc_terms!r} and xmodal_pairs {self.xmodal_pairs!r}"
            )

    def replace(self: _C, **overrides: Any) -> _C:
        """A copy with the given fields changed (typed values; the CLI parses strings)."""
        names = sorted(f.name for f in dataclasses.fields(self))
        if unknown := sorted(set(overrides) - set(names)):
            raise ConfigError(f"unknown config field(s) {unknown}; valid fields: {names}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists); inverse of :meth:`from_dict`."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls: type[_C], data: Mapping[str, Any]) -> _C:
        """Rebuild a config from :meth:`to_dict` output (unknown keys are an error)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"expected a mapping of config fields, got {type(data).__name__}")
        return cls().replace(**data)


@dataclass(frozen=True)
class MMIMConfig(ModelConfig):
    """A :class:`ModelConfig` plus its training (Algorithm 1, Table 3) and run settings."""

    cache_text_features: bool = _f(False, "compute [CLS] once per split (needs freeze_text)")
    batch_size: int = _f(32, "training batch size (Table 3)", *_POSITIVE)
    eval_batch_size: int = _f(128, "batch size of evaluation", *_POSITIVE)
    lr_lld: float = _f(
        5e-3, "eta_lld: stage-1 learning rate of the q-predictors", lambda v: v > 0, "> 0"
    )
    lr_main: float = _f(
        1e-3, "eta_main: stage-2 learning rate (all but BERT and q)", lambda v: v > 0, "> 0"
    )
    lr_bert: float = _f(5e-5, "stage-2 learning rate of the text encoder", lambda v: v > 0, "> 0")
    weight_decay: float = _f(1e-4, "Adam weight decay", *_NONNEG)
    clip: float = _f(5.0, "gradient-norm clipping (0 = none)", *_NONNEG)
    epochs: int = _f(40, "maximum number of epochs", *_POSITIVE)
    patience: int = _f(
        10, "early stopping: epochs without a better validation MAE (0 = never)", *_NONNEG
    )
    lr_patience: int = _f(5, "ReduceLROnPlateau patience (epochs)", *_NONNEG)
    lr_factor: float = _f(0.5, "ReduceLROnPlateau factor", lambda v: 0 < v < 1, "in (0, 1)")
    stage1_fraction: float = _f(
        1.0, "share of the training batches stage 1 uses (D_sub)", lambda v: 0 < v <= 1, "in (0, 1]"
    )
    labeled_fraction: float = _f(
        1.0,
        "share of the training clips whose label is used (a fixed subset, the same for every seed)",
        lambda v: 0 < v <= 1,
        "in (0, 1]",
    )
    use_unlabeled: bool = _f(
        True,
        "with labeled_fraction < 1: train CPC and BA on the unlabelled clips too "
        "(false: drop them)",
    )
    seed: int = _f(0, "seed of the run (--seeds N runs seed..seed+N-1)", *_NONNEG)
    bf16: bool = _f(True, "bf16 autocast when training on CUDA (ignored on CPU)")
    trace_every: int = _f(20, "loss trace interval in steps (Fig. 2)", *_POSITIVE)
    trace_grads: bool = _f(
        False,
        "at each stage-2 trace point, trace each MI term's weighted "
        "gradient norm on each encoder relative to the task's, and their cosine "
        "(not in the paper; a few extra backward passes per trace point)",
    )
    preset_name: str = _f("custom", "which preset this config started from (informational)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cache_text_features and not self.freeze_text:
            raise ConfigError(
                "cache_text_features=True needs freeze_text=True "
                "(features of a text encoder that is being trained cannot be cached)"
            )

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> MMIMConfig:
        """The named preset (a key of :data:`PRESETS`), with optional overrides."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; expected one of {tuple(PRESETS)}")
        return cls(**PRESETS[name], preset_name=name).replace(**overrides)


_PAPER_FIXED: dict[str, Any] = dict(  # Sec. 4.3, both datasets
    text_encoder="bert-base-uncased",
    lr_bert=5e-5,
    fusion_dim=128,
    clip=5.0,
    weight_decay=1e-4,
    lr_factor=0.5,
    ba_pairs=("tv", "ta"),
    cpc_terms=("t", "v", "a"),
    entropy_mode="gmm",
    memory_size=1,
)

# Table 3, CMU-MOSI
_MOSI: dict[str, Any] = dict(
    _PAPER_FIXED,
    batch_size=32,
    lr_lld=5e-3,
    lr_main=1e-3,
    alpha=0.3,
    beta=0.1,
    visual_hidden=32,
    acoustic_hidden=32,
)

PRESETS: dict[str, dict[str, Any]] = {
    "mosi": _MOSI,
    # Table 3, CMU-MOSEI; stage 1 on half of the batches, as the authors' code
    "mosei": dict(
        _PAPER_FIXED,
        batch_size=64,
        lr_lld=1e-3,
        lr_main=5e-4,
        alpha=0.1,
        beta=0.05,
        visual_hidden=64,
        acoustic_hidden=16,
        stage1_fraction=0.5,
    ),
    # MOSI's numbers with a small frozen text encoder and a shorter schedule: a 2-core CPU
    "synthmosi": dict(
        _MOSI,
        text_encoder="minilm",
        freeze_text=True,
        cache_text_features=True,
        epochs=20,
        patience=6,
        lr_patience=3,
    ),
}
# the paper's setting on SynthMOSI: the pretrained MiniLM fine-tuned at lr_bert (as the paper
# fine-tunes BERT)
PRESETS["synthmosi-ft"] = dict(PRESETS["synthmosi"], freeze_text=False, cache_text_features=False)

#: Settings a resumed run may raise: how long it trains, nothing about what it trains.
RESUMABLE_FIELDS = ("epochs", "patience")


def check_resumable(stored: MMIMConfig, wanted: MMIMConfig, where: str) -> None:
    """Refuse to resume ``stored`` as ``wanted`` unless only :data:`RESUMABLE_FIELDS` are raised
    (``where``: file)."""
    before, now = stored.to_dict(), wanted.to_dict()
    changed = sorted(k for k in before if before[k] != now[k])
    if other := [k for k in changed if k not in RESUMABLE_FIELDS]:
        raise ConfigError(
            f"{where}: cannot resume with other settings: {other} differ "
            f"(only {' and '.join(RESUMABLE_FIELDS)} may be raised)"
        )
    limit = lambda k, v: math.inf if k == "patience" and v == 0 else v  # noqa: E731 - 0: no early stop
    if lowered := [
        f"{k} {before[k]} -> {now[k]}" for k in changed if limit(k, now[k]) < limit(k, before[k])
    ]:
        raise ConfigError(
            f"{where}: {', '.join(RESUMABLE_FIELDS)} may only be raised on resume, "
            f"got {'; '.join(lowered)}"
        )
