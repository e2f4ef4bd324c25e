"""How the course trains each model, written once.

Two kinds of numbers live here (the first in `course_lib/settings.py`, read through this module), and nowhere else:

- `lesson_settings(lesson, profile)`: how much data and training a lesson gets in a profile (`smoke`, `cpu`, `gpu`):
  training images, epochs, batch size, the U-Nets' widths. `start_lesson` hands the lesson its row.
- one *recipe* per trained model (`DCGAN`, `DDPM`, `CVAE`, ...): the architecture, the optimizer's learning rate and
  every other setting of its training (EMA decay, Min-SNR gamma, GAN loss, augmentation, ...).

A lesson shows the code and reads the numbers:

    R = recipes.DDPM
    model = R.build(S).to(device)                      # the U-Net, at this profile's widths
    optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
    ema = EMA(model, decay=R.ema_decay)

The benchmark, the bundle of pretrained weights and the peer race build their models from the same recipes, so
changing a lesson's learning rate is one edit, here. A recipe's `name` is also the name of its bundled weights.

    >>> DDPM.lr, DDPM.ema_decay, DDPM.min_snr_gamma
    (0.001, 0.995, 5.0)
    >>> lesson_settings("diffusion", "smoke").channels
    (8, 16, 16)
    >>> DDPM.build(lesson_settings("diffusion", "smoke")).channels
    (8, 16, 16)
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .autoencoders import ConvAutoencoder, MLPAutoencoder
from .conditional import ConditionalDiscriminator, ConditionalGAN, ConditionalGenerator, ConditionalVAE
from .config import PROFILES, one_thread
from .diffusion_theory import TimeMLP
from .flow import FlowNet
from .gan_variants import EnergyDiscriminator
from .gans import GAN, DCGANDiscriminator, DCGANGenerator, GANStep, MLPDiscriminator, MLPGenerator
from .latent_diffusion import LatentAutoencoder
from .pix2pix import PatchDiscriminator, Pix2Pix, Pix2PixGenerator
from .pretrained import load_into, train_or_load
from .progressive import ProgressiveDiscriminator, ProgressiveGenerator
from .scores import LevelMLP, noise_levels
from .settings import LESSONS, LessonSettings, lesson_settings  # noqa: F401 (the lessons' settings, read from here too)
from .singan import SinGAN, terrain_image
from .stylegan import StyleGenerator
from .superres import SRGAN, SRResNet
from .toy2d import CoverageLog, toy_loader
from .text2image import MiniCLIP, TextUNet
from .training import fit
from .unet import UNet
from .vae import ConvVAE, MLPVAE
from .vqvae import VQVAE, CodePrior

# ---------------------------------------------------------------- recipes: what to build, and how it is trained


@dataclass(frozen=True)
class Recipe:
    """How the course trains one model: `build(settings)` makes the network at a profile's sizes; `lr` is Adam's
    learning rate; with `cosine_lr` it falls along a half cosine over the run (`CosineSchedule`)."""

    name: str  # "lesson/model": also the name of its bundled pretrained weights
    build: Callable[[LessonSettings], nn.Module] = field(repr=False)
    lr: float
    cosine_lr: bool = False

    @property
    def lesson(self) -> str:
        """The lesson whose settings (data, epochs, batch size, widths) the model is trained with."""
        return self.name.split("/")[0]

    def settings(self, profile: str) -> LessonSettings:
        return lesson_settings(self.lesson, profile)


@dataclass(frozen=True)
class VAERecipe(Recipe):
    """A VAE: the loss weighs the KL by `beta`; training digits are moved by a random affine of strength `augment`."""

    beta: float = 1.0
    augment: float = 0.0


@dataclass(frozen=True)
class GANRecipe(Recipe):
    """A GAN trained by `GANStep`: `loss` (see `gans.LOSSES`), `lr` for D and `lr_g` for G (None: the same), Adam's
    `betas`, `d_steps` updates of D per update of G, the WGAN-GP weight `gp_weight`, both sides of D's input
    augmented with strength `augment`, and G and D computed in bfloat16 where the device has it if `fast`."""

    loss: str = "non_saturating"
    lr_g: float | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = 1
    gp_weight: float = 10.0
    augment: float = 0.0
    fast: bool = False

    def step_args(self) -> dict:
        """The keyword arguments of `GANStep` (the random generator aside)."""
        return dict(loss=self.loss, lr_d=self.lr, lr_g=self.lr_g or self.lr, betas=self.betas, d_steps=self.d_steps,
                    gp_weight=self.gp_weight, augment=self.augment, fast=self.fast)


@dataclass(frozen=True)
class DiffusionRecipe(Recipe):
    """A noise-predicting U-Net: schedule `schedule` with `T` steps, Algorithm 1's loss weighted by Min-SNR
    `min_snr_gamma` (None: the paper's plain loss), weights averaged with EMA `ema_decay`; for a guided model, the
    label dropped with probability `p_uncond`."""

    T: int = 1000
    schedule: str = "linear"
    ema_decay: float = 0.995
    min_snr_gamma: float | None = 5.0
    p_uncond: float = 0.1


@dataclass(frozen=True)
class FlowRecipe(Recipe):
    """A velocity network trained by flow matching: weights averaged with EMA `ema_decay`; for a guided model, the
    label dropped with probability `p_uncond`; reflow's (noise, image) pairs made by `pair_solver` (method, steps)."""

    ema_decay: float = 0.995
    p_uncond: float = 0.1
    pair_solver: tuple[str, int] = ("heun", 4)


@dataclass(frozen=True)
class ScoreRecipe(Recipe):
    """A noise-conditional score network on 2-D points: `n_levels` noise levels falling geometrically from
    `sigma_max` to `sigma_min`, sampled by annealed Langevin with `langevin_steps` steps per level and step size
    `langevin_eps` at the smallest level."""

    sigma_max: float = 3.0
    sigma_min: float = 0.05
    n_levels: int = 10
    langevin_steps: int = 100
    langevin_eps: float = 5e-4

    def sigmas(self) -> torch.Tensor:
        return noise_levels(self.sigma_max, self.sigma_min, self.n_levels)


@dataclass(frozen=True)
class EBGANRecipe(Recipe):
    """EBGAN: energies (reconstruction errors) of generated images are pushed up to the margin `margin`."""

    margin: float = 0.1
    betas: tuple[float, float] = (0.5, 0.999)


@dataclass(frozen=True)
class MSGANRecipe(GANRecipe):
    """A conditional GAN with the mode-seeking term, weighted by `ms_weight` (0: lesson 5's plain CGAN)."""

    ms_weight: float = 1.0


@dataclass(frozen=True)
class SinGANRecipe(Recipe):
    """SinGAN: a pyramid of small GANs for one image, trained scale by scale by `singan.train_singan`, with
    `steps_per_scale` steps per scale in each profile; per step `d_steps` critic and `g_steps` generator updates (Adam,
    `lr`, `betas`), the WGAN-GP weight `gp_weight`, the reconstruction weight `rec_weight` (alpha) and each scale's
    noise strength sigma_n = `noise_scale` * RMSE of the coarser reconstruction.

    >>> SINGAN.steps("smoke") < SINGAN.steps("cpu") < SINGAN.steps("gpu")
    True
    """

    steps_per_scale: tuple[tuple[str, int], ...] = ()
    betas: tuple[float, float] = (0.5, 0.999)
    d_steps: int = 3
    g_steps: int = 3
    gp_weight: float = 0.1
    rec_weight: float = 10.0
    noise_scale: float = 0.1

    def steps(self, profile: str) -> int:
        """Training steps per scale in `profile`."""
        if profile not in PROFILES:
            raise ValueError(f"Unknown profile {profile!r}. Use one of {', '.join(PROFILES)}.")
        return dict(self.steps_per_scale)[profile]

    def train_args(self) -> dict:
        """The keyword arguments of `train_singan` (besides the pyramid, the steps and the random generator)."""
        return dict(lr=self.lr, betas=self.betas, d_steps=self.d_steps, g_steps=self.g_steps,
                    gp_weight=self.gp_weight, rec_weight=self.rec_weight, noise_scale=self.noise_scale)


@dataclass(frozen=True)
class SRGANRecipe(Recipe):
    """SRGAN: G's loss = perceptual content + `adv_weight` * adversarial; both sides Adam with `lr` and `betas`; G starts
    from the trained MSE network `start_from`."""

    adv_weight: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)
    start_from: str = "restoration/sr_mse"


