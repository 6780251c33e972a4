"""Tests of ``mmim-lite sweep`` (Optuna) and of seeds run across devices.

Every sweep trains the tiny random text encoder on a tiny SynthMOSI for one epoch. The properties:
each grid point is run to completion exactly once, by two workers sharing one SQLite study or a
real PostgreSQL server, and after a worker is killed mid-trial and the command restarted; bad input
fails with one line; the best setting's config trains again to the sweep's own numbers.
"""

from __future__ import annotations

import csv
import glob
import itertools
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from PIL import Image

from mmim_lite import cli
from mmim_lite.config import MMIMConfig
from mmim_lite.sweep import (
    PAPER_SPACE,
    Sweep,
    SweepError,
    grid_table,
    open_storage,
    open_study,
    run_sweep,
    write_report,
)
from mmim_lite.synth import make_synthmosi

ROOT = Path(__file__).resolve().parents[1]
DATA = [
    "--data",
    "synthmosi",
    "--n-train",
    "32",
    "--n-valid",
    "16",
    "--n-test",
    "16",
    "--synth-visual-frames",
    "5,10",
    "--synth-acoustic-frames",
    "5,10",
]
TINY = [*DATA, "--text-encoder", "tiny", "--epochs", "1"]
SPACE = {"alpha": [0.1, 0.3], "visual_hidden,acoustic_hidden": [8, 16]}  # 4 settings
POINTS = [{"alpha": a, "visual_hidden,acoustic_hidden": h} for a in (0.1, 0.3) for h in (8, 16)]
EPOCH = re.compile(
    r"seed (\d+) epoch (\d+)/\d+: train loss [0-9.]+ \(task [0-9.]+\), valid MAE [0-9.]+, best epoch \d+, "
    r"[0-9.]+ s"
)  # the line each epoch prints off a terminal, or with --devices


def epoch_lines(err: str) -> list[tuple[str, str]]:
    """(seed, epoch) of each line of ``err``; a line that is not an epoch's fails."""
    return [EPOCH.fullmatch(line).groups() for line in err.splitlines()]


def space_file(folder: Path, space: object, name: str = "space.json") -> str:
    path = folder / name
    path.write_text(json.dumps(space))
    return str(path)


def trials_of(url: str, study: str = "mmim-lite") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=open_storage(url)).get_trials()


