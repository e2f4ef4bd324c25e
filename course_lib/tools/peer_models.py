"""The peers of `course_lib.tools.peers`: well-known implementations the course's models race against, each
re-implemented from its public source at its documented settings (nothing tuned for the race, nothing changed but
what the task needs: one channel, 28 x 28 digits), ready for `fit` as a `setups.Setup`, as the course's side is:

- `pytorch_examples_vae_setup`: the PyTorch examples' MLP VAE (github.com/pytorch/examples, `vae/main.py`);
- `pytorch_examples_dcgan_setup`: their DCGAN (`dcgan/main.py`) at its 64 x 64 (`to_dcgan_size`, `from_dcgan_size`);
- `diffusers_setup`: the Hugging Face diffusion course's UNet2DModel + DDPMScheduler (needs `pip install -e ".[peers]"`);
- same size as the course's: `pytorch_examples_dcgan28_setup` (their DCGAN cut to 28 x 28 at the course's width) and
  `diffusers_same_size_setup` (a UNet2DModel at the course U-Net's widths, no attention, plain noise loss, float32,
  no EMA, sampled with the course's DDIM).

Their numbers are theirs, written once below; the course's numbers are in `course_lib.recipes`.
"""

import inspect
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import check_images
from ..diffusion import DiffusionSchedule, ddim_sample, to_image_range
from ..nets import device_of, evaluating
from ..vae import VAE, kl_to_standard_normal
from .setups import Setup

INSTALL_DIFFUSERS = 'pip install -e ".[peers]"'

# The peers' own settings, from their sources.
VAE_LR, VAE_BATCH_SIZE = 1e-3, 128  # vae/main.py: optim.Adam(lr=1e-3), --batch-size 128
DCGAN_LR, DCGAN_BETA1, DCGAN_BATCH_SIZE = 2e-4, 0.5, 64  # dcgan/main.py: --lr 0.0002, --beta1 0.5, --batchSize 64
DCGAN_SIZE = 64  # dcgan/main.py: --imageSize 64
DIFFUSERS_LR, DIFFUSERS_BATCH_SIZE = 1e-3, 128  # HF course unit 2: Adam lr 1e-3, DataLoader batch_size 128
DIFFUSERS_CHANNELS = (32, 64, 64)  # HF course unit 2: block_out_channels

# ---------------------------------------------------------------- peer 1: the PyTorch examples' VAE


class PyTorchExamplesVAE(VAE):
    """The VAE of the PyTorch examples (github.com/pytorch/examples, `vae/main.py`), on the course's `VAE` interface:

        encoder  x (784) -> fc1 400, ReLU -> fc21: mu (20),  fc22: log sigma^2 (20)
        decoder  z (20)  -> fc3 400, ReLU -> fc4 784 -> sigmoid

    trained there with `pytorch_examples_vae_loss` (BCE + KLD, summed), Adam lr 1e-3, batch 128, 10 epochs. (One
    revision of the example added a continuous-Bernoulli normalizing term to the loss; the plain BCE + KLD here is
    the long-standing one, and the same Bernoulli likelihood as the course's VAEs, so their ELBOs compare.)
    `decoder(z)` gives the logits before the sigmoid, as the course's VAEs do, so `negative_elbo` scores it too.

    >>> from course_lib.nets import n_params; vae = PyTorchExamplesVAE()
    >>> n_params(vae), vae.decode(torch.zeros(2, 20)).shape
    (652824, torch.Size([2, 1, 28, 28]))
    """

    latent_dim = 20

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(check_images(x).flatten(1)))  # (B, 400)
        return self.fc21(h1), self.fc22(h1)  # mu, logvar: (B, 20) each

    def decoder(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc4(F.relu(self.fc3(z))).view(-1, 1, 28, 28)  # logits


def pytorch_examples_vae_loss(model: PyTorchExamplesVAE, x: torch.Tensor,
                              eps: torch.Tensor | None = None) -> torch.Tensor:
    """The PyTorch examples' `loss_function`: BCE(x_hat, x) + KLD, both *summed* over pixels and images:

        BCE = -sum [x log x_hat + (1 - x) log(1 - x_hat)],   KLD = -1/2 sum (1 + log s^2 - mu^2 - s^2)

    with x_hat = sigmoid(decoder(mu + s * eps)). `eps` ~ N(0, I) is drawn here unless given.
    """
    mu, logvar = model.encode(x)
    eps = torch.randn_like(mu) if eps is None else eps
    x_hat = torch.sigmoid(model.decoder(mu + torch.exp(0.5 * logvar) * eps))
    bce = F.binary_cross_entropy(x_hat, x, reduction="sum")
    return bce + kl_to_standard_normal(mu, logvar).sum()


def pytorch_examples_vae_setup(device: torch.device) -> Setup:
    """The PyTorch examples' VAE: `PyTorchExamplesVAE`, its summed loss, Adam `VAE_LR` (batch `VAE_BATCH_SIZE`: the
    caller's loader); sampled as the example does, decoding z ~ N(0, I)."""
    model = PyTorchExamplesVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=VAE_LR)
    return Setup(model, lambda model, batch: pytorch_examples_vae_loss(model, batch[0]), optimizer,
                 lambda n, generator: model.sample(n, generator).cpu())


