"""Conditional generative models (lesson 5): tell the generator *which* digit to make.

An unconditional model samples p(x); a conditional one samples p(x | y) for a label y. The label goes in as a
**one-hot vector**: y = 3 becomes (0, 0, 0, 1, 0, 0, 0, 0, 0, 0), one position per class, so no class is "closer"
to another the way the numbers 3 and 4 are.

- **CGAN** (Mirza & Osindero 2014): G(z, y) and D(x, y) both get the one-hot label, so D judges "a real *3*?",
  not only "a real digit?", and G must make the digit it was asked for.
- **CVAE**: encoder q(z | x, y) and decoder p(x | z, y) both get the label. The decoder already knows the class,
  so the code z no longer has to hold it and keeps what is left: the handwriting style.
- **Classifier-free guidance** (Ho & Salimans 2022): one diffusion U-Net learns eps(x_t, t, y) and, with the label
  dropped some of the time, eps(x_t, t, empty). Sampling pushes away from the unconditional prediction:

      eps_guided = eps(x_t, t, empty) + w * (eps(x_t, t, y) - eps(x_t, t, empty))

  w = 0 is the unconditional model, w = 1 the conditional one, w > 1 exaggerates what makes a digit "a 3".

pix2pix, the image-conditioned GAN, lives in `course_lib.pix2pix`.

    >>> one_hot(torch.tensor([3, 0]))
    tensor([[0., 0., 0., 1., 0., 0., 0., 0., 0., 0.],
            [1., 0., 0., 0., 0., 0., 0., 0., 0., 0.]])
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .data import check_images, random_affine
from .gans import GAN, DCGANDiscriminator, DCGANGenerator, check_noise
from .diffusion import DiffusionSchedule, diffusion_loss
from .fastpath import fast_autocast
from .nets import check_finite, check_float32, device_of, evaluating
from .vae import bernoulli_nll, kl_to_standard_normal, reparameterize

NUM_CLASSES = 10


def check_labels(y, n: int | None = None, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Labels as a (B,) long tensor of classes 0 .. num_classes - 1, or a clear error naming the fix.

    >>> check_labels(torch.tensor([7, 10]))
    Traceback (most recent call last):
    ...
    ValueError: Labels must be classes 0 .. 9, got values from 7 to 10. Digits are labelled 0-9; for several digits pass e.g. torch.tensor([3, 7]).
    """
    y = torch.as_tensor(y)
    if y.dim() == 0:
        y = y.reshape(1)
    if y.dim() != 1 or y.is_floating_point():
        raise ValueError(f"Labels must be one whole number per image, shaped (B,), got {tuple(y.shape)} {y.dtype}. "
                         f"Use e.g. torch.tensor([3, 7]), or torch.full((16,), 3) for sixteen 3s.")
    if n is not None and len(y) != n:
        raise ValueError(f"Expected one label per image ({n}), got {len(y)}. Give a label for each image, "
                         f"e.g. torch.full(({n},), 3).")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"Labels must be classes 0 .. {num_classes - 1}, got values from {int(y.min())} to "
                         f"{int(y.max())}. Digits are labelled 0-9; for several digits pass e.g. torch.tensor([3, 7]).")
    return y.long()


