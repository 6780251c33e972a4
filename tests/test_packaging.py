"""The conda environment and pyproject.toml must list the same packages."""
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