# ---------------------------------------------------------------- peer 2: the PyTorch examples' DCGAN


def to_dcgan_size(images: torch.Tensor) -> torch.Tensor:
    """Digits (B, 1, 28, 28) in [0, 1] -> what the PyTorch examples' DCGAN reads: (B, 1, 64, 64) in [-1, 1]
    (their `transforms.Resize(64)`, bilinear, then `Normalize((0.5,), (0.5,))`).

    >>> to_dcgan_size(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 1, 64, 64])
    """
    resized = F.interpolate(check_images(images), size=(DCGAN_SIZE, DCGAN_SIZE), mode="bilinear", antialias=True)
    return resized.clamp(0, 1) * 2 - 1


def from_dcgan_size(images: torch.Tensor) -> torch.Tensor:
    """The DCGAN's images (B, 1, 64, 64) in [-1, 1] -> digits (B, 1, 28, 28) in [0, 1] for the course's metric
    (antialiased, so shrinking averages pixels instead of skipping them)."""
    small = F.interpolate(images, size=(28, 28), mode="bilinear", antialias=True)
    return ((small + 1) / 2).clamp(0, 1)


def dcgan_weights_init(module: nn.Module) -> None:
    """The PyTorch examples' `weights_init`: convolution weights ~ N(0, 0.02); BatchNorm scale ~ N(1, 0.02), shift 0."""
    name = type(module).__name__
    if "Conv" in name:
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class PyTorchExamplesDCGAN(nn.Module):
    """The DCGAN of the PyTorch examples (github.com/pytorch/examples, `dcgan/main.py`) as its `--dataset mnist`
    runs it: nz = 100, ngf = ndf = 64, imageSize 64, nc = 1.

        G: z (B, 100, 1, 1) -> ConvT 512 (4 x 4) -> 256 (8) -> 128 (16) -> 64 (32) -> 1 (64 x 64), tanh;
           BatchNorm + ReLU between
        D: image (B, 1, 64, 64) -> Conv 64 (32) -> 128 (16) -> 256 (8) -> 512 (4) -> 1, sigmoid;
           LeakyReLU 0.2, BatchNorm from the second layer

    No biases; weights from `dcgan_weights_init`. Trained with `PyTorchExamplesDCGANStep`.

    >>> gan = PyTorchExamplesDCGAN()
    >>> gan.generator(torch.randn(2, 100, 1, 1)).shape
    torch.Size([2, 1, 64, 64])
    """

    image_size = DCGAN_SIZE

    def __init__(self, nz: int = 100, ngf: int = 64, ndf: int = 64, nc: int = 1):
        super().__init__()
        self.nz = nz
        self.generator = self.make_generator(nz, ngf, nc)
        self.discriminator = self.make_discriminator(ndf, nc)
        self.apply(dcgan_weights_init)

    @staticmethod
    def make_generator(nz: int, ngf: int, nc: int) -> nn.Sequential:
        return nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),  # 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),  # 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),  # 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),  # 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),  # (B, nc, 64, 64) in [-1, 1]
        )

    @staticmethod
    def make_discriminator(ndf: int, nc: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),  # 32 x 32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),  # (B, 1, 1, 1): D(x), a probability
        )

    @staticmethod
    def to_digits(images: torch.Tensor) -> torch.Tensor:
        """G's images in [-1, 1] -> digits (B, 1, 28, 28) in [0, 1] for the course's metric."""
        return from_dcgan_size(images)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n noise vectors z ~ N(0, I), shaped (n, nz, 1, 1) as the example's G takes them, on the model's device."""
        return torch.randn(n, self.nz, 1, 1, generator=generator).to(next(self.parameters()).device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, batch_size: int = 64) -> torch.Tensor:
        """n digits (n, 1, 28, 28) in [0, 1]. Made as the example makes its pictures, `netG(fixed_noise)` in
        training mode (BatchNorm normalizes with each batch of 64's own statistics), then shrunk to 28 x 28 (the
        64 x 64 model; `to_digits`)."""
        was_training = self.training
        self.train()
        z = self.noise(n, generator)
        images = torch.cat([self.to_digits(self.generator(part)).cpu() for part in z.split(batch_size)])
        self.train(was_training)
        return images


class PyTorchExamplesDCGANStep:
    """One step of the PyTorch examples' DCGAN training, for `fit(gan, loader, step, optimizer=None, ...)`:
    D is updated on real images (label 1) and on G(z) (label 0) with BCE, then G on the same G(z) with label 1
    (the non-saturating loss); Adam lr 2e-4, betas (0.5, 0.999) for both (`DCGAN_LR`, `DCGAN_BETA1`). Batches hold
    64 x 64 images in [-1, 1] (`to_dcgan_size`). Returns {"d_loss", "g_loss", "d_real", "d_fake"} as the course's
    `GANStep` does."""

    def __init__(self, gan: PyTorchExamplesDCGAN, lr: float = DCGAN_LR, beta1: float = DCGAN_BETA1,
                 generator: torch.Generator | None = None):
        self.generator = generator
        self.opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=(beta1, 0.999))
        self.opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=(beta1, 0.999))

    def __call__(self, gan: PyTorchExamplesDCGAN, batch) -> dict[str, float]:
        real = batch[0]
        G, D, n = gan.generator, gan.discriminator, len(real)
        ones, zeros = torch.ones(n, device=real.device), torch.zeros(n, device=real.device)
        # (1) update D: maximize log D(x) + log(1 - D(G(z)))
        self.opt_d.zero_grad(set_to_none=True)
        d_real = D(real).view(-1)
        loss_real = F.binary_cross_entropy(d_real, ones)
        loss_real.backward()
        fake = G(gan.noise(n, self.generator))
        d_fake = D(fake.detach()).view(-1)
        loss_fake = F.binary_cross_entropy(d_fake, zeros)
        loss_fake.backward()
        self.opt_d.step()
        # (2) update G: maximize log D(G(z)) ("fake labels are real for generator cost")
        self.opt_g.zero_grad(set_to_none=True)
        loss_g = F.binary_cross_entropy(D(fake).view(-1), ones)
        loss_g.backward()
        self.opt_g.step()
        return {"d_loss": (loss_real + loss_fake).item(), "g_loss": loss_g.item(),
                "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}


def pytorch_examples_dcgan_setup(device: torch.device) -> Setup:
    """The PyTorch examples' DCGAN and its step (batch `DCGAN_BATCH_SIZE`: the caller's loader, of `to_dcgan_size`
    digits); sampled with `PyTorchExamplesDCGAN.sample`."""
    gan = PyTorchExamplesDCGAN().to(device)
    step = PyTorchExamplesDCGANStep(gan, generator=torch.Generator().manual_seed(0))
    return Setup(gan, step, None, lambda n, generator: gan.sample(n, generator))


class PyTorchExamplesDCGAN28(PyTorchExamplesDCGAN):
    """The PyTorch examples' DCGAN cut down to 28 x 28, ngf = ndf = the course's width (32 in `recipes.DCGAN`).

        G: z (B, 100, 1, 1) -> ConvT 2 ngf (7 x 7) -> ngf (14) -> 1 (28 x 28), tanh; BatchNorm + ReLU between
        D: image (B, 1, 28, 28) -> Conv ndf (14) -> 2 ndf (7) -> 1 (a 7 x 7 kernel over the 7 x 7 map), sigmoid;
           LeakyReLU 0.2, BatchNorm on the second layer

    Changed from the example, nothing else: G's first kernel is 7 x 7 (theirs 4 x 4), then two doubling layers at
    widths ngf * 2 and ngf (theirs four); D keeps their first two layers and its last kernel is 7 x 7. No biases,
    `dcgan_weights_init`, sigmoid D with BCE; images 28 x 28 in [-1, 1] (their `Normalize((0.5,), (0.5,))`).

    >>> from course_lib.nets import n_params
    >>> gan = PyTorchExamplesDCGAN28()
    >>> gan.generator(torch.randn(2, 100, 1, 1)).shape, n_params(gan.generator), n_params(gan.discriminator)
    (torch.Size([2, 1, 28, 28]), 347072, 36544)
    """

    image_size = 28

    def __init__(self, nz: int = 100, ngf: int = 32, ndf: int = 32, nc: int = 1):
        super().__init__(nz, ngf, ndf, nc)

    @staticmethod
    def make_generator(nz: int, ngf: int, nc: int) -> nn.Sequential:
        return nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 7, 1, 0, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),  # 7 x 7
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),  # 14 x 14
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),  # (B, nc, 28, 28) in [-1, 1]
        )

    @staticmethod
    def make_discriminator(ndf: int, nc: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),  # 14 x 14
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 7, 1, 0, bias=False), nn.Sigmoid(),  # (B, 1, 1, 1): D(x), a probability
        )

    @staticmethod
    def to_digits(images: torch.Tensor) -> torch.Tensor:
        return ((images + 1) / 2).clamp(0, 1)


def to_dcgan28_range(images: torch.Tensor) -> torch.Tensor:
    """Digits (B, 1, 28, 28) in [0, 1] -> what `PyTorchExamplesDCGAN28` reads: the same size, in [-1, 1]."""
    return check_images(images) * 2 - 1


def pytorch_examples_dcgan28_setup(device: torch.device, width: int = 32) -> Setup:
    """`PyTorchExamplesDCGAN28` at ngf = ndf = `width` and the example's step (Adam 2e-4, beta1 0.5, BCE; batch
    `DCGAN_BATCH_SIZE`: the caller's loader, of `to_dcgan28_range` digits)."""
    gan = PyTorchExamplesDCGAN28(ngf=width, ndf=width).to(device)
    step = PyTorchExamplesDCGANStep(gan, generator=torch.Generator().manual_seed(0))
    return Setup(gan, step, None, lambda n, generator: gan.sample(n, generator))


