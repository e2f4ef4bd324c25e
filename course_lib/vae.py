"""Variational autoencoders (lesson 2, Kingma & Welling 2013).

The encoder no longer gives one code but a Gaussian over codes, q_phi(z | x) = N(mu, diag(sigma^2)) (it outputs `mu`
and `logvar = log sigma^2`); the decoder gives a distribution over images, p_theta(x | z). Training maximizes the
evidence lower bound (ELBO), i.e. minimizes

    L_VAE = -E_{z ~ q(z|x)} [log p(x | z)]  +  beta * KL( q(z | x) || N(0, I) )
            (reconstruction)                   (regularization, beta = 1 for the true ELBO)

    >>> vae = MLPVAE(latent_dim=2)
    >>> x = torch.rand(8, 1, 28, 28)
    >>> mu, logvar = vae.encode(x)
    >>> mu.shape, vae.decode(mu).shape
    (torch.Size([8, 2]), torch.Size([8, 1, 28, 28]))
    >>> sorted(vae_loss(vae, x))
    ['kl', 'loss', 'recon']
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .autoencoders import Autoencoder
from .data import check_images, check_pixels, random_affine
from .nets import check_finite, device_of, evaluating


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """The reparameterization trick: z = mu + sigma * eps with eps ~ N(0, I) and sigma = exp(logvar / 2).

    The randomness sits in eps, outside the network, so gradients flow from z back to mu and logvar.

    >>> reparameterize(torch.zeros(1, 2), torch.zeros(1, 2), eps=torch.tensor([[1.0, -2.0]]))
    tensor([[ 1., -2.]])
    """
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps.to(mu.device)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, sigma^2) || N(0, I) ) = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2), one value per image.

    >>> kl_to_standard_normal(torch.zeros(3, 2), torch.zeros(3, 2)).abs()  # q is already N(0, I): KL = 0
    tensor([0., 0., 0.])
    >>> kl_to_standard_normal(torch.tensor([[3.0]]), torch.zeros(1, 1))  # mean off by 3: mu^2 / 2
    tensor([4.5000])
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


def binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarisation: each pixel becomes ink (1) with probability its grey level, else paper (0).

    The Bernoulli decoder is a distribution over such binary digits; `generator` (on the CPU) makes the draw repeatable.

    >>> binarize(torch.tensor([[[[0.0, 1.0, 0.5]]]]), torch.Generator().manual_seed(0)).unique().tolist()
    [0.0, 1.0]
    """
    images = check_pixels(images, "the images")
    return (torch.rand(images.shape, generator=generator) < images.cpu()).float().to(images.device)


def bernoulli_nll(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) for a Bernoulli decoder, in nats per image: the binary cross-entropy summed over the pixels.

    The Bernoulli decoder is a distribution over *binary* digits (each pixel ink or not, `binarize`). Given grey levels
    as x, the cross-entropy, linear in its target, equals the average of -log p(b | z) over the binary digits b that
    `binarize(x)` draws: a loss on grey digits is the expected negative log-likelihood of the digit binarised at random,
    without the noise of drawing b.

    `logits` are the decoder's pre-sigmoid outputs; the decoded image is sigmoid(logits). x must be pixels in
    [0, 1] (a probability of ink); it is moved to the logits' device.
    """
    x = check_pixels(x, "the images x").to(logits.device)
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)


def gaussian_nll(x: torch.Tensor, logits: torch.Tensor, sigma: float = 0.1) -> torch.Tensor:
    """-log p(x | z) for a Gaussian decoder N(x; sigmoid(logits), sigma^2 I), up to a constant, per image:
    sum_pixels (x - x_hat)^2 / (2 sigma^2). A smaller sigma weighs reconstruction more against the KL."""
    x = check_pixels(x, "the images x").to(logits.device)
    return (x - torch.sigmoid(logits)).pow(2).flatten(1).sum(dim=1) / (2 * sigma**2)


LIKELIHOODS = {"bernoulli": bernoulli_nll, "gaussian": gaussian_nll}
def vae_loss(model: "VAE", x: torch.Tensor, beta: float = 1.0, likelihood: str = "bernoulli") -> dict[str, torch.Tensor]:
    """Negative ELBO averaged over the batch, with its two terms: {"loss": recon + beta * kl, "recon": ..., "kl": ...}.

    With beta = 1 and the Bernoulli decoder, "loss" is the negative ELBO in nats per image: for binary digits an upper
    bound on -log p(x), for grey ones that bound averaged over their random binarisations (`bernoulli_nll`). One z is
    sampled per image (a one-sample Monte Carlo estimate of the expectation).
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"Unknown likelihood {likelihood!r}. Use one of {', '.join(LIKELIHOODS)}.")
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar)
    recon = LIKELIHOODS[likelihood](x, model.decoder(z)).mean()
    kl = kl_to_standard_normal(mu, logvar).mean()
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


