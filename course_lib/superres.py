"""Super-resolution (lesson 8): from a 7 x 7 digit back to 28 x 28, three ways.

The task: a digit y (B, 1, 28, 28) is shrunk 4 x by averaging 4 x 4 blocks (`downscale`), to x (B, 1, 7, 7). Many
28 x 28 digits shrink to the same x, so "undoing" it is a guess.

- **bicubic** (`upscale_bicubic`): a fixed smooth interpolation; no learning, no guess about strokes.
- **SRResNet** (Ledig et al. 2017), trained with the MSE: the network that minimises the mean squared error predicts
  the *average* of every digit that fits x. An average of sharp strokes is a blurred stroke: best PSNR, blurred look.
- **SRGAN**: the same generator, trained with a *perceptual* loss (the squared distance between a classifier's
  feature maps of G(x) and y) plus an adversarial loss (a discriminator tells real digits from upscaled ones). It
  commits to one sharp digit that fits x: a worse PSNR (a sharp stroke a pixel off costs more than a blur), a more
  realistic digit.
- **SR3** (Saharia et al. 2021): a diffusion model whose U-Net also sees the bicubic upscale (`UNet(cond_channels=1)`);
  each sample is another digit that fits x, so several samples show the uncertainty the MSE averages away. It
  predicts v rather than eps (see the note at `v_target`).

Scores: `psnr` (pixel fidelity, higher is better) and `ssim` (local structure, torchmetrics), next to the Frechet
distance and the class accuracy of `course_lib.metrics` (realism, and whether the digit is still the same digit).

    >>> y = torch.rand(2, 1, 28, 28)
    >>> x = downscale(y)
    >>> x.shape, upscale_bicubic(x).shape, SRResNet()(x).shape
    (torch.Size([2, 1, 7, 7]), torch.Size([2, 1, 28, 28]), torch.Size([2, 1, 28, 28]))
"""

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure

from .data import check_batch
from .diffusion import DiffusionSchedule, _at, ddim_sample, q_sample, to_model_range
from .fastpath import fast_autocast
from .gans import DCGANDiscriminator, _apply, d_loss, g_loss_non_saturating

FACTOR = 4  # 28 x 28 -> 7 x 7


# ---------------------------------------------------------------- the task and its scores


def downscale(y: torch.Tensor, factor: int = FACTOR) -> torch.Tensor:
    """The low-resolution input: each factor x factor block of pixels averaged into one, (B, C, 28, 28) -> (B, C, 7, 7).

    >>> downscale(torch.ones(1, 1, 28, 28)).shape
    torch.Size([1, 1, 7, 7])
    """
    return F.avg_pool2d(check_batch(y), factor)


def upscale_bicubic(x: torch.Tensor, factor: int = FACTOR) -> torch.Tensor:
    """Bicubic interpolation back up, clipped to [0, 1] (bicubic overshoots a little at edges): the baseline, and
    what SR3 is conditioned on.

    >>> upscale_bicubic(torch.full((1, 1, 7, 7), 0.5)).unique()
    tensor([0.5000])
    """
    return F.interpolate(check_batch(x), scale_factor=factor, mode="bicubic", align_corners=False).clamp(0, 1)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for pixels in [0, 1], per image, then averaged over the batch:

        PSNR = 10 log10(1 / MSE),   MSE = mean over the image's pixels of (prediction - target)^2

    +6 dB is half the error's amplitude. A perfect prediction is capped at 100 dB.

    >>> round(psnr(torch.full((1, 1, 2, 2), 0.1), torch.zeros(1, 1, 2, 2)), 3)  # MSE 0.01
    20.0
    """
    _check_pair(prediction, target)
    mse = (prediction - target).pow(2).flatten(1).mean(dim=1).clamp(min=1e-10)
    return (10 * torch.log10(1 / mse)).mean().item()


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Structural similarity (Wang et al. 2004; torchmetrics, 11 x 11 Gaussian window): compares local means,
    contrasts and correlations instead of single pixels; 1 for identical images.

    >>> x = torch.rand(2, 1, 28, 28)
    >>> round(ssim(x, x), 4)
    1.0
    """
    _check_pair(prediction, target)
    return structural_similarity_index_measure(prediction.float(), target.float(), data_range=1.0).item()


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(prediction, torch.Tensor) or not isinstance(target, torch.Tensor) \
            or prediction.shape != target.shape or prediction.dim() != 4:
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in (prediction, target)]
        raise ValueError(f"Compare a batch of predictions with the batch of targets, both shaped (B, C, H, W) alike; "
                         f"got {shapes[0]} and {shapes[1]}. Upscale the input first, e.g. upscale_bicubic(x).")