@dataclass(frozen=True)
class Pix2PixRecipe(Recipe):
    """pix2pix: loss = cGAN + `l1_weight` * L1 when `adversarial`, L1 alone otherwise; `fast` as `GANRecipe`'s."""

    l1_weight: float = 100.0
    adversarial: bool = True
    fast: bool = False

    def step_args(self) -> dict:
        """The keyword arguments of `Pix2PixStep` (the task aside)."""
        return dict(l1_weight=self.l1_weight, adversarial=self.adversarial, lr=self.lr, fast=self.fast)


# Lesson 1: autoencoders (Adam 2e-3; the codes' sizes are what the lesson compares)
AE2 = Recipe("autoencoders/ae2", lambda s: MLPAutoencoder(latent_dim=2), lr=2e-3)
AE16 = Recipe("autoencoders/conv16", lambda s: ConvAutoencoder(latent_dim=16), lr=2e-3)
DAE = Recipe("autoencoders/dae", lambda s: ConvAutoencoder(latent_dim=32), lr=2e-3)

# Lesson 2: VAEs, and the autoencoders of the same sizes they are compared with (Adam 2e-3 along a cosine)
VAE2 = VAERecipe("vae/vae2", lambda s: MLPVAE(latent_dim=2), lr=2e-3, cosine_lr=True)
VAE2_BETA = {beta: VAERecipe(f"vae/vae2_beta{beta:g}", lambda s: MLPVAE(latent_dim=2), lr=2e-3, cosine_lr=True,
                             beta=beta) for beta in (0.2, 5.0)}
