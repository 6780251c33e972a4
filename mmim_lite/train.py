"""Training MMIM with Algorithm 1; evaluation, checkpoints and the multi-seed protocol.

Each epoch: ``stage1_epoch`` updates only the q-predictors with L_lld (Eq. 4, lr eta_lld), the
encoders running under ``torch.no_grad()`` (no graph through BERT); ``stage2_epoch`` updates all
but the q-predictors with L_main (Eq. 14, lr eta_main, text encoder lr_bert), pushing detached h_y
into the history memory after H(Y) is estimated.  ``fit`` adds ReduceLROnPlateau and early
stopping on the **validation** MAE only and reports the test metrics of the best-validation
weights.  With ``out_dir`` a :class:`Trainer` writes ``config.json``, ``history.csv``,
``trace.csv``, ``checkpoint.pt`` (resumable), ``best.pt`` (best weights) and ``metrics.json``;
checkpoints hold only tensors and plain containers (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm  # plain bars: tqdm.auto warns inside Jupyter without ipywidgets

from . import metrics as msa
from .config import MMIMConfig, check_resumable
from .data import MSADataset, collate_batch
from .model import MMIM
from .runtime import (CHECKPOINT_FORMAT, CheckpointError, load_checkpoint, resolve_device, rng_state,
                      seed_everything, set_rng_state, write_csv, write_json)

__all__ = ["TrainingDivergedError", "CheckpointError", "Trainer", "run_seeds", "summarize_runs",
           "seed_everything", "resolve_device", "load_checkpoint", "write_json", "write_csv"]


class TrainingDivergedError(FloatingPointError):
    """A loss term became NaN or infinite; the message names the term, epoch and step."""

    def __init__(self, term: str, epoch: int, step: int, stage: int) -> None:
        super().__init__(f"loss term {term!r} is not finite at epoch {epoch}, stage {stage}, step {step}")
        self.term, self.epoch, self.step, self.stage = term, epoch, step, stage


RANDOM_ENCODERS = ("tiny", "bert-base-random")  # randomly initialised: their weights must be saved


def _skips_text(config: MMIMConfig) -> bool:
    """A frozen *pretrained* encoder is reloaded from its source, not stored in every checkpoint."""
    return config.freeze_text and config.text_encoder not in RANDOM_ENCODERS


def _cpu_state(model: MMIM) -> dict[str, torch.Tensor]:
    """The model's weights on the CPU, without a frozen pretrained text encoder (saves ~90 MB for
    MiniLM, ~440 MB for BERT-base per copy; it is reloaded unchanged by name)."""
    skip = "text_model." if _skips_text(model.config) else None
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            if skip is None or not k.startswith(skip)}


def _load_weights(model: MMIM, state: Mapping[str, torch.Tensor]) -> None:
    """Inverse of :func:`_cpu_state`: only the frozen pretrained text encoder may be absent."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    allowed = "text_model." if _skips_text(model.config) else None
    bad = [k for k in missing if allowed is None or not k.startswith(allowed)]
    if bad or unexpected:
        raise CheckpointError(f"checkpoint weights do not fit the model: missing {bad[:3]}, "
                              f"unexpected {list(unexpected)[:3]}")


