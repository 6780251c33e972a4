"""pytest configuration for the book.

- Every `pytest --nbval` run uses the book's sanitizer (`nbval_sanitize.cfg`).
- `--perturb-init SCALE --perturb-salt SALT` runs every notebook kernel with its initial weights
  perturbed (`perturb_init.py`; CONTRIBUTING.md says why and how to use it).
"""

import os
import shutil
import tempfile
from pathlib import Path

from perturb_init import perturbed_kernel_env

SANITIZER = Path(__file__).with_name("nbval_sanitize.cfg")


def pytest_addoption(parser):
    group = parser.getgroup("mmim-lite book")
    group.addoption(
        "--perturb-init",
        type=float,
        default=0.0,
        metavar="SCALE",
        help="multiply every initialised weight in the notebooks by 1 + SCALE * N(0, 1) "
        "(e.g. 1e-4; default 0: off)",
    )
    group.addoption(
        "--perturb-salt",
        default="0",
        metavar="SALT",
        help="salt of the perturbation's noise (each salt is another draw)",
    )


def pytest_configure(config):
    if (
        getattr(config.option, "nbval_sanitize_with", "unset") is None
    ):  # nbval loaded, no file given
        config.option.nbval_sanitize_with = str(SANITIZER)
    scale = config.getoption("--perturb-init")
    if scale < 0:
        raise ValueError(f"--perturb-init: expected a scale >= 0, got {scale}")
    if scale > 0:  # kernels started by nbval inherit this environment
        config._perturb_ipython_dir = Path(tempfile.mkdtemp(prefix="mmim-lite-ipython-"))
        salt = config.getoption("--perturb-salt")
        os.environ.update(perturbed_kernel_env(scale, salt, config._perturb_ipython_dir))


def pytest_report_header(config):
    if config.getoption("--perturb-init") > 0:
        scale, salt = config.getoption("--perturb-init"), config.getoption("--perturb-salt")
        return f"notebook kernels: initial weights perturbed, scale {scale}, salt {salt!r}"
    return None


def pytest_unconfigure(config):
    ipython_dir = getattr(config, "_perturb_ipython_dir", None)
    if ipython_dir is not None:
        shutil.rmtree(ipython_dir, ignore_errors=True)
