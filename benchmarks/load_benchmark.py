"""Benchmark: loading a MOSI-size feature pickle at real sequence lengths.

Target (issue 9): ``load_dataset`` peaks at <= 1.1x the file size in memory and takes <= 2x a
plain ``pickle.load`` of the same file (it validates and cleans everything eagerly).

The file is SynthMOSI at MOSI's size (1284 / 229 / 686 clips) with 20-d visual frames padded to
500 and 5-d acoustic frames padded to 375 (MulT's MOSI shapes, about 100 MB), with NaN and
-inf written into 10% of the clips so the cleaning path runs. Both layouts are measured.

* time: best (the pass criterion, as ``timeit`` recommends) and median of ``--repeats`` alternating
  runs of a plain ``pickle.load`` and ``load_dataset``, with the file already in the page cache;
* memory: in a fresh subprocess, the ``tracemalloc`` peak during the call (numpy reports its
  array buffers to tracemalloc) and the growth of the peak RSS (``VmHWM`` after resetting it via
  ``/proc/self/clear_refs``; Linux only).

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/load_benchmark.py

It writes ``benchmarks/results/load_benchmark.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance import provenance  # noqa: E402  (benchmarks/provenance.py)

from mmim_lite.data import load_dataset  # noqa: E402
from mmim_lite.formats import save_mmsa_pickle, save_mult_pickle  # noqa: E402
from mmim_lite.synth import make_synthmosi  # noqa: E402

PEAK_MAX, TIME_MAX = 1.1, 2.0  # load_dataset vs file size (memory) and vs pickle.load (time)

_MEASURE = r"""
import gc, json, pickle, sys, tracemalloc
sys.path.insert(0, sys.argv[1])
from mmim_lite.data import load_dataset
which, path = sys.argv[2], sys.argv[3]

def status(key):  # kB -> bytes, from /proc/self/status (Linux)
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

def run():
    if which == "plain":
        with open(path, "rb") as f:
            return pickle.load(f)
    return load_dataset(path)

gc.collect()
with open("/proc/self/clear_refs", "w") as f:  # reset the peak-RSS mark (VmHWM) to the current RSS
    f.write("5")
rss0 = status("VmRSS")
tracemalloc.start()
obj = run()
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"tracemalloc_peak_bytes": peak, "rss_peak_growth_bytes": status("VmHWM") - rss0}))
"""


def write_files(folder: Path, protocol: int, smoke: bool = False) -> dict[str, Path]:
    sizes = dict(n_train=32, n_valid=8, n_test=8) if smoke else {}
    synth = make_synthmosi(seed=0, visual_frames=(50, 500), acoustic_frames=(40, 375), **sizes)
    rng = np.random.default_rng(1)
    for samples in synth.splits.values():
        for i in rng.choice(len(samples), size=len(samples) // 10, replace=False):
            s = samples[i]
            s.acoustic[rng.integers(len(s.acoustic)), 0] = -np.inf
            s.visual[rng.integers(len(s.visual)), 1] = np.nan
    mult, mmsa = folder / "mosi_data_noalign.pkl", folder / "unaligned_50.pkl"
    save_mult_pickle(synth.splits, mult, folder / "label.csv", protocol=protocol, pad_to=(500, 375))
    save_mmsa_pickle(synth.splits, mmsa, protocol=protocol, pad_to=(500, 375))
    return {"mult": mult, "mmsa": mmsa}


def plain_load(path: Path) -> object:
    with open(path, "rb") as f:
        return pickle.load(f)


def time_all(path: Path, repeats: int) -> dict[str, float]:
    runs: dict[str, list[float]] = {"pickle_load": [], "load_dataset": []}
    fns = {"pickle_load": plain_load, "load_dataset": load_dataset}
    plain_load(path)  # warm the page cache
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn(path)
            runs[name].append(time.perf_counter() - t)
    out = {}
    for name, values in runs.items():
        out[f"{name}_s_best"], out[f"{name}_s_median"] = min(values), statistics.median(values)
    out["load_dataset_time_ratio_best"] = min(runs["load_dataset"]) / min(runs["pickle_load"])
    out["load_dataset_time_ratio_median"] = statistics.median(
        runs["load_dataset"]
    ) / statistics.median(runs["pickle_load"])
    return out


def memory(path: Path, which: str) -> dict[str, int]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(ROOT), which, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--protocols", type=int, nargs="+", default=[4, 5])
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a 48-clip file, one repeat, one protocol: tests the code path, numbers mean nothing",
    )
    parser.add_argument(
        "--out",
        help="JSON file (default: benchmarks/results/load_benchmark.json; "
        "with --smoke a file in the temporary folder)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.protocols = 1, args.protocols[:1]
    out = args.out or (
        Path(tempfile.gettempdir()) / "load_benchmark_smoke.json"
        if args.smoke
        else ROOT / "benchmarks" / "results" / "load_benchmark.json"
    )
    result: dict = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/load_benchmark.py "
        + " ".join(sys.argv[1:]),
        "smoke": args.smoke,
        **provenance(),
        "targets": {"peak_over_file_size_max": PEAK_MAX, "time_ratio_max": TIME_MAX},
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for protocol in args.protocols:
            sub = Path(tmp) / f"p{protocol}"
            sub.mkdir()
            for fmt, path in write_files(sub, protocol, args.smoke).items():
                size = path.stat().st_size
                row = {"format": fmt, "pickle_protocol": protocol, "file_bytes": size}
                row.update(time_all(path, args.repeats))
                for which in ("plain", "load_dataset"):
                    mem = memory(path, which)
                    row[f"{which}_tracemalloc_peak_over_file"] = (
                        mem["tracemalloc_peak_bytes"] / size
                    )
                    row[f"{which}_rss_peak_growth_over_file"] = mem["rss_peak_growth_bytes"] / size
                row["pass"] = bool(
                    row["load_dataset_tracemalloc_peak_over_file"] <= PEAK_MAX
                    and row["load_dataset_rss_peak_growth_over_file"] <= PEAK_MAX
                    and row["load_dataset_time_ratio_best"] <= TIME_MAX
                )
                result["runs"].append(row)
                print(
                    json.dumps(
                        {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
                    )
                )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
