"""The MI-terms study (benchmarks/mi_terms_preregistration.md): run it, then collect its results.

    python benchmarks/mi_terms_study.py run --out runs/mi_terms      # long: hours on 2 cores
    python benchmarks/mi_terms_study.py collect --out runs/mi_terms  # -> book/results/mi_terms_study.json

``run`` checks the validity rules V1 and V2, runs one ``mmim-lite sweep`` per (setting, arm) in the
pre-registered order (the grid: the two label shares; 10 seeds per trial), checks V3 after the first
sweep, and appends one line per finished sweep to ``OUT/progress.jsonl`` (its command and wall
time). Run again, it skips the sweeps already finished. ``collect`` reads the sweeps' studies and
judges the hypotheses by the pre-registered rules.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from mmim_lite.synth import label_starvation, make_synthmosi, modality_mutual_information

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "book" / "results" / "mi_terms_study.json"
SEEDS = 10
FEW, ALL = 32, 1284
#: the generator's settings shared by every dataset (make_synthmosi keyword -> CLI flag)
DATA = {
    "visual_dim": (480, "--synth-visual-dim"),
    "acoustic_dim": (240, "--synth-acoustic-dim"),
    "text_noise": (0.3, "--synth-text-noise"),
    "irony_rate": (0.0, "--synth-irony-rate"),
    "visual_signal": (0.75, "--synth-visual-signal"),
    "acoustic_signal": (0.6, "--synth-acoustic-signal"),
}
#: (kappa, unlabelled multiple) in the pre-registered order of runs
SETTINGS = [(0.0, 1), (1.5, 1), (0.5, 1), (0.0, 4), (1.5, 4), (0.5, 4)]
ARMS = {
    "no-MI": ["--alpha", "0", "--beta", "0"],
    "BA only": ["--alpha", "0", "--beta", "0.1"],
    "MMIM": ["--alpha", "0.3", "--beta", "0.1"],
    "cross-modal InfoNCE": [
        *("--alpha", "0", "--beta", "0", "--xmodal-pairs", "tv,ta", "--xmodal-dim", "64"),
        *("--xmodal-temperature", "0.1", "--xmodal-weight", "0.1"),
    ],
    "bounded-entropy BA": ["--alpha", "0", "--beta", "0.1", "--entropy-projection", "tanh"],
    "CPC only": ["--alpha", "0.3", "--beta", "0"],
}
CONTROL = "no-MI"


def setting_name(kappa: float, mult: int) -> str:
    return f"kappa{kappa:g}_x{mult}"


def generator_kwargs(kappa: float, mult: int) -> dict[str, Any]:
    return {k: v for k, (v, _) in DATA.items()} | {"nuisance": kappa, "n_train": ALL * mult}


def sweep_command(kappa: float, mult: int, arm: str, out: Path) -> list[str]:
    """The ``mmim-lite sweep`` of one (setting, arm): a grid over the two label shares."""
    folder = out / setting_name(kappa, mult) / arm.replace(" ", "_")
    data = [x for _, (v, flag) in DATA.items() for x in (flag, f"{v:g}")]
    return [
        *("mmim-lite", "sweep", "--data", "synthmosi", *data, "--synth-nuisance", f"{kappa:g}"),
        *("--n-train", str(ALL * mult), "--preset", "synthmosi", "--frame-encoder", "mean"),
        *("--use-unlabeled", "true", *ARMS[arm], "--seeds", str(SEEDS)),
        *("--space", str(out / f"space_x{mult}.json"), "--sampler", "grid", "--workers", "2"),
        *("--heartbeat", "20", "--out", str(folder)),
    ]


def shares(mult: int) -> dict[str, float]:
    return {"few": FEW / (ALL * mult), "all": 1 / mult}


def study_runs(folder: Path) -> dict[str, dict[int, float]]:
    """{"few"|"all": {seed: test MAE}} of one finished sweep."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="mmim-lite", storage=f"sqlite:///{folder}/study.db")
    out: dict[str, dict[int, float]] = {}
    mult = 4 if "_x4" in str(folder) else 1
    for trial in study.get_trials(states=[optuna.trial.TrialState.COMPLETE]):
        share = trial.params["labeled_fraction"]
        label = min(shares(mult), key=lambda k: abs(shares(mult)[k] - share))
        out[label] = {r["seed"]: r["test"]["mae"] for r in trial.user_attrs["runs"]}
    return out


