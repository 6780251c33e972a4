"""Command-line interface ``mmim-lite`` (also ``python -m mmim_lite``): ``train``, ``evaluate``, ``synth``.

``train`` runs Algorithm 1 once per seed (:func:`mmim_lite.train.run_seeds`); ``--seeds N`` means
seeds ``seed .. seed+N-1`` (``--seeds 3,7,11`` lists them). Every :class:`~mmim_lite.config.MMIMConfig`
field is an option (``--ba-pairs tv,ta``), as is ``--set field=value``; both override the preset.
DIR receives ``config.json``, ``data.json`` (the data file or the SynthMOSI generator arguments),
``seed_<s>/`` per seed, a combined ``history.csv`` and ``summary.json`` (mean and std over seeds;
on SynthMOSI also the Bayes-optimal oracle). ``evaluate`` prints one JSON object, equal to the
stored ``metrics.json`` on the same device; without ``--data`` it reloads what ``data.json`` names.
Bad input ends with one line ``mmim-lite: error: ...`` and exit status 2 (``MMIM_LITE_DEBUG=1``
shows the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import inspect
import json
import math
import os
import re
import sys
import typing
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .config import PRESETS, MMIMConfig, check_resumable

__all__ = ["main", "build_parser", "config_from_args", "CLIError"]

PROG = "mmim-lite"
#: SynthMOSI generator options: (key of make_synthmosi, flag, metavar, help).
SYNTH_OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("seed", "--synth-seed", "S", "SynthMOSI generator seed (default 0)"),
    ("n_train", "--n-train", "N", "SynthMOSI training clips (default 1284, MOSI's)"),
    ("n_valid", "--n-valid", "N", "SynthMOSI validation clips (default 229)"),
    ("n_test", "--n-test", "N", "SynthMOSI test clips (default 686)"),
    ("visual_dim", "--synth-visual-dim", "D", "SynthMOSI visual feature size (default 20)"),
    ("acoustic_dim", "--synth-acoustic-dim", "D", "SynthMOSI acoustic feature size (default 5)"),
    ("visual_frames", "--synth-visual-frames", "LO,HI", "SynthMOSI visual frames per clip (default 10,50)"),
    ("acoustic_frames", "--synth-acoustic-frames", "LO,HI", "SynthMOSI acoustic frames per clip (default 10,50)"),
)
_MAIN_METRICS = ("mae", "corr", "acc7", "acc2_has0", "acc2_non0", "f1_non0")


class CLIError(Exception):
    """A bad command line or input; reported as one line on stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line, no usage block
        raise CLIError(f"{message} (see {self.prog} --help)")


# -- parser ------------------------------------------------------------------------------------
def _field_help(hint: Any) -> tuple[str, str]:
    """(metavar, type help) of a config field from its type hint."""
    args = typing.get_args(hint)
    base = next((a for a in args if a is not type(None)), hint)
    if typing.get_origin(base) is tuple:
        return "NAMES", "comma-separated names, or 'none'"
    name = {bool: "BOOL", int: "INT", float: "FLOAT"}.get(base, "STR")
    kind = "true/false" if base is bool else name.lower()
    return name, f"{kind} or 'none'" if type(None) in args else kind


def _field_docs() -> dict[str, str]:
    """The ``#:`` comment of each MMIMConfig field (its help text), read from the source."""
    try:
        source = inspect.getsource(MMIMConfig)
    except (OSError, TypeError):  # pragma: no cover - source not shipped
        return {}
    return {m.group(1): m.group(2).strip().replace("%", "%%")
            for m in re.finditer(r"^\s+(\w+):[^\n]*?#:\s*(.*)$", source, re.M)}


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    docs = {"seed": "seed of the first run (--seeds N runs seed..seed+N-1)", **_field_docs()}
    group = parser.add_argument_group(
        "config overrides", "every MMIMConfig field; given values override the preset")
    hints = typing.get_type_hints(MMIMConfig)
    for f in dataclasses.fields(MMIMConfig):
        if f.name == "preset_name":
            continue
        metavar, text = _field_help(hints[f.name])
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if hints[f.name] is bool else {}
        text = f"{docs[f.name]} [{text}]" if f.name in docs else text
        group.add_argument("--" + f.name.replace("_", "-"), dest=f"cfg__{f.name}", default=None,
                           metavar=metavar, help=text, **extra)
    group.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                       help="set any config field (repeatable), e.g. --set alpha=0.1")


