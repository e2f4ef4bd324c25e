"""Exact resume, one test per training pattern the lessons use: a run stopped at a random step and resumed from its
checkpoint ends bit for bit where an uninterrupted run ends (weights, optimizers, EMA, snapshots, schedules, the
step's random generator, history). Tiny models and 48 digits on the CPU, so each test takes seconds.

Each pattern is resumed either with the objects the interrupted run left behind (a notebook re-running the fit
cell) or with freshly built ones (a restarted kernel re-running the lesson)."""

import random
from dataclasses import dataclass, field
from typing import Callable

import pytest
import torch

from course_lib.autoencoders import ConvAutoencoder, ae_loss, random_corruption
from course_lib.conditional import (ConditionalDiscriminator, ConditionalGAN, ConditionalGenerator, ConditionalVAE,
                                    cfg_step, cvae_step)
from course_lib.config import one_thread, seed_everything
from course_lib.data import load_dataset, make_loader
from course_lib.diffusion import DiffusionSchedule, diffusion_loss
from course_lib.fastpath import fast_autocast
from course_lib.gans import GAN, DCGANDiscriminator, DCGANGenerator, GANGuard, GANStep, MLPDiscriminator, MLPGenerator
from course_lib.pix2pix import PatchDiscriminator, Pix2Pix, Pix2PixGenerator, Pix2PixStep
from course_lib.toy2d import CoverageLog, toy_loader
from course_lib.training import EMA, Callback, CosineSchedule, Snapshots, TrainingInterrupted, fit, step_generators
from course_lib.unet import UNet
from course_lib.vae import MLPVAE, vae_step


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: one thread is as fast, and much faster when other programs share the cores."""
    with one_thread():
        yield

EPOCHS, BATCH = 3, 16
DIGITS = load_dataset("mnist", "train", n=48, source="bundled")
SCHEDULE = DiffusionSchedule(T=100)
NOISE = torch.Generator()  # a notebook's global generator, as lesson 1's `noise` and lesson 4's `step_noise`


@dataclass
class Run:
    """One training run as a lesson sets it up, and `parts`: everything whose state must come out the same."""

    model: torch.nn.Module
    step: Callable
    optimizer: torch.optim.Optimizer | None = None
    callbacks: list = field(default_factory=list)
    loader: object = None
    parts: dict = field(default_factory=dict)

    def __post_init__(self):
        self.loader = self.loader if self.loader is not None else make_loader(DIGITS, BATCH, seed=3)
        self.parts = {"model": self.model, "optimizer": self.optimizer, "step": self.step,
                      **{type(cb).__name__: cb for cb in self.callbacks}, **self.parts}


class InterruptAt(Callback):
    """Presses Ctrl-C after global step `at`."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, state):
        if state.step == self.at:
            raise KeyboardInterrupt


def state_of(obj):
    """What to compare: a state_dict where there is one, a generator's state, else the object itself."""
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if hasattr(obj, "state_dict"):
        return obj.state_dict()
    if isinstance(obj, CoverageLog):
        return obj.coverage
    return None


