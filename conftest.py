"""Settings for every test run, the notebooks' included: nbval starts each notebook's kernel from this process, so
the kernel inherits these variables. Tests use the tiny `smoke` profile, never the network, and draw no live plots."""

import os

import pytest

os.environ["COURSE_PROFILE"] = "smoke"
os.environ["COURSE_OFFLINE"] = "1"
os.environ["COURSE_HEADLESS"] = "1"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch's threads sleep while they wait (course_lib/__init__)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# `pytest` runs in parallel (`-n auto` in pyproject.toml): each worker gives torch, and the notebook kernels it starts,
# its share of the cores. These networks are small, so two one-thread workers on 2 cores ran lessons 1, 2, 4 and 9
# under nbval in 130 s, against 256 s for one process with two threads.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
if _workers:
    os.environ["OMP_NUM_THREADS"] = str(max(1, _cores() // _workers))  # more would make the workers wait for each other


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: runs without it (`-p no:xdist`) must not fail on it
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core, at most 4 (each holds torch and a notebook kernel, about 1 GB)."""
    return max(1, min(_cores(), 4))