def one_hot(y, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """The one-hot code of labels y (B,): a (B, num_classes) float tensor with a single 1 in column y."""
    y = check_labels(y, num_classes=num_classes)
    return F.one_hot(y, num_classes).float()


def class_grid_labels(n_rows: int, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Labels for a grid with one row per noise vector and one column per class: 0, 1, ..., 9, 0, 1, ...

    >>> class_grid_labels(2, num_classes=3)
    tensor([0, 1, 2, 0, 1, 2])
    """
    return torch.arange(num_classes).repeat(n_rows)


def style_share(grid: torch.Tensor, n_rows: int) -> float:
    """How much of a row-per-z, column-per-class grid's variation in *ink* (a stand-in for stroke thickness and
    size) the rows explain, once each digit's own amount of ink is taken out (a 1 always has less ink than an 8).

    With log-ink L[r, c] minus its column mean, the share is C * sum_r mean_c(L[r])^2 / sum L^2: 1 when each z
    sets the thickness for every digit it writes, about 1 / C (0.1 for ten digits) when rows share nothing.

    >>> thick = torch.ones(1, 1, 28, 28)
    >>> grid = torch.cat([thick * 0.9] * 3 + [thick * 0.3] * 3)  # row 1 bold, row 2 thin, 3 digits each
    >>> round(style_share(grid, n_rows=2), 3)
    1.0
    """
    ink = grid.flatten(1).sum(dim=1).clamp_min(1e-6).log().view(n_rows, -1)  # (rows, columns)
    centred = ink - ink.mean(dim=0, keepdim=True)  # each digit's own ink level taken out
    return (centred.shape[1] * centred.mean(dim=1).pow(2).sum() / centred.pow(2).sum().clamp_min(1e-12)).item()


# ---------------------------------------------------------------- CGAN


class ConditionalGenerator(DCGANGenerator):
    """G(z, y): DCGAN's generator whose input is the noise z (B, z_dim) joined to the one-hot label (B, 10)."""

    def __init__(self, z_dim: int = 100, width: int = 32, num_classes: int = NUM_CLASSES):
        super().__init__(z_dim=z_dim + num_classes, width=width)  # the first layer reads z and y side by side
        self.z_dim, self.num_classes = z_dim, num_classes

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_noise(z, self.z_dim)
        zy = torch.cat([z, one_hot(y, self.num_classes).to(z.device)], dim=1)  # (B, z_dim + 10)
        h = self.project(zy).unflatten(1, (-1, 7, 7))  # (B, 2 * width, 7, 7)
        return (self.upsample(h) + 1) / 2


class ConditionalDiscriminator(DCGANDiscriminator):
    """D(x, y): DCGAN's discriminator reading the image with the one-hot label as 10 more channels, each a constant
    28 x 28 plane (all 0, except all 1 in the plane of class y), so every pixel is judged knowing the class."""

    def __init__(self, width: int = 32, num_classes: int = NUM_CLASSES):
        super().__init__(width=width, in_channels=1 + num_classes)
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_images(x)
        planes = one_hot(y, self.num_classes).to(x.device)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.net(torch.cat([2 * x - 1, planes], dim=1)).squeeze(1)  # (B, 1 + 10, 28, 28) -> (B,)


class ConditionalGAN(GAN):
    """A conditional generator and discriminator in one module; `GANStep` trains it on (images, labels) batches.

    >>> cgan = ConditionalGAN(ConditionalGenerator(), ConditionalDiscriminator())
    >>> cgan.sample(4, labels=torch.tensor([0, 1, 2, 3])).shape
    torch.Size([4, 1, 28, 28])
    """

    def __init__(self, generator: ConditionalGenerator, discriminator: ConditionalDiscriminator):
        super().__init__(generator, discriminator)
        self.num_classes = generator.num_classes

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, labels=None) -> torch.Tensor:
        """n images G(z, y), z ~ N(0, I); `labels` (n,) says which digits (default 0, 1, ..., 9, 0, 1, ...)."""
        labels = torch.arange(n) % self.num_classes if labels is None else check_labels(labels, n, self.num_classes)
        return self.decode(self.sample_z(n, generator), labels)

    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """G(z, y) in eval mode: the same z with different y gives the same 'style' as different digits."""
        if y is None:
            raise ValueError("A conditional generator needs a label too: cgan.decode(z, y) with y e.g. torch.tensor([3]).")
        with evaluating(self), torch.no_grad():
            return self.generator(z.to(self.device), check_labels(y, len(z), self.num_classes).to(self.device))


# ---------------------------------------------------------------- CVAE