# ---------------------------------------------------------------- SRResNet: the generator of both MSE and SRGAN


class ResidualBlock(nn.Module):
    """conv 3 x 3 - BatchNorm - PReLU - conv 3 x 3 - BatchNorm, plus the input: SRResNet's block."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.PReLU(width),
                                  nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.body(h)


class SRResNet(nn.Module):
    """x (B, 1, 7, 7) in [0, 1] -> (B, 1, 28, 28) in [0, 1], SRResNet scaled down: all the thinking happens at the small
    size (`blocks` residual blocks of `width` channels, with a skip around them), then two sub-pixel upsamplings
    (a convolution to 4 x the channels, rearranged into 2 x the size by `PixelShuffle`) 7 -> 14 -> 28.

    >>> SRResNet()(torch.rand(3, 1, 7, 7)).shape
    torch.Size([3, 1, 28, 28])
    """

    def __init__(self, width: int = 32, blocks: int = 4):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(1, width, 5, padding=2), nn.PReLU(width))
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)],
                                  nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.upsample = nn.Sequential(*[nn.Sequential(nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2),
                                                      nn.PReLU(width)) for _ in range(int(math.log2(FACTOR)))])
        self.tail = nn.Conv2d(width, 1, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_batch(x)
        if x.shape[1:] != (1, 7, 7):
            raise ValueError(f"SRResNet upscales 7 x 7 digits shaped (B, 1, 7, 7), got {tuple(x.shape)}. Shrink 28 x 28 "
                             f"digits first with downscale(y).")
        h = self.head(2 * x.to(self.tail.weight.device) - 1)  # (B, w, 7, 7)
        h = h + self.body(h)  # the skip around the blocks
        return torch.sigmoid(self.tail(self.upsample(h)))  # (B, w, 28, 28) -> (B, 1, 28, 28)


def sr_mse_step(model: SRResNet, batch) -> torch.Tensor:
    """A step function for `fit`: the MSE between the upscaled 7 x 7 digit and the digit itself."""
    y = batch[0] if isinstance(batch, (tuple, list)) else batch
    y = y.to(model.tail.weight.device)
    return F.mse_loss(model(downscale(y)), y)


# ---------------------------------------------------------------- SRGAN


class PerceptualFeatures(nn.Module):
    """phi(y): a digit classifier's feature maps after its fourth convolution (B, 64, 14, 14), a frozen copy. SRGAN
    compares images here (VGG's feature maps in the paper) rather than pixel by pixel: a stroke one pixel off changes
    the pixels a lot but these features little. The lesson gives it the course's classifier,
    `PerceptualFeatures(metrics.digit_classifier())`; the cross-check of realism is then the *second* feature network.

    >>> from course_lib.classifiers import DigitClassifier
    >>> PerceptualFeatures(DigitClassifier())(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 64, 14, 14])
    """

    def __init__(self, classifier: nn.Module):
        super().__init__()
        if not hasattr(classifier, "body"):
            raise ValueError("PerceptualFeatures takes a DigitClassifier, e.g. PerceptualFeatures(digit_classifier()) "
                             "with digit_classifier from course_lib.metrics.")
        self.net = copy.deepcopy(classifier.body[:12]).eval().requires_grad_(False)

    def train(self, mode: bool = True):  # always in eval mode: BatchNorm keeps its statistics
        return super().train(False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y.to(next(self.net.parameters()).device))


class SRGAN(nn.Module):
    """An SRResNet generator and a discriminator of real vs upscaled 28 x 28 digits (lesson 3's DCGAN
    discriminator), in one module so that `fit` and the checkpoints handle both. `upscale(x)` runs G in eval mode.

    >>> SRGAN().upscale(torch.rand(2, 1, 7, 7)).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(self, generator: SRResNet | None = None, discriminator: nn.Module | None = None):
        super().__init__()
        self.generator = generator or SRResNet()
        self.discriminator = discriminator or DCGANDiscriminator(width=32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x)

    @torch.no_grad()
    def upscale(self, x: torch.Tensor) -> torch.Tensor:
        was = self.generator.training
        self.generator.eval()
        try:
            return self.generator(x)
        finally:
            self.generator.train(was)


