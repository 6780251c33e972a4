"""Algorithm 1: training MMIM, evaluating it, and the paper's multi-seed protocol.

One epoch (:meth:`Trainer.train_epoch`) is, as in the paper's Algorithm 1: **stage 1**
(:meth:`Trainer.stage1_epoch`), where only the q-predictors learn by minimising L_lld (Eq. 4);
**stage 2** (:meth:`Trainer.stage2_epoch`), where everything but q learns by minimising L_main
(Eq. 14); then validation, ReduceLROnPlateau and selection on the **validation** MAE only.
Files and checkpoints are written with :mod:`mmim_lite.runtime`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import itertools
import json
import math
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm  # plain bars: tqdm.auto warns inside Jupyter without ipywidgets

from .batching import MSADataset, collate_batch
from .config import MMIMConfig, check_resumable
from .metrics import msa_metrics, summarize
from .model import MMIM
from .runtime import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_checkpoint,
    load_model_weights,
    model_weights,
    resolve_device,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
    write_csv,
    write_json,
)
from .text import RANDOM_ENCODERS

#: seed of the permutation that picks the labelled training clips (``labeled_fraction`` < 1)
LABEL_SUBSET_SEED = 20211107

__all__ = [
    "LABEL_SUBSET_SEED",
    "TrainingDivergedError",
    "TracePoint",
    "Trainer",
    "epoch_line",
    "gradient_trace",
    "read_checkpoint",
    "run_seeds",
    "summarize_runs",
]

#: keys of every checkpoint, and those only a trainer's (``kind="trainer"``, resumable) has
_CHECKPOINT_KEYS = ("kind", "config", "visual_dim", "acoustic_dim", "memories", "model", "epoch")
_TRAINER_KEYS = (
    "best_model",
    "optimizers",
    "schedulers",
    "rng",
    "steps",
    "best_valid_mae",
    "best_epoch",
    "bad_epochs",
    "history",
    "trace",
    "result",
)


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


class Trainer:
    """Algorithm 1 for one config and one dataset (``{"train", "valid", "test"}`` lists of Samples).

    ``device``: "auto" | "cpu" | "cuda[:N]"; ``out_dir``: where run files go (None: nothing is
    written); ``progress``: tqdm bars (None: only on a terminal); ``log_epochs``: one line per epoch
    on stderr (:func:`epoch_line`); ``text_encoder``: an already resolved ``(model, tokenizer)``;
    ``text_cache``: precomputed ``{split: (N, d_t)}`` [CLS] features of a frozen pretrained encoder
    (:meth:`text_features`)."""

    def __init__(
        self,
        config: MMIMConfig,
        splits: Mapping[str, Sequence[Any]],
        *,
        device: str | torch.device | None = "auto",
        out_dir: str | Path | None = None,
        progress: bool | None = None,
        log_epochs: bool = False,
        text_encoder: tuple[Any, Any] | None = None,
        text_cache: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        missing = [s for s in ("train", "valid") if len(splits.get(s, ())) == 0]
        if missing:
            raise ValueError(
                f"splits must contain non-empty 'train' and 'valid' (missing/empty: {missing})"
            )
        self.config, self.device = config, resolve_device(device)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.log_epochs = log_epochs
        seed_everything(config.seed)
        # labeled_fraction: the first share of one fixed permutation (the same clips for every seed
        # and fraction)
        n_train = len(splits["train"])
        labeled = np.zeros(n_train, dtype=bool)
        labeled[
            np.random.default_rng(LABEL_SUBSET_SEED).permutation(n_train)[
                : max(1, round(config.labeled_fraction * n_train))
            ]
        ] = True
        if not config.use_unlabeled:
            splits = {**splits, "train": [x for x, keep in zip(splits["train"], labeled) if keep]}
            labeled = labeled[labeled]
        self.labeled = torch.from_numpy(labeled)  #: per training clip: is its label used?
        first = splits["train"][0]
        self.visual_dim, self.acoustic_dim = (
            int(first.visual.shape[1]),
            int(first.acoustic.shape[1]),
        )
        self.model = MMIM(config, self.visual_dim, self.acoustic_dim, text_encoder).to(self.device)
        self.datasets = {
            name: MSADataset(samples, self.model.tokenizer, max_length=config.max_length)
            for name, samples in splits.items()
            if len(samples) > 0
        }
        # a frozen *pretrained* encoder is reloaded by name, never stored in a checkpoint
        self.skip_text = config.freeze_text and config.text_encoder not in RANDOM_ENCODERS
        # Algorithm 1's two optimisers: theta_q (stage 1) and all the rest (stage 2)
        q_params, wd = self.model.predictor_parameters(), config.weight_decay
        self.opt_lld = (
            torch.optim.Adam(q_params, lr=config.lr_lld, weight_decay=wd, fused=True)
            if q_params
            else None
        )
        groups = [{"params": self.model.main_parameters(), "lr": config.lr_main}]
        if self.model.text_parameters():
            groups.append({"params": self.model.text_parameters(), "lr": config.lr_bert})
        self.opt_main = torch.optim.Adam(groups, weight_decay=wd, fused=True)
        self.optimizers = [opt for opt in (self.opt_main, self.opt_lld) if opt is not None]
        self.schedulers = [
            torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=config.lr_factor, patience=config.lr_patience
            )
            for opt in self.optimizers
        ]
        self._text_cache = {k: v.to(self.device) for k, v in (text_cache or {}).items()}
        self.epoch, self.steps = 0, {1: 0, 2: 0}
        self.best_valid_mae, self.best_epoch, self.bad_epochs = math.inf, 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []  #: one row per epoch (history.csv)
        self.trace: list[TracePoint] = []  #: the loss trace of Fig. 2 (trace.csv)
        self.result: dict[str, Any] | None = None
        if self.out_dir is not None:
            write_json(config.to_dict(), self.out_dir / "config.json")

    def stage1_epoch(self) -> dict[str, float]:
        """Stage 1: minimise L_lld (Eq. 4) over theta_q only, on D_sub (the first
        ``stage1_fraction`` of the shuffled batches). Returns the epoch mean ({} without BA
        pairs)."""
        if self.opt_lld is None:
            return {}
        self.model.train()
        rows: list[dict[str, float]] = []
        n_batches = math.ceil(len(self.datasets["train"]) / self.config.batch_size)
        d_sub = max(1, math.ceil(self.config.stage1_fraction * n_batches))
        for batch in self._batches(
            "train", self._shuffle_seed(1), d_sub, f"epoch {self.epoch} stage 1"
        ):
            with (
                torch.no_grad(),
                self._autocast(),
            ):  # h_t, h_v, h_a as fixed inputs: no graph to the encoders
                h = self.model.encode(batch, self._h_t("train", batch))
            loss = self.model.lld_loss(*(x.float() for x in h))
            self._step(1, rows, {"lld": loss}, loss, self.opt_lld)
        return _mean(rows)

    def stage2_epoch(self) -> dict[str, float]:
        """Stage 2: minimise L_main = L_task + alpha L_CPC + beta L_BA (Eq. 14) over all parameters
        but q's. Returns the epoch means of every term."""
        self.model.train()
        rows: list[dict[str, float]] = []
        q_params = self.model.predictor_parameters()
        for p in q_params:  # q held fixed; its inputs h_x and h_y still get the gradient of log q
            p.requires_grad_(False)
        try:
            for batch in self._batches(
                "train", self._shuffle_seed(2), None, f"epoch {self.epoch} stage 2"
            ):
                # H(Y) reads the memory, then the batch is pushed; only full batches enter the
                # memory,
                # so an epoch's last, partial batch never becomes the next epoch's whole history
                full = len(batch["labels"]) == self.config.batch_size
                if (
                    not self.labeled.all()
                ):  # unlabelled clips: NaN label (no task loss, predicted polarity)
                    known = self.labeled[batch["index"].cpu()].to(self.device)
                    batch["labels"] = torch.where(known, batch["labels"], torch.nan)
                with self._autocast():
                    out = self.model(batch, h_t=self._h_t("train", batch), update_memory=full)
                terms = self.model.losses(out, batch["labels"])
                grads = (
                    functools.partial(gradient_trace, self.model, terms)
                    if self.config.trace_grads
                    else None
                )
                self._step(2, rows, terms, terms["main"], self.opt_main, grads)
        finally:
            for p in q_params:
                p.requires_grad_(True)
        return _mean(rows)

    def _step(
        self,
        stage: int,
        rows: list[dict[str, float]],
        terms: dict[str, torch.Tensor],
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        instruments: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        """One update: every term finite (else the error names it), backward, clipping, step, trace;
        ``instruments``: called before the backward pass of a traced step, into its trace point."""
        self.steps[stage] += 1
        traced = (len(rows) + 1) % self.config.trace_every == 0
        values = dict(
            zip(terms, torch.stack([t.detach().float() for t in terms.values()]).cpu().tolist())
        )
        for name, value in values.items():
            if not math.isfinite(value):
                raise TrainingDivergedError(name, self.epoch, self.steps[stage], stage)
        grads = instruments() if traced and instruments is not None else {}
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip > 0:
            torch.nn.utils.clip_grad_norm_(
                [p for g in optimizer.param_groups for p in g["params"]], self.config.clip
            )
        optimizer.step()
        rows.append(values)
        if traced:
            self.trace.append(
                TracePoint(
                    self.epoch,
                    stage,
                    self.steps[stage],
                    _mean(rows[-self.config.trace_every :]),
                    grads,
                )
            )

    def train_epoch(self) -> dict[str, Any]:
        """One epoch: stage 1, stage 2, validation, LR schedule, selection; returns its history
        row."""
        start = time.perf_counter()
        self.epoch += 1
        lrs = {
            "lr_main": self.opt_main.param_groups[0]["lr"],
            "lr_lld": self.opt_lld.param_groups[0]["lr"] if self.opt_lld else float("nan"),
        }
        s1, s2 = self.stage1_epoch(), self.stage2_epoch()
        valid = self.evaluate("valid")
        for scheduler in self.schedulers:
            scheduler.step(valid["mae"])
        if valid["mae"] < self.best_valid_mae:  # selection on validation only
            self.best_valid_mae, self.best_epoch, self.bad_epochs = valid["mae"], self.epoch, 0
            self.best_state = model_weights(self.model, self.skip_text)
            self._save_best({"valid": valid})
        else:
            self.bad_epochs += 1
        row = {
            "epoch": self.epoch,
            **lrs,
            **{f"train_{k}": v for k, v in {**s1, **s2}.items()},
            **{f"valid_{k}": v for k, v in valid.items()},
            "best_epoch": self.best_epoch,
            "seconds": round(time.perf_counter() - start, 3),
        }
        self.history.append(row)
        if self.out_dir is not None:
            save_checkpoint(self.state_dict(), self.out_dir / "checkpoint.pt")
            write_csv(self.history, self.out_dir / "history.csv")
            write_csv(
                [
                    {"epoch": p.epoch, "stage": p.stage, "step": p.step, **p.losses, **p.grads}
                    for p in self.trace
                ],
                self.out_dir / "trace.csv",
            )
        return row

    @property
    def done(self) -> bool:
        """True once ``epochs`` are run or early stopping has triggered (patience 0: never)."""
        stopped = self.config.patience > 0 and self.bad_epochs >= self.config.patience
        return self.epoch >= self.config.epochs or stopped

    def fit(
        self, on_epoch: Callable[[Trainer, dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Epochs until :attr:`done`, then the best weights' result (``valid`` and, with a test
        split, ``test`` metrics; also ``metrics.json``). ``on_epoch(trainer, row)`` runs after each
        epoch with its history row; an exception it raises stops the run (e.g. a hyper-parameter
        search pruning it)."""
        with tqdm(
            total=self.config.epochs, initial=self.epoch, desc="epochs", disable=not self.progress
        ) as bar:
            while not self.done:
                row = self.train_epoch()
                if self.log_epochs:
                    print(epoch_line(self, row), file=sys.stderr, flush=True)
                if on_epoch is not None:
                    on_epoch(self, row)
                bar.update(1)
                bar.set_postfix(valid_mae=f"{row['valid_mae']:.3f}", best=self.best_epoch)
        self.use_best()
        result = {
            "seed": self.config.seed,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epoch,
            "n_labeled": int(self.labeled.sum()),
            "n_train": len(self.labeled),
            "valid": self.evaluate("valid"),
        }
        if "test" in self.datasets:
            result["test"] = self.evaluate("test")
        self.result = result
        self._save_best(result)
        if self.out_dir is not None:
            write_json(result, self.out_dir / "metrics.json")
        return result

    def predict(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(predictions, truths)`` of the current model on a split, in dataset order."""
        self.model.eval()
        preds, truths = [], []
        for batch in self._batches(split, desc=f"evaluate {split}"):
            with self._autocast():
                preds.append(self.model.predict(batch, self._h_t(split, batch)).float().cpu())
            truths.append(batch["labels"].float().cpu())
        return torch.cat(preds).numpy().astype(np.float64), torch.cat(truths).numpy().astype(
            np.float64
        )

    def representations(self, split: str) -> dict[str, np.ndarray]:
        """``{"t", "v", "a": (N, d_m)}``: h_m (Eq. 2) of the current model on a split, in dataset
        order (eval mode, float64)."""
        self.model.eval()
        with torch.no_grad(), self._autocast():
            rows = [
                self.model.encode(b, self._h_t(split, b))
                for b in self._batches(split, desc=f"encode {split}")
            ]
        return {
            m: torch.cat([r[i].float() for r in rows]).cpu().numpy().astype(np.float64)
            for i, m in enumerate("tva")
        }

    def evaluate(self, split: str = "test") -> dict[str, float]:
        """:func:`~mmim_lite.metrics.msa_metrics` of the current model on ``split``."""
        return msa_metrics(*self.predict(split))

    def use_best(self) -> None:
        """Load the best-validation weights into the model (no-op if none recorded)."""
        if self.best_state is not None:
            load_model_weights(self.model, self.best_state, self.skip_text)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda" and self.config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _batches(
        self, split: str, shuffle_seed: int | None = None, limit: int | None = None, desc: str = ""
    ) -> Iterator[dict[str, torch.Tensor]]:
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
        for batch in tqdm(
            itertools.islice(loader, total),
            total=total,
            desc=desc or split,
            leave=False,
            disable=not self.progress,
            dynamic_ncols=True,
        ):
            yield {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def text_features(self, split: str) -> torch.Tensor:
        """[CLS] features (N, d_t) of a split from the frozen text encoder, computed once."""
        if split not in self._text_cache:
            self.model.eval()
            with torch.no_grad(), self._autocast():
                rows = [
                    self.model.encode_text(b).float()
                    for b in self._batches(split, desc=f"[CLS] {split}")
                ]
            self._text_cache[split] = torch.cat(rows)
        return self._text_cache[split]

    def _h_t(self, split: str, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        return (
            self.text_features(split)[batch["index"]] if self.config.cache_text_features else None
        )

    def _shuffle_seed(
        self, stage: int
    ) -> int:  # each epoch and stage its own order, whatever the RNG state
        return (self.config.seed * 1_000_003 + self.epoch * 2 + stage) % 2**63

    def _header(self, kind: str) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "kind": kind,
            "config": self.config.to_dict(),
            "visual_dim": self.visual_dim,
            "acoustic_dim": self.acoustic_dim,
            "memories": self.model.memory_state_dict(),
        }

    def _save_best(self, metrics: Mapping[str, Any]) -> None:
        if self.out_dir is not None:
            save_checkpoint(
                {
                    **self._header("model"),
                    "model": self.best_state,
                    "epoch": self.best_epoch,
                    "metrics": copy.deepcopy(dict(metrics)),
                },
                self.out_dir / "best.pt",
            )

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: weights, optimisers, schedulers, memories, RNG,
        progress."""
        return {
            **self._header("trainer"),
            "model": model_weights(self.model, self.skip_text),
            "best_model": self.best_state,
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
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
        """Restore a :meth:`state_dict` (``kind="trainer"``) or best weights (``kind="model"``)."""
        if (state["visual_dim"], state["acoustic_dim"]) != (self.visual_dim, self.acoustic_dim):
            raise CheckpointError(
                f"checkpoint expects visual/acoustic dims {state['visual_dim']}/"
                f"{state['acoustic_dim']}, data has {self.visual_dim}/{self.acoustic_dim}"
            )
        load_model_weights(self.model, state["model"], self.skip_text)
        self.model.load_memory_state_dict(state["memories"])
        if state["kind"] == "model":
            self.best_state, self.best_epoch = (
                model_weights(self.model, self.skip_text),
                int(state["epoch"]),
            )
            return
        for obj, saved in zip(
            self.optimizers + self.schedulers, list(state["optimizers"]) + list(state["schedulers"])
        ):
            obj.load_state_dict(saved)
        self.best_state, self.epoch = state["best_model"], int(state["epoch"])
        self.steps = {1: int(state["steps"][0]), 2: int(state["steps"][1])}
        self.best_valid_mae, self.best_epoch = (
            float(state["best_valid_mae"]),
            int(state["best_epoch"]),
        )
        self.bad_epochs, self.result = int(state["bad_epochs"]), state["result"]
        self.history, self.trace = list(state["history"]), [TracePoint(**p) for p in state["trace"]]
        set_rng_state(state["rng"])

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        splits: Mapping[str, Sequence[Any]],
        config: MMIMConfig | None = None,
        *,
        state: tuple[dict[str, Any], MMIMConfig] | None = None,
        **kwargs: Any,
    ) -> Trainer:
        """A Trainer restored from ``checkpoint.pt`` (resume) or ``best.pt`` (evaluation), with the
        stored config or ``config``, which may only raise ``epochs`` and ``patience``
        (:func:`~mmim_lite.config.check_resumable`). ``state``: ``path``'s :func:`read_checkpoint`,
        if already read. ``kwargs`` go to :class:`Trainer`."""
        state, stored = state or read_checkpoint(path)
        check_resumable(stored, config or stored, str(path))
        trainer = cls(config or stored, splits, **kwargs)
        trainer.load_state_dict(state)
        return trainer


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], MMIMConfig]:
    """A checkpoint (:func:`~mmim_lite.runtime.load_checkpoint`) with every key of its kind, and
    its config."""
    state = load_checkpoint(path)
    need = _CHECKPOINT_KEYS + (_TRAINER_KEYS if state.get("kind") == "trainer" else ())
    if missing := [k for k in need if k not in state]:
        raise CheckpointError(
            f"{path}: expected a complete mmim-lite checkpoint, missing key(s) {missing}"
        )
    try:
        return state, MMIMConfig.from_dict(state["config"])
    except ValueError as err:
        raise CheckpointError(f"{path}, key 'config': {err}") from None


def epoch_line(trainer: Trainer, row: Mapping[str, Any]) -> str:
    """One epoch's progress as one line: seed, epoch, training loss (and its task term, the MAE),
    validation MAE (the task loss on the validation split), best epoch and seconds."""
    cfg, nan = trainer.config, math.nan
    return (
        f"seed {cfg.seed} epoch {row['epoch']}/{cfg.epochs}: train loss "
        f"{row.get('train_main', nan):.4f} (task {row.get('train_task', nan):.4f}), valid MAE "
        f"{row['valid_mae']:.4f}, best epoch {row['best_epoch']}, {row['seconds']:.1f} s"
    )


# -- the paper's protocol: several seeds ---------------------------------------------------------
def run_seeds(
    config: MMIMConfig,
    seeds: Iterable[int],
    splits: Mapping[str, Sequence[Any]],
    *,
    out_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool | None = None,
    resume: bool = False,
    on_epoch: Callable[[Trainer, dict[str, Any]], None] | None = None,
    devices: Sequence[str] | None = None,
    log_epochs: bool = False,
) -> list[dict[str, Any]]:
    """One :meth:`Trainer.fit` per seed (the paper reports the mean of five), into
    ``out_dir/seed_<s>/``.

    ``resume=True`` continues each seed from its ``checkpoint.pt`` (a finished seed is read back
    from ``metrics.json`` unless ``config`` raises ``epochs`` or ``patience``). A frozen pretrained
    encoder's [CLS] features are computed once for all seeds. ``log_epochs``: one line per epoch on
    stderr (:func:`epoch_line`).

    ``devices`` (e.g. ``["cuda:0", "cuda:1"]`` or ``["cpu", "cpu"]``): the seeds run in parallel,
    one spawned process per device slot, each with an equal share of the CPU threads; the run
    folders and results are those of the sequential run, which gives the same numbers on the same
    device type and thread count."""
    seeds = [int(s) for s in seeds]
    if devices:
        if on_epoch is not None:
            raise ValueError(
                "run_seeds: on_epoch cannot reach runs in other processes (devices given)"
            )
        slots = list(devices)[: len(seeds)]
        threads = max(1, torch.get_num_threads() // len(slots))
        with ProcessPoolExecutor(
            len(slots),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=torch.set_num_threads,
            initargs=(threads,),
        ) as pool:
            jobs = [
                pool.submit(
                    run_seeds,
                    config,
                    seeds[j :: len(slots)],
                    splits,
                    out_dir=out_dir,
                    device=str(dev),
                    progress=bool(progress),
                    resume=resume,
                    log_epochs=log_epochs,
                )
                for j, dev in enumerate(slots)
            ]
            by_seed = {r["seed"]: r for job in jobs for r in job.result()}
        return [by_seed[s] for s in seeds]
    results: list[dict[str, Any]] = []
    shared_cache = None
    for seed in seeds:
        cfg = config.replace(seed=seed)
        run_dir = Path(out_dir) / f"seed_{seed}" if out_dir is not None else None
        kwargs = dict(
            device=device,
            out_dir=run_dir,
            progress=progress,
            log_epochs=log_epochs,
            text_cache=shared_cache,
        )
        if resume and run_dir is not None and (run_dir / "checkpoint.pt").is_file():
            trainer = Trainer.from_checkpoint(
                run_dir / "checkpoint.pt", splits, config=cfg, **kwargs
            )
            if trainer.done and (run_dir / "metrics.json").is_file():
                results.append(json.loads((run_dir / "metrics.json").read_text()))
                continue
        else:
            trainer = Trainer(cfg, splits, **kwargs)
        results.append(trainer.fit(on_epoch))
        if cfg.cache_text_features and trainer.skip_text:  # seed-independent features
            shared_cache = {s: trainer.text_features(s).cpu() for s in trainer.datasets}
    return results


def summarize_runs(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of the valid/test metrics (:func:`~mmim_lite.metrics.summarize`)."""
    out: dict[str, Any] = {"n_runs": len(results), "seeds": [r.get("seed") for r in results]}
    for split in ("valid", "test"):
        if results and all(split in r for r in results):
            out[split] = summarize([r[split] for r in results])
    return out
