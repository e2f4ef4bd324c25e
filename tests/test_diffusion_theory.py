"""course_lib.diffusion_theory: the posterior and the ELBO's weights agree with their definitions (Bayes' rule, the KL
of two Gaussians, the library's Min-SNR loss), and the 2-D mixture's closed forms agree with autograd and with
Monte Carlo."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from course_lib.diffusion import DiffusionSchedule, ddpm_update, diffusion_loss, q_sample
from course_lib.diffusion_theory import (GaussianMixture2D, TimeMLP, classifier_guided_eps, elbo_weight,
                                         min_snr_weight, model_variance, posterior)

SCHEDULE = DiffusionSchedule(T=1000)


@pytest.mark.parametrize("t", [1, 10, 299, 999])
def test_the_posterior_is_bayes_rule_on_a_grid(t):
    """q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0), normalised on a fine 1-D grid, is N(mu~, beta~)."""
    x0, x_t = torch.tensor(0.4, dtype=torch.float64), torch.tensor(-0.3, dtype=torch.float64)
    beta, abar_prev = SCHEDULE.betas[t].double(), SCHEDULE.alpha_bars_prev[t].double()
    mean, var = posterior(SCHEDULE, x0, x_t, t)
    grid = torch.linspace(float(mean) - 8 * float(var) ** 0.5, float(mean) + 8 * float(var) ** 0.5, 20001,
                          dtype=torch.float64)
    log_p = (Normal((1 - beta).sqrt() * grid, beta.sqrt()).log_prob(x_t)
             + Normal(abar_prev.sqrt() * x0, (1 - abar_prev).sqrt()).log_prob(grid))
    p = (log_p - log_p.max()).exp()
    p = p / p.sum()
    grid_mean = (p * grid).sum()
    grid_var = (p * (grid - grid_mean) ** 2).sum()
    assert float(grid_mean) == pytest.approx(float(mean), abs=1e-5 * max(1.0, abs(float(mean))))
    assert float(grid_var) == pytest.approx(float(var), rel=1e-3)


@pytest.mark.parametrize("t", [0, 1, 500, 999, torch.tensor([3, 700])])
def test_the_posterior_mean_is_algorithm_2s_mean_with_the_true_noise(t):
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(2, 1, 6, 6, generator=gen) * 2 - 1, torch.randn(2, 1, 6, 6, generator=gen)
    x_t = q_sample(SCHEDULE, x0, t, eps)
    mean, _ = posterior(SCHEDULE, x0, x_t, t)
    z = torch.zeros_like(x_t)
    assert torch.allclose(mean, ddpm_update(SCHEDULE, x_t, t, eps, z) if isinstance(t, int) else torch.stack(
        [ddpm_update(SCHEDULE, x_t[i:i + 1], int(t[i]), eps[i:i + 1], z[i:i + 1])[0] for i in range(2)]), atol=1e-4)


def test_at_the_first_step_the_posterior_is_the_clean_image():
    x0, x_t = torch.full((1, 1, 2, 2), 0.7), torch.zeros(1, 1, 2, 2)
    mean, var = posterior(SCHEDULE, x0, x_t, 0)
    assert torch.allclose(mean, x0) and float(var) == 0.0


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_the_kl_of_the_two_steps_is_the_weighted_noise_error(variance):
    gen = torch.Generator().manual_seed(1)
    x0, eps, eps_theta = (torch.randn(3, 1, 5, 5, generator=gen) for _ in range(3))
    t = 400
    x_t = q_sample(SCHEDULE, x0, t, eps)
    mean, _ = posterior(SCHEDULE, x0, x_t, t)
    mu_theta = ddpm_update(SCHEDULE, x_t, t, eps_theta, torch.zeros_like(x_t))
    sigma = model_variance(SCHEDULE, t, variance).sqrt()
    kl = kl_divergence(Normal(mean, sigma), Normal(mu_theta, sigma)).flatten(1).sum(1)
    weighted = elbo_weight(SCHEDULE, t, variance) * (eps - eps_theta).pow(2).flatten(1).sum(1)
    assert torch.allclose(kl, weighted, rtol=1e-3)


def test_with_the_posterior_variance_the_elbo_weight_is_a_function_of_the_snr():
    t = torch.arange(1, 1000)
    snr = SCHEDULE.snr(torch.arange(1000))
    assert torch.allclose(elbo_weight(SCHEDULE, t, "posterior"), 0.5 * (snr[:-1] / snr[1:] - 1), rtol=1e-3)


def test_min_snr_weight_is_what_the_library_loss_puts_on_each_image():
    x0 = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    model = lambda x, t: 0.5 * x  # noqa: E731
    weighted = diffusion_loss(model, SCHEDULE, x0, torch.Generator().manual_seed(3), min_snr_gamma=5.0)
    gen = torch.Generator().manual_seed(3)  # the same draws by hand: t, then eps
    t = torch.randint(0, 1000, (16,), generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    x_t = q_sample(SCHEDULE, 2 * x0 - 1, t, eps)
    by_hand = ((eps - model(x_t, t)).pow(2).flatten(1).mean(1) * min_snr_weight(SCHEDULE, t, 5.0)).mean()
    assert torch.isclose(weighted, by_hand, rtol=1e-5)
    assert min_snr_weight(SCHEDULE, torch.arange(1000)).max() == 1.0


def test_an_unknown_variance_is_a_clear_error():
    with pytest.raises(ValueError, match='variance="beta"'):
        elbo_weight(SCHEDULE, 5, "fixed")


# ---------------------------------------------------------------- the 2-D mixture


@pytest.mark.parametrize("abar", [1.0, 0.9, 0.3, 0.01])
def test_the_mixtures_score_and_best_noise_are_the_gradient_of_its_log_density(abar):
    toy = GaussianMixture2D.ring()
    x = (torch.randn(500, 2, generator=torch.Generator().manual_seed(4)) * 1.5).requires_grad_()
    grad = torch.autograd.grad(toy.log_prob(x, abar).sum(), x)[0]
    assert torch.allclose(toy.score(x.detach(), abar), grad, atol=1e-3, rtol=1e-4)
    if abar < 1:  # Tweedie: E[eps | x_t] = -sqrt(1 - abar) grad log q(x_t)
        assert torch.allclose(toy.best_eps(x.detach(), abar), -math.sqrt(1 - abar) * grad, atol=1e-4)


def test_the_best_noise_prediction_has_the_smallest_squared_error():
    """E[eps | x_t] minimises the expected squared error: a Monte Carlo check against scaled versions of it."""
    toy, abar = GaussianMixture2D.ring(), 0.5
    gen = torch.Generator().manual_seed(5)
    x0, _ = toy.sample(200_000, gen)
    eps = torch.randn(x0.shape, generator=gen)
    x_t = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * eps
    best = toy.best_eps(x_t, abar)
    error = lambda pred: (eps - pred).pow(2).sum(1).mean().item()  # noqa: E731
    assert error(best) < min(error(0.95 * best), error(1.05 * best), error(best + 0.05))


def test_the_mixtures_samples_and_noised_density_agree():
    toy = GaussianMixture2D.ring(n_modes=4, radius=1.0, std=0.2)
    x, classes = toy.sample(100_000, torch.Generator().manual_seed(6))
    assert torch.bincount(classes, minlength=4).min() > 24_000
    assert torch.allclose(x.mean(0), torch.zeros(2), atol=0.01)
    # the density integrates to 1 on a grid, at the clean level and after noising
    ticks = torch.linspace(-5, 5, 401, dtype=torch.float64)
    grid = torch.cartesian_prod(ticks, ticks)
    for abar in (1.0, 0.4):
        assert toy.log_prob(grid, abar).exp().sum().item() * (10 / 400) ** 2 == pytest.approx(1.0, abs=1e-3)


def test_the_class_posterior_is_bayes_rule():
    toy = GaussianMixture2D.ring()
    x = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    post = toy.class_log_prob(x, 0.6).exp()
    assert torch.allclose(post.sum(1), torch.ones(50, dtype=torch.float64))
    joint = torch.stack([toy.log_prob(x, 0.6, y=torch.full((50,), k)) for k in range(8)], 1).exp() / 8
    assert torch.allclose(post, joint / joint.sum(1, keepdim=True))


def test_classifier_guidance_at_scale_1_turns_the_unconditional_prediction_into_the_conditional():
    toy, abar = GaussianMixture2D.ring(), 0.4
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(8)).requires_grad_()
    y = torch.randint(0, 8, (300,), generator=torch.Generator().manual_seed(9))
    grad = torch.autograd.grad(toy.class_log_prob(x, abar).gather(1, y[:, None]).sum(), x)[0]
    x = x.detach()
    guided = classifier_guided_eps(toy.best_eps(x, abar), grad, abar, scale=1.0)
    assert torch.allclose(guided, toy.best_eps(x, abar, y=y), atol=1e-4)


def test_the_time_mlp_learns_the_noise_of_a_gaussian():
    """A short run of Algorithm 1 on 2-D Gaussian data brings the loss well below the 1 of predicting zero."""
    torch.manual_seed(0)
    mlp = TimeMLP(hidden=64)
    data = torch.randn(4096, 2) * 0.2 + torch.tensor([1.0, -0.5])
    optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in range(300):
        loss = diffusion_loss(mlp, SCHEDULE, data[(step * 256) % 4096:][:256], gen, image_range=False)
        optimizer.zero_grad(), loss.backward(), optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-50:]) / 50 < 0.6 and mlp(torch.zeros(3, 2), torch.tensor(5)).shape == (3, 2)