class SRGANStep:
    """One SRGAN step for `fit(model, loader, SRGANStep(model), optimizer=None, epochs)`, on batches of digits y:

    1. D: binary cross-entropy, real y against G(downscale(y))   (`gans.d_loss`);
    2. G: || phi(G(x)) - phi(y) ||^2 + adv_weight * -log D(G(x))   (content + adversarial, Ledig et al. eq. 3-6),

    phi = `features`, a `PerceptualFeatures` (the step owns it, as it owns both optimizers: it is part of how the model
    is trained, not of the model). SRGAN starts G from the trained MSE network (so D faces good upscales from the
    start), as the paper does.
    Returns {"g_loss", "content", "adversarial", "d_loss", "d_real", "d_fake", "mse"}.
    """

    def __init__(self, model: SRGAN, features: nn.Module, adv_weight: float = 1e-2, lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.999)):
        if not isinstance(features, PerceptualFeatures):
            raise ValueError("SRGANStep(model, features, ...) needs the perceptual features, e.g. "
                             "PerceptualFeatures(digit_classifier()) with digit_classifier from course_lib.metrics.")
        if adv_weight < 0:
            raise ValueError(f"adv_weight weighs the adversarial loss and cannot be negative, got {adv_weight}.")
        self.adv_weight, self.features = adv_weight, features.to(model.generator.tail.weight.device)
        self.opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=betas)
        self.opt_g = torch.optim.Adam(model.generator.parameters(), lr=lr, betas=betas)

    def state_dict(self) -> dict:
        return {"opt_d": self.opt_d.state_dict(), "opt_g": self.opt_g.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])

    def __call__(self, model: SRGAN, batch) -> dict[str, float]:
        y = batch[0] if isinstance(batch, (tuple, list)) else batch
        y = y.to(model.generator.tail.weight.device)
        G, D, phi = model.generator, model.discriminator, self.features
        fake = G(downscale(y))
        real_out, fake_out = D(y), D(fake.detach())
        loss_d = d_loss(real_out, fake_out)
        d_ok = _apply(self.opt_d, loss_d)
        content = F.mse_loss(phi(fake), phi(y))
        adversarial = g_loss_non_saturating(D(fake))
        loss_g = content + self.adv_weight * adversarial
        if d_ok:
            _apply(self.opt_g, loss_g)
        return {"g_loss": loss_g.item(), "content": content.item(), "adversarial": adversarial.item(),
                "d_loss": loss_d.item(), "d_real": torch.sigmoid(real_out).mean().item(),
                "d_fake": torch.sigmoid(fake_out).mean().item(), "mse": F.mse_loss(fake, y).item()}


