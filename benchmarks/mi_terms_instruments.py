"""The instruments of the MI-terms study: what each term does to the encoders, on the study's data.

    python benchmarks/mi_terms_instruments.py --out runs/mi_terms_instruments
    # -> book/results/mi_terms_instruments.json

On the pre-registered study's κ = 0, ×1 data with few labels (benchmarks/mi_terms_preregistration.md),
for seed 0 of the arms that add a term: ``mmim-lite train --trace-grads true`` (each MI term's
weighted gradient norm on each encoder relative to the task's, and their cosine, at every stage-2
trace point) and ``mmim-lite evaluate --probes`` on the test split (effective rank of h_v and h_a,
their share of variance between speakers, the ridge R² of the label from each h_m).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from mi_terms_study import ALL, ARMS, DATA, FEW

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "book" / "results" / "mi_terms_instruments.json"
INSTRUMENTED = ("no-MI", "BA only", "MMIM", "bounded-entropy BA", "cross-modal InfoNCE")
SEEDS = 1  # one seed per arm: the study itself has ten (2 cores, shared with the study)


def main(out: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from provenance import provenance

    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    data = [x for _, (v, flag) in DATA.items() for x in (flag, f"{v:g}")]
    result: dict = {"arms": {}}
    commands = []
    for arm in INSTRUMENTED:
        folder = out / arm.replace(" ", "_")
        train = [
            *("mmim-lite", "train", "--data", "synthmosi", *data, "--preset", "synthmosi"),
            *("--frame-encoder", "mean", "--labeled-fraction", f"{FEW / ALL:g}"),
            *("--use-unlabeled", "true", *ARMS[arm], "--trace-grads", "true"),
            *("--seeds", str(SEEDS), "--device", "cpu", "--out", str(folder)),
        ]
        commands.append(" ".join(train))
        if not (folder / "summary.json").is_file():
            subprocess.run([sys.executable, "-m", "mmim_lite", *train[1:]], env=env, check=True)
        seeds = []
        for seed in range(SEEDS):
            evaluate = [
                *(
                    "mmim-lite",
                    "evaluate",
                    "--checkpoint",
                    str(folder / f"seed_{seed}" / "best.pt"),
                ),
                *("--data", "synthmosi", *data, "--split", "test", "--probes", "--device", "cpu"),
            ]
            if seed == 0:
                commands.append(" ".join(evaluate).replace("seed_0", "seed_S"))
            done = subprocess.run(
                [sys.executable, "-m", "mmim_lite", *evaluate[1:]],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            with open(folder / f"seed_{seed}" / "trace.csv") as f:
                trace = [
                    {
                        k: float(v)
                        for k, v in row.items()
                        if (k.startswith("grad_") or k == "epoch") and v
                    }
                    for row in csv.DictReader(f)
                    if row["stage"] == "2"
                ]
            evaluated = json.loads(done.stdout.strip().splitlines()[-1])
            seeds.append(
                {"seed": seed, "test_mae": evaluated["mae"], "probes": evaluated["probes"]}
                | {"grad_trace": [row for row in trace if len(row) > 1]}
            )
        result["arms"][arm] = seeds
    meta = {
        "command": f"python benchmarks/mi_terms_instruments.py --out {out}",
        "commands": commands,
        **provenance(),
        "warning": "Synthetic data (SynthMOSI) with the frozen MiniLM text encoder: NOT CMU-MOSI or "
        "CMU-MOSEI results.",
        "data": "the MI-terms study's kappa = 0, x1 data; 32 labelled training clips",
    }
    RESULT.write_text(json.dumps(meta | result, indent=1) + "\n")
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/mi_terms_instruments"))
    main(parser.parse_args().out)
