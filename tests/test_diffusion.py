"""Lesson 4: the noise schedules, the forward process (closed form against iterated steps), the simple loss, and the
DDPM / DDIM samplers driven by exact noise oracles (whose right answer is known), with their trajectories."""

import pytest
import torch
from torch import nn

from course_lib.diffusion import (
    DiffusionSchedule,
    ddim_sample,
    ddim_timesteps,
    ddim_update,
    ddpm_sample,
    ddpm_step,
    ddpm_update,
    diffusion_loss,
    forward_trajectory,
    predict_x0,
    q_sample,
    q_step,
    to_image_range,
    to_model_range,
)
from course_lib.training import fit


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: one thread is faster, and much faster when other work shares the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def oracle(schedule: DiffusionSchedule, x0: torch.Tensor):
    """The perfect noise predictor for a data set that is the single image x0 (in [-1, 1]):
    eps*(x_t, t) = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""

    def eps_model(x, t):
        abar = schedule.alpha_bars[t].view(-1, 1, 1, 1)
        return (x - abar.sqrt() * x0) / (1 - abar).sqrt()

    return eps_model


def mixture_oracle(schedule: DiffusionSchedule, centers: torch.Tensor, weights: torch.Tensor):
    """The perfect noise predictor for data that is `centers[k]` with probability `weights[k]`:
    eps* = (x_t - sqrt(abar_t) E[x0 | x_t]) / sqrt(1 - abar_t), E[x0 | x_t] = sum_k w_k(x_t) centers[k] with
    w_k proportional to weights[k] * N(x_t; sqrt(abar_t) centers[k], (1 - abar_t) I)."""
    flat = centers.flatten(1)  # (K, D)

    def eps_model(x, t):
        abar = schedule.alpha_bars[t].view(-1, 1)
        d2 = (x.flatten(1)[:, None] - abar.sqrt()[:, None] * flat[None]).pow(2).sum(-1)  # (B, K)
        x0 = torch.softmax(weights.log() - d2 / (2 * (1 - abar)), dim=1) @ flat
        return ((x.flatten(1) - abar.sqrt() * x0) / (1 - abar).sqrt()).view_as(x)

    return eps_model


def digit_like(seed: int = 0, n: int = 1) -> torch.Tensor:
    """n smooth blob images in [0, 1], shaped (n, 1, 28, 28)."""
    coarse = torch.rand(n, 1, 7, 7, generator=seeded(seed))
    return nn.functional.interpolate(coarse, size=28, mode="bilinear", align_corners=False)


# --- the schedules ---


def test_linear_schedule_matches_ho_et_al():
    s = DiffusionSchedule(T=1000, kind="linear")
    assert s.betas[0].item() == pytest.approx(1e-4, rel=1e-5)
    assert s.betas[-1].item() == pytest.approx(0.02, rel=1e-5)
    assert s.alpha_bars[-1].item() == pytest.approx(4.0e-5, rel=0.05)
    assert (s.alpha_bars[1:] < s.alpha_bars[:-1]).all()
    assert torch.allclose(s.alphas, 1 - s.betas)
    assert torch.allclose(s.sqrt_alpha_bars**2 + s.sqrt_one_minus_alpha_bars**2, torch.ones(1000))


def test_linear_schedule_for_fewer_steps_still_ends_in_noise():
    assert DiffusionSchedule(T=100).alpha_bars[-1] < 1e-3


def test_cosine_schedule_goes_from_data_to_noise_with_clipped_betas():
    s = DiffusionSchedule(T=1000, kind="cosine")
    assert s.alpha_bars[0] > 0.999 and s.alpha_bars[-1] < 1e-6
    assert (s.betas <= 0.999 + 1e-6).all() and (s.betas > 0).all()
    assert (s.alpha_bars[1:] < s.alpha_bars[:-1]).all()
    # information is destroyed more evenly than with the linear schedule: at mid-way more of x0 remains
    assert s.alpha_bars[500] > 3 * DiffusionSchedule(T=1000).alpha_bars[500]


def test_posterior_variance_formula():
    s = DiffusionSchedule(T=1000)
    assert s.posterior_variance[0] == 0  # abar_{-1} = 1: x_0 given x_1 and x_0 is certain
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    for t in (1, 500, 999):
        expected = (1 - abar[t - 1]) / (1 - abar[t]) * betas[t]
        assert s.posterior_variance[t].item() == pytest.approx(expected.item(), rel=1e-4)
        assert s.posterior_variance[t] <= s.betas[t]


def test_snr_is_abar_over_one_minus_abar():
    s = DiffusionSchedule(T=1000)
    t = torch.tensor([10, 999])
    assert torch.allclose(s.snr(t), s.alpha_bars[t] / (1 - s.alpha_bars[t]), rtol=1e-3)
    assert s.snr(999) < 1e-4 < 1e3 < s.snr(0)


def test_schedule_errors_tell_what_to_type():
    with pytest.raises(ValueError, match='kind="linear" or kind="cosine"'):
        DiffusionSchedule(kind="sigmoid")
    with pytest.raises(ValueError, match="T=1000"):
        DiffusionSchedule(T=0)


def test_schedule_to_device_keeps_values_and_leaves_the_original():
    s = DiffusionSchedule(T=10)
    moved = s.to("cpu")
    assert moved is not s and moved.T == 10 and torch.equal(moved.alpha_bars, s.alpha_bars)


def test_ranges_round_trip():
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(to_image_range(to_model_range(x)), x)
    assert to_model_range(x).min() >= -1 and to_image_range(torch.randn(100) * 5).max() <= 1


# --- the forward process ---


def test_iterated_steps_match_the_closed_form_in_mean_and_variance():
    s, t, n = DiffusionSchedule(T=1000), 200, 20_000
    g = seeded(0)
    x0 = torch.linspace(-1, 1, 8)  # 8 "pixels"
    x = x0.expand(n, 8).clone()
    for step in range(t + 1):
        x = q_step(s, x, step, torch.randn(n, 8, generator=g))
    abar = s.alpha_bars[t]
    assert torch.allclose(x.mean(0), abar.sqrt() * x0, atol=0.03)
    assert torch.allclose(x.var(0), (1 - abar).expand(8), atol=0.03)
    closed = q_sample(s, x0.expand(n, 8), t, torch.randn(n, 8, generator=g))
    assert torch.allclose(closed.mean(0), x.mean(0), atol=0.04)


def test_q_sample_broadcasts_one_t_per_image():
    s = DiffusionSchedule(T=1000)
    x0, eps = torch.rand(3, 1, 28, 28) * 2 - 1, torch.randn(3, 1, 28, 28)
    t = torch.tensor([0, 400, 999])
    together = q_sample(s, x0, t, eps)
    for i in range(3):
        assert torch.allclose(together[i], q_sample(s, x0[i : i + 1], int(t[i]), eps[i : i + 1])[0])
    assert torch.allclose(predict_x0(s, together, t, eps), x0, atol=1e-3)


def test_q_sample_at_the_last_step_is_standard_normal_from_any_image():
    s = DiffusionSchedule(T=1000)
    for x0 in (torch.ones(64, 1, 28, 28), -torch.ones(64, 1, 28, 28), to_model_range(digit_like(n=64))):
        x = q_sample(s, x0, torch.full((64,), 999), torch.randn(x0.shape, generator=seeded(1)))
        assert abs(x.mean().item()) < 0.02 and x.std().item() == pytest.approx(1.0, abs=0.02)


def test_forward_trajectory_uses_one_noise_per_image_across_t():
    s, x0 = DiffusionSchedule(T=1000), digit_like(n=2)
    ts = [0, 50, 300, 999]
    frames = forward_trajectory(s, x0, ts, seeded(0), image_range=False)
    assert frames.shape == (4, 2, 1, 28, 28)
    eps = [(frames[i] - s.sqrt_alpha_bars[t] * to_model_range(x0)) / s.sqrt_one_minus_alpha_bars[t] for i, t in enumerate(ts)]
    assert all(torch.allclose(e, eps[-1], atol=2e-3) for e in eps)
    shown = forward_trajectory(s, x0, ts, seeded(0))
    assert shown.min() >= 0 and shown.max() <= 1
    assert (shown[0] - x0).abs().max() < 0.05  # t = 0 is nearly the clean image
    assert torch.equal(shown, forward_trajectory(s, x0, ts, seeded(0)))


# --- the simple loss ---


def test_loss_of_a_perfect_oracle_is_zero_and_of_a_zero_model_is_one():
    s, x0 = DiffusionSchedule(T=1000), digit_like(n=64)
    perfect = oracle(s, to_model_range(x0))
    assert diffusion_loss(perfect, s, x0, seeded(0)).item() < 1e-6
    zero = diffusion_loss(lambda x, t: torch.zeros_like(x), s, x0, seeded(0)).item()
    assert zero == pytest.approx(1.0, abs=0.02)


def test_loss_is_reproducible_with_a_generator_and_rejects_images_outside_0_1():
    s, x0 = DiffusionSchedule(T=1000), digit_like(n=4)
    model = lambda x, t: 0.5 * x
    assert diffusion_loss(model, s, x0, seeded(3)) == diffusion_loss(model, s, x0, seeded(3))
    with pytest.raises(ValueError, match=r"to_image_range\(x0\)"):
        diffusion_loss(model, s, to_model_range(x0), seeded(3))


class TinyEps(nn.Module):
    """A stand-in for the U-Net: a small conv net that ignores t."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))

    def forward(self, x, t):
        assert t.dtype == torch.long and t.shape == x.shape[:1]
        return self.net(x)