def assert_each_point_complete_once(
    trials: list[optuna.trial.FrozenTrial], points: list[dict]
) -> None:
    """Every grid point COMPLETE exactly once, with its own setting; nothing else COMPLETE."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["grid_point"] for t in complete) == list(range(len(points)))
    for t in complete:
        assert t.params == points[t.user_attrs["grid_point"]]
        runs = t.user_attrs["runs"]  # the objective: the mean validation MAE over the seeds
        assert t.value == pytest.approx(sum(r["valid"]["mae"] for r in runs) / len(runs))
    # a trial that found the queue empty (a race between workers) is pruned with no setting
    assert all(
        t.state == TrialState.FAIL or not t.params for t in trials if t.state != TrialState.COMPLETE
    )


# ----------------------------------------------------------------------------- the search space
def test_paper_space_is_sec_4_3_grid_of_648_distinct_valid_settings():
    sweep = Sweep(
        base=MMIMConfig.preset("mosi"), space=PAPER_SPACE, seeds=(0,), storage="sqlite://"
    )
    points = sweep.points
    assert len(points) == len({json.dumps(p, sort_keys=True) for p in points}) == 648
    configs = [sweep.config(p) for p in points]
    assert all(c.visual_hidden == c.acoustic_hidden in (32, 64) for c in configs)
    assert {c.memory_size for c in configs} == {1, 2, 3} and {c.lr_main for c in configs} == {
        5e-4,
        1e-3,
        5e-3,
    }


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask/tell here, not optimize
def test_sqlite_queue_hands_out_each_trial_once(tmp_path):
    """Workers racing for queued trials on SQLite (no SELECT ... FOR UPDATE there): each pops a
    trial once."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="q", storage=open_storage(url, 1))
    for k in range(40):
        study.enqueue_trial({"x": k}, user_attrs={"k": k})
    popped: list[int] = []

    def worker() -> None:
        mine = optuna.load_study(study_name="q", storage=open_storage(url, 1))
        while "k" in (trial := mine.ask()).user_attrs:
            popped.append(trial.number)
            mine.tell(trial, 0.0, skip_if_finished=True)
        mine.tell(trial, state=TrialState.PRUNED)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        threads = [threading.Thread(target=worker) for _ in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert sorted(popped) == list(range(40))  # without BEGIN IMMEDIATE some trials are popped twice


# ----------------------------------------------------------------------------- two workers, one
# SQLite study
@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    argv = [
        "sweep",
        *TINY,
        "--space",
        space_file(out, SPACE),
        "--seeds",
        "2",
        "--workers",
        "2",
        "--devices",
        "cpu",
        "--heartbeat",
        "2",
        "--out",
        str(out),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert cli.main(argv) == 0
    return out


@pytest.mark.slow
def test_two_workers_run_every_grid_point_exactly_once(swept):
    trials = trials_of(f"sqlite:///{swept / 'study.db'}")
    assert_each_point_complete_once(trials, POINTS)
    for t in trials:
        if (
            t.state == TrialState.COMPLETE
        ):  # K=2 seeds per setting, their valid and test metrics stored
            assert [r["seed"] for r in t.user_attrs["runs"]] == [0, 1]
            assert (
                set(t.user_attrs["valid"]) == set(t.user_attrs["test"])
                and "mae" in t.user_attrs["test"]
            )


@pytest.mark.slow
def test_report_selects_on_validation_and_shows_test_for_the_best_only(swept):
    trials = [
        t for t in trials_of(f"sqlite:///{swept / 'study.db'}") if t.state == TrialState.COMPLETE
    ]
    best = min(trials, key=lambda t: t.user_attrs["valid"]["mae"]["mean"])
    report = json.loads((swept / "best.json").read_text())
    assert report["trial"] == best.number and report["test"] == best.user_attrs["test"]
    with open(swept / "top.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and not any(
        "test" in key for key in rows[0]
    )  # the table never shows test numbers
    maes = [float(r["valid_mae"]) for r in rows]
    assert maes == sorted(maes) and int(rows[0]["trial"]) == best.number
    assert (swept / "history.png").stat().st_size > 0 and (
        swept / "importances.png"
    ).stat().st_size > 0


@pytest.mark.slow
def test_report_draws_the_grid_of_mean_validation_maes(swept):
    with Image.open(swept / "grid.png") as image:
        assert image.format == "PNG" and image.width <= 8 * 150
    trials = trials_of(f"sqlite:///{swept / 'study.db'}")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    table = grid_table(complete, "alpha", "visual_hidden,acoustic_hidden")
    for t in complete:  # each cell: the setting's validation MAE averaged over its two seeds
        maes = [r["valid"]["mae"] for r in t.user_attrs["runs"]]
        cell = table.loc[t.params["alpha"], t.params["visual_hidden,acoustic_hidden"]]
        assert cell == pytest.approx(sum(maes) / len(maes))
    assert table.shape == (2, 2)


# ----------------------------------------------------------------------------- grid, made-up trials
def made_up_study(space: dict[str, list], value, skip=()) -> optuna.Study:
    """An in-memory study with one COMPLETE trial of value ``value(point)`` per grid point of
    ``space`` (those numbered in ``skip``: pruned), with the user attributes a report reads."""
    study = optuna.create_study()
    distributions = {k: CategoricalDistribution(v) for k, v in space.items()}
    for i, point in enumerate(Sweep(MMIMConfig(), space, (0,), "sqlite://").points):
        valid = {
            k: {"mean": value(point), "std": 0.0} for k in ("mae", "corr", "acc2_non0", "f1_non0")
        }
        state = TrialState.PRUNED if i in skip else TrialState.COMPLETE
        study.add_trial(
            create_trial(
                state=state,
                params=point,
                distributions=distributions,
                value=None if i in skip else value(point),
                user_attrs={"grid_point": i, "valid": valid},
            )
        )
    return study


def test_grid_table_keeps_the_lowest_mean_over_the_other_parameters():
    space = {"alpha": [0.1, 0.3], "beta": [0.05, 0.1, 0.3], "memory_size": [1, 2]}
    # memory_size 1 is best for beta 0.3 only; points 0 and 1 (alpha 0.1, beta 0.05) not completed
    mae = {
        (a, b, m): 1 + a - 2 * b + (0.37 if (m == 1) == (b < 0.3) else 0.0)
        for a, b, m in itertools.product(*space.values())
    }
    study = made_up_study(space, lambda point: mae[tuple(point.values())], skip=(0, 1))
    table = grid_table(study.trials, "beta", "alpha")
    assert list(table.index) == space["beta"] and list(table.columns) == space["alpha"]
    assert table.isna().sum().sum() == 1 and table.isna().loc[0.05, 0.1]  # none of its settings ran
    for alpha, beta, _ in mae:
        if (alpha, beta) != (0.1, 0.05):
            best = min(v for (a, b, _), v in mae.items() if (a, b) == (alpha, beta))
            assert table.loc[beta, alpha] == pytest.approx(best)


@pytest.mark.filterwarnings("ignore:Target and region quantiles")  # importances of a flat study
def test_report_draws_the_grid_only_when_two_parameters_vary(tmp_path):
    base = MMIMConfig.preset("synthmosi")
    many = {
        "beta": [0.1, 0.3],
        "alpha": [i / 20 for i in range(1, 13)],
    }  # equal importances: 12 columns
    for i, (space, drawn) in enumerate(
        (
            ({"alpha": [0.1, 0.3]}, False),
            ({"alpha": [0.1, 0.3], "beta": [0.1], "memory_size": [1, 2]}, True),
            (PAPER_SPACE, True),
            (many, True),
        )
    ):
        out = tmp_path / str(i)
        out.mkdir()
        study = made_up_study(space, lambda point: point["alpha"] * (space is not many))
        files = write_report(study, Sweep(base, space, (0, 1), "sqlite://"), out)["files"]
        assert ("grid.png" in files) == (out / "grid.png").exists() == drawn
        if drawn:
            with Image.open(out / "grid.png") as image:  # at most 8 in wide at 150 dpi
                assert image.width <= 8 * 150 and round(image.info["dpi"][0]) == 150


@pytest.mark.slow
def test_best_config_trains_again_to_the_sweeps_numbers(run_cli, swept, tmp_path):
    config = swept / "best_config.json"
    code, out, err = run_cli(
        "train",
        *DATA,
        "--config",
        str(config),
        "--seeds",
        "2",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
    )
    assert code == 0 and epoch_lines(err) == [("0", "1"), ("1", "1")]
    assert json.loads((tmp_path / "config.json").read_text()) == json.loads(config.read_text())
    best = json.loads((swept / "best.json").read_text())
    for run_ in best["runs"]:  # the same setting, seeds and threads: the same numbers
        metrics = json.loads((tmp_path / f"seed_{run_['seed']}" / "metrics.json").read_text())
        assert metrics["valid"] == run_["valid"] and metrics["test"] == run_["test"]
    code, _, err = run_cli(
        "train", *DATA, "--config", str(config), "--preset", "mosi", "--out", str(tmp_path)
    )
    assert code == 2 and "--config and --preset" in err


# ----------------------------------------------------------------------------- a worker killed
# mid-trial
@pytest.mark.slow
def test_killed_worker_then_restart_finishes_the_study(tmp_path):
    space = {"alpha": [0.1, 0.2, 0.3]}
    db = tmp_path / "study.db"
    argv = [
        sys.executable,
        "-m",
        "mmim_lite",
        "sweep",
        *TINY,
        "--space",
        space_file(tmp_path, space),
        "--heartbeat",
        "1",
        "--devices",
        "cpu",
        "--out",
        str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    killed, deadline = None, time.monotonic() + 90
    try:
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:  # read-only look at Optuna's tables: a trial running its setting (heartbeat thread started)
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as con:
                    row = con.execute(
                        "SELECT t.number FROM trials t JOIN trial_user_attributes a ON a.trial_id = "
                        "t.trial_id WHERE t.state = 'RUNNING' AND a.key = 'worker'"
                    ).fetchone()
                killed = row[0] if row else None
            except sqlite3.OperationalError:  # no database or tables yet
                pass
    finally:
        proc.kill()
        proc.wait()
    assert killed is not None, "no trial was seen running"
    assert (
        trials_of(f"sqlite:///{db}")[killed].state == TrialState.RUNNING
    )  # the study as the kill left it
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = trials_of(f"sqlite:///{db}")
    assert trials[killed].state == TrialState.FAIL  # stale heartbeat: failed ...
    point = trials[killed].user_attrs["grid_point"]
    again = [
        t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs["grid_point"] == point
    ]
    assert [t.system_attrs.get("failed_trial") for t in again] == [
        killed
    ]  # ... and its setting retried once
    assert_each_point_complete_once(trials, [{"alpha": a} for a in space["alpha"]])
    assert not (tmp_path / "grid.png").exists()  # one parameter: no grid to draw


@pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage"
)  # the test pops a trial with ask, not optimize
def test_trial_whose_worker_died_before_its_first_heartbeat_is_retried(tmp_path):
    """A worker killed between popping a trial and its first heartbeat: the trial is failed and
    retried too."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    sweep = Sweep(
        base=MMIMConfig.preset("synthmosi", text_encoder="tiny", epochs=1),
        space={"alpha": [0.1, 0.3]},
        seeds=(0,),
        storage=url,
        heartbeat=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        dead = (
            open_study(sweep, open_storage(url, 1)).ask().number
        )  # RUNNING, no heartbeat, no worker
    splits = make_synthmosi(n_train=32, n_valid=16, n_test=16, seed=0).splits
    worker = threading.Thread(target=run_sweep, args=(sweep, splits, tmp_path), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the worker still waits for the dead trial"
    trials = trials_of(url)
    assert trials[dead].state == TrialState.FAIL
    assert_each_point_complete_once(trials, [{"alpha": 0.1}, {"alpha": 0.3}])


# ----------------------------------------------------------------------------- a real PostgreSQL
# server
@pytest.fixture
def postgres_url():
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        pytest.skip(
            "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"
        )
    bindir = Path(initdb[-1]).parent
    base = Path(
        tempfile.mkdtemp(prefix="mmim-pg-")
    )  # not under pytest's root-only folder: postgres must reach it
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(base, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data, log = base / "data", base / "log"
    subprocess.run(
        [
            *as_postgres,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [
            *as_postgres,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -c listen_addresses='' -c unix_socket_directories={base} -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql://postgres@/postgres?host={base}&port={port}"
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_a_postgresql_study(postgres_url, tmp_path):
    argv = [
        "sweep",
        *TINY,
        "--space",
        space_file(tmp_path, SPACE),
        "--storage",
        postgres_url,
        "--study",
        "pg",
        "--workers",
        "2",
        "--devices",
        "cpu",
        "--heartbeat",
        "2",
        "--out",
        str(tmp_path),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert cli.main(argv) == 0
    assert_each_point_complete_once(trials_of(postgres_url, "pg"), POINTS)
    assert not (tmp_path / "study.db").exists()


# ----------------------------------------------------------------------------- old studies
def forget_field(url: str, field: str, study: str = "mmim-lite") -> None:
    """Make the study at ``url`` look as if it was made before config field ``field`` existed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        old = optuna.load_study(study_name=study, storage=open_storage(url))
    identity = old.user_attrs["sweep"]
    del identity["base"][field]
    old.set_user_attr("sweep", identity)


def test_study_made_before_a_config_field_existed_continues_or_says_how(tmp_path):
    """A study whose stored config lacks a field added since ran with the field's default: a sweep
    with that default continues it; another value is refused, naming the option that continues it."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    base = MMIMConfig.preset("synthmosi", text_encoder="tiny", epochs=1)
    assert base.trace_grads is MMIMConfig().trace_grads is False
    sweep = Sweep(base=base, space={"alpha": [0.1, 0.3]}, seeds=(0,), storage=url, heartbeat=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        open_study(sweep, open_storage(url, 1))
        forget_field(url, "trace_grads")
        study = open_study(sweep, open_storage(url, 1))  # continued: no error
        assert "trace_grads" not in study.user_attrs["sweep"]["base"]  # the stored identity kept
        assert len(study.trials) == 2  # and its grid not queued again
        other = Sweep(**{**vars(sweep), "base": base.replace(trace_grads=True)})
        with pytest.raises(SweepError) as err:
            open_study(other, open_storage(url, 1))
        with pytest.raises(SweepError, match="belongs to another sweep"):  # another field changed
            open_study(Sweep(**{**vars(other), "base": base.replace(alpha=0.5)}), open_storage(url))
    message = str(err.value)
    assert "made before config field(s) ['trace_grads'] existed" in message
    assert "--set trace_grads=false" in message and "--study" in message


@pytest.mark.slow
def test_old_study_continues_from_the_command_line_or_fails_with_one_line(run_cli, swept, tmp_path):
    shutil.copy(swept / "study.db", tmp_path / "study.db")
    forget_field(f"sqlite:///{tmp_path / 'study.db'}", "trace_grads")
    argv = ["sweep", *TINY, "--space", space_file(tmp_path, SPACE), "--seeds", "2"]
    argv += ["--devices", "cpu", "--heartbeat", "2", "--out", str(tmp_path)]
    code, out, err = run_cli(*argv)  # every point complete: it only reports
    assert code == 0 and "4 of 4 setting(s) complete" in out, err
    code, out, err = run_cli(*argv, "--trace-grads", "true")
    lines = err.splitlines()
    assert code == 2 and out == "" and len(lines) == 1, err
    assert "['trace_grads']" in lines[0] and "--set trace_grads=false" in lines[0]


# ----------------------------------------------------------------------------- the sweep extra
def test_sweep_without_optuna_names_the_extra_to_install(tmp_path):
    """``mmim-lite sweep`` where optuna cannot be imported fails with one line naming the extra
    (that ``mmim-lite --help`` imports no optuna: test_cli)."""
    without = (
        "import sys; sys.modules['optuna'] = None; from mmim_lite import cli; "
        f"sys.exit(cli.main({['sweep', *TINY, '--out', str(tmp_path)]!r}))"
    )
    done = subprocess.run([sys.executable, "-c", without], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.splitlines() == [
        "mmim-lite: error: the sweep needs optuna: pip install 'mmim-lite[sweep]'"
    ]
    assert not (tmp_path / "study.db").exists()


# ----------------------------------------------------------------------------- bad input
BAD = {
    "bad storage URL": ({"storage": "nosuchdb://x"}, SPACE, "nosuchdb"),
    "unknown parameter": ({}, {"alpha": [0.1], "gamma": [1]}, "unknown parameter 'gamma'"),
    "empty grid": ({}, {"alpha": []}, "'alpha' has an empty grid"),
    "range with grid": (
        {},
        {"lr_main": {"low": 1e-4, "high": 1e-2, "log": True}},
        "--sampler grid",
    ),
    "invalid value": ({}, {"dropout": [0.5, 1.5]}, "dropout must be in [0, 1)"),
    "other sweep, same study": ({"seeds": "3"}, SPACE, "belongs to another sweep"),
}


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.slow
def test_bad_input_fails_with_one_line(run_cli, swept, tmp_path, case):
    options, space, words = BAD[case]
    storage = options.get(
        "storage", f"sqlite:///{swept / 'study.db'}"
    )  # the finished study of `swept`
    path = space_file(tmp_path, space)
    code, out, err = run_cli(
        "sweep",
        *TINY,
        "--space",
        path,
        "--storage",
        storage,
        "--seeds",
        options.get("seeds", "1"),
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 2 and out == "", err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmim-lite: error: "), err
    assert words in lines[0]
    if "storage" not in case and "sweep" not in case:
        assert path in lines[0]  # names the file


# ----------------------------------------------------------------------------- seeds across devices
@pytest.mark.slow
def test_seeds_on_two_cpu_slots_equal_the_sequential_run(run_cli, tmp_path):
    args = ["train", *TINY, "--seeds", "3", "--ba-pairs", "tv,ta,va"]
    assert run_cli(*args, "--device", "cpu", "--out", str(tmp_path / "seq"))[0] == 0
    code, _, err = run_cli(*args, "--devices", "cpu,cpu", "--out", str(tmp_path / "par"))
    assert code == 0 and sorted(epoch_lines(err)) == [
        ("0", "1"),
        ("1", "1"),
        ("2", "1"),
    ]  # each worker's, by seed
    for seed in (0, 1, 2):
        for name in ("metrics.json", "history.csv", "config.json"):
            seq, par = (tmp_path / d / f"seed_{seed}" / name for d in ("seq", "par"))
            if name == "history.csv":  # timings differ, the numbers do not
                seq, par = (
                    [line.rsplit(",", 1)[0] for line in p.read_text().splitlines()]
                    for p in (seq, par)
                )
                assert seq == par
            else:
                assert seq.read_bytes() == par.read_bytes()
    summaries = [json.loads((tmp_path / d / "summary.json").read_text()) for d in ("seq", "par")]
    assert summaries[0] == summaries[1]
