"""Lesson 9, scores: the blurred mixture's exact score (against autograd), denoising score matching (against a hand
computation on a fixed seed), Langevin dynamics on a Gaussian (its mean and variance), annealed against plain
Langevin on a lopsided two-mode mixture (only annealing finds the weights), the reverse SDE and probability-flow ODE
on a Gaussian, and DDIM as Euler's method on that ODE."""

import math

import pytest
import torch

from course_lib.config import one_thread
from course_lib.diffusion import DiffusionSchedule, ddim_sample
from course_lib.diffusion_theory import GaussianMixture2D
from course_lib.scores import (
    LevelMLP,
    annealed_langevin,
    ddim_as_euler,
    dsm_loss,
    langevin,
    learned_score,
    mode_shares,
    noise_levels,
    score_from_eps,
    ve_score,
    vp_sample,
)
from course_lib.unet import UNet


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """These tensors are tiny: one thread is faster, and much faster when other work shares the cores."""
    with one_thread():
        yield


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def lopsided() -> GaussianMixture2D:
    """Two modes far apart, weights 0.2 and 0.8: the lesson's example of what plain Langevin gets wrong."""
    return GaussianMixture2D(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), std=0.3, weights=torch.tensor([0.2, 0.8]))


# ---------------------------------------------------------------- the score of a blurred mixture


@pytest.mark.parametrize("sigma", [0.0, 0.4, 2.0])
def test_ve_score_is_the_gradient_of_the_blurred_mixtures_log_density(sigma):
    """Blurring N(mu_k, std^2 I) by N(0, sigma^2 I) gives N(mu_k, (std^2 + sigma^2) I): the blurred log density is a
    log-sum-exp over the components, written here from the mixture's centres, std and weights."""
    toy = GaussianMixture2D(torch.tensor([[-1.5, 0.5], [1.0, 1.0], [0.5, -1.5]]), std=0.3,
                            weights=torch.tensor([0.5, 0.3, 0.2]))
    x = (2 * torch.randn(300, 2, generator=seeded(0))).double().requires_grad_()
    var = toy.std**2 + sigma**2
    sq = (x[:, None, :] - toy.centres.double()[None]).pow(2).sum(-1)  # (n, K)
    log_p = torch.logsumexp(toy.weights.double().log() - sq / (2 * var) - math.log(2 * math.pi * var), dim=1)
    grad = torch.autograd.grad(log_p.sum(), x)[0]
    assert torch.allclose(ve_score(toy, x.detach().float(), sigma), grad.float(), atol=1e-4, rtol=1e-4)


def test_noise_levels_fall_geometrically_and_refuse_bad_input():
    levels = noise_levels(5.0, 0.05, 9)
    assert len(levels) == 9
    assert levels[0].item() == pytest.approx(5.0) and levels[-1].item() == pytest.approx(0.05)
    ratios = levels[1:] / levels[:-1]
    assert torch.allclose(ratios, torch.full((8,), 0.01 ** (1 / 8)), rtol=1e-5)  # one constant factor per level
    for bad in ((0.05, 5.0, 9), (1.0, 0.0, 5), (1.0, -0.1, 5), (1.0, 0.1, 1)):
        with pytest.raises(ValueError, match="sigma_max > sigma_min > 0 and at least 2 levels"):
            noise_levels(*bad)


# ---------------------------------------------------------------- denoising score matching


@pytest.mark.parametrize("shape", [(16, 2), (4, 1, 3, 3)])
def test_dsm_loss_is_the_hand_computed_one_and_0_for_a_model_that_recovers_z(shape):
    x = torch.randn(shape, generator=seeded(0))
    sigmas = noise_levels(2.0, 0.1, 4)
    seen = []

    def zero(noisy, i):
        seen.append((noisy.clone(), i.clone()))
        return torch.zeros_like(noisy)

    loss = dsm_loss(zero, x, sigmas, seeded(5))
    g = seeded(5)  # by hand: a level per point, then z
    i = torch.randint(0, 4, (shape[0],), generator=g)
    z = torch.randn(shape, generator=g)
    sigma = sigmas[i].view(-1, *([1] * (len(shape) - 1)))
    assert torch.equal(seen[0][1], i) and seen[0][1].dtype == torch.long
    assert torch.allclose(seen[0][0], x + sigma * z)
    assert torch.isclose(loss, z.pow(2).mean())
    # a model that knows the clean x recovers z = (x~ - x) / sigma_i exactly: loss 0
    denoiser = lambda noisy, i: (noisy - x) / sigmas[i].view_as(sigma)  # noqa: E731
    assert dsm_loss(denoiser, x, sigmas, seeded(5)).item() < 1e-10