VAE_AE2 = Recipe("vae/ae2", lambda s: MLPAutoencoder(latent_dim=2), lr=2e-3, cosine_lr=True)
# No augmentation: with each digit moved a little at random (strength 0.3) the test negative ELBO was 0.8 nats lower
# (benchmark `vae`: 109.7 vs 110.5), but the prior's samples were further from real digits on both feature networks
# (benchmark: Frechet distance 857.9 vs 645.9; second network 21.4 vs 15.1 in a separate run, 1,000 samples each)
# An 8-number code: with 16 numbers the test negative ELBO was lower (110.5 vs 120.1 nats), but the prior's samples were
# further from real digits (Frechet distance 635.8 vs 511.6, second network 15.08 vs 11.63; 12 numbers: 111.9 / 609.2
# / 14.64; 1,000 samples, 60 epochs, one seed): a longer code describes each digit better, and leaves more of the
# prior where no digit's code lies. The PyTorch examples' VAE (20 numbers) reached 695.6 / 15.69 after 500 epochs
VAE8 = VAERecipe("vae/vae8", lambda s: ConvVAE(latent_dim=8), lr=2e-3, cosine_lr=True)
VAE_AE8 = Recipe("vae/ae8", lambda s: ConvAutoencoder(latent_dim=8), lr=2e-3, cosine_lr=True)

# Lesson 3: the 2-D toy GANs (one bundled run per seed) and DCGAN
TOY_GAN = GANRecipe("gan/toy_gan", lambda s: GAN(MLPGenerator(), MLPDiscriminator()), lr=1e-3)
# the WGAN-GP authors' toy settings: 5 critic steps, Adam betas (0.5, 0.9), lambda = 0.1 (10 is theirs for images)
TOY_WGAN_GP = GANRecipe("gan/toy_wgan_gp", lambda s: GAN(MLPGenerator(), MLPDiscriminator()), lr=3e-4,
                        loss="wgan_gp", betas=(0.5, 0.9), d_steps=5, gp_weight=0.1)
