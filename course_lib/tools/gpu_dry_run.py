"""The `gpu` profile, exercised without a GPU: every model the lessons train, built at the `gpu` profile's sizes and
trained for a few steps at its batch sizes on the CPU, then sampled, so that a shape, memory or setting error of that
profile shows here before a student meets it on Colab.

    python -m course_lib.tools.gpu_dry_run                    # every model, at the gpu profile's batch sizes
    python -m course_lib.tools.gpu_dry_run --only diffusion   # the models of one lesson (or one model's name)
    python -m course_lib.tools.gpu_dry_run --batch 8 16       # two small batches; the memory is extrapolated

Each model is built from its recipe (`course_lib.recipes`) with the lesson's `gpu` settings, trained with the
lesson's own step function, optimizer and callbacks (EMA, cosine schedule, guard, growth) by `fit` for a few steps
on bundled digits (nothing is downloaded), and its sampler is run for two samples (a diffusion model: DDIM in two
steps). Checked: every step's numbers are finite, the samples have the lesson's shape, are finite, and images lie
in [0, 1].

**Memory** is measured, not estimated: the torch profiler records every allocation and free of CPU memory from the
building of the model to the end of the last step, and the table gives the largest total held at once. That total
holds what a GPU holds too: weights, gradients, Adam's two averages per weight, the EMA copy, the copies `fit` keeps
to undo a step whose numbers are not finite, the batch, and the activations kept for the backward pass. It is
measured in float32 (the fast path is switched off here; a T4 computes the U-Nets' activations in float16, so it
needs less) and leaves out what CUDA itself takes (its context and cuDNN's workspaces, about 0.5-1 GB on a T4).
With `--batch B1 B2`, each model is measured at those two batch sizes and the memory at the `gpu` batch size is
extrapolated along straight lines (memory = fixed + per sample x batch: the weights and optimizer states do not
depend on the batch, the activations grow in proportion to it); see `extrapolate`.
"""

import argparse
import contextlib
import inspect
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.utils.data import TensorDataset

from .. import recipes
from ..autoencoders import ae_loss, random_corruption
from ..conditional import GuidedModel, cfg_step, cvae_step
from ..config import seed_everything
from ..data import load_dataset, make_loader
from ..diffusion import DiffusionSchedule, ddim_sample
from ..gan_variants import EBGANStep, MSGANStep
from ..gans import GANGuard, GANStep
from ..latent_diffusion import decode_latents, encode_dataset
from ..nets import evaluating, n_params
from ..pix2pix import Pix2PixStep, hide_lower_half
from ..progressive import Grow
from ..recipes import LessonSettings, Recipe, lesson_settings
from ..toy2d import toy_dataset
from ..training import EMA, CosineSchedule, fit
from ..vae import vae_step
from .step_memory import peak_memory
from . import dry_runs_flow as flows
from . import dry_runs_restoration as restore
from . import dry_runs_text_to_image as text_to_image
from .setups import Setup, dcgan_setup, ddpm_setup

PROFILE = "gpu"
T4_BYTES = 15 * 2**30  # the memory Colab's T4 offers (15 GiB)
CUDA_OVERHEAD_BYTES = 2**30  # CUDA's context and cuDNN's workspaces: not measured here, kept free in the budget
DDIM_STEPS = 2  # a diffusion sampler's steps in the dry run: enough to call the network and the update twice
N_SAMPLES = 2
TOY_BATCH = inspect.signature(recipes.train_toy_gan).parameters["batch_size"].default  # what lesson 3 trains with


