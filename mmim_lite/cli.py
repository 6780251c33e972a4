"""Command-line interface: ``mmim-lite`` (also ``python -m mmim_lite``)."""
from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmim-lite",
        description="MultiModal InfoMax (Han, Chen & Poria, EMNLP 2021), compact and tested.",
    )
    parser.add_argument("--version", action="version", version=f"mmim-lite {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
