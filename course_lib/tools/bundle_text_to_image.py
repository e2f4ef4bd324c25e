"""What the bundle's manifest measures on lesson 10's models (`python -m course_lib.tools.bundle measure`): each on
200 held-out captioned pictures, with the bundled VQ-VAE where a model needs it."""

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from .. import pretrained, recipes
from ..captions import caption, captioned_digits, prompts_for, tokenize
from ..diffusion import DiffusionSchedule
from ..latent_diffusion import encode_dataset
from ..prompt_following import prompt_following, read_attributes
from ..text2image import draw_from_text
from ..vqvae import encode_codes


def _test(n: int = 200):
    return captioned_digits("test", n=n, source="bundled")[0].tensors


def _bundled_vqvae():
    vqvae = recipes.VQ_T2I.build(recipes.VQ_T2I.settings(pretrained.BUILD_PROFILE))
    pretrained.load_into(recipes.VQ_T2I.name, model=vqvae)
    return vqvae.eval()


@torch.no_grad()
def vqvae(parts: dict) -> dict:
    """Reconstruction error, and the share of reconstructions whose digit and ink the reader gets right."""
    x, y, a, _ = _test()
    out = parts["model"].eval()(x)
    read = read_attributes(out.image)
    return {"test_reconstruction_mse": round(F.mse_loss(out.image, x).item(), 5),
            "reconstruction_digit_read": round((read["digit"] == y).float().mean().item(), 3),
            "reconstruction_ink_read": round((read["ink"] == a[:, 0]).float().mean().item(), 3)}


@torch.no_grad()
def prior(parts: dict) -> dict:
    """Cross-entropy of the test pictures' codes given their captions, in nats per code."""
    _, _, _, tokens = _test()
    x = _test()[0]
    codes = encode_codes(_bundled_vqvae(), x).flatten(1)
    logits = parts["model"].eval()(tokens, codes)
    return {"test_nats_per_code": round(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes.reshape(-1)).item(), 3)}


@torch.no_grad()
def clip(parts: dict) -> dict:
    """Retrieval: the share of pictures whose most similar full caption (of 200) describes them exactly."""
    x, y, a, _ = _test()
    model = parts["model"].eval()
    key = torch.cat([y[:, None], a], 1)
    similarity = model.embed_images(x) @ model.embed_text(tokenize([caption(int(d), r) for d, r in zip(y, a)])).T
    hit = (key[similarity.argmax(1)] == key).all(1)
    return {"retrieval_top1_200": round(hit.float().mean().item(), 3)}


def unet(parts: dict) -> dict:
    """Prompt following of 100 samples for seen (digit, ink) captions at guidance w = 3."""
    vq = _bundled_vqvae()
    train = captioned_digits("train", n=recipes.T2I_UNET.settings(pretrained.BUILD_PROFILE).n_train,
                             copies=recipes.T2I_UNET.settings(pretrained.BUILD_PROFILE).copies, source="bundled")[0]
    _, scale = encode_dataset(vq, TensorDataset(train.tensors[0], train.tensors[3]))
    captions, digits, inks = prompts_for(100)
    s = recipes.T2I_UNET.settings(pretrained.BUILD_PROFILE)
    images = draw_from_text(parts["ema"].eval(), vq, DiffusionSchedule(T=recipes.T2I_UNET.T), scale, captions, w=3.0,
                            steps=s.ddim_steps[0])
    shares = prompt_following(images, {"digit": digits, "ink": inks})
    return {f"prompt_following_{k}_100": round(v, 3) for k, v in shares.items()}
