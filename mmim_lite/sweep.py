"""Hyper-parameter search on Optuna (``mmim-lite sweep``): the paper's Sec. 4.3 grid, or any space.

A trial trains one setting for K seeds (:func:`~mmim_lite.experiment.run_seeds`); the value the
search minimises is their mean **validation** MAE. The test metrics are stored with every trial
(user attributes ``runs``, ``valid``, ``test``) but never select: only the best trial's are
reported.

Each grid point completes exactly once, however many workers share the study (Optuna's RDB
storage: SQLite, PostgreSQL, MySQL) and whichever of them die. Optuna's own parts do most of it:

* The grid is Optuna's trial queue: the process whose ``create_study`` made the study enqueues
  every point once (``enqueue_trial``, user attribute ``grid_point``); ``Study.optimize`` pops
  queued trials, one per worker.
* A running trial's heartbeat thread records a beat every ``heartbeat`` s; a trial silent for twice
  that (its worker died) is failed (``fail_stale_trials``) and ``RetryHeartbeatStaleTrialCallback``
  (the successor of ``RetryFailedTrialCallback``) queues its setting again.
* TPE: new trials start while fewer than ``trials`` are finished or running.

What Optuna leaves open is closed here by a few lines, each saying why: SQLite ignores the lock
with which Optuna pops a queued trial (``BEGIN IMMEDIATE``); ``load_if_exists`` does not say who
made a study, so the others wait for its ``queued`` mark; a trial whose worker died before its
first heartbeat never turns stale (one beat); a worker that stops on an error or Ctrl-C queues
its trial again; and a worker with nothing to pop waits while trials run, so that rerunning the
same command after a crash finishes the study. (``GridSampler`` is not used: in parallel it can
run a point twice, and it cannot follow the grid's order for ``--trials``.)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import multiprocessing
import os
import socket
import sys
import textwrap
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

import optuna
import sqlalchemy
import torch
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from .config import MMIMConfig
from .experiment import epoch_line, run_seeds, summarize_runs
from .runtime import strict_json, write_csv, write_json
from .train import Trainer, TrainingDivergedError

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

__all__ = [
    "PAPER_SPACE",
    "TPE_TRIALS",
    "SweepError",
    "Sweep",
    "load_space",
    "check_space",
    "open_storage",
    "open_study",
    "run_worker",
    "run_sweep",
    "grid_table",
    "write_report",
]

#: Sec. 4.3's grid (648 settings); "a,b" ties fields to one value (the paper's "hidden size").
PAPER_SPACE: dict[str, list[Any]] = {
    "batch_size": [32, 64],
    "lr_lld": [1e-3, 5e-3],
    "lr_main": [5e-4, 1e-3, 5e-3],
    "alpha": [0.05, 0.1, 0.3],
    "beta": [0.05, 0.1, 0.3],
    "visual_hidden,acoustic_hidden": [32, 64],
    "memory_size": [1, 2, 3],
}
TPE_TRIALS = 50  #: settings a TPE sweep tries unless told otherwise
_NOT_SWEPT = ("seed", "preset_name")  # seeds are the sweep's own; the name is informational
_TYPES = get_type_hints(MMIMConfig)


class SweepError(ValueError):
    """A bad search space, storage or study; reported as one line."""


@dataclasses.dataclass(frozen=True)
class Sweep:
    """What a sweep searches and where its study lives (not which workers run it).

    ``space``: :func:`check_space` output; ``sampler``: "grid" or "tpe"; ``trials``: tpe: the number
    of settings (default :data:`TPE_TRIALS`), grid: only the first ``trials`` points; ``storage``: a
    SQLAlchemy URL; ``heartbeat``: seconds between a running trial's heartbeats; ``data``: a
    description of the data (a study continued with another is refused)."""

    base: MMIMConfig
    space: Mapping[str, Any]
    seeds: tuple[int, ...]
    storage: str
    sampler: str = "grid"
    trials: int | None = None
    study: str = "mmim-lite"
    prune: bool = False
    heartbeat: int = 60
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def points(self) -> list[dict[str, Any]]:
        """The grid's settings in order (empty for tpe)."""
        grid = (dict(zip(self.space, values)) for values in itertools.product(*self.space.values()))
        return list(itertools.islice(grid, self.trials)) if self.sampler == "grid" else []

    def identity(self) -> dict[str, Any]:
        """What a study must match to be continued by this sweep."""
        grid_trials = self.trials if self.sampler == "grid" else None
        return json.loads(
            json.dumps(
                {
                    "base": self.base.to_dict(),
                    "space": self.space,
                    "seeds": self.seeds,
                    "sampler": self.sampler,
                    "grid_trials": grid_trials,
                    "data": self.data,
                }
            )
        )

    def config(self, params: Mapping[str, Any]) -> MMIMConfig:
        """The base config with a trial's parameters (a tied key "a,b" sets both fields)."""
        return self.base.replace(**{n: v for key, v in params.items() for n in key.split(",")})


