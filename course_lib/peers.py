"""Beat the peers: the course's models against well-known implementations, trained side by side for the same time.

Students could use other code instead of this course's. Each pair below trains the course's model and a *peer*,
on the same digits, on the same machine, for the same wall-clock budget, and scores both with the course's own
quality metric (`course_lib.metrics`: Frechet distance in the bundled digit classifier's features; lower is better):

- **diffusion**: lesson 4's U-Net DDPM (with lesson 5's Min-SNR weighting) vs the Hugging Face diffusion course's
  `diffusers` UNet2DModel + DDPMScheduler (needs `pip install -e ".[peers]"`);
- **vae**: lesson 2's convolutional VAE vs the PyTorch examples' MLP VAE;
- **gan**: lesson 3's DCGAN vs the PyTorch examples' DCGAN.

The peers are re-implemented from their public sources (each class says which, with the settings), at their
documented settings: nothing is tuned for them, and nothing of theirs is changed except what the task needs (one
channel, 28 x 28 digits; the DCGAN's digits are resized to its 64 x 64 and back).

    python -m course_lib.peers --profile cpu --out runs/peers                    # every pair, ~30 min on 2 cores
    python -m course_lib.peers --profile smoke --out /tmp/p --only vae           # seconds
    python -m course_lib.results_table runs/peers/peers.json --readme README.md  # the README's table

How a race works: each model trains with `fit` until it has spent `budget_s` seconds training. At a few points
along the way (`SETTINGS[profile].checkpoints`, fractions of the budget) the clock stops, `n_scored` images are
sampled (the same seed every time) and scored, and the clock starts again, so scoring costs neither side training
time. Writes
`OUT/peers.json` (per pair: the budget, both models' final Frechet distance, images/s, images seen, parameters,
settings and curve of (seconds, Frechet distance), and ratio = course / peer; the machine; the distances of
held-out real digits and of noise for as many images, to read the scores between) and `OUT/peers.png` (Frechet
distance against training seconds, one panel per pair).
"""

import argparse
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from .benchmark import Recipe, dcgan_recipe, ddpm_recipe, vae_recipe
from .config import PROFILES, lesson_settings, pick_device, seed_everything
from .data import check_images, load_dataset, make_loader
from .diffusion import to_image_range
from .fastpath import describe_fast_path, describe_machine, fast_dtype
from .gans import n_params
from .metrics import fd_to_training_digits, reference_points
from .training import Callback, StopTraining, fit
from .vae import VAE, kl_to_standard_normal, negative_elbo

PAIRS = ("diffusion", "vae", "gan")
INSTALL_DIFFUSERS = 'pip install -e ".[peers]"'


@dataclass(frozen=True)
class RaceSettings:
    """How long and how carefully one profile races: seconds of training per model and pair, images scored at each
    checkpoint, DDIM steps when a diffusion model is sampled, and the checkpoints as fractions of the budget."""

    budgets: dict  # pair -> seconds of training for each of its two models
    n_scored: int
    ddim_steps: int
    checkpoints: tuple[float, ...]
    diffusers_channels: tuple[int, int, int] = (32, 64, 64)  # the HF course's; the smoke profile shrinks it


SETTINGS = {
    # smoke: every line runs in seconds; tiny U-Nets on both sides, as lesson 4's smoke profile does
    "smoke": RaceSettings({"diffusion": 1.0, "vae": 1.0, "gan": 1.0}, n_scored=64, ddim_steps=5,
                          checkpoints=(0.5, 1.0), diffusers_channels=(8, 16, 16)),
    "cpu": RaceSettings({"diffusion": 300.0, "vae": 60.0, "gan": 150.0}, n_scored=500, ddim_steps=50,
                        checkpoints=(0.125, 0.25, 0.5, 1.0)),
    "gpu": RaceSettings({"diffusion": 300.0, "vae": 60.0, "gan": 150.0}, n_scored=1000, ddim_steps=50,
                        checkpoints=(0.125, 0.25, 0.5, 1.0)),
}