# ---------------------------------------------------------------- SR3: diffusion conditioned on the upscale
#
# SR3's U-Net predicts v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0 (Salimans & Ho 2022) instead of lesson 4's eps. Why:
# with the condition, the network knows the digit's layout from the start, but an eps-prediction carries it only in a
# tiny correction, x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t), whose error is multiplied by
# 1 / sqrt(abar_t) (about 160 at t = 999 on the linear schedule). Measured on the bundled digits, 10 epochs each: eps
# gave a Frechet distance of 10,263 and 48% class accuracy, v gave 116 and 92%. The samplers still take an eps_model:
# `eps_from_v` converts.


def v_target(schedule: DiffusionSchedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0: noise at small t, (minus) the image at large t.

    >>> s = DiffusionSchedule(T=1000)
    >>> v_target(s, torch.ones(1, 1, 2, 2), torch.tensor([999]), torch.zeros(1, 1, 2, 2)).mean().round(decimals=2)
    tensor(-1.)
    """
    return _at(schedule.sqrt_alpha_bars, t, x0) * eps - _at(schedule.sqrt_one_minus_alpha_bars, t, x0) * x0


def eps_from_v(schedule: DiffusionSchedule, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The noise a v-prediction implies: eps = sqrt(abar_t) v + sqrt(1 - abar_t) x_t (from x_t and v's definitions)."""
    return _at(schedule.sqrt_alpha_bars, t, x_t) * v + _at(schedule.sqrt_one_minus_alpha_bars, t, x_t) * x_t


def sr3_condition(x: torch.Tensor) -> torch.Tensor:
    """What SR3's U-Net sees next to x_t: the bicubic upscale of the 7 x 7 input, in the model's range [-1, 1]."""
    return to_model_range(upscale_bicubic(x))


def sr3_step(schedule: DiffusionSchedule, generator: torch.Generator | None = None, fast: bool = True) -> Callable:
    """A step function for `fit` on batches of digits y, for a U-Net built with `cond_channels=1`:

        L = E_{t, eps} || v - v_theta(sqrt(abar_t) y + sqrt(1 - abar_t) eps, t, upscale(downscale(y))) ||^2

    with y in [-1, 1] and v = `v_target` (see the note above on why v).
    """

    def step(model, batch):
        y = batch[0] if isinstance(batch, (tuple, list)) else batch
        device = model.stem.weight.device
        x0 = to_model_range(check_batch(y).to(device))
        cond = sr3_condition(downscale(y)).to(device)
        t = torch.randint(0, schedule.T, (len(y),), generator=generator).to(device)
        eps = torch.randn(x0.shape, generator=generator).to(device)
        with fast_autocast(device, enabled=fast):
            v = model(q_sample(schedule, x0, t, eps), t, cond=cond).float()
        return F.mse_loss(v, v_target(schedule, x0, t, eps))

    return step


@torch.no_grad()
def sr3_upscale(model: nn.Module, schedule: DiffusionSchedule, x: torch.Tensor, steps: int = 50,
                generator: torch.Generator | None = None, samples: int = 1, fast: bool = True) -> torch.Tensor:
    """`samples` SR3 upscales of each 7 x 7 digit in x (B, 1, 7, 7), by DDIM in `steps` steps: (B, 1, 28, 28), or
    (B, samples, 1, 28, 28) when samples > 1 (a different guess each, from different noise).

        several = sr3_upscale(sr3, schedule, downscale(digits[:4]), samples=6)  # (4, 6, 1, 28, 28)
    """
    device = model.stem.weight.device
    cond = sr3_condition(x).to(device).repeat_interleave(samples, dim=0)  # image i's samples next to each other

    def eps_model(x_t, t):
        with fast_autocast(device, enabled=fast):
            v = model(x_t, t, cond=cond).float()
        return eps_from_v(schedule, x_t, t, v)

    images = ddim_sample(eps_model, schedule, n=len(cond), steps=steps, generator=generator, device=device)[0]
    return images if samples == 1 else images.view(len(x), samples, *images.shape[1:])