TOY_SEEDS = (0, 1, 2)
DCGAN = GANRecipe("gan/dcgan", lambda s: GAN(DCGANGenerator(z_dim=100, width=32), DCGANDiscriminator(width=32)),
                  lr=2e-3, augment=1.0)

# Lesson 4: DDPM with Min-SNR weighting
DDPM = DiffusionRecipe("diffusion/unet", lambda s: UNet(channels=s.channels), lr=1e-3)

# Lesson 5: conditional models. pix2pix computes in bfloat16 where the CPU or GPU has it (1.1-1.35x faster steps
# here, the same or better scores); the CGAN stays in float32: in bfloat16 its steps were 1.2-1.4x faster, but its
# Frechet distance after 35 epochs was 70 and 94 against 53 and 48 in float32 (two seeds)
CGAN = GANRecipe("conditional/cgan", lambda s: ConditionalGAN(ConditionalGenerator(width=32),
                                                              ConditionalDiscriminator(width=32)), lr=2e-3, augment=1.0)
PIX2PIX = Pix2PixRecipe("conditional/pix2pix", lambda s: Pix2Pix(), lr=1e-3, fast=True)
PIX2PIX_L1 = Pix2PixRecipe("conditional/pix2pix_l1", lambda s: Pix2Pix(), lr=1e-3, adversarial=False, fast=True)
# the CVAE is lesson 2's 2-D VAE (VAE2) plus the label; lesson 5 compares it with VAE2 as lesson 2 trained it
CVAE = VAERecipe("conditional/cvae", lambda s: ConditionalVAE(latent_dim=2), lr=2e-3, cosine_lr=True)
# lesson 5's guided U-Net is lesson 4's with a label embedding: in the `cpu` profile it starts from lesson 4's bundled
# weights (the label embedding alone starts random) and trains 12 epochs instead of 30 from scratch, its learning rate
# falling along a half cosine. Three seeds (Dec 5, 1,000 digits, DDIM 25): 12 epochs with the cosine against 15 at a
# constant rate, w = 2: class accuracy 97.5% vs 97.4%, Frechet distance 36.8 vs 36.0, second network 1.43 vs 1.50;
# w = 3: 99.2% vs 99.4%, 66.4 vs 62.7 (seeds 56-73 vs 59-65), 3.16 vs 3.13; training 91-104 s vs 114-117 s. At 10
# epochs (two seeds) w = 2 fell to 95.6-96.3%
CFG = DiffusionRecipe("conditional/cfg_unet",
                      lambda s: bundled_start(DDPM, UNet(channels=s.channels, num_classes=10), s), lr=1e-3,
                      cosine_lr=True)

# Lesson 6: latent diffusion (the autoencoder, then lesson 5's guided diffusion on its 4 x 7 x 7 latents)
LATENT_AE = Recipe("latent_diffusion/autoencoder", lambda s: LatentAutoencoder(latent_channels=4), lr=2e-3,
                   cosine_lr=True)
LATENT_UNET = DiffusionRecipe("latent_diffusion/latent_unet",
                              lambda s: UNet(channels=s.channels, num_classes=10, image_shape=(4, 7, 7)), lr=1e-3)