@dataclass(frozen=True)
class DryRun:
    """One model a lesson trains: `build(settings, device, digits)` -> (Setup, training data), set up as the lesson
    sets it up. `recipes`: the recipe built, then any that train the same network with the same step (only a number
    of the loss differs), which this run covers too. `settings_name`: the model's name in the lesson's per-model
    settings (`LessonSettings.for_model`), or None when it trains with the lesson's own epochs and batch size."""

    lesson: str
    name: str
    recipes: tuple[Recipe, ...]
    build: Callable[[LessonSettings, torch.device, TensorDataset], tuple[Setup, TensorDataset]] = field(repr=False)
    settings_name: str | None = None
    steps: int = 3
    sample_shape: tuple[int, ...] = (1, 28, 28)
    batch_size: int | None = None  # fixed by the lesson whatever the profile (the toy GANs'); None: from settings

    def settings(self, profile: str = PROFILE) -> LessonSettings:
        return lesson_settings(self.lesson, profile)

    def epochs_and_batch(self, profile: str = PROFILE) -> tuple[int, int]:
        """The epochs and batch size the lesson trains this model with in `profile`."""
        s = self.settings(profile)
        epochs, batch = s.for_model(self.settings_name) if self.settings_name else (s.epochs, s.batch_size)
        return epochs, self.batch_size or batch


# ---------------------------------------------------------------- how each lesson sets its models up


def _adam(model: torch.nn.Module, R: Recipe) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=R.lr)


def _decoded(model: torch.nn.Module, shape: tuple[int, ...]) -> Callable:
    """A sampler that decodes codes drawn from N(0, I): the "generator" of an autoencoder (lessons 1, 2 and 6)."""
    return lambda n, generator: model.decode(torch.randn(n, *shape, generator=generator)).cpu()


def autoencoder(R: Recipe, denoising: bool = False):
    """Lessons 1, 2 and 6: L_AE on the digits (a denoising autoencoder compares with the clean digit)."""

    def build(s, device, digits):
        model = R.build(s).to(device)
        noise = torch.Generator().manual_seed(1)

        def step(model, batch):
            x = batch[0]
            return ae_loss(x, model(random_corruption(x, generator=noise) if denoising else x))

        shape = getattr(model, "latent_shape", None) or (model.latent_dim,)
        return Setup(model, step, _adam(model, R), _decoded(model, shape), cosine_lr=R.cosine_lr), digits

    return build


def vae(R: recipes.VAERecipe):
    """Lessons 2 and 5: the negative ELBO with the recipe's beta and augmentation (`vae_step`)."""

    def build(s, device, digits):
        model = R.build(s).to(device)
        step = vae_step(beta=R.beta, augment=R.augment, generator=torch.Generator().manual_seed(0))
        return Setup(model, step, _adam(model, R), lambda n, g: model.sample(n, g).cpu(), cosine_lr=R.cosine_lr), digits

    return build


def cvae(s, device, digits):
    """Lesson 5's conditional VAE: `cvae_step` on (digits, labels); sampled with a label per image."""
    R = recipes.CVAE
    model = R.build(s).to(device)
    step = cvae_step(beta=R.beta, augment=R.augment, generator=torch.Generator().manual_seed(0))
    sample = lambda n, g: model.sample(n, g, labels=torch.arange(n) % 10).cpu()  # noqa: E731
    return Setup(model, step, _adam(model, R), sample, cosine_lr=R.cosine_lr), digits


def gan(R: recipes.GANRecipe, guard: bool = True, grow: bool = False):
    """A GAN trained by `GANStep` with the recipe's settings (lessons 3, 5 and 7; a conditional GAN gets the labels),
    with the guard against a winning discriminator, and for lesson 7's progressive GAN the growth through the
    resolutions (`Grow`)."""

    def build(s, device, data):
        model = R.build(s).to(device)
        step = GANStep(model, generator=torch.Generator().manual_seed(0), **R.step_args())
        callbacks = [GANGuard()] if guard else []
        if grow:  # lesson 7: two steps per resolution, the second fading in, so every stage runs
            callbacks.append(Grow(model, steps_per_stage=2, fade_steps=1))
        return Setup(model, step, None, _gan_sampler(model), callbacks=callbacks), data

    return build


def _gan_sampler(model) -> Callable:
    if getattr(model, "num_classes", None):
        return lambda n, g: model.sample(n, g, labels=torch.arange(n) % 10).cpu()
    return lambda n, g: model.sample(n, g).cpu()


def toy_gan(R: recipes.GANRecipe):
    """Lesson 3's 2-D toy GANs (`recipes.train_toy_gan`), on points of the ring."""

    def build(s, device, digits):
        setup, _ = gan(R, guard=False)(s, device, digits)
        return setup, toy_dataset("ring", n=len(digits))

    return build


