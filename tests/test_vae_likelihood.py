"""The ELBO and the importance-sampled log p(x) of lesson 2 (`course_lib.vae`), checked against closed forms:

- a linear-Gaussian model where log p(x), the ELBO and the posterior are all known: the gap log p(x) - ELBO is
  KL(q(z|x) || p(z|x)), the K = 1 estimate averages to the ELBO, and larger K climbs to log p(x);
- a VAE whose decoder ignores z, so that p(x) = p(x | z) exactly: `log_importance_weights` must find it."""

import math

import pytest
import torch

from course_lib.vae import (MLPVAE, bernoulli_nll, importance_sampled_log_px, kl_to_standard_normal,
                            log_importance_weights, log_normal, negative_elbo)


def test_log_normal_is_the_gaussian_log_density_summed_over_dimensions():
    z, mu, logvar = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    want = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    assert torch.allclose(log_normal(z, mu, logvar), want, atol=1e-5)
    assert torch.allclose(log_normal(z), torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1), atol=1e-5)


def gaussian_kl(m1, v1, m2, v2):
    """KL(N(m1, v1) || N(m2, v2)) in one dimension."""
    return 0.5 * (math.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1)


def test_the_gap_between_log_px_and_the_elbo_is_the_kl_to_the_posterior_and_importance_sampling_closes_it():
    """p(z) = N(0, 1), p(x | z) = N(x; z, 1), so p(x) = N(x; 0, 2) and p(z | x) = N(x / 2, 1 / 2). The encoder's
    q(z | x) = N(0.2, 0.6) is deliberately off."""
    x, m, v = 1.5, 0.2, 0.6
    log_px = -0.5 * (math.log(2 * math.pi * 2) + x**2 / 2)
    # ELBO = E_q[log p(x | z)] - KL(q || p(z)), both in closed form
    elbo = -0.5 * (math.log(2 * math.pi) + (x - m) ** 2 + v) - gaussian_kl(m, v, 0.0, 1.0)
    assert log_px - elbo == pytest.approx(gaussian_kl(m, v, x / 2, 0.5), abs=1e-9)  # the identity of the derivation
    gen = torch.Generator().manual_seed(0)
    z = m + math.sqrt(v) * torch.randn(2000, 1000, generator=gen, dtype=torch.float64)  # 2000 rows of 1000 z ~ q
    log_w = (log_normal(torch.full_like(z, x).unsqueeze(-1), z.unsqueeze(-1)) + log_normal(z.unsqueeze(-1))
             - log_normal(z.unsqueeze(-1), m, math.log(v)))
    estimates = {K: importance_sampled_log_px(log_w.view(2000, -1, K)).mean().item() for K in (1, 10, 100, 1000)}
    assert estimates[1] == pytest.approx(elbo, abs=0.01)
    assert estimates[1] < estimates[10] < estimates[100] <= estimates[1000] <= log_px + 1e-3
    assert estimates[1000] == pytest.approx(log_px, abs=0.01)


def vae_whose_decoder_ignores_z(mu: float, logvar: float) -> MLPVAE:
    """Every image gets q(z | x) = N(mu, exp(logvar)) and the same decoded image, whatever z is."""
    torch.manual_seed(0)
    vae = MLPVAE(latent_dim=2, hidden=(16, 8))
    with torch.no_grad():
        vae.encoder[-1].weight.zero_()
        vae.encoder[-1].bias.copy_(torch.tensor([mu, mu, logvar, logvar]))
        vae.decoder[0].weight.zero_()
    return vae


def test_log_importance_weights_find_p_x_where_it_is_known():
    """With p(x | z) the same for every z, p(x) = p(x | z): the estimate must reach it, the mean of the log-weights
    must be the ELBO p(x | z) - KL(q || p), and with K = 1 the library's own negative ELBO agrees."""
    vae = vae_whose_decoder_ignores_z(mu=0.3, logvar=math.log(0.8))  # q wider than half the prior: finite variance
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        log_px = -bernoulli_nll(x, vae.decoder(torch.zeros(3, 2)))
        kl = kl_to_standard_normal(*vae.encode(x))
    log_w = log_importance_weights(vae, x, samples=20000, generator=torch.Generator().manual_seed(2))
    assert log_w.shape == (3, 20000)
    assert torch.allclose(log_w.mean(1), log_px - kl, atol=0.02)  # K = 1: the ELBO
    assert torch.allclose(importance_sampled_log_px(log_w), log_px, atol=0.02)  # K = 20000: log p(x)
    assert negative_elbo(vae, x) == pytest.approx(-(log_px - kl).mean().item(), abs=1e-3)


def test_log_importance_weights_repeat_with_a_generator_and_leave_the_mode_alone():
    vae = MLPVAE(latent_dim=2, hidden=(16, 8)).train()
    x = torch.rand(2, 1, 28, 28)
    a = log_importance_weights(vae, x, 50, generator=torch.Generator().manual_seed(3))
    b = log_importance_weights(vae, x, 50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and vae.training
    assert not torch.equal(a, log_importance_weights(vae, x, 50, generator=torch.Generator().manual_seed(4)))


def test_the_estimate_is_computed_in_logs_where_the_weights_underflow():
    log_w = torch.tensor([[-300.0, -301.0, -302.0]])
    assert log_w.exp().sum() == 0  # float32 cannot hold the weights themselves
    want = -300 + math.log((1 + math.exp(-1) + math.exp(-2)) / 3)
    assert importance_sampled_log_px(log_w).item() == pytest.approx(want, abs=1e-4)