# ---------------------------------------------------------------- peer 3: diffusers, as the Hugging Face course uses it


def import_diffusers():
    """The `diffusers` package, or an error that says how to install it (it is an optional dependency)."""
    try:
        import diffusers
    except ImportError:
        raise ImportError(f"The diffusion pair races the `diffusers` library, which is not installed. Install the "
                          f"course's optional benchmark dependencies with: {INSTALL_DIFFUSERS}") from None
    return diffusers


def diffusers_unet(channels: tuple[int, int, int] = DIFFUSERS_CHANNELS) -> nn.Module:
    """The U-Net of the Hugging Face diffusion course (huggingface/diffusion-models-class, unit 2,
    `02_class_conditioned_diffusion_model_example.ipynb`), without its class-embedding input channels (this race is
    unconditional):

        UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=2,
                    block_out_channels=(32, 64, 64),
                    down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                    up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"))

    Other `channels` (the smoke profile's tiny U-Net) also set GroupNorm's groups to the smallest width.
    """
    diffusers = import_diffusers()
    groups = {} if tuple(channels) == DIFFUSERS_CHANNELS else {"norm_num_groups": min(channels)}
    return diffusers.UNet2DModel(
        sample_size=28, in_channels=1, out_channels=1, layers_per_block=2, block_out_channels=tuple(channels),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"), **groups)


def diffusers_scheduler():
    """The HF course's noise schedule: DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")."""
    return import_diffusers().DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")


def diffusers_step(scheduler, generator: torch.Generator | None = None, t_high: int = 999) -> Callable:
    """The HF course's training step, for `fit`: images to [-1, 1], t ~ randint(0, t_high) (the HF course's 999;
    diffusers' own `train_unconditional.py` draws from all of `num_train_timesteps`), noise added by the scheduler,
    loss = MSE between the U-Net's prediction and the noise.

    `generator` draws t and the noise (the course uses the global one; a seeded one makes the race repeatable).
    """

    def step(unet, batch):
        x = batch[0] * 2 - 1  # "Data on the GPU (mapped to (-1, 1))"
        noise = torch.randn(x.shape, generator=generator).to(x.device)
        timesteps = torch.randint(0, t_high, (len(x),), generator=generator).to(x.device)
        noisy_x = scheduler.add_noise(x, noise, timesteps)
        return F.mse_loss(unet(noisy_x, timesteps).sample, noise)

    return step


@torch.no_grad()
def diffusers_ddim_sample(unet: nn.Module, scheduler, n: int, steps: int = 50,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """n digits (n, 1, 28, 28) in [0, 1] from the diffusers U-Net with diffusers' own DDIMScheduler, built from the
    training scheduler's config (eta = 0, x0 clipped to [-1, 1] as that config says) and run in `steps` steps.
    (The HF course samples with all 1000 DDPM steps; DDIM-50 here costs what the course's model is sampled with.)"""
    sampler = import_diffusers().DDIMScheduler.from_config(scheduler.config)
    sampler.set_timesteps(steps)
    x = torch.randn(n, 1, 28, 28, generator=generator).to(device_of(unet))
    with evaluating(unet):
        for t in sampler.timesteps:
            x = sampler.step(unet(x, t).sample, t, x).prev_sample
    return to_image_range(x).cpu()


def diffusers_setup(device: torch.device, channels: tuple[int, int, int] = DIFFUSERS_CHANNELS,
                    ddim_steps: int = 50) -> Setup:
    """The HF course's recipe: `diffusers_unet`, `diffusers_scheduler`, `diffusers_step`, Adam `DIFFUSERS_LR` (batch
    `DIFFUSERS_BATCH_SIZE`: the caller's loader), float32; sampled with `diffusers_ddim_sample` in `ddim_steps`."""
    unet = diffusers_unet(channels).to(device)
    scheduler = diffusers_scheduler()
    optimizer = torch.optim.Adam(unet.parameters(), lr=DIFFUSERS_LR)
    step = diffusers_step(scheduler, torch.Generator().manual_seed(0))
    return Setup(unet, step, optimizer,
                 lambda n, generator: diffusers_ddim_sample(unet, scheduler, n, ddim_steps, generator))


# ---------------------------------------------------------------- peer 4: diffusers at the course U-Net's size

# The course's schedule kinds in diffusers' words: DDPMScheduler's beta_schedule
DIFFUSERS_BETA_SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def import_diffusers_without_middle_block():
    """`import_diffusers()`, or an ImportError (the pair is then skipped) when its UNet2DModel cannot leave out the
    middle block (diffusers before 0.33)."""
    diffusers = import_diffusers()
    if "mid_block_type" not in inspect.signature(diffusers.UNet2DModel.__init__).parameters:
        raise ImportError(f"The same-size diffusion pair needs diffusers 0.33 or later (UNet2DModel's "
                          f"mid_block_type=None); this is diffusers {diffusers.__version__}. Upgrade with: "
                          f'pip install -U "diffusers>=0.33"')
    return diffusers


def diffusers_same_size_unet(channels: tuple[int, int, int], time_dim: int = 128) -> nn.Module:
    """A diffusers UNet2DModel the size of the course's `UNet(channels)`, with no attention:

        UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=channels, layers_per_block=1,
                    down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3,
                    mid_block_type=None, time_embedding_dim=time_dim, norm_num_groups=gcd(8, *channels))

    Why each setting: the course's U-Net has one ResBlock per level on the way down and up, so layers_per_block=1;
    diffusers' UpBlock2D holds layers_per_block + 1 ResNet blocks (it also joins the downsamplers' outputs), so
    its up path has 6 against the course's 3, and its middle block (2 ResNet blocks and, by default, attention)
    is left out: 9 ResNet blocks against the course's 8 (3 down, 2 middle, 3 up), and the parameter counts agree
    within 1% at lesson 4's `cpu` widths (16, 32, 64) and 3% at the `gpu` ones (32, 64, 128) (the smoke profile's
    tiny (8, 16, 16): 7% fewer). The time embedding is the course's width (`UNet.time_dim`), GroupNorm has the
    course's 8 groups. Its multiply-adds per image are about 1.5 times the course's (more blocks at 28 x 28).

    At (16, 32, 64) it has 498,097 parameters, the course's `UNet` 495,521 (checked in tests/test_peers.py, which
    skip without diffusers). Needs diffusers 0.33 or later (the first to take mid_block_type=None in UNet2DModel).
    """
    diffusers = import_diffusers_without_middle_block()
    return diffusers.UNet2DModel(
        sample_size=28, in_channels=1, out_channels=1, block_out_channels=tuple(channels), layers_per_block=1,
        down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3, mid_block_type=None,
        time_embedding_dim=time_dim, norm_num_groups=math.gcd(8, *channels))


def diffusers_ddpm_scheduler(T: int = 1000, kind: str = "linear"):
    """diffusers' DDPMScheduler with the course's schedule: T steps, `kind` "linear" (Ho et al.'s betas from 1e-4 to
    0.02 at T = 1000, DDPMScheduler's default; scaled by 1000 / T otherwise, as `DiffusionSchedule` does) or "cosine"
    (`squaredcos_cap_v2`). Lesson 4's T = 1000, "linear" is `DDPMScheduler(num_train_timesteps=1000)` as it comes."""
    if kind not in DIFFUSERS_BETA_SCHEDULES:
        raise ValueError(f"Unknown schedule kind {kind!r}. Use one of {', '.join(DIFFUSERS_BETA_SCHEDULES)}.")
    ends = dict(beta_start=1e-4 * 1000 / T, beta_end=0.02 * 1000 / T) if kind == "linear" and T != 1000 else {}
    return import_diffusers().DDPMScheduler(num_train_timesteps=T, beta_schedule=DIFFUSERS_BETA_SCHEDULES[kind],
                                            **ends)


def diffusers_same_size_setup(device: torch.device, channels: tuple[int, int, int], time_dim: int = 128,
                              lr: float = 1e-3, T: int = 1000, kind: str = "linear", ddim_steps: int = 50) -> Setup:
    """The course U-Net's size trained the usual diffusers way: `diffusers_same_size_unet`, `diffusers_ddpm_scheduler`
    (T, kind), `diffusers_step` with t ~ randint(0, T) (as diffusers' `train_unconditional.py`), the plain MSE on the
    noise, Adam `lr`, float32, no EMA, no augmentation. Sampled with the course's own `ddim_sample` in `ddim_steps`
    (eta = 0, x0 clipped to [-1, 1]) on the same schedule, so that only the training differs from the course's side."""
    unet = diffusers_same_size_unet(channels, time_dim).to(device)
    scheduler = diffusers_ddpm_scheduler(T, kind)
    optimizer = torch.optim.Adam(unet.parameters(), lr=lr)
    step = diffusers_step(scheduler, torch.Generator().manual_seed(0), t_high=T)
    schedule = DiffusionSchedule(T=T, kind=kind)

    def sample(n, generator):
        with evaluating(unet):
            return ddim_sample(lambda x, t: unet(x, t).sample, schedule, n=n, steps=ddim_steps, generator=generator,
                               device=device)[0].cpu()

    return Setup(unet, step, optimizer, sample)
