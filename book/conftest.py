"""pytest configuration for the book: every `pytest --nbval` run uses the book's sanitizer."""
from pathlib import Path

SANITIZER = Path(__file__).with_name("nbval_sanitize.cfg")


def pytest_configure(config):
    if getattr(config.option, "nbval_sanitize_with", "unset") is None:  # nbval loaded, no file given
        config.option.nbval_sanitize_with = str(SANITIZER)