# Lesson 7: GAN architectures. StyleGAN gets DCGAN's discriminator and augmentation, so that at the same training
# time the comparison is about the generator; its Adam betas are StyleGAN's (0, 0.99): with DCGAN's (0.5, 0.999) this
# small generator learned about half as fast. Its layers have an equalised learning rate (`stylegan.EqualisedLinear`);
# before, its Frechet distance jumped between 950 and 2,250 over 30 epochs and ended at 1,071. Measured on 500 samples
# (one seed, one CPU thread each, Dec 3): channels (32, 32, 16) at lr 2e-3: 1,224 / 767 / 604 after 5 / 10 / 15 epochs
# (392 s); (32, 16, 8), half the generator's compute: 1,407 / 896 / 827 / 771 after 5 / 10 / 15 / 25 epochs at 2e-3,
# 1,299 / 693 / 612 / 545 after 5 / 10 / 15 / 25 (460 s) at 3e-3, 1,894 / 966 after 5 / 10 at 4e-3. Lesson 3's DCGAN
# in the same setting: 837 / 501 / 508 / 436 / 339 after 5 / 10 / 15 / 25 / 40 epochs (458 s)
# Without mixing regularisation: 816 / 523 / 371 after 10 / 20 / 30 epochs (456 s), but with another seed 790 / 607 /
# 487 (DCGAN with that seed: 367 / 349 after 30 / 40 epochs). Then (Dec 3) StyleGAN2's skip outputs (an image from
# every resolution, summed) with mixing in half of the batches: 648 / 497 / 359 after 10 / 20 / 30 epochs (470 s;
# second network 10.7), seed 1: 777 / 684 / 405 (460 s; 12.0); with mixing 0.9 (seed 0): 811 / 527 / 455. The
# lesson's style-mixing assert holds on the seed-1 model (crossover 4: coarse source 85%, fine 2%; crossover 2: 49%).
# Tried on Dec 4 (same setting, seed 1 unless said; this recipe: 405-432 after 30 epochs with seed 1, 359 with
# seed 0), none kept: the mapping network at a tenth of the rate instead of a hundredth: 378 (seed 1) but 597 (seed 0);
# a 2-layer mapping network 573; D at lr 2e-3 538; batch 32: 567 / 619 after 15 / 20 epochs (311 / 418 s); transposed
# 4 x 4 convolutions to upsample (a step 8% faster) 577, and with no convolution on the constant 453; a channels-last
# generator: no faster per step. No mixing regularisation: 448 (seed 1) and 399 (seed 0). An EMA of the weights
# (decay 0.995): 418 vs 432, but DCGAN gains as much (335 vs 349). On an Intel CPU with AVX-512 (Dec 4, two threads)
# its step costs 1.9x DCGAN's (1.4x on the AMD one), at batch 128 too; the 1 x 1 image convolutions as a matrix
# product make it 3-4% faster, a channels-last generator no faster
STYLEGAN = GANRecipe("gan_architectures/stylegan",
                     lambda s: GAN(StyleGenerator(channels=(32, 16, 8), mixing=0.5), DCGANDiscriminator(width=32)),
                     lr=3e-3, betas=(0.0, 0.99), augment=1.0)
PROGRESSIVE = GANRecipe("gan_architectures/progressive",
                        lambda s: GAN(ProgressiveGenerator(), ProgressiveDiscriminator()), lr=1e-3, augment=1.0)
PROGRESSIVE_JUMP = dataclasses.replace(PROGRESSIVE, name="gan_architectures/progressive_jump")  # no fade-in
PROGRESS_FADE_SHARE = 0.5  # the fade-in lasts half of each new resolution's steps
EBGAN = EBGANRecipe("gan_architectures/ebgan", lambda s: GAN(DCGANGenerator(z_dim=100, width=32),
                                                              EnergyDiscriminator(width=32)), lr=1e-3, margin=0.1)
MSGAN = MSGANRecipe("gan_architectures/msgan", lambda s: CGAN.build(s), lr=2e-3, ms_weight=1.0)
MSGAN_OFF = dataclasses.replace(MSGAN, name="gan_architectures/cgan", ms_weight=0.0)  # the same, without the term
# SinGAN on one 55 x 64 shaded-relief map: 4 scales, 23 x 27 pixels at the coarsest. The authors' settings (Adam 5e-4,
# betas (0.5, 0.999), 3 + 3 updates per step, gp 0.1, alpha 10, sigma = 0.1 RMSE), except the steps (they train 2,000 per
# scale on 250-pixel images; 150 draw recognisable terrain here, 92 s on one CPU thread) and a critic without BatchNorm
# (see `singan.PatchDiscriminator`)
SINGAN = SinGANRecipe("gan_architectures/singan", lambda s: SinGAN(terrain_image(64), num_scales=4, scale_factor=0.75),
                      lr=5e-4, steps_per_scale=(("smoke", 4), ("cpu", 150), ("gpu", 1000)))