class ConditionalVAE(nn.Module):
    """q(z | x, y) and p(x | z, y) as MLPs: [784 pixels, 10 one-hot] -> hidden -> (mu, logvar);
    [z, 10 one-hot] -> hidden -> 784 logits.

    >>> cvae = ConditionalVAE(latent_dim=2)
    >>> x, y = torch.rand(5, 1, 28, 28), torch.tensor([0, 1, 2, 3, 4])
    >>> mu, logvar = cvae.encode(x, y)
    >>> mu.shape, cvae.decode(mu, y).shape
    (torch.Size([5, 2]), torch.Size([5, 1, 28, 28]))
    """

    def __init__(self, latent_dim: int = 2, hidden: tuple[int, int] = (512, 256), num_classes: int = NUM_CLASSES):
        super().__init__()
        h1, h2 = hidden
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.encoder = nn.Sequential(
            nn.Linear(784 + num_classes, h1), nn.ReLU(),
            nn.Linear(h1, h2), nn.ReLU(),
            nn.Linear(h2, 2 * latent_dim),  # mu and logvar
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim + num_classes, h2), nn.ReLU(),
            nn.Linear(h2, h1), nn.ReLU(),
            nn.Linear(h1, 784),
            nn.Unflatten(1, (1, 28, 28)),
        )

    def _label(self, y, n: int, device) -> torch.Tensor:
        return one_hot(check_labels(y, n, self.num_classes), self.num_classes).to(device)

    def encode(self, x: torch.Tensor, y) -> tuple[torch.Tensor, torch.Tensor]:
        x = check_images(x).to(device_of(self))
        h = torch.cat([x.flatten(1), self._label(y, len(x), x.device)], dim=1)  # (B, 784 + 10)
        mu, logvar = self.encoder(h).chunk(2, dim=1)
        return mu, logvar

    def logits(self, z: torch.Tensor, y) -> torch.Tensor:
        """The decoder's pre-sigmoid output for codes z (B, latent_dim) and labels y (B,)."""
        check_float32(z, "the code z")
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"This CVAE's codes have {self.latent_dim} numbers: expected z shaped (B, "
                             f"{self.latent_dim}), got {tuple(z.shape)}. For one code use z.view(1, {self.latent_dim}).")
        z = check_finite(z, "the code z").to(device_of(self))
        return self.decoder(torch.cat([z, self._label(y, len(z), z.device)], dim=1))

    def decode(self, z: torch.Tensor, y) -> torch.Tensor:
        """Images in [0, 1] for codes z and labels y."""
        return torch.sigmoid(self.logits(z, y))

    def forward(self, x: torch.Tensor, y) -> torch.Tensor:
        """Reconstruction through the mean code."""
        return self.decode(self.encode(x, y)[0], y)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, labels=None) -> torch.Tensor:
        """n new images of the digits `labels` (default 0, 1, ..., 9, 0, ...): z ~ N(0, I), decoded with y."""
        labels = torch.arange(n) % self.num_classes if labels is None else labels
        return self.decode(torch.randn(n, self.latent_dim, generator=generator), torch.as_tensor(labels))


def cvae_loss(model: ConditionalVAE, x: torch.Tensor, y: torch.Tensor, beta: float = 1.0) -> dict[str, torch.Tensor]:
    """The ELBO with every distribution conditioned on y:

        L_CVAE = -E_{z ~ q(z | x, y)} [log p(x | z, y)]  +  beta * KL( q(z | x, y) || N(0, I) )

    Returns {"loss", "recon", "kl"}, averaged over the batch (nats per image with beta = 1).
    """
    mu, logvar = model.encode(x, y)
    z = reparameterize(mu, logvar)
    recon = bernoulli_nll(x, model.logits(z, y)).mean()
    kl = kl_to_standard_normal(mu, logvar).mean()
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


def cvae_step(beta: float = 1.0, augment: float = 0.0, generator: torch.Generator | None = None):
    """A step function for `fit` on (images, labels) batches: `cvae_loss`, after a small random shift / rotation of
    strength `augment` (as lesson 2's `vae_step`)."""

    def step(model, batch):
        x, y = batch[0], batch[1]
        if augment > 0:
            x = random_affine(x, generator, degrees=8 * augment, shift=0.08 * augment, zoom=0.08 * augment)
        return cvae_loss(model, x, y, beta)

    return step


# ---------------------------------------------------------------- classifier-free guidance