# -------------------- the trainer -----------------------------------------------------------
class Trainer:
    """Algorithm 1 for one config and one dataset (``{"train", "valid", "test"}`` of Samples).

    ``device``: "auto" | "cpu" | "cuda[:N]"; ``out_dir``: where run files go (None: nothing is
    written); ``progress``: tqdm bars (None: only on a terminal); ``text_encoder``: an already
    resolved ``(model, tokenizer)``; ``text_cache``: precomputed ``{split: (N, d_t)}`` [CLS]
    features for a frozen pretrained encoder (see :meth:`text_features`).
    """

    def __init__(self, config: MMIMConfig, splits: Mapping[str, Sequence[Any]], *,
                 device: str | torch.device | None = "auto", out_dir: str | Path | None = None,
                 progress: bool | None = None, text_encoder: tuple[Any, Any] | None = None,
                 text_cache: Mapping[str, torch.Tensor] | None = None) -> None:
        if not isinstance(config, MMIMConfig):
            raise TypeError(f"config must be an MMIMConfig, got {type(config).__name__}")
        missing = [s for s in ("train", "valid") if s not in splits or len(splits[s]) == 0]
        if missing:
            raise ValueError(f"splits must contain non-empty 'train' and 'valid' (missing/empty: {missing})")
        self.config, self.device = config, resolve_device(device)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = sys.stderr.isatty() if progress is None else bool(progress)
        seed_everything(config.seed)
        first = splits["train"][0]
        self.visual_dim, self.acoustic_dim = int(first.visual.shape[1]), int(first.acoustic.shape[1])
        self.model = MMIM(config, self.visual_dim, self.acoustic_dim, text_encoder).to(self.device)
        self.datasets = {name: MSADataset(samples, self.model.tokenizer, max_length=config.max_length)
                         for name, samples in splits.items() if len(samples) > 0}
        wd = config.weight_decay
        pred_params = self.model.predictor_parameters()
        self.opt_lld = torch.optim.Adam(pred_params, lr=config.lr_lld, weight_decay=wd, fused=True) if pred_params else None
        groups = [{"params": self.model.main_parameters(), "lr": config.lr_main}]
        if self.model.text_parameters():
            groups.append({"params": self.model.text_parameters(), "lr": config.lr_bert})
        self.opt_main = torch.optim.Adam(groups, weight_decay=wd, fused=True)  # one fused kernel per step
        plateau = dict(mode="min", factor=config.lr_factor, patience=config.lr_patience)
        self.sched_main = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt_main, **plateau)
        self.sched_lld = (torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt_lld, **plateau)
                          if self.opt_lld else None)
        self.use_cache = config.freeze_text and config.cache_text_features
        self._text_cache: dict[str, torch.Tensor] = {k: v.to(self.device) for k, v in (text_cache or {}).items()}
        self.epoch, self.steps = 0, {1: 0, 2: 0}
        self.best_valid_mae, self.best_epoch, self.bad_epochs = math.inf, 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self.trace: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None
        if self.out_dir is not None:
            write_json(config.to_dict(), self.out_dir / "config.json")

    # -- helpers ---------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda" and self.config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _loader(self, split: str, shuffle: bool, seed: int = 0) -> DataLoader:
        if split not in self.datasets:
            raise ValueError(f"no {split!r} split in this trainer (have {sorted(self.datasets)})")
        gen = torch.Generator().manual_seed(seed)  # per-epoch order: independent of any RNG state
        size = self.config.batch_size if shuffle else self.config.eval_batch_size
        return DataLoader(self.datasets[split], batch_size=size, shuffle=shuffle, generator=gen,
                          collate_fn=collate_batch, num_workers=0)

    def _batches(self, split: str, shuffle: bool, seed: int, desc: str,
                 limit: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        loader = self._loader(split, shuffle, seed)
        total = len(loader) if limit is None else min(limit, len(loader))
        with tqdm(itertools.islice(loader, total), total=total, desc=desc, leave=False,
                  disable=not self.progress, dynamic_ncols=True) as bar:
            for batch in bar:
                yield {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def text_features(self, split: str) -> torch.Tensor:
        """[CLS] features (N, d_t) of a split from the frozen text encoder, computed once."""
        if split not in self._text_cache:
            self.model.eval()
            rows = []
            with torch.no_grad():
                for batch in self._batches(split, False, 0, f"caching [CLS] {split}"):
                    with self._autocast():
                        rows.append(self.model.encode_text(batch).float())
            self._text_cache[split] = torch.cat(rows)
        return self._text_cache[split]

    def _h_t(self, split: str, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        return self.text_features(split)[batch["index"]] if self.use_cache else None

    def _epoch_seed(self, stage: int) -> int:
        return (self.config.seed * 1_000_003 + self.epoch * 2 + stage) % 2**63

    def _step(self, stage: int, terms: dict[str, torch.Tensor], loss: torch.Tensor,
              optimizer: torch.optim.Optimizer, params: list, acc: dict[str, Any]) -> None:
        """One update: finiteness check naming the term, backward, clipping, step, loss trace
        (the mean of every ``trace_every`` steps, as Fig. 2)."""
        self.steps[stage] += 1
        values = dict(zip(terms, torch.stack([t.detach().float() for t in terms.values()]).cpu().tolist()))
        for name, value in values.items():
            if not math.isfinite(value):
                raise TrainingDivergedError(name, self.epoch, self.steps[stage], stage)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.config.clip)
        optimizer.step()
        acc["n"] += 1
        acc["sums"] = {k: acc["sums"].get(k, 0.0) + v for k, v in values.items()}
        acc["window"].append(values)
        if len(acc["window"]) == self.config.trace_every:
            window, acc["window"] = acc["window"], []
            self.trace.append({"epoch": self.epoch, "stage": stage, "step": self.steps[stage],
                               **{k: sum(w[k] for w in window) / len(window) for k in values}})

    # -- Algorithm 1 -----------------------------------------------------------------------
    def stage1_epoch(self) -> dict[str, float]:
        """Stage 1: update only the q-predictors with L_lld (Eq. 4); returns the epoch mean."""
        if self.opt_lld is None:
            return {}
        self.model.train()
        n_batches = math.ceil(len(self.datasets["train"]) / self.config.batch_size)
        limit = max(1, math.ceil(self.config.stage1_fraction * n_batches))
        acc: dict[str, Any] = {"n": 0, "sums": {}, "window": []}
        params = self.model.predictor_parameters()
        for batch in self._batches("train", True, self._epoch_seed(1), f"epoch {self.epoch} stage 1", limit):
            with torch.no_grad(), self._autocast():  # encoders are not updated here
                h = self.model.encode(batch, self._h_t("train", batch))
            loss = self.model.lld_loss(*(x.float() for x in h))
            self._step(1, {"lld": loss}, loss, self.opt_lld, params, acc)
        return {k: v / acc["n"] for k, v in acc["sums"].items()}

    def stage2_epoch(self) -> dict[str, float]:
        """Stage 2: update all but the q-predictors with L_main (Eq. 14); returns epoch means."""
        self.model.train()
        pred_params = self.model.predictor_parameters()
        params = [p for g in self.opt_main.param_groups for p in g["params"]]
        acc: dict[str, Any] = {"n": 0, "sums": {}, "window": []}
        for p in pred_params:  # q is held fixed: gradients still flow *through* it to x and y
            p.requires_grad_(False)
        try:
            for batch in self._batches("train", True, self._epoch_seed(2), f"epoch {self.epoch} stage 2"):
                with self._autocast():
                    out = self.model(batch, h_t=self._h_t("train", batch), update_memory=True)
                terms = self.model.losses(out, batch["labels"])
                self._step(2, terms, terms["main"], self.opt_main, params, acc)
        finally:
            for p in pred_params:
                p.requires_grad_(True)
        return {k: v / max(acc["n"], 1) for k, v in acc["sums"].items()}

    @torch.no_grad()
    def predict(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(predictions, truths)`` of the current model on a split, in dataset order."""
        self.model.eval()
        preds, truths = [], []
        for batch in self._batches(split, False, 0, f"evaluate {split}"):
            with self._autocast():
                preds.append(self.model.predict(batch, self._h_t(split, batch)).float().cpu())
            truths.append(batch["labels"].float().cpu())
        return torch.cat(preds).numpy().astype(np.float64), torch.cat(truths).numpy().astype(np.float64)

    def evaluate(self, split: str = "test") -> dict[str, float]:
        """:func:`metrics.msa_metrics` of the current model on ``split``."""
        return msa.msa_metrics(*self.predict(split))

    # -- epochs, selection, fit ------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once ``epochs`` are run or early stopping has triggered."""
        stopped = self.config.patience > 0 and self.bad_epochs >= self.config.patience
        return self.epoch >= self.config.epochs or stopped

    def train_epoch(self) -> dict[str, Any]:
        """One epoch (stage 1, stage 2, validation, LR schedule, selection); its history row."""
        start = time.perf_counter()
        self.epoch += 1
        lrs = {"lr_main": self.opt_main.param_groups[0]["lr"],
               "lr_lld": self.opt_lld.param_groups[0]["lr"] if self.opt_lld else float("nan")}
        s1, s2 = self.stage1_epoch(), self.stage2_epoch()
        valid = self.evaluate("valid")
        for sched in (self.sched_main, self.sched_lld):
            if sched is not None:
                sched.step(valid["mae"])
        if valid["mae"] < self.best_valid_mae:  # selection on validation only
            self.best_valid_mae, self.best_epoch, self.bad_epochs = valid["mae"], self.epoch, 0
            self.best_state = _cpu_state(self.model)
            if self.out_dir is not None:
                self._save_best({"valid": valid})
        else:
            self.bad_epochs += 1
        row = {"epoch": self.epoch, **lrs, **{f"train_{k}": v for k, v in {**s1, **s2}.items()},
               **{f"valid_{k}": v for k, v in valid.items()}, "best_epoch": self.best_epoch,
               "seconds": round(time.perf_counter() - start, 3)}
        self.history.append(row)
        if self.out_dir is not None:
            self.save_checkpoint(self.out_dir / "checkpoint.pt")
            write_csv(self.history, self.out_dir / "history.csv")
            write_csv(self.trace, self.out_dir / "trace.csv")
        return row

    def use_best(self) -> None:
        """Load the best-validation weights into the model (no-op if none recorded)."""
        if self.best_state is not None:
            _load_weights(self.model, self.best_state)

    def fit(self) -> dict[str, Any]:
        """Run epochs until ``config.epochs`` or early stopping, then evaluate the best weights.

        Returns ``{"seed", "best_epoch", "epochs_run", "valid": metrics, "test": metrics}``
        (test only if a test split exists) and writes ``metrics.json`` with an ``out_dir``."""
        epochs = tqdm(total=self.config.epochs, initial=self.epoch, desc="epochs", disable=not self.progress)
        while not self.done:
            row = self.train_epoch()
            epochs.update(1)
            epochs.set_postfix(valid_mae=f"{row['valid_mae']:.3f}", best=self.best_epoch)
        epochs.close()
        self.use_best()
        result: dict[str, Any] = {"seed": self.config.seed, "best_epoch": self.best_epoch,
                                  "epochs_run": self.epoch, "valid": self.evaluate("valid")}
        if "test" in self.datasets:
            result["test"] = self.evaluate("test")
        self.result = result
        if self.out_dir is not None:
            self._save_best(result)
            write_json(result, self.out_dir / "metrics.json")
        return result

    # -- checkpoints -----------------------------------------------------------------------
    def _header(self, kind: str) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "kind": kind, "config": self.config.to_dict(),
                "visual_dim": self.visual_dim, "acoustic_dim": self.acoustic_dim}

    def _save_best(self, metrics: Mapping[str, Any]) -> None:
        state = {**self._header("model"), "model": self.best_state, "epoch": self.best_epoch,
                 "memories": self.model.memory_state_dict(), "metrics": copy.deepcopy(dict(metrics))}
        torch.save(state, self.out_dir / "best.pt")

    def state_dict(self) -> dict[str, Any]:
        """Full resumable state: model, optimisers, schedulers, memories, RNG, progress, history."""
        opt = lambda o: o.state_dict() if o is not None else None  # noqa: E731
        return {**self._header("trainer"), "model": _cpu_state(self.model), "best_model": self.best_state,
                "optimizers": {"main": opt(self.opt_main), "lld": opt(self.opt_lld)},
                "schedulers": {"main": opt(self.sched_main), "lld": opt(self.sched_lld)},
                "memories": self.model.memory_state_dict(), "rng": rng_state(), "epoch": self.epoch,
                "steps": [self.steps[1], self.steps[2]], "best_valid_mae": self.best_valid_mae,
                "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "history": copy.deepcopy(self.history), "trace": copy.deepcopy(self.trace),
                "result": copy.deepcopy(self.result)}

    def save_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)  # atomic: an interrupted save never leaves a broken checkpoint

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (``kind="trainer"``) or best weights (``kind="model"``)."""
        if (state["visual_dim"], state["acoustic_dim"]) != (self.visual_dim, self.acoustic_dim):
            raise CheckpointError(f"checkpoint expects visual/acoustic dims {state['visual_dim']}/"
                                  f"{state['acoustic_dim']}, data has {self.visual_dim}/{self.acoustic_dim}")
        _load_weights(self.model, state["model"])
        self.model.load_memory_state_dict(state["memories"])
        if state["kind"] == "model":
            self.best_state, self.best_epoch = _cpu_state(self.model), int(state["epoch"])
            return
        self.opt_main.load_state_dict(state["optimizers"]["main"])
        self.sched_main.load_state_dict(state["schedulers"]["main"])
        if self.opt_lld is not None:
            self.opt_lld.load_state_dict(state["optimizers"]["lld"])
            self.sched_lld.load_state_dict(state["schedulers"]["lld"])
        self.best_state = state["best_model"]
        self.epoch, self.steps = int(state["epoch"]), {1: int(state["steps"][0]), 2: int(state["steps"][1])}
        self.best_valid_mae, self.best_epoch = float(state["best_valid_mae"]), int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.history, self.trace = list(state["history"]), list(state["trace"])
        self.result = state.get("result")
        set_rng_state(state["rng"])

    @classmethod
    def from_checkpoint(cls, path: str | Path, splits: Mapping[str, Sequence[Any]],
                        config: MMIMConfig | None = None, **kwargs: Any) -> "Trainer":
        """A Trainer restored from ``checkpoint.pt`` (resume) or ``best.pt`` (evaluation only), with
        the checkpoint's config or ``config``, which may only raise its ``epochs`` and ``patience``
        (:func:`check_resumable`). ``kwargs`` go to :class:`Trainer` (device, out_dir, ...)."""
        state = load_checkpoint(path)
        stored = MMIMConfig.from_dict(state["config"])
        check_resumable(stored, config or stored, str(path))
        trainer = cls(config or stored, splits, **kwargs)
        trainer.load_state_dict(state)
        return trainer


# -------------------- multi-seed protocol ---------------------------------------------------
def run_seeds(config: MMIMConfig, seeds: Iterable[int], splits: Mapping[str, Sequence[Any]], *,
              out_dir: str | Path | None = None, device: str = "auto", progress: bool | None = None,
              resume: bool = False) -> list[dict[str, Any]]:
    """Train one model per seed (the paper's 5-run protocol); a list of :meth:`Trainer.fit` results.

    Seed ``s`` writes into ``out_dir/seed_<s>/``.  ``resume=True`` continues each seed from its
    ``checkpoint.pt`` (a finished seed is read back from ``metrics.json`` unless ``config`` raises
    its ``epochs`` or ``patience``).  A frozen pretrained encoder's [CLS] features are shared."""
    results, shared_cache = [], None
    for seed in seeds:
        cfg = config.replace(seed=int(seed))
        run_dir = Path(out_dir) / f"seed_{seed}" if out_dir is not None else None
        kwargs = dict(device=device, out_dir=run_dir, progress=progress, text_cache=shared_cache)
        if resume and run_dir is not None and (run_dir / "checkpoint.pt").is_file():
            trainer = Trainer.from_checkpoint(run_dir / "checkpoint.pt", splits, config=cfg, **kwargs)
            if trainer.done and (run_dir / "metrics.json").is_file():
                results.append(json.loads((run_dir / "metrics.json").read_text()))
                continue
        else:
            trainer = Trainer(cfg, splits, **kwargs)
        results.append(trainer.fit())
        if trainer.use_cache and _skips_text(cfg):
            shared_cache = {k: v.cpu() for k, v in trainer._text_cache.items()}  # seed-independent
    return results


def summarize_runs(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of the valid/test metrics (:func:`metrics.summarize`)."""
    out: dict[str, Any] = {"n_runs": len(results), "seeds": [r.get("seed") for r in results]}
    for split in ("valid", "test"):
        if results and all(split in r for r in results):
            out[split] = msa.summarize([r[split] for r in results])
    return out
