"""Hyper-parameter search on Optuna (``mmim-lite sweep``): the paper's Sec. 4.3 grid, or any space.

A trial trains one setting for K seeds (:func:`~mmim_lite.experiment.run_seeds`); the value the
search minimises is their mean **validation** MAE. The test metrics are stored with every trial
(user attributes ``runs``, ``valid``, ``test``) but never select: only the best trial's are
reported.

Exactly once, and workers that die (Optuna's RDB storage: SQLite, PostgreSQL, MySQL):

* The grid is a queue. The process that creates the study (creation is atomic: one per name)
  enqueues every point once, each with user attribute ``grid_point``, then sets the study's user
  attribute ``queued``; other workers wait for it. Workers only pop queued trials: WAITING ->
  RUNNING is one locked update (``SELECT ... FOR UPDATE``). SQLite ignores that lock, and two
  workers then pop the same trial, so on SQLite every transaction starts with ``BEGIN IMMEDIATE``.
  (Optuna's ``GridSampler`` is not used: in parallel it can run a point twice.) A trial that
  ``Study.ask`` creates because another worker took the last point is pruned without a setting.
* Heartbeats: a running trial records one every ``heartbeat`` seconds. A trial silent for twice
  that (its worker was killed) is marked FAIL by the next worker that looks
  (``optuna.storages.fail_stale_trials``), and ``RetryHeartbeatStaleTrialCallback`` queues its
  setting again (as is a trial whose worker died before its first heartbeat). A worker with
  nothing to pop waits while trials are running, so restarting the same command finishes the
  study. A trial stopped by an error or Ctrl-C is queued again before its worker stops.
* TPE: new trials start while fewer than ``trials`` are finished or running.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import itertools
import json
import multiprocessing
import os
import socket
import sys
import textwrap
import time
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import torch
from optuna.trial import FrozenTrial, TrialState

from .config import MMIMConfig
from .experiment import epoch_line, run_seeds, summarize_runs
from .runtime import strict_json, write_csv, write_json
from .train import Trainer, TrainingDivergedError

if typing.TYPE_CHECKING:
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
_TYPES = typing.get_type_hints(MMIMConfig)


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
        if self.sampler != "grid":
            return []
        grid = (dict(zip(self.space, values)) for values in itertools.product(*self.space.values()))
        return list(itertools.islice(grid, self.trials))

    def identity(self) -> dict[str, Any]:
        """What a study must match to be continued by this sweep."""
        return json.loads(
            json.dumps(
                {
                    "base": self.base.to_dict(),
                    "space": self.space,
                    "seeds": self.seeds,
                    "sampler": self.sampler,
                    "grid_trials": self.trials if self.sampler == "grid" else None,
                    "data": self.data,
                }
            )
        )

    def config(self, params: Mapping[str, Any]) -> MMIMConfig:
        """The base config with a trial's parameters (a tied key "a,b" sets both fields)."""
        return self.base.replace(
            **{name: value for key, value in params.items() for name in key.split(",")}
        )


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
        if isinstance(values, list):
            if not values:
                raise SweepError(
                    f"{where}: {key!r} has an empty grid (expected a non-empty list of values)"
                )
            ends = values
        elif isinstance(values, Mapping):
            if sampler == "grid":
                raise SweepError(
                    f"{where}: {key!r} is a range; --sampler grid needs a list of values "
                    "(or use --sampler tpe)"
                )
            numeric = all(_TYPES[n] in (int, float) for n in names)
            if (
                set(values) - {"low", "high", "log", "step"}
                or {"low", "high"} - set(values)
                or not numeric
                or not all(
                    isinstance(values[k], (int, float)) and not isinstance(values[k], bool)
                    for k in ("low", "high")
                )
                or not values["low"] < values["high"]
            ):
                raise SweepError(
                    f'{where}: {key!r}: expected a range {{"low": L, "high": H}} with L < H of a '
                    f'numeric field (optional "log", "step"), got {dict(values)}'
                )
            if values.get("log") and values.get("step"):
                raise SweepError(f"{where}: {key!r}: a range cannot have both log and step")
            ends = [values["low"], values["high"]]
        else:
            raise SweepError(
                f'{where}: {key!r}: expected a list of values or a range {{"low": L, "high": H}}, '
                f"got {values!r}"
            )
        for value in ends:
            if not (value is None or isinstance(value, (bool, int, float, str))):
                raise SweepError(
                    f"{where}: {key!r}: values must be numbers, strings, booleans or null, "
                    f"got {value!r}"
                )
            try:
                base.replace(**{n: value for n in names})
            except (ValueError, TypeError) as err:
                raise SweepError(f"{where}: {key!r}: {err}") from None
        out[key] = values
    return out


