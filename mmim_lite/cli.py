"""Command line ``mmim-lite`` (``python -m mmim_lite``): ``train``, ``evaluate``, ``synth``,
``sweep``. Every :class:`~mmim_lite.config.MMIMConfig` field is an option typed from its field
(``--ba-pairs tv,ta``, ``--set f=v``), its --help text the field's ``help`` metadata; ``--preset``
or ``--config FILE`` gives the starting config. Bad input ends with one line ``mmim-lite: error:
...``, exit status 2 (``MMIM_LITE_DEBUG=1``: traceback). The modules that load torch, scikit-learn
or Optuna are imported by the command that runs, so that ``--help`` answers at once.

argparse, not tyro or jsonargparse (measured with tyro 1.0.17, jsonargparse 4.53): with either,
the spellings the README and the book use (``--ba-pairs tv,ta``, ``--use-unlabeled true``,
``--q-min-logvar none``) stop working, and bad input gets a framed box (tyro; one line only through
its private ``tyro._errors`` hook) or the usage block and a two-line error (jsonargparse, whose
--help shows no field's help text, only its type and default).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import PRESETS, MMIMConfig
from .formats import DiskFullError
from .synth import SYNTH_DEFAULTS, SYNTH_OPTIONS

__all__ = ["main", "build_parser", "config_from_args", "run_inputs", "CLIError"]

PROG = "mmim-lite"
_SYNTH_HELP = {
    "nuisance": "strength of a per-clip latent u ~ N(0,1), independent of the label, "
    "shared by text (which half of the narration sentences), face and voice (a "
    "shift of K u frame-noise SDs)",
    "share_speaker": "face and voice from one speaker (false: the voice's drawn apart)",
    "share_frame_count": "face and voice with one frame count (false: the voice's drawn apart)",
}
_MAIN_METRICS = ("mae", "corr", "acc7", "acc2_has0", "acc2_non0", "f1_non0")
#: the starting config without --preset, and of the fields a partial --config leaves out
DEFAULT_PRESET = "synthmosi"
#: what a full disk asks of the user, by command
_DISK_FULL_HINT = {
    "train": "rerun with --resume to continue",
    "sweep": "rerun the same command to continue",
}


class CLIError(ValueError):
    """A bad command line or input; reported as one line on stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line, no usage block
        raise CLIError(f"{message} (see {self.prog} --help)")


def _boolean(text: str) -> bool:
    return bool(("false", "true").index(text.lower()))  # ValueError: neither


def _finite(text: str) -> float:
    if not math.isfinite(value := float(text)):
        raise ValueError(text)
    return value


def _names(text: str) -> tuple[str, ...]:
    return () if text.lower() == "none" else tuple(s.strip() for s in text.split(",") if s.strip())


def _device_list(text: str) -> tuple[str, ...]:
    if not (names := _names(text)):
        raise ValueError(text)
    return names


# argparse names the type in "invalid ... value": the form a user types, not a function name
_boolean.__name__, _finite.__name__ = "true/false", "finite float"
_device_list.__name__ = "device list"


def _ints(metavar: str) -> Callable[[str], list[int]]:
    """Parser of as many comma-separated ints as ``metavar`` names (e.g. LO,HI)."""

    def parse(text: str) -> list[int]:
        if len(values := [int(v) for v in text.split(",")]) != metavar.count(",") + 1:
            raise ValueError(text)
        return values

    parse.__name__ = metavar  # argparse: "invalid LO,HI value: ..."
    return parse


def _typed(value: Any) -> str:
    """A config value as it is typed on the command line (true, none, tv,ta)."""
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return str(value).lower() if value is None or isinstance(value, bool) else str(value)