# The course's diffusion recipes. "min_snr" is lesson 4's (Min-SNR weighting, batch 32, Adam 1e-3), adopted after
# this race measured it against the paper's plain loss; `--course-diffusion plain` races the plain loss with the
# settings lesson 4 used before (batch 64, Adam 2e-3).
COURSE_DIFFUSION = {
    "min_snr": {"min_snr_gamma": 5.0, "lr": 1e-3, "batch_size": 32},
    "plain": {"min_snr_gamma": None, "lr": 2e-3, "batch_size": 64},
}

# ---------------------------------------------------------------- peer 1: the PyTorch examples' VAE


class PyTorchExamplesVAE(VAE):
    """The VAE of the PyTorch examples (github.com/pytorch/examples, `vae/main.py`), on the course's `VAE` interface:

        encoder  x (784) -> fc1 400, ReLU -> fc21: mu (20),  fc22: log sigma^2 (20)
        decoder  z (20)  -> fc3 400, ReLU -> fc4 784 -> sigmoid

    trained there with `pytorch_examples_vae_loss` (BCE + KLD, summed), Adam lr 1e-3, batch 128, 10 epochs. (One
    revision of the example added a continuous-Bernoulli normalizing term to the loss; the plain BCE + KLD here is
    the long-standing one, and the same Bernoulli likelihood as the course's VAEs, so their ELBOs compare.)
    `decoder(z)` gives the logits before the sigmoid, as the course's VAEs do, so `negative_elbo` scores it too.

    >>> vae = PyTorchExamplesVAE()
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


def pytorch_examples_vae_recipe(device: torch.device) -> Recipe:
    """The PyTorch examples' VAE recipe: `PyTorchExamplesVAE`, its summed loss, Adam lr 1e-3 (batch 128: the
    caller's loader); sampled as the example does, decoding z ~ N(0, I)."""
    model = PyTorchExamplesVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return Recipe(model, lambda model, batch: pytorch_examples_vae_loss(model, batch[0]), optimizer,
                  lambda n, generator: model.sample(n, generator).cpu())


# ---------------------------------------------------------------- peer 2: the PyTorch examples' DCGAN

