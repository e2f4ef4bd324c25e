"""Beat the peers: the course's models against well-known implementations, trained side by side for the same time.

Students could use other code instead of this course's. Each pair below trains the course's model and a *peer*,
on the same digits, on the same machine, for the same wall-clock budget, and scores both with the course's own
quality metric (`course_lib.metrics`: Frechet distance in the bundled digit classifier's features; lower is better):

- **diffusion**: lesson 4's U-Net DDPM (with Min-SNR weighting) vs the Hugging Face diffusion course's
  `diffusers` UNet2DModel + DDPMScheduler (needs `pip install -e ".[peers]"`);
- **vae**: lesson 2's convolutional VAE vs the PyTorch examples' MLP VAE;
- **gan**: lesson 3's DCGAN vs the PyTorch examples' DCGAN.

Those peers are their sources' models, several times larger than the course's; on a CPU they may not leave noise
within the budget, which says little about how the course trains. Two more pairs race networks of the *same size*,
so that what differs is the training recipe (lesson 4's Min-SNR weighting, bfloat16 and EMA; lesson 3's learning
rate and augmentation) against the same kind of network trained the usual way:

- **diffusion_same_size**: lesson 4's DDPM vs a diffusers UNet2DModel with the course U-Net's widths and no
  attention (`peer_models.diffusers_same_size_unet`: parameters within 10% of the course's), trained with diffusers'
  DDPMScheduler (lesson 4's linear schedule, T = 1000: DDPMScheduler's default) and the plain MSE noise loss, Adam
  at lesson 4's learning rate and batch size, float32, no EMA; sampled with the course's DDIM in as many steps;
- **gan_same_size**: lesson 3's DCGAN vs the PyTorch examples' DCGAN cut to 28 x 28 at the course's width
  (`peer_models.PyTorchExamplesDCGAN28`), trained with the example's settings (Adam 2e-4, beta1 0.5, BCE, its
  weight init, batch 64).

The course's side of each pair is built from its recipe in `course_lib.recipes` (by `setups.vae_setup`,
`dcgan_setup`, `ddpm_setup`), with the lesson's batch size. The peers live in `course_lib.tools.peer_models`,
re-implemented from their public sources at their documented settings: nothing is tuned for them, and nothing of
theirs is changed except what the task needs (one channel, 28 x 28 digits; the DCGAN's digits are resized to its
64 x 64 and back).

    python -m course_lib.tools.peers --profile cpu --out runs/peers                    # every pair, ~1 h on 2 cores
    python -m course_lib.tools.peers --profile cpu --out runs/peers --only diffusion_same_size gan_same_size  # ~30 min
    python -m course_lib.tools.peers --profile smoke --out /tmp/p --only vae           # seconds
    python -m course_lib.tools.results_table runs/peers/peers.json --readme README.md  # the README's table

How a race works: each model trains with `fit` until it has spent `budget_s` seconds training. At a few points
along the way (`SETTINGS[profile].checkpoints`, fractions of the budget) the clock stops, `n_scored` images are
sampled (the same seed every time) and scored, and the clock starts again, so scoring costs neither side training
time. Writes `OUT/peers.json` (per pair: the budget, both models' final Frechet distance, images/s, images seen,
parameters, settings and curve of (seconds, Frechet distance), and ratio = course / peer; the machine; the distances
of held-out real digits and of noise for as many images, to read the scores between) and `OUT/peers.png`.

Time to quality: a distance at one budget says where each side stands then, not how much sooner one got there. Each
pair has a fixed Frechet distance (`SETTINGS[profile].thresholds`), and each side's `seconds_to_threshold` is the
first training second at which its curve is at or below it (`seconds_to_reach`: linearly interpolated between the
checkpoints around the first one at or below it; None, shown as "> budget", when no checkpoint is). Where both sides
reach it, `time_ratio` = course seconds / peer seconds (below 1: the course gets there sooner).

A side whose training stops before its budget (NaN, the GAN guard) is no result: its pair gets `"status": "stopped"`
and no ratio, and the exit code is 1; Ctrl-C keeps the pairs raced so far, marks its pair "interrupted", exits 130.
"""

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset

from .. import recipes
from ..config import PROFILES, pick_device, seed_everything
from ..data import load_dataset, make_loader
from ..fastpath import describe_fast_path, describe_machine, fast_dtype
from ..metrics import fd_to_training_digits, reference_points
from ..nets import n_params
from ..training import Callback, StopTraining, fit
from ..vae import negative_elbo
from . import peer_models
from .setups import Setup, dcgan_setup, ddpm_setup, vae_setup
from .peer_models import INSTALL_DIFFUSERS, import_diffusers

PAIRS = ("diffusion", "vae", "gan", "diffusion_same_size", "gan_same_size")


@dataclass(frozen=True)
class RaceSettings:
    """How long and how carefully one profile races: seconds of training per model and pair, images scored at each
    checkpoint, DDIM steps when a diffusion model is sampled, the checkpoints as fractions of the budget (a pair in
    `pair_checkpoints` has its own), and per pair the Frechet distance whose time to reach is reported."""

    budgets: dict  # pair -> seconds of training for each of its two models
    n_scored: int
    ddim_steps: int
    checkpoints: tuple[float, ...]
    thresholds: dict  # pair -> the Frechet distance of "time to quality" (`seconds_to_reach`)
    pair_checkpoints: dict = field(default_factory=dict)  # pair -> its own checkpoints, where scoring is cheap
    diffusers_channels: tuple[int, int, int] = peer_models.DIFFUSERS_CHANNELS  # the HF course's; smoke shrinks it

    def checkpoints_of(self, pair: str) -> tuple[float, ...]:
        """The fractions of the budget at which `pair`'s models are scored."""
        return self.pair_checkpoints.get(pair, self.checkpoints)


# More checkpoints make a finer curve for the time to the threshold, and cost scoring time (not training time).
# Scoring a GAN costs a second or two (500 samples are one batch through G): the same-size GAN pair is scored every
# 1/16 of its budget. A diffusion model's 500 samples cost 50 DDIM steps each (about half a minute to a minute on a
# CPU): the same-size diffusion pair is scored 6 times; the first three pairs keep their 4 points.
EVERY_16TH = tuple(k / 16 for k in range(1, 17))
SAME_SIZE_DIFFUSION_POINTS = (0.125, 0.25, 0.375, 0.5, 0.75, 1.0)

# Thresholds (the distance each pair is timed to). The Frechet distance of 500 samples runs from about 20 (held-out
# real digits) to about 95,000 (uniform noise); digits are recognizable below about 1,000. Each threshold is a value
# the course's side reaches within about the first half of its budget on a 2-core CPU, so that a peer learning up
# to about twice as slowly still reaches it within the budget and the times compare: lesson 3's DCGAN is at about
# 500 after 50 s (350 after 130 s); lesson 4's DDPM at about 250 after 300 s (13,900 after 60 s of one busy thread,
# 13,000 images), so 1,000 falls about a third of the way; lesson 2's VAE at about 650 after 60 s.
CPU_THRESHOLDS = {"diffusion": 1000.0, "vae": 800.0, "gan": 500.0, "diffusion_same_size": 1000.0,
                  "gan_same_size": 500.0}

