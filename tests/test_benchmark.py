import json

import numpy as np
import pytest
import torch

from course_lib.config import one_thread
from course_lib.data import colour_of, load_dataset
from course_lib.superres import downscale
from course_lib.tools import benchmark, results_table


N_SCORED = 100  # images scored per model here: fewer than the smoke profile's 200, which halves the scoring time


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, pytestconfig):
    """Every model of the benchmark in the smoke profile, on one thread (these networks are tiny: on a loaded machine
    two threads waiting for each other made this fixture 10-30 times slower), saying which model it is at on the
    terminal, also under -q, so a long test run is never silent."""
    out = tmp_path_factory.mktemp("bench")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")

    def say(line):  # past pytest's capturing, as capsys.disabled() does
        with capture.global_and_fixture_disabled():
            print(f"\nbenchmark fixture: {line}", end="", flush=True)

    with one_thread():
        benchmark.run("smoke", out, benchmark.NAMES, n_scored=N_SCORED, progress=say)
    return out


def test_smoke_run_writes_results_for_every_model(smoke_run):
    results = json.loads((smoke_run / "results.json").read_text())
    ae = results["ae"]
    assert ae["status"] == "ok" and ae["profile"] == "smoke" and ae["device"] == "cpu"
    assert ae["train_seconds"] > 0 and ae["sample_seconds_100"] > 0 and ae["n_params"] > 10_000
    assert ae["n_images"] == N_SCORED
    assert ae["fd_real"] < ae["fd"] < ae["fd_noise"]
    # the same in the second feature network (where uniform noise is no upper bound: flat grey scores above it)
    assert ae["fd2_real"] < ae["fd2"] and ae["fd2_real"] < ae["fd2_noise"]
    assert 0 <= ae["precision"] <= 1 and 0 <= ae["recall"] <= 1
    ldm = results["ldm"]
    assert ldm["status"] == "ok" and ldm["fd_real"] < ldm["fd"] < ldm["fd_noise"]
    assert ldm["pixel_sample_seconds_100"] > 0 and 0 <= ldm["rebuilt_class_accuracy"] <= 1
    ddpm = results["ddpm"]
    assert ddpm["status"] == "ok" and ddpm["fd_real"] < ddpm["fd"] < ddpm["fd_noise"]
    n_both = N_SCORED // 5
    assert ddpm[f"fd_ddpm1000_{n_both}"] > 0 and ddpm[f"fd_ddim50_{n_both}"] > 0 and ddpm["ddpm1000_seconds_100"] > 0
    assert ddpm[f"fd2_ddpm1000_{n_both}"] > 0 and ddpm[f"fd2_ddim50_{n_both}"] > 0
    stylegan = results["stylegan"]
    assert stylegan["status"] == "ok" and stylegan["fd_real"] < stylegan["fd"] < stylegan["fd_noise"]
    assert stylegan["psi0.7_fd"] > 0 and 0 <= stylegan["psi0.7_precision"] <= 1 and stylegan["d_params"] > 10_000
    assert stylegan["psi0.7_fd2"] > 0
    dcgan = results["dcgan"]
    assert dcgan["status"] == "ok" and dcgan["fd_real"] < dcgan["fd"] < dcgan["fd_noise"]
    assert dcgan["n_params"] > dcgan["d_params"] > 10_000
    for r in (dcgan, stylegan):  # each point of the FD curve has its twin in the second feature network
        assert [t for t, _ in r["fd2_500_over_seconds"]] == [t for t, _ in r["fd_500_over_seconds"]]
    vae = results["vae"]
    assert vae["status"] == "ok" and 80 < vae["nelbo_test"] < 543  # below 784 log 2, the NELBO of a coin flip
    assert vae["fd_real"] < vae["fd"] < vae["fd_noise"]


def test_smoke_run_scores_the_conditional_models_by_class(smoke_run):
    results = json.loads((smoke_run / "results.json").read_text())
    for name in ("cgan", "cvae", "pix2pix", "cfg", "ldm"):
        r = results[name]
        assert r["status"] == "ok" and r["fd_real"] < r["fd"] < r["fd_noise"], name
        assert r["fd2_real"] < r["fd2_noise"] and r["fd2"] > 0, name
        assert 0 <= r["class_accuracy"] <= 1, name
        with np.load(smoke_run / f"{name}.npz") as npz:
            labels = npz["labels"]
        assert labels.shape == (N_SCORED,) and labels.min() >= 0 and labels.max() <= 9
    for w in ("0", "1", "2", "3", "5"):
        assert 0 <= results["cfg"][f"class_accuracy_w{w}"] <= 1 and results["cfg"][f"fd_w{w}"] > 0
        assert results["cfg"][f"fd2_w{w}"] > 0
    p2p = results["pix2pix"]
    assert p2p["sharpness_real"] > 0 and p2p["sharpness_pix2pix"] > 0 and p2p["sharpness_l1_only"] > 0
    assert 0 < p2p["l1_error_pix2pix"] < 1 and 0 < p2p["l1_error_l1_only"] < 1
    assert p2p["fd2_l1_only"] > 0 and 0 <= p2p["upper_half_accuracy"] <= 1  # the ceiling of pix2pix's class accuracy


