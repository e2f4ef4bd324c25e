"""Lesson 2 exercises: the closed-form KL, the reparameterization trick, the role of beta."""

import torch

from ..vae import kl_to_standard_normal, reparameterize
from ._base import Exercise, choice, register


def kl_solution(mu, logvar):
    # KL(N(mu, sigma^2) || N(0, I)) = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2), one value per row
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


def _grade_kl(fn):
    gen = torch.Generator().manual_seed(3)
    mu, logvar = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    got, want = fn(mu, logvar), kl_to_standard_normal(mu, logvar)
    if got is None:
        return False, "your function returned None; return one KL value per row of mu."
    got = torch.as_tensor(got)
    if got.shape != want.shape:
        if got.numel() == 1:
            return False, "return one KL value per image (shape (n,)): sum over the latent dimensions only."
        return False, f"expected shape {tuple(want.shape)} (one value per image), got {tuple(got.shape)}."
    if torch.allclose(got, -want):
        return False, "the sign is flipped: a KL divergence is never negative. Check the -1/2 in front."
    if torch.allclose(got, 2 * want):
        return False, "off by a factor 2: the formula has -1/2 in front of the sum."
    sigma_as_logvar = -0.5 * (1 + torch.log(logvar.abs() ** 2 + 1e-12) - mu.pow(2) - logvar.pow(2)).sum(1)
    if torch.allclose(got, sigma_as_logvar, atol=1e-4):
        return False, "logvar is log(sigma^2), not sigma: sigma^2 = logvar.exp(), and log sigma^2 is logvar itself."
    if not torch.allclose(got, want, atol=1e-4):
        return False, "not the closed form yet: -1/2 * sum(1 + logvar - mu^2 - exp(logvar)) over the latent dimensions."
    return True, "your KL matches the closed form."


def reparameterize_solution(mu, logvar):
    # z = mu + sigma * eps, eps ~ N(0, I): the randomness is an input, so gradients reach mu and logvar
    eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def _grade_reparameterize(fn):
    mu = torch.tensor([1.0, -2.0]).repeat(20000, 1).requires_grad_()
    logvar = torch.log(torch.tensor([0.25, 4.0])).repeat(20000, 1).requires_grad_()
    with torch.no_grad():  # the library's z for eps = 0 and for mu = 0, eps = 1: the mean and the std z should have
        want_mean = reparameterize(mu[0], logvar[0], eps=torch.zeros(2))
        want_var = reparameterize(torch.zeros(2), logvar[0], eps=torch.ones(2)) ** 2
    z = fn(mu, logvar)
    if z is None:
        return False, "your function returned None; return z."
    if z.shape != mu.shape:
        return False, f"z should have the shape of mu {tuple(mu.shape)}, got {tuple(z.shape)}."
    if not z.requires_grad:
        return False, ("no gradient can flow back to mu and logvar. Sampling with torch.normal or .sample() is a "
                       "random node; write z = mu + sigma * eps with eps = torch.randn_like(mu) instead.")
    var = z.detach().var(dim=0)
    if var.max() < 1e-6:
        return False, "z has no randomness: add sigma * eps with eps ~ N(0, I) (torch.randn_like(mu))."
    if torch.allclose(var, want_var**2, rtol=0.15):
        return False, "you used exp(logvar) = sigma^2 as the spread; the standard deviation is exp(logvar / 2)."
    if not torch.allclose(z.detach().mean(dim=0), want_mean, atol=0.1):
        return False, "the mean of z should be mu."
    if not torch.allclose(var, want_var, rtol=0.1):
        return False, f"the variance of z should be exp(logvar) = {want_var.tolist()}, yours is {var.tolist()}."
    z.sum().backward()
    if mu.grad is None or logvar.grad is None or logvar.grad.abs().sum() == 0:
        return False, ("no gradient reaches logvar: a sampler such as torch.normal treats the spread as a fixed "
                       "number. Write z = mu + torch.exp(0.5 * logvar) * eps with eps = torch.randn_like(mu).")
    return True, "z = mu + sigma * eps has the right mean and variance, and gradients flow to mu and logvar."


def _grade_beta(answer):
    picked = choice(answer)
    if picked == "b":
        return True, ("A larger beta pays more for every nat of KL, so the codes carry less information about each "
                      "image: the KL falls, the codes crowd into N(0, I), and reconstructions get blurrier.")
    if picked == "a":
        return False, "beta multiplies the KL term only. What does a heavier price on KL do to the information in z?"
    if picked == "c":
        return False, "beta changes the balance between the two terms, not just the scale of the whole loss."
    return False, "answer with one letter: 'a', 'b' or 'c'."


register(
    kl=Exercise(
        "Write kl(mu, logvar): KL(N(mu, exp(logvar)) || N(0, I)), one value per row, for tensors shaped (n, d).",
        _grade_kl, kl_solution,
    ),
    reparameterize=Exercise(
        "Write reparameterize(mu, logvar) -> z ~ N(mu, exp(logvar)) such that gradients flow to mu and logvar.",
        _grade_reparameterize, reparameterize_solution,
    ),
    beta=Exercise(
        "Training a VAE with beta = 4 instead of 1 gives: (a) sharper reconstructions and more spread-out codes, "
        "(b) a smaller KL, codes closer to N(0, I) and blurrier reconstructions, (c) no change, beta only rescales "
        "the loss?",
        _grade_beta, "'b': beta is the price of information in the code.",
    ),
)