def check_v1_v2() -> dict[str, Any]:
    v1 = modality_mutual_information(make_synthmosi(**generator_kwargs(0.0, 1)), n=20_000)
    out: dict[str, Any] = {
        "V1": {"I_nats": {k: list(v) for k, v in v1.items()}, "pass": v1["tv"][0] >= 0.5}
    }
    out["V2"] = {}
    for kappa, mult in SETTINGS:
        r2 = label_starvation(make_synthmosi(**generator_kwargs(kappa, mult)), (FEW, None), "va")
        ok = r2[str(FEW)] <= r2["all"] - 0.15
        out["V2"][setting_name(kappa, mult)] = {**r2, "pass": ok}
    return out


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "space_x1.json").write_text(json.dumps({"labeled_fraction": list(shares(1).values())}))
    (out / "space_x4.json").write_text(json.dumps({"labeled_fraction": list(shares(4).values())}))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from provenance import provenance

    made_with = out / "provenance.json"  # the code that makes the runs (collect may come later)
    if not made_with.exists():
        made_with.write_text(json.dumps(provenance(), indent=1))
    validity_file = out / "validity.json"
    validity = json.loads(validity_file.read_text()) if validity_file.exists() else check_v1_v2()
    validity_file.write_text(json.dumps(validity, indent=1))
    if not validity["V1"]["pass"] or not all(v["pass"] for v in validity["V2"].values()):
        sys.exit(f"validity check failed (V1 or V2), see {validity_file}: change the design")
    log = out / "progress.jsonl"
    done = (
        {json.loads(line)["folder"] for line in log.read_text().splitlines()}
        if log.exists()
        else set()
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    for kappa, mult in SETTINGS:
        for arm in ARMS:
            cmd = sweep_command(kappa, mult, arm, out)
            folder = cmd[-1]
            if folder not in done:
                start = time.time()
                rc = subprocess.run(
                    [sys.executable, "-m", "mmim_lite", *cmd[1:]], env=env
                ).returncode
                line = {"setting": setting_name(kappa, mult), "arm": arm, "folder": folder}
                line |= {"command": " ".join(cmd), "wall_s": round(time.time() - start), "rc": rc}
                with log.open("a") as f:
                    f.write(json.dumps(line) + "\n")
                if rc:
                    sys.exit(f"sweep failed (exit {rc}): {' '.join(cmd)}")
            if "V3" not in validity and (kappa, mult, arm) == (0.0, 1, CONTROL):
                control = study_runs(Path(folder))
                gap = np.mean(list(control["few"].values())) - np.mean(
                    list(control["all"].values())
                )
                validity["V3"] = {"gap_mae": float(gap), "pass": bool(gap >= 0.15)}
                validity_file.write_text(json.dumps(validity, indent=1))
            if not validity.get("V3", {"pass": True})["pass"]:
                sys.exit(f"validity check V3 failed, see {validity_file}: change the design")


def paired(a: dict[int, float], b: dict[int, float]) -> dict[str, Any]:
    """a - b per seed: mean, sd, 95 % CI, two-sided paired t-test."""
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds])
    sd = float(d.std(ddof=1))
    half = stats.t.ppf(0.975, len(d) - 1) * sd / math.sqrt(len(d))
    p = float(stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
    return {
        "n": len(d),
        "delta": float(d.mean()),
        "sd": sd,
        "ci95": [d.mean() - half, d.mean() + half],
        "p": p,
    }


def welch(a: list[float], b: list[float]) -> dict[str, Any]:
    """mean(a) - mean(b), unpaired (different datasets), Welch's t-test."""
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    sd = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b)) * math.sqrt(len(a))
    return {
        "n": len(a),
        "delta": float(np.mean(a) - np.mean(b)),
        "sd": sd,
        "ci95": [ci.low, ci.high],
        "p": float(res.pvalue),
    }


