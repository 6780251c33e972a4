"""Experiments: the paper's protocol of several seeds (:func:`run_seeds`, :func:`summarize_runs`),
the data they run on (a data spec: :func:`data_spec`, :func:`load_data`), and a whole run into a
folder with its summary (:func:`run_experiment`, what ``mmim-lite train`` does). The text encoder
is loaded once per run, and a frozen one's [CLS] features are computed once for all seeds."""

from __future__ import annotations

import copy
import csv
import multiprocessing
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm  # plain bars: tqdm.auto warns inside Jupyter without ipywidgets

from .config import MMIMConfig, check_resumable
from .data import load_dataset
from .metrics import msa_metrics, summarize
from .runtime import (
    RunFiles,
    load_trainer,
    read_json,
    run_folder,
    strict_json,
    write_csv,
    write_json,
)
from .safepickle import DatasetFormatError
from .synth import SYNTH_DEFAULTS, SYNTH_OPTIONS, make_synthmosi
from .text import RANDOM_ENCODERS, resolve_text_encoder
from .train import Callback, Trainer, resolve_device, seed_everything

__all__ = [
    "check_all",
    "data_differences",
    "data_spec",
    "epoch_line",
    "load_data",
    "load_text_encoder",
    "run_experiment",
    "run_seeds",
    "summarize_runs",
]


