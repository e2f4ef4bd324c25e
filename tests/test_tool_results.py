"""An interrupted or NaN-stopped training is never written as a result (issue 19, class 4; issue 21.1): the
benchmark, the bundle builder and the peer race mark it, exit non-zero and keep what finished."""

import json
import shutil
import subprocess

import pytest
import torch

from course_lib import pretrained, recipes
from course_lib.config import one_thread
from course_lib.tools import benchmark, bundle, peers
from course_lib.training import History, TrainingInterrupted


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one thread is as fast, and much faster when other programs share the cores."""
    with one_thread():
        yield


def quick_model(profile, device, n_scored=None):
    """A 'trained' model in no time: it samples noise-free blobs; enough to score."""
    def sample(n, generator):
        return torch.rand(n, 1, 28, 28, generator=generator) ** 4, None

    return benchmark.Trained(sample, n_params=1, train_seconds=0.1)


def stopped_by(reason):
    def fake_fit(*args, **kwargs):
        history = History()
        history.stopped = reason
        return history

    return fake_fit


def test_benchmark_writes_a_nan_stopped_model_as_stopped_not_ok_and_exits_1(tmp_path, monkeypatch):
    monkeypatch.setattr(benchmark, "fit", stopped_by("nan"))  # train_ae's fit ends on a NaN loss
    monkeypatch.setitem(benchmark.BUILT, "vae", quick_model)
    code = benchmark.main(["--profile", "smoke", "--out", str(tmp_path), "--only", "ae", "vae", "--n-scored", "20"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert code == 1
    assert results["ae"]["status"] == "stopped (training stopped early: nan)" and "fd" not in results["ae"]
    assert results["vae"]["status"] == "ok" and results["vae"]["n_images"] == 20  # the others still run
    assert not (tmp_path / "ae.npz").exists()


def test_ctrl_c_during_the_benchmark_keeps_what_finished_marks_the_model_and_exits_130(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise TrainingInterrupted("stopped", History(stopped="interrupted"))

    monkeypatch.setitem(benchmark.BUILT, "ae", quick_model)
    monkeypatch.setattr(benchmark, "fit", interrupted)
    code = benchmark.main(["--profile", "smoke", "--out", str(tmp_path), "--only", "ae", "vae", "dcgan",
                           "--n-scored", "20"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert code == 130
    assert results["ae"]["status"] == "ok" and results["vae"] == {"status": "interrupted", "profile": "smoke",
                                                                  "device": "cpu"}
    assert "dcgan" not in results  # never started


def test_the_benchmark_says_where_it_is_while_it_runs(tmp_path, monkeypatch):
    monkeypatch.setitem(benchmark.BUILT, "ae", quick_model)
    lines = []
    benchmark.run("smoke", tmp_path, ["ae"], n_scored=20, progress=lines.append)
    assert lines[0].startswith("[1/1] ae: training") and lines[1].startswith("[1/1] ae: ok (")


@pytest.fixture
def bundle_copy(tmp_path, monkeypatch):
    shutil.copytree(pretrained.BUNDLE_DIR, tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "BUNDLE_DIR", tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "MANIFEST", tmp_path / "pretrained" / "manifest.json")
    monkeypatch.setenv(pretrained.FLOAT32_ENV, str(tmp_path / "float32"))
    return tmp_path / "pretrained"


def test_a_failed_lesson_build_measures_what_finished_goes_on_and_exits_1(bundle_copy, capsys, monkeypatch):
    def notebook_that_fails_after_one_model(command, env):
        if "01_autoencoders" in command[-1]:
            model = bundle.built(recipes.AE16)
            pretrained.save_bundled(recipes.AE16.name, History(epoch=1), model=model)  # finished: bundled
            return subprocess.CompletedProcess(command, 1)  # then a later training stopped on a NaN
        return subprocess.CompletedProcess(command, 0)

    measured, original = [], bundle.record_metrics
    monkeypatch.setattr(bundle, "record_metrics", lambda names: (measured.append(list(names)), original(names)))
    code = bundle.build(["autoencoders"], run=notebook_that_fails_after_one_model)
    out = capsys.readouterr().out
    assert code == 1 and "NOT built: autoencoders" in out
    assert measured == [[recipes.AE16.name]]
    assert "metrics" in pretrained.read_manifest()["models"][recipes.AE16.name]


def test_ctrl_c_during_a_bundle_build_says_what_was_finished_and_exits_130(bundle_copy, capsys):
    def interrupted(command, env):
        raise KeyboardInterrupt

    assert bundle.build(["autoencoders"], run=interrupted) == 130
    assert "Interrupted while building autoencoders" in capsys.readouterr().out


def fake_race(stopped):
    def race(entrant, budget_s, settings, device, checkpoints=None):
        return {"name": entrant.name, "settings": entrant.settings, "fd": 100.0, "train_seconds": budget_s,
                "images_seen": 10, "images_per_s": 10.0, "n_params": 1, "curve": [[budget_s, 100.0]],
                "stopped": stopped.pop(0)}

    return race


def test_a_race_side_stopped_by_nan_makes_the_pair_no_result_and_the_exit_code_1(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "race", fake_race(["nan", "budget"]))
    code = peers.main(["--profile", "smoke", "--out", str(tmp_path), "--only", "vae"])
    pair = json.loads((tmp_path / "peers.json").read_text())["pairs"]["vae"]
    assert code == 1 and pair["status"] == "stopped" and "course: nan" in pair["reason"] and "ratio" not in pair
    assert "| vae | stopped: training stopped before the budget" in peers.table({"pairs": {"vae": pair}})


def test_ctrl_c_during_a_race_keeps_the_pairs_before_it_and_exits_130(tmp_path, monkeypatch):
    calls = []

    def race(entrant, budget_s, settings, device, checkpoints=None):
        calls.append(entrant.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fake_race(["budget"])(entrant, budget_s, settings, device)

    monkeypatch.setattr(peers, "race", race)
    assert peers.main(["--profile", "smoke", "--out", str(tmp_path), "--only", "vae", "gan"]) == 130
    pairs = json.loads((tmp_path / "peers.json").read_text())["pairs"]
    assert pairs["vae"]["status"] == "ok" and pairs["gan"]["status"] == "interrupted"
