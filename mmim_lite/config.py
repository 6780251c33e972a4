"""Configuration of an MMIM model and its training run.

:class:`MMIMConfig` is a frozen dataclass that holds every setting of the model (Sec. 3), of
Algorithm 1 and of the ablations of Table 4.  Three presets exist:

* ``"mosi"`` and ``"mosei"`` -- exactly the hyper-parameters of the paper's Table 3, plus its fixed
  settings (Sec. 4.3): BERT learning rate 5e-5, fusion size 128, gradient clipping 5.0,
  Adam with weight decay 1e-4, ReduceLROnPlateau (factor 0.5) and early stopping on the
  validation MAE.
* ``"synthmosi"`` -- sized for a 2-core CPU: the packaged pretrained MiniLM encoder, frozen, its
  [CLS] features computed once per split, and a short schedule.

Every Table 4 row is a setting: ``ba_pairs`` (any subset of ``tv``, ``ta``, ``va``; ``x`` is the
first modality and ``y`` the second), ``cpc_terms`` (any subset of ``t``, ``v``, ``a``),
``memory_size`` (history memory length in batches, ``0`` = "w/o history data") and
``entropy_mode`` (``"gmm"`` or ``"gaussian"`` = "w/o GMM").

Fields can be overridden from strings, as a command line passes them::

    cfg = MMIMConfig.preset("mosi").replace(alpha="0.05", ba_pairs="tv,ta,va")
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, fields
from typing import Any, Mapping

__all__ = [
    "ConfigError",
    "MMIMConfig",
    "PAIR_NAMES",
    "CPC_NAMES",
    "ENTROPY_MODES",
    "PRESETS",
    "RESUMABLE_FIELDS",
    "check_resumable",
]

#: Modality pairs of the inter-modality BA bound (x = first letter, y = second letter).
PAIR_NAMES: tuple[str, ...] = ("tv", "ta", "va")
#: Targets of the fusion-level CPC terms L_N^{z,m} (Eq. 12).
CPC_NAMES: tuple[str, ...] = ("t", "v", "a")
#: Entropy estimators: two-class polarity GMM (Eq. 8) or one Gaussian (Table 4 "w/o GMM").
ENTROPY_MODES: tuple[str, ...] = ("gmm", "gaussian")


class ConfigError(ValueError):
    """An unknown setting, a value of the wrong type or an impossible combination."""


@dataclass(frozen=True)
class MMIMConfig:
    """All settings of an MMIM model and of its training (Algorithm 1).

    The defaults are the ``"mosi"`` preset (Table 3, CMU-MOSI column).
    """

    # -- encoders (Eq. 2) ------------------------------------------------------------------
    text_encoder: str = "bert-base-uncased"  #: "bert-base-uncased", "minilm", "tiny" or a folder
    freeze_text: bool = False  #: keep the text encoder fixed (not trained, eval mode)
    cache_text_features: bool = False  #: compute [CLS] once per split (needs freeze_text)
    pack_text: bool = True  #: run a BertModel on the real tokens only (same h_t; text.cls_features)
    max_length: int = 50  #: tokens per text (padding/truncation)
    visual_hidden: int = 32  #: V-LSTM hidden size (Table 3)
    acoustic_hidden: int = 32  #: A-LSTM hidden size (Table 3)
    visual_out: int = 16  #: size of h_v after the linear map (not in the paper)
    acoustic_out: int = 16  #: size of h_a after the linear map (not in the paper)
    fusion_dim: int = 128  #: size of Z (Sec. 4.3)
    dropout: float = 0.1  #: dropout at the input of the fusion network
    predictor_hidden: int | None = None  #: hidden size of q's networks (None: bounds default)
    q_min_logvar: float | None = -2.0  #: soft floor on q's log-variance (None: unbounded), see model
    cpc_layers: int = 1  #: layers of each CPC head G_phi (Eq. 10)
    # -- MI terms and ablations (Table 4) ---------------------------------------------------
    ba_pairs: tuple[str, ...] = ("tv", "ta")  #: BA pairs (Eq. 9); () = "None"
    cpc_terms: tuple[str, ...] = ("t", "v", "a")  #: CPC terms (Eq. 12); () = no CPC
    memory_size: int = 1  #: history memory in batches (Table 3); 0 = "w/o history data"
    entropy_mode: str = "gmm"  #: "gmm" (Eq. 8) or "gaussian" ("w/o GMM")
    entropy_eps: float = 1e-4  #: ridge added to the covariances before log det
    alpha: float = 0.3  #: weight of L_CPC in Eq. 14
    beta: float = 0.1  #: weight of L_BA in Eq. 14
    # -- optimisation (Algorithm 1, Table 3) ------------------------------------------------
    batch_size: int = 32
    eval_batch_size: int = 128
    lr_lld: float = 5e-3  #: eta_lld, stage 1 (q-predictors)
    lr_main: float = 1e-3  #: eta_main, stage 2 (all but BERT and q)
    lr_bert: float = 5e-5  #: stage 2 learning rate of the text encoder
    weight_decay: float = 1e-4
    clip: float = 5.0  #: gradient-norm clipping (0 = none)
    epochs: int = 40  #: maximum number of epochs
    patience: int = 10  #: early stopping: epochs without a better validation MAE
    lr_patience: int = 5  #: ReduceLROnPlateau patience (epochs)
    lr_factor: float = 0.5  #: ReduceLROnPlateau factor
    stage1_fraction: float = 1.0  #: share of the training batches used by stage 1 (D_sub)
    # -- run ---------------------------------------------------------------------------------
    seed: int = 0
    bf16: bool = True  #: bf16 autocast when training on CUDA (ignored on CPU)
    trace_every: int = 20  #: loss trace interval in steps (Fig. 2)
    preset_name: str = "custom"  #: which preset this config started from (informational)

    # ------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        # normalise sequence fields given as lists (e.g. from JSON) to tuples
        for name in ("ba_pairs", "cpc_terms"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = _split_names(value)
            if not isinstance(value, (tuple, list)):
                raise ConfigError(f"{name} must be a sequence of names, got {value!r}")
            object.__setattr__(self, name, tuple(str(v) for v in value))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` on unknown names, bad values or impossible combinations."""
        for pair in self.ba_pairs:
            if pair not in PAIR_NAMES:
                raise ConfigError(f"unknown BA pair {pair!r} in ba_pairs; expected a subset of {PAIR_NAMES}")
        if len(set(self.ba_pairs)) != len(self.ba_pairs):
            raise ConfigError(f"ba_pairs lists a pair twice: {self.ba_pairs}")
        for term in self.cpc_terms:
            if term not in CPC_NAMES:
                raise ConfigError(f"unknown CPC term {term!r} in cpc_terms; expected a subset of {CPC_NAMES}")
        if len(set(self.cpc_terms)) != len(self.cpc_terms):
            raise ConfigError(f"cpc_terms lists a term twice: {self.cpc_terms}")
        if self.entropy_mode not in ENTROPY_MODES:
            raise ConfigError(f"unknown entropy_mode {self.entropy_mode!r}; expected one of {ENTROPY_MODES}")
        if self.cache_text_features and not self.freeze_text:
            raise ConfigError("cache_text_features=True needs freeze_text=True "
                              "(features of a text encoder that is being trained cannot be cached)")
        if not isinstance(self.text_encoder, str) or not self.text_encoder.strip():
            raise ConfigError("text_encoder must be a non-empty name or folder")
        positive = ("max_length", "visual_hidden", "acoustic_hidden", "visual_out", "acoustic_out",
                    "fusion_dim", "cpc_layers", "batch_size", "eval_batch_size", "epochs",
                    "trace_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        non_negative = ("memory_size", "alpha", "beta", "weight_decay", "clip", "patience",
                        "lr_patience", "entropy_eps", "seed")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr_lld", "lr_main", "lr_bert"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.q_min_logvar is not None and not math.isfinite(self.q_min_logvar):
            raise ConfigError(f"q_min_logvar must be a finite number or None, got {self.q_min_logvar}")
        if self.predictor_hidden is not None and self.predictor_hidden < 1:
            raise ConfigError(f"predictor_hidden must be >= 1 or None, got {self.predictor_hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.lr_factor < 1.0:
            raise ConfigError(f"lr_factor must be in (0, 1), got {self.lr_factor}")
        if not 0.0 < self.stage1_fraction <= 1.0:
            raise ConfigError(f"stage1_fraction must be in (0, 1], got {self.stage1_fraction}")

    # ------------------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "MMIMConfig":
        """The named preset (``"mosi"``, ``"mosei"``, ``"synthmosi"``), with optional overrides."""
        key = str(name).lower()
        if key not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; expected one of {tuple(PRESETS)}")
        return cls(**PRESETS[key], preset_name=key).replace(**overrides)

    def replace(self, **overrides: Any) -> "MMIMConfig":
        """A copy with the given fields changed; string values are coerced to the field's type.

        ``ba_pairs``/``cpc_terms`` accept ``"tv,ta"`` (also ``"tv ta"``), ``""`` or ``"none"``;
        booleans accept ``true/false/1/0/yes/no/on/off``; optional ints accept ``"none"``.
        """
        if not overrides:
            return self
        types = _field_types()
        unknown = sorted(set(overrides) - set(types))
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; valid fields: {sorted(types)}")
        coerced = {k: _coerce(k, v, types[k]) for k, v in overrides.items()}
        return dataclasses.replace(self, **coerced)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists); inverse of :meth:`from_dict`."""
        out = dataclasses.asdict(self)
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MMIMConfig":
        """Rebuild a config from :meth:`to_dict` output (unknown keys are an error)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"expected a mapping of config fields, got {type(data).__name__}")
        return cls().replace(**dict(data))