def pix2pix(R: recipes.Pix2PixRecipe):
    """Lesson 5's completion of the lower half of a digit, with the adversarial loss or L1 alone."""

    def build(s, device, digits):
        model = R.build(s).to(device)
        step = Pix2PixStep(model, **R.step_args())
        inputs = hide_lower_half(digits.tensors[0])
        return Setup(model, step, None, lambda n, g: model.translate(inputs[:n]).cpu()), digits

    return build


def ebgan(s, device, digits):
    """Lesson 7's EBGAN: an autoencoder as the discriminator (`EBGANStep`)."""
    R = recipes.EBGAN
    model = R.build(s).to(device)
    step = EBGANStep(model, margin=R.margin, lr_d=R.lr, lr_g=R.lr, betas=R.betas,
                     generator=torch.Generator().manual_seed(0))
    return Setup(model, step, None, _gan_sampler(model)), digits


def msgan(s, device, digits):
    """Lesson 7's conditional GAN with the mode-seeking term (`MSGANStep`), and the guard."""
    R = recipes.MSGAN
    model = R.build(s).to(device)
    step = MSGANStep(model, ms_weight=R.ms_weight, lr_d=R.lr, lr_g=R.lr_g or R.lr, betas=R.betas,
                     generator=torch.Generator().manual_seed(0))
    return Setup(model, step, None, _gan_sampler(model), callbacks=[GANGuard()]), digits


def ddpm(s, device, digits):
    """Lesson 4's DDPM as the benchmark sets it up (`ddpm_setup`: Algorithm 1, Min-SNR, EMA), sampled by DDIM."""
    setup = ddpm_setup(PROFILE, device)
    sample = setup.sample
    setup.sample = lambda n, g: sample(n, g, steps=DDIM_STEPS)
    return setup, digits


def guided_diffusion(R: recipes.DiffusionRecipe, latent: bool = False):
    """Lesson 5's classifier-free guidance, and lesson 6's on the latents of an autoencoder (untrained here: its
    latents have the shape and scale the U-Net is built for, which is all a dry run needs)."""

    def build(s, device, digits):
        schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
        model = R.build(s).to(device)
        ema = EMA(model, decay=R.ema_decay)
        step = cfg_step(schedule, p_uncond=R.p_uncond, generator=torch.Generator().manual_seed(0),
                        min_snr_gamma=R.min_snr_gamma, image_range=not latent)
        data, decode = digits, (lambda z: z.cpu())
        if latent:
            autoencoder = recipes.LATENT_AE.build(s).to(device)
            data, scale = encode_dataset(autoencoder, digits)
            decode = lambda z: decode_latents(autoencoder, z, scale)  # noqa: E731

        def sample(n, generator):
            labels = torch.arange(n) % 10
            z, _ = ddim_sample(GuidedModel(ema.model, labels, 3.0), schedule, n=n, steps=DDIM_STEPS,
                               shape=model.image_shape, image_range=not latent, clip=None if latent else 1.0,
                               generator=generator, device=device)
            return decode(z)

        return Setup(model, step, _adam(model, R), sample, cosine_lr=R.cosine_lr, callbacks=[ema]), data

    return build


