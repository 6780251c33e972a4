"""Tests of the ``mmim-lite`` command line: train, evaluate, synth, resume and bad input.

Everything runs in-process through ``cli.main`` (with the "tiny" random text encoder and a
small SynthMOSI), except two subprocess checks of ``python -m mmim_lite``. Bad input is checked
at the file-descriptor level (``capfd``), so a stray warning or log line would fail the test.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mmim_lite import cli, experiment, formats, runtime
from mmim_lite import train as train_module
from mmim_lite.config import PRESETS, ConfigError, MMIMConfig
from mmim_lite.data import load_dataset
from mmim_lite.metrics import msa_metrics
from mmim_lite.synth import SYNTH_OPTIONS, make_synthmosi

ROOT = Path(__file__).resolve().parents[1]
SIZES = dict(n_train=64, n_valid=32, n_test=48, visual_frames=(5, 20), acoustic_frames=(5, 20))
SYNTH_ARGS = [
    "--data",
    "synthmosi",
    "--n-train",
    "64",
    "--n-valid",
    "32",
    "--n-test",
    "48",
    "--synth-visual-frames",
    "5,20",
    "--synth-acoustic-frames",
    "5,20",
]
TRAIN_ARGS = [
    "train",
    *SYNTH_ARGS,
    "--preset",
    "synthmosi",
    "--text-encoder",
    "tiny",
    "--epochs",
    "2",
    "--seeds",
    "2",
    "--device",
    "cpu",
    "--set",
    "alpha=0.2",
    "--ba-pairs",
    "tv,ta,va",
    "--trace-every",
    "1",
]
# : the line each epoch prints off a terminal (seed, epoch, training loss and its task term, valid
# MAE, time)
EPOCH_LINE = (
    r"seed (\d+) epoch (\d+)/\d+: train loss \d+\.\d{4} \(task \d\.\d{4}\), valid MAE \d\.\d{4}, "
    r"best epoch \d+, \d+\.\d s"
)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", DeprecationWarning)
        assert cli.main([*TRAIN_ARGS, "--out", str(out)]) == 0
    return out


# ----------------------------------------------------------------------------- train
def test_train_writes_config_history_metrics_and_summary(run_dir):
    expected = MMIMConfig.preset(
        "synthmosi",
        text_encoder="tiny",
        epochs=2,
        alpha=0.2,
        ba_pairs=("tv", "ta", "va"),
        trace_every=1,
    )
    assert read_json(run_dir / "config.json") == expected.to_dict()
    data = read_json(run_dir / "data.json")
    assert data["source"] == "synthmosi"
    assert data["synth"] == {
        **{k: list(v) if isinstance(v, tuple) else v for k, v in SIZES.items()},
        "seed": 0,
        "visual_dim": 20,
        "acoustic_dim": 5,
        "irony_rate": 0.1,
        "text_noise": 0.7,
        "visual_signal": 0.25,
        "acoustic_signal": 0.2,
        "n_speakers": [52, 10, 31],
        "nuisance": 0.0,
        "share_speaker": True,
        "share_frame_count": True,
    }
    tests = []
    for seed in (0, 1):
        seed_dir = run_dir / f"seed_{seed}"
        assert read_json(seed_dir / "config.json") == expected.replace(seed=seed).to_dict()
        with open(seed_dir / "history.csv", newline="") as fh:
            assert [int(row["epoch"]) for row in csv.DictReader(fh)] == [1, 2]
        metrics = read_json(seed_dir / "metrics.json")
        assert metrics["seed"] == seed and set(metrics["test"]) == set(
            msa_metrics([0.5, -1], [1, -1])
        )
        assert (seed_dir / "best.pt").is_file() and (seed_dir / "checkpoint.pt").is_file()
        tests.append(metrics["test"])
    with open(run_dir / "history.csv", newline="") as fh:  # all seeds in one table
        rows = [(r["seed"], r["epoch"]) for r in csv.DictReader(fh)]
    assert rows == [("0", "1"), ("0", "2"), ("1", "1"), ("1", "2")]
    summary = read_json(run_dir / "summary.json")
    assert summary["seeds"] == [0, 1] and summary["n_runs"] == 2 and summary["data"] == data
    for key in ("mae", "corr", "acc2_non0"):  # mean and sample std over seeds, recomputed here
        values = np.array([t[key] for t in tests])
        assert summary["test"][key]["mean"] == pytest.approx(values.mean(), abs=1e-12)
        assert summary["test"][key]["std"] == pytest.approx(values.std(ddof=1), abs=1e-12)
    assert tests[0] != tests[1]  # two seeds really are two runs


def test_summary_holds_the_oracle_of_the_same_synthmosi(run_dir):
    synth = make_synthmosi(**SIZES, seed=0)
    summary = read_json(run_dir / "summary.json")
    for split in ("valid", "test"):
        truths = np.array([s.label for s in synth.splits[split]], dtype=np.float32)
        assert summary["oracle"][split] == pytest.approx(
            msa_metrics(synth.oracle(split), truths), abs=1e-12
        )
    # the Bayes-optimal oracle beats a 2-epoch tiny model (and is therefore the right draw)
    assert summary["oracle"]["test"]["mae"] < summary["test"]["mae"]["mean"]


def test_train_prints_a_short_summary_and_no_noise(run_cli, tmp_path):
    code, out, err = run_cli(*TRAIN_ARGS, "--epochs", "2", "--seeds", "1", "--out", str(tmp_path))
    # off a terminal: one line per epoch on stderr (no bars), and nothing else (no warnings)
    assert [re.fullmatch(EPOCH_LINE, line).groups() for line in err.splitlines()] == [
        ("0", "1"),
        ("0", "2"),
    ], err
    lines = out.strip().splitlines()
    assert re.match(r"seed 0: best epoch [12]/2, test mae ", lines[0])
    assert any(line.startswith("oracle test: mae ") for line in lines)
    assert lines[-1] == f"wrote {tmp_path / 'summary.json'}"
    summary = read_json(
        tmp_path / "summary.json"
    )  # strict JSON: the std of one run is null, not NaN
    assert summary["test"]["mae"]["std"] is None and summary["test"]["mae"]["mean"] > 0


def test_options_are_typed_from_the_config_fields_and_help_comes_from_their_metadata(
    capsys, monkeypatch
):
    """Strings become typed values only here, in the CLI: each option parses by its field's type,
    ``--set`` uses the same parsers, and --help prints each field's ``help`` metadata."""
    parser = cli.build_parser()
    args = parser.parse_args(
        [
            "train",
            "--data",
            "synthmosi",
            "--out",
            "o",
            "--preset",
            "mosei",
            "--alpha",
            "0.05",
            "--set",
            "ba_pairs=tv,ta,va",
            "--cpc-terms",
            "none",
            "--set",
            "memory-size=0",
            "--freeze-text",
            "--pack-text",
            "false",
            "--q-min-logvar",
            "none",
            "--epochs",
            "3",
        ]
    )
    expected = MMIMConfig.preset(
        "mosei",
        alpha=0.05,
        ba_pairs=("tv", "ta", "va"),
        cpc_terms=(),
        memory_size=0,
        freeze_text=True,
        pack_text=False,
        q_min_logvar=None,
        epochs=3,
    )
    assert cli.config_from_args(args) == expected
    later = parser.parse_args(
        ["train", "--data", "synthmosi", "--out", "o", "--set", "alpha=0.5", "--alpha", "0.2"]
    )
    assert cli.config_from_args(later).alpha == 0.2  # a --<field> option wins over --set
    for argv, words in (
        (["--epochs", "2.5"], "--epochs: invalid int"),
        (["--freeze-text", "maybe"], "--freeze-text"),
        (["--set", "epochs=2.5"], "--set epochs: invalid int"),
        (["--set", "bf16=maybe"], "bf16"),
    ):
        with pytest.raises(cli.CLIError, match=words):
            cli.config_from_args(
                parser.parse_args(["train", "--data", "synthmosi", "--out", "o", *argv])
            )
    monkeypatch.setenv("COLUMNS", "2000")  # argparse wraps help at the terminal width
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(MMIMConfig):
        if f.name != "preset_name":
            assert " ".join(f.metadata["help"].split()) in shown, f.name