# ---------------------------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------------------------
_PAPER_FIXED: dict[str, Any] = dict(
    text_encoder="bert-base-uncased", lr_bert=5e-5, fusion_dim=128, clip=5.0, weight_decay=1e-4,
    lr_factor=0.5, ba_pairs=("tv", "ta"), cpc_terms=("t", "v", "a"), entropy_mode="gmm",
    memory_size=1,
)

PRESETS: dict[str, dict[str, Any]] = {
    # Table 3, CMU-MOSI column
    "mosi": dict(_PAPER_FIXED, batch_size=32, lr_lld=5e-3, lr_main=1e-3, alpha=0.3, beta=0.1,
                 visual_hidden=32, acoustic_hidden=32),
    # Table 3, CMU-MOSEI column (stage 1 on half of the batches, as the authors' code does)
    "mosei": dict(_PAPER_FIXED, batch_size=64, lr_lld=1e-3, lr_main=5e-4, alpha=0.1, beta=0.05,
                  visual_hidden=64, acoustic_hidden=16, stage1_fraction=0.5),
    # 2-core CPU: frozen pretrained MiniLM with cached [CLS] features, short schedule
    "synthmosi": dict(_PAPER_FIXED, text_encoder="minilm", freeze_text=True,
                      cache_text_features=True, batch_size=32, lr_lld=5e-3, lr_main=1e-3,
                      alpha=0.3, beta=0.1, visual_hidden=32, acoustic_hidden=32,
                      epochs=20, patience=6, lr_patience=3),
}