def test_ddpm_step_trains_a_tiny_model_with_fit():
    torch.manual_seed(0)
    s, x0 = DiffusionSchedule(T=1000), digit_like(n=16)
    model = TinyEps()
    before = diffusion_loss(model, s, x0, seeded(123)).item()
    batches = [(x0, torch.zeros(16, dtype=torch.long))] * 60
    history = fit(model, batches, ddpm_step(s, seeded(0)), torch.optim.Adam(model.parameters(), 1e-2), epochs=1,
                  progress=False)
    losses = history.steps["loss"]
    assert len(losses) == 60 and all(torch.isfinite(torch.tensor(losses)))
    with torch.no_grad():
        after = diffusion_loss(model, s, x0, seeded(123)).item()
    assert after < 0.6 * before
    assert sum(losses[-10:]) < sum(losses[:10])


# --- the samplers ---


@pytest.mark.parametrize("T", [50, 1000])
@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_ddpm_with_a_perfect_oracle_recovers_the_one_training_image(T, variance):
    s, image = DiffusionSchedule(T=T), digit_like(seed=5)
    images, _ = ddpm_sample(oracle(s, to_model_range(image)), s, 3, generator=seeded(0), variance=variance)
    assert images.shape == (3, 1, 28, 28)
    assert (images - image).abs().max() < 1e-3


