"""Lesson 10's models set up as the lesson sets them up, for the `gpu` profile's dry run (`course_lib.tools.gpu_dry_run`):
each `build(settings, device, digits)` returns (Setup, training data), the data as many samples as `digits`: the digits
painted and captioned (the VQ-VAE and CLIP), their codes (the prior) or latents (the U-Net) from an untrained VQ-VAE,
which have the shapes the lesson's have, all a dry run needs."""

import torch
from torch.utils.data import TensorDataset

from .. import recipes
from ..captions import random_captions, tokenize
from ..data import draw_colour_attributes, paint_digits
from ..diffusion import DiffusionSchedule
from ..latent_diffusion import encode_dataset
from ..text2image import clip_step, draw_from_text, t2i_step
from ..training import EMA
from ..vqvae import draw_from_codes, encode_codes, prior_step, vq_step
from .setups import Setup

DDIM_STEPS = 2  # a sampler's steps in the dry run


def _captioned(digits: TensorDataset) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x, y = digits.tensors[0], digits.tensors[1]
    a = draw_colour_attributes(len(y), g)
    return TensorDataset(paint_digits(x, a), y, a, tokenize(random_captions(y, a, g)))


def _adam(model, R):
    return torch.optim.Adam(model.parameters(), lr=R.lr)


def vqvae(s, device, digits):
    """The VQ-VAE, trained on captioned colour digits; a sample is a reconstruction."""
    R, data = recipes.VQ_T2I, _captioned(digits)
    model = R.build(s).to(device)
    return Setup(model, vq_step(recipes.VQ_BETA), _adam(model, R),
                 lambda n, g: model(data.tensors[0][:n].to(device)).image.cpu()), data


def prior(s, device, digits):
    """The transformer prior over the codes of an (untrained) VQ-VAE; sampled 196 codes at a time."""
    R, data = recipes.CODE_PRIOR, _captioned(digits)
    vq = recipes.VQ_T2I.build(s).to(device)
    model = R.build(s).to(device)
    captions = ["a red seven", "a small blue 2 on the left"]
    return Setup(model, prior_step(), torch.optim.AdamW(model.parameters(), lr=R.lr),
                 lambda n, g: draw_from_codes(model, vq, (captions * n)[:n])), TensorDataset(
        data.tensors[3], encode_codes(vq, data.tensors[0]))


def clip(s, device, digits):
    """The miniature CLIP; a "sample" is the image encoder's unit vectors."""
    R, data = recipes.MINI_CLIP, _captioned(digits)
    model = R.build(s).to(device)
    return Setup(model, clip_step(), _adam(model, R),
                 lambda n, g: model.embed_images(data.tensors[0][:n].to(device)).detach().cpu()), data


def unet(s, device, digits):
    """The text U-Net on the latents of an (untrained) VQ-VAE, guided by captions, decoded by the VQ-VAE."""
    R, data = recipes.T2I_UNET, _captioned(digits)
    vq = recipes.VQ_T2I.build(s).to(device)
    latent_data, scale = encode_dataset(vq, TensorDataset(data.tensors[0], data.tensors[3]))
    model, schedule = R.build(s).to(device), DiffusionSchedule(T=R.T, kind=R.schedule)
    ema = EMA(model, decay=R.ema_decay)
    sample = lambda n, g: draw_from_text(ema.model, vq, schedule, scale, ["a red seven"] * n,  # noqa: E731
                                         steps=DDIM_STEPS)
    return Setup(model, t2i_step(schedule, R.p_uncond, torch.Generator().manual_seed(0)), _adam(model, R), sample,
                 callbacks=[ema], ema=ema), latent_data


# the DryRun arguments of each (the lesson is "text_to_image")
RUNS = (
    dict(name="VQ-VAE (256 codes, 14 x 14)", recipes=(recipes.VQ_T2I,), build=vqvae, settings_name="vqvae",
         sample_shape=(3, 28, 28)),
    dict(name="code prior (transformer)", recipes=(recipes.CODE_PRIOR,), build=prior, settings_name="prior",
         sample_shape=(3, 28, 28)),
    dict(name="miniature CLIP", recipes=(recipes.MINI_CLIP,), build=clip, settings_name="clip", sample_shape=(64,)),
    dict(name="text U-Net (cross-attention)", recipes=(recipes.T2I_UNET,), build=unet, settings_name="unet",
         sample_shape=(3, 28, 28)),
)
