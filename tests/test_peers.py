import json
import sys
import time

import pytest
import torch

from course_lib import recipes
from course_lib.tools import peer_models, peers, results_table
from course_lib.data import check_images, load_dataset
from course_lib.training import fit


def test_peer_vae_has_the_examples_784_400_20_layers():
    vae = peer_models.PyTorchExamplesVAE()
    shapes = {name: tuple(p.shape) for name, p in vae.named_parameters()}
    assert shapes == {"fc1.weight": (400, 784), "fc1.bias": (400,), "fc21.weight": (20, 400), "fc21.bias": (20,),
                      "fc22.weight": (20, 400), "fc22.bias": (20,), "fc3.weight": (400, 20), "fc3.bias": (400,),
                      "fc4.weight": (784, 400), "fc4.bias": (784,)}
    assert vae.sample(5, torch.Generator().manual_seed(0)).shape == (5, 1, 28, 28)


def test_peer_vae_loss_is_summed_bce_plus_kld_as_computed_by_hand():
    torch.manual_seed(0)
    vae = peer_models.PyTorchExamplesVAE()
    x, eps = torch.rand(3, 1, 28, 28), torch.randn(3, 20)
    W = {name: p.detach() for name, p in vae.named_parameters()}
    flat = x.view(3, 784)
    h = torch.relu(flat @ W["fc1.weight"].T + W["fc1.bias"])
    mu, logvar = h @ W["fc21.weight"].T + W["fc21.bias"], h @ W["fc22.weight"].T + W["fc22.bias"]
    z = mu + torch.exp(logvar / 2) * eps
    p = torch.sigmoid(torch.relu(z @ W["fc3.weight"].T + W["fc3.bias"]) @ W["fc4.weight"].T + W["fc4.bias"])
    bce = -(flat * torch.log(p) + (1 - flat) * torch.log(1 - p)).sum()
    kld = -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum()
    loss = peer_models.pytorch_examples_vae_loss(vae, x, eps)
    assert loss.item() == pytest.approx((bce + kld).item(), rel=1e-5)
    assert loss.item() > 784 * 3 * 0.5  # summed over pixels and images, not averaged


def test_peer_vae_setup_lowers_its_loss_on_a_tiny_batch():
    torch.manual_seed(0)
    setup = peer_models.pytorch_examples_vae_setup(torch.device("cpu"))
    batch = [load_dataset("mnist", "train", n=64, source="bundled").tensors[0]]
    history = fit(setup.model, [batch] * 30, setup.step, setup.optimizer, epochs=1, progress=False)
    losses = history.steps["loss"]
    assert losses[-1] < 0.7 * losses[0]


def test_peer_dcgan_makes_64px_images_and_the_resize_gives_course_digits():
    gan = peer_models.PyTorchExamplesDCGAN()
    big = gan.generator(gan.noise(4, torch.Generator().manual_seed(0)))
    assert big.shape == (4, 1, 64, 64) and big.min() >= -1 and big.max() <= 1  # tanh
    small = peer_models.from_dcgan_size(big)
    check_images(small)
    assert small.shape == (4, 1, 28, 28) and small.min() >= 0 and small.max() <= 1
    assert gan.generator[0].weight.std().item() == pytest.approx(0.02, rel=0.05)  # N(0, 0.02) init
    assert sum(p.numel() for p in gan.generator.parameters()) == 3_574_656  # ngf = 64, nz = 100, nc = 1
    digits = load_dataset("mnist", "test", n=32, source="bundled").tensors[0]
    there = peer_models.to_dcgan_size(digits)
    assert there.shape == (32, 1, 64, 64) and there.min() >= -1 and there.max() <= 1
    assert (peer_models.from_dcgan_size(there) - digits).abs().mean() < 0.03  # 28 -> 64 -> 28 keeps the digit
    samples = gan.eval().sample(10, torch.Generator().manual_seed(1), batch_size=5)
    assert samples.shape == (10, 1, 28, 28) and not gan.training  # sampled in training mode, mode put back


def test_peer_dcgan_step_teaches_d_to_tell_real_from_fake():
    torch.manual_seed(0)
    gan = peer_models.PyTorchExamplesDCGAN()
    step = peer_models.PyTorchExamplesDCGANStep(gan, generator=torch.Generator().manual_seed(0))
    real = peer_models.to_dcgan_size(load_dataset("mnist", "train", n=8, source="bundled").tensors[0])
    logs = [step(gan, (real,)) for _ in range(4)]
    assert all(0 < log["d_real"] < 1 and 0 < log["d_fake"] < 1 for log in logs)  # D outputs probabilities
    assert logs[-1]["d_real"] > logs[0]["d_real"] and logs[-1]["d_real"] > logs[-1]["d_fake"]


