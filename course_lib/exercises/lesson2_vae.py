"""Lesson 2 exercises: the closed-form KL, the reparameterization trick, the training step (the negative ELBO),
the importance-sampled log p(x), the role of beta."""

import math

import torch

from ..vae import MLPVAE, bernoulli_nll, importance_sampled_log_px, kl_to_standard_normal, reparameterize, vae_step
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
    with torch.random.fork_rng():  # the student's draws leave the lesson's random numbers (e.g. the next model's) alone
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


def vae_step_solution(model, batch):
    # the negative ELBO of a batch: -E_q[log p(x|z)] + KL(q(z|x) || N(0, I)), one z per image, averaged over images
    x = batch[0]
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar)  # z = mu + sigma * eps: gradients reach the encoder
    recon = bernoulli_nll(x, model.decoder(z)).mean()  # model.decoder gives logits; BCE summed over the pixels
    kl = kl_to_standard_normal(mu, logvar).mean()
    return {"loss": recon + kl, "recon": recon, "kl": kl}


def _tiny_vae(seed: int, logvar_bias: float = -1.0) -> MLPVAE:
    """A small 2-D MLP VAE with fixed weights whose images depend clearly on z, and whose encoder gives every image
    log sigma^2 = `logvar_bias` (-30: sigma ~ 3e-7, so a sampled z is mu whatever random numbers are drawn)."""
    with torch.random.fork_rng():  # the student's random generator is left as it was
        torch.manual_seed(seed)
        model = MLPVAE(latent_dim=2, hidden=(32, 16))
    with torch.no_grad():
        last = model.encoder[-1]
        last.weight[:2] *= 20  # codes mu of a few units, as after training
        last.weight[2:] = 0
        last.bias[2:] = logvar_bias
        model.decoder[0].weight *= 5  # so that moving z changes the image
    return model


def _vae_terms(model, x, z_of, recon_of=lambda x, logits: bernoulli_nll(x, logits)):
    """(recon, kl) averaged over x, for a way `z_of(mu, logvar)` of getting z and a reconstruction term."""
    mu, logvar = model.encode(x)
    return recon_of(x, model.decoder(z_of(mu, logvar))).mean(), kl_to_standard_normal(mu, logvar).mean()


def _same(got, want) -> bool:
    return torch.allclose(torch.as_tensor(got, dtype=torch.float32).detach(), want.detach(), rtol=1e-4, atol=1e-3)


def _grade_vae_step(fn):
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(6, 1, 28, 28, generator=gen)
    batch = (x, torch.zeros(6, dtype=torch.long))
    model = _tiny_vae(seed=2)
    with torch.random.fork_rng():  # the same eps for the student's step and the library's
        torch.manual_seed(7)
        got = fn(model, batch)
        torch.manual_seed(7)
        want = vae_step()(model, batch)
        torch.manual_seed(7)
        eps = torch.randn(6, 2)
    if got is None:
        return False, "your function returned None; return {'loss': recon + kl, 'recon': recon, 'kl': kl}."
    if not isinstance(got, dict) or not {"loss", "recon", "kl"} <= set(got):
        return False, ("return a dict {'loss': recon + kl, 'recon': recon, 'kl': kl}: fit minimizes 'loss', and the "
                       "live plot shows the two terms.")
    for key in ("loss", "recon", "kl"):
        value = torch.as_tensor(got[key])
        if value.numel() != 1:
            return False, (f"'{key}' has shape {tuple(value.shape)}; each entry is one number: sum over the pixels "
                           f"(or latent dimensions) of an image, then average over the images with .mean().")
    recon, kl, loss = got["recon"], got["kl"], got["loss"]
    if _same(kl, want["kl"]) and _same(loss, want["recon"] - want["kl"]):
        return False, "the sign of the KL is flipped: -ELBO = reconstruction + KL, and fit minimizes it."
    if _same(loss, want["recon"]) and not _same(loss, want["loss"]):
        return False, "the KL term is missing from 'loss': -ELBO = reconstruction + KL."
    if _same(kl, 2 * want["kl"]) or _same(kl, -want["kl"]):
        return False, "your KL is not the closed form -1/2 * sum(1 + logvar - mu^2 - exp(logvar)) (exercise 1)."
    if _same(kl, len(x) * want["kl"]) or _same(recon, len(x) * want["recon"]):
        return False, "you summed over the images; average over them with .mean(), so the loss is in nats per image."
    if _same(recon, want["recon"] / 784):
        return False, "you averaged the reconstruction over the pixels; -log p(x|z) sums over the 784 pixels."
    wrong_recons = {
        "z = mu": _vae_terms(model, x, lambda m, lv: m)[0],
        "sigma": _vae_terms(model, x, lambda m, lv: m + lv.exp() * eps)[0],  # sigma^2 taken for sigma
        "squared": _vae_terms(model, x, lambda m, lv: m + (0.5 * lv).exp() * eps,
                              lambda x, logits: (x - torch.sigmoid(logits)).pow(2).flatten(1).sum(1))[0],
        "sigmoid twice": _vae_terms(model, x, lambda m, lv: m + (0.5 * lv).exp() * eps,
                                    lambda x, logits: bernoulli_nll(x, torch.sigmoid(logits)))[0],
    }
    hints = {
        "z = mu": "you decoded mu itself. The ELBO's reconstruction term decodes a sampled z = mu + sigma * eps.",
        "sigma": "you used exp(logvar) = sigma^2 as the spread of z; sigma = exp(logvar / 2).",
        "squared": ("the decoder is Bernoulli: -log p(x|z) is the binary cross-entropy, bernoulli_nll(x, logits), "
                    "not the squared error."),
        "sigmoid twice": ("model.decoder(z) gives logits, and bernoulli_nll applies the sigmoid itself; do not apply "
                          "it first (model.decode(z) already did)."),
    }
    for name, wrong in wrong_recons.items():
        if _same(recon, wrong) and not _same(recon, want["recon"]):
            return False, hints[name]
    if not _same(recon, want["recon"]):
        narrow = _tiny_vae(seed=2, logvar_bias=-30.0)  # sigma ~ 3e-7: z is mu, whatever eps is drawn
        with torch.random.fork_rng():
            right_without_noise = _same(fn(narrow, batch)["recon"], vae_step()(narrow, batch)["recon"])
        if right_without_noise:
            return False, ("your reconstruction term is right when sigma is tiny, but with the same seed your z is "
                           "not the library's: draw eps with torch.randn_like(mu), once, and "
                           "z = mu + exp(logvar / 2) * eps.")
        return False, (f"your reconstruction term is {float(torch.as_tensor(recon).detach()):.2f} nats, the "
                       f"library's {want['recon'].item():.2f} with the same seed: sample z = mu + exp(logvar / 2) * torch.randn_like(mu), then "
                       f"bernoulli_nll(x, model.decoder(z)).mean().")
    if not _same(kl, want["kl"]):
        return False, "the reconstruction is right; 'kl' should be kl_to_standard_normal(mu, logvar).mean()."
    if not _same(loss, want["loss"]):
        return False, "'loss' should be the sum of the two terms, recon + kl."
    if not torch.as_tensor(loss).requires_grad:
        return False, ("your loss carries no gradient; compute it from the model's outputs, without .item() or "
                       ".detach().")
    grads = torch.autograd.grad(loss, list(model.encoder.parameters()), allow_unused=True)
    want_grads = torch.autograd.grad(want["loss"], list(model.encoder.parameters()))
    if any(g is None for g in grads) or not all(torch.allclose(g, w, atol=1e-4) for g, w in zip(grads, want_grads)):
        return False, ("the numbers are right, but the encoder gets other gradients than the library's: z must be "
                       "mu + sigma * eps, computed from mu and logvar (no .detach(), no .sample()).")
    recon, kl, loss = (float(torch.as_tensor(v).detach()) for v in (recon, kl, loss))
    return True, (f"on a test batch, recon {recon:.1f} + KL {kl:.2f} = {loss:.1f} nats, the same "
                  f"numbers and gradients as the library's vae_step with the same seed.")