# Lesson 8: restoration and editing. SRResNet and SRGAN at SRGAN's Adam settings (1e-4 for the GAN phase, which starts
# from the MSE network as in the paper); SR3 is lesson 4's U-Net and training with the upscaled input as one more
# channel, predicting v instead of eps; the cascade's base model is lesson 5's guided U-Net at 7 x 7 (it is cheap there, so it gets more epochs).
SR_MSE = Recipe("restoration/sr_mse", lambda s: SRResNet(), lr=1e-3)
SRGAN_FT = SRGANRecipe("restoration/srgan", lambda s: SRGAN(), lr=1e-4)
SR3 = DiffusionRecipe("restoration/sr3", lambda s: UNet(channels=s.channels, cond_channels=1), lr=1e-3,
                      min_snr_gamma=None)  # it predicts v (superres.sr3_step), with the plain loss
BASE_7 = DiffusionRecipe("restoration/base", lambda s: UNet(channels=s.channels, num_classes=10, image_shape=(1, 7, 7)),
                         lr=1e-3)
SKETCH = Pix2PixRecipe("restoration/sketch", lambda s: Pix2Pix(), lr=1e-3)
COLOUR = Pix2PixRecipe("restoration/colour", lambda s: Pix2Pix(Pix2PixGenerator(out_channels=3),
                                                               PatchDiscriminator(in_channels=4)), lr=1e-3)
COLOUR_L1 = dataclasses.replace(COLOUR, name="restoration/colour_l1", adversarial=False)
WATERMARK = Pix2PixRecipe("restoration/watermark", lambda s: Pix2Pix(Pix2PixGenerator(in_channels=3, out_channels=3),
                                                                     PatchDiscriminator(in_channels=6)), lr=1e-3)
WATERMARK_L1 = dataclasses.replace(WATERMARK, name="restoration/watermark_l1", adversarial=False)

# Lesson 9: scores and flows. The digit flow is lesson 4's U-Net and training (Adam 1e-3, EMA 0.995, bfloat16 where the
# CPU has it, the same epochs and batch size), with the flow-matching loss instead of the noise-prediction loss, so
# that it is compared with lesson 4's DDPM at the same training time. Reflow and the distilled model start from the
# flow's averaged weights; the guided flow too, with a label embedding that starts at zero (so it starts as the flow).
TOY_SCORE = ScoreRecipe("score_and_flow/toy_score", lambda s: LevelMLP(TOY_SCORE.n_levels), lr=3e-3)
TOY_FLOW = FlowRecipe("score_and_flow/toy_flow", lambda s: FlowNet(TimeMLP()), lr=3e-3)
TOY_REFLOW = FlowRecipe("score_and_flow/toy_reflow", lambda s: FlowNet(TimeMLP()), lr=1e-3)
FLOW = FlowRecipe("score_and_flow/flow", lambda s: FlowNet(UNet(channels=s.channels)), lr=1e-3)
REFLOW = FlowRecipe("score_and_flow/reflow", lambda s: FlowNet(UNet(channels=s.channels)), lr=2e-4)
DISTILL = FlowRecipe("score_and_flow/distill", lambda s: FlowNet(UNet(channels=s.channels)), lr=2e-4)
CFG_FLOW = FlowRecipe("score_and_flow/cfg_flow", lambda s: FlowNet(UNet(channels=s.channels, num_classes=10)), lr=1e-3)

# Lesson 10: text to image. One VQ-VAE (256 codes on a 14 x 14 grid) serves both routes: its codes for the transformer
# prior (DALL-E 1's recipe), its encoder's latents for the cross-attention U-Net (latent diffusion with a VQ-regularised
# autoencoder); the U-Net predicts v as SR3 does, with the plain loss, captions dropped one time in ten
VQ_T2I = Recipe("text_to_image/vqvae", lambda s: VQVAE(num_codes=256, code_dim=4, width=32), lr=2e-3)
# the prior's width follows the lesson's U-Net widths (64 in `cpu`): its 212-token sequences make it the slowest to train
CODE_PRIOR = Recipe("text_to_image/prior", lambda s: CodePrior(num_codes=256, dim=2 * s.channels[0],
                                                               layers=4 if s.channels[0] >= 64 else 2), lr=2e-3)