def _distribution(key: str, spec: Any) -> BaseDistribution:
    """Optuna's distribution of one entry of a space: a list of values, or a range of a numeric
    field (which Optuna checks: low <= high, low > 0 with log, not both log and step)."""
    if isinstance(spec, list):
        if bad := [v for v in spec if not (v is None or isinstance(v, (bool, int, float, str)))]:
            raise ValueError(f"values must be numbers, strings, booleans or null, got {bad[0]!r}")
        return CategoricalDistribution(spec)
    kinds = {_TYPES[n] for n in key.split(",")}
    if not isinstance(spec, Mapping) or not kinds <= {int, float}:
        raise ValueError(
            'expected a list of values or a range {"low": L, "high": H} of a numeric field '
            f'(optional "log" or "step"), got {spec!r}'
        )
    return (IntDistribution if kinds == {int} else FloatDistribution)(**spec)


def check_space(space: Any, sampler: str, base: MMIMConfig, where: str) -> dict[str, Any]:
    """A validated search space: ``{"field" | "f1,f2": [values] | {"low", "high"[, "log",
    "step"]}}``; every value must give a valid config; ranges only for ``sampler="tpe"``. ``where``
    (a file) starts each error."""
    if not isinstance(space, Mapping) or not space:
        raise SweepError(
            f'{where}: expected a non-empty JSON object such as {{"alpha": [0.1, 0.3]}}'
        )
    out: dict[str, Any] = {}
    for key, values in space.items():
        names = [n.strip() for n in key.split(",")]
        if bad := [n for n in names if n not in _TYPES or n in _NOT_SWEPT]:
            raise SweepError(
                f"{where}: unknown parameter {bad[0]!r} (expected MMIMConfig fields other "
                f"than {' and '.join(_NOT_SWEPT)}, e.g. alpha or 'visual_hidden,acoustic_hidden')"
            )
        key = ",".join(names)
        if values == []:
            raise SweepError(
                f"{where}: {key!r} has an empty grid (expected a non-empty list of values)"
            )
        if isinstance(values, Mapping) and sampler == "grid":
            raise SweepError(
                f"{where}: {key!r} is a range; --sampler grid needs a list of values "
                "(or use --sampler tpe)"
            )
        try:
            dist = _distribution(key, values)
            ends = (
                dist.choices if isinstance(dist, CategoricalDistribution) else (dist.low, dist.high)
            )
            for value in ends:
                base.replace(**{n: value for n in names})
        except (ValueError, TypeError) as err:
            raise SweepError(f"{where}: {key!r}: {err}") from None
        out[key] = values
    return out


def load_space(text: str, sampler: str, base: MMIMConfig) -> dict[str, Any]:
    """``"paper"`` (:data:`PAPER_SPACE`) or a JSON file's space, checked by :func:`check_space`."""
    path = Path(text).expanduser()
    try:
        space = PAPER_SPACE if text == "paper" else json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SweepError(f"--space {path}: not a readable JSON file: {err}") from None
    return check_space(space, sampler, base, "--space paper" if text == "paper" else str(path))