def _add_data_options(parser: argparse.ArgumentParser, data: bool = True, required: bool = False) -> None:
    """``--data``/``--label-csv`` (unless ``data`` is False) and the SynthMOSI generator options."""
    if data:
        parser.add_argument("--data", required=required, metavar="{synthmosi|PATH}",
                            help="'synthmosi' (generated) or a released MulT/MMSA pickle or its folder")
        parser.add_argument("--label-csv", metavar="CSV", help="label CSV with the raw text (MulT pickles)")
    group = parser.add_argument_group("SynthMOSI generator")
    for key, flag, metavar, text in SYNTH_OPTIONS:
        flags = [flag, "--seed"] if (not data and key == "seed") else [flag]  # synth: --seed too
        group.add_argument(*flags, dest=f"synth__{key}", default=None, metavar=metavar, help=text)


def build_parser() -> argparse.ArgumentParser:
    """The ``mmim-lite`` argument parser with its ``train``, ``evaluate`` and ``synth`` commands."""
    parser = _Parser(prog=PROG, allow_abbrev=False,
                     description="MultiModal InfoMax (Han, Chen & Poria, EMNLP 2021), compact and tested.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,synth}")

    train = sub.add_parser("train", allow_abbrev=False, help="train MMIM (Algorithm 1) for one or more seeds",
                           description="Train MMIM with Algorithm 1, one run per seed.")
    _add_data_options(train, required=True)
    train.add_argument("--preset", default="synthmosi", metavar="{" + ",".join(PRESETS) + "}",
                       help="starting configuration (default synthmosi): Table 3 (mosi, mosei) or CPU-sized")
    train.add_argument("--seeds", default="1", metavar="N|S1,S2,..",
                       help="N runs with seeds seed..seed+N-1 (default 1), or a comma-separated list")
    train.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
    train.add_argument("--out", required=True, metavar="DIR", help="output folder")
    train.add_argument("--resume", action="store_true", help="continue DIR from each seed's checkpoint.pt "
                       "(finished seeds are read back); only --epochs and --patience may be raised")
    _add_config_options(train)
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", allow_abbrev=False, help="metrics of a checkpoint, as one JSON object",
                        description="Print a checkpoint's metrics on one split as one JSON object.")
    ev.add_argument("--checkpoint", required=True, metavar="FILE", help="best.pt or checkpoint.pt of a run")
    _add_data_options(ev)
    ev.add_argument("--split", default="test", choices=("train", "valid", "test"))
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ev.set_defaults(func=cmd_evaluate)

    syn = sub.add_parser("synth", allow_abbrev=False, help="write SynthMOSI in a released file format",
                         description="Write SynthMOSI as an MMSA- or MulT-style pickle.")
    syn.add_argument("--out", required=True, metavar="FILE", help="pickle to write")
    syn.add_argument("--format", required=True, choices=("mmsa", "mult"))
    syn.add_argument("--label-csv", metavar="CSV", help="MulT only: label CSV (default label.csv beside FILE)")
    _add_data_options(syn, data=False)
    syn.set_defaults(func=cmd_synth)
    return parser


# -- helpers -----------------------------------------------------------------------------------
def config_from_args(args: argparse.Namespace) -> MMIMConfig:
    """The config a parsed ``train`` command runs: preset, then ``--set``, then ``--<field>`` options."""
    overrides: dict[str, str] = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--set expects FIELD=VALUE, got {item!r}")
        overrides[key.strip().replace("-", "_")] = value
    overrides.update({k[5:]: v for k, v in vars(args).items() if k.startswith("cfg__") and v is not None})
    return MMIMConfig.preset(args.preset, **overrides)


def _seeds(text: str, base: int) -> list[int]:
    """``--seeds``: ``N`` -> base..base+N-1; ``"a,b,c"`` -> those seeds."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            n = int(text)
            if n < 1:
                raise CLIError(f"--seeds must be >= 1, got {n}")
            seeds = list(range(base, base + n))
    except ValueError:
        raise CLIError(f"--seeds expects a number of runs or a comma-separated seed list, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise CLIError(f"--seeds must list distinct non-negative seeds, got {text!r}")
    return seeds


def _synth_value(key: str, text: str) -> Any:
    """A generator option's value: an int, or ``[lo, hi]`` for the frame ranges."""
    try:
        if key.endswith("_frames"):
            lo, hi = (int(v) for v in text.split(","))
            return [lo, hi]
        return int(text)
    except ValueError:
        flag = next(f for k, f, _, _ in SYNTH_OPTIONS if k == key)
        want = "LO,HI (two integers)" if key.endswith("_frames") else "an integer"
        raise CLIError(f"{flag} expects {want}, got {text!r}") from None