def test_learned_score_is_minus_the_noise_prediction_over_sigma():
    torch.manual_seed(0)
    model = LevelMLP(n_levels=3, hidden=16).train()
    sigmas = torch.tensor([2.0, 0.5, 0.1])
    x = torch.randn(5, 2, generator=seeded(1))
    score = learned_score(model, sigmas)(x, 1)
    assert model.training  # put back as it was
    assert not score.requires_grad
    with torch.no_grad():
        assert torch.allclose(score, -model(x, torch.full((5,), 1)) / 0.5)
        assert not torch.allclose(score, -model(x, torch.full((5,), 2)) / 0.1)


def test_learned_score_asks_the_network_in_eval_mode():
    class ModeRecorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.modes = []

        def forward(self, x, i):
            self.modes.append(self.training)
            return x

    net = ModeRecorder().train()
    learned_score(net, torch.tensor([1.0]))(torch.zeros(3, 2), 0)
    assert net.modes == [False] and net.training


def test_level_mlp_predicts_a_vector_per_point_and_level():
    torch.manual_seed(0)
    model = LevelMLP(n_levels=4, hidden=16)
    x = torch.randn(5, 2, generator=seeded(1))
    out = model(x, torch.zeros(5, dtype=torch.long))
    assert out.shape == (5, 2)
    assert not torch.allclose(out, model(x, torch.full((5,), 3)))  # the level changes the prediction
    assert torch.allclose(model(x, torch.tensor([0, 1, 2, 3, 0]))[1], model(x[1:2], torch.tensor([1]))[0])


