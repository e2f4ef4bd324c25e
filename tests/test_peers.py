import json
import sys
import time

import pytest
import torch

from course_lib import recipes
from course_lib.config import PROFILES
from course_lib.diffusion import DiffusionSchedule
from course_lib.nets import n_params
from course_lib.tools import peer_models, peers, results_table
from course_lib.tools import race as race_clock
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
    assert vae.optimizer.param_groups[0]["lr"] == recipes.VAE8.lr and vae.cosine_lr == recipes.VAE8.cosine_lr
    assert type(vae.model) is type(recipes.VAE8.build(None)) and peer.batch_size == peer_models.VAE_BATCH_SIZE
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


# ---------------------------------------------------------------- the same-size peers


def test_same_size_dcgan_peer_is_the_examples_dcgan_at_28px_and_the_courses_size():
    course = recipes.DCGAN.build(recipes.DCGAN.settings("cpu"))
    width = peers.dcgan_width(course)
    gan = peer_models.PyTorchExamplesDCGAN28(ngf=width, ndf=width)
    assert width == 32 and gan.nz == course.z_dim == 100
    for part in ("generator", "discriminator"):  # G and D each within 10% of the course's
        ours, theirs = n_params(getattr(course, part)), n_params(getattr(gan, part))
        assert abs(theirs - ours) <= 0.1 * ours, (part, ours, theirs)
    assert (n_params(gan.generator), n_params(gan.discriminator)) == (347_072, 36_544)
    # the example's layers, cut to 7 -> 14 -> 28: ConvT 100 -> 64 (7 x 7 kernel), 64 -> 32, 32 -> 1, no biases
    convs = [m for m in gan.generator if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in convs] == [(100, 64, 7), (64, 32, 4), (32, 1, 4)]
    assert all(m.bias is None for m in gan.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    assert isinstance(gan.discriminator[-1], torch.nn.Sigmoid)  # BCE on probabilities, as the example
    assert gan.generator[0].weight.std().item() == pytest.approx(0.02, rel=0.05)  # N(0, 0.02) init
    sizes, h = [], gan.noise(2, torch.Generator().manual_seed(0))
    for layer in gan.generator:
        h = layer(h)
        sizes += [h.shape[-1]] if isinstance(layer, torch.nn.ConvTranspose2d) else []
    assert sizes == [7, 14, 28] and h.min() >= -1 and h.max() <= 1
    assert gan.discriminator(h).shape == (2, 1, 1, 1)
    samples = gan.sample(10, torch.Generator().manual_seed(1), batch_size=5)
    check_images(samples)
    assert samples.shape == (10, 1, 28, 28)


def test_gan_same_size_pair_trains_the_peer_with_the_examples_settings():
    course, peer = peers.gan_same_size_pair("smoke", torch.device("cpu"), peers.SETTINGS["smoke"])
    assert course.batch_size == recipes.lesson_settings("gan", "smoke").batch_size
    assert course.build().step.opt_d.param_groups[0]["lr"] == recipes.DCGAN.lr
    x = peer.data.tensors[0]
    assert x.shape[1:] == (1, 28, 28) and x.min() >= -1 and x.max() <= 1 and x.min() < -0.99  # [-1, 1], no resize
    assert torch.allclose((x + 1) / 2, course.data.tensors[0], atol=1e-6)
    assert peer.batch_size == peer_models.DCGAN_BATCH_SIZE == 64
    setup = peer.build()
    for optimizer in (setup.step.opt_d, setup.step.opt_g):
        assert optimizer.param_groups[0]["lr"] == 2e-4 and optimizer.param_groups[0]["betas"] == (0.5, 0.999)
    assert "ngf = ndf = 32" in peer.settings and "28 x 28" in peer.settings


def _same_size_diffusers():
    pytest.importorskip("diffusers")
    try:
        return peer_models.import_diffusers_without_middle_block()
    except ImportError as err:
        pytest.skip(str(err))


@pytest.mark.parametrize("profile", PROFILES)
def test_same_size_diffusers_unet_has_the_courses_widths_no_attention_and_its_parameter_count(profile):
    _same_size_diffusers()
    R, s = recipes.DDPM, recipes.DDPM.settings(profile)
    course = R.build(s)
    unet = peer_models.diffusers_same_size_unet(course.channels, course.time_dim)
    assert abs(n_params(unet) - n_params(course)) <= 0.1 * n_params(course), (n_params(course), n_params(unet))
    config = unet.config
    assert tuple(config.block_out_channels) == course.channels == s.channels and config.layers_per_block == 1
    assert set(config.down_block_types) == {"DownBlock2D"} and set(config.up_block_types) == {"UpBlock2D"}
    assert config.mid_block_type is None and config.time_embedding_dim == course.time_dim
    assert not any("Attn" in block or "Attention" in block for block in config.down_block_types + config.up_block_types)
    assert not any("Attention" in type(m).__name__ for m in unet.modules())


def test_same_size_diffusers_setup_trains_on_the_courses_schedule_and_samples_with_its_ddim():
    _same_size_diffusers()
    torch.manual_seed(0)
    R = recipes.DDPM
    scheduler = peer_models.diffusers_ddpm_scheduler(R.T, R.schedule)
    assert scheduler.config.num_train_timesteps == R.T and scheduler.config.beta_schedule == "linear"
    schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
    assert torch.allclose(scheduler.alphas_cumprod, schedule.alpha_bars, rtol=1e-4, atol=1e-6)  # the same abar_t
    cosine = peer_models.diffusers_ddpm_scheduler(1000, "cosine")
    assert torch.allclose(cosine.alphas_cumprod, DiffusionSchedule(1000, "cosine").alpha_bars, atol=1e-3)
    setup = peer_models.diffusers_same_size_setup(torch.device("cpu"), (8, 16, 16), time_dim=32, lr=1e-3,
                                                  ddim_steps=2)
    assert setup.callbacks == [] and setup.optimizer.param_groups[0]["lr"] == 1e-3  # no EMA
    batch = [load_dataset("mnist", "train", n=4, source="bundled").tensors[0]]
    losses = []
    for _ in range(5):  # the same t and noise every time: the plain MSE on the noise must fall
        loss = peer_models.diffusers_step(scheduler, torch.Generator().manual_seed(0), t_high=R.T)(setup.model, batch)
        setup.optimizer.zero_grad()
        loss.backward()
        setup.optimizer.step()
        losses.append(loss.item())
    assert 0.2 < losses[0] < 5 and losses[-1] < losses[0]
    images = setup.sample(3, torch.Generator().manual_seed(0))
    check_images(images)
    assert images.shape == (3, 1, 28, 28) and setup.model.training  # sampling put the mode back


def test_diffusion_same_size_pair_differs_from_the_course_only_in_how_it_trains():
    _same_size_diffusers()
    settings = peers.SETTINGS["smoke"]
    course, peer = peers.diffusion_same_size_pair("smoke", torch.device("cpu"), settings)
    assert peer.batch_size == course.batch_size == recipes.lesson_settings("diffusion", "smoke").batch_size
    assert peer.data is course.data
    ddpm, theirs = course.build(), peer.build()
    assert theirs.optimizer.param_groups[0]["lr"] == ddpm.optimizer.param_groups[0]["lr"] == recipes.DDPM.lr
    assert ddpm.callbacks and not theirs.callbacks  # the course's EMA; none for the peer
    assert abs(n_params(theirs.model) - n_params(ddpm.model)) <= 0.1 * n_params(ddpm.model)
    for words in ("no attention", "float32", "no EMA", f"DDIM {settings.ddim_steps} steps"):
        assert words in peer.settings, words


# ---------------------------------------------------------------- time to a fixed Frechet distance


def test_seconds_to_reach_interpolates_between_the_checkpoints_around_the_first_crossing():
    curve = [(10.0, 900.0), (20.0, 700.0), (30.0, 400.0), (40.0, 800.0), (50.0, 300.0)]
    assert race_clock.seconds_to_reach(curve, 500) == pytest.approx(20 + 200 / 300 * 10, abs=0.01)  # between 20 and 30
    assert race_clock.seconds_to_reach(curve, 700) == 20.0  # exactly at a checkpoint
    assert race_clock.seconds_to_reach(curve, 950) == 10.0  # already there at the first point
    assert race_clock.seconds_to_reach(curve, 250) is None  # never reached within the budget
    assert race_clock.seconds_to_reach([], 500) is None
    assert race_clock.seconds_to_reach([[1.5, 80.0]], 500) == 1.5  # peers.json stores the points as lists


def test_time_ratio_and_the_tables_words_for_reached_and_not_reached():
    def pair(course_s, peer_s):
        return {"budget_s": 150.0, "course": {"seconds_to_threshold": course_s},
                "peer": {"seconds_to_threshold": peer_s}}

    assert race_clock.time_ratio(30.0, 120.0) == 0.25 and race_clock.time_ratio(None, 120.0) is None
    assert peers.threshold_text(pair(30.0, 120.0)) == "30 s / 120 s (0.25)"
    assert peers.threshold_text(pair(50.0, None)) == "50 s / > 150 s (< 0.33)"  # the course at least 3 times sooner
    assert peers.threshold_text(pair(None, 75.0)) == "> 150 s / 75 s (> 2.00)"
    assert peers.threshold_text(pair(None, None)) == "> 150 s / > 150 s (neither)"


def test_table_shows_the_threshold_and_the_times_from_a_handmade_report():
    side = {"name": "x", "n_params": 1000, "fd": 400.0, "images_per_s": 10.0}
    report = {"pairs": {"gan_same_size": {
        "status": "ok", "budget_s": 150.0, "fd_threshold": 500.0, "ratio": 0.1, "target_ratio": 1.0,
        "meets_target": True, "time_ratio": None, "course": side | {"seconds_to_threshold": 48.5},
        "peer": side | {"fd": 4000.0, "seconds_to_threshold": None}}}}
    header, _, row = peers.table(report).splitlines()
    assert "time to FD <= threshold: course / peer (ratio)" in header
    assert header.count("|") == row.count("|")
    assert "| 500: 48 s / > 150 s (< 0.32) |" in row


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

    race = race_clock.Race(budget_s=0.2, checkpoints=(0.5, 1.0), score=slow_score)
    batches = [(torch.ones(4, 1),)] * 1000
    start = time.perf_counter()
    history = fit(model, batches, race.counting(model.step), optimizer, epochs=10**9,
                  callbacks=[race.started(), race_clock.CosineOverBudget(optimizer, race)], progress=False)
    wall = time.perf_counter() - start
    assert history.stopped == "budget"
    assert 0.2 <= race.seconds < 0.28 and wall >= 0.2 + 2 * 0.3  # two scorings, off the clock
    assert [fd for _, fd in race.curve] == [3.0, 2.0]
    assert 0.1 <= race.curve[0][0] < 0.15 and race.curve[1][0] == race.seconds
    assert race.images == 4 * len(history.steps["loss"])
    assert optimizer.param_groups[0]["lr"] < 0.1  # the cosine ran along: near 0 by the end


def test_cosine_over_budget_follows_the_race_clock():
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=2.0)
    race = race_clock.Race(budget_s=10, checkpoints=(1.0,), score=lambda: 0.0)
    cosine = race_clock.CosineOverBudget(optimizer, race)
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
        if name in ("diffusion", "diffusion_same_size") and pair["status"] == "skipped":
            # without diffusers (or, for the same-size pair, with one too old to leave out the middle block)
            missing = saved["machine"]["diffusers"] is None and peers.INSTALL_DIFFUSERS in pair["reason"]
            assert missing or (name == "diffusion_same_size" and "diffusers 0.33" in pair["reason"])
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
            assert row["fd2"] > 0  # the same final samples on the second feature network
        assert pair["ratio"] == pytest.approx(pair["course"]["fd"] / pair["peer"]["fd"], rel=1e-3)
        assert pair["meets_target"] == (pair["ratio"] <= peers.TARGETS[name] if name == "diffusion"
                                        else pair["ratio"] < 1)
        # time to a fixed Frechet distance, per side, and their ratio where both got there
        assert pair["fd_threshold"] == peers.SETTINGS["smoke"].thresholds[name]
        for side in ("course", "peer"):
            assert pair[side]["seconds_to_threshold"] == race_clock.seconds_to_reach(pair[side]["curve"],
                                                                                pair["fd_threshold"])
        assert pair["time_ratio"] == race_clock.time_ratio(pair["course"]["seconds_to_threshold"],
                                                      pair["peer"]["seconds_to_threshold"])
    vae = saved["pairs"]["vae"]
    assert vae["course"]["nelbo_test"] > 0 and vae["peer"]["nelbo_test"] > 0
    assert vae["peer"]["n_params"] == 652_824 and saved["pairs"]["gan"]["peer"]["d_params"] > 0
    same = saved["pairs"]["gan_same_size"]  # the same size: G and D within 10%
    assert abs(same["peer"]["n_params"] / same["course"]["n_params"] - 1) < 0.1
    assert abs(same["peer"]["d_params"] / same["course"]["d_params"] - 1) < 0.1
    if saved["pairs"]["diffusion_same_size"]["status"] == "ok":
        same = saved["pairs"]["diffusion_same_size"]
        assert abs(same["peer"]["n_params"] / same["course"]["n_params"] - 1) < 0.1


