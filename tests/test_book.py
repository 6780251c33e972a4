"""Build the book with warnings as errors and check that every chapter page exists."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def test_every_chapter_is_a_committed_executed_notebook():
    chapters = [name for name in _toc_files() if name != "references"]
    for name in chapters:
        nb = json.loads((ROOT / "book" / f"{name}.ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
        assert code, f"{name} has no code"
        assert all(c["execution_count"] is not None for c in code), f"{name} has unexecuted cells"
    assert (ROOT / "book" / "references.md").is_file()


def test_book_builds_without_warnings(tmp_path):
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else shutil.which("jupyter-book"),
           "build", str(ROOT / "book"), "-W", "--keep-going", "--path-output", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = tmp_path / "_build" / "html"
    for name in _toc_files():
        assert (html / f"{name}.html").is_file(), f"missing page {name}.html"