# Every model the lessons train, in lesson order. The notebooks are the reference: the same recipe, step, optimizer
# and callbacks, at the `gpu` profile's sizes.
DRY_RUNS = (
    DryRun("autoencoders", "MLP autoencoder, 2-D code", (recipes.AE2,), autoencoder(recipes.AE2)),
    DryRun("autoencoders", "conv autoencoder, 16-D code", (recipes.AE16,), autoencoder(recipes.AE16)),
    DryRun("autoencoders", "denoising autoencoder", (recipes.DAE,), autoencoder(recipes.DAE, denoising=True)),
    DryRun("vae", "VAE, 2-D code (beta 1, 0.2, 5)", (recipes.VAE2, *recipes.VAE2_BETA.values()),
           vae(recipes.VAE2), settings_name="2d"),
    DryRun("vae", "MLP autoencoder, 2-D code", (recipes.VAE_AE2,), autoencoder(recipes.VAE_AE2), settings_name="2d"),
    DryRun("vae", "conv VAE, 8-D code", (recipes.VAE8,), vae(recipes.VAE8), settings_name="conv"),
    DryRun("vae", "conv autoencoder, 8-D code", (recipes.VAE_AE8,), autoencoder(recipes.VAE_AE8),
           settings_name="conv"),
    DryRun("gan", "toy GAN (2-D ring)", (recipes.TOY_GAN,), toy_gan(recipes.TOY_GAN), sample_shape=(2,),
           batch_size=TOY_BATCH),
    DryRun("gan", "toy WGAN-GP (2-D ring)", (recipes.TOY_WGAN_GP,), toy_gan(recipes.TOY_WGAN_GP), sample_shape=(2,),
           batch_size=TOY_BATCH),
    DryRun("gan", "DCGAN", (recipes.DCGAN,), lambda s, device, digits: (dcgan_setup(PROFILE, device), digits)),
    DryRun("diffusion", "DDPM U-Net", (recipes.DDPM,), ddpm),
    DryRun("conditional", "conditional GAN", (recipes.CGAN,), gan(recipes.CGAN), settings_name="cgan"),
    DryRun("conditional", "pix2pix (cGAN + L1)", (recipes.PIX2PIX,), pix2pix(recipes.PIX2PIX), settings_name="pix2pix"),
    DryRun("conditional", "pix2pix generator, L1 only", (recipes.PIX2PIX_L1,), pix2pix(recipes.PIX2PIX_L1),
           settings_name="pix2pix"),
    DryRun("conditional", "conditional VAE, 2-D code", (recipes.CVAE,), cvae, settings_name="cvae"),
    DryRun("conditional", "guided diffusion U-Net", (recipes.CFG,), guided_diffusion(recipes.CFG), settings_name="cfg"),
    DryRun("latent_diffusion", "latent autoencoder", (recipes.LATENT_AE,), autoencoder(recipes.LATENT_AE),
           settings_name="autoencoder"),
    DryRun("latent_diffusion", "latent U-Net (guided)", (recipes.LATENT_UNET,),
           guided_diffusion(recipes.LATENT_UNET, latent=True), settings_name="latent"),
    DryRun("gan_architectures", "progressive GAN (3 stages)", (recipes.PROGRESSIVE, recipes.PROGRESSIVE_JUMP),
           gan(recipes.PROGRESSIVE, guard=False, grow=True), steps=6),
    DryRun("gan_architectures", "StyleGAN", (recipes.STYLEGAN,), gan(recipes.STYLEGAN), settings_name="stylegan"),
    DryRun("gan_architectures", "EBGAN", (recipes.EBGAN,), ebgan, settings_name="ebgan"),
    DryRun("gan_architectures", "MSGAN (ms_weight 0 and 1)", (recipes.MSGAN, recipes.MSGAN_OFF), msgan,
           settings_name="msgan"),
    DryRun("score_and_flow", "score network (2-D)", (recipes.TOY_SCORE,), flows.toy_score, sample_shape=(2,),
           batch_size=500),
    DryRun("score_and_flow", "flow (2-D ring) and its reflow", (recipes.TOY_FLOW, recipes.TOY_REFLOW),
           flows.toy_flow(recipes.TOY_FLOW), sample_shape=(2,), batch_size=500),
    *(DryRun("score_and_flow", name, (R,), flows.digit_flow(R), settings_name=key) for name, R, key in (
        ("flow U-Net", recipes.FLOW, "flow"), ("reflow U-Net", recipes.REFLOW, "reflow"),
        ("distilled U-Net", recipes.DISTILL, "distill"), ("guided flow U-Net", recipes.CFG_FLOW, "cfg_flow"))),
    *(DryRun("restoration", **run) for run in restore.RUNS),
    *(DryRun("text_to_image", **run) for run in text_to_image.RUNS),
)

# Recipes with nothing for a dry run to find: SinGAN learns from one picture at the same sizes in every profile (the
# profile only sets its steps per scale), and tests/test_singan.py trains it at those sizes.
NOT_DRY_RUN = {recipes.SINGAN.name: "one picture, the same sizes in every profile"}


# ---------------------------------------------------------------- running one, and measuring its memory