def load_space(text: str, sampler: str, base: MMIMConfig) -> dict[str, Any]:
    """``"paper"`` (:data:`PAPER_SPACE`) or a JSON file's space, checked by :func:`check_space`."""
    if text == "paper":
        return check_space(PAPER_SPACE, sampler, base, "--space paper")
    path = Path(text).expanduser()
    try:
        space = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SweepError(f"--space {path}: not a readable JSON file: {err}") from None
    return check_space(space, sampler, base, str(path))


def _shown(url: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - not even a URL: show it as given
            return url


def open_storage(url: str, heartbeat: int = 60) -> optuna.storages.RDBStorage:
    """The RDB storage at ``url`` with heartbeats every ``heartbeat`` s (stale after twice that,
    then retried);
    SQLite: every transaction ``BEGIN IMMEDIATE`` (so that popping a queued trial is atomic)."""
    given, sqlite = url, url.startswith("sqlite")
    if (
        url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None
    ):  # SQLAlchemy's default
        url = (
            "postgresql+psycopg2://" + url[len("postgresql://") :]
        )  # driver is psycopg 3; we ship psycopg2
    engine_kwargs = (
        {"connect_args": {"timeout": 600, "isolation_level": None}}
        if sqlite
        else {"pool_pre_ping": True}
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(),
            )
    except Exception as err:  # noqa: BLE001 - a wrong URL, driver, server or file: one line
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        cause = (str(err.__cause__ or "").strip().splitlines() or [""])[0]
        if cause and cause not in first:
            first += f" ({type(err.__cause__).__name__}: {cause})"
        raise SweepError(f"storage {_shown(given)!r}: cannot open it: {first}") from None
    if sqlite:
        sqlalchemy.event.listen(
            storage.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE")
        )
    return storage


def open_study(
    sweep: Sweep, storage: optuna.storages.RDBStorage, wait: float = 600.0
) -> optuna.Study:
    """Create ``sweep.study`` and queue its grid points once, or load it (waiting up to ``wait`` s
    until its creator has queued them) and check that it is this sweep's study."""
    sampler = optuna.samplers.TPESampler(constant_liar=True) if sweep.sampler == "tpe" else None
    pruner = optuna.pruners.MedianPruner() if sweep.prune else optuna.pruners.NopPruner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            study = optuna.create_study(
                storage=storage, study_name=sweep.study, sampler=sampler, pruner=pruner
            )
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(
                study_name=sweep.study, storage=storage, sampler=sampler, pruner=pruner
            )
        else:
            study.set_user_attr("sweep", sweep.identity())
            for i, params in enumerate(sweep.points):
                study.enqueue_trial(params, user_attrs={"grid_point": i})
            study.set_user_attr("queued", len(sweep.points))
    deadline = time.monotonic() + wait
    while "queued" not in study.user_attrs:
        if time.monotonic() > deadline:
            raise SweepError(
                f"study {sweep.study!r} in {_shown(sweep.storage)!r} was never fully queued "
                "(its first "
                "worker stopped while creating it?): delete it or use another --study"
            )
        time.sleep(1.0)
    stored, mine = study.user_attrs["sweep"], sweep.identity()
    if stored != mine:
        diff = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
        raise SweepError(
            f"study {sweep.study!r} in {_shown(sweep.storage)!r} belongs to another sweep: {diff} "
            "differ (continue it with the same command, or use another --study)"
        )
    return study


def _requeue(study: optuna.Study, number: int) -> bool:
    """Queue trial ``number``'s setting again if it failed; False (nothing done) if a retry of it
    exists."""
    trials = study.get_trials(deepcopy=False)
    if any(number in t.system_attrs.get("retry_history", ()) for t in trials):
        return False
    if trials[number].state == TrialState.FAIL:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.RetryHeartbeatStaleTrialCallback()(study, trials[number])
    return True


def _fail_unstarted(study: optuna.Study, grace: float) -> None:
    """Fail and requeue RUNNING trials older than ``grace`` s whose objective never started: a
    worker killed between popping a trial and its first heartbeat leaves one that
    ``fail_stale_trials`` never sees."""
    now = (
        datetime.datetime.now()
    )  # datetime_start: the popping worker's local clock, as Optuna sets it
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if (
            t.user_attrs.get("started") != t.number
            and (now - t.datetime_start).total_seconds() > grace
        ):
            try:
                study.tell(t.number, state=TrialState.FAIL)
            except (ValueError, RuntimeError):  # another worker failed it first (and requeues it)
                continue
            _requeue(study, t.number)


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
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # errors: one line
    storage = open_storage(sweep.storage, sweep.heartbeat)
    study, study_id = open_study(sweep, storage), storage.get_study_id_from_name(sweep.study)
    budget = None if sweep.sampler == "grid" else sweep.trials or TPE_TRIALS
    current: list[optuna.Trial] = []

    def objective(trial: optuna.Trial) -> float:
        current[:] = [trial]
        # a heartbeat before "started" (Optuna's heartbeat thread may not have written its first one
        # yet): from
        # here on, a killed worker's trial turns stale (a retry's copy of "started" names the old
        # number)
        storage.record_heartbeat(
            storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        )
        trial.set_user_attr("started", trial.number)
        if sweep.sampler == "grid" and "grid_point" not in trial.user_attrs:
            raise optuna.TrialPruned(
                "no queued grid point was left (another worker took the last one)"
            )
        params = {}
        for key, spec in sweep.space.items():
            if isinstance(spec, list):
                params[key] = trial.suggest_categorical(key, spec)
            else:
                suggest = (
                    trial.suggest_int if _TYPES[key.split(",")[0]] is int else trial.suggest_float
                )
                params[key] = suggest(
                    key,
                    spec["low"],
                    spec["high"],
                    log=bool(spec.get("log")),
                    **({"step": spec["step"]} if spec.get("step") else {}),
                )
        config = sweep.config(params)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("device", str(device))

        def report(
            trainer: Trainer, row: Mapping[str, Any]
        ) -> None:  # per-epoch validation MAE: pruning
            print(f"trial {trial.number} {epoch_line(trainer, row)}", file=sys.stderr, flush=True)
            trial.report(
                row["valid_mae"],
                sweep.seeds.index(trainer.config.seed) * config.epochs + row["epoch"],
            )
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
        for split in ("valid", "test"):
            if split in summary:
                trial.set_user_attr(split, summary[split])
        value = summary["valid"]["mae"]["mean"]
        print(
            f"trial {trial.number}: valid MAE {value:.4f} ({len(runs)} seed(s)) "
            + " ".join(f"{k}={v}" for k, v in params.items()),
            flush=True,
        )
        return value

    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(
                study
            )  # a dead worker's trial: FAIL, its setting queued again
        _fail_unstarted(study, 2 * sweep.heartbeat)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        running = states.count(TrialState.RUNNING)
        finished = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
        if TrialState.WAITING in states or (budget is not None and finished + running < budget):
            try:
                study.optimize(objective, n_trials=1)
            except (
                Exception,
                KeyboardInterrupt,
            ) as err:  # this worker stops; its setting goes back in the queue
                if (
                    not current
                    or _requeue(study, current[0].number)
                    or not isinstance(err, Exception)
                ):
                    raise
                # not raised: another worker took this slow trial for dead and queued it: go on
            current.clear()
        elif (
            running
        ):  # others' trials, or a dead worker's that will turn stale: wait, then look again
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
    others = [k for k in varied if k not in (rows, columns)]
    n = len(sweep.seeds)
    title = f"Mean validation MAE over {n} seed{'s' if n > 1 else ''}"
    if others:
        title += f"; each cell: the lowest over {', '.join(others)}"
    width = min(8.0, max(6.0, 2.5 + 0.9 * table.shape[1]))
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
    ax.set_title(textwrap.fill(title, width=int(width * 10)))  # 12 pt: about 10 characters an inch
    return fig


def write_report(
    study: optuna.Study, sweep: Sweep, out_dir: str | Path, top: int = 10
) -> dict[str, Any]:
    """``best_config.json`` (for ``mmim-lite train --config``), ``best.json`` (the best trial, with
    its test metrics), ``top.csv``/``top.md`` (the ``top`` best settings, validation only) and
    figures in
    ``out_dir``: ``history.png``, ``importances.png`` and, for a grid with two or more varied
    parameters, ``grid.png`` (:func:`grid_table`)."""
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    out = Path(out_dir)
    trials = sorted(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.value
    )
    if not trials:
        raise SweepError(f"study {sweep.study!r} has no complete trial (all pruned or failed?)")
    rows = []
    for rank, t in enumerate(trials[:top], 1):
        valid = t.user_attrs["valid"]
        rows.append(
            {
                "rank": rank,
                "trial": t.number,
                **t.params,
                "valid_mae": valid["mae"]["mean"],
                "valid_mae_std": valid["mae"]["std"],
                **{f"valid_{k}": valid[k]["mean"] for k in ("corr", "acc2_non0", "f1_non0")},
            }
        )
    write_csv(rows, out / "top.csv")
    cell = lambda v: "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    table = [" | ".join(rows[0]), " | ".join("---" for _ in rows[0])]
    table += [" | ".join(map(cell, r.values())) for r in rows]
    (out / "top.md").write_text(
        f"Best settings of study `{sweep.study}` by the mean validation MAE over "
        f"{len(sweep.seeds)} seed(s):\n\n" + "\n".join(f"| {line} |" for line in table) + "\n"
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
        **{k: best.user_attrs[k] for k in ("valid", "test", "runs") if k in best.user_attrs},
    }
    write_json(info, out / "best.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        figures = {"history.png": optuna_plots.plot_optimization_history(study).figure}
        varied = [k for k in sweep.space if len({json.dumps(t.params.get(k)) for t in trials}) > 1]
        if len(trials) >= 2 and varied:  # importances need two settings and a parameter that varies
            figures["importances.png"] = optuna_plots.plot_param_importances(
                study, params=varied
            ).figure
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=120, bbox_inches="tight")
        plt.close(fig)
    if sweep.sampler == "grid" and len(varied) >= 2:
        with plt.rc_context(
            {
                "font.size": 11,
                "axes.titlesize": 12,
                "axes.labelsize": 11,
                "xtick.labelsize": 10,
                "ytick.labelsize": 10,
                "savefig.bbox": "standard",
            }
        ):
            fig = _grid_figure(study, sweep, trials, varied)
            fig.savefig(out / "grid.png", dpi=150)  # at most 8 in wide: at most 1,200 px
        plt.close(fig)
        figures["grid.png"] = fig
    files = ["best_config.json", "best.json", "top.csv", "top.md", *figures]
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return {
        "n_points": len(sweep.points) or sweep.trials or TPE_TRIALS,
        "n_complete": len(trials),
        "n_pruned": states.count(TrialState.PRUNED),
        "n_failed": states.count(TrialState.FAIL),
        "best": info,
        "files": files,
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
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # errors: one line
    open_study(
        sweep, open_storage(sweep.storage, sweep.heartbeat)
    )  # bad URL or other sweep: fail here
    failed = 0
    if workers == 1:
        run_worker(sweep, splits, devices[0])
    else:
        threads = max(1, torch.get_num_threads() // workers)
        context = multiprocessing.get_context("spawn")
        procs = [
            context.Process(
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
        except KeyboardInterrupt:  # the workers got it too: they queue their trials again, stop
            for proc in procs:
                proc.join()
            raise
        failed = sum(proc.exitcode != 0 for proc in procs)
    study = optuna.load_study(
        study_name=sweep.study, storage=open_storage(sweep.storage, sweep.heartbeat)
    )
    try:
        report = write_report(study, sweep, out_dir, top)
    finally:
        if failed:  # reported trials so far (if any), then the error
            raise SweepError(
                f"{failed} of {workers} sweep workers stopped with an error (above): "
                "rerun the same "
                "command to finish the study"
            )
    return report