def drop_labels(y: torch.Tensor, p: float, num_classes: int = NUM_CLASSES,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each label by the "empty" label `num_classes` with probability p (label dropout), so one network
    learns both eps(x_t, t, y) and eps(x_t, t, empty).

    >>> drop_labels(torch.tensor([1, 2, 3]), p=1.0)
    tensor([10, 10, 10])
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p is a probability (e.g. 0.1 drops one label in ten), got {p}.")
    y = check_labels(y, num_classes=num_classes)
    u = torch.rand(len(y), generator=generator).to(y.device)
    return torch.where(u < p, torch.full_like(y, num_classes), y)


def cfg_step(schedule: DiffusionSchedule, p_uncond: float = 0.1, generator: torch.Generator | None = None,
             fast: bool = True, min_snr_gamma: float | None = 5.0, image_range: bool = True):
    """A step function for `fit` on (images, labels) batches: Algorithm 1's loss for a class-conditional U-Net, with
    each label dropped (set to "empty") with probability `p_uncond`. `fast` uses the device's fast autocast
    (bfloat16 on CPUs that have it) as in lesson 4; `min_snr_gamma` weighs the noise levels as `diffusion_loss`
    explains (None: the paper's plain loss). image_range=False trains on data used as it is (lesson 6's
    latents) instead of images in [0, 1]."""

    def step(model, batch):
        x0, y = batch[0], batch[1]
        y = drop_labels(y, p_uncond, model.num_classes, generator)
        with fast_autocast(x0.device, enabled=fast):
            return diffusion_loss(lambda x, t: model(x, t, y).float(), schedule, x0, generator, min_snr_gamma,
                                  image_range)

    return step


def guided_eps(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance: eps = eps(x_t, t, empty) + w * (eps(x_t, t, y) - eps(x_t, t, empty)).

    >>> guided_eps(torch.tensor([1.0]), torch.tensor([3.0]), w=2.0)  # 1 + 2 * (3 - 1)
    tensor([5.])
    """
    return eps_uncond + w * (eps_cond - eps_uncond)


CPU_CHUNK = 100  # images per U-Net call when GuidedModel runs on a CPU


class GuidedModel(nn.Module):
    """eps_model(x, t) for the samplers: a class-conditional U-Net guided towards `labels` with scale `w`.

    On a GPU both predictions come from one forward pass over a doubled batch (the images with their labels, then
    with the empty label). On a CPU they come from two passes, which measured faster there: 389-409 ms against
    679-714 ms per step for 300 digits with lesson 5's U-Net on a 2-core Intel Xeon (the doubled batch's activations
    no longer fit the CPU's caches), and 1.1-1.2x faster for lesson 6's latent U-Net and lesson 8's 7 x 7 base.
    For the same reason a CPU pass goes `CPU_CHUNK` images at a time: lesson 5's U-Net took 162-164 ms per 300
    digits in calls of 100 against 201-208 ms in one call of 300 (and 178-183 ms in calls of 30).
    w = 0 skips the conditional pass, w = 1 the unconditional one.

        images, _ = ddim_sample(GuidedModel(unet, labels, w=3.0), schedule, n=len(labels), steps=50)
    """

    def __init__(self, model: nn.Module, labels, w: float, fast: bool = True):
        super().__init__()
        if getattr(model, "num_classes", None) is None:
            raise ValueError("Guidance needs a class-conditional U-Net: build it with UNet(num_classes=10).")
        try:
            scale = float(w)
        except (TypeError, ValueError):
            scale = math.nan
        if not math.isfinite(scale) or scale < 0:
            raise ValueError(f"The guidance scale w is a number: 0 (unconditional), 1 (conditional) or more, e.g. "
                             f"w=3.0; got w={w!r}.")
        self.model, self.w, self.fast = model, scale, fast
        self.labels = check_labels(labels, num_classes=model.num_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if len(x) != len(self.labels):
            raise ValueError(f"GuidedModel holds {len(self.labels)} labels but got {len(x)} images: sample "
                             f"n={len(self.labels)} images, one per label.")
        y = self.labels.to(x.device)
        empty = torch.full_like(y, self.model.num_classes)
        t = torch.as_tensor(t, device=x.device).expand(len(x))  # one timestep per image
        with fast_autocast(x.device, enabled=self.fast):
            if self.w == 0:
                return self._pass(x, t, empty)
            if self.w == 1:
                return self._pass(x, t, y)
            if x.device.type == "cpu":  # two passes: faster than one over the doubled batch on a CPU (docstring)
                eps_c, eps_u = self._pass(x, t, y), self._pass(x, t, empty)
            else:
                eps_c, eps_u = self._pass(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, empty])).chunk(2)
        return guided_eps(eps_u, eps_c, self.w)

    def _pass(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The U-Net's prediction for (x, t, y), on a CPU `CPU_CHUNK` images at a time (see the class docstring)."""
        if x.device.type != "cpu" or len(x) <= CPU_CHUNK:
            return self.model(x, t, y).float()
        chunks = zip(x.split(CPU_CHUNK), t.split(CPU_CHUNK), y.split(CPU_CHUNK))
        return torch.cat([self.model(*chunk).float() for chunk in chunks])