def _data_spec(args: argparse.Namespace, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """What to load: ``{"source": "synthmosi", "synth": {...}}`` or ``{"source": "file", ...}``.

    Order of precedence: the command line, then ``stored`` (a run's data.json), then defaults."""
    given = {k[7:]: _synth_value(k[7:], v) for k, v in vars(args).items()
             if k.startswith("synth__") and v is not None}
    data = getattr(args, "data", None)
    if data is None:
        if stored is None:
            raise CLIError("--data is required (no data.json beside the checkpoint or one folder up)")
        if stored.get("source") != "synthmosi":
            return dict(stored)
        data = "synthmosi"
    if data.lower() == "synthmosi":
        from .synth import make_synthmosi

        params = inspect.signature(make_synthmosi).parameters
        defaults = {k: json.loads(json.dumps(params[k].default)) for k, *_ in SYNTH_OPTIONS}
        base = stored.get("synth", {}) if stored and stored.get("source") == "synthmosi" else {}
        return {"source": "synthmosi", "synth": {**defaults, **base, **given}}
    if given:
        raise CLIError("SynthMOSI generator options apply only to --data synthmosi")
    path = Path(data).expanduser()
    if not path.exists():
        raise CLIError(f"--data {data!r}: no such file or folder (expected 'synthmosi' or a released pickle)")
    csv_path = getattr(args, "label_csv", None)
    if csv_path is not None and not Path(csv_path).expanduser().is_file():
        raise CLIError(f"--label-csv {csv_path!r}: no such file")
    return {"source": "file", "path": str(path.resolve()),
            "label_csv": str(Path(csv_path).expanduser().resolve()) if csv_path else None}


def _load(spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """``(splits, synth)`` for a data spec; ``synth`` is the SynthMOSI object or None."""
    if spec["source"] == "synthmosi":
        from .synth import make_synthmosi

        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["synth"].items()}
        synth = make_synthmosi(**kwargs)
        return synth.splits, synth
    from .data import load_dataset

    return load_dataset(spec["path"], label_csv=spec.get("label_csv")), None


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's content, or None when the file does not exist."""
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError) as err:
        raise CLIError(f"cannot read {path}: {err}") from None


def _check_encoder(name: str) -> None:
    """Resolve a non-built-in text encoder once up front, so that a bad name fails before training."""
    if name not in ("minilm", "tiny", "bert-base-random"):
        from .model import resolve_text_encoder

        resolve_text_encoder(name)


def _oracle(synth: Any, splits: dict[str, Any]) -> dict[str, Any]:
    """The Bayes-optimal oracle's metrics on valid and test (labels as float32, as the trainer sees them)."""
    import numpy as np

    from .metrics import msa_metrics

    out = {}
    for split in ("valid", "test"):
        if len(splits[split]):
            truths = np.array([s.label for s in splits[split]], dtype=np.float32)
            out[split] = msa_metrics(synth.oracle(split), truths)
    return out


