"""Perturbed initial weights: the book's check that a chapter's compared outputs are
CPU-independent.

A training run is chaotic: which epoch ends it, or which way one trained model decides a borderline
clip, follows the last bits of float32 arithmetic, and every CPU class computes those bits its own
way. Multiplying every freshly initialised weight by ``1 + scale * n`` (``n`` standard normal,
``scale`` = 1e-4 by default) changes a run as much as another CPU would, on any machine, far below
any effect the book reports. A cell whose compared output or assert survives several such
perturbations does not depend on one trajectory's details.

How it is applied: ``book/conftest.py`` (the pytest options ``--perturb-init SCALE`` and
``--perturb-salt SALT``) sets ``MMIM_LITE_PERTURB_INIT`` / ``MMIM_LITE_PERTURB_SALT`` and points
``IPYTHONDIR`` at a temporary folder whose startup script runs this file in every notebook kernel.
It wraps each initialiser of ``torch.nn.init`` (``kaiming_uniform_``, ``normal_``, ``ones_``, ...):

- the noise is drawn from a private generator seeded by a hash of the tensor's own initial values
  and the salt, so two tensors initialised equally stay equal (a chapter that rebuilds "the same
  initial model" still can) and the global random stream is untouched (data draws, dropout masks
  and batch orders are exactly as without the perturbation);
- tensors on the meta device (not materialised) are left alone;
- a nested initialiser call perturbs once.

Weights that a model loads (the pretrained MiniLM) are not initialised, so they are not perturbed.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import torch

ENV_SCALE = "MMIM_LITE_PERTURB_INIT"
ENV_SALT = "MMIM_LITE_PERTURB_SALT"
#: the initialisers of torch.nn.init that write a tensor in place (every public one)
INITIALISERS = (
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    "sparse_",
)  # fmt: skip


# Run in a kernel's namespace before its first cell; it leaves no name behind.
STARTUP = """\
import runpy as _runpy
_runpy.run_path({path!r}, run_name="mmim_lite_perturb_init")["install_from_env"]()
del _runpy
"""


def perturbation(tensor: torch.Tensor, scale: float, salt: str) -> torch.Tensor:
    """The relative noise ``scale * n`` for ``tensor`` (float32, its shape), seeded by its
    values."""
    raw = tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    digest = hashlib.sha256(salt.encode() + b"\0" + raw).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    return scale * torch.randn(tuple(tensor.shape), generator=generator, dtype=torch.float32)


def install(scale: float, salt: str) -> None:
    """Wrap every initialiser of ``torch.nn.init`` so that it multiplies what it wrote by ``1 +
    noise``.

    Idempotent per process: installing twice wraps once (the second call changes nothing).
    """
    if getattr(torch.nn.init, "_mmim_lite_perturbed", False):
        return
    depth = [0]

    def wrap(init):
        @functools.wraps(init)
        def perturbed(tensor, *args, **kwargs):
            depth[0] += 1
            try:
                out = init(tensor, *args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0 and tensor.is_floating_point() and not tensor.is_meta:
                with torch.no_grad():
                    noise = perturbation(tensor, scale, salt).to(tensor.device, tensor.dtype)
                    tensor.mul_(1.0 + noise)
            return out

        return perturbed

    for name in INITIALISERS:
        setattr(torch.nn.init, name, wrap(getattr(torch.nn.init, name)))
    torch.nn.init._mmim_lite_perturbed = True


def install_from_env() -> bool:
    """Install the perturbation if ``MMIM_LITE_PERTURB_INIT`` holds a scale > 0; say whether it
    did."""
    scale = float(os.environ.get(ENV_SCALE) or 0.0)
    if scale > 0:
        install(scale, os.environ.get(ENV_SALT, "0"))
    return scale > 0


def perturbed_kernel_env(scale: float, salt: str, ipython_dir: Path) -> dict[str, str]:
    """The environment variables under which a new IPython kernel perturbs its initial weights.

    Writes the startup script into ``ipython_dir`` (a folder the caller owns and removes).
    """
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-perturb-init.py").write_text(STARTUP.format(path=str(Path(__file__).resolve())))
    return {"IPYTHONDIR": str(ipython_dir), ENV_SCALE: repr(scale), ENV_SALT: salt}