def _shown(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not even a URL: show it as given
        return url


def open_storage(url: str, heartbeat: int = 60) -> optuna.storages.RDBStorage:
    """The RDB storage at ``url``: heartbeats every ``heartbeat`` s, a trial silent for twice that
    failed and its setting queued again (``RetryHeartbeatStaleTrialCallback``)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # errors only: one line each
    sqlite = url.startswith("sqlite")
    try:
        with warnings.catch_warnings():  # Optuna's heartbeats are "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                # SQLAlchemy's default PostgreSQL driver is psycopg 3; the sweep extra has psycopg2
                "postgresql+psycopg2://" + url[13:] if url.startswith("postgresql://") else url,
                # isolation_level None: the transactions are the "begin" hook's, below
                engine_kwargs={"connect_args": {"timeout": 600, "isolation_level": None}}
                if sqlite
                else {"pool_pre_ping": True},
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(),
            )
    except Exception as err:  # noqa: BLE001 - a wrong URL, driver, server or file: one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        cause = (str(err.__cause__ or "").strip().splitlines() or [""])[0]
        first += f" ({type(err.__cause__).__name__}: {cause})" if cause not in first else ""
        raise SweepError(f"storage {_shown(url)!r}: cannot open it: {first}") from None
    if sqlite:  # Optuna pops a queued trial with SELECT ... FOR UPDATE, then UPDATE; SQLite
        # ignores FOR UPDATE, so two workers could both pop one trial. BEGIN IMMEDIATE takes
        # SQLite's write lock when a transaction starts: one worker at a time reads and pops.
        sqlalchemy.event.listen(
            storage.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE")
        )
    return storage


def open_study(
    sweep: Sweep, storage: optuna.storages.RDBStorage, wait: float = 600.0
) -> optuna.Study:
    """Create ``sweep.study`` and queue its grid points once, or load it (waiting up to ``wait`` s
    until its creator has queued them) and check that it is this sweep's study."""
    study_args = {
        "storage": storage,
        "study_name": sweep.study,
        "sampler": optuna.samplers.TPESampler(constant_liar=True)
        if sweep.sampler == "tpe"
        else None,
        "pruner": optuna.pruners.MedianPruner() if sweep.prune else optuna.pruners.NopPruner(),
    }
    try:  # not load_if_exists=True: it hides which process made the study, the one that queues
        study = optuna.create_study(**study_args)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**study_args)
    else:
        study.set_user_attr("sweep", sweep.identity())
        for i, params in enumerate(sweep.points):
            study.enqueue_trial(params, user_attrs={"grid_point": i})
        study.set_user_attr("queued", len(sweep.points))
    where, deadline = f"study {sweep.study!r} in {_shown(sweep.storage)!r}", time.monotonic() + wait
    while "queued" not in study.user_attrs:
        if time.monotonic() > deadline:
            raise SweepError(
                f"{where} was never fully queued (its first worker stopped while creating it?): "
                "delete it or use another --study"
            )
        time.sleep(1.0)
    # a study made before a config field existed ran with the field's default
    stored, mine, default = study.user_attrs["sweep"], sweep.identity(), MMIMConfig().to_dict()
    added = [k for k in mine["base"] if k not in stored["base"]]
    stored["base"] = {**{k: default[k] for k in added}, **stored["base"]}
    if diff := sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k)):
        if new := [k for k in added if mine["base"][k] != default[k]]:
            raise SweepError(
                f"{where} was made before config field(s) {new} existed (it ran with their "
                f"defaults): continue it with "
                + " ".join(f"--set {k}={json.dumps(default[k])}" for k in new)
                + ", or start another study with another --study (or --out)"
            )
        raise SweepError(
            f"{where} belongs to another sweep: {diff} differ "
            "(continue it with the same command, or use another --study)"
        )
    return study


def _requeue(study: optuna.Study, number: int) -> bool:
    """Queue trial ``number``'s setting again if it failed (as a stale one is); False (nothing
    done) if another worker took it for dead and queued it already."""
    trials = study.get_trials(deepcopy=False)
    if any(number in t.system_attrs.get("retry_history", ()) for t in trials):
        return False
    if trials[number].state == TrialState.FAIL:
        optuna.storages.RetryHeartbeatStaleTrialCallback()(study, trials[number])
    return True