@pytest.mark.parametrize("steps", [10, 50])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_a_perfect_oracle_recovers_the_one_training_image(steps, eta):
    s, image = DiffusionSchedule(T=1000), digit_like(seed=5)
    images, _ = ddim_sample(oracle(s, to_model_range(image)), s, 3, steps=steps, eta=eta, generator=seeded(0))
    assert (images - image).abs().max() < 1e-3


def test_ddim_with_eta1_over_consecutive_steps_is_the_ddpm_posterior_step():
    s = DiffusionSchedule(T=1000)
    x0 = to_model_range(digit_like(n=2))
    eps, z = torch.randn(2, 1, 28, 28, generator=seeded(0)), torch.randn(2, 1, 28, 28, generator=seeded(1))
    for t in (1, 300, 999):
        x_t = q_sample(s, x0, t, eps)
        ddim, x0_hat = ddim_update(s, x_t, t, t - 1, eps, eta=1.0, z=z)
        assert torch.allclose(x0_hat, x0, atol=1e-3)
        assert torch.allclose(ddim, ddpm_update(s, x_t, t, eps, z, variance="posterior"), atol=1e-4)
        deterministic, _ = ddim_update(s, x_t, t, t - 1, eps, eta=0.0, z=z)
        assert torch.allclose(deterministic, q_sample(s, x0, t - 1, eps), atol=1e-4)  # eta = 0 keeps eps fixed