# -- the data ------------------------------------------------------------------------------------
def data_spec(
    data: str | None,
    label_csv: str | None = None,
    synth: Mapping[str, Any] | None = None,
    stored: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What to load (``{"source": "synthmosi" | "file", ...}``, a run's data.json): ``data``
    ("synthmosi" or a released file or folder) with its ``label_csv`` or SynthMOSI options
    ``synth``, else ``stored`` (a run's data.json), else defaults."""
    if data is None:
        if stored is None:
            raise ValueError(
                "--data is required (no data.json beside the checkpoint or one folder up)"
            )
        if stored.get("source") != "synthmosi":
            return dict(stored)
        data = "synthmosi"
    if data.lower() == "synthmosi":
        base = stored.get("synth", {}) if stored and stored.get("source") == "synthmosi" else {}
        return {"source": "synthmosi", "synth": {**SYNTH_DEFAULTS, **base, **(synth or {})}}
    if synth:
        raise ValueError("SynthMOSI generator options apply only to --data synthmosi")
    if label_csv is not None and not Path(label_csv).expanduser().is_file():
        raise ValueError(f"--label-csv {label_csv!r}: no such file")
    return {
        "source": "file",
        "path": str(Path(data).expanduser().resolve()),
        "label_csv": str(Path(label_csv).expanduser().resolve()) if label_csv else None,
    }


def load_data(spec: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """``(splits, synth)`` for a data spec; ``synth`` is the SynthMOSI object or None."""
    if spec["source"] == "synthmosi":
        synth = make_synthmosi(**spec["synth"])
        return synth.splits, synth
    try:
        return load_dataset(spec["path"], label_csv=spec.get("label_csv")), None
    except DatasetFormatError as err:  # the library's keyword, as the option a user types
        raise ValueError(
            str(err).replace("expected label_csv=...", "expected --label-csv CSV")
        ) from None


def data_differences(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """How two data specs differ, each as "OPTION: X in data.json, Y here" (``source`` alone if
    that differs)."""
    flags = {
        "source": "--data",
        "path": "--data",
        "label_csv": "--label-csv",
        **{f"synth.{k}": flag for k, (flag, _) in SYNTH_OPTIONS.items()},
    }
    a, b = (
        {
            **{k: v for k, v in d.items() if k != "synth"},
            **{f"synth.{k}": v for k, v in d.get("synth", {}).items()},
        }
        for d in (before, now)
    )
    keys = ["source"] if a.get("source") != b.get("source") else sorted(set(a) | set(b))
    return [
        f"{flags.get(k, k)}: {a.get(k)!r} in data.json, {b.get(k)!r} here"
        for k in keys
        if a.get(k) != b.get(k)
    ]


def check_all(*steps: Callable[[], Any]) -> list[Any]:
    """The results of independent steps; the bad input of every step that fails in one
    ValueError."""
    results, errors = [], []
    for step in steps:
        try:
            results.append(step())
        except (ValueError, OSError) as err:
            results.append(None)
            errors.append(" ".join(str(err).split()))
    if errors:
        raise ValueError("; ".join(dict.fromkeys(errors)))
    return results


def load_text_encoder(config: MMIMConfig) -> tuple[Any, Any] | None:
    """The ``(model, tokenizer)`` of a pretrained text encoder, loaded once for a whole run; None
    for a randomly initialised one (each seed draws its own)."""
    if config.text_encoder in RANDOM_ENCODERS:
        return None
    return resolve_text_encoder(config.text_encoder)


# -- several seeds -------------------------------------------------------------------------------
def epoch_line(trainer: Trainer, row: Mapping[str, Any]) -> str:
    """One epoch's progress as one line: seed, epoch, training loss (and its task term, the MAE),
    validation MAE (the task loss on the validation split), best epoch and seconds."""
    cfg, nan = trainer.config, float("nan")
    return (
        f"seed {cfg.seed} epoch {row['epoch']}/{cfg.epochs}: train loss "
        f"{row.get('train_main', nan):.4f} (task {row.get('train_task', nan):.4f}), valid MAE "
        f"{row['valid_mae']:.4f}, best epoch {row['best_epoch']}, {row['seconds']:.1f} s"
    )


class _Progress(Callback):
    """A bar over the epochs (with the trainer's ``progress``); ``log``: one :func:`epoch_line` per
    epoch on stderr; then ``on_epoch(trainer, row)``."""

    def __init__(self, log: bool, on_epoch: Callable[[Trainer, dict[str, Any]], None] | None):
        self.log, self.hook, self.bar = log, on_epoch, None

    def on_start(self, trainer: Trainer) -> None:
        total, off = trainer.config.epochs, not trainer.progress
        self.bar = tqdm(total=total, initial=trainer.epoch, desc="epochs", disable=off)

    def on_epoch(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.bar.update(1)
        self.bar.set_postfix(valid_mae=f"{row['valid_mae']:.3f}", best=trainer.best_epoch)
        if self.log:
            print(epoch_line(trainer, row), file=sys.stderr, flush=True)
        if self.hook is not None:
            self.hook(trainer, row)

    def on_end(self, trainer: Trainer, result: dict[str, Any]) -> None:
        self.bar.close()


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
    text_encoder: tuple[Any, Any] | None = None,
) -> list[dict[str, Any]]:
    """One seeded :meth:`~mmim_lite.train.Trainer.fit` per seed (the paper reports the mean of
    five), with its run files in ``out_dir/seed_<s>/`` (:class:`~mmim_lite.runtime.RunFiles`).

    ``resume=True`` continues each seed from its ``checkpoint.pt`` (a finished seed is read back
    from ``metrics.json`` unless ``config`` raises ``epochs`` or ``patience``). ``on_epoch(trainer,
    row)``: after each epoch (an exception it raises stops the run, e.g. a search pruning it);
    ``log_epochs``: one :func:`epoch_line` per epoch on stderr. ``text_encoder``: the loaded
    pretrained encoder (default: :func:`load_text_encoder`, once); each seed fine-tunes its own
    copy, a frozen one is shared, and its [CLS] features are computed once for all seeds.

    ``devices`` (e.g. ``["cuda:0", "cuda:1"]`` or ``["cpu", "cpu"]``): the seeds run in parallel,
    one spawned process per device slot, each with an equal share of the CPU threads; the run
    folders and results are those of the sequential run, which gives the same numbers on the same
    device type and thread count."""
    seeds = [int(s) for s in seeds]
    encoder = text_encoder or load_text_encoder(config)
    if devices:
        if on_epoch is not None:
            raise ValueError(
                "run_seeds: on_epoch cannot reach runs in other processes (devices given)"
            )
        options = dict(out_dir=out_dir, progress=bool(progress), resume=resume)
        options.update(log_epochs=log_epochs, text_encoder=encoder)
        return _in_parallel(config, seeds, splits, devices, **options)
    results: list[dict[str, Any]] = []
    cache = None
    for seed in seeds:
        cfg = config.replace(seed=seed)
        run_dir = Path(out_dir) / f"seed_{seed}" if out_dir is not None else None
        fine_tuned = encoder is not None and not cfg.freeze_text  # each seed its own copy
        own = (copy.deepcopy(encoder[0]), encoder[1]) if fine_tuned else encoder
        kwargs = dict(device=device, progress=progress, text_encoder=own, text_cache=cache)
        if resume and run_dir is not None and (run_dir / "checkpoint.pt").is_file():
            trainer = load_trainer(run_dir / "checkpoint.pt", splits, config=cfg, **kwargs)
            if trainer.done and (run_dir / "metrics.json").is_file():
                results.append(read_json(run_dir / "metrics.json"))
                continue
        else:
            seed_everything(seed)
            trainer = Trainer(cfg, splits, **kwargs)
        files = [RunFiles(run_dir)] if run_dir is not None else []
        results.append(trainer.fit(*files, _Progress(log_epochs, on_epoch)))
        if cfg.cache_text_features and trainer.skip_text:  # seed-independent features
            cache = {s: trainer.text_features(s).cpu() for s in trainer.datasets}
    return results


def _in_parallel(
    config: MMIMConfig,
    seeds: list[int],
    splits: Mapping[str, Sequence[Any]],
    devices: Sequence[str],
    **options: Any,
) -> list[dict[str, Any]]:
    """:func:`run_seeds` with one spawned process per device slot (seeds dealt round-robin), each
    with an equal share of the CPU threads; ``options`` go to each process's run_seeds."""
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
                run_seeds, config, seeds[j :: len(slots)], splits, device=str(dev), **options
            )
            for j, dev in enumerate(slots)
        ]
        by_seed = {r["seed"]: r for job in jobs for r in job.result()}
    return [by_seed[s] for s in seeds]


def summarize_runs(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and std over seeds of the valid/test metrics (:func:`~mmim_lite.metrics.summarize`)."""
    out: dict[str, Any] = {"n_runs": len(results), "seeds": [r.get("seed") for r in results]}
    for split in ("valid", "test"):
        if results and all(split in r for r in results):
            out[split] = summarize([r[split] for r in results])
    return out


# -- a run into a folder -------------------------------------------------------------------------
def run_experiment(
    config: MMIMConfig,
    seeds: Sequence[int],
    spec: Mapping[str, Any],
    out: str | Path,
    *,
    device: str = "auto",
    devices: Sequence[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    log_epochs: bool | None = None,
) -> dict[str, Any]:
    """``config`` for each of ``seeds`` on the data ``spec`` into the folder ``out``, held by this
    process (:func:`~mmim_lite.runtime.run_folder`): its config.json and data.json, each seed's
    run files (:func:`run_seeds`), all seeds' history.csv (a seed column) and summary.json (mean
    and std over seeds and, on SynthMOSI, the Bayes-optimal oracle's metrics). Returns the summary.

    ``resume``: continue the run in ``out`` (refused if its data or config differ, but for raised
    ``epochs`` and ``patience``); ``overwrite``: replace it. ``devices``: the seeds in parallel,
    one process per device slot. ``log_epochs``: one line per epoch on stderr (default: in
    parallel or off a terminal)."""
    out, seeds = Path(out), [int(s) for s in seeds]
    slots = [str(resolve_device(d)) for d in devices or ()]
    device = ",".join(dict.fromkeys(slots)) if slots else str(resolve_device(device))
    with run_folder(out, resume=resume, overwrite=overwrite) as clear:  # one process
        if resume:  # continuing a run with other settings would mix two experiments
            _check_resumable(out, config, spec)
        (splits, synth), encoder = check_all(
            lambda: load_data(spec), lambda: load_text_encoder(config)
        )
        clear()
        write_json(config.to_dict(), out / "config.json")
        write_json(dict(spec), out / "data.json")
        log = (bool(slots) or not sys.stderr.isatty()) if log_epochs is None else log_epochs
        results = run_seeds(
            config,
            seeds,
            splits,
            out_dir=out,
            device=device,
            resume=resume,
            devices=slots,
            log_epochs=log,
            text_encoder=encoder,
        )
        history = []  # all seeds' per-epoch rows in one table, with a seed column
        for seed in seeds:
            with open(out / f"seed_{seed}" / "history.csv", newline="") as fh:
                history += [{"seed": seed, **row} for row in csv.DictReader(fh)]
        write_csv(history, out / "history.csv")
        summary = _summary(config, device, spec, results, splits, synth)
        write_json(strict_json(summary), out / "summary.json")  # NaN (std of one run) -> null
    return summary


def _check_resumable(out: Path, config: MMIMConfig, spec: Mapping[str, Any]) -> None:
    """The run in ``out`` has the data ``spec`` and a config that ``config`` may continue."""
    data_before, config_before = read_json(out / "data.json"), read_json(out / "config.json")
    if data_before and data_before.get("source") == "synthmosi":  # options added since: defaults
        data_before["synth"] = {**SYNTH_DEFAULTS, **data_before.get("synth", {})}
    if data_before not in (None, spec):
        raise ValueError(
            f"--resume: {out / 'data.json'} differs from this command: "
            + "; ".join(data_differences(data_before, spec))
        )
    if config_before is not None:  # only epochs and patience may be raised
        where = f"--resume: {out / 'config.json'}"
        check_resumable(MMIMConfig.from_dict(config_before), config, where)


def _summary(
    config: MMIMConfig,
    device: str,
    spec: Mapping[str, Any],
    results: list[dict[str, Any]],
    splits: Mapping[str, Sequence[Any]],
    synth: Any,
) -> dict[str, Any]:
    summary = {
        "preset": config.preset_name,
        "text_encoder": config.text_encoder,
        "device": device,
        "data": dict(spec),
        "labeled_fraction": config.labeled_fraction,
        "use_unlabeled": config.use_unlabeled,
        **summarize_runs(results),
        "runs": results,
    }
    if synth is not None:  # the Bayes-optimal oracle (labels as float32, as the trainer sees them)
        summary["oracle"] = {
            s: msa_metrics(synth.oracle(s), np.array([x.label for x in splits[s]], np.float32))
            for s in ("valid", "test")
            if len(splits[s])
        }
    return summary