def _objective(
    sweep: Sweep, splits: Mapping[str, Sequence[Any]], device: str, trial: optuna.Trial
) -> float:
    """One trial: its setting for every seed of ``sweep`` (:func:`~mmim_lite.experiment.run_seeds`);
    the mean validation MAE, the runs and their valid and test summaries stored with it."""
    if sweep.sampler == "grid" and "grid_point" not in trial.user_attrs:
        raise optuna.TrialPruned("no queued grid point was left (another worker took it)")
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("device", str(device))
    dists = {key: _distribution(key, spec) for key, spec in sweep.space.items()}
    params = {  # a queued trial's values are fixed: suggest_* returns them
        key: trial.suggest_categorical(key, d.choices)
        if isinstance(d, CategoricalDistribution)
        else (trial.suggest_int if isinstance(d, IntDistribution) else trial.suggest_float)(
            key, d.low, d.high, log=d.log, step=d.step
        )
        for key, d in dists.items()
    }
    config = sweep.config(params)

    def report(trainer: Trainer, row: Mapping[str, Any]) -> None:  # per epoch: pruning
        print(f"trial {trial.number} {epoch_line(trainer, row)}", file=sys.stderr, flush=True)
        step = sweep.seeds.index(trainer.config.seed) * config.epochs + row["epoch"]
        trial.report(row["valid_mae"], step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"seed {trainer.config.seed}, epoch {row['epoch']}")

    try:
        runs = run_seeds(
            config, sweep.seeds, splits, device=device, progress=False, on_epoch=report
        )
    except TrainingDivergedError as err:  # a setting that diverges is finished, not retried
        trial.set_user_attr("diverged", str(err))
        raise optuna.TrialPruned(str(err)) from None
    summary = strict_json(summarize_runs(runs))
    trial.set_user_attr("runs", strict_json(runs))
    for split in set(summary) & {"valid", "test"}:
        trial.set_user_attr(split, summary[split])
    value = summary["valid"]["mae"]["mean"]
    settings = " ".join(f"{k}={v}" for k, v in params.items())
    print(
        f"trial {trial.number}: valid MAE {value:.4f} ({len(runs)} seed(s)) {settings}",
        flush=True,
    )
    return value


def run_worker(
    sweep: Sweep,
    splits: Mapping[str, Sequence[Any]],
    device: str = "auto",
    threads: int | None = None,
) -> None:
    """Run trials of ``sweep`` on ``device`` (``threads``: torch CPU threads) until none is queued,
    the tpe budget is used and no trial is running; each trial is
    :func:`~mmim_lite.experiment.run_seeds`."""
    if threads:
        torch.set_num_threads(threads)
    storage = open_storage(sweep.storage, sweep.heartbeat)
    study, study_id = open_study(sweep, storage), storage.get_study_id_from_name(sweep.study)
    budget = None if sweep.sampler == "grid" else sweep.trials or TPE_TRIALS
    current: list[int] = []  # the number of the trial that this worker runs
    beaten: set[int] = set()  # running trials given a heartbeat here (below)

    def objective(trial: optuna.Trial) -> float:
        current[:] = [trial.number]
        return _objective(sweep, splits, device, trial)

    with warnings.catch_warnings():  # fail_stale_trials and the retry callback: "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        while True:
            optuna.storages.fail_stale_trials(study)  # optimize does it too, but only if it runs
            trials = study.get_trials(deepcopy=False)
            running = {t.number for t in trials if t.state == TrialState.RUNNING}
            # Optuna never fails a running trial without a heartbeat: its worker died between
            # popping it and its heartbeat thread's first beat. One beat (once: for a live trial,
            # harmless) lets it turn stale.
            for number in running - beaten:
                storage.record_heartbeat(
                    storage.get_trial_id_from_study_id_trial_number(study_id, number)
                )
            beaten |= running
            finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
            if any(t.state == TrialState.WAITING for t in trials) or (
                budget is not None and finished + len(running) < budget
            ):
                try:
                    study.optimize(objective, n_trials=1)
                except (Exception, KeyboardInterrupt) as err:
                    # this worker stops, its trial queued again; unless another worker took this
                    # slow trial for dead and queued it already: then go on
                    if not current or _requeue(study, current[0]) or not isinstance(err, Exception):
                        raise
                current.clear()
            elif running:  # others' trials, or a dead worker's (turning stale): wait, look again
                time.sleep(sweep.heartbeat)
            else:
                return