@pytest.mark.parametrize(
    "sample",
    [
        lambda m, s, g: ddpm_sample(m, s, 400, generator=g, shape=(1, 4, 4), image_range=False),
        lambda m, s, g: ddpm_sample(m, s, 400, generator=g, shape=(1, 4, 4), image_range=False, variance="posterior"),
        lambda m, s, g: ddim_sample(m, s, 400, steps=20, generator=g, shape=(1, 4, 4), image_range=False),
        lambda m, s, g: ddim_sample(m, s, 400, steps=50, eta=1.0, generator=g, shape=(1, 4, 4), image_range=False),
    ],
    ids=["ddpm", "ddpm-posterior", "ddim", "ddim-eta1"],
)
def test_samplers_with_the_exact_oracle_of_two_images_draw_them_in_the_right_proportions(sample):
    s = DiffusionSchedule(T=100)
    centers = torch.rand(2, 1, 4, 4, generator=seeded(0)) * 2 - 1
    x, _ = sample(mixture_oracle(s, centers, torch.tensor([0.25, 0.75])), s, seeded(1))
    distances = (x.flatten(1)[:, None] - centers.flatten(1)[None]).pow(2).sum(-1)
    assert distances.min(1).values.max() < 1e-4  # every sample is one of the two images, not a blend
    assert (distances.argmin(1) == 0).float().mean().item() == pytest.approx(0.25, abs=0.07)


def test_ddim_eta0_is_deterministic_for_a_fixed_noise():
    s = DiffusionSchedule(T=1000)
    model = mixture_oracle(s, torch.rand(3, 1, 28, 28, generator=seeded(0)) * 2 - 1, torch.ones(3) / 3)
    noise = torch.randn(4, 1, 28, 28, generator=seeded(9))
    a, _ = ddim_sample(model, s, 4, steps=10, generator=seeded(1), noise=noise)
    b, _ = ddim_sample(model, s, None, steps=10, generator=seeded(2), noise=noise.clone())
    assert torch.equal(a, b)
    c, _ = ddim_sample(model, s, 4, steps=10, eta=1.0, generator=seeded(1), noise=noise)
    d, _ = ddim_sample(model, s, 4, steps=10, eta=1.0, generator=seeded(2), noise=noise)
    assert not torch.equal(c, d)  # eta > 0 draws fresh noise from the generator


def test_ddpm_is_reproducible_from_a_seed():
    s = DiffusionSchedule(T=50)
    model = mixture_oracle(s, torch.rand(3, 1, 28, 28, generator=seeded(0)) * 2 - 1, torch.ones(3) / 3)
    a, _ = ddpm_sample(model, s, 4, generator=seeded(1))
    b, _ = ddpm_sample(model, s, 4, generator=seeded(1))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


def test_samplers_run_the_model_in_eval_mode_without_grad_and_restore_it():
    seen = []

    class Spy(TinyEps):
        def forward(self, x, t):
            seen.append((self.training, torch.is_grad_enabled()))
            return super().forward(x, t)

    model = Spy().train()
    s = DiffusionSchedule(T=20)
    ddpm_sample(model, s, 2)
    ddim_sample(model, s, 2, steps=5)
    assert len(seen) == 25 and all(mode == (False, False) for mode in seen)
    assert model.training


def test_trajectories_keep_every_kth_step_and_the_last():
    s, image = DiffusionSchedule(T=50), digit_like(seed=5)
    model = oracle(s, to_model_range(image))
    images, traj = ddpm_sample(model, s, 2, generator=seeded(0), record_every=10)
    assert traj.t == [49, 39, 29, 19, 9, 0] and len(traj) == 6
    for frames in (traj.x_t, traj.x0_pred, traj.eps_pred):
        assert len(frames) == 6 and all(f.shape == (2, 1, 28, 28) and f.device.type == "cpu" for f in frames)
    assert all(f.min() >= 0 and f.max() <= 1 for f in traj.x_t + traj.x0_pred)
    assert traj.eps_pred[0].std() > 0.5  # the noise as predicted, not squeezed into [0, 1]
    assert torch.equal(traj.x_t[-1], images)
    assert (traj.x0_pred[0] - image).abs().max() < 1e-3  # the oracle knows x0 from the first step

    images, traj = ddim_sample(model, s, 2, steps=10, record_every=3)
    assert traj.t == [ddim_timesteps(50, 10)[i] for i in (0, 3, 6, 9)] and traj.t[0] == 49 and traj.t[-1] == 0
    assert torch.equal(traj.x_t[-1], images)
    assert ddpm_sample(model, s, 2)[1] is None