def test_dsm_loss_trains_a_level_mlp():
    torch.manual_seed(0)
    points, _ = lopsided().sample(256, seeded(0))
    sigmas = noise_levels(2.0, 0.1, 4)
    model = LevelMLP(n_levels=4, hidden=32)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    g = seeded(1)
    with torch.no_grad():
        before = dsm_loss(model, points, sigmas, seeded(2)).item()
    for _ in range(150):
        loss = dsm_loss(model, points, sigmas, g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = dsm_loss(model, points, sigmas, seeded(2)).item()
    assert after < 0.7 * before


# ---------------------------------------------------------------- Langevin dynamics


def test_langevin_with_a_gaussians_score_reaches_its_mean_and_variance():
    m, s = torch.tensor([1.0, -2.0]), 0.5
    score = lambda x: -(x - m) / s**2  # noqa: E731  N(m, s^2 I)
    x, frames = langevin(score, torch.zeros(4000, 2), step_size=0.01, n_steps=450, generator=seeded(0),
                         record_every=100)
    assert torch.allclose(x.mean(0), m, atol=0.03)
    # the step's own bias: the chain's variance is s^2 / (1 - delta / (4 s^2)), 1% above s^2 here
    assert torch.allclose(x.std(0), torch.full((2,), s), rtol=0.05)
    assert len(frames) == 6  # the start, every 100 steps, and the last
    assert torch.equal(frames[0], torch.zeros(4000, 2)) and torch.equal(frames[-1], x)
    with pytest.raises(ValueError, match="step_size is delta > 0, e.g. 0.01"):
        langevin(score, x, step_size=0.0, n_steps=1)


def test_annealed_langevin_finds_the_weights_and_plain_langevin_does_not():
    """The lesson's claim: with the exact scores, walking down the noise levels puts 20% / 80% of the points in the
    two modes; Langevin at the smallest level alone keeps the split of its uniform start (about half and half),
    because at that level nothing pulls a point across the empty gap between the modes."""
    toy = lopsided()
    sigmas = noise_levels(5.0, 0.05, 10)
    start = 8 * torch.rand(2000, 2, generator=seeded(0)) - 4
    annealed, frames = annealed_langevin(lambda x, i: ve_score(toy, x, sigmas[i].item()), sigmas, start, 100,
                                         eps=0.002, generator=seeded(1), record=True)
    assert torch.allclose(mode_shares(annealed, toy), toy.weights, atol=0.05)
    assert len(frames) == 11
    plain, _ = langevin(lambda x: ve_score(toy, x, sigmas[-1].item()), start, 0.002, 1000, seeded(1))
    assert (mode_shares(plain, toy)[0] - 0.2).abs() > 0.2


def test_annealed_langevin_steps_with_eps_sigma_i_squared_over_sigma_l_squared():
    """With a zero score only the noise moves the points: after level i's single step the change is
    sqrt(alpha_i) z with alpha_i = eps sigma_i^2 / sigma_L^2, z the generator's next draw; levels come in order."""
    sigmas, eps = torch.tensor([4.0, 1.0, 0.5]), 0.01
    levels = []

    def zero(x, i):
        levels.append(i)
        return torch.zeros_like(x)

    start = torch.zeros(10, 2)
    _, frames = annealed_langevin(zero, sigmas, start, 1, eps, generator=seeded(3), record=True)
    assert levels == [0, 1, 2]
    g = seeded(3)
    for i in range(3):
        alpha = eps * sigmas[i].item() ** 2 / sigmas[-1].item() ** 2
        assert torch.allclose(frames[i + 1] - frames[i], math.sqrt(alpha) * torch.randn(10, 2, generator=g),
                              atol=1e-5)


def test_mode_shares_are_the_nearest_centres_shares():
    toy = lopsided()
    points = torch.tensor([[-2.1, 0.0], [-1.0, 0.3], [0.5, 0.0], [2.0, 9.0]])  # nearest: 0, 0, 1, 1
    assert torch.equal(mode_shares(points, toy), torch.tensor([0.5, 0.5]))
    shares = mode_shares(torch.randn(101, 2, generator=seeded(0)), GaussianMixture2D.ring())
    assert shares.shape == (8,) and shares.sum().item() == pytest.approx(1.0)


# ---------------------------------------------------------------- the SDE view


@pytest.fixture(scope="module")
def gaussian_problem():
    """DDPM's schedule and data from one Gaussian N(m, 0.4^2 I), whose every noised score is known exactly."""
    schedule = DiffusionSchedule(T=1000)
    one = GaussianMixture2D(torch.tensor([[1.0, -0.5]]), std=0.4)
    score = lambda x, t: one.score(x, schedule.alpha_bars[t])  # noqa: E731
    return schedule, one, score


@pytest.mark.parametrize("kind", ["sde", "ode"])
def test_vp_sample_with_the_exact_score_reaches_the_datas_mean_and_std(kind, gaussian_problem):
    schedule, one, score = gaussian_problem
    x_T = torch.randn(3000, 2, generator=seeded(0))
    x0, frames = vp_sample(score, schedule, x_T, kind, generator=seeded(1), record_every=250)
    assert torch.allclose(x0.mean(0), one.centres[0], atol=0.03)
    assert torch.allclose(x0.std(0), torch.full((2,), 0.4), rtol=0.05)
    assert len(frames) == 5 and torch.equal(frames[0], x_T) and torch.equal(frames[-1], x0)


def test_the_probability_flow_ode_is_deterministic_and_the_sde_is_not(gaussian_problem):
    """For Gaussian data the ODE's map keeps each point's standardised position: x_T -> m + std x_T."""
    schedule, one, score = gaussian_problem
    x_T = torch.randn(200, 2, generator=seeded(0))
    a, _ = vp_sample(score, schedule, x_T, "ode", generator=seeded(1))
    b, _ = vp_sample(score, schedule, x_T, "ode", generator=seeded(2))
    assert torch.equal(a, b)
    assert torch.allclose(a, one.centres[0] + 0.4 * x_T, atol=0.03)
    c, _ = vp_sample(score, schedule, x_T, "sde", generator=seeded(1))
    d, _ = vp_sample(score, schedule, x_T, "sde", generator=seeded(2))
    assert (c - d).abs().mean() > 0.1
    with pytest.raises(ValueError, match='kind="sde".*kind="ode"'):
        vp_sample(score, schedule, x_T, "langevin")


@pytest.mark.parametrize("abar", [0.9, 0.3, 0.01])
def test_score_from_eps_turns_the_best_noise_prediction_into_the_score(abar):
    toy = GaussianMixture2D.ring()
    x = 1.5 * torch.randn(200, 2, generator=seeded(0))
    assert torch.allclose(score_from_eps(toy.best_eps(x, abar), abar), toy.score(x, abar), atol=1e-4, rtol=1e-4)
    assert torch.equal(score_from_eps(torch.tensor([0.6]), 0.64), torch.tensor([-1.0]))


@pytest.mark.parametrize("steps", [1, 10])
def test_ddim_as_euler_is_ddim_without_clipping(steps):
    torch.manual_seed(0)
    unet = UNet(channels=(8, 16, 16), time_dim=32)
    schedule = DiffusionSchedule(T=1000)
    noise = torch.randn(2, 1, 28, 28, generator=seeded(1))
    euler = ddim_as_euler(unet, schedule, noise, steps)
    ddim, _ = ddim_sample(unet, schedule, noise=noise, steps=steps, clip=None, image_range=False)
    assert euler.shape == noise.shape
    assert (euler - ddim).abs().max().item() < 1e-3
    assert (euler - noise).abs().mean() > 0.1  # the sampler did move the noise