def _worker_process(*args: Any) -> None:
    """:func:`run_worker` in a spawned process: Ctrl-C (sent to every worker) ends it quietly, its
    trial queued again; the parent reports the interruption once."""
    try:
        run_worker(*args)
    except KeyboardInterrupt:
        sys.exit(130)


def grid_table(trials: Sequence[FrozenTrial], rows: str, columns: str) -> pandas.DataFrame:
    """The mean validation MAE over the seeds (a trial's value) of each completed setting, as a
    ``rows`` x ``columns`` table (values sorted); where other parameters vary too, each cell holds
    the lowest of those means over them. Settings never completed are NaN."""
    import pandas as pd

    done = [{**t.params, "_mae": t.value} for t in trials if t.state == TrialState.COMPLETE]
    frame = pd.DataFrame(done)
    setting = [k for k in frame.columns if k != "_mae"]
    means = frame.groupby(setting, dropna=False)["_mae"].mean().reset_index()  # a repeated setting
    return means.pivot_table(
        index=rows, columns=columns, values="_mae", aggfunc="min", dropna=False
    )


def _grid_figure(
    study: optuna.Study, sweep: Sweep, trials: Sequence[FrozenTrial], varied: Sequence[str]
) -> Figure:
    """A heatmap of :func:`grid_table` for the two most important of ``varied`` (two or more; the
    first two in the space's order when the importances do not tell them apart)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    with warnings.catch_warnings():  # too few trials: equal importances (the space's order, below)
        warnings.simplefilter("ignore", UserWarning)
        importance = optuna.importance.get_param_importances(study, params=list(varied))
    rows, columns = sorted(varied, key=lambda k: -importance.get(k, 0.0))[:2]  # ties keep order
    table = grid_table(trials, rows, columns)
    others, n = [k for k in varied if k not in (rows, columns)], len(sweep.seeds)
    title = f"Mean validation MAE over {n} seed{'s' if n > 1 else ''}" + (
        f"; each cell: the lowest over {', '.join(others)}" if others else ""
    )
    width = min(8.0, max(6.0, 2.5 + 0.9 * table.shape[1]))
    fonts = {
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "xtick.labelsize": 10,
        "ytick.labelsize": 10,
    }
    with plt.rc_context(fonts):
        fig, ax = plt.subplots(figsize=(width, 2.0 + 0.5 * table.shape[0]), layout="constrained")
        sns.heatmap(
            table,
            annot=True,
            fmt=".3f",
            annot_kws={"size": 10},
            cmap="viridis",
            cbar_kws={"label": "validation MAE"},
            ax=ax,
        )
        ax.set_title(textwrap.fill(title, width=int(width * 10)))  # 12 pt: ~10 characters an inch
    return fig


def write_report(
    study: optuna.Study, sweep: Sweep, out_dir: str | Path, top: int = 10
) -> dict[str, Any]:
    """``best_config.json`` (for ``mmim-lite train --config``), ``best.json`` (the best trial, with
    its test metrics), ``top.csv``/``top.md`` (the ``top`` best settings, validation only) and
    figures in ``out_dir``: ``history.png``, ``importances.png`` and, for a grid with two or more
    varied parameters, ``grid.png`` (:func:`grid_table`)."""
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    out, states = Path(out_dir), [t.state for t in study.get_trials(deepcopy=False)]
    trials = sorted(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.value
    )
    if not trials:
        raise SweepError(f"study {sweep.study!r} has no complete trial (all pruned or failed?)")
    rows = [
        {
            "rank": rank,
            "trial": t.number,
            **t.params,
            "valid_mae": v["mae"]["mean"],
            "valid_mae_std": v["mae"]["std"],
        }
        | {f"valid_{k}": v[k]["mean"] for k in ("corr", "acc2_non0", "f1_non0")}
        for rank, t, v in ((i, t, t.user_attrs["valid"]) for i, t in enumerate(trials[:top], 1))
    ]
    write_csv(rows, out / "top.csv")
    cell = lambda v: "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    table = [list(rows[0]), ["---"] * len(rows[0]), *([cell(v) for v in r.values()] for r in rows)]
    (out / "top.md").write_text(
        f"Best settings of study `{sweep.study}` by the mean validation MAE over "
        f"{len(sweep.seeds)} seed(s):\n\n" + "".join(f"| {' | '.join(r)} |\n" for r in table)
    )
    best = trials[0]
    write_json(
        sweep.config(best.params).replace(seed=sweep.seeds[0]).to_dict(), out / "best_config.json"
    )
    info = {
        "trial": best.number,
        "params": best.params,
        "value": best.value,
        "seeds": list(sweep.seeds),
    }
    info |= {k: best.user_attrs[k] for k in ("valid", "test", "runs") if k in best.user_attrs}
    write_json(info, out / "best.json")
    varied = [k for k in sweep.space if len({json.dumps(t.params.get(k)) for t in trials}) > 1]
    with warnings.catch_warnings():  # Optuna's matplotlib plots are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        figures = {"history.png": optuna_plots.plot_optimization_history(study).figure}
        if len(trials) >= 2 and varied:  # importances need two settings and a varied parameter
            plot = optuna_plots.plot_param_importances(study, params=varied)
            figures["importances.png"] = plot.figure
    if sweep.sampler == "grid" and len(varied) >= 2:  # at most 8 in wide: at most 1,200 px
        figures["grid.png"] = _grid_figure(study, sweep, trials, varied)
    for name, fig in figures.items():
        grid = name == "grid.png"
        fig.savefig(out / name, dpi=150 if grid else 120, bbox_inches=None if grid else "tight")
        plt.close(fig)
    return {
        "n_points": len(sweep.points) or sweep.trials or TPE_TRIALS,
        "n_complete": len(trials),
        "n_pruned": states.count(TrialState.PRUNED),
        "n_failed": states.count(TrialState.FAIL),
        "best": info,
        "files": ["best_config.json", "best.json", "top.csv", "top.md", *figures],
    }


def run_sweep(
    sweep: Sweep,
    splits: Mapping[str, Sequence[Any]],
    out_dir: str | Path,
    *,
    devices: Sequence[str] = ("auto",),
    workers: int = 1,
    top: int = 10,
) -> dict[str, Any]:
    """Open (or create and queue) the study, run ``workers`` workers (one: in this process; more:
    spawned processes, device ``devices[i % len(devices)]``, ``torch.get_num_threads() // workers``
    threads each), then :func:`write_report`. Rerunning it continues the study; with nothing left,
    it only reports."""
    study = open_study(sweep, open_storage(sweep.storage, sweep.heartbeat))  # bad URL: here
    procs = []
    if workers == 1:
        run_worker(sweep, splits, devices[0])
    else:
        threads = max(1, torch.get_num_threads() // workers)
        spawn = multiprocessing.get_context("spawn")
        procs = [
            spawn.Process(
                target=_worker_process,
                args=(sweep, splits, devices[i % len(devices)], threads),
                name=f"mmim-lite-sweep-{i}",
            )
            for i in range(workers)
        ]
        for proc in procs:
            proc.start()
        try:
            for proc in procs:
                proc.join()
        finally:  # Ctrl-C reached the workers too: they queue their trials again and stop
            for proc in procs:
                proc.join()
    failed = sum(proc.exitcode != 0 for proc in procs)
    try:
        return write_report(study, sweep, out_dir, top)
    finally:
        if failed:  # the trials reported so far (if any), then the error
            raise SweepError(
                f"{failed} of {workers} sweep workers stopped with an error (above): "
                "rerun the same command to finish the study"
            )
