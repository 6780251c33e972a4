"""The conda environment and pyproject.toml must list the same packages, and Binder installs
the package as CI does."""

import os
import re
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _normalise(specs: list[str]) -> dict[str, str]:
    out = {}
    for s in specs:
        r = Requirement(s)
        out[r.name.lower().replace("_", "-")] = str(r.specifier)
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert _normalise(pip_section) == _normalise(declared)


def test_book_config_is_a_symlink_to_the_single_source():
    link = ROOT / "book" / "_config.yml"
    assert link.is_symlink()
    assert link.resolve() == (ROOT / "_config.yml").resolve()


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["mmim-lite"] == "mmim_lite.cli:main"


def test_binder_installs_the_package_with_the_cpu_torch_pinned_as_in_ci():
    """Binder builds from binder/ (which hides the root's environment.yml from it): the Python of
    the Pages workflow, then an executable postBuild that installs the same torch pin as CI, the
    README and the workflow, from the CPU-only index, and the package with its book tools from
    pyproject.toml (the single list of dependencies)."""
    post = ROOT / "binder" / "postBuild"
    assert os.access(post, os.X_OK)
    flow_file = ROOT / ".github" / "workflows" / "book.yml"
    pins = {
        re.search(r"torch==[\d.]+", p.read_text())[0]
        for p in (ROOT / ".ci" / "run", ROOT / "README.md", flow_file, post)
    }
    assert len(pins) == 1, pins
    steps = post.read_text()
    cpu_index = "https://download.pytorch.org/whl/cpu"
    assert f"pip install --no-cache-dir {pins.pop()} --index-url {cpu_index}" in steps
    assert 'pip install --no-cache-dir -e ".[dev]"' in steps
    flow = yaml.safe_load(flow_file.read_text())
    python = next(
        s["with"]["python-version"]
        for s in flow["jobs"]["build"]["steps"]
        if s.get("uses", "").startswith("actions/setup-python@")
    )
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == f"python-{python}"