def assert_identical(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def resumes_exactly(make: Callable[[], Run], tmp_path, name: str) -> None:
    """Train make()'s run uninterrupted; train another, stop it at a random step, resume it from its checkpoint;
    both must end identical."""
    rng = random.Random(name)
    a = make()
    total = EPOCHS * len(a.loader)
    history_a = fit(a.model, a.loader, a.step, a.optimizer, EPOCHS, callbacks=a.callbacks, progress=False)

    b, path = make(), tmp_path / "run.pt"
    at = rng.randrange(1, total)
    with pytest.raises(TrainingInterrupted):
        fit(b.model, b.loader, b.step, b.optimizer, EPOCHS, callbacks=b.callbacks + [InterruptAt(at)],
            checkpoint=path, progress=False)
    torch.rand(7)  # other work between the two sessions draws random numbers too
    fresh = rng.random() < 0.5
    c = make() if fresh else b
    history_c = fit(c.model, c.loader, c.step, c.optimizer, EPOCHS, callbacks=c.callbacks, checkpoint=path,
                    progress=False)

    context = f"{name}: stopped after step {at} of {total}, resumed with {'fresh' if fresh else 'the same'} objects"
    assert history_c.epoch == EPOCHS and history_c.stopped is None, context
    for key in a.parts:
        assert_identical(state_of(a.parts[key]), state_of(c.parts[key]), f"{context}: {key}")
    for key in ("steps", "epochs"):
        assert_identical(history_a.state_dict()[key], history_c.state_dict()[key], f"{context}: history.{key}")


def adam(model, lr=1e-3):
    return torch.optim.Adam(model.parameters(), lr=lr)


# ---------------------------------------------------------------- one test per lesson pattern


def test_lesson_1_autoencoders_and_the_denoising_step_with_a_notebook_generator(tmp_path):
    def make():
        global NOISE
        seed_everything(0)
        NOISE = torch.Generator().manual_seed(1)  # re-running the cell makes a new one, as in the lesson
        model = ConvAutoencoder(latent_dim=4, channels=4)

        def dae_step(model, batch):
            x, _ = batch
            return ae_loss(x, model(random_corruption(x, generator=NOISE)))

        return Run(model, dae_step, adam(model), parts={"noise": NOISE})

    assert [id(g) for g in step_generators(make().step)] == [id(NOISE)]
    resumes_exactly(make, tmp_path, "lesson 1 DAE")


def test_lesson_2_vae_with_augmentation_and_a_cosine_schedule(tmp_path):
    def make():
        seed_everything(0)
        model = MLPVAE(latent_dim=2, hidden=(32, 16))
        optimizer = adam(model, 2e-3)
        augment = torch.Generator().manual_seed(0)
        return Run(model, vae_step(augment=0.3, generator=augment), optimizer,
                   [CosineSchedule(optimizer, EPOCHS)], parts={"augment": augment})

    resumes_exactly(make, tmp_path, "lesson 2 VAE")


def test_lesson_3_toy_wgan_gp_with_its_own_generator_and_coverage_log(tmp_path):
    def make():
        seed_everything(0)
        gan = GAN(MLPGenerator(hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2))
        step = GANStep(gan, loss="wgan_gp", d_steps=2, gp_weight=0.1, generator=torch.Generator().manual_seed(0))
        log = CoverageLog(gan.sample_z(200, torch.Generator().manual_seed(1)), "ring", every=4)
        return Run(gan, step, None, [log], loader=_first_batches(toy_loader("ring", batch_size=64, seed=0), 4))

    resumes_exactly(make, tmp_path, "lesson 3 toy GAN")


def _first_batches(loader, n):
    """The toy loader's shuffling, but only n batches an epoch (20,000 points make 79 batches: too slow here)."""
    sampler = loader.sampler  # a BatchSampler over a RandomSampler with its own generator

    class Few:
        def __init__(self):
            self.sampler = sampler

        def __len__(self):
            return n

        def __iter__(self):
            for _, indices in zip(range(n), sampler):
                yield (loader.dataset.tensors[0][indices],)

    return Few()


def test_lesson_3_dcgan_with_augmentation_snapshots_and_the_guard(tmp_path):
    def make():
        seed_everything(0)
        gan = GAN(DCGANGenerator(z_dim=8, width=4), DCGANDiscriminator(width=4))
        fixed_z = gan.sample_z(4, torch.Generator().manual_seed(1))
        step = GANStep(gan, lr_d=2e-3, lr_g=2e-3, augment=1.0, generator=torch.Generator().manual_seed(0))
        return Run(gan, step, None, [Snapshots(lambda g: g.generator(fixed_z), every=2), GANGuard()])

    resumes_exactly(make, tmp_path, "lesson 3 DCGAN")


def test_lesson_4_ddpm_closure_with_a_global_generator_autocast_and_ema(tmp_path):
    def make():
        global NOISE
        seed_everything(0)
        NOISE = torch.Generator().manual_seed(0)
        model = UNet(channels=(4, 8, 8), time_dim=16)
        ema = EMA(model, decay=0.9)

        def training_step(model, batch):  # lesson 4's cell, word for word
            with fast_autocast("cpu"):
                return diffusion_loss(lambda x, t: model(x, t).float(), SCHEDULE, batch[0], NOISE, 5.0)

        return Run(model, training_step, adam(model), [ema], parts={"ema weights": ema.model, "noise": NOISE})

    resumes_exactly(make, tmp_path, "lesson 4 DDPM")


def test_lesson_5_conditional_gan(tmp_path):
    def make():
        seed_everything(0)
        cgan = ConditionalGAN(ConditionalGenerator(z_dim=8, width=4), ConditionalDiscriminator(width=4))
        step = GANStep(cgan, lr_d=2e-3, lr_g=2e-3, augment=1.0, generator=torch.Generator().manual_seed(0))
        return Run(cgan, step, None, [GANGuard()])

    resumes_exactly(make, tmp_path, "lesson 5 CGAN")


def test_lesson_5_pix2pix_with_dropout(tmp_path):
    def make():
        seed_everything(0)
        model = Pix2Pix(Pix2PixGenerator(width=4), PatchDiscriminator(width=4))
        return Run(model, Pix2PixStep(model, lr=1e-3), None)

    resumes_exactly(make, tmp_path, "lesson 5 pix2pix")


def test_lesson_5_cvae_with_a_cosine_schedule(tmp_path):
    def make():
        seed_everything(0)
        model = ConditionalVAE(latent_dim=2, hidden=(32, 16))
        optimizer = adam(model, 2e-3)
        return Run(model, cvae_step(), optimizer, [CosineSchedule(optimizer, EPOCHS)])

    resumes_exactly(make, tmp_path, "lesson 5 CVAE")


def test_lessons_5_and_6_guided_diffusion_with_label_dropout_and_ema(tmp_path):
    def make():
        seed_everything(0)
        model = UNet(channels=(4, 8, 8), time_dim=16, num_classes=10)
        ema = EMA(model, decay=0.9)
        noise = torch.Generator().manual_seed(0)
        step = cfg_step(SCHEDULE, p_uncond=0.3, generator=noise, min_snr_gamma=5.0)
        return Run(model, step, adam(model), [ema], parts={"ema weights": ema.model, "noise": noise})

    resumes_exactly(make, tmp_path, "lessons 5-6 guided diffusion")


def test_a_checkpoint_made_with_other_callbacks_is_refused_not_resumed_inexactly(tmp_path):
    seed_everything(0)
    model = UNet(channels=(4, 8, 8), time_dim=16)
    step = lambda m, b: diffusion_loss(m, SCHEDULE, b[0])  # noqa: E731
    fit(model, make_loader(DIGITS, BATCH), step, adam(model), 1, checkpoint=tmp_path / "run.pt", progress=False)
    with pytest.raises(ValueError, match="same step and callbacks"):
        fit(model, make_loader(DIGITS, BATCH), step, adam(model), 2, callbacks=[EMA(model)],
            checkpoint=tmp_path / "run.pt", progress=False)


# ---------------------------------------------------------------- lesson 7


def test_lesson_7_progressive_growing_with_its_fade_in_and_snapshots(tmp_path):
    from course_lib.progressive import Grow, ProgressiveDiscriminator, ProgressiveGenerator

    def make():
        seed_everything(0)
        gan = GAN(ProgressiveGenerator(z_dim=8, channels=(4, 4, 4)), ProgressiveDiscriminator(channels=(4, 4, 4)))
        fixed_z = gan.sample_z(2, torch.Generator().manual_seed(1))
        step = GANStep(gan, lr_d=1e-3, lr_g=1e-3, augment=1.0, generator=torch.Generator().manual_seed(0))
        return Run(gan, step, None, [Grow(gan, steps_per_stage=3, fade_steps=2),
                                     Snapshots(lambda g: g.generator(fixed_z), every=1)])

    resumes_exactly(make, tmp_path, "lesson 7 progressive")


def test_lesson_7_style_based_generator_with_mixing_regularisation(tmp_path):
    from course_lib.stylegan import StyleGenerator

    def make():
        seed_everything(0)  # mixing draws its crossover from torch's global random state, which the checkpoint keeps
        gan = GAN(StyleGenerator(z_dim=8, w_dim=8, channels=(4, 4, 4)), DCGANDiscriminator(width=4))
        step = GANStep(gan, lr_d=2e-3, lr_g=2e-3, betas=(0.0, 0.99), generator=torch.Generator().manual_seed(0))
        return Run(gan, step, None, [GANGuard()])

    resumes_exactly(make, tmp_path, "lesson 7 StyleGAN")


def test_lesson_7_ebgan_and_msgan_steps(tmp_path):
    from course_lib.gan_variants import EBGANStep, EnergyDiscriminator, MSGANStep

    def make_ebgan():
        seed_everything(0)
        gan = GAN(DCGANGenerator(z_dim=8, width=4), EnergyDiscriminator(width=4, code=4))
        return Run(gan, EBGANStep(gan, margin=0.1, generator=torch.Generator().manual_seed(0)), None)

    def make_msgan():
        seed_everything(0)
        gan = ConditionalGAN(ConditionalGenerator(width=4), ConditionalDiscriminator(width=4))
        return Run(gan, MSGANStep(gan, ms_weight=1.0, generator=torch.Generator().manual_seed(0)), None)

    resumes_exactly(make_ebgan, tmp_path, "lesson 7 EBGAN")
    resumes_exactly(make_msgan, tmp_path / "ms", "lesson 7 MSGAN")