def vae_step(beta: float = 1.0, likelihood: str = "bernoulli", augment: float = 0.0,
             generator: torch.Generator | None = None):
    """A step function for `fit`: the batch's negative ELBO (as `vae_loss`). With `augment` > 0 each digit is first
    moved by a small random rotation / shift / zoom of that strength, which keeps a VAE trained on few digits from
    memorizing them."""

    def step(model, batch):
        x = batch[0]
        if augment > 0:
            x = random_affine(x, generator, degrees=8 * augment, shift=0.08 * augment, zoom=0.08 * augment)
        return vae_loss(model, x, beta, likelihood)

    return step


class VAE(Autoencoder):
    """What the VAEs share: `encode(x) -> (mu, logvar)`, `decode(z) -> image in [0, 1]`, `sample(n)` from the prior."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = check_images(x).to(device_of(self))
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # the encoder outputs 2 * latent_dim numbers
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        z = self.check_code(z).to(device_of(self))
        return torch.sigmoid(self.decoder(z))  # the decoder outputs logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction through the mean code (no sampling): what the VAE 'sees' in x."""
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new images: z ~ N(0, I), decoded (in eval mode, so BatchNorm uses its running statistics)."""
        with evaluating(self):
            return self.decode(torch.randn(n, self.latent_dim, generator=generator).to(device_of(self)))


class MLPVAE(VAE):
    """784 -> hidden -> (mu, logvar) ; latent -> hidden -> 784 logits."""

    def __init__(self, latent_dim: int = 2, hidden: tuple[int, int] = (512, 256)):
        super().__init__()
        h1, h2 = hidden
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, h1), nn.ReLU(),
            nn.Linear(h1, h2), nn.ReLU(),
            nn.Linear(h2, 2 * latent_dim),  # mu and logvar
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, h2), nn.ReLU(),
            nn.Linear(h2, h1), nn.ReLU(),
            nn.Linear(h1, 784),
            nn.Unflatten(1, (1, 28, 28)),
        )


class ConvVAE(VAE):
    """The convolutional autoencoder of lesson 1 with a probabilistic code: 28 -> 14 -> 7 -> (mu, logvar)."""

    def __init__(self, latent_dim: int = 16, channels: int = 32):
        super().__init__()
        c = channels
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),  # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(),  # (B, 2c, 7, 7)
            nn.Flatten(),
            nn.Linear(2 * c * 7 * 7, 2 * latent_dim),  # mu and logvar
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 2 * c * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),  # (B, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),  # (B, 1, 28, 28) logits
        )


@torch.no_grad()
def negative_elbo(model: VAE, images: torch.Tensor, samples: int = 1, batch_size: int = 500) -> float:
    """Test negative ELBO in nats per image (Bernoulli decoder, beta = 1), averaged over `images`: of binary digits
    (`binarize`), or for grey ones its average over their random binarisations (`bernoulli_nll`).

    Evaluated in eval mode with a fixed seed so the number is repeatable.
    """
    device = device_of(model)
    total = 0.0
    # fork_rng leaves the global seed as it was
    with evaluating(model), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        for x in images.split(batch_size):
            x = x.to(device)
            total += sum(vae_loss(model, x)["loss"].item() * len(x) for _ in range(samples)) / samples
    return total / len(images)


def log_normal(z: torch.Tensor, mu: torch.Tensor | float = 0.0, logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)) = -1/2 sum_j (log 2 pi + logvar_j + (z_j - mu_j)^2 / exp(logvar_j)), summed
    over the last dimension (one value per code).

    >>> round(float(log_normal(torch.zeros(1, 2))), 4)  # log of 1 / (2 pi)
    -1.8379
    """
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(dim=-1)


