"""Each course model set up for a timed run, from its recipe in `course_lib.recipes`: the benchmark
(`course_lib.tools.benchmark`) trains these for a profile's epochs, the peer race (`course_lib.tools.peers`) for a
time budget."""

from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import recipes
from ..diffusion import DiffusionSchedule, ddim_sample, diffusion_loss
from ..fastpath import fast_autocast
from ..flow import flow_matching_loss, sample_flow
from ..gans import GANGuard, GANStep
from ..training import EMA
from ..vae import vae_step


@dataclass
class Setup:
    """One course model ready for `fit`, built from its recipe in `course_lib.recipes`: the module, its step
    function, its optimizer (None when the step updates the model itself, as a GAN's does), the callbacks it always
    uses, and `sample(n, generator)` -> images (n, 1, 28, 28) in [0, 1] on the CPU. With `cosine_lr`, the caller
    lowers the learning rate along a half cosine over the whole run, whose length only the caller knows
    (`CosineSchedule` over epochs here, over a time budget in `course_lib.tools.peers`)."""

    model: torch.nn.Module
    step: Callable
    optimizer: torch.optim.Optimizer | None
    sample: Callable[..., torch.Tensor]
    callbacks: list = field(default_factory=list)
    cosine_lr: bool = False
    ema: EMA | None = None  # the averaged weights, for models that sample with them


@dataclass
class Trained:
    """A trained generator: `sample(n, generator)` returns (images, labels or None)."""

    sample: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor | None]]
    n_params: int
    train_seconds: float
    extra: dict = field(default_factory=dict)  # model-specific numbers, e.g. a VAE's test negative ELBO
    arrays: Callable[[int], dict] | None = None  # more arrays for NAME.npz given n, e.g. a super-resolver's inputs
    grey: Callable[[torch.Tensor], torch.Tensor] | None = None  # colour samples -> grey digits, for the digit scores
    scores: Callable[[torch.Tensor, torch.Tensor], dict] | None = None  # more scores of the samples and their labels


class Unfinished(Exception):
    """A training that stopped before its last epoch (NaN, a guard): not a result."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def finished(history, what: str = "training"):
    """`history` when its training ran to the end; raises `Unfinished` when it stopped early (its model is no
    result to score)."""
    if history.stopped is not None:
        raise Unfinished(f"{what} stopped early: {history.stopped}")
    return history


def vae_setup(profile: str, device: torch.device, R: recipes.VAERecipe = recipes.VAE8) -> Setup:
    """Lesson 2's convolutional VAE (`recipes.VAE8`, or a variant of it made with `dataclasses.replace`), sampled
    from its prior N(0, I)."""
    model = R.build(R.settings(profile)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
    step = vae_step(beta=R.beta, augment=R.augment, generator=torch.Generator().manual_seed(0))
    return Setup(model, step, optimizer, lambda n, generator: model.sample(n, generator).cpu(), cosine_lr=R.cosine_lr)


def dcgan_setup(profile: str, device: torch.device) -> Setup:
    """Lesson 3's DCGAN (`recipes.DCGAN`), stopped by `GANGuard` if D wins outright; sampled from z ~ N(0, I)."""
    R = recipes.DCGAN
    gan = R.build(R.settings(profile)).to(device)
    step = GANStep(gan, generator=torch.Generator().manual_seed(0), **R.step_args())
    return Setup(gan, step, None, lambda n, generator: gan.sample(n, generator).cpu(), callbacks=[GANGuard()])


def ddpm_setup(profile: str, device: torch.device, R: recipes.DiffusionRecipe = recipes.DDPM) -> Setup:
    """Lesson 4's DDPM (`recipes.DDPM`, or a variant of it): Algorithm 1, bfloat16 autocast where the CPU supports
    it, EMA weights. `sample(n, generator, sampler=ddim_sample, **options)` uses the averaged weights; by default
    DDIM in 50 steps (eta = 0)."""
    schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
    model = R.build(R.settings(profile)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
    ema, noise = EMA(model, decay=R.ema_decay), torch.Generator().manual_seed(0)

    def step(model, batch):
        with fast_autocast(device):
            return diffusion_loss(lambda x, t: model(x, t).float(), schedule, batch[0], noise, R.min_snr_gamma)

    def eps_model(x, t):
        return ema.model(x, t).float()

    def sample(n, generator, sampler=ddim_sample, **options):
        with fast_autocast(device):
            return sampler(eps_model, schedule, n=n, generator=generator, device=device, **options)[0].cpu()

    return Setup(model, step, optimizer, sample, callbacks=[ema])


def flow_setup(profile: str, device: torch.device, R: recipes.FlowRecipe = recipes.FLOW) -> Setup:
    """Lesson 9's flow-matching U-Net (`recipes.FLOW`, or reflow / distillation made from it): lesson 4's network and
    training with the flow-matching loss, bfloat16 autocast where the CPU supports it, EMA weights.
    `sample(n, generator, steps=..., method=...)` integrates the averaged weights' flow from noise."""
    model = R.build(R.settings(profile)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
    ema, noise = EMA(model, decay=R.ema_decay), torch.Generator().manual_seed(0)

    def step(model, batch):
        with fast_autocast(device):
            return flow_matching_loss(lambda x, t: model(x, t).float(), batch[0], noise)

    def v_model(x, t):
        with fast_autocast(device):
            return ema.model(x, t).float()

    def sample(n, generator, steps=10, method="euler"):
        return sample_flow(v_model, n=n, steps=steps, method=method, generator=generator, device=device)[0].cpu()

    return Setup(model, step, optimizer, sample, callbacks=[ema], ema=ema)