def log_px_solution(log_w):
    # log (1/K) sum_k w_k over the last dimension, with logsumexp: the w_k = e^(log w_k) are too small for float32
    K = log_w.shape[-1]
    return torch.logsumexp(log_w, dim=-1) - math.log(K)


def _grade_log_px(fn):
    gen = torch.Generator().manual_seed(6)
    # like a VAE's: w = p(x | z) p(z) / q(z | x) ~ e^-120; 4 images x 3 groups x K = 50 samples, as the lesson uses it
    log_w = -120 + 3 * torch.randn(4, 3, 50, generator=gen)
    want = importance_sampled_log_px(log_w)
    got = fn(log_w.clone())
    if got is None:
        return False, "your function returned None; return log (1/K) sum_k w_k over the last dimension of log_w."
    got = torch.as_tensor(got, dtype=torch.float32)
    if got.shape != want.shape:
        return False, (f"for log_w shaped {tuple(log_w.shape)} expected shape {tuple(want.shape)}, got "
                       f"{tuple(got.shape)}: average over the last dimension only (the K samples), dim=-1.")
    if not torch.isfinite(got).all():
        return False, ("your estimate is -inf: e^-120 is 0 in float32, so log(mean(exp(log_w))) underflows. Use "
                       "torch.logsumexp(log_w, dim=-1) - log K.")
    if torch.allclose(got, log_w.mean(-1), atol=1e-3):
        return False, ("that is the mean of the log-weights, an estimate of the ELBO (Jensen: mean of logs <= log "
                       "of the mean). log p(x) is the log of the mean of the weights.")
    if torch.allclose(got, torch.logsumexp(log_w, dim=-1), atol=1e-3):
        return False, "that is the log of the sum of the weights; the mean divides by K: subtract log K."
    if torch.allclose(got, log_w.max(-1).values, atol=1e-3):
        return False, "that is the largest log-weight only; average all K weights (logsumexp, then - log K)."
    if not torch.allclose(got, want, atol=1e-3):
        return False, "not log mean_k w_k yet: logsumexp over the K samples (the last dimension), minus log K."
    return True, "log mean_k w_k, computed stably: what the lesson's estimate of log p(x) uses."


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
    vae_step=Exercise(
        "Write vae_step(model, batch) -> {'loss': recon + kl, 'recon': recon, 'kl': kl}: the batch's negative ELBO, "
        "with z sampled by the reparameterization trick and each term averaged over the images.",
        _grade_vae_step, vae_step_solution,
    ),
    log_px=Exercise(
        "Write log_px(log_w): log (1/K) sum_k exp(log_w[..., k]) over the last dimension (the K samples), stably.",
        _grade_log_px, log_px_solution,
    ),
    beta=Exercise(
        "Training a VAE with beta = 4 instead of 1 gives: (a) sharper reconstructions and more spread-out codes, "
        "(b) a smaller KL, codes closer to N(0, I) and blurrier reconstructions, (c) no change, beta only rescales "
        "the loss?",
        _grade_beta, "'b': beta is the price of information in the code.",
    ),
)