SETTINGS = {
    # smoke: every line runs in seconds; tiny U-Nets on both sides, as lesson 4's smoke profile does. Its thresholds
    # only exercise the code: after 1 s every model is still near noise.
    "smoke": RaceSettings({name: 1.0 for name in PAIRS}, n_scored=64, ddim_steps=5, checkpoints=(0.5, 1.0),
                          thresholds={name: 70_000.0 for name in PAIRS}, diffusers_channels=(8, 16, 16)),
    "cpu": RaceSettings({"diffusion": 300.0, "vae": 60.0, "gan": 150.0, "diffusion_same_size": 300.0,
                         "gan_same_size": 150.0}, n_scored=500, ddim_steps=50, checkpoints=(0.125, 0.25, 0.5, 1.0),
                        thresholds=CPU_THRESHOLDS,
                        pair_checkpoints={"gan_same_size": EVERY_16TH,
                                          "diffusion_same_size": SAME_SIZE_DIFFUSION_POINTS}),
    # gpu: the same budgets and thresholds (1,000 samples score a little lower than 500: the thresholds are reached
    # a little sooner on both sides alike)
    "gpu": RaceSettings({"diffusion": 300.0, "vae": 60.0, "gan": 150.0, "diffusion_same_size": 300.0,
                         "gan_same_size": 150.0}, n_scored=1000, ddim_steps=50, checkpoints=(0.125, 0.25, 0.5, 1.0),
                        thresholds=CPU_THRESHOLDS,
                        pair_checkpoints={"gan_same_size": EVERY_16TH,
                                          "diffusion_same_size": SAME_SIZE_DIFFUSION_POINTS}),
}

# The course's diffusion recipes, as (recipe, batch size). "min_snr" is lesson 4's own (`recipes.DDPM`, at the
# lesson's batch size: None), adopted after this race measured it against the paper's plain loss;
# `--course-diffusion plain` races the plain loss with the settings lesson 4 used before (Adam 2e-3, batch 64).
COURSE_DIFFUSION = {
    "min_snr": (recipes.DDPM, None),
    "plain": (replace(recipes.DDPM, min_snr_gamma=None, lr=2e-3), 64),
}


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
        """Make sure the curve ends where training ended (when it stopped before the budget: NaN, D won)."""
        if not self.curve or self.curve[-1][0] != self.seconds:
            self.checkpoint()


def seconds_to_reach(curve, threshold: float) -> float | None:
    """The first training second at which a curve of (seconds, Frechet distance) is at or below `threshold`:
    linearly interpolated between the last checkpoint above it and the first at or below it,

        t = s_0 + (FD_0 - threshold) / (FD_0 - FD_1) * (s_1 - s_0),

    the first checkpoint's seconds when that one is already at or below it (the curve says nothing earlier), and
    None when no checkpoint is ("not reached within the budget").

    >>> seconds_to_reach([(10, 900.0), (20, 700.0), (30, 400.0)], 500)
    26.67
    >>> seconds_to_reach([(10, 450.0), (20, 300.0)], 500), seconds_to_reach([(10, 900.0), (20, 600.0)], 500)
    (10.0, None)
    """
    previous = None
    for seconds, fd in curve:
        if fd <= threshold:
            if previous is None:
                return round(float(seconds), 2)
            s0, fd0 = previous
            return round(s0 + (fd0 - threshold) / (fd0 - fd) * (seconds - s0), 2)
        previous = (seconds, fd)
    return None


def time_ratio(course_s: float | None, peer_s: float | None) -> float | None:
    """Course seconds / peer seconds to the threshold, when both reached it (below 1: the course got there sooner).

    >>> time_ratio(30.0, 120.0), time_ratio(30.0, None)
    (0.25, None)
    """
    if course_s is None or peer_s is None:
        return None
    return round(course_s / max(peer_s, 1e-9), 4)


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
    """One model in a race: a name, its settings in words, how to build its `Setup`, the data it trains on (the
    pair's digits, in the form the model reads them), its batch size, and optional extra scores after training."""

    name: str
    settings: str
    build: Callable[[], Setup]
    data: TensorDataset
    batch_size: int
    extra: Callable[[nn.Module], dict] | None = None


