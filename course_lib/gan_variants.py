"""Two variations on the GAN game (lesson 7).

**EBGAN** (Zhao, Mathieu & LeCun 2017): the discriminator is an autoencoder, and its *energy* is how badly it
rebuilds its input, E(x) = mean ||x - AE(x)||^2 over the pixels. D learns to rebuild real digits well (low energy) and
generated ones badly, up to a margin m; G learns to make images of low energy:

    L_D = E(x) + max(0, m - E(G(z))),        L_G = E(G(z)).

**MSGAN** (Mao et al. 2019), mode seeking for conditional GANs: a conditional G tends to ignore its noise and draw
one image per class. The mode-seeking term asks two noise vectors to give images that differ in proportion:

    L_ms = 1 / (mean |G(z1, y) - G(z2, y)| / mean |z1 - z2| + eps),    L_G = L_cGAN + lambda_ms * L_ms.

    >>> d = EnergyDiscriminator()
    >>> d(torch.rand(3, 1, 28, 28)).shape  # one energy per image
    torch.Size([3])
"""

import torch
import torch.nn.functional as F
from torch import nn

from .data import check_images
from .gans import GAN, GANStep, _apply, d_loss, g_loss_non_saturating

# ---------------------------------------------------------------- EBGAN


class EnergyDiscriminator(nn.Module):
    """An autoencoder as the discriminator: image (B, 1, 28, 28) -> energy (B,), its reconstruction error."""

    def __init__(self, width: int = 32, code: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 28 -> 14
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 14 -> 7
            nn.Flatten(), nn.Linear(2 * width * 7 * 7, code))
        self.decoder = nn.Sequential(
            nn.Linear(code, 2 * width * 7 * 7), nn.LeakyReLU(0.2), nn.Unflatten(1, (2 * width, 7, 7)),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 7 -> 14
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1), nn.Sigmoid())  # 14 -> 28

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(check_images(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.reconstruct(x)).pow(2).flatten(1).mean(dim=1)  # E(x), per image


def ebgan_d_loss(energy_real: torch.Tensor, energy_fake: torch.Tensor, margin: float) -> torch.Tensor:
    """L_D = mean E(x) + mean max(0, m - E(G(z))): rebuild real digits, push generated ones up to the margin.

    >>> ebgan_d_loss(torch.tensor([0.01]), torch.tensor([0.5]), margin=0.1)  # fakes past the margin cost nothing
    tensor(0.0100)
    """
    return energy_real.mean() + F.relu(margin - energy_fake).mean()


def ebgan_g_loss(energy_fake: torch.Tensor) -> torch.Tensor:
    """L_G = mean E(G(z)): make images the discriminator rebuilds well, like real ones."""
    return energy_fake.mean()


class EBGANStep:
    """One EBGAN step for `fit(gan, loader, EBGANStep(gan), None, epochs)` with `gan.discriminator` an
    `EnergyDiscriminator`: an update of D, then one of G, each with its own Adam. Returns
    {"d_loss", "g_loss", "energy_real", "energy_fake"}."""

    def __init__(self, gan: GAN, margin: float = 0.1, lr_d: float = 1e-3, lr_g: float = 1e-3,
                 betas: tuple[float, float] = (0.5, 0.999), generator: torch.Generator | None = None):
        if margin <= 0:
            raise ValueError(f"The margin m must be positive (a typical energy of a bad image), got {margin}.")
        self.gan, self.margin, self.generator = gan, margin, generator
        self.opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr_d, betas=betas)
        self.opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr_g, betas=betas)

    # both optimizers and the random generator, as GANStep's: what a checkpoint needs to resume exactly
    state_dict, load_state_dict = GANStep.state_dict, GANStep.load_state_dict

    def __call__(self, gan: GAN, batch) -> dict[str, float]:
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        G, D = gan.generator, gan.discriminator
        fake = G(gan.sample_z(len(real), self.generator)).detach()
        energy_real, energy_fake = D(real), D(fake)
        loss_d = ebgan_d_loss(energy_real, energy_fake, self.margin)
        _apply(self.opt_d, loss_d)
        loss_g = ebgan_g_loss(D(G(gan.sample_z(len(real), self.generator))))
        _apply(self.opt_g, loss_g)
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item(), "energy_real": energy_real.mean().item(),
                "energy_fake": energy_fake.mean().item()}