# ----------------------------------------------------------------------------- evaluate
def test_evaluate_reproduces_stored_metrics_exactly(run_cli, run_dir):
    stored = read_json(run_dir / "seed_1" / "metrics.json")
    ckpt = str(run_dir / "seed_1" / "best.pt")
    code, out, err = run_cli("evaluate", "--checkpoint", ckpt, "--device", "cpu")
    assert code == 0 and err == "" and len(out.strip().splitlines()) == 1
    assert json.loads(out) == stored["test"]  # exact, not approximate
    # explicit generator options equal to training's give the same; valid split as well
    code, out, _ = run_cli("evaluate", "--checkpoint", ckpt, *SYNTH_ARGS, "--split", "valid")
    assert code == 0 and json.loads(out) == stored["valid"]
    # another SynthMOSI draw gives other numbers: data.json really decides the data
    code, out, _ = run_cli(
        "evaluate", "--checkpoint", ckpt, "--data", "synthmosi", "--synth-seed", "5"
    )
    assert code == 0 and json.loads(out) != stored["test"]


# ----------------------------------------------------------------------------- synth + files
def test_synth_help_lists_every_generator_option(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "2000")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["synth", "--help"])
    shown = capsys.readouterr().out
    for flag, _ in SYNTH_OPTIONS.values():
        assert flag in shown
    assert "--synth-nuisance K strength of a per-clip latent" in " ".join(shown.split())
    assert "--synth-share-frame-count BOOL face and voice with one frame count" in " ".join(
        shown.split()
    )