def race(entrant: Entrant, budget_s: float, settings: RaceSettings, device: torch.device,
         checkpoints: tuple[float, ...] | None = None) -> dict:
    """Train `entrant` for `budget_s` seconds of training, scoring at `checkpoints` (fractions of the budget; by
    default `settings.checkpoints`); returns its row of peers.json."""
    seed_everything(0)
    setup = entrant.build()

    def score():
        images = setup.sample(settings.n_scored, torch.Generator().manual_seed(1))
        return fd_to_training_digits(images.float().clamp(0, 1))

    clock = Race(budget_s, checkpoints or settings.checkpoints, score, entrant.name, device)
    # the setup's own callbacks (EMA...) first, so the model is scored as its lesson would use it
    callbacks = [*setup.callbacks, clock.started()]
    if setup.cosine_lr:
        callbacks.append(CosineOverBudget(setup.optimizer, clock))
    history = fit(setup.model, make_loader(entrant.data, entrant.batch_size), clock.counting(setup.step),
                  setup.optimizer, epochs=10**9, device=device, callbacks=callbacks, progress=False)
    clock.finish()
    model = setup.model
    gan = hasattr(model, "generator") and hasattr(model, "discriminator")  # GAN rows count G's parameters
    row = {"name": entrant.name, "settings": entrant.settings, "fd": round(clock.curve[-1][1], 2),
           "train_seconds": round(clock.seconds, 2), "images_seen": clock.images,
           "images_per_s": round(clock.images / max(clock.seconds, 1e-9), 1),
           "n_params": n_params(model.generator if gan else model),
           "curve": [[round(s, 2), round(fd, 2)] for s, fd in clock.curve], "stopped": history.stopped}
    row.update({"d_params": n_params(model.discriminator)} if gan else {})
    if entrant.extra:
        row.update({k: round(v, 2) for k, v in entrant.extra(model).items()})
    return row


# ---------------------------------------------------------------- the pairs


def vae_pair(profile: str, device: torch.device, settings: RaceSettings, **_) -> tuple[Entrant, Entrant]:
    """Lesson 2's VAE vs the PyTorch examples' VAE; both also give their test negative ELBO (nats per image, same
    Bernoulli likelihood)."""
    # No augmentation here: lesson 2 adds it for its 60-epoch run, but within a 60 s budget it costs more than it
    # gives (measured: Frechet distance 876 with it, 665 without, against the peer's 721).
    R = replace(recipes.VAE16, augment=0.0)
    s = R.settings(profile)
    batch_size = s.for_model("conv")[1]
    train = load_dataset("mnist", "train", n=s.n_train)
    test_x = load_dataset("mnist", "test", source="bundled").tensors[0]

    def nelbo(model):
        return {"nelbo_test": negative_elbo(model, test_x)}

    cosine = " with a cosine over the budget" if R.cosine_lr else ""
    course = Entrant("course ConvVAE", f"lesson 2's ConvVAE ({R.name}), negative ELBO with beta {R.beta:g}, no "
                     f"augmentation, Adam {R.lr:g}{cosine}, batch {batch_size}",
                     lambda: vae_setup(profile, device, R), train, batch_size, nelbo)
    peer = Entrant("pytorch/examples VAE", f"pytorch/examples vae/main.py: MLP 784-400-20, BCE + KLD summed, "
                   f"Adam {peer_models.VAE_LR:g}, batch {peer_models.VAE_BATCH_SIZE}",
                   lambda: peer_models.pytorch_examples_vae_setup(device), train, peer_models.VAE_BATCH_SIZE, nelbo)
    return course, peer