def holm(ps: list[float]) -> list[float]:
    order, adjusted, running = np.argsort(ps), [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def collect(out: Path) -> None:
    """Judge the hypotheses by the pre-registered rules and write :data:`RESULT`."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from provenance import provenance

    progress = [json.loads(x) for x in (out / "progress.jsonl").read_text().splitlines()]
    where = str(
        out.resolve()
    )  # the result file names the study's folder as given, not this machine's
    progress = [
        {k: v.replace(where, str(out)) if isinstance(v, str) else v for k, v in p.items()}
        for p in progress
    ]
    runs = {
        (p["setting"], p["arm"]): study_runs(Path(p["folder"])) for p in progress if p["rc"] == 0
    }
    comps: list[dict[str, Any]] = []
    for (setting, arm), by_share in runs.items():
        control = runs.get((setting, CONTROL), {})
        for share in by_share:
            if arm != CONTROL and share in control:
                comps.append(
                    {
                        "what": f"{arm} - no-MI",
                        "setting": setting,
                        "share": share,
                        **paired(by_share[share], control[share]),
                    }
                )
        if arm == "bounded-entropy BA" and "few" in by_share and (setting, "BA only") in runs:
            comps.append(
                {
                    "what": "bounded-entropy BA - BA only",
                    "setting": setting,
                    "share": "few",
                    **paired(by_share["few"], runs[(setting, "BA only")]["few"]),
                }
            )

    def gain(setting: str) -> list[float] | None:
        """The cross-modal InfoNCE's per-seed differences from no-MI with few labels."""
        if (setting, "cross-modal InfoNCE") not in runs or (setting, CONTROL) not in runs:
            return None
        x, n = runs[(setting, "cross-modal InfoNCE")]["few"], runs[(setting, CONTROL)]["few"]
        return [x[s] - n[s] for s in sorted(set(x) & set(n))]

    for what, a, b in [
        ("H5b: InfoNCE gain x4 - x1 (kappa 0)", "kappa0_x4", "kappa0_x1"),
        ("H7: InfoNCE gain kappa 1.5 - kappa 0 (x1)", "kappa1.5_x1", "kappa0_x1"),
    ]:
        ga, gb = gain(a), gain(b)
        if ga and gb:
            comps.append({"what": what, "setting": f"{a} vs {b}", "share": "few", **welch(ga, gb)})
    m = len(comps)
    for c, ph in zip(comps, holm([c["p"] for c in comps])):
        t = stats.t.ppf(1 - 0.05 / (2 * m), c["n"] - 1) + stats.t.ppf(0.8, c["n"] - 1)
        c |= {"p_holm": ph, "significant": ph < 0.05, "mde": t * c["sd"] / math.sqrt(c["n"])}
    result = {
        "command": f"python benchmarks/mi_terms_study.py collect --out {out}",
        "produced_by": f"python benchmarks/mi_terms_study.py run --out {out}, then the command",
        **provenance(),
        "title": "The MI-terms study: each arm against the same-batch no-MI control (test MAE, best-validation weights)",
        "warning": "Synthetic data (SynthMOSI) with the frozen MiniLM text encoder: NOT CMU-MOSI or CMU-MOSEI results.",
        "runs_made_with": json.loads((out / "provenance.json").read_text()),
        "preregistration": "benchmarks/mi_terms_preregistration.md",
        "validity": json.loads((out / "validity.json").read_text()),
        "sweeps": progress,
        "not_run": [
            f"{setting_name(k, x)} {a}"
            for k, x in SETTINGS
            for a in ARMS
            if (setting_name(k, x), a) not in runs
        ],
        "per_seed_test_mae": {f"{s} | {a}": v for (s, a), v in runs.items()},
        "comparisons": comps,
        "verdicts": judge(comps),
    }
    RESULT.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(f"wrote {RESULT}: {m} comparisons")


def judge(comps: list[dict[str, Any]]) -> dict[str, str]:
    """The pre-registered verdict rules, hypothesis by hypothesis."""

    def pick(what: str, share: str | None = None) -> list[dict[str, Any]]:
        return [
            c
            for c in comps
            if c["what"].startswith(what) and (share is None or c["share"] == share)
        ]

    def directional(cs: list[dict[str, Any]], sign: int) -> str:
        if not cs:
            return "not run"
        if any(c["significant"] and np.sign(c["delta"]) == -sign for c in cs):
            return "contradicted"
        hits = sum(c["significant"] and np.sign(c["delta"]) == sign for c in cs)
        if hits == len(cs):
            return "supported"
        return (
            "partly supported"
            if hits
            else f"not supported (largest MDE {max(c['mde'] for c in cs):.3f})"
        )

    def null(cs: list[dict[str, Any]]) -> str:
        if not cs:
            return "not run"
        if any(c["significant"] for c in cs):
            return "contradicted"
        return (
            "supported"
            if all(c["mde"] < 0.03 for c in cs)
            else "not testable at this size (MDE >= 0.03)"
        )

    return {
        "H1": directional(pick("BA only - no-MI", "few"), +1),
        "H2": directional(pick("MMIM - no-MI", "few"), +1),
        "H3": null(pick("CPC only - no-MI")),
        "H4": directional(pick("bounded-entropy BA - BA only"), -1),
        "H5": directional(
            [
                c
                for c in pick("cross-modal InfoNCE - no-MI", "few")
                if c["setting"].startswith("kappa0_")
            ],
            -1,
        ),
        "H5b": directional(pick("H5b"), -1),
        "H6": null(pick("", "all")),
        "H7": directional(pick("H7"), +1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("run", "collect"))
    parser.add_argument("--out", type=Path, default=Path("runs/mi_terms"))
    args = parser.parse_args()
    run(args.out) if args.action == "run" else collect(args.out)
