"""Lesson 9's models set up as the lesson sets them up, for the `gpu` profile's dry run (`course_lib.tools.gpu_dry_run`):
each `build(settings, device, digits)` returns (Setup, training data), the data as many samples as `digits`."""

import torch
from torch.utils.data import TensorDataset

from .. import recipes
from ..conditional import drop_labels
from ..diffusion_theory import GaussianMixture2D
from ..fastpath import fast_autocast
from ..flow import distill_step, flow_matching_loss, flow_step, pair_step, sample_flow
from ..scores import annealed_langevin, dsm_loss, learned_score, weighted_pair
from .setups import Setup, flow_setup

SOLVER_STEPS = 2  # a sampler's steps in the dry run: enough to call the network and the update twice


def _adam(model: torch.nn.Module, R: recipes.Recipe) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=R.lr)


def toy_score(s, device, digits):
    """The noise-conditional score network on the two Gaussians (denoising score matching), sampled by annealed
    Langevin with two steps per level."""
    R = recipes.TOY_SCORE
    model, generator = R.build(s).to(device), torch.Generator().manual_seed(0)
    data = TensorDataset(weighted_pair().sample(len(digits), generator)[0])

    def sample(n, g):
        start = (6 * torch.rand(n, 2, generator=g) - 3).to(device)
        return annealed_langevin(learned_score(model, R.sigmas()), R.sigmas(), start, SOLVER_STEPS, R.langevin_eps,
                                 g)[0].cpu()

    return Setup(model, lambda m, b: dsm_loss(m, b[0], R.sigmas(), generator), _adam(model, R), sample), data


def toy_flow(R: recipes.FlowRecipe):
    """The flow on lesson 4's ring (the toy flow, and its reflow: the same network and loss)."""

    def build(s, device, digits):
        model, generator = R.build(s).to(device), torch.Generator().manual_seed(0)
        data = TensorDataset(GaussianMixture2D.ring().sample(len(digits), generator)[0])
        sample = lambda n, g: sample_flow(model, n=n, steps=SOLVER_STEPS, generator=g, shape=(2,),  # noqa: E731
                                          image_range=False, device=device)[0].cpu()
        return Setup(model, flow_step(generator, image_range=False), _adam(model, R), sample), data

    return build


def _fast(step, device):
    def fast_step(model, batch):
        with fast_autocast(device):
            return step(model, batch)
    return fast_step


def digit_flow(R: recipes.FlowRecipe):
    """The digit flow (flow matching), its reflow and its distillation (both on (image, noise) pairs: random noise
    here, the flow's own in the lesson), and the guided flow (labels dropped with probability p_uncond)."""

    def build(s, device, digits):
        setup = flow_setup("gpu", device, R)
        data = digits
        if R in (recipes.REFLOW, recipes.DISTILL):
            images = digits.tensors[0]
            data = TensorDataset(images, torch.randn(images.shape, generator=torch.Generator().manual_seed(1)))
            setup.step = _fast(pair_step(torch.Generator().manual_seed(2)) if R is recipes.REFLOW else distill_step(),
                               device)
        elif R is recipes.CFG_FLOW:
            generator = torch.Generator().manual_seed(3)

            def step(model, batch):
                y = drop_labels(batch[1], R.p_uncond, model.num_classes, generator).to(device)
                return flow_matching_loss(lambda x, t: model(x, t, y).float(), batch[0], generator)

            setup.step = _fast(step, device)
        sample = setup.sample
        setup.sample = lambda n, g: sample(n, g, steps=SOLVER_STEPS)
        return setup, data

    return build
