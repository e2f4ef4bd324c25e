"""Profiles, seeding, device choice and switches."""

import os
import random

import numpy as np
import pytest
import torch

from course_lib.config import env_flag, pick_device, profile_name, seed_everything


@pytest.mark.parametrize("value, expected", [("smoke", "smoke"), ("CPU", "cpu"), (" Gpu ", "gpu")])
def test_profile_comes_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_PROFILE", value)
    assert profile_name() == expected


def test_no_profile_means_gpu_with_cuda_else_cpu(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert profile_name() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_invalid_profile_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError) as err:
        profile_name()
    for name in ("smoke", "cpu", "gpu"):
        assert name in str(err.value)


def test_seed_everything_repeats_every_random_source():
    def draws():
        gen = seed_everything(123)
        return torch.rand(3), torch.rand(3, generator=gen), np.random.rand(3), random.random()

    first, second = draws(), draws()
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert np.array_equal(first[2], second[2]) and first[3] == second[3]
    seed_everything(124)
    assert not torch.equal(first[0], torch.rand(3))  # another seed, other draws


def test_pick_device_cpu():
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_says_so():
    with pytest.raises(RuntimeError, match="no usable GPU"):
        pick_device("cuda")


@pytest.mark.parametrize("value, on", [("1", True), ("true", True), ("yes", True), ("0", False), ("", False),
                                       ("False", False)])
def test_env_flag(monkeypatch, value, on):
    monkeypatch.setenv("COURSE_SOMETHING", value)
    assert env_flag("COURSE_SOMETHING") is on


def _wait_policy_in_a_fresh_python(code: str, **env: str) -> str:
    """What `config.WAIT_POLICY` and the environment say in a new interpreter that runs `code` first."""
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    out = subprocess.run([sys.executable, "-c", code + "; from course_lib import config; import os; "
                          "print(config.WAIT_POLICY, os.environ.get('OMP_WAIT_POLICY'))"],
                         env=environment, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_the_wait_policy_sleeps_on_busy_cores_spins_on_idle_ones_and_keeps_a_chosen_one():
    from course_lib.wait_policy import SPIN, TORCH_FIRST, choose

    assert choose({}, torch_started=False, busy=1.3) == ("PASSIVE", "other programs kept 1.3 cores busy when the "
                                                                    "course started")
    assert choose({}, torch_started=False, busy=0.1)[0] == SPIN
    assert choose({"OMP_WAIT_POLICY": "active"}, torch_started=False, busy=1.3)[0] == "ACTIVE"
    assert choose({}, torch_started=True, busy=1.3) == (SPIN, TORCH_FIRST)


@pytest.mark.parametrize("looks, expected", [((0.1,), 0.1), ((0.9, 0.0), 0.0), ((0.9, 1.6), 0.9)])
def test_a_busy_first_look_is_checked_again_so_a_burst_that_ends_does_not_count(looks, expected, monkeypatch):
    from course_lib import wait_policy

    seen = list(looks)
    monkeypatch.setattr(wait_policy, "busy_cores", lambda seconds: seen.pop(0))
    assert wait_policy.steady_busy_cores() == expected
    assert seen == []  # an idle first look is not looked at again; a busy one exactly once more


def test_on_busy_cores_the_course_lets_torch_threads_sleep():
    import subprocess
    import sys

    from course_lib.wait_policy import busy_cores

    cores = os.cpu_count() or 1
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        assert busy_cores(0.5) > 0.75 * cores  # every core runs a busy loop
        assert _wait_policy_in_a_fresh_python("import course_lib; import torch") == "PASSIVE PASSIVE"
    finally:
        for spinner in spinners:
            spinner.kill()


def test_importing_the_course_first_lets_it_choose_how_torch_threads_wait():
    assert _wait_policy_in_a_fresh_python("import course_lib", OMP_WAIT_POLICY="active") == "ACTIVE active"  # kept
    # torch imported first: too late to change, and the course says so rather than pretend
    assert _wait_policy_in_a_fresh_python("import torch; import course_lib") == "spin (OpenMP's default) None"
    # chosen: PASSIVE is both reported and set for OpenMP, or neither
    assert _wait_policy_in_a_fresh_python("import course_lib; import torch") in ("PASSIVE PASSIVE",
                                                                                 "spin (OpenMP's default) None")


def test_each_parallel_test_worker_runs_torch_on_its_share_of_the_cores():
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not workers:
        pytest.skip("a serial run (-p no:xdist): torch keeps its default threads")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert torch.get_num_threads() == int(os.environ["OMP_NUM_THREADS"]) <= max(1, cores // workers)


def test_the_test_settings_load_without_the_parallel_plugin():
    """CI runs some tests with `-p no:xdist`; the project's conftest.py must not need the plugin's hooks then."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist", "-p",
                          "no:cacheprovider", "-o", "addopts=", "tests/test_config.py"],
                         cwd=root, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


def test_the_gpu_profile_without_the_full_mnist_uses_the_cpu_sizes_and_says_so(monkeypatch, capsys):
    from course_lib import data, lesson
    from course_lib.recipes import lesson_settings

    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    monkeypatch.setenv("COURSE_OFFLINE", "1")  # only the 4,000 bundled digits: a fifteenth of the gpu profile's data
    assert not data.has_full_mnist()
    profile, settings, _ = lesson.start_lesson("diffusion")
    said = capsys.readouterr().out
    assert profile == "cpu" and settings == lesson_settings("diffusion", "cpu")
    assert "sized for the full MNIST (60,000" in said and "connect to the internet" in said
    monkeypatch.setattr(lesson, "has_full_mnist", lambda: True)  # with it (e.g. on Colab): the gpu profile as set
    profile, settings, _ = lesson.start_lesson("diffusion")
    assert profile == "gpu" and settings == lesson_settings("diffusion", "gpu")
    assert "sized for the full MNIST" not in capsys.readouterr().out