DCGAN_SIZE = 64  # the PyTorch examples' --imageSize


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

    def __init__(self, nz: int = 100, ngf: int = 64, ndf: int = 64, nc: int = 1):
        super().__init__()
        self.nz = nz
        self.generator = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),  # 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),  # 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),  # 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),  # 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),  # (B, nc, 64, 64) in [-1, 1]
        )
        self.discriminator = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),  # 32 x 32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),  # (B, 1, 1, 1): D(x), a probability
        )
        self.apply(dcgan_weights_init)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n noise vectors z ~ N(0, I), shaped (n, nz, 1, 1) as the example's G takes them, on the model's device."""
        return torch.randn(n, self.nz, 1, 1, generator=generator).to(next(self.parameters()).device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, batch_size: int = 64) -> torch.Tensor:
        """n digits (n, 1, 28, 28) in [0, 1]. Made as the example makes its pictures, `netG(fixed_noise)` in
        training mode (BatchNorm normalizes with each batch of 64's own statistics), then shrunk to 28 x 28."""
        was_training = self.training
        self.train()
        z = self.noise(n, generator)
        images = torch.cat([from_dcgan_size(self.generator(part)).cpu() for part in z.split(batch_size)])
        self.train(was_training)
        return images


class PyTorchExamplesDCGANStep:
    """One step of the PyTorch examples' DCGAN training, for `fit(gan, loader, step, optimizer=None, ...)`:
    D is updated on real images (label 1) and on G(z) (label 0) with BCE, then G on the same G(z) with label 1
    (the non-saturating loss); Adam lr 2e-4, betas (0.5, 0.999) for both. Batches hold 64 x 64 images in [-1, 1]
    (`to_dcgan_size`). Returns {"d_loss", "g_loss", "d_real", "d_fake"} as the course's `GANStep` does."""

    def __init__(self, gan: PyTorchExamplesDCGAN, lr: float = 2e-4, beta1: float = 0.5,
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


def pytorch_examples_dcgan_recipe(device: torch.device) -> Recipe:
    """The PyTorch examples' DCGAN recipe (batch 64: the caller's loader, of `to_dcgan_size` digits)."""
    gan = PyTorchExamplesDCGAN().to(device)
    step = PyTorchExamplesDCGANStep(gan, generator=torch.Generator().manual_seed(0))
    return Recipe(gan, step, None, lambda n, generator: gan.sample(n, generator))


# ---------------------------------------------------------------- peer 3: diffusers, as the Hugging Face course uses it


def import_diffusers():
    """The `diffusers` package, or an error that says how to install it (it is an optional dependency)."""
    try:
        import diffusers
    except ImportError:
        raise ImportError(f"The diffusion pair races the `diffusers` library, which is not installed. Install the "
                          f"course's optional benchmark dependencies with: {INSTALL_DIFFUSERS}") from None
    return diffusers


def diffusers_unet(channels: tuple[int, int, int] = (32, 64, 64)) -> nn.Module:
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
    groups = {} if tuple(channels) == (32, 64, 64) else {"norm_num_groups": min(channels)}
    return diffusers.UNet2DModel(
        sample_size=28, in_channels=1, out_channels=1, layers_per_block=2, block_out_channels=tuple(channels),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"), **groups)


def diffusers_scheduler():
    """The HF course's noise schedule: DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")."""
    return import_diffusers().DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")


def diffusers_step(scheduler, generator: torch.Generator | None = None) -> Callable:
    """The HF course's training step, for `fit`: images to [-1, 1], t ~ randint(0, 999), noise added by the
    scheduler, loss = MSE between the U-Net's prediction and the noise.

    `generator` draws t and the noise (the course uses the global one; a seeded one makes the race repeatable).
    """

    def step(unet, batch):
        x = batch[0] * 2 - 1  # "Data on the GPU (mapped to (-1, 1))"
        noise = torch.randn(x.shape, generator=generator).to(x.device)
        timesteps = torch.randint(0, 999, (len(x),), generator=generator).to(x.device)
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
    device = next(unet.parameters()).device
    was_training = unet.training
    unet.eval()
    x = torch.randn(n, 1, 28, 28, generator=generator).to(device)
    for t in sampler.timesteps:
        x = sampler.step(unet(x, t).sample, t, x).prev_sample
    unet.train(was_training)
    return to_image_range(x).cpu()


def diffusers_recipe(device: torch.device, channels: tuple[int, int, int] = (32, 64, 64),
                     ddim_steps: int = 50) -> Recipe:
    """The HF course's recipe: `diffusers_unet`, `diffusers_scheduler`, `diffusers_step`, Adam lr 1e-3 (batch 128:
    the caller's loader), float32; sampled with `diffusers_ddim_sample`."""
    unet = diffusers_unet(channels).to(device)
    scheduler = diffusers_scheduler()
    optimizer = torch.optim.Adam(unet.parameters(), lr=1e-3)
    step = diffusers_step(scheduler, torch.Generator().manual_seed(0))
    return Recipe(unet, step, optimizer,
                  lambda n, generator: diffusers_ddim_sample(unet, scheduler, n, ddim_steps, generator))


# ---------------------------------------------------------------- racing for a time budget


class Race(Callback):
    """A stopwatch for `fit`: counts training seconds (scoring excluded) and images, stops the clock at each
    checkpoint to call `score()`, and ends training with `StopTraining` once `budget_s` seconds are spent.

        race = Race(budget_s=60, checkpoints=(0.5, 1.0), score=lambda: fd_to_training_digits(sample()))
        fit(model, loader, race.counting(step), optimizer, epochs=10**9, callbacks=[race.started()])
        race.curve  # [(seconds, score), ...]
    """

    def __init__(self, budget_s: float, checkpoints: tuple[float, ...], score: Callable[[], float],
                 name: str = "model", device: torch.device | str = "cpu"):
        if budget_s <= 0:
            raise ValueError(f"budget_s is the training time in seconds and must be positive, got {budget_s}.")
        self.budget_s, self.score, self.name, self.device = budget_s, score, name, torch.device(device)
        self.marks = sorted(budget_s * f for f in checkpoints if 0 < f < 1) + [budget_s]
        self.seconds, self.images = 0.0, 0
        self.curve: list[tuple[float, float]] = []
        self._lap = time.perf_counter()

    def started(self) -> "Race":
        """Start (or restart) the clock now; returns the race, to put in `fit`'s callbacks."""
        self._lap = time.perf_counter()
        return self

    def counting(self, step: Callable) -> Callable:
        """`step`, counting the images of every batch it trains on."""

        def counted(model, batch):
            self.images += len(batch[0] if isinstance(batch, (tuple, list)) else batch)
            return step(model, batch)

        return counted

    def on_step_end(self, state) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # GPU work is queued: wait for it before reading the clock
        self.seconds += time.perf_counter() - self._lap
        if self.seconds >= self.marks[0]:
            while self.marks and self.seconds >= self.marks[0]:
                self.marks.pop(0)  # a slow step may pass several checkpoints: score once
            self.checkpoint()
            if not self.marks:
                raise StopTraining("budget", f"{self.name}: {self.budget_s:g} s of training done "
                                             f"({self.images / max(self.seconds, 1e-9):,.0f} images/s).")
        self._lap = time.perf_counter()

    def checkpoint(self) -> None:
        """Score now (the clock is stopped while scoring) and add (seconds, score) to the curve."""
        start = time.perf_counter()
        value = self.score()
        self.curve.append((self.seconds, value))
        print(f"  {self.name}: {self.seconds:7.1f} s, {self.images:>9,} images: Frechet distance {value:9.1f} "
              f"(scored in {time.perf_counter() - start:.1f} s)")

    def finish(self) -> None:
        """Make sure the curve ends where training ended (when it stopped before the budget: NaN, D won, Ctrl-C)."""
        if not self.curve or self.curve[-1][0] != self.seconds:
            self.checkpoint()


class CosineOverBudget(Callback):
    """Lower the optimizer's learning rate along a half cosine from its start value to 0 over a race's budget:
    lr = lr_0 (1 + cos(pi * seconds / budget)) / 2. (The course's `CosineSchedule` does this over epochs.)"""

    def __init__(self, optimizer: torch.optim.Optimizer, race: Race):
        self.optimizer, self.race = optimizer, race
        self.start_lrs = [group["lr"] for group in optimizer.param_groups]

    def on_step_end(self, state) -> None:
        progress = min(self.race.seconds / self.race.budget_s, 1.0)
        for group, lr in zip(self.optimizer.param_groups, self.start_lrs):
            group["lr"] = lr * (1 + math.cos(math.pi * progress)) / 2


@dataclass
class Entrant:
    """One model in a race: a name, its settings in words, how to build its recipe, the data it trains on (the
    pair's digits, in the form the model reads them), its batch size, and optional extra scores after training."""

    name: str
    settings: str
    build: Callable[[], Recipe]
    data: TensorDataset
    batch_size: int
    extra: Callable[[nn.Module], dict] | None = None


def race(entrant: Entrant, budget_s: float, settings: RaceSettings, device: torch.device) -> dict:
    """Train `entrant` for `budget_s` seconds of training, scoring along the way; returns its row of peers.json."""
    seed_everything(0)
    recipe = entrant.build()

    def score():
        images = recipe.sample(settings.n_scored, torch.Generator().manual_seed(1))
        return fd_to_training_digits(images.float().clamp(0, 1))

    clock = Race(budget_s, settings.checkpoints, score, entrant.name, device)
    # the recipe's own callbacks (EMA...) first, so the model is scored as the recipe would use it
    callbacks = [*recipe.callbacks, clock.started()]
    if recipe.cosine_lr:
        callbacks.append(CosineOverBudget(recipe.optimizer, clock))
    history = fit(recipe.model, make_loader(entrant.data, entrant.batch_size), clock.counting(recipe.step),
                  recipe.optimizer, epochs=10**9, device=device, callbacks=callbacks, progress=False)
    clock.finish()
    model = recipe.model
    gan = hasattr(model, "generator") and hasattr(model, "discriminator")
    row = {
        "name": entrant.name,
        "settings": entrant.settings,
        "fd": round(clock.curve[-1][1], 2),
        "train_seconds": round(clock.seconds, 2),
        "images_seen": clock.images,
        "images_per_s": round(clock.images / max(clock.seconds, 1e-9), 1),
        "n_params": n_params(model.generator if gan else model),
        "curve": [[round(s, 2), round(fd, 2)] for s, fd in clock.curve],
        "stopped": history.stopped,
    }
    if gan:
        row["d_params"] = n_params(model.discriminator)
    if entrant.extra:
        row.update({k: round(v, 2) for k, v in entrant.extra(model).items()})
    return row


# ---------------------------------------------------------------- the three pairs


def vae_pair(profile: str, device: torch.device, settings: RaceSettings, **_) -> tuple[Entrant, Entrant]:
    """Lesson 2's VAE vs the PyTorch examples' VAE; both also give their test negative ELBO (nats per image, same
    Bernoulli likelihood)."""
    s = lesson_settings("vae", profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    test_x = load_dataset("mnist", "test", source="bundled").tensors[0]

    def nelbo(model):
        return {"nelbo_test": negative_elbo(model, test_x)}

    # No augmentation here: lesson 2 adds it for its 60-epoch run, but within a 60 s budget it costs more than it
    # gives (measured: Frechet distance 876 with it, 665 without, against the peer's 721).
    course = Entrant("course ConvVAE", f"lesson 2's ConvVAE (16-number code), negative ELBO, no augmentation, "
                     f"Adam 2e-3 with a cosine over the budget, batch {s.batch_size}",
                     lambda: vae_recipe(device, augment=0.0), train, s.batch_size, nelbo)
    peer = Entrant("pytorch/examples VAE", "pytorch/examples vae/main.py: MLP 784-400-20, BCE + KLD summed, "
                   "Adam 1e-3, batch 128", lambda: pytorch_examples_vae_recipe(device), train, 128, nelbo)
    return course, peer


def gan_pair(profile: str, device: torch.device, settings: RaceSettings, **_) -> tuple[Entrant, Entrant]:
    """Lesson 3's DCGAN (28 x 28) vs the PyTorch examples' DCGAN (digits resized to 64 x 64, samples back to 28)."""
    s = lesson_settings("gan", profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    x, y = train.tensors
    big = TensorDataset(torch.cat([to_dcgan_size(part) for part in x.split(1000)]), y)  # resized once, untimed
    course = Entrant("course DCGAN", f"lesson 3's DCGAN for 28 x 28 (z 100, width 32), non-saturating loss, Adam "
                     f"2e-3 (0.5, 0.999), D's inputs augmented, batch {s.batch_size}",
                     lambda: dcgan_recipe(device), train, s.batch_size)
    peer = Entrant("pytorch/examples DCGAN", "pytorch/examples dcgan/main.py: 64 x 64, nz 100, ngf = ndf = 64, "
                   "BatchNorm, N(0, 0.02) init, BCE, Adam 2e-4 (0.5, 0.999), batch 64; samples shrunk to 28 x 28",
                   lambda: pytorch_examples_dcgan_recipe(device), big, 64)
    return course, peer


def diffusion_pair(profile: str, device: torch.device, settings: RaceSettings,
                   course_diffusion: str = "min_snr") -> tuple[Entrant, Entrant]:
    """The course's DDPM (`COURSE_DIFFUSION[course_diffusion]`) vs the HF course's diffusers recipe, both sampled
    with DDIM in `settings.ddim_steps` steps."""
    import_diffusers()  # fail before any training when diffusers is missing
    s = lesson_settings("diffusion", profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    recipe = COURSE_DIFFUSION[course_diffusion]
    steps = settings.ddim_steps

    def course_build():
        ddpm = ddpm_recipe(s.channels, device, lr=recipe["lr"], min_snr_gamma=recipe["min_snr_gamma"])
        sample = ddpm.sample
        ddpm.sample = lambda n, generator: sample(n, generator, steps=steps)
        return ddpm

    weighting = f"Min-SNR {recipe['min_snr_gamma']:g}" if recipe["min_snr_gamma"] else "plain loss"
    dtype = fast_dtype(device)
    precision = f"{str(dtype).replace('torch.', '')} autocast" if dtype else "float32"
    course = Entrant(f"course DDPM ({course_diffusion})",
                     f"lesson 4's U-Net {'/'.join(map(str, s.channels))}, linear schedule T = 1000, {weighting}, "
                     f"Adam {recipe['lr']:g}, batch {recipe['batch_size']}, EMA 0.995, "
                     f"{precision}; DDIM {steps} steps",
                     course_build, train, recipe["batch_size"])
    channels = settings.diffusers_channels
    peer = Entrant("diffusers UNet2DModel",
                   f"HF diffusion course unit 2: UNet2DModel {'/'.join(map(str, channels))} with attention at 14 and "
                   f"7 px, DDPMScheduler squaredcos_cap_v2 T = 1000, MSE on the noise, Adam 1e-3, batch 128, "
                   f"float32; diffusers DDIMScheduler {steps} steps",
                   lambda: diffusers_recipe(device, channels, steps), train, 128)
    return course, peer


PAIR_BUILDERS = {"diffusion": diffusion_pair, "vae": vae_pair, "gan": gan_pair}
# The targets for ratio = the course's Frechet distance / the peer's: at most half for diffusion, below 1
# (the course better) for the others.
TARGETS = {"diffusion": 0.5, "vae": 1.0, "gan": 1.0}


def machine(device: torch.device) -> dict:
    """What the race ran on: torch, threads, device, processor, the fast path, and the diffusers version."""
    try:
        diffusers_version = import_diffusers().__version__
    except ImportError:
        diffusers_version = None
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
            "machine": describe_machine(device), "fast_path": describe_fast_path(device),
            "python": platform.python_version(), "diffusers": diffusers_version}


def run(profile: str, out: Path, only: list[str] | None = None, budget_scale: float = 1.0,
        course_diffusion: str = "min_snr") -> dict:
    """Race the pairs in `only` (default: all) and write peers.json and peers.png into `out`."""
    unknown = [name for name in only or [] if name not in PAIRS]
    if unknown:
        raise SystemExit(f"Unknown pair name(s) {', '.join(unknown)}. Valid names: {', '.join(PAIRS)}.")
    if profile not in PROFILES:
        raise SystemExit(f"Unknown profile {profile!r}. Use one of {', '.join(PROFILES)}.")
    if budget_scale <= 0:
        raise SystemExit(f"--budget-scale multiplies the budgets and must be positive, got {budget_scale}.")
    if course_diffusion not in COURSE_DIFFUSION:
        raise SystemExit(f"Unknown course diffusion recipe {course_diffusion!r}. Use one of "
                         f"{', '.join(COURSE_DIFFUSION)}.")
    out.mkdir(parents=True, exist_ok=True)
    device, settings = pick_device(), SETTINGS[profile]
    report = {"profile": profile, "n_scored": settings.n_scored, "course_diffusion": course_diffusion,
              "machine": machine(device), **{k: round(v, 2) for k, v in reference_points(settings.n_scored).items()},
              "pairs": {}}
    previous = out / "peers.json"
    if only and previous.exists() and json.loads(previous.read_text()).get("profile") == profile:
        # racing some pairs again keeps the other pairs' results
        report["pairs"] = {k: v for k, v in json.loads(previous.read_text())["pairs"].items() if k not in only}
    for name in only or PAIRS:
        budget = settings.budgets[name] * budget_scale
        print(f"{name}: {budget:g} s of training for each model")
        try:
            course, peer = PAIR_BUILDERS[name](profile, device, settings, course_diffusion=course_diffusion)
        except ImportError as err:
            print(f"{name}: skipped. {err}")
            report["pairs"][name] = {"status": "skipped", "reason": str(err)}
            continue
        pair = {"status": "ok", "budget_s": budget, "course": race(course, budget, settings, device),
                "peer": race(peer, budget, settings, device)}
        pair["ratio"] = round(pair["course"]["fd"] / max(pair["peer"]["fd"], 1e-9), 4)
        pair["target_ratio"] = TARGETS[name]
        pair["meets_target"] = pair["ratio"] <= TARGETS[name] if name == "diffusion" else pair["ratio"] < 1
        report["pairs"][name] = pair
    (out / "peers.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out / "peers.png")
    print(f"wrote {out / 'peers.json'} and {out / 'peers.png'}\n")
    print(table(report))
    return report


# ---------------------------------------------------------------- the plot and the README table


def plot(report: dict, path: Path) -> None:
    """Frechet distance (log scale) against training seconds, course and peer, one panel per pair."""
    from matplotlib.figure import Figure  # no pyplot: works with any backend, and without a display

    pairs = report["pairs"]
    fig = Figure(figsize=(5 * max(len(pairs), 1), 4.2), layout="constrained")
    axes = fig.subplots(1, max(len(pairs), 1), squeeze=False)[0]
    for ax, (name, pair) in zip(axes, pairs.items()):
        if pair["status"] != "ok":
            ax.text(0.5, 0.5, f"{name}: {pair['status']}\n{INSTALL_DIFFUSERS}", ha="center", va="center",
                    transform=ax.transAxes, wrap=True)
            ax.set_axis_off()
            continue
        for side, style in (("course", "o-"), ("peer", "s--")):
            seconds, fds = zip(*pair[side]["curve"])
            ax.plot(seconds, fds, style, label=f"{pair[side]['name']} ({pair[side]['images_per_s']:,.0f} img/s)")
        ax.axhline(report["fd_real"], color="grey", linestyle=":", label="held-out real digits")
        ax.set_yscale("log")
        ax.set_xlabel("training seconds")
        ax.set_ylabel("Frechet distance (lower is better)")
        ax.set_title(f"{name}: {pair['budget_s']:g} s each, ratio {pair['ratio']:.3g}")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"Same digits, machine and training time ({report['machine']['device']}, torch threads: "
                 f"{report['machine']['threads']}; {report['n_scored']} images scored at each point)")
    fig.savefig(path, dpi=110)


START, END = "<!-- peers:start -->", "<!-- peers:end -->"


def table(report: dict) -> str:
    """The README's markdown table: one row per pair (put between `START` and `END` by
    `python -m course_lib.results_table runs/peers/peers.json --readme README.md`)."""
    rows = [
        "| pair | budget s | course model (parameters) | Frechet distance | images/s | peer model (parameters) "
        "| Frechet distance | images/s | ratio course / peer (target) | test NELBO course / peer |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, pair in report["pairs"].items():
        if pair["status"] != "ok":
            rows.append(f"| {name} | {pair['status']}: {INSTALL_DIFFUSERS} |  |  |  |  |  |  |  |  |")
            continue
        course, peer = pair["course"], pair["peer"]
        target = f"<= {pair['target_ratio']:g}" if name == "diffusion" else "< 1"
        verdict = "yes" if pair["meets_target"] else "no"
        nelbo = f"{course['nelbo_test']:.1f} / {peer['nelbo_test']:.1f}" if "nelbo_test" in course else "-"
        rows.append(
            f"| {name} | {pair['budget_s']:g} | {course['name']} ({course['n_params']:,}) | {course['fd']:,.1f} "
            f"| {course['images_per_s']:,.0f} | {peer['name']} ({peer['n_params']:,}) | {peer['fd']:,.1f} "
            f"| {peer['images_per_s']:,.0f} | {pair['ratio']:.3f} ({target}: {verdict}) | {nelbo} |"
        )
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the course's models and their peers for the same time, "
                                                 "and score both with the course's Frechet distance.")
    parser.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)}")
    parser.add_argument("--out", type=Path, required=True, help="folder for peers.json and peers.png")
    parser.add_argument("--only", nargs="+", metavar="PAIR", help=f"some of: {', '.join(PAIRS)}")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiplies every training budget")
    parser.add_argument("--course-diffusion", default="min_snr", choices=list(COURSE_DIFFUSION),
                        help="the course's diffusion recipe (default: min_snr, the faster to quality)")
    args = parser.parse_args(argv)
    return run(args.profile, args.out, args.only, args.budget_scale, args.course_diffusion)


if __name__ == "__main__":
    main()