MINI_CLIP = Recipe("text_to_image/clip", lambda s: MiniCLIP(dim=64), lr=1e-3)
T2I_UNET = DiffusionRecipe("text_to_image/unet", lambda s: TextUNet(channels=s.channels), lr=1e-3, min_snr_gamma=None)
VQ_BETA = 0.25  # the commitment loss's weight (the VQ-VAE paper's)


def fits_bundle(recipe: Recipe, settings: LessonSettings) -> bool:
    """Whether `recipe`'s bundled weights (trained at its lesson's `cpu` widths) fit a U-Net at `settings`' widths."""
    return settings is not None and settings.channels == recipe.settings("cpu").channels


def bundled_start(recipe: Recipe, model: nn.Module, settings: LessonSettings) -> nn.Module:
    """`model` with `recipe`'s bundled (EMA) weights copied into every layer the two networks share, where they
    fit (`fits_bundle`); layers only `model` has (a label embedding) keep their random start. Elsewhere (the
    `smoke` and `gpu` profiles' widths) `model` is returned as it is, to be trained from random weights.

    >>> bundled_start(DDPM, UNet(channels=(8, 16, 16), num_classes=10), lesson_settings("diffusion", "smoke")).channels
    (8, 16, 16)
    """
    if not fits_bundle(recipe, settings):
        return model
    base = recipe.build(settings)
    load_into(recipe.name, ema=base)
    shared, own = base.state_dict(), model.state_dict()
    differ = [key for key, value in shared.items() if key not in own or own[key].shape != value.shape]
    if differ:
        raise ValueError(f"This {type(model).__name__} cannot start from {recipe.name}'s weights: {len(differ)} of "
                         f"their tensors are missing or shaped differently here (first: {differ[0]}). Build the same "
                         f"network as {recipe.name} with only layers added (e.g. num_classes=10).")
    model.load_state_dict(shared, strict=False)
    return model


def every_recipe() -> dict[str, Recipe]:
    """Every recipe above by its name (the toy GANs once, without their seeds)."""
    found = {}
    for value in globals().values():
        for recipe in value.values() if isinstance(value, dict) else [value]:
            if isinstance(recipe, Recipe):
                found[recipe.name] = recipe
    return found


def train_toy_gan(recipe: GANRecipe, toy: str = "ring", steps: int = 2000, seed: int = 0, every: int = 250,
                  batch_size: int = 256, bundled: bool = True) -> tuple:
    """Train `recipe`'s MLP GAN on toy `toy` for about `steps` steps with the course's `fit` loop, measuring
    `mode_coverage` of 2,000 samples every `every` steps. Returns (gan, history, coverage), coverage a list of
    (step, report). With `bundled`, the run goes through `train_or_load` as `NAME_seedSEED`: with pretrained weights
    on, the bundled run is loaded instead.

        gan, history, coverage = train_toy_gan(TOY_WGAN_GP, "ring", steps=1000, seed=0, bundled=False)
    """
    torch.manual_seed(seed)
    gan = recipe.build(None)
    step = GANStep(gan, generator=torch.Generator().manual_seed(seed), **recipe.step_args())
    loader = toy_loader(toy, batch_size, seed)
    log = CoverageLog(gan.sample_z(2000, torch.Generator().manual_seed(seed + 1)), toy, every)
    epochs = max(1, round(steps / len(loader)))

    def train():
        with one_thread():  # tiny networks: one thread is as fast, and much faster when the cores are shared
            return fit(gan, loader, step, None, epochs, callbacks=[log], progress=False)

    if not bundled:
        return gan, train(), log.coverage
    # float32 when bundled: the ring's modes are 0.02 wide, and 8-bit weights move samples by about that much
    history = train_or_load(f"{recipe.name}_seed{seed}", train, eight_bit=False, gan=gan, coverage=log)
    return gan, history, log.coverage
