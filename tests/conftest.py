"""Shared test setup: one CPU thread, the in-process CLI runner, the ``slow`` marker.

``pytest -m "not slow" tests`` runs the quick tests (about a minute on two cores); the README's
command runs everything.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

from mmim_lite import cli
from mmim_lite.config import MMIMConfig
from mmim_lite.train import Trainer, seed_everything

# Equal numbers in every test on any machine, and the same single thread in the workers that the
# sweep and --devices tests spawn.
torch.set_num_threads(1)


@pytest.fixture
def run_cli(capfd) -> Callable[..., tuple[int, str, str]]:
    """``run_cli(*argv)`` runs ``mmim-lite ARGV`` in this process and returns (exit code, stdout,
    stderr) captured at the file-descriptor level; a warning a user would see fails the test."""

    def run(*argv: str) -> tuple[int, str, str]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.simplefilter("ignore", DeprecationWarning)  # hidden from users by default
            code = cli.main(list(argv))
        out, err = capfd.readouterr()
        return code, out, err

    return run


@pytest.fixture
def new_trainer() -> Callable[..., Trainer]:
    """``new_trainer(config, splits, **kwargs)``: a Trainer as a run builds it, seeded with its
    config's seed first (the Trainer never seeds itself); no progress bars unless asked."""

    def make(config: MMIMConfig, splits: Any, **kwargs: Any) -> Trainer:
        seed_everything(config.seed)
        return Trainer(config, splits, **{"progress": False, **kwargs})

    return make