# ---------------------------------------------------------------- MSGAN


def mode_seeking_term(fake_1: torch.Tensor, fake_2: torch.Tensor, z_1: torch.Tensor, z_2: torch.Tensor,
                      eps: float = 1e-5) -> torch.Tensor:
    """L_ms = 1 / (mean over the batch of [mean |G(z1) - G(z2)| / mean |z1 - z2|] + eps), which G minimizes:
    two noise vectors far apart should give images far apart.

    >>> z1, z2 = torch.zeros(2, 4), torch.ones(2, 4)
    >>> round(mode_seeking_term(torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5), z1, z2).item(), 3)
    2.0
    """
    images = (fake_1 - fake_2).abs().flatten(1).mean(dim=1)
    noises = (z_1 - z_2).abs().flatten(1).mean(dim=1)
    return 1 / ((images / noises).mean() + eps)


class MSGANStep:
    """One step of a conditional GAN (lesson 5's `ConditionalGAN`) with the mode-seeking term: D as in lesson 5
    (non-saturating loss); G's loss is the non-saturating loss of two fakes per label plus `ms_weight` * L_ms.
    `ms_weight=0` is lesson 5's CGAN step. Returns {"d_loss", "g_loss", "d_real", "d_fake", "mode_seeking"}."""

    def __init__(self, gan: GAN, ms_weight: float = 1.0, lr_d: float = 2e-3, lr_g: float = 2e-3,
                 betas: tuple[float, float] = (0.5, 0.999), generator: torch.Generator | None = None):
        if getattr(gan, "num_classes", None) is None:
            raise ValueError("Mode seeking is for a conditional GAN: build it as lesson 5 does (ConditionalGAN).")
        self.gan, self.ms_weight, self.generator = gan, ms_weight, generator
        self.opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr_d, betas=betas)
        self.opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr_g, betas=betas)

    state_dict, load_state_dict = GANStep.state_dict, GANStep.load_state_dict  # as EBGANStep's

    def __call__(self, gan: GAN, batch) -> dict[str, float]:
        real, y = batch[0], batch[1]
        G, D = (lambda z: gan.generator(z, y)), (lambda x: gan.discriminator(x, y))
        real_out, fake_out = D(real), D(G(gan.sample_z(len(real), self.generator)).detach())
        loss_d = d_loss(real_out, fake_out)
        _apply(self.opt_d, loss_d)
        z_1, z_2 = gan.sample_z(len(real), self.generator), gan.sample_z(len(real), self.generator)
        fake_1, fake_2 = G(z_1), G(z_2)
        ms = mode_seeking_term(fake_1, fake_2, z_1, z_2)
        adversarial = (g_loss_non_saturating(D(fake_1)) + g_loss_non_saturating(D(fake_2))) / 2
        loss_g = adversarial + self.ms_weight * ms
        _apply(self.opt_g, loss_g)
        return {"d_loss": loss_d.item(), "g_loss": adversarial.item(), "d_real": torch.sigmoid(real_out).mean().item(),
                "d_fake": torch.sigmoid(fake_out).mean().item(), "mode_seeking": ms.item()}


@torch.no_grad()
def class_diversity(images: torch.Tensor, labels: torch.Tensor, features) -> float:
    """Mean distance between the `features` of two images of the same class, averaged over the classes: how
    different the samples of one class are from each other (larger: more diverse).

    >>> same = torch.zeros(4, 1, 28, 28)
    >>> class_diversity(same, torch.tensor([0, 0, 1, 1]), lambda x: x.flatten(1))
    0.0
    """
    f = features(images).flatten(1).float().cpu()
    per_class = []
    for label in labels.unique():
        g = f[labels == label]
        if len(g) > 1:
            d = torch.cdist(g, g)
            per_class.append((d.sum() / (len(g) * (len(g) - 1))).item())
    if not per_class:
        raise ValueError("class_diversity needs at least two images of some class.")
    return sum(per_class) / len(per_class)
