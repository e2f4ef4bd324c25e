"""Lesson 2: the VAE's loss terms, the reparameterization trick, the two VAEs, the negative ELBO and interpolation."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from course_lib.data import load_dataset
from course_lib.vae import (
    ConvVAE,
    MLPVAE,
    bernoulli_nll,
    binarize,
    gaussian_nll,
    kl_to_standard_normal,
    lerp,
    negative_elbo,
    reparameterize,
    slerp,
    vae_loss,
)

NETWORKS = [MLPVAE, ConvVAE]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", "train", n=64, source="bundled").tensors[0]


# --- KL( q(z|x) || N(0, I) ) ---


def test_kl_is_zero_when_q_is_the_prior():
    assert torch.equal(kl_to_standard_normal(torch.zeros(4, 3), torch.zeros(4, 3)), torch.zeros(4))


def test_kl_matches_monte_carlo_and_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 2), torch.randn(3, 2)  # 3 images, 2 latent dimensions
    q, p = Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)
    z = q.sample((200_000,))  # (samples, 3, 2)
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)  # E_q[log q(z) - log p(z)], one per image

    kl = kl_to_standard_normal(mu, logvar)
    assert kl.shape == (3,)  # one value per image
    assert torch.allclose(kl, monte_carlo, rtol=0.02, atol=0.05)
    assert torch.allclose(kl, kl_divergence(q, p).sum(-1), atol=1e-5)


@pytest.mark.parametrize("mu, logvar", [(1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (-2.0, 0.5)])
def test_kl_is_positive_away_from_the_prior(mu, logvar):
    assert kl_to_standard_normal(torch.full((1, 2), mu), torch.full((1, 2), logvar)).item() > 0


# --- the reparameterization trick ---


def test_reparameterize_with_given_noise_is_the_formula():
    mu, logvar, eps = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    assert torch.equal(reparameterize(mu, logvar, eps=eps), mu + torch.exp(logvar / 2) * eps)


def test_reparameterize_samples_have_the_right_mean_and_variance():
    torch.manual_seed(0)
    mu, var = torch.tensor([1.0, -2.0]), torch.tensor([0.25, 4.0])
    z = reparameterize(mu.expand(200_000, 2), var.log().expand(200_000, 2))
    assert torch.allclose(z.mean(0), mu, atol=0.02)
    assert torch.allclose(z.var(0), var, rtol=0.03)


def test_gradients_flow_through_reparameterize_but_not_through_sample():
    mu = torch.zeros(4, 2, requires_grad=True)
    logvar = torch.zeros(4, 2, requires_grad=True)
    reparameterize(mu, logvar).sum().backward()
    assert torch.equal(mu.grad, torch.ones(4, 2))  # dz/dmu = 1
    assert logvar.grad.abs().sum() > 0  # dz/dlogvar = eps * sigma / 2

    z = Normal(mu, torch.exp(0.5 * logvar)).sample()  # sampling directly: no path back to mu and logvar
    assert not z.requires_grad


# --- the reconstruction terms ---


def test_bernoulli_nll_is_binary_cross_entropy_per_image():
    x, logits = torch.rand(3, 1, 28, 28), torch.randn(3, 1, 28, 28)
    by_hand = torch.stack([F.binary_cross_entropy(torch.sigmoid(logits[i]), x[i], reduction="sum") for i in range(3)])
    assert torch.allclose(bernoulli_nll(x, logits), by_hand, rtol=1e-4)


def test_binarize_draws_ink_with_the_grey_level_as_its_probability():
    grey = torch.tensor([0.0, 0.25, 0.5, 1.0]).view(1, 1, 1, 4).expand(20000, 1, 1, 4)
    b = binarize(grey, torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) == {0.0, 1.0}
    assert torch.allclose(b.mean(dim=0).flatten(), torch.tensor([0.0, 0.25, 0.5, 1.0]), atol=0.015)
    again = binarize(grey, torch.Generator().manual_seed(0))
    assert torch.equal(b, again)
    with pytest.raises(ValueError):
        binarize(grey * 2)


def test_bernoulli_nll_of_grey_digits_is_the_average_over_their_binarisations():
    """The loss on grey digits is a likelihood: the expected -log p(b | z) of the digit binarised at random. Exact
    on one pixel (two outcomes), and within Monte Carlo error on whole digits."""
    x, logit = torch.tensor([[[[0.3]]]]), torch.tensor([[[[0.8]]]])
    ones, zeros = torch.ones_like(x), torch.zeros_like(x)
    by_outcomes = 0.3 * bernoulli_nll(ones, logit) + 0.7 * bernoulli_nll(zeros, logit)
    assert torch.allclose(bernoulli_nll(x, logit), by_outcomes, atol=1e-6)
    digits, logits = torch.rand(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    draws = torch.stack([bernoulli_nll(binarize(digits, torch.Generator().manual_seed(k)), logits)
                         for k in range(400)])  # (400, 4)
    error = 3 * draws.std(dim=0) / 400**0.5
    assert ((draws.mean(dim=0) - bernoulli_nll(digits, logits)).abs() < error).all()


def test_gaussian_nll_is_squared_error_over_two_sigma_squared_per_image():
    x, logits = torch.rand(3, 1, 28, 28), torch.randn(3, 1, 28, 28)
    by_hand = torch.stack([((x[i] - torch.sigmoid(logits[i])) ** 2).sum() / (2 * 0.3**2) for i in range(3)])
    assert torch.allclose(gaussian_nll(x, logits, sigma=0.3), by_hand, rtol=1e-5)


# --- vae_loss ---


@pytest.mark.parametrize("likelihood, nll", [("bernoulli", bernoulli_nll), ("gaussian", gaussian_nll)])
def test_vae_loss_is_recon_plus_beta_kl(likelihood, nll):
    torch.manual_seed(0)
    vae, x = MLPVAE(latent_dim=2), torch.rand(8, 1, 28, 28)
    torch.manual_seed(1)
    terms = vae_loss(vae, x, likelihood=likelihood)
    assert sorted(terms) == ["kl", "loss", "recon"]
    assert all(value.dim() == 0 for value in terms.values())  # batch averages, not one per image

    torch.manual_seed(1)  # the same z as in vae_loss
    mu, logvar = vae.encode(x)
    z = reparameterize(mu, logvar)
    assert torch.isclose(terms["recon"], nll(x, vae.decoder(z)).mean())
    assert torch.isclose(terms["kl"], kl_to_standard_normal(mu, logvar).mean())
    assert torch.isclose(terms["loss"], terms["recon"] + terms["kl"])

    torch.manual_seed(1)
    beta4 = vae_loss(vae, x, beta=4.0, likelihood=likelihood)
    assert torch.isclose(beta4["recon"], terms["recon"]) and torch.isclose(beta4["kl"], terms["kl"])
    assert torch.isclose(beta4["loss"], beta4["recon"] + 4 * beta4["kl"])


def test_vae_loss_unknown_likelihood_lists_the_valid_ones():
    with pytest.raises(ValueError, match="bernoulli, gaussian"):
        vae_loss(MLPVAE(latent_dim=2), torch.rand(2, 1, 28, 28), likelihood="poisson")


# --- the two VAEs ---


@pytest.mark.parametrize("Net", NETWORKS)
def test_shapes_range_and_deterministic_forward(Net):
    torch.manual_seed(0)
    vae, x = Net(latent_dim=3).eval(), torch.rand(8, 1, 28, 28)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (8, 3)
    x_hat = vae.decode(torch.randn(8, 3))
    assert x_hat.shape == (8, 1, 28, 28)
    assert x_hat.min() >= 0 and x_hat.max() <= 1
    assert torch.equal(vae(x), vae.decode(mu))  # reconstruction through the mean code, no sampling
    assert torch.equal(vae(x), vae(x))


@pytest.mark.parametrize("Net", NETWORKS)
def test_sample_is_reproducible_with_a_seeded_generator(Net):
    vae = Net(latent_dim=3).eval()
    first = vae.sample(5, generator=torch.Generator().manual_seed(0))
    assert first.shape == (5, 1, 28, 28)
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, vae.sample(5, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(first, vae.sample(5, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("Net", NETWORKS)
@pytest.mark.parametrize("shape", [(8, 784), (28, 28), (8, 3, 28, 28)])
def test_wrong_image_shape(Net, shape):
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        Net(latent_dim=2).encode(torch.rand(shape))


@pytest.mark.parametrize("Net", NETWORKS)
def test_decode_with_wrong_latent_size(Net):
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        Net(latent_dim=2).decode(torch.rand(4, 3))


# --- training and the negative ELBO ---


@pytest.mark.parametrize("Net, steps", [(MLPVAE, 150), (ConvVAE, 30)])
def test_negative_elbo_goes_down_on_a_tiny_batch(Net, steps, digits):
    torch.manual_seed(0)
    vae = Net(latent_dim=2)
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3)
    start = negative_elbo(vae, digits)
    for _ in range(steps):
        loss = vae_loss(vae, digits)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert negative_elbo(vae, digits) < 0.8 * start


def test_negative_elbo_is_repeatable_and_leaves_the_model_as_it_was(digits):
    vae = ConvVAE(latent_dim=2)  # BatchNorm: evaluating in train mode would move its running statistics
    before = {name: value.clone() for name, value in vae.state_dict().items()}
    assert negative_elbo(vae, digits) == negative_elbo(vae, digits)
    assert vae.training
    assert all(torch.equal(value, before[name]) for name, value in vae.state_dict().items())


@pytest.mark.parametrize("m", [0.0, 3.0])
def test_negative_elbo_of_a_coin_flip_decoder(m, digits):
    vae = MLPVAE(latent_dim=2)
    with torch.no_grad():
        for last in (vae.encoder[-1], vae.decoder[-2]):  # encoder -> mu = logvar = 0, decoder -> logits = 0
            last.weight.zero_()
            last.bias.zero_()
        vae.encoder[-1].bias[:2] = m  # mu = (m, m)
    # Every pixel gets p = 0.5, so -log p(x|z) = 784 log 2 whatever x and z are; KL = |mu|^2 / 2 = m^2 (0 for m = 0).
    assert negative_elbo(vae, digits) == pytest.approx(784 * math.log(2) + m**2, rel=1e-5)


# --- interpolation ---


def test_slerp_and_lerp_start_at_z0_and_end_at_z1():
    torch.manual_seed(0)
    z0, z1 = torch.randn(4), torch.randn(4)
    for interpolate in (slerp, lerp):
        ends = interpolate(z0, z1, torch.tensor([0.0, 1.0]))
        assert torch.allclose(ends[0], z0, atol=1e-5) and torch.allclose(ends[1], z1, atol=1e-5)


def test_slerp_keeps_the_norm_and_lerp_cuts_through_the_middle():
    torch.manual_seed(0)
    z0, z1 = torch.randn(8), torch.randn(8)
    z1 = z1 * z0.norm() / z1.norm()  # two codes of the same norm
    t = torch.linspace(0, 1, 11)
    assert torch.allclose(slerp(z0, z1, t).norm(dim=1), z0.norm().expand(11), rtol=1e-5)
    assert torch.allclose(lerp(z0, z1, torch.tensor([0.5]))[0], (z0 + z1) / 2)
    assert lerp(z0, z1, torch.tensor([0.5])).norm() < z0.norm()


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_slerp_of_parallel_codes_falls_back_to_lerp(scale):
    z0, t = torch.tensor([1.0, 2.0, -2.0]), torch.linspace(0, 1, 5)
    z = slerp(z0, scale * z0, t)
    assert not z.isnan().any()
    assert torch.allclose(z, lerp(z0, scale * z0, t), atol=1e-4)