def test_diffusers_peer_is_the_courses_unet_and_its_step_lowers_the_loss():
    pytest.importorskip("diffusers")
    torch.manual_seed(0)
    unet, scheduler = peer_models.diffusers_unet(), peer_models.diffusers_scheduler()
    assert sum(p.numel() for p in unet.parameters()) == 1_707_009  # the HF course's (32, 64, 64) U-Net, 1 channel
    assert scheduler.config.num_train_timesteps == 1000 and scheduler.config.beta_schedule == "squaredcos_cap_v2"
    optimizer = torch.optim.Adam(unet.parameters(), lr=peer_models.DIFFUSERS_LR)
    batch = [load_dataset("mnist", "train", n=4, source="bundled").tensors[0]]
    losses = []
    for _ in range(5):  # the same t and noise every time (same seed): the loss on them must fall
        loss = peer_models.diffusers_step(scheduler, torch.Generator().manual_seed(0))(unet, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert 0.2 < losses[0] < 5 and losses[-1] < losses[0]
    images = peer_models.diffusers_ddim_sample(unet, scheduler, n=2, steps=2,
                                               generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 1, 28, 28) and images.min() >= 0 and images.max() <= 1


def test_the_courses_side_of_each_pair_is_its_lessons_recipe():
    device, race = torch.device("cpu"), peers.SETTINGS["smoke"]
    course, peer = peers.vae_pair("smoke", device, race)
    vae = course.build()
    assert course.batch_size == recipes.lesson_settings("vae", "smoke").for_model("conv")[1]
    assert vae.optimizer.param_groups[0]["lr"] == recipes.VAE16.lr and vae.cosine_lr == recipes.VAE16.cosine_lr
    assert type(vae.model) is type(recipes.VAE16.build(None)) and peer.batch_size == peer_models.VAE_BATCH_SIZE
    course, peer = peers.gan_pair("smoke", device, race)
    assert course.batch_size == recipes.lesson_settings("gan", "smoke").batch_size
    assert course.build().step.opt_d.param_groups[0]["lr"] == recipes.DCGAN.lr
    assert peer.data.tensors[0].shape[-1] == peer_models.DCGAN_SIZE and peer.batch_size == peer_models.DCGAN_BATCH_SIZE
    # the plain-loss variant differs from lesson 4's recipe only where it says so
    plain, batch_size = peers.COURSE_DIFFUSION["plain"]
    assert plain.min_snr_gamma is None and plain.ema_decay == recipes.DDPM.ema_decay and batch_size == 64
    assert peers.COURSE_DIFFUSION["min_snr"] == (recipes.DDPM, None)
    pytest.importorskip("diffusers")
    course, _ = peers.diffusion_pair("smoke", device, race, course_diffusion="plain")
    ddpm = course.build()
    assert ddpm.model.channels == recipes.lesson_settings("diffusion", "smoke").channels
    assert ddpm.optimizer.param_groups[0]["lr"] == plain.lr and course.batch_size == 64
    course, _ = peers.diffusion_pair("smoke", device, race)
    assert course.batch_size == recipes.lesson_settings("diffusion", "smoke").batch_size


class _Sleepy(torch.nn.Module):
    """A 'model' whose training step takes 20 ms of wall clock and no CPU."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def step(self, model, batch):
        time.sleep(0.02)
        return (model.w * batch[0].mean()) ** 2


def test_race_stops_at_the_budget_and_does_not_count_scoring_time():
    model = _Sleepy()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scores = iter([3.0, 2.0])

    def slow_score():
        time.sleep(0.3)
        return next(scores)

    race = peers.Race(budget_s=0.2, checkpoints=(0.5, 1.0), score=slow_score)
    batches = [(torch.ones(4, 1),)] * 1000
    start = time.perf_counter()
    history = fit(model, batches, race.counting(model.step), optimizer, epochs=10**9,
                  callbacks=[race.started(), peers.CosineOverBudget(optimizer, race)], progress=False)
    wall = time.perf_counter() - start
    assert history.stopped == "budget"
    assert 0.2 <= race.seconds < 0.28 and wall >= 0.2 + 2 * 0.3  # two scorings, off the clock
    assert [fd for _, fd in race.curve] == [3.0, 2.0]
    assert 0.1 <= race.curve[0][0] < 0.15 and race.curve[1][0] == race.seconds
    assert race.images == 4 * len(history.steps["loss"])
    assert optimizer.param_groups[0]["lr"] < 0.1  # the cosine ran along: near 0 by the end


def test_cosine_over_budget_follows_the_race_clock():
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=2.0)
    race = peers.Race(budget_s=10, checkpoints=(1.0,), score=lambda: 0.0)
    cosine = peers.CosineOverBudget(optimizer, race)
    lrs = []
    for seconds in (0, 5, 10, 12):
        race.seconds = seconds
        cosine.on_step_end(None)
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx([2.0, 1.0, 0.0, 0.0], abs=1e-12)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("peers")
    report = peers.run("smoke", out)  # the command line: peers.main([...]), which returns the exit code
    return out, report


def test_smoke_run_writes_every_field_for_every_pair(smoke_run):
    out, report = smoke_run
    saved = json.loads((out / "peers.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["profile"] == "smoke" and saved["n_scored"] == peers.SETTINGS["smoke"].n_scored
    assert saved["machine"]["torch"] == torch.__version__ and saved["machine"]["threads"] >= 1
    assert saved["machine"]["device"] == "cpu" and 0 < saved["fd_real"] < saved["fd_noise"]
    assert list(saved["pairs"]) == list(peers.PAIRS)
    for name, pair in saved["pairs"].items():
        if name == "diffusion" and saved["machine"]["diffusers"] is None:
            assert pair["status"] == "skipped" and peers.INSTALL_DIFFUSERS in pair["reason"]
            continue
        assert pair["status"] == "ok" and pair["budget_s"] == peers.SETTINGS["smoke"].budgets[name]
        for side in ("course", "peer"):
            row = pair[side]
            assert row["name"] and len(row["settings"]) > 20 and row["n_params"] > 10_000, (name, side)
            assert row["train_seconds"] >= pair["budget_s"] and row["stopped"] == "budget", (name, side)
            assert row["images_seen"] > 0
            assert row["images_per_s"] == pytest.approx(row["images_seen"] / row["train_seconds"], rel=0.02)
            seconds = [s for s, _ in row["curve"]]
            assert seconds == sorted(seconds) and seconds[-1] == row["train_seconds"]
            assert row["fd"] == row["curve"][-1][1] and saved["fd_real"] < row["fd"]
        assert pair["ratio"] == pytest.approx(pair["course"]["fd"] / pair["peer"]["fd"], rel=1e-3)
        assert pair["meets_target"] == (pair["ratio"] <= peers.TARGETS[name] if name == "diffusion"
                                        else pair["ratio"] < 1)
    vae = saved["pairs"]["vae"]
    assert vae["course"]["nelbo_test"] > 0 and vae["peer"]["nelbo_test"] > 0
    assert vae["peer"]["n_params"] == 652_824 and saved["pairs"]["gan"]["peer"]["d_params"] > 0


def test_smoke_run_draws_a_png_and_the_readme_table(smoke_run, tmp_path):
    out, report = smoke_run
    png = (out / "peers.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    lines = peers.table(report).splitlines()
    assert len(lines) == 2 + len(peers.PAIRS) and lines[2].startswith("| diffusion |")
    assert lines[3].startswith("| vae | 1 | course ConvVAE (206,081) |") and " / " in lines[3].split("|")[-2]
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{peers.START}\nold\n{peers.END}\n{results_table.START}\nkeep\n{results_table.END}\n")
    results_table.main([str(out / "peers.json"), "--readme", str(readme)])
    content = readme.read_text()
    assert "old" not in content and "keep" in content and "| gan | 1 |" in content


def test_missing_diffusers_skips_the_diffusion_pair_and_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now fails as if it were not installed
    report = peers.run("smoke", tmp_path, only=["diffusion"])
    pair = report["pairs"]["diffusion"]
    assert pair["status"] == "skipped" and 'pip install -e ".[peers]"' in pair["reason"]
    assert report["machine"]["diffusers"] is None and (tmp_path / "peers.png").exists()
    assert 'pip install -e ".[peers]"' in capsys.readouterr().out


def test_unknown_pair_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(SystemExit, match="Valid names: diffusion, vae, gan"):
        peers.main(["--profile", "smoke", "--out", str(tmp_path), "--only", "flow"])
