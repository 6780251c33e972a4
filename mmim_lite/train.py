"""Algorithm 1: training MMIM and evaluating it.

One epoch (:meth:`Trainer.train_epoch`) is, as in the paper's Algorithm 1: **stage 1**
(:meth:`Trainer.stage1_epoch`), where only the q-predictors learn by minimising L_lld (Eq. 4);
**stage 2** (:meth:`Trainer.stage2_epoch`), where everything but q learns by minimising L_main
(Eq. 14); then validation, ReduceLROnPlateau and selection on the **validation** MAE only.
The Trainer reads and writes no file: the caller seeds (:func:`seed_everything`), run files and
checkpoints are a callback (:class:`~mmim_lite.runtime.RunFiles`), several seeds an experiment
(:mod:`mmim_lite.experiment`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.utils.data import DataLoader
from tqdm import tqdm  # plain bars: tqdm.auto warns inside Jupyter without ipywidgets

from .batching import MSADataset, collate_batch
from .config import MMIMConfig
from .metrics import msa_metrics
from .model import MMIM
from .text import RANDOM_ENCODERS

#: seed of the permutation that picks the labelled training clips (``labeled_fraction`` < 1)
LABEL_SUBSET_SEED = 20211107

__all__ = [
    "LABEL_SUBSET_SEED",
    "Callback",
    "CheckpointError",
    "Evaluator",
    "TrainingDivergedError",
    "TracePoint",
    "Trainer",
    "gradient_trace",
    "labeled_split",
    "load_model_weights",
    "model_weights",
    "optimizers",
    "resolve_device",
    "rng_state",
    "set_rng_state",
    "seed_everything",
]


class CheckpointError(ValueError):
    """A checkpoint is missing, not an mmim-lite checkpoint or does not fit the data."""


class TrainingDivergedError(FloatingPointError):
    """A loss term became NaN or infinite; the message names the term, epoch, stage and step."""

    def __init__(self, term: str, epoch: int, step: int, stage: int) -> None:
        super().__init__(
            f"loss term {term!r} is not finite at epoch {epoch}, stage {stage}, step {step}"
        )
        self.term, self.epoch, self.step, self.stage = term, epoch, step, stage


@dataclasses.dataclass(frozen=True)
class TracePoint:
    """One point of the loss trace of Fig. 2: each term's mean over the last ``trace_every``
    steps."""

    epoch: int
    stage: int
    step: int  #: the stage's step count at the end of the window
    losses: dict[str, float]
    #: ``trace_grads``: :func:`gradient_trace` on the window's last batch (else empty)
    grads: dict[str, float] = dataclasses.field(default_factory=dict)


def _mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]} if rows else {}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): call it before building a :class:`Trainer`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The RNG states training draws from (torch's, CPU and CUDA: dropout, initialisation)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA if available, else CPU; otherwise ``torch.device(device)``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(
            f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from err
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device {device!r} is not supported; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return dev


def labeled_split(
    splits: Mapping[str, Sequence[Any]], config: MMIMConfig
) -> tuple[Mapping[str, Sequence[Any]], np.ndarray]:
    """The splits a run trains on and, per training clip, whether its label is used: the first
    ``labeled_fraction`` of one fixed permutation (the same clips for every seed, nested across
    fractions); without ``use_unlabeled`` the others are left out."""
    n_train = len(splits.get("train", ()))
    labeled = np.zeros(n_train, dtype=bool)
    order = np.random.default_rng(LABEL_SUBSET_SEED).permutation(n_train)
    labeled[order[: max(1, round(config.labeled_fraction * n_train))]] = True
    if config.use_unlabeled:
        return splits, labeled
    return {**splits, "train": [x for x, k in zip(splits["train"], labeled) if k]}, labeled[labeled]


def _stage_trace(
    at: tuple[int, int, int],
    names: list[str],
    values: list[torch.Tensor],
    every: int,
    grads: Mapping[int, dict[str, float]],
) -> tuple[dict[str, float], list[TracePoint]]:
    """A stage's term values (per step, one tensor on the device) on the host at once, ``at``
    (epoch, stage, its first step): a non-finite term raises :class:`TrainingDivergedError` at
    its first step; else the stage's means and a :class:`TracePoint` per ``every`` steps (the
    window's means, ``grads`` of its last step by step in the stage)."""
    epoch, stage, first = at
    rows = torch.stack(values).cpu()  # the stage's one host sync
    if len(bad := (~torch.isfinite(rows)).nonzero()):
        step, term = bad[0].tolist()
        raise TrainingDivergedError(names[term], epoch, first + step, stage)
    rows = [dict(zip(names, r)) for r in rows.tolist()]
    points = [
        TracePoint(
            epoch, stage, first + end - 1, _mean(rows[end - every : end]), grads.get(end, {})
        )
        for end in range(every, len(rows) + 1, every)
    ]
    return _mean(rows), points


