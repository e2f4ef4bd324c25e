"""Run settings: which profile (how big a run), which device, and one call that seeds everything. This module
imports nothing else of the course: every other module may use it.

The profile comes from the environment variable `COURSE_PROFILE`:

- `smoke`: every cell runs in seconds with tiny numbers (what CI runs);
- `cpu`:   recognizable results on a laptop CPU in a few minutes;
- `gpu`:   the full lesson (Colab with a GPU).

With no `COURSE_PROFILE`, it is `gpu` when CUDA is there and `cpu` otherwise. What each profile means for each
lesson (data size, epochs, batch size) is in `course_lib.recipes`.

    >>> PROFILES
    ('smoke', 'cpu', 'gpu')
"""

import os
import random
from contextlib import contextmanager

import numpy as np
import torch

from . import wait_policy

PROFILES = ("smoke", "cpu", "gpu")

# How torch's CPU threads wait for each other in this process, and why: chosen by `import course_lib` before torch
# started (course_lib/wait_policy.py): they sleep while other programs keep the cores busy, spin otherwise.
WAIT_POLICY, WAIT_POLICY_WHY = wait_policy.POLICY, wait_policy.WHY

# How many generated images are scored (Frechet distance etc.) in each profile; fewer make a noisier number.
N_SCORED = {"smoke": 200, "cpu": 1000, "gpu": 5000}


def profile_name() -> str:
    """The active profile: `COURSE_PROFILE` if set, else `gpu` with CUDA and `cpu` without."""
    name = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if not name:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(
            f"COURSE_PROFILE={name!r} is not a profile. Use one of {', '.join(PROFILES)}, "
            f"e.g. `export COURSE_PROFILE=cpu` (or unset it to choose automatically)."
        )
    return name


def pick_device(prefer: str | None = None) -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU. `prefer` (or `COURSE_DEVICE`) overrides.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    prefer = prefer or os.environ.get("COURSE_DEVICE")
    if prefer:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("You asked for CUDA but this machine has no usable GPU. Use device 'cpu'.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("You asked for MPS but it is not available here. Use device 'cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and GPU) so a run can be repeated; returns a seeded torch.Generator.

    >>> _ = seed_everything(0); a = torch.rand(2)
    >>> _ = seed_everything(0); torch.equal(a, torch.rand(2))
    True
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


@contextmanager
def one_thread():
    """Run torch on one CPU thread inside the block. These networks are tiny: a second thread gains nothing, and
    when another program shares the cores, threads waiting for each other made a step 100 times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def env_flag(name: str) -> bool:
    """True when the environment variable `name` is set to anything but "", "0" or "false"."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false")
