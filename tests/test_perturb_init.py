"""The book's perturbed-initialisation check (book/perturb_init.py, book/conftest.py).

Each property runs in a fresh interpreter or kernel: installing the perturbation changes
torch.nn.init for the rest of a process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # each test starts a fresh interpreter or kernel

BOOK = Path(__file__).resolve().parents[1] / "book"
sys.path.insert(0, str(BOOK))  # book/ is not a package (book/conftest.py imports it likewise)

from perturb_init import ENV_SALT, ENV_SCALE, perturbed_kernel_env  # noqa: E402

# Builds the same modules with and without the perturbation, each from torch.manual_seed(0).
PROBE = """
import json, sys, torch
sys.path.insert(0, {book!r})
from perturb_init import install
def build():
    torch.manual_seed(0)
    lin, lstm, norm = torch.nn.Linear(64, 48), torch.nn.LSTM(8, 16), torch.nn.LayerNorm(32)
    lin2 = torch.nn.Linear(64, 48, device="meta")
    return lin, lstm, norm, torch.randn(5)
plain = build()
install({scale}, {salt!r})
first, again = build(), build()
torch.manual_seed(0)
twin_a, twin_b = torch.nn.Linear(64, 48), None
torch.manual_seed(0)
twin_b = torch.nn.Linear(64, 48)
rel = (first[0].weight / plain[0].weight - 1).detach()
print(json.dumps({{
    "rel_std": rel.std().item(), "rel_mean": rel.mean().item(),
    "lstm_changed": not torch.equal(first[1].weight_hh_l0, plain[1].weight_hh_l0),
    "norm_rel_std": (first[2].weight - 1).std().item(),
    "bias_zero_stays_zero": bool((first[2].bias == 0).all()),
    "rng_untouched": torch.equal(first[3], plain[3]),
    "twins_equal": torch.equal(twin_a.weight, twin_b.weight),
    "repeatable": torch.equal(first[0].weight, again[0].weight),
    "sum": first[0].weight.sum().item(),
}}))
"""


def probe(scale: float, salt: str) -> dict:
    code = PROBE.format(book=str(BOOK), scale=scale, salt=salt)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_perturbation_has_the_asked_size_and_keeps_equal_initialisations_equal():
    result = probe(1e-4, "7")
    # each weight is multiplied by 1 + 1e-4 * N(0, 1): relative change of std 1e-4, mean ~0
    assert 0.9e-4 < result["rel_std"] < 1.1e-4 and abs(result["rel_mean"]) < 1e-5
    assert result["lstm_changed"]  # LSTMs are initialised through init.uniform_ too
    assert 0.7e-4 < result["norm_rel_std"] < 1.3e-4  # ones_ perturbed; zeros_ stay zeros
    assert result["bias_zero_stays_zero"]
    # seeded by the values: the global random stream is untouched, equal inits stay equal
    assert result["rng_untouched"] and result["twins_equal"] and result["repeatable"]


def test_each_salt_is_another_draw():
    sums = {salt: probe(1e-4, salt)["sum"] for salt in ("1", "2")}
    assert sums["1"] != sums["2"]
    assert probe(1e-4, "1")["sum"] == sums["1"]  # and the same salt is the same draw


def test_kernels_started_with_the_option_perturb_and_keep_their_namespace(tmp_path):
    """What `pytest --nbval --perturb-init 1e-4` gives every notebook kernel (book/conftest.py)."""
    env = {**os.environ, **perturbed_kernel_env(1e-4, "3", tmp_path / "ipython")}
    assert env[ENV_SCALE] == "0.0001" and env[ENV_SALT] == "3"
    code = (
        "import torch\n"
        "print(hasattr(torch.nn.init.kaiming_uniform_, '__wrapped__'),\n"
        "      [k for k in globals() if 'runpy' in k or 'perturb' in k])"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env)
    try:
        NotebookClient(notebook, km=manager, timeout=120).execute()
    finally:
        manager.shutdown_kernel(now=True)
    assert notebook.cells[0].outputs[0]["text"].strip() == "True []"


@pytest.mark.parametrize("scale", ["0", ""])
def test_off_by_default(scale, tmp_path):
    env = {**os.environ, ENV_SCALE: scale}
    code = (
        f"import sys, torch; sys.path.insert(0, {str(BOOK)!r}); import perturb_init;"
        "print(perturb_init.install_from_env(), hasattr(torch.nn.init.normal_, '__wrapped__'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["False", "False"], out.stderr