@torch.no_grad()
def log_importance_weights(model: VAE, images: torch.Tensor, samples: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x) for `samples` codes z_k ~ q(z | x) per image: shape
    (n_images, samples), in nats (Bernoulli decoder, as in the loss; p(z) = N(0, I)). The images should be binary
    (`binarize`): only then is p(x | z) a probability, and the estimate from the weights a log-likelihood.

    Since p(x) = E_{z ~ q(z|x)} [p(x | z) p(z) / q(z | x)], the weights w_k estimate p(x); the mean of the log w_k
    is a Monte Carlo estimate of the ELBO (`importance_sampled_log_px` turns them into log p(x)). Evaluated in eval
    mode; `generator` (on the CPU) draws the z_k, so the numbers repeat.

    >>> log_w = log_importance_weights(MLPVAE(latent_dim=2), torch.rand(3, 1, 28, 28), samples=10)
    >>> log_w.shape
    torch.Size([3, 10])
    """
    check_images(images)
    rows = []
    with evaluating(model):
        for x in images.split(1):  # one image at a time: `samples` codes of it go through the decoder together
            mu, logvar = model.encode(x)  # (1, d) each
            eps = torch.randn(samples, mu.shape[1], generator=generator).to(mu.device)
            z = reparameterize(mu, logvar, eps)  # (samples, d), z_k ~ q(z | x)
            log_px_z = -bernoulli_nll(x.expand(samples, -1, -1, -1), model.decoder(z))  # log p(x | z_k)
            rows.append(log_px_z + log_normal(z) - log_normal(z, mu, logvar))  # + log p(z_k) - log q(z_k | x)
    return torch.stack(rows).cpu()


def importance_sampled_log_px(log_w: torch.Tensor) -> torch.Tensor:
    """The importance-sampled estimate of log p(x) from K weights (the last dimension of `log_w`):

        log p(x) ~ log (1/K) sum_{k=1..K} p(x | z_k) p(z_k) / q(z_k | x) = logsumexp_k(log w_k) - log K

    computed with logsumexp, since the w_k themselves (e^-100 and smaller) are below what float32 can hold. Its
    expectation is the ELBO for K = 1, never falls as K grows, and reaches log p(x) as K -> infinity (Burda et al.
    2016): by Jensen's inequality, E[log mean_k w_k] <= log E[mean_k w_k] = log p(x).

    >>> importance_sampled_log_px(torch.tensor([[-100.0, -100.0], [-101.0, -99.0]]))  # log((e^-101 + e^-99) / 2)
    tensor([-100.0000,  -99.5662])
    """
    return torch.logsumexp(log_w, dim=-1) - math.log(log_w.shape[-1])


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: walks along the great circle between z0 and z1, keeping the norm that samples of
    N(0, I) have (a straight line through the middle passes near the origin, which is rare under the prior).

    z0 and z1 are single non-zero codes (1-D). Two cases have no single great circle and are refused with a message:
    a zero code (it has no direction), and opposite codes (z1 = -c z0: every great circle through both would do).

    >>> slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([0.5]))
    tensor([[0.7071, 0.7071]])
    """
    if z0.dim() != 1 or z1.dim() != 1 or z0.shape != z1.shape:
        raise ValueError(f"slerp takes two single codes of the same size (1-D), got shapes {tuple(z0.shape)} and "
                         f"{tuple(z1.shape)}. For rows of a batch use slerp(z[0], z[1], t).")
    check_finite(z0, "the code z0"), check_finite(z1, "the code z1")
    z1 = z1.to(z0.device)
    if z0.norm() == 0 or z1.norm() == 0:
        raise ValueError("slerp needs two non-zero codes: a zero code has no direction to walk along. Use "
                         "lerp(z0, z1, t) for a straight line, or pick another code.")
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device).reshape(-1, 1)
    cos = ((z0 / z0.norm()) * (z1 / z1.norm())).sum().clamp(-1, 1)
    if cos < -1 + 1e-6:
        raise ValueError("z0 and z1 point in opposite directions, so no single great circle joins them (and the "
                         "straight line passes through 0). Use lerp(z0, z1, t), or go through a third code: "
                         "slerp(z0, z_mid, t) then slerp(z_mid, z1, t).")
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation z = (1 - t) z0 + t z1, one row per value of t.

    >>> lerp(torch.tensor([0.0, 2.0]), torch.tensor([2.0, 0.0]), torch.tensor([0.5]))
    tensor([[1., 1.]])
    """
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device).reshape(-1, 1)
    return (1 - t) * z0 + t * z1.to(z0.device)