def gradient_trace(model: MMIM, terms: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Per MI term T of :meth:`MMIM.losses` (``cpc``, ``ba`` and, if present, ``xmodal``) and per
    encoder m (``t`` if trainable, ``v``, ``a``): with g_T the gradient of w_T T (w_T its weight in
    L_main: alpha, beta, xmodal_weight) and g the task loss's, both on m's parameters, before
    clipping, ``grad_ratio_<T>_<m>`` = |g_T| / |g| and ``grad_cos_<T>_<m>`` = cos(g_T, g) (NaN
    where a gradient is zero; a term with weight 0 has ratio 0), and ``grad_norm_task_<m>`` = |g|.
    ``terms``' graph is kept (``retain_graph``) and no ``.grad`` is touched: training is unchanged.
    Terms absent from the objective (no graph) are left out. One host sync."""
    groups = {
        m: [p for p in params if p.requires_grad]
        for m, params in (
            ("t", model.text_parameters()),
            ("v", model.visual_enc.parameters()),
            ("a", model.acoustic_enc.parameters()),
        )
    }
    groups = {m: params for m, params in groups.items() if params}
    params = [p for group in groups.values() for p in group]

    def flat(loss: torch.Tensor) -> dict[str, torch.Tensor]:  # per encoder, one gradient vector
        grads = iter(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))
        return {
            m: torch.cat(
                [
                    (torch.zeros_like(p) if g is None else g).reshape(-1)
                    for p, g in zip(group, grads)
                ]
            )
            for m, group in groups.items()
        }

    cfg, task = model.config, flat(terms["task"])
    stats = {f"grad_norm_task_{m}": g.norm() for m, g in task.items()}
    for name, weight in (("cpc", cfg.alpha), ("ba", cfg.beta), ("xmodal", cfg.xmodal_weight)):
        if name in terms and terms[name].requires_grad:
            for m, g in flat(weight * terms[name]).items():
                stats[f"grad_ratio_{name}_{m}"] = g.norm() / task[m].norm()
                stats[f"grad_cos_{name}_{m}"] = g @ task[m] / (g.norm() * task[m].norm())
    return dict(zip(stats, torch.stack(list(stats.values())).float().cpu().tolist()))


class Callback:
    """An observer of :meth:`Trainer.fit` (run files, progress lines, a search pruning the run);
    an exception a hook raises stops the run."""

    def on_start(self, trainer: Trainer) -> None:
        """Before the first epoch that :meth:`Trainer.fit` runs."""

    def on_epoch(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """After each epoch, with its history row."""

    def on_end(self, trainer: Trainer, result: dict[str, Any]) -> None:
        """After the last epoch, with the best weights loaded, with their result."""


def optimizers(model: MMIM, config: MMIMConfig) -> tuple[torch.optim.Adam, torch.optim.Adam | None]:
    """Algorithm 1's two optimisers: all but theta_q (stage 2; the text encoder at ``lr_bert``),
    and theta_q (stage 1; None without BA pairs)."""
    q, wd = model.predictor_parameters(), config.weight_decay
    groups = [{"params": model.main_parameters(), "lr": config.lr_main}]
    if model.text_parameters():
        groups.append({"params": model.text_parameters(), "lr": config.lr_bert})
    opt_lld = torch.optim.Adam(q, config.lr_lld, weight_decay=wd, fused=True) if q else None
    return torch.optim.Adam(groups, weight_decay=wd, fused=True), opt_lld


class Evaluator:
    """A model on its splits (``{"train", "valid", "test"}`` lists of Samples, tokenised once):
    the model built for the data's feature sizes on ``device`` ("auto" | "cpu" | "cuda[:N]"), or
    from ``text_encoder``, an already loaded ``(model, tokenizer)``; batches on the device
    (shuffled per epoch and stage for training, in order otherwise; ``progress``: tqdm bars, None:
    on a terminal); a frozen encoder's [CLS] features computed once (``text_cache``: already
    computed ones); the model's predictions, representations, metrics, and weights' state."""

    def __init__(
        self,
        config: MMIMConfig,
        splits: Mapping[str, Sequence[Any]],
        *,
        device: str | torch.device | None = "auto",
        progress: bool | None = None,
        text_encoder: tuple[Any, Any] | None = None,
        text_cache: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        if missing := [s for s in ("train", "valid") if len(splits.get(s, ())) == 0]:
            raise ValueError(
                f"splits must contain non-empty 'train' and 'valid' (missing/empty: {missing})"
            )
        self.config, self.device = config, resolve_device(device)
        self.progress = sys.stderr.isatty() if progress is None else progress
        first = splits["train"][0]
        self.visual_dim, self.acoustic_dim = first.visual.shape[1], first.acoustic.shape[1]
        self.model = MMIM(config, self.visual_dim, self.acoustic_dim, text_encoder).to(self.device)
        # a frozen *pretrained* encoder is reloaded by name, never stored in a checkpoint
        self.skip_text = config.freeze_text and config.text_encoder not in RANDOM_ENCODERS
        self.datasets = {
            name: MSADataset(samples, self.model.tokenizer, max_length=config.max_length)
            for name, samples in splits.items()
            if len(samples) > 0
        }
        self._text_cache = {k: v.to(self.device) for k, v in (text_cache or {}).items()}

    def predict(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(predictions, truths)`` of the current model on a split, in dataset order."""
        self.model.eval()
        preds, truths = [], []
        for batch in self._batches(split, desc=f"evaluate {split}"):
            with self._autocast():
                preds.append(self.model.predict(batch, self._h_t(split, batch)).float())
            truths.append(batch["labels"].float())
        return tuple(torch.cat(x).cpu().numpy().astype(np.float64) for x in (preds, truths))

    def representations(self, split: str) -> dict[str, np.ndarray]:
        """``{"t", "v", "a": (N, d_m)}``: h_m (Eq. 2) of the current model on a split, in dataset
        order (eval mode, float64)."""
        self.model.eval()
        with torch.no_grad(), self._autocast():
            rows = [self.model.encode(b, self._h_t(split, b)) for b in self._batches(split)]
        return {
            m: torch.cat([r[i].float() for r in rows]).cpu().numpy().astype(np.float64)
            for i, m in enumerate("tva")
        }

    def evaluate(self, split: str = "test") -> dict[str, float]:
        """:func:`~mmim_lite.metrics.msa_metrics` of the current model on ``split``."""
        return msa_metrics(*self.predict(split))

    def text_features(self, split: str) -> torch.Tensor:
        """[CLS] features (N, d_t) of a split from the frozen text encoder, computed once."""
        if split not in self._text_cache:
            self.model.eval()
            with torch.no_grad(), self._autocast():
                rows = [self.model.encode_text(b).float() for b in self._batches(split)]
            self._text_cache[split] = torch.cat(rows)
        return self._text_cache[split]

    def _h_t(self, split: str, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        cached = self.config.cache_text_features
        return self.text_features(split)[batch["index"]] if cached else None

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda" and self.config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _batches(
        self, split: str, shuffle_seed: int | None = None, limit: int | None = None, desc: str = ""
    ) -> Iterator[dict[str, torch.Tensor]]:
        """A split's batches on the device: ``shuffle_seed`` given, shuffled training batches (the
        first ``limit``); else in order, of ``eval_batch_size``."""
        if split not in self.datasets:
            raise ValueError(f"no {split!r} split in this trainer (have {sorted(self.datasets)})")
        train = shuffle_seed is not None
        loader = DataLoader(
            self.datasets[split],
            shuffle=train,
            collate_fn=collate_batch,
            batch_size=self.config.batch_size if train else self.config.eval_batch_size,
            generator=torch.Generator().manual_seed(shuffle_seed or 0),
        )
        total = len(loader) if limit is None else min(limit, len(loader))
        bars = dict(total=total, desc=desc or split, leave=False, dynamic_ncols=True)
        for batch in tqdm(itertools.islice(loader, total), disable=not self.progress, **bars):
            yield {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def _header(self, kind: str) -> dict[str, Any]:
        memories = self.model.memory_state_dict()
        dims = {"visual_dim": self.visual_dim, "acoustic_dim": self.acoustic_dim}
        return {"kind": kind, "config": self.config.to_dict(), **dims, "memories": memories}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load a state's model weights and memories (the model's part of any kind)."""
        if (state["visual_dim"], state["acoustic_dim"]) != (self.visual_dim, self.acoustic_dim):
            raise CheckpointError(
                f"checkpoint expects visual/acoustic dims {state['visual_dim']}/"
                f"{state['acoustic_dim']}, data has {self.visual_dim}/{self.acoustic_dim}"
            )
        load_model_weights(self.model, state["model"], self.skip_text)
        self.model.load_memory_state_dict(state["memories"])


class Trainer(Evaluator):
    """Algorithm 1 for one config and one dataset: two stages per epoch, selection on the
    validation MAE, early stopping, the best weights, an in-memory :meth:`state_dict`. Arguments:
    :class:`Evaluator`'s. The model's initial weights come from the RNG: seed it first
    (:func:`seed_everything`)."""

    def __init__(self, config: MMIMConfig, splits: Mapping[str, Any], **kwargs: Any) -> None:
        splits, labeled = labeled_split(splits, config)
        super().__init__(config, splits, **kwargs)
        self.labeled = torch.from_numpy(labeled)  #: per training clip: is its label used?
        self.opt_main, self.opt_lld = optimizers(self.model, config)
        self.optimizers = [opt for opt in (self.opt_main, self.opt_lld) if opt is not None]
        self.schedulers = [
            ReduceLROnPlateau(opt, factor=config.lr_factor, patience=config.lr_patience)
            for opt in self.optimizers
        ]
        self.epoch, self.steps = 0, {1: 0, 2: 0}
        self.best_valid_mae, self.best_epoch, self.bad_epochs = math.inf, 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []  #: one row per epoch (history.csv)
        self.trace: list[TracePoint] = []  #: the loss trace of Fig. 2 (trace.csv)
        self.result: dict[str, Any] | None = None

    def stage1_epoch(self) -> dict[str, float]:
        """Stage 1: minimise L_lld (Eq. 4) over theta_q only, on D_sub (the first
        ``stage1_fraction`` of the shuffled batches). Returns the epoch mean ({} without BA
        pairs)."""
        if self.opt_lld is None:
            return {}

        def lld(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            with torch.no_grad(), self._autocast():  # h_t, h_v, h_a fixed: no graph to encoders
                h = self.model.encode(batch, self._h_t("train", batch))
            return {"lld": self.model.lld_loss(*(x.float() for x in h))}

        n_batches = math.ceil(len(self.datasets["train"]) / self.config.batch_size)
        d_sub = max(1, math.ceil(self.config.stage1_fraction * n_batches))
        return self._stage(1, lld, "lld", self.opt_lld, d_sub)

    def stage2_epoch(self) -> dict[str, float]:
        """Stage 2: minimise L_main = L_task + alpha L_CPC + beta L_BA (Eq. 14) over all parameters
        but q's. Returns the epoch means of every term."""
        known = self.labeled.to(self.device)

        def main(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            # H(Y) reads the memory, then the batch is pushed; only full batches enter the memory,
            # so an epoch's last, partial batch never becomes the next epoch's whole history
            full = len(batch["labels"]) == self.config.batch_size
            # unlabelled clips: NaN label (no task loss, predicted polarity)
            batch["labels"] = torch.where(known[batch["index"]], batch["labels"], torch.nan)
            with self._autocast():
                out = self.model(batch, h_t=self._h_t("train", batch), update_memory=full)
            return self.model.losses(out, batch["labels"])

        q_params = self.model.predictor_parameters()
        for p in q_params:  # q held fixed; its inputs h_x and h_y still get the gradient of log q
            p.requires_grad_(False)
        try:
            return self._stage(2, main, "main", self.opt_main, trace_grads=self.config.trace_grads)
        finally:
            for p in q_params:
                p.requires_grad_(True)

    def _stage(
        self,
        stage: int,
        losses: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
        objective: str,
        optimizer: torch.optim.Optimizer,
        limit: int | None = None,
        trace_grads: bool = False,
    ) -> dict[str, float]:
        """One stage's steps over the shuffled training batches: ``losses(batch)``, backward of its
        term ``objective``, clipping, optimiser step. The terms' values stay on the device until the
        stage ends (one host sync); returns their means and adds a :class:`TracePoint` per
        ``trace_every`` steps (``trace_grads``: with :func:`gradient_trace` before the backward)."""
        self.model.train()
        every, values, grads = self.config.trace_every, [], {}
        desc = f"epoch {self.epoch} stage {stage}"
        for i, batch in enumerate(
            self._batches("train", self._shuffle_seed(stage), limit, desc), 1
        ):
            terms = losses(batch)
            if trace_grads and i % every == 0:
                grads[i] = gradient_trace(self.model, terms)
            optimizer.zero_grad(set_to_none=True)
            terms[objective].backward()
            if self.config.clip > 0:
                params = [p for g in optimizer.param_groups for p in g["params"]]
                torch.nn.utils.clip_grad_norm_(params, self.config.clip)
            optimizer.step()
            values.append(torch.stack([t.detach().float() for t in terms.values()]))
        at = (self.epoch, stage, self.steps[stage] + 1)
        means, points = _stage_trace(at, list(terms), values, every, grads)
        self.steps[stage] += len(values)
        self.trace += points
        return means

    def train_epoch(self) -> dict[str, Any]:
        """One epoch: stage 1, stage 2, validation, LR schedule, selection; returns its history
        row."""
        start, self.epoch = time.perf_counter(), self.epoch + 1
        lld_lr = self.opt_lld.param_groups[0]["lr"] if self.opt_lld else math.nan
        row = dict(epoch=self.epoch, lr_main=self.opt_main.param_groups[0]["lr"], lr_lld=lld_lr)
        row.update(
            {f"train_{k}": v for k, v in {**self.stage1_epoch(), **self.stage2_epoch()}.items()}
        )
        valid = self.evaluate("valid")
        for scheduler in self.schedulers:
            scheduler.step(valid["mae"])
        if valid["mae"] < self.best_valid_mae:  # selection on validation only
            self.best_valid_mae, self.best_epoch, self.bad_epochs = valid["mae"], self.epoch, 0
            self.best_state = model_weights(self.model, self.skip_text)
        else:
            self.bad_epochs += 1
        row.update({f"valid_{k}": v for k, v in valid.items()}, best_epoch=self.best_epoch)
        row["seconds"] = round(time.perf_counter() - start, 3)
        self.history.append(row)
        return row

    @property
    def done(self) -> bool:
        """True once ``epochs`` are run or early stopping has triggered (patience 0: never)."""
        stopped = self.config.patience > 0 and self.bad_epochs >= self.config.patience
        return self.epoch >= self.config.epochs or stopped

    def fit(self, *callbacks: Callback) -> dict[str, Any]:
        """Epochs until :attr:`done`, then the best weights' result (``valid`` and, with a test
        split, ``test`` metrics); each :class:`Callback`'s hooks at the start, after each epoch
        and at the end."""
        for callback in callbacks:
            callback.on_start(self)
        while not self.done:
            row = self.train_epoch()
            for callback in callbacks:
                callback.on_epoch(self, row)
        self.use_best()
        splits = [s for s in ("valid", "test") if s in self.datasets]
        self.result = {
            "seed": self.config.seed,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epoch,
            "n_labeled": int(self.labeled.sum()),
            "n_train": len(self.labeled),
            **{split: self.evaluate(split) for split in splits},
        }
        for callback in callbacks:
            callback.on_end(self, self.result)
        return self.result

    def use_best(self) -> None:
        """Load the best-validation weights into the model (no-op if none recorded)."""
        if self.best_state is not None:
            load_model_weights(self.model, self.best_state, self.skip_text)

    def _shuffle_seed(self, stage: int) -> int:
        """Each epoch and stage its own order, whatever the RNG state."""
        return (self.config.seed * 1_000_003 + self.epoch * 2 + stage) % 2**63

    def best_state_dict(self) -> dict[str, Any]:
        """The best weights (``kind="model"``, what evaluation needs) with the memories."""
        return {**self._header("model"), "model": self.best_state, "epoch": self.best_epoch}

    def state_dict(self) -> dict[str, Any]:
        """A copy of everything a resumed run needs (``kind="trainer"``): weights, optimisers,
        schedulers, memories, RNG, progress."""
        return {
            **self._header("trainer"),
            "model": model_weights(self.model, self.skip_text),
            "best_model": self.best_state,
            "optimizers": copy.deepcopy([o.state_dict() for o in self.optimizers]),
            "schedulers": copy.deepcopy([s.state_dict() for s in self.schedulers]),
            "rng": rng_state(),
            "epoch": self.epoch,
            "steps": [self.steps[1], self.steps[2]],
            "best_valid_mae": self.best_valid_mae,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "history": copy.deepcopy(self.history),
            "trace": [dataclasses.asdict(p) for p in self.trace],
            "result": copy.deepcopy(self.result),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`, or a :meth:`best_state_dict` as the best weights."""
        super().load_state_dict(state)
        self.best_epoch = int(state["best_epoch" if state["kind"] == "trainer" else "epoch"])
        if state["kind"] == "model":
            self.best_state = model_weights(self.model, self.skip_text)
            return
        saved = copy.deepcopy([*state["optimizers"], *state["schedulers"]])
        for obj, obj_state in zip(self.optimizers + self.schedulers, saved):
            obj.load_state_dict(obj_state)
        self.best_state, self.best_valid_mae = state["best_model"], float(state["best_valid_mae"])
        self.epoch, self.bad_epochs = int(state["epoch"]), int(state["bad_epochs"])
        self.steps = {1: int(state["steps"][0]), 2: int(state["steps"][1])}
        self.history, self.result = copy.deepcopy(state["history"]), copy.deepcopy(state["result"])
        self.trace = [TracePoint(**p) for p in state["trace"]]
        set_rng_state(state["rng"])


def model_weights(model: MMIM, skip_text: bool) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's weights; ``skip_text`` leaves out the text encoder (reloaded by
    name)."""
    return {
        k: v.detach().to("cpu", copy=True)
        for k, v in model.state_dict().items()
        if not (skip_text and k.startswith("text_model."))
    }


def load_model_weights(model: MMIM, state: Mapping[str, torch.Tensor], skip_text: bool) -> None:
    """Inverse of :func:`model_weights`: only a skipped text encoder may be absent."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not (skip_text and k.startswith("text_model."))]
    if bad or unexpected:
        raise CheckpointError(
            f"checkpoint weights do not fit the model: missing {bad[:3]}, "
            f"unexpected {list(unexpected)[:3]}"
        )
