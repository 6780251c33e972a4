"""Committed result files: provenance, regeneration, and staleness against today's presets and
CLI."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mmim_lite import __version__
from mmim_lite.cli import build_parser, config_from_args
from mmim_lite.config import MMIMConfig
from mmim_lite.synth import make_synthmosi

ROOT = Path(__file__).resolve().parents[1]
RESULT_FILES = sorted([*ROOT.glob("book/results/*.json"), *ROOT.glob("benchmarks/results/*.json")])


sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts import benchmarks/provenance.py


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regenerate = _script("regenerate")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _recorded_commands(data: dict) -> list[str]:
    if "configs" in data:  # a collection of CLI runs
        return [c["command"] for c in data["configs"].values()]
    return [data["command"]]


@pytest.mark.parametrize("path", RESULT_FILES, ids=_rel)
def test_result_file_records_command_version_and_source_hash(path):
    data = json.loads(path.read_text())
    assert data["package_version"] == __version__, "made by another package version: regenerate it"
    assert re.fullmatch(r"[0-9a-f]{64}", data["source_sha256"])
    assert re.fullmatch(r"[0-9a-f]{40}", data["git_commit"])
    commands = regenerate.commands()
    assert _rel(path) in commands, (
        "benchmarks/regenerate.py does not know how to regenerate this file"
    )
    for command in _recorded_commands(data):
        assert command in commands[_rel(path)], f"{command!r} is not what regenerate.py runs"


def test_regenerate_knows_only_committed_files():
    assert sorted(regenerate.commands()) == [_rel(p) for p in RESULT_FILES]


@pytest.mark.parametrize("file", sorted(regenerate.RUN_SETS))
def test_run_sets_are_what_todays_presets_and_cli_would_run(file):
    """Each configuration's stored config, read by today's code (fields added since take their
    defaults), equals the one its command line yields today; its data equals what today's generator
    options give. A changed preset, a renamed option or a new default makes this fail: regenerate
    the file (benchmarks/regenerate.py)."""
    data = json.loads((ROOT / file).read_text())
    configs = regenerate.RUN_SETS[file][0]
    assert set(data["configs"]) == set(configs)
    parser = build_parser()
    defaults = inspect.signature(make_synthmosi).parameters
    for key, entry in data["configs"].items():
        assert entry["command"] == regenerate.synthmosi_command(key, file=file)
        words = shlex.split(entry["command"])
        args = parser.parse_args(words[words.index("mmim-lite") + 1 :])
        today, stored = (
            config_from_args(args).to_dict(),
            MMIMConfig.from_dict(entry["config"]).to_dict(),
        )
        assert stored == today, (
            key,
            {k: (stored.get(k), v) for k, v in today.items() if stored.get(k) != v},
        )
        assert entry["seeds"] == list(range(args.seeds and int(args.seeds)))
        given = {
            k[7:]: v for k, v in vars(args).items() if k.startswith("synth__") and v is not None
        }
        for name, value in entry.get("data", data["data"]["synth"]).items():
            default = given.get(name, defaults[name].default)
            assert value == (list(default) if isinstance(default, tuple) else default), (key, name)


@pytest.mark.parametrize("name", ["throughput_cpu.json", "throughput_cpu_2threads.json"])
def test_throughput_results_are_what_todays_benchmark_would_run(name):
    data = json.loads((ROOT / "benchmarks" / "results" / name).read_text())
    throughput = _script("throughput")
    stored = MMIMConfig.from_dict(
        data["protocol"]["mmim_config"]
    ).to_dict()  # settings added since: defaults
    assert stored == throughput.cpu_config(smoke=False).to_dict()
    assert data["smoke"] is False and data["part"] == "cpu"


@pytest.mark.slow
def test_regenerate_smoke_rebuilds_the_ablations_file(tmp_path):
    """The whole synthmosi_runs.json pipeline (16 CLI runs + collection) at toy size: the file it
    writes has every field the committed file has, and records the code that made it."""
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/regenerate.py",
            "--smoke",
            "--out",
            str(tmp_path),
            "book/results/synthmosi_runs.json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    new = json.loads((tmp_path / "synthmosi_runs.json").read_text())
    committed = json.loads((ROOT / "book" / "results" / "synthmosi_runs.json").read_text())
    missing = {
        "top": set(committed) - set(new) - {"package_note", "package_commit", "provenance_note"}
    }
    for key, entry in committed["configs"].items():
        missing[key] = set(entry) - set(new["configs"][key])
        missing[key + " run"] = set(entry["runs"][0]) - set(new["configs"][key]["runs"][0])
        assert new["configs"][key]["config"]["text_encoder"] == "tiny"
    for name in ("oracle", "training_mean"):
        assert set(committed["baselines"][name]["test"]) == set(new["baselines"][name]["test"])
    assert not any(missing.values()), missing
    assert new["source_sha256"] and new["package_version"] == __version__


def test_case_study_checkpoint_is_the_model_its_record_describes():
    """The committed model of the case study: the file its record hashes, best weights only (the
    frozen MiniLM is not stored), readable with weights_only=True, trained with the configuration
    its recorded command yields today."""
    import hashlib

    from mmim_lite.runtime import load_checkpoint

    record = json.loads((ROOT / regenerate.CASE_STUDY).read_text())
    checkpoint = (ROOT / regenerate.CASE_STUDY).with_name(record["checkpoint"])
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == record["checkpoint_sha256"]
    state = load_checkpoint(checkpoint)
    assert state["kind"] == "model" and state["epoch"] == record["best_epoch"]
    assert not any(k.startswith("text_model.") for k in state["model"])
    assert record["command"] == regenerate.case_study_command()
    words = shlex.split(record["command"])
    args = build_parser().parse_args(words[words.index("mmim-lite") + 1 :])
    assert MMIMConfig.from_dict(state["config"]) == config_from_args(args)
    assert record["data"]["seed"] == 0 and make_synthmosi(**record["data"]).splits["test"]