def gan_pair_course(profile: str, device: torch.device) -> Entrant:
    """The course's side of both GAN pairs: lesson 3's DCGAN at its recipe and batch size."""
    R = recipes.DCGAN
    s = R.settings(profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    augmented = f", D's inputs augmented ({R.augment:g})" if R.augment else ""
    return Entrant("course DCGAN", f"lesson 3's DCGAN for 28 x 28 ({R.name}), {R.loss.replace('_', '-')} loss, "
                   f"Adam {R.lr:g} {R.betas}{augmented}, batch {s.batch_size}",
                   lambda: dcgan_setup(profile, device), train, s.batch_size)


def gan_pair(profile: str, device: torch.device, settings: RaceSettings, **_) -> tuple[Entrant, Entrant]:
    """Lesson 3's DCGAN (28 x 28) vs the PyTorch examples' DCGAN (digits resized to 64 x 64, samples back to 28)."""
    course = gan_pair_course(profile, device)
    x, y = course.data.tensors
    big = TensorDataset(torch.cat([peer_models.to_dcgan_size(part) for part in x.split(1000)]), y)  # once, untimed
    peer = Entrant("pytorch/examples DCGAN", f"pytorch/examples dcgan/main.py: {peer_models.DCGAN_SIZE} x "
                   f"{peer_models.DCGAN_SIZE}, nz 100, ngf = ndf = 64, BatchNorm, N(0, 0.02) init, BCE, Adam "
                   f"{peer_models.DCGAN_LR:g} ({peer_models.DCGAN_BETA1:g}, 0.999), "
                   f"batch {peer_models.DCGAN_BATCH_SIZE}; samples shrunk to 28 x 28",
                   lambda: peer_models.pytorch_examples_dcgan_setup(device), big, peer_models.DCGAN_BATCH_SIZE)
    return course, peer


def _course_diffusion(profile: str, course_diffusion: str, steps: int, device: torch.device):
    """The course's side of a diffusion pair: (recipe, batch size, Entrant builder, settings in words)."""
    R, batch_size = COURSE_DIFFUSION[course_diffusion]
    s = R.settings(profile)
    batch_size = batch_size or s.batch_size

    def build():
        ddpm = ddpm_setup(profile, device, R)
        sample = ddpm.sample
        ddpm.sample = lambda n, generator: sample(n, generator, steps=steps)
        return ddpm

    weighting = f"Min-SNR {R.min_snr_gamma:g}" if R.min_snr_gamma else "plain loss"
    dtype = fast_dtype(device)
    precision = f"{str(dtype).replace('torch.', '')} autocast" if dtype else "float32"
    words = (f"lesson 4's U-Net {'/'.join(map(str, s.channels))}, {R.schedule} schedule T = {R.T}, {weighting}, "
             f"Adam {R.lr:g}, batch {batch_size}, EMA {R.ema_decay:g}, {precision}; DDIM {steps} steps")
    return R, batch_size, build, words


def diffusion_pair(profile: str, device: torch.device, settings: RaceSettings,
                   course_diffusion: str = "min_snr") -> tuple[Entrant, Entrant]:
    """The course's DDPM (`COURSE_DIFFUSION[course_diffusion]`) vs the HF course's diffusers recipe, both sampled
    with DDIM in `settings.ddim_steps` steps."""
    import_diffusers()  # fail before any training when diffusers is missing
    steps = settings.ddim_steps
    R, batch_size, course_build, words = _course_diffusion(profile, course_diffusion, steps, device)
    train = load_dataset("mnist", "train", n=R.settings(profile).n_train)
    course = Entrant(f"course DDPM ({course_diffusion})", words, course_build, train, batch_size)
    channels = settings.diffusers_channels
    peer = Entrant("diffusers UNet2DModel",
                   f"HF diffusion course unit 2: UNet2DModel {'/'.join(map(str, channels))} with attention at 14 and "
                   f"7 px, DDPMScheduler squaredcos_cap_v2 T = 1000, MSE on the noise, "
                   f"Adam {peer_models.DIFFUSERS_LR:g}, batch {peer_models.DIFFUSERS_BATCH_SIZE}, float32; "
                   f"diffusers DDIMScheduler {steps} steps",
                   lambda: peer_models.diffusers_setup(device, channels, steps), train,
                   peer_models.DIFFUSERS_BATCH_SIZE)
    return course, peer


def diffusion_same_size_pair(profile: str, device: torch.device, settings: RaceSettings,
                             course_diffusion: str = "min_snr") -> tuple[Entrant, Entrant]:
    """The course's DDPM vs a diffusers UNet2DModel of the same size trained the usual way
    (`peer_models.diffusers_same_size_setup`): diffusers' DDPMScheduler with the course's schedule, the plain MSE on
    the noise, float32, no EMA; Adam at the course side's learning rate and batch size (lesson 4's 1e-3 is also the
    HF course's), so that what differs is the course's Min-SNR weighting, bfloat16 and EMA (lesson 4 has no
    augmentation). Both are sampled with the course's DDIM in `settings.ddim_steps` steps."""
    peer_models.import_diffusers_without_middle_block()  # fail before any training when diffusers cannot build it
    steps = settings.ddim_steps
    R, batch_size, course_build, words = _course_diffusion(profile, course_diffusion, steps, device)
    s = R.settings(profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    course = Entrant(f"course DDPM ({course_diffusion})", words, course_build, train, batch_size)
    unet = R.build(s)  # the course's network, for its widths and time embedding
    channels, time_dim, lr = unet.channels, unet.time_dim, R.lr
    peer = Entrant("diffusers UNet2DModel, same size",
                   f"UNet2DModel {'/'.join(map(str, channels))}, DownBlock2D/UpBlock2D, 1 layer per block, no "
                   f"attention, no middle block, time embedding {time_dim}; DDPMScheduler {R.schedule} T = {R.T}, MSE "
                   f"on the noise, t ~ randint(0, {R.T}), Adam {lr:g}, batch {batch_size}, float32, no EMA; the "
                   f"course's DDIM {steps} steps",
                   lambda: peer_models.diffusers_same_size_setup(device, channels, time_dim, lr, R.T, R.schedule,
                                                                 steps),
                   train, batch_size)
    return course, peer


def dcgan_width(gan: nn.Module) -> int:
    """The width of lesson 3's DCGAN (`DCGANGenerator(width=...)`): the channels of G's 14 x 14 layer."""
    return gan.generator.upsample[0].out_channels


def gan_same_size_pair(profile: str, device: torch.device, settings: RaceSettings, **_) -> tuple[Entrant, Entrant]:
    """Lesson 3's DCGAN vs the PyTorch examples' DCGAN cut to 28 x 28 at the course's width
    (`peer_models.PyTorchExamplesDCGAN28`), with the example's settings: Adam 2e-4 (0.5, 0.999), BCE, N(0, 0.02)
    init, batch 64, no augmentation."""
    course = gan_pair_course(profile, device)
    width = dcgan_width(recipes.DCGAN.build(recipes.DCGAN.settings(profile)))
    x, y = course.data.tensors
    small = TensorDataset(peer_models.to_dcgan28_range(x), y)  # once, untimed
    peer = Entrant("pytorch/examples DCGAN at 28 x 28", f"pytorch/examples dcgan/main.py cut to 28 x 28 (7 -> 14 -> "
                   f"28), nz 100, ngf = ndf = {width}, BatchNorm, N(0, 0.02) init, BCE, Adam "
                   f"{peer_models.DCGAN_LR:g} ({peer_models.DCGAN_BETA1:g}, 0.999), "
                   f"batch {peer_models.DCGAN_BATCH_SIZE}",
                   lambda: peer_models.pytorch_examples_dcgan28_setup(device, width), small,
                   peer_models.DCGAN_BATCH_SIZE)
    return course, peer


PAIR_BUILDERS = {"diffusion": diffusion_pair, "vae": vae_pair, "gan": gan_pair,
                 "diffusion_same_size": diffusion_same_size_pair, "gan_same_size": gan_same_size_pair}
# Targets for ratio = course FD / peer FD: at most half for diffusion, below 1 (the course better) for the others
TARGETS = {"diffusion": 0.5, "vae": 1.0, "gan": 1.0, "diffusion_same_size": 1.0, "gan_same_size": 1.0}


def meets_target(name: str, ratio: float) -> bool:
    """ratio = course FD / peer FD: at most `TARGETS[name]` when that is below 1, below 1 otherwise."""
    return ratio <= TARGETS[name] if TARGETS[name] < 1 else ratio < 1


def machine(device: torch.device) -> dict:
    """What the race ran on: torch, threads, device, processor, the fast path, and the diffusers version."""
    try:
        diffusers_version = import_diffusers().__version__
    except ImportError:  # the diffusion pair is skipped then
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
        raise SystemExit(f"Unknown course diffusion recipe {course_diffusion!r}. Use one of {', '.join(COURSE_DIFFUSION)}.")
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
        checkpoints = settings.checkpoints_of(name)
        try:
            pair = {"status": "ok", "budget_s": budget,
                    "course": race(course, budget, settings, device, checkpoints),
                    "peer": race(peer, budget, settings, device, checkpoints)}
        except KeyboardInterrupt:
            _write(report | {"pairs": report["pairs"] | {name: {"status": "interrupted", "reason": "Ctrl-C"}}}, out)
            raise
        threshold = settings.thresholds[name]
        pair["fd_threshold"] = threshold
        for side in ("course", "peer"):
            pair[side]["seconds_to_threshold"] = seconds_to_reach(pair[side]["curve"], threshold)
        early = "; ".join(f"{side}: {pair[side]['stopped']}" for side in ("course", "peer")
                          if pair[side]["stopped"] not in (None, "budget"))
        if early:  # a side that stopped before its budget (NaN, D won) has no comparable score
            pair.update(status="stopped", reason=f"training stopped before the budget ({early})")
        else:
            pair["ratio"] = round(pair["course"]["fd"] / max(pair["peer"]["fd"], 1e-9), 4)
            pair["target_ratio"] = TARGETS[name]
            pair["meets_target"] = meets_target(name, pair["ratio"])
            pair["time_ratio"] = time_ratio(pair["course"]["seconds_to_threshold"],
                                            pair["peer"]["seconds_to_threshold"])
        report["pairs"][name] = pair
        _write(report, out)
    _write(report, out)
    print(f"wrote {out / 'peers.json'} and {out / 'peers.png'}\n")
    print(table(report))
    return report


def _write(report: dict, out: Path) -> None:  # after each pair: an interrupted race keeps the pairs before it
    (out / "peers.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out / "peers.png")


# ---------------------------------------------------------------- the plot and the README table


def not_raced_because(pair: dict) -> str:
    """Why a pair has no result, in a few words: the install command when diffusers is missing, else the reason."""
    reason = pair.get("reason", "")
    return INSTALL_DIFFUSERS if pair["status"] == "skipped" and INSTALL_DIFFUSERS in reason else reason


def plot(report: dict, path: Path) -> None:
    """Frechet distance (log scale) against training seconds, course and peer, one panel per pair."""
    from matplotlib.figure import Figure  # no pyplot: works with any backend, and without a display

    pairs = report["pairs"]
    fig = Figure(figsize=(5 * max(len(pairs), 1), 4.2), layout="constrained")
    axes = fig.subplots(1, max(len(pairs), 1), squeeze=False)[0]
    for ax, (name, pair) in zip(axes, pairs.items()):
        if pair["status"] != "ok":
            why = not_raced_because(pair)
            ax.text(0.5, 0.5, f"{name}: {pair['status']}\n{why}", ha="center", va="center",
                    transform=ax.transAxes, wrap=True)
            ax.set_axis_off()
            continue
        for side, style in (("course", "o-"), ("peer", "s--")):
            seconds, fds = zip(*pair[side]["curve"])
            lines = ax.plot(seconds, fds, style, label=f"{pair[side]['name']} ({pair[side]['images_per_s']:,.0f} "
                                                       f"img/s)")
            reached = pair[side].get("seconds_to_threshold")
            if reached is not None:
                ax.axvline(reached, color=lines[0].get_color(), linestyle=":", alpha=0.7)
        ax.axhline(report["fd_real"], color="grey", linestyle=":", label="held-out real digits")
        if "fd_threshold" in pair:
            ax.axhline(pair["fd_threshold"], color="black", linestyle="-.", linewidth=0.8,
                       label=f"threshold {pair['fd_threshold']:,g}: {threshold_text(pair)}")
        ax.set(yscale="log", xlabel="training seconds", ylabel="Frechet distance (lower is better)",
               title=f"{name}: {pair['budget_s']:g} s each, ratio {pair['ratio']:.3g}")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"Same digits, machine and training time ({report['machine']['device']}, torch threads: "
                 f"{report['machine']['threads']}; {report['n_scored']} images scored at each point)")
    fig.savefig(path, dpi=110)


START, END = "<!-- peers:start -->", "<!-- peers:end -->"


def threshold_text(pair: dict) -> str:
    """Seconds to the pair's threshold, course / peer, and their ratio: "62 s / > 150 s (< 0.41)"; a side that never
    reached it shows "> budget", and the ratio is then a bound (course reached it: below course s / budget)."""

    def seconds(side):
        s = pair[side].get("seconds_to_threshold")
        return f"{s:,.0f} s" if s is not None else f"> {pair['budget_s']:g} s"

    course_s, peer_s = pair["course"].get("seconds_to_threshold"), pair["peer"].get("seconds_to_threshold")
    if course_s is not None and peer_s is not None:
        ratio = f"{time_ratio(course_s, peer_s):.2f}"
    elif course_s is not None:
        ratio = f"< {course_s / pair['budget_s']:.2f}"
    elif peer_s is not None:
        ratio = f"> {pair['budget_s'] / max(peer_s, 1e-9):.2f}"
    else:
        ratio = "neither"
    return f"{seconds('course')} / {seconds('peer')} ({ratio})"


def table(report: dict) -> str:
    """The README's markdown table: one row per pair (put between `START` and `END` by
    `python -m course_lib.tools.results_table runs/peers/peers.json --readme README.md`). "time to FD" is each
    side's training seconds to the pair's threshold and their ratio course / peer (`seconds_to_reach`)."""
    rows = [
        "| pair | budget s | course model (parameters) | Frechet distance | images/s | peer model (parameters) "
        "| Frechet distance | images/s | ratio course / peer (target) | time to FD <= threshold: course / peer "
        "(ratio) | test NELBO course / peer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, pair in report["pairs"].items():
        if pair["status"] != "ok":
            why = not_raced_because(pair)
            rows.append(f"| {name} | {pair['status']}: {why} |  |  |  |  |  |  |  |  |  |")
            continue
        course, peer = pair["course"], pair["peer"]
        target = f"<= {pair['target_ratio']:g}" if pair["target_ratio"] < 1 else "< 1"
        verdict = "yes" if pair["meets_target"] else "no"
        nelbo = f"{course['nelbo_test']:.1f} / {peer['nelbo_test']:.1f}" if "nelbo_test" in course else "-"
        timed = f"{pair['fd_threshold']:,g}: {threshold_text(pair)}" if "fd_threshold" in pair else "-"
        rows.append(
            f"| {name} | {pair['budget_s']:g} | {course['name']} ({course['n_params']:,}) | {course['fd']:,.1f} "
            f"| {course['images_per_s']:,.0f} | {peer['name']} ({peer['n_params']:,}) | {peer['fd']:,.1f} "
            f"| {peer['images_per_s']:,.0f} | {pair['ratio']:.3f} ({target}: {verdict}) | {timed} | {nelbo} |"
        )
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course_lib.tools.peers",
                                     description="Train the course's models and their peers for the same time, "
                                                 "and score both with the course's Frechet distance.")
    parser.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)}")
    parser.add_argument("--out", type=Path, required=True, help="folder for peers.json and peers.png")
    parser.add_argument("--only", nargs="+", metavar="PAIR", help=f"some of: {', '.join(PAIRS)}")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiplies every training budget")
    parser.add_argument("--course-diffusion", default="min_snr", choices=list(COURSE_DIFFUSION),
                        help="the course's diffusion recipe (default: min_snr, the faster to quality)")
    args = parser.parse_args(argv)
    try:
        report = run(args.profile, args.out, args.only, args.budget_scale, args.course_diffusion)
    except KeyboardInterrupt:
        print(f"race interrupted: {args.out / 'peers.json'} keeps the pairs raced before it.", file=sys.stderr)
        return 130
    stopped = [name for name, pair in report["pairs"].items() if pair["status"] not in ("ok", "skipped")]
    if stopped:
        print(f"not results, a training stopped before its budget: {', '.join(stopped)}", file=sys.stderr)
    return 1 if stopped else 0


if __name__ == "__main__":
    sys.exit(main())