def test_sampler_errors_tell_what_to_type():
    s = DiffusionSchedule(T=20)
    with pytest.raises(ValueError, match="steps=20"):
        ddim_sample(lambda x, t: x, s, 2, steps=50)
    with pytest.raises(ValueError, match="shaped like x"):
        ddim_sample(lambda x, t: x.flatten(1), s, 2, steps=5)
    with pytest.raises(ValueError, match="n=None or n=3"):
        ddpm_sample(lambda x, t: x, s, 2, noise=torch.randn(3, 1, 28, 28))
    with pytest.raises(ValueError, match='variance="posterior"'):
        ddpm_sample(lambda x, t: x, s, 2, variance="learned")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_samplers_and_loss_follow_the_models_device():
    model = TinyEps().cuda()
    for schedule in (DiffusionSchedule(T=20), DiffusionSchedule(T=20).to("cuda")):
        assert torch.isfinite(diffusion_loss(model, schedule, digit_like(n=4).cuda(), seeded(0)))
        images, traj = ddpm_sample(model, schedule, 2, generator=seeded(0), record_every=5)
        assert images.device.type == "cuda" and traj.x_t[-1].device.type == "cpu"
        images, _ = ddim_sample(model, schedule, 2, steps=5, eta=1.0, generator=seeded(0))
        assert images.device.type == "cuda"


def test_ddim_step_rederives_the_noise_after_clipping_x0():
    # A prediction far out of range (as early in sampling) is clipped; the step must then use the noise that fits
    # the clipped x0, or the errors pile up over many steps (DDIM-1000 once scored 3.5x worse than DDIM-50).
    schedule = DiffusionSchedule(T=1000)
    x_t, eps, t, t_prev = torch.full((1, 1, 28, 28), 3.0), torch.zeros(1, 1, 28, 28), 500, 400
    x_prev, x0_hat = ddim_update(schedule, x_t, t, t_prev, eps)
    assert torch.equal(x0_hat, torch.ones_like(x0_hat))  # 3 / sqrt(abar_500) is far above 1: clipped
    abar, abar_prev = schedule.alpha_bars[t], schedule.alpha_bars[t_prev]
    eps_fit = (x_t - abar.sqrt() * x0_hat) / (1 - abar).sqrt()
    assert torch.allclose(x_prev, abar_prev.sqrt() * x0_hat + (1 - abar_prev).sqrt() * eps_fit, atol=1e-5)


def test_min_snr_weighting_only_lowers_the_weight_of_nearly_clean_images():
    schedule = DiffusionSchedule(T=1000)
    x0 = torch.rand(64, 1, 28, 28)
    model = lambda x, t: torch.zeros_like(x)  # noqa: E731  (predicts no noise: error = eps^2 at every t)
    plain = diffusion_loss(model, schedule, x0, torch.Generator().manual_seed(0))
    huge_gamma = diffusion_loss(model, schedule, x0, torch.Generator().manual_seed(0), min_snr_gamma=1e9)
    assert torch.allclose(plain, huge_gamma)  # gamma above every SNR: every weight is 1
    weighted = diffusion_loss(model, schedule, x0, torch.Generator().manual_seed(0), min_snr_gamma=5.0)
    gen = torch.Generator().manual_seed(0)  # redo the draws by hand
    t = torch.randint(0, 1000, (64,), generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    snr = schedule.snr(t)
    expected = (eps.pow(2).flatten(1).mean(1) * snr.clamp(max=5.0) / snr).mean()
    assert torch.allclose(weighted, expected, atol=1e-6)
    assert weighted < plain  # weights are at most 1, and below 1 wherever SNR(t) > 5