@dataclass
class Result:
    """What one dry run found. `memory_bytes` is measured at `batch_size`, or extrapolated to it from
    `measured_at` (two smaller batch sizes). `held`: the bytes held after each allocation and free, in order."""

    run: DryRun
    parameters: int
    batch_size: int
    memory_bytes: int
    seconds_per_step: float
    logs: dict[str, float]
    sample_shape: tuple[int, ...]
    measured_at: tuple[int, ...] = ()
    held: torch.Tensor | None = field(default=None, repr=False)

    @property
    def fits_t4(self) -> bool:
        return self.memory_bytes + CUDA_OVERHEAD_BYTES <= T4_BYTES


@contextlib.contextmanager
def fast_path_off():
    """float32 everywhere (`COURSE_FAST_PATH=off`): the same numbers on every CPU, with or without bfloat16."""
    before = os.environ.get("COURSE_FAST_PATH")
    os.environ["COURSE_FAST_PATH"] = "off"
    try:
        yield
    finally:
        if before is None:
            del os.environ["COURSE_FAST_PATH"]
        else:
            os.environ["COURSE_FAST_PATH"] = before


def training_digits(n: int) -> TensorDataset:
    """n training digits from the subset bundled with the course, repeated if it holds fewer: no download."""
    images, labels = load_dataset("mnist", "train", source="bundled").tensors
    index = torch.arange(n) % len(labels)
    return TensorDataset(images[index], labels[index])


def measure(run: DryRun, batch_size: int, device: torch.device | str = "cpu") -> Result:
    """Build `run`'s model at the gpu sizes, train it `run.steps` steps at `batch_size` with `fit`, and sample
    `N_SAMPLES`; raises AssertionError, naming the model, when a number is not finite or a shape is wrong.

        measure(DRY_RUNS[0], batch_size=128).memory_bytes   # the MLP autoencoder's step: about 20 MiB
    """
    device = torch.device(device)
    epochs, _ = run.epochs_and_batch()
    digits = training_digits(run.steps * batch_size)
    seed_everything(0)
    with fast_path_off():
        with peak_memory() as peak:
            setup, data = run.build(run.settings(), device, digits)
            callbacks = list(setup.callbacks)
            if setup.cosine_lr:
                callbacks.append(CosineSchedule(setup.optimizer, epochs))
            start = time.perf_counter()
            history = fit(setup.model, make_loader(data, batch_size), setup.step, setup.optimizer, 1,
                          device=device, callbacks=callbacks, progress=False)
            seconds = time.perf_counter() - start
        with torch.no_grad(), evaluating(setup.model):
            samples = setup.sample(N_SAMPLES, torch.Generator().manual_seed(1))
    where = f"{run.lesson}: {run.name} (gpu sizes, batch {batch_size})"
    assert history.stopped is None, f"{where}: training stopped ({history.stopped})"
    logs = {key: values[-1] for key, values in history.steps.items()}
    counts = [len(values) for values in history.steps.values()]
    assert counts and set(counts) == {run.steps}, f"{where}: {counts} steps logged, not {run.steps}"
    bad = {key: v for key, values in history.steps.items() for v in values if not math.isfinite(v)}
    assert not bad, f"{where}: numbers that are not finite: {bad}"
    assert tuple(samples.shape) == (N_SAMPLES, *run.sample_shape), f"{where}: samples shaped {tuple(samples.shape)}"
    assert torch.isfinite(samples).all(), f"{where}: samples that are not finite"
    if len(run.sample_shape) == 3:
        assert 0 <= samples.min() and samples.max() <= 1, f"{where}: images outside [0, 1]"
    return Result(run, n_params(setup.model), batch_size, peak["bytes"], seconds / run.steps, logs,
                  tuple(samples.shape[1:]), held=peak["held"])


def dry_run(run: DryRun, batches: tuple[int, int] | None = None, device: torch.device | str = "cpu") -> Result:
    """`measure` at the gpu profile's batch size; or, with `batches` (two smaller sizes), at both, and the memory
    at the gpu batch size extrapolated from them (`extrapolate`)."""
    _, batch_size = run.epochs_and_batch()
    if not batches:
        return measure(run, batch_size, device)
    small, large = (measure(run, b, device) for b in sorted(batches))
    return Result(run, large.parameters, batch_size, extrapolate(small, large, batch_size), large.seconds_per_step,
                  large.logs, large.sample_shape, measured_at=(small.batch_size, large.batch_size))