@pytest.mark.parametrize("fmt", ["mmsa", "mult"])
def test_synth_writes_a_released_format_that_loads_back(run_cli, tmp_path, fmt):
    path = tmp_path / "data" / f"synth_{fmt}.pkl"
    code, out, err = run_cli(
        "synth",
        "--out",
        str(path),
        "--format",
        fmt,
        "--seed",
        "3",
        "--n-train",
        "20",
        "--n-valid",
        "8",
        "--n-test",
        "6",
    )
    assert code == 0 and err == "" and "20/8/6" in out
    if fmt == "mult":
        assert (path.parent / "label.csv").is_file()
    loaded, truth = load_dataset(path), make_synthmosi(20, 8, 6, seed=3).splits
    for split in ("train", "valid", "test"):
        assert [s.id for s in loaded[split]] == [s.id for s in truth[split]]
        assert [s.text for s in loaded[split]] == [s.text for s in truth[split]]
        assert [s.label for s in loaded[split]] == [
            float(np.float32(s.label)) for s in truth[split]
        ]
        for a, b in zip(loaded[split], truth[split]):
            np.testing.assert_array_equal(a.visual, b.visual)
            np.testing.assert_array_equal(a.acoustic, b.acoustic)


def test_train_and_evaluate_on_a_mult_file_with_label_csv(run_cli, tmp_path):
    pkl, labels = tmp_path / "mosi_data_noalign.pkl", tmp_path / "texts" / "labels.csv"
    assert (
        run_cli(
            "synth",
            "--out",
            str(pkl),
            "--format",
            "mult",
            "--label-csv",
            str(labels),
            "--n-train",
            "40",
            "--n-valid",
            "16",
            "--n-test",
            "16",
        )[0]
        == 0
    )
    out = tmp_path / "run"
    code, _, err = run_cli(
        "train",
        "--data",
        str(pkl),
        "--label-csv",
        str(labels),
        "--preset",
        "mosi",
        "--text-encoder",
        "tiny",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        str(out),
    )
    assert code == 0 and re.fullmatch(EPOCH_LINE, err.strip())
    summary = read_json(out / "summary.json")
    assert "oracle" not in summary and summary["data"]["source"] == "file"
    code, printed, _ = run_cli(
        "evaluate", "--checkpoint", str(out / "seed_0" / "best.pt")
    )  # data.json
    assert code == 0 and json.loads(printed) == read_json(out / "seed_0" / "metrics.json")["test"]


# ----------------------------------------------------------------------------- resume
def test_resume_after_interruption_equals_uninterrupted(run_cli, run_dir, tmp_path, monkeypatch):
    original = runtime.RunFiles.on_epoch

    def interrupted(self, trainer, row):  # seed 1 stops after its first epoch's run files
        original(self, trainer, row)
        if trainer.config.seed == 1 and trainer.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(runtime.RunFiles, "on_epoch", interrupted)
    code, _, err = run_cli(*TRAIN_ARGS, "--out", str(tmp_path))
    assert code == 130 and err.splitlines()[-1] == "mmim-lite: interrupted"
    assert not (tmp_path / "seed_1" / "metrics.json").exists()
    assert runtime.load_checkpoint(tmp_path / "seed_1" / "checkpoint.pt")["epoch"] == 1
    monkeypatch.setattr(runtime.RunFiles, "on_epoch", original)
    assert run_cli(*TRAIN_ARGS, "--out", str(tmp_path), "--resume")[0] == 0
    for seed in (0, 1):
        name = f"seed_{seed}/metrics.json"
        assert read_json(tmp_path / name) == read_json(run_dir / name)
    assert (
        read_json(tmp_path / "summary.json")["test"] == read_json(run_dir / "summary.json")["test"]
    )
    # a finished run resumes without training again
    monkeypatch.setattr(
        train_module.Trainer, "fit", lambda self, *callbacks: pytest.fail("trained again")
    )
    assert run_cli(*TRAIN_ARGS, "--out", str(tmp_path), "--resume")[0] == 0
    # resuming with other settings is refused, naming the field
    code, _, err = run_cli(*TRAIN_ARGS, "--alpha", "0.5", "--out", str(tmp_path), "--resume")
    assert code == 2 and err.count("\n") == 1 and "alpha" in err


def test_resume_with_more_epochs_continues_the_run(run_cli, run_dir, tmp_path):
    """A finished 2-epoch run resumed with --epochs 3 (and a higher --patience) trains one more
    epoch from its checkpoint and ends exactly where a straight 3-epoch run ends."""
    straight = tmp_path / "straight"
    args3 = [*TRAIN_ARGS, "--epochs", "3", "--patience", "9"]  # the later option wins
    assert run_cli(*args3, "--out", str(straight))[0] == 0
    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed)
    data = read_json(resumed / "data.json")
    for key in ("n_speakers", "nuisance", "share_speaker", "share_frame_count"):
        del data["synth"][
            key
        ]  # a run made before these generator options existed resumes with their defaults
    (resumed / "data.json").write_text(json.dumps(data))
    assert run_cli(*args3, "--out", str(resumed), "--resume")[0] == 0
    for seed in (0, 1):
        assert read_json(resumed / f"seed_{seed}" / "metrics.json") == read_json(
            straight / f"seed_{seed}" / "metrics.json"
        )
        assert read_json(resumed / f"seed_{seed}" / "metrics.json")["epochs_run"] == 3
        assert read_json(resumed / f"seed_{seed}" / "config.json")["epochs"] == 3
    assert read_json(resumed / "config.json") == read_json(straight / "config.json")
    assert (
        read_json(resumed / "summary.json")["test"] == read_json(straight / "summary.json")["test"]
    )
    # lowering them again, or changing anything else, is refused with one line naming the field
    for extra, word in ((["--epochs", "2"], "epochs 3 -> 2"), (["--alpha", "0.5"], "alpha")):
        code, _, err = run_cli(*args3, *extra, "--out", str(resumed), "--resume")
        assert code == 2 and err.count("\n") == 1 and word in err, err


