"""The benchmark scripts in smoke mode: they must keep running as the package changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import source_sha256  # noqa: E402  (benchmarks/provenance.py)


def _run(*args: str) -> None:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_throughput_smoke_cpu_and_gpu_protocols(tmp_path):
    cpu, gpu = tmp_path / "cpu.json", tmp_path / "gpu.json"
    _run("benchmarks/throughput.py", "--smoke", "--rounds", "1", "--warmup", "0", "--out", str(cpu))
    _run("benchmarks/throughput.py", "--smoke", "--part", "gpu", "--epochs", "1", "--out", str(gpu))
    report = json.loads(cpu.read_text())
    assert report["smoke"] and report["source_sha256"] == source_sha256()
    assert set(report["results"]) == {"authors_loop", "ours", "ours_unpacked"}
    for variant in report["results"].values():
        assert variant["stage1"]["samples"] == variant["stage2"]["samples"] == 32
        assert variant["train_samples_per_s"] > 0 and variant["eval"]["samples"] == 16
    assert report["packing_check"]["max_abs_diff_h_t"] < 1e-4
    assert set(json.loads(gpu.read_text())["results"]) == {"fp32", "bf16"}


def test_load_benchmark_smoke(tmp_path):
    out = tmp_path / "load.json"
    _run("benchmarks/load_benchmark.py", "--smoke", "--out", str(out))
    report = json.loads(out.read_text())
    assert report["smoke"] and report["source_sha256"] == source_sha256()
    assert {r["format"] for r in report["runs"]} == {"mult", "mmsa"}
    assert all(r["load_dataset_tracemalloc_peak_over_file"] > 0 for r in report["runs"])