def extrapolate(small: Result, large: Result, batch_size: int) -> int:
    """The memory at `batch_size` from runs at two other batch sizes, along straight lines (memory = fixed + per
    sample x batch). When both runs allocated and freed in the same order (the same operations), each moment of
    their records gets its own line and the largest value at `batch_size` is the answer: which moment holds most can
    change with the batch size (a GAN's weights and optimizer states outweigh its activations at 8 images, not at
    128). Otherwise (a step whose operations depend on random draws) the line goes through the two peaks."""
    a, b = small.held, large.held
    same_order = len(a) == len(b) and torch.equal(a.diff() > 0, b.diff() > 0)
    if not same_order:
        a, b = torch.tensor([small.memory_bytes]), torch.tensor([large.memory_bytes])
    per_sample = (b - a).double() / (large.batch_size - small.batch_size)
    return round(float((b + per_sample * (batch_size - large.batch_size)).max()))


# ---------------------------------------------------------------- the command


def table(results: list[Result]) -> str:
    """A markdown table: one row per model."""
    rows = ["| lesson | model | parameters | batch | memory of a training step | CPU s / step | samples checked |",
            "|---|---|---|---|---|---|---|"]
    for r in results:
        memory = f"{r.memory_bytes / 2**20:,.0f} MiB" + (" (extrapolated)" if r.measured_at else "")
        rows.append(f"| {r.run.lesson} | {r.run.name} | {r.parameters:,} | {r.batch_size} | {memory} "
                    f"| {r.seconds_per_step:.2f} | {N_SAMPLES} x {tuple(r.sample_shape)} |")
    return "\n".join(rows)


def select(only: list[str] | None) -> list[DryRun]:
    """The dry runs whose lesson or recipe name is in `only` (all when None)."""
    if not only:
        return list(DRY_RUNS)
    chosen = [run for run in DRY_RUNS if run.lesson in only or any(R.name in only for R in run.recipes)]
    if not chosen:
        names = sorted({run.lesson for run in DRY_RUNS} | {R.name for run in DRY_RUNS for R in run.recipes})
        raise SystemExit(f"Nothing matches {' '.join(only)}. Use a lesson or a recipe's name: {', '.join(names)}.")
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train every lesson's models at the gpu profile's sizes for a few "
                                     "steps on the CPU; report parameters and the memory of a training step.")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="a lesson (e.g. diffusion) or a recipe's name")
    parser.add_argument("--batch", nargs=2, type=int, metavar=("B1", "B2"),
                        help="measure at these two batch sizes and extrapolate the memory to the gpu batch size")
    args = parser.parse_args(argv)
    if args.batch and (min(args.batch) < 1 or args.batch[0] == args.batch[1]):
        parser.error(f"--batch needs two different batch sizes of at least 1, got {args.batch}")
    results, start = [], time.perf_counter()
    for run in select(args.only):
        results.append(dry_run(run, tuple(args.batch) if args.batch else None))
        print(f"{run.lesson}: {run.name}: ok", file=sys.stderr)
    print(table(results))
    largest = max(results, key=lambda r: r.memory_bytes)
    print(f"\nMemory of a training step: the most memory its tensors held at once, measured on the CPU in float32 "
          f"(torch profiler). Largest: {largest.run.name}, {largest.memory_bytes / 2**30:.2f} GiB, plus about "
          f"{CUDA_OVERHEAD_BYTES / 2**30:.0f} GiB for CUDA itself, of the T4's {T4_BYTES / 2**30:.0f} GiB. "
          f"{len(results)} models in {time.perf_counter() - start:.0f} s.")
    too_big = [r.run.name for r in results if not r.fits_t4]
    if too_big:
        print(f"Too large for a T4: {', '.join(too_big)}", file=sys.stderr)
    return 1 if too_big else 0


if __name__ == "__main__":
    sys.exit(main())