def test_smoke_run_draws_a_png_and_the_readme_table(smoke_run, tmp_path):
    out, report = smoke_run
    png = (out / "peers.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    lines = peers.table(report).splitlines()
    assert len(lines) == 2 + len(peers.PAIRS) and lines[2].startswith("| diffusion |")
    vae_params = n_params(recipes.VAE8.build(recipes.VAE8.settings("smoke")))
    assert lines[3].startswith(f"| vae | 1 | course ConvVAE ({vae_params:,}) |") and " / " in lines[3].split("|")[-2]
    assert "time to FD <= threshold" in lines[0]
    for line, (name, pair) in zip(lines[2:], report["pairs"].items()):
        assert line.startswith(f"| {name} |") and line.count("|") == lines[0].count("|")
        if pair["status"] == "ok":
            assert f"| {pair['fd_threshold']:,g}: {peers.threshold_text(pair)} |" in line
            assert f"(second network: {pair['peer']['fd2']:,.2f})" in line
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{peers.START}\nstale rows\n{peers.END}\n{results_table.START}\nkeep\n"
                      f"{results_table.END}\n")
    results_table.main([str(out / "peers.json"), "--readme", str(readme)])
    content = readme.read_text()
    assert "stale rows" not in content and "keep" in content and "| gan | 1 |" in content
    assert "| gan_same_size | 1 |" in content and "time to FD <= threshold" in content


def test_missing_diffusers_skips_the_diffusion_pair_and_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now fails as if it were not installed
    report = peers.run("smoke", tmp_path, only=["diffusion", "diffusion_same_size"])
    for name in ("diffusion", "diffusion_same_size"):
        pair = report["pairs"][name]
        assert pair["status"] == "skipped" and 'pip install -e ".[peers]"' in pair["reason"]
        assert peers.not_raced_because(pair) == peers.INSTALL_DIFFUSERS
    assert report["machine"]["diffusers"] is None and (tmp_path / "peers.png").exists()
    assert 'pip install -e ".[peers]"' in capsys.readouterr().out


def test_unknown_pair_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(SystemExit, match="Valid names: diffusion, vae, gan"):
        peers.main(["--profile", "smoke", "--out", str(tmp_path), "--only", "flow"])
