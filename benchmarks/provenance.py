"""Provenance of the committed result files: which package source produced them.

Shared by the scripts in this folder (``benchmarks/regenerate.py``, ``throughput.py``,
``load_benchmark.py``); each result file they write records :func:`provenance`.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmim_lite import __version__  # noqa: E402

__all__ = ["source_sha256", "provenance"]


def source_sha256(sources: Mapping[str, bytes] | None = None) -> str:
    """SHA-256 of the package source: every ``mmim_lite/*.py`` file, sorted by name, hashed as
    ``name NUL content NUL``. ``sources`` (name -> bytes) hashes another version, e.g. one read
    from git, the same way."""
    if sources is None:
        sources = {f.name: f.read_bytes() for f in (ROOT / "mmim_lite").glob("*.py")}
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(name.encode() + b"\0" + sources[name] + b"\0")
    return digest.hexdigest()


def provenance() -> dict[str, Any]:
    """The package version, :func:`source_sha256`, the git commit and whether ``mmim_lite/`` was
    clean."""
    out: dict[str, Any] = {"package_version": __version__, "source_sha256": source_sha256()}

    def git(*args: str) -> str:
        cmd = ["git", "-C", str(ROOT), *args]
        return subprocess.run(
            cmd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        out["git_commit"] = git("rev-parse", "HEAD")
        out["git_clean"] = git("status", "--porcelain", "--", "mmim_lite") == ""
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout: version and source hash only
    return out
