"""Lesson 8's models set up as the lesson sets them up, for the `gpu` profile's dry run (`course_lib.tools.gpu_dry_run`):
each `build(settings, device, digits)` returns (Setup, training data), the data as many samples as `digits`."""

import torch
from torch.utils.data import TensorDataset

from .. import recipes
from ..conditional import GuidedModel, cfg_step
from ..data import paint_digits, to_grey
from ..diffusion import DiffusionSchedule, ddim_sample
from ..editing import sketch, stamp
from ..metrics import digit_classifier
from ..pix2pix import Pix2PixStep
from ..superres import PerceptualFeatures, SRGANStep, downscale, sr3_step, sr3_upscale, sr_mse_step
from ..training import EMA
from .setups import Setup

DDIM_STEPS = 2  # a sampler's steps in the dry run: enough to call the network and the update twice


def _inputs(digits: TensorDataset, n: int) -> torch.Tensor:
    return downscale(digits.tensors[0][:n])


def sr_mse(s, device, digits):
    """SRResNet trained with the MSE."""
    R = recipes.SR_MSE
    model = R.build(s).to(device)
    return Setup(model, sr_mse_step, torch.optim.Adam(model.parameters(), lr=R.lr),
                 lambda n, g: model(_inputs(digits, n).to(device)).cpu()), digits


def srgan(s, device, digits):
    """SRGAN: the perceptual content loss on the digit classifier's feature maps + the adversarial loss."""
    R = recipes.SRGAN_FT
    model = R.build(s).to(device)
    step = SRGANStep(model, PerceptualFeatures(digit_classifier()), adv_weight=R.adv_weight, lr=R.lr, betas=R.betas)
    return Setup(model, step, None, lambda n, g: model.upscale(_inputs(digits, n).to(device)).cpu()), digits


def sr3(s, device, digits):
    """SR3: the U-Net sees the upscaled input, predicts v; sampled by DDIM."""
    R = recipes.SR3
    model, schedule = R.build(s).to(device), DiffusionSchedule(T=R.T, kind=R.schedule)
    ema = EMA(model, decay=R.ema_decay)
    sample = lambda n, g: sr3_upscale(ema.model, schedule, _inputs(digits, n), steps=DDIM_STEPS,  # noqa: E731
                                      generator=g).cpu()
    return Setup(model, sr3_step(schedule, torch.Generator().manual_seed(0)),
                 torch.optim.Adam(model.parameters(), lr=R.lr), sample, callbacks=[ema], ema=ema), digits


def base(s, device, digits):
    """The cascade's guided base model on the digits shrunk to 7 x 7."""
    R = recipes.BASE_7
    model, schedule = R.build(s).to(device), DiffusionSchedule(T=R.T, kind=R.schedule)
    ema = EMA(model, decay=R.ema_decay)
    step = cfg_step(schedule, p_uncond=R.p_uncond, generator=torch.Generator().manual_seed(0),
                    min_snr_gamma=R.min_snr_gamma)

    def sample(n, g):
        return ddim_sample(GuidedModel(ema.model, torch.arange(n) % 10, 3.0), schedule, n=n, steps=DDIM_STEPS,
                           shape=(1, 7, 7), generator=g, device=device)[0].cpu()

    small = TensorDataset(downscale(digits.tensors[0]), digits.tensors[1])
    return Setup(model, step, torch.optim.Adam(model.parameters(), lr=R.lr), sample, callbacks=[ema], ema=ema), small


def translation(R: recipes.Pix2PixRecipe):
    """pix2pix from sketches to digits, from grey to colour, or from stamped to clean (on colour digits painted from
    the given ones)."""

    def build(s, device, digits):
        model = R.build(s).to(device)
        colour = R is not recipes.SKETCH
        task = {recipes.SKETCH: sketch, recipes.COLOUR: to_grey}.get(R, lambda y: stamp(y, torch.Generator()))
        data = digits
        if colour:
            attributes = torch.tensor([[i % 8, 0, i % 2, 0] for i in range(len(digits))])  # every ink, both sizes
            data = TensorDataset(paint_digits(digits.tensors[0], attributes), digits.tensors[1])
        step = Pix2PixStep(model, **R.step_args(), task=task)
        return Setup(model, step, None, lambda n, g: model.translate(task(data.tensors[0][:n])).cpu()), data

    return build


# the DryRun arguments of each (the lesson is "restoration")
RUNS = (
    dict(name="SRResNet (MSE)", recipes=(recipes.SR_MSE,), build=sr_mse, settings_name="sr_mse"),
    dict(name="SRGAN", recipes=(recipes.SRGAN_FT,), build=srgan, settings_name="srgan"),
    dict(name="SR3 U-Net", recipes=(recipes.SR3,), build=sr3, settings_name="sr3"),
    dict(name="cascade base U-Net (7 x 7)", recipes=(recipes.BASE_7,), build=base, settings_name="base",
         sample_shape=(1, 7, 7)),
    dict(name="pix2pix, sketch -> digit", recipes=(recipes.SKETCH,), build=translation(recipes.SKETCH),
         settings_name="sketch"),
    dict(name="pix2pix, grey -> colour (and L1 only)", recipes=(recipes.COLOUR, recipes.COLOUR_L1),
         build=translation(recipes.COLOUR), settings_name="colour", sample_shape=(3, 28, 28)),
    dict(name="pix2pix, stamped -> clean (and L1 only)", recipes=(recipes.WATERMARK, recipes.WATERMARK_L1),
         build=translation(recipes.WATERMARK), settings_name="watermark", sample_shape=(3, 28, 28)),
)