# ----------------------------------------------------------------------------- bad input
SMALL = ["--epochs", "1", "--text-encoder", "tiny"]
BAD = {
    "missing data file": (
        ["train", "--data", "{tmp}/nothing.pkl", "--out", "{tmp}/o"],
        "no such file",
    ),
    "unknown preset": (
        ["train", "--data", "synthmosi", "--preset", "imdb", "--out", "{tmp}/o"],
        "unknown preset",
    ),
    "unknown encoder": (
        ["train", "--data", "synthmosi", "--text-encoder", "no-such-bert", "--out", "{tmp}/o"],
        "unknown text encoder",
    ),
    "unknown field": (
        ["train", *SYNTH_ARGS[:2], "--set", "gamma=1", "--out", "{tmp}/o"],
        "unknown config field",
    ),
    "bad --set": (
        ["train", "--data", "synthmosi", "--set", "alpha", "--out", "{tmp}/o"],
        "field=value",
    ),
    "bad number": (["train", "--data", "synthmosi", "--alpha", "abc", "--out", "{tmp}/o"], "alpha"),
    "bad pair": (
        ["train", "--data", "synthmosi", "--ba-pairs", "tx", "--out", "{tmp}/o"],
        "ba_pairs",
    ),
    "bad seeds": (["train", "--data", "synthmosi", "--seeds", "0", "--out", "{tmp}/o"], "--seeds"),
    "bad size": (
        ["train", "--data", "synthmosi", "--n-train", "ten", "--out", "{tmp}/o"],
        "--n-train",
    ),
    "bad device": (
        ["train", "--data", "synthmosi", "--device", "tpu", "--out", "{tmp}/o"],
        "device",
    ),
    "no --out": (["train", "--data", "synthmosi"], "--out"),
    "synth option on a file": (
        ["train", "--data", "{tmp}", "--n-train", "5", "--out", "{tmp}/o"],
        "synthmosi",
    ),
    "mult without csv": (
        ["train", "--data", "{tmp}/m/mosi_data_noalign.pkl", *SMALL, "--out", "{tmp}/o"],
        "expected --label-csv CSV",
    ),  # the option, not the library's keyword
    "not a pickle": (
        ["train", "--data", "{tmp}/notes.txt", *SMALL, "--out", "{tmp}/o"],
        "notes.txt",
    ),
    "no checkpoint": (
        ["evaluate", "--checkpoint", "{tmp}/best.pt", "--data", "synthmosi"],
        "no such file",
    ),
    "not a checkpoint": (
        ["evaluate", "--checkpoint", "{tmp}/notes.txt", "--data", "synthmosi"],
        "checkpoint",
    ),
    "evaluate without data": (
        ["evaluate", "--checkpoint", "{run}/seed_0/best.pt", "--data", "{tmp}/x.pkl"],
        "no such",
    ),
    "wrong feature size": (
        [
            "evaluate",
            "--checkpoint",
            "{run}/seed_0/best.pt",
            *SYNTH_ARGS,
            "--synth-visual-dim",
            "7",
        ],
        "visual",
    ),
    "bad format": (["synth", "--out", "{tmp}/s.pkl", "--format", "csv"], "invalid choice"),
    "synth into a folder": (["synth", "--out", "{tmp}", "--format", "mmsa"], "folder"),
    "unknown command": (["fit"], "invalid choice"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_fails_with_one_line(capfd, run_cli, tmp_path, run_dir, case):
    (tmp_path / "notes.txt").write_text("not a pickle\n")
    if case == "mult without csv":
        assert (
            cli.main(
                [
                    "synth",
                    "--out",
                    str(tmp_path / "m" / "mosi_data_noalign.pkl"),
                    "--format",
                    "mult",
                    "--label-csv",
                    str(tmp_path / "elsewhere.csv"),
                    "--n-train",
                    "8",
                    "--n-valid",
                    "4",
                    "--n-test",
                    "4",
                ]
            )
            == 0
        )
        capfd.readouterr()
    argv, words = BAD[case]
    code, out, err = run_cli(*(a.format(tmp=tmp_path, run=run_dir) for a in argv))
    assert code != 0 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmim-lite: error: "), err
    assert words.lower() in lines[0].lower()


def test_unreachable_bert_base_fails_fast_with_a_hint(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a machine without the hub
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    code, out, err = run_cli(
        "train",
        "--data",
        "synthmosi",
        "--text-encoder",
        "bert-base-uncased",
        "--out",
        str(tmp_path / "o"),
    )
    assert code != 0 and out == "" and err.count("\n") == 1
    assert "bert-base-uncased" in err and "minilm" in err
    assert not (tmp_path / "o").exists()  # failed before writing anything


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_request_without_cuda(run_cli, tmp_path):
    code, _, err = run_cli(
        "train", "--data", "synthmosi", "--device", "cuda", "--out", str(tmp_path)
    )
    assert code != 0 and err.count("\n") == 1 and "CUDA is not available" in err


# ----------------------------------------------------------------------------- the entry point
@pytest.mark.slow
def test_python_dash_m_help_and_one_line_error():
    def python_m(*argv):
        return subprocess.run(
            [sys.executable, "-m", "mmim_lite", *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = python_m("--help")
    assert done.returncode == 0 and all(c in done.stdout for c in ("train", "evaluate", "synth"))
    done = python_m("train", "--data", "synthmosi", "--preset", "imdb", "--out", "unused")
    assert done.returncode == 2 and done.stdout == ""
    assert (
        done.stderr.splitlines() == [done.stderr.strip()] and "unknown preset 'imdb'" in done.stderr
    )


def test_labelled_fraction_and_generator_knobs_from_the_cli(tmp_path, capsys):
    """--labeled-fraction reaches config.json, summary.json and each run; the generator knobs reach
    data.json and change the data (face and voice without signal: the oracle's visual likelihood is
    flat)."""
    out = tmp_path / "few"
    assert (
        cli.main(
            [
                "train",
                *SYNTH_ARGS,
                "--preset",
                "synthmosi",
                "--text-encoder",
                "tiny",
                "--epochs",
                "1",
                "--labeled-fraction",
                "0.25",
                "--synth-visual-signal",
                "0",
                "--synth-irony-rate",
                "0.3",
                "--synth-speakers",
                "8,3,4",
                "--synth-nuisance",
                "0.5",
                "--synth-share-speaker",
                "false",
                "--synth-share-frame-count",
                "FALSE",
                "--frame-encoder",
                "mean",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert read_json(out / "config.json")["labeled_fraction"] == 0.25
    assert read_json(out / "config.json")["frame_encoder"] == "mean"
    summary = read_json(out / "summary.json")
    assert summary["labeled_fraction"] == 0.25 and summary["use_unlabeled"] is True
    assert (summary["runs"][0]["n_labeled"], summary["runs"][0]["n_train"]) == (16, 64)
    synth = read_json(out / "data.json")["synth"]
    assert (synth["visual_signal"], synth["irony_rate"], synth["acoustic_signal"]) == (
        0.0,
        0.3,
        0.2,
    )
    assert synth["n_speakers"] == [8, 3, 4]
    assert (synth["nuisance"], synth["share_speaker"], synth["share_frame_count"]) == (
        0.5,
        False,
        False,
    )
    assert read_json(out / "summary.json")["data"]["synth"] == synth
    for wrong in ("8,3", "8,3,x"):  # three ints or a usage error naming the option and the form
        assert (
            cli.main(
                ["train", *SYNTH_ARGS, "--synth-speakers", wrong, "--out", str(tmp_path / "no")]
            )
            == 2
        )
        assert (
            f"--synth-speakers: invalid TRAIN,VALID,TEST value: '{wrong}'"
            in capsys.readouterr().err
        )
    assert (
        cli.main(
            ["train", *SYNTH_ARGS, "--synth-share-speaker", "no", "--out", str(tmp_path / "no")]
        )
        == 2
    )
    assert "--synth-share-speaker: invalid true/false value: 'no'" in capsys.readouterr().err
    assert (
        cli.main(["train", *SYNTH_ARGS, "--synth-nuisance", "-1", "--out", str(tmp_path / "no")])
        == 2
    )
    assert "nuisance" in capsys.readouterr().err and not (tmp_path / "no").exists()
    data = make_synthmosi(**{**SIZES, "visual_signal": 0.0, "irony_rate": 0.3})
    flat = data.log_likelihood("test", "v")
    assert np.allclose(flat, flat[:, :1])  # no visual evidence about s


# ----------------------------------------------------------------------------- runs that cannot be
# lost or mixed
class _System:  # a checkpoint's pickle that would run a command if it were ever called
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_file_that_is_no_checkpoint_gets_one_line_and_never_torchs_advice(run_cli, tmp_path):
    """Objects a checkpoint never holds are refused (nothing executed, no advice to load them
    anyway); a dict with the right format but missing keys names them; a text or empty file says
    what it is."""
    marker = tmp_path / "executed"
    torch.save({"format": runtime.CHECKPOINT_FORMAT, "x": _System(marker)}, tmp_path / "evil.pt")
    torch.save({"format": runtime.CHECKPOINT_FORMAT, "x": np.zeros(3)}, tmp_path / "numpy.pt")
    torch.save({"format": runtime.CHECKPOINT_FORMAT}, tmp_path / "format_only.pt")
    (tmp_path / "text.pt").write_text("eh, not a checkpoint\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    cases = {
        "evil.pt": "holds objects an mmim-lite checkpoint never holds",
        "numpy.pt": "nothing was loaded or executed",
        "format_only.pt": "missing key(s) ['kind', 'config'",
        "text.pt": "found another kind of file",
        "empty.pt": "found an empty file",
    }
    for name, words in cases.items():
        code, out, err = run_cli(
            "evaluate", "--checkpoint", str(tmp_path / name), "--data", "synthmosi"
        )
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert words in err and str(tmp_path / name) in err and not err.rstrip().endswith(":"), err
        assert not any(
            w in err for w in ("weights_only", "add_safe_globals", "\x1b", "Re-running")
        ), err
    assert not marker.exists()


def test_a_folder_holding_a_run_is_refused_unless_resume_or_overwrite(run_cli, run_dir, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, _, err = run_cli(*TRAIN_ARGS, "--alpha", "0.1", "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and "already holds a run" in err
    assert "--resume" in err and "--overwrite" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing touched
    code, _, _ = run_cli(
        *TRAIN_ARGS,
        "--alpha",
        "0.1",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--overwrite",
    )
    assert code == 0 and sorted(p.name for p in out.glob("seed_*")) == [
        "seed_0"
    ]  # the old seed_1 is gone
    assert (
        read_json(out / "config.json")["alpha"]
        == read_json(out / "seed_0" / "config.json")["alpha"]
        == 0.1
    )
    assert read_json(out / "summary.json")["seeds"] == [0]
    assert run_cli(*TRAIN_ARGS, "--out", str(out), "--overwrite", "--resume")[0] == 2


def test_a_folder_in_use_is_refused_at_once_and_a_killed_holder_leaves_no_lock(run_cli, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from mmim_lite.runtime import run_folder\n"
            f"with run_folder({str(out)!r}):\n    print('held', flush=True); time.sleep(120)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        code, _, err = run_cli(*TRAIN_ARGS, "--out", str(out))
        assert code == 2 and err.count("\n") == 1 and "in use by another mmim-lite process" in err
        assert time.monotonic() - start < 5 and not (out / "config.json").exists()
    finally:
        holder.kill()  # SIGKILL: the system releases its lock
        holder.wait()
    code, _, _ = run_cli(*TRAIN_ARGS, "--seeds", "1", "--epochs", "1", "--out", str(out))
    assert code == 0 and (out / "summary.json").is_file()


def test_two_writers_of_one_file_never_share_a_temporary_file(tmp_path):
    target = tmp_path / "config.json"
    with formats.atomic_path(target) as first, formats.atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("first")
        second.write_text("second")
    assert target.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_checks_before_work_report_every_problem_and_write_nothing(run_cli, tmp_path, monkeypatch):
    """A bad device is refused before any file is written; a bad data file and an unreachable text
    encoder are both reported in one line; evaluate reads the checkpoint before making any data."""
    for device in ("meta", "mps", "cuda:99"):
        code, _, err = run_cli(*TRAIN_ARGS, "--device", device, "--out", str(tmp_path / "o"))
        assert code == 2 and err.count("\n") == 1 and f"device {device!r}" in err, err
        assert not (tmp_path / "o").exists()
    (tmp_path / "notes.txt").write_text("not a pickle\n")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    code, _, err = run_cli(
        "train",
        "--data",
        str(tmp_path / "notes.txt"),
        "--preset",
        "mosi",
        "--out",
        str(tmp_path / "o"),
    )
    assert (
        code == 2 and err.count("\n") == 1 and "notes.txt" in err and "bert-base-uncased" in err
    ), err
    assert not (tmp_path / "o").exists()
    monkeypatch.setattr(
        experiment,
        "make_synthmosi",
        lambda **_: pytest.fail("data made before the checkpoint was read"),
    )
    code, _, err = run_cli(
        "evaluate", "--checkpoint", str(tmp_path / "notes.txt"), "--data", "synthmosi"
    )
    assert code == 2 and "notes.txt" in err


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError(
            "[enforce fail at inline_container.cc:672] . unexpected pos 2273920 vs 2273808"
        ),
    ],
)
def test_a_full_disk_is_named_the_files_stay_intact_and_resume_continues(
    run_cli, run_dir, tmp_path, monkeypatch, error
):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    checkpoint = out / "seed_0" / "checkpoint.pt"
    before = checkpoint.read_bytes()

    def full(obj, path, *args, **kwargs):  # the disk fills half-way through the file
        Path(path).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise error

    monkeypatch.setattr(runtime.torch, "save", full)
    args3 = [*TRAIN_ARGS, "--epochs", "3", "--out", str(out), "--resume"]
    code, _, err = run_cli(*args3)
    assert code == 2 and err.splitlines()[-1] == (
        f"mmim-lite: error: no space left on device while writing "
        f"{checkpoint}; free space and rerun with --resume to continue"
    )
    assert checkpoint.read_bytes() == before and not list(out.rglob("*.tmp"))
    monkeypatch.undo()
    assert run_cli(*args3)[0] == 0 and read_json(out / "seed_0" / "metrics.json")["epochs_run"] == 3


def test_small_surprises(run_cli, tmp_path, monkeypatch):
    """--data synthmosi beside a folder of that name says which it used; a partial --config starts
    from the default preset; messages name options and values, not internals; --devices , and
    non-finite numbers are usage errors."""
    monkeypatch.chdir(tmp_path)
    for argv, words in (
        (["--freeze-text", "maybe"], "--freeze-text: invalid true/false value: 'maybe'"),
        (["--devices", ","], "--devices: invalid device list value: ','"),
        (["--alpha", "inf"], "--alpha: invalid finite float value: 'inf'"),
        (["--synth-irony-rate", "nan"], "--synth-irony-rate: invalid finite float value: 'nan'"),
        (["--set", "beta=nan"], "--set beta: invalid float value 'nan'"),
    ):
        code, _, err = run_cli("train", "--data", "synthmosi", "--out", "o", *argv)
        assert code == 2 and err.count("\n") == 1 and words in err and "_" + "boolean" not in err, (
            err
        )
    (tmp_path / "synthmosi").mkdir()
    code, _, err = run_cli(*TRAIN_ARGS, "--seeds", "1", "--epochs", "1", "--out", "r")
    assert code == 0 and "--data synthmosi is the generated SynthMOSI" in err.splitlines()[0]
    assert read_json(tmp_path / "r" / "data.json")["source"] == "synthmosi"
    code, _, err = run_cli(
        "train", "--data", "./synthmosi", "--out", "r2"
    )  # the folder: a file is expected
    assert code == 2 and "synthmosi: expected exactly one of" in err
    (tmp_path / "part.json").write_text('{"epochs": 1}')
    args = cli.build_parser().parse_args(
        ["train", "--data", "synthmosi", "--out", "o", "--config", "part.json"]
    )
    assert cli.config_from_args(args) == MMIMConfig.preset(cli.DEFAULT_PRESET, epochs=1)
    code, _, err = run_cli(
        *TRAIN_ARGS,
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--synth-seed",
        "5",
        "--n-train",
        "60",
        "--out",
        "r",
        "--resume",
    )
    assert (
        code == 2
        and "--n-train: 64 in data.json, 60 here; --synth-seed: 0 in data.json, 5 here" in err
    ), err
    with pytest.raises(ConfigError, match="alpha must be a finite number"):
        MMIMConfig(alpha=math.inf)


@pytest.mark.slow
def test_ctrl_c_on_a_sweep_with_two_workers_prints_one_line(tmp_path):
    """Each trial reports its epochs on stderr; SIGINT (Ctrl-C reaches the whole process group)
    stops both workers with one line, no worker traceback and no leaked-semaphore warning."""
    (tmp_path / "space.json").write_text('{"alpha": [0.1, 0.2, 0.3]}')
    argv = [
        sys.executable,
        "-m",
        "mmim_lite",
        "sweep",
        *SYNTH_ARGS,
        "--text-encoder",
        "tiny",
        "--epochs",
        "500",
        "--patience",
        "0",
        "--space",
        str(tmp_path / "space.json"),
        "--workers",
        "2",
        "--devices",
        "cpu",
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        seen = set()  # both workers' trials report their first epoch
        while len(seen) < 2 and (line := proc.stderr.readline()):
            if match := re.fullmatch(r"trial (\d+) " + EPOCH_LINE, line.strip()):
                seen.add(match.group(1))
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert len(seen) == 2 and proc.returncode == 130, err
    assert [
        line for line in err.splitlines() if not re.fullmatch(r"trial \d+ " + EPOCH_LINE, line)
    ] == ["mmim-lite: interrupted"], err


# ----------------------------------------------------------------------------- options from the
# config's fields
def test_help_answers_without_torch_scikit_learn_or_optuna():
    """``mmim-lite``, ``mmim-lite --help`` and each command's --help load none of the libraries that
    take seconds to import (torch alone: ~3 s of CPU); the command that runs loads them."""
    script = (
        "import contextlib, io, sys\n"
        "from mmim_lite import cli\n"
        "for argv in ([], ['--help'], *([c, '--help'] for c in ('train', 'evaluate', 'synth', "
        "'sweep'))):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as shown:\n"
        "        assert cli.main(argv) == 0 and 'usage: mmim-lite' in shown.getvalue(), argv\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'sklearn', 'optuna', 'transformers'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "[]", (done.stdout, done.stderr)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--alpha", "abc"], "argument --alpha: invalid finite float value: 'abc'"),
        (["--epochs", "2.5"], "argument --epochs: invalid int value: '2.5'"),
        (
            ["--use-unlabeled", "maybe"],
            "argument --use-unlabeled: invalid true/false value: 'maybe'",
        ),
        (["--q-min-logvar", "low"], "argument --q-min-logvar: invalid finite float value: 'low'"),
        (["--set", "alpha=abc"], "--set alpha: invalid float value 'abc'"),
        (["--preset", "imdb"], "--preset: unknown preset 'imdb'; expected one of ('mosi', "),
        (["--config", "missing.json"], "--config 'missing.json': expected a config JSON object"),
        (["--config", "c.json", "--preset", "mosi"], "--config and --preset both give"),
    ],
)
def test_a_bad_value_gets_one_line_naming_the_option_and_what_was_expected(
    run_cli, tmp_path, monkeypatch, argv, words
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.json").write_text('{"alpha": 0.2}')
    code, out, err = run_cli("train", "--data", "synthmosi", "--out", "o", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("mmim-lite: error: ") and words in err, err
    assert not (tmp_path / "o").exists()


def test_a_preset_is_the_starting_config_and_given_options_override_it():
    """Without --preset: the default preset; with one: its values, except the fields given as
    options or with --set (an option wins over --set)."""
    parser = cli.build_parser()
    base = ["train", "--data", "synthmosi", "--out", "o"]
    assert cli.config_from_args(parser.parse_args(base)) == MMIMConfig.preset(cli.DEFAULT_PRESET)
    for name in PRESETS:
        args = parser.parse_args(
            [*base, "--preset", name, "--beta", "0.2", "--set", "epochs=3", "--set", "beta=0.4"]
            + ["--use-unlabeled", "false", "--trace-grads", "--ba-pairs", "tv"]
        )
        config = cli.config_from_args(args)
        expected = MMIMConfig.preset(
            name, beta=0.2, epochs=3, use_unlabeled=False, trace_grads=True, ba_pairs=("tv",)
        )
        assert config == expected and config.preset_name == name
        assert (config.alpha, config.batch_size) == (
            PRESETS[name]["alpha"],
            PRESETS[name]["batch_size"],
        )  # what is not given stays the preset's
    assert len({MMIMConfig.preset(name).alpha for name in PRESETS}) > 1  # the presets differ


def test_a_config_file_is_the_starting_config_and_given_options_override_it(tmp_path):
    """--config FILE (a run's config.json, a sweep's best_config.json, or any part of one) starts
    the config instead of a preset; options override it; a bad file is one error naming it."""
    stored = MMIMConfig.preset("mosei", alpha=0.05, ba_pairs=("va",))
    (tmp_path / "config.json").write_text(json.dumps(stored.to_dict()))
    parser = cli.build_parser()
    for command in ("train", "sweep"):
        args = parser.parse_args(
            [
                command,
                "--data",
                "synthmosi",
                "--out",
                "o",
                "--config",
                str(tmp_path / "config.json"),
            ]
            + ["--beta", "0.2", "--set", "epochs=3"]
        )
        assert cli.config_from_args(args) == stored.replace(beta=0.2, epochs=3)
    (tmp_path / "bad.json").write_text('{"alpha": "high"}')
    args = parser.parse_args(
        ["train", "--data", "synthmosi", "--out", "o", "--config", str(tmp_path / "bad.json")]
    )
    with pytest.raises(cli.CLIError, match=r"--config .*bad\.json: alpha must be of type float"):
        cli.config_from_args(args)


def test_sweep_help_names_the_papers_grid(capsys, monkeypatch):
    """The help of --space spells out Sec. 4.3's grid as sweep.PAPER_SPACE holds it (written out,
    so that --help does not import the sweep's libraries)."""
    from mmim_lite.sweep import PAPER_SPACE

    monkeypatch.setenv("COLUMNS", "2000")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["sweep", "--help"])
    grid = " x ".join(f"{k} {len(v)}" for k, v in PAPER_SPACE.items())
    assert f"'paper' (Sec. 4.3: {grid})" in " ".join(capsys.readouterr().out.split())


def test_help_shows_each_fields_default_as_it_is_typed(capsys, monkeypatch):
    """Each field's help ends with the default preset's value in the form the option takes:
    giving every field its shown value reproduces that preset from another one."""
    monkeypatch.setenv("COLUMNS", "2000")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    shown, argv = " ".join(capsys.readouterr().out.split()), []
    for f in dataclasses.fields(MMIMConfig):
        if f.name != "preset_name":
            help_text = re.escape(" ".join(f.metadata["help"].split()))
            assert (match := re.search(help_text + r" \(default (\S+)\)", shown)), f.name
            argv += ["--" + f.name.replace("_", "-"), match.group(1)]
    args = cli.build_parser().parse_args(
        ["train", "--data", "synthmosi", "--out", "o", "--preset", "mosi", *argv]
    )
    assert cli.config_from_args(args) == MMIMConfig.preset(cli.DEFAULT_PRESET, preset_name="mosi")