def _strict(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as None (strict JSON; e.g. the std of a single run)."""
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_strict(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def _fmt(stats: dict[str, Any], key: str) -> str:
    mean, std = stats[key]["mean"], stats[key]["std"]
    return f"{key} {mean:.3f}" + ("" if std is None else f" ± {std:.3f}")


# -- commands ----------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    """``mmim-lite train``: run_seeds + summary.json (see the module docstring)."""
    config = config_from_args(args)
    seeds = _seeds(args.seeds, config.seed)
    spec = _data_spec(args)
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} is a file, expected a folder")
    if args.resume:  # continuing a run with other settings would mix two experiments
        data_before, config_before = _read_json(out / "data.json"), _read_json(out / "config.json")
        if data_before not in (None, json.loads(json.dumps(spec))):
            diff = sorted(k for k in set(data_before) | set(spec) if data_before.get(k) != spec.get(k))
            raise CLIError(f"--resume: {out / 'data.json'} differs from this command in {diff}")
        if config_before is not None:  # only epochs and patience may be raised
            check_resumable(MMIMConfig.from_dict(config_before), config, f"--resume: {out / 'config.json'}")
    from .train import resolve_device, run_seeds, summarize_runs, write_csv, write_json

    device = resolve_device(args.device)
    _check_encoder(config.text_encoder)
    splits, synth = _load(spec)
    write_json(config.to_dict(), out / "config.json")
    write_json(spec, out / "data.json")
    results = run_seeds(config, seeds, splits, out_dir=out, device=str(device), resume=args.resume)
    history = []  # all seeds' per-epoch rows in one table, with a seed column
    for seed in seeds:
        with contextlib.suppress(FileNotFoundError), open(out / f"seed_{seed}" / "history.csv", newline="") as fh:
            history += [{"seed": seed, **row} for row in csv.DictReader(fh)]
    write_csv(history, out / "history.csv")
    summary = {"preset": args.preset, "text_encoder": config.text_encoder, "device": str(device),
               "data": spec, **summarize_runs(results), "runs": results}
    if synth is not None:
        summary["oracle"] = _oracle(synth, splits)
    summary = _strict(summary)
    write_json(summary, out / "summary.json")
    for r in results:
        test = r.get("test") or r["valid"]
        print(f"seed {r['seed']}: best epoch {r['best_epoch']}/{r['epochs_run']}, "
              f"{'test' if 'test' in r else 'valid'} mae {test['mae']:.3f} corr {test['corr']:.3f} "
              f"acc2_non0 {test['acc2_non0']:.3f}")
    split = "test" if "test" in summary else "valid"
    print(f"{split} over {len(results)} seed(s): " + ", ".join(_fmt(summary[split], k) for k in _MAIN_METRICS))
    if split in summary.get("oracle", {}):
        o = summary["oracle"][split]
        print(f"oracle {split}: " + ", ".join(f"{k} {o[k]:.3f}" for k in _MAIN_METRICS))
    print(f"wrote {out / 'summary.json'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``mmim-lite evaluate``: one JSON object with the checkpoint's metrics on ``--split``."""
    from .train import Trainer, load_checkpoint

    path = Path(args.checkpoint).expanduser()
    if not path.is_file():
        raise CLIError(f"--checkpoint {args.checkpoint!r}: no such file")
    stored = _read_json(path.parent / "data.json") or _read_json(path.parent.parent / "data.json")
    spec = _data_spec(args, stored)
    state = load_checkpoint(path)
    config = MMIMConfig.from_dict(state["config"])
    splits, _ = _load(spec)
    if len(splits.get(args.split, ())) == 0:
        raise CLIError(f"the data has no clips in split {args.split!r}")
    trainer = Trainer(config, splits, device=args.device, progress=False)
    trainer.load_state_dict(state)
    print(json.dumps(trainer.evaluate(args.split)))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """``mmim-lite synth``: SynthMOSI as an MMSA- or MulT-style pickle that load_dataset reads."""
    from .formats import save_mmsa_pickle, save_mult_pickle

    if args.label_csv is not None and args.format != "mult":
        raise CLIError("--label-csv applies only to --format mult")
    spec = _data_spec(argparse.Namespace(**{**vars(args), "data": "synthmosi"}))
    out = Path(args.out).expanduser()
    if out.is_dir():
        raise CLIError(f"--out {args.out!r} is a folder, expected a file name")
    splits, _ = _load(spec)
    csv_path = Path(args.label_csv).expanduser() if args.label_csv else out.parent / "label.csv"
    written = [out] if args.format == "mmsa" else [out, csv_path]
    for path in written:
        path.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "mmsa":
        save_mmsa_pickle(splits, out)
    else:
        save_mult_pickle(splits, out, csv_path)
    sizes = "/".join(str(len(splits[s])) for s in ("train", "valid", "test"))
    print(f"wrote SynthMOSI ({args.format}, {sizes} clips): " + ", ".join(map(str, written)))
    return 0


# -- entry point -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mmim-lite`` with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        return int(args.func(args))
    except SystemExit as stop:  # --help / --version
        return stop.code if isinstance(stop.code, int) else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - bad input of any kind -> one line, no traceback
        if os.environ.get("MMIM_LITE_DEBUG"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        if not isinstance(err, (CLIError, ValueError, OSError)):
            message = f"{type(err).__name__}: {message}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