def test_smoke_run_super_resolves_the_test_digits_in_order(smoke_run):
    results = json.loads((smoke_run / "results.json").read_text())
    test_x, test_y = load_dataset("mnist", "test", source="bundled").tensors
    for name in ("sr_mse", "srgan", "sr3"):
        r = results[name]
        assert r["status"] == "ok" and r["psnr_db"] > 0 and -1 <= r["ssim"] <= 1, name
        with np.load(smoke_run / f"{name}.npz") as npz:
            assert npz["images"].shape == (N_SCORED, 1, 28, 28) and npz["inputs"].shape == (N_SCORED, 1, 7, 7)
            assert np.array_equal(npz["targets"], test_x[:N_SCORED].numpy()), name  # the split's order
            assert np.array_equal(npz["labels"], test_y[:N_SCORED].numpy()), name
            assert np.allclose(npz["inputs"], downscale(test_x[:N_SCORED]).numpy()), name
    cascade = results["cascade"]
    assert cascade["status"] == "ok" and 0 <= cascade["class_accuracy"] <= 1 and cascade["base_train_seconds"] > 0
    with np.load(smoke_run / "cascade.npz") as npz:
        assert npz["images"].shape == (N_SCORED, 1, 28, 28) and "inputs" not in npz
        assert np.bincount(npz["labels"], minlength=10).tolist() == [N_SCORED // 10] * 10


def test_smoke_run_draws_colour_pictures_for_captions(smoke_run):
    """Lesson 10's entry: colour pictures with what each caption asked for, the held-out pairs marked, and prompt
    following scored apart on seen and held-out pairs."""
    t2i = json.loads((smoke_run / "results.json").read_text())["t2i"]
    assert t2i["status"] == "ok" and t2i["fd_real"] < t2i["fd"] and 0 <= t2i["class_accuracy"] <= 1
    assert all(0 <= t2i[f"{kind}_{key}"] <= 1 for kind in ("seen", "held_out") for key in ("digit", "ink", "all"))
    with np.load(smoke_run / "t2i.npz") as npz:
        images, labels, ink, prompts, held = (npz[k] for k in ("images", "labels", "ink", "prompts", "held_out"))
    assert images.shape == (N_SCORED, 3, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1 and ink.shape == (N_SCORED, 3)
    assert list(prompts[:2]) == ["a red zero", "an orange one"] and list(labels[:2]) == [0, 1]
    assert np.allclose(ink[0], colour_of("red").numpy()) and held.sum() > 0  # every pair comes back, held out too
    assert all(p.endswith("seven") and tuple(i) == tuple(colour_of("green").numpy()) for p, i in
               zip(prompts[held & (labels == 7)], ink[held & (labels == 7)]))


def test_smoke_run_writes_images_in_range(smoke_run):
    with np.load(smoke_run / "ae.npz") as npz:
        images = npz["images"]
        assert "labels" not in npz  # the autoencoder is not conditional
    assert images.shape == (N_SCORED, 1, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1


def test_a_finished_run_exits_0(tmp_path, monkeypatch):
    monkeypatch.setitem(benchmark.BUILT, "ae", lambda profile, device, n_scored=None: benchmark.Trained(
        lambda n, generator: (torch.rand(n, 1, 28, 28, generator=generator) ** 4, None), 1, 0.1))
    assert benchmark.main(["--profile", "smoke", "--out", str(tmp_path), "--only", "ae", "--n-scored", "20"]) == 0


def test_unknown_model_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(SystemExit, match="Valid names: ae, vae, dcgan, ddpm"):
        benchmark.main(["--profile", "smoke", "--out", str(tmp_path), "--only", "gpt"])


def test_results_table_has_one_row_per_model_and_replaces_the_readme_block(smoke_run, tmp_path):
    text = results_table.table(json.loads((smoke_run / "results.json").read_text()))
    lines = text.splitlines()
    assert lines[11].startswith("| stylegan | smoke |") and lines[12].startswith("| flow | smoke |")
    assert lines[13].startswith("| flow_fast | smoke |") and lines[14].startswith("| sr_mse | smoke |")
    assert lines[17].startswith("| cascade | smoke |") and lines[18].startswith("| t2i | smoke |")
    assert lines[19] == ""  # then the two FD curves, compared
    assert lines[-1].startswith("At equal training time (") and "dcgan" in lines[-1] and "stylegan" in lines[-1]
    assert lines[2].startswith("| ae | smoke | cpu |") and lines[3].startswith("| vae | smoke |")
    assert "second network's FD" in lines[0] and lines[0].count("|") == lines[2].count("|")
    assert lines[4].startswith("| dcgan | smoke |") and lines[5].startswith("| ddpm | smoke |")
    assert lines[6].startswith("| cgan | smoke |") and lines[9].startswith("| cfg | smoke |")
    assert lines[10].startswith("| ldm | smoke |")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results_table.START}\nold table\n{results_table.END}\nrest\n")
    results_table.replace_in(readme, text)
    content = readme.read_text()
    assert "old table" not in content and text in content and content.startswith("intro") and content.endswith("rest\n")


def test_equal_seconds_compares_the_curves_at_the_shorter_training_time():
    curves = {"dcgan": {"status": "ok", "fd_500_over_seconds": [[9.0, 300.0], [18.0, 200.0]]},
              "stylegan": {"status": "ok", "fd_500_over_seconds": [[10.0, 250.0], [17.5, 180.0], [40.0, 150.0]]},
              "ae": {"status": "ok"}}
    lines = results_table.equal_seconds(curves)
    assert "- stylegan: 250.0 at 10 s, 180.0 at 18 s, 150.0 at 40 s" in lines
    assert lines[-1] == "At equal training time (18 s, the last point of each curve within it): dcgan 200.0, stylegan 180.0."
    assert results_table.equal_seconds({"ae": {"status": "ok"}}) == []