def _or_none(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse``, or None for 'none' (an Optional field)."""

    def optional(text: str) -> Any:
        return None if text.lower() == "none" else parse(text)

    optional.__name__ = parse.__name__  # argparse names the type in "invalid ... value"
    return optional


#: (string -> value, metavar) by a config field's type; a field of another type fails here, loudly
_PARSERS: dict[Any, tuple[Callable[[str], Any], str]] = {
    bool: (_boolean, "BOOL"),
    int: (int, "INT"),
    float: (_finite, "FLOAT"),
    str: (str, "STR"),
    tuple[str, ...]: (_names, "NAMES"),
    int | None: (_or_none(int), "INT"),
    float | None: (_or_none(_finite), "FLOAT"),
}
_FIELDS = {  # every field a user may set: (field, parser, metavar)
    f.name: (f, *_PARSERS[typing.get_type_hints(MMIMConfig)[f.name]])
    for f in dataclasses.fields(MMIMConfig)
    if f.name != "preset_name"
}


def _add_data_options(
    parser: argparse.ArgumentParser, data: bool = True, required: bool = False
) -> None:
    """``--data``/``--label-csv`` (unless ``data`` is False) and the SynthMOSI generator options."""
    if data:
        parser.add_argument(
            "--data",
            required=required,
            metavar="{synthmosi|PATH}",
            help="'synthmosi' (generated, even where a file or folder of that "
            "name exists: write ./synthmosi for it) or a released MulT/MMSA "
            "pickle or its folder",
        )
        parser.add_argument(
            "--label-csv", metavar="CSV", help="label CSV with the raw text (MulT pickles)"
        )
    group = parser.add_argument_group("SynthMOSI generator")
    for key, (flag, metavar) in SYNTH_OPTIONS.items():
        flags = [flag, "--seed"] if (not data and key == "seed") else [flag]  # synth: --seed too
        parse = (
            _ints(metavar)
            if "," in metavar
            else int
            if metavar in ("N", "S", "D")
            else _boolean
            if metavar == "BOOL"
            else _finite
        )
        text = _SYNTH_HELP.get(key, f"SynthMOSI {key.replace('_', ' ')}")
        group.add_argument(
            *flags,
            dest=f"synth__{key}",
            type=parse,
            metavar=metavar,
            help=f"{text} (default {str(SYNTH_DEFAULTS[key]).lower()})",
        )


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--preset`` or ``--config`` (the starting config), ``--seeds`` and the overrides (every
    field, ``--set``)."""
    parser.add_argument(
        "--preset",
        metavar="{" + ",".join(PRESETS) + "}",
        help="starting configuration (default synthmosi): Table 3 (mosi, mosei) or CPU-sized "
        "(synthmosi: MiniLM frozen, synthmosi-ft: MiniLM fine-tuned)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="start from this config JSON (a run's config.json or a "
        f"sweep's best_config.json) instead of a preset; fields it leaves out: "
        f"the {DEFAULT_PRESET} preset's",
    )
    parser.add_argument(
        "--seeds",
        default="1",
        metavar="N|S1,S2,..",
        help="N runs with seeds seed..seed+N-1 (default 1), or a comma-separated list",
    )
    group = parser.add_argument_group(
        "config overrides",
        "every MMIMConfig field; given values override the preset or --config (the defaults: the "
        f"{DEFAULT_PRESET} preset's)",
    )
    start = MMIMConfig.preset(DEFAULT_PRESET)
    for name, (f, parse, metavar) in _FIELDS.items():  # a bare --<bool field> means true
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=f"cfg__{name}",
            type=parse,
            metavar=metavar,
            default=argparse.SUPPRESS,
            help=f"{f.metadata['help']} (default {_typed(getattr(start, name))})".replace(
                "%", "%%"
            ),
            **({"nargs": "?", "const": True} if metavar == "BOOL" else {}),
        )
    group.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="set any config field (repeatable), e.g. --set alpha=0.1",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``mmim-lite`` argument parser with its ``train``, ``evaluate``, ``synth`` and ``sweep``
    commands."""
    parser = _Parser(
        prog=PROG,
        allow_abbrev=False,
        description="MultiModal InfoMax (Han, Chen & Poria, EMNLP 2021), compact and tested.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,evaluate,synth,sweep}")
    train = sub.add_parser(
        "train", allow_abbrev=False, help="train MMIM (Algorithm 1) for one or more seeds"
    )
    _add_data_options(train, required=True)
    train.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N"
    )
    train.add_argument(
        "--devices",
        metavar="DEV,DEV,..",
        type=_device_list,
        help="run the seeds in parallel, one process per device slot, "
        "e.g. cuda:0,cuda:1 or cpu,cpu",
    )
    train.add_argument("--out", required=True, metavar="DIR", help="output folder")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue DIR from each seed's checkpoint.pt "
        "(finished seeds are read back); only --epochs and --patience may be raised",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run DIR holds (its "
        "files are removed first); without it or --resume, a DIR that holds a run "
        "is refused",
    )
    _add_config_options(train)
    train.set_defaults(func=cmd_train)
    ev = sub.add_parser(
        "evaluate", allow_abbrev=False, help="metrics of a checkpoint, as one JSON object"
    )
    ev.add_argument(
        "--checkpoint", required=True, metavar="FILE", help="best.pt or checkpoint.pt of a run"
    )
    _add_data_options(ev)
    ev.add_argument("--split", default="test", choices=("train", "valid", "test"))
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ev.add_argument(
        "--probes",
        action="store_true",
        help="add the representation probes of "
        "--split (mmim_lite.probes; the R² probes fitted on train)",
    )
    ev.set_defaults(func=cmd_evaluate)
    syn = sub.add_parser(
        "synth", allow_abbrev=False, help="write SynthMOSI in a released file format"
    )
    syn.add_argument("--out", required=True, metavar="FILE", help="pickle to write")
    syn.add_argument("--format", required=True, choices=("mmsa", "mult"))
    syn.add_argument(
        "--label-csv", metavar="CSV", help="MulT only: label CSV (default label.csv beside FILE)"
    )
    _add_data_options(syn, data=False)
    syn.set_defaults(func=cmd_synth)
    sw = sub.add_parser(
        "sweep",
        allow_abbrev=False,
        help="hyper-parameter search (Optuna): the paper's grid or any "
        "space, selected on the mean validation MAE over --seeds",
    )
    _add_data_options(sw, required=True)
    sw.add_argument(
        "--space",
        default="paper",
        metavar="paper|FILE",
        help="'paper' (Sec. 4.3: batch_size 2 x lr_lld 2 x lr_main 3 x alpha 3 x beta 3 x "
        "visual_hidden,acoustic_hidden 2 x memory_size 3) or a JSON file "
        '{"field": [values], "field": {"low": L, "high": H, "log": true}, "f1,f2": [tied values]}',
    )
    sw.add_argument(
        "--sampler",
        default="grid",
        choices=("grid", "tpe"),
        help="grid: every point of the space exactly once; tpe: --trials settings chosen by TPE",
    )
    sw.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="tpe: number of settings (default 50); grid: only the first N points (default all)",
    )
    sw.add_argument(
        "--storage",
        metavar="URL",
        help="SQLAlchemy URL of the study (default sqlite:///DIR/study.db; "
        "postgresql://user:password@host/db to share one study between machines)",
    )
    sw.add_argument(
        "--study", default="mmim-lite", metavar="NAME", help="study name (default mmim-lite)"
    )
    sw.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder: best_config.json, top.csv, top.md, best.json, figures",
    )
    sw.add_argument(
        "--workers",
        type=int,
        metavar="W",
        help="worker processes on this machine (default: the number of --devices, else 1)",
    )
    sw.add_argument(
        "--devices",
        type=_device_list,
        metavar="DEV,DEV,..",
        help="device of each worker, round-robin (e.g. cuda:0,cuda:1; default auto)",
    )
    sw.add_argument(
        "--prune",
        action="store_true",
        help="stop unpromising trials early (median rule on the per-epoch validation MAE)",
    )
    sw.add_argument(
        "--heartbeat",
        type=int,
        default=60,
        metavar="S",
        help="seconds between a running trial's heartbeats; a trial silent for 2*S (its worker "
        "died) is marked failed and its setting retried",
    )
    sw.add_argument(
        "--top", type=int, default=10, metavar="N", help="rows of the table of best settings"
    )
    _add_config_options(sw)
    sw.set_defaults(func=cmd_sweep)
    return parser


def config_from_args(args: argparse.Namespace) -> MMIMConfig:
    """The config a parsed ``train`` (or ``sweep``) command runs: ``--preset`` (default synthmosi)
    or ``--config FILE``, then ``--set``, then ``--<field>`` options."""
    overrides: dict[str, Any] = {}
    for item in args.overrides:
        key, sep, text = (part.strip() for part in item.partition("="))
        if not (sep and key):
            raise CLIError(f"--set expects FIELD=VALUE, got {item!r}")
        if (key := key.replace("-", "_")) not in _FIELDS:
            raise CLIError(f"--set: unknown config field {key!r}; valid fields: {sorted(_FIELDS)}")
        try:
            overrides[key] = _FIELDS[key][1](text)
        except ValueError:
            raise CLIError(
                f"--set {key}: invalid {_FIELDS[key][2].lower()} value {text!r}"
            ) from None
    overrides.update(
        {k[5:]: v for k, v in vars(args).items() if k.startswith("cfg__")}
    )  # given options only
    if args.preset not in (None, *PRESETS):
        raise CLIError(
            f"--preset: unknown preset {args.preset!r}; expected one of {tuple(PRESETS)}"
        )
    path = args.config
    if path is None:
        return MMIMConfig.preset(args.preset or DEFAULT_PRESET, **overrides)
    if args.preset is not None:
        raise CLIError("--config and --preset both give the starting config: use one of them")
    from .runtime import read_json

    stored = read_json(Path(path).expanduser())
    if not isinstance(stored, dict):
        found = "no such file" if stored is None else f"found a JSON {type(stored).__name__}"
        raise CLIError(
            f"--config {path!r}: expected a config JSON object (e.g. a run's config.json), {found}"
        )
    try:  # a partial config: the default preset's values for the fields it leaves out
        full = {**MMIMConfig.preset(DEFAULT_PRESET).to_dict(), **stored}
        return MMIMConfig.from_dict(full).replace(**overrides)
    except ValueError as err:
        raise CLIError(f"--config {path}: {err}") from None


def _seed_list(text: str, config: MMIMConfig) -> list[int]:
    """``--seeds``: N -> seed..seed+N-1; "a,b,c" -> those seeds."""
    try:
        seeds = (
            [int(s) for s in text.split(",") if s.strip()]
            if "," in text
            else list(range(config.seed, config.seed + int(text)))
        )
    except ValueError:
        raise CLIError(
            f"--seeds expects a number of runs or a comma-separated seed list, got {text!r}"
        ) from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise CLIError(f"--seeds must be >= 1 runs of distinct non-negative seeds, got {text!r}")
    return seeds


def _out_dir(args: argparse.Namespace) -> Path:
    if (out := Path(args.out).expanduser()).exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} is a file, expected a folder")
    return out


def run_inputs(
    args: argparse.Namespace,
) -> tuple[MMIMConfig, list[int], dict[str, Any], Path, list[str]]:
    """``train``'s and ``sweep``'s config, seeds, data spec, output folder and devices, checked
    before anything is written (every independent problem at once)."""
    from .experiment import check_all  # torch: loaded by the command that runs, not by --help
    from .train import resolve_device

    given = args.devices or ([args.device] if hasattr(args, "device") else ["auto"])
    config, spec, out, devices = check_all(
        lambda: config_from_args(args),
        lambda: _data_spec(args),
        lambda: _out_dir(args),
        lambda: [str(resolve_device(d)) for d in given],
    )
    return config, _seed_list(args.seeds, config), spec, out, devices


def _data_spec(args: argparse.Namespace, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """:func:`~mmim_lite.experiment.data_spec` of the command line's data options (and
    ``stored``, a run's data.json)."""
    from .experiment import data_spec

    given = {k[7:]: v for k, v in vars(args).items() if k.startswith("synth__") and v is not None}
    data = args.data
    if data is not None and data.lower() == "synthmosi" and Path(data).exists():  # say which
        print(
            f"{PROG}: note: --data synthmosi is the generated SynthMOSI, not the {data} here "
            f"(for that, write --data ./{data})",
            file=sys.stderr,
        )
    return data_spec(data, getattr(args, "label_csv", None), given, stored)


def _mean_std(stats: dict[str, Any]) -> str:
    """The main metrics as "mae 0.812 ± 0.010, corr ..." (no ± for one run: std NaN or None)."""
    return ", ".join(
        f"{k} {stats[k]['mean']:.3f}"
        + (
            ""
            if stats[k]["std"] is None or math.isnan(stats[k]["std"])
            else f" ± {stats[k]['std']:.3f}"
        )
        for k in _MAIN_METRICS
    )


def cmd_train(args: argparse.Namespace) -> int:
    """``mmim-lite train``: :func:`~mmim_lite.experiment.run_experiment`, then each seed's and the
    mean's metrics."""
    from .experiment import run_experiment

    config, seeds, spec, out, _ = run_inputs(args)
    if args.resume and args.overwrite:
        raise CLIError("--resume continues the run in --out, --overwrite replaces it: use one")
    summary = run_experiment(
        config,
        seeds,
        spec,
        out,
        device=args.device,
        devices=args.devices,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    split = "test" if "test" in summary else "valid"
    for r in summary["runs"]:
        print(
            f"seed {r['seed']}: best epoch {r['best_epoch']}/{r['epochs_run']}, {split} "
            + " ".join(f"{k} {r[split][k]:.3f}" for k in ("mae", "corr", "acc2_non0"))
        )
    print(f"{split} over {len(seeds)} seed(s): " + _mean_std(summary[split]))
    if split in summary.get("oracle", {}):
        print(
            f"oracle {split}: "
            + ", ".join(f"{k} {summary['oracle'][split][k]:.3f}" for k in _MAIN_METRICS)
        )
    print(f"wrote {out / 'summary.json'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """``mmim-lite sweep``: :func:`~mmim_lite.sweep.run_sweep`, then the best setting (its test
    metrics only)."""
    from .experiment import check_all, load_data, load_text_encoder

    try:  # optuna and its database layer: the sweep extra
        from .sweep import Sweep, load_space, run_sweep
    except ModuleNotFoundError as err:
        if err.name not in ("optuna", "sqlalchemy"):
            raise
        raise CLIError(f"the sweep needs {err.name}: pip install 'mmim-lite[sweep]'") from None
    config, seeds, spec, out, devices = run_inputs(args)
    for flag in ("trials", "workers", "heartbeat", "top"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise CLIError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    space = load_space(args.space, args.sampler, config)
    storage = args.storage or f"sqlite:///{out.resolve() / 'study.db'}"
    data = {
        k: Path(v).name if k in ("path", "label_csv") and v else v for k, v in spec.items()
    }  # any machine
    sweep = Sweep(
        base=config,
        space=space,
        seeds=tuple(seeds),
        sampler=args.sampler,
        trials=args.trials,
        storage=storage,
        study=args.study,
        prune=args.prune,
        heartbeat=args.heartbeat,
        data=data,
    )
    (splits, _), _ = check_all(lambda: load_data(spec), lambda: load_text_encoder(config))
    out.mkdir(parents=True, exist_ok=True)
    workers = args.workers or (len(devices) if args.devices else 1)
    report = run_sweep(sweep, splits, out, devices=devices, workers=workers, top=args.top)
    best = report["best"]
    print(
        f"{report['n_complete']} of {report['n_points']} setting(s) complete; "
        f"best: trial {best['trial']} " + " ".join(f"{k}={v}" for k, v in best["params"].items())
    )
    for split in ("valid", "test"):  # test: reported for the best setting only
        if split in best:
            print(f"best {split} over {len(seeds)} seed(s): " + _mean_std(best[split]))
    print("wrote " + ", ".join(str(out / name) for name in report["files"]))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``mmim-lite evaluate``: one JSON object with the checkpoint's metrics on ``--split`` (and,
    with ``--probes``, its :func:`~mmim_lite.probes.representation_probes` under ``probes``)."""
    from .experiment import check_all, load_data
    from .probes import representation_probes
    from .runtime import load_trainer, read_checkpoint, read_json
    from .train import resolve_device

    path = Path(args.checkpoint).expanduser()
    if not path.is_file():
        raise CLIError(f"--checkpoint {args.checkpoint!r}: no such file")
    stored = read_json(path.parent / "data.json") or read_json(path.parent.parent / "data.json")
    state, spec, device = check_all(  # all before any data is made or read
        lambda: read_checkpoint(path),
        lambda: _data_spec(args, stored),
        lambda: resolve_device(args.device),
    )
    splits, _ = load_data(spec)
    trainer = load_trainer(path, splits, device=device, progress=False, state=state)
    result = trainer.evaluate(args.split)
    if args.probes:
        result["probes"] = representation_probes(trainer, args.split)
    print(json.dumps(result))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """``mmim-lite synth``: SynthMOSI as an MMSA- or MulT-style pickle that load_dataset reads."""
    from .experiment import load_data
    from .formats import save_mmsa_pickle, save_mult_pickle

    if args.label_csv is not None and args.format != "mult":
        raise CLIError("--label-csv applies only to --format mult")
    out = Path(args.out).expanduser()
    if out.is_dir():
        raise CLIError(f"--out {args.out!r} is a folder, expected a file name")
    splits, _ = load_data(_data_spec(argparse.Namespace(**{**vars(args), "data": "synthmosi"})))
    csv_path = Path(args.label_csv).expanduser() if args.label_csv else out.parent / "label.csv"
    if args.format == "mmsa":
        save_mmsa_pickle(splits, out)
    else:
        save_mult_pickle(splits, out, csv_path)
    sizes = "/".join(str(len(splits[s])) for s in ("train", "valid", "test"))
    written = [out] if args.format == "mmsa" else [out, csv_path]
    print(f"wrote SynthMOSI ({args.format}, {sizes} clips): " + ", ".join(map(str, written)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mmim-lite`` with ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    parser, command = build_parser(), None
    try:
        args = parser.parse_args(argv)
        command = args.command
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
        if isinstance(err, DiskFullError):
            message += f"; free space and {_DISK_FULL_HINT.get(command, 'rerun')}"
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