# ---------------------------------------------------------------------------------------------
# string coercion
# ---------------------------------------------------------------------------------------------
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


#: Settings a resumed run may raise: how long it trains, nothing about what it trains.
RESUMABLE_FIELDS = ("epochs", "patience")


def check_resumable(stored: MMIMConfig, wanted: MMIMConfig, where: str) -> None:
    """Refuse to continue a run stored with ``stored`` under ``wanted`` unless the two differ only
    by raised ``epochs`` / ``patience`` (``where`` names the file in the error)."""
    before, now = stored.to_dict(), wanted.to_dict()
    changed = sorted(k for k in before if before[k] != now[k])
    other = [k for k in changed if k not in RESUMABLE_FIELDS]
    if other:
        raise ConfigError(f"{where}: cannot resume with other settings: {other} differ "
                              f"(only {' and '.join(RESUMABLE_FIELDS)} may be raised)")
    limit = lambda k, v: math.inf if k == "patience" and v == 0 else v  # noqa: E731 - 0: no early stop
    lowered = [f"{k} {before[k]} -> {now[k]}" for k in changed if limit(k, now[k]) < limit(k, before[k])]
    if lowered:
        raise ConfigError(f"{where}: {', '.join(RESUMABLE_FIELDS)} may only be raised on resume, "
                              f"got {'; '.join(lowered)}")


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(MMIMConfig)
    return {f.name: hints[f.name] for f in fields(MMIMConfig)}


def _split_names(text: str) -> tuple[str, ...]:
    text = text.strip()
    if text.lower() in ("", "none", "()", "[]"):
        return ()
    return tuple(p for p in text.replace(",", " ").split() if p)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` (often a string from a command line) to the type of field ``name``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is tuple:
        if isinstance(value, str):
            return _split_names(value)
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        raise ConfigError(f"{name} expects names such as 'tv,ta', got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{name} expects a boolean (true/false), got {value!r}")
    if hint in (int, float):
        kind = "an integer" if hint is int else "a number"
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value.strip()) if isinstance(value, str) else float(value)
            if hint is int:
                if not number.is_integer() or (isinstance(value, str) and "." in value):
                    raise ValueError
                return int(number)
            return number
        except (TypeError, ValueError):
            raise ConfigError(f"{name} expects {kind}, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} expects a string, got {value!r}")
        return value
    return value  # pragma: no cover - every field has one of the types above
