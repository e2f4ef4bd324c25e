"""Lesson 6 exercises: how much smaller the latent is, the latent scale, when the decoder runs."""

import math

import torch
from torch.utils.data import TensorDataset

from ..latent_diffusion import LatentAutoencoder, encode_dataset
from ..nets import evaluating
from ._base import Exercise, choice, number, register


def _grade_latent_factor(answer):
    value = number(answer)
    if value is None:
        return False, f"give a number (e.g. 0.5); {answer!r} is not one."
    with torch.device("meta"):  # shapes only: no memory, and no draw from the student's random generator
        latent_shape = LatentAutoencoder().latent_shape
    want = 28 * 28 / math.prod(latent_shape)
    if abs(value - want) < 1e-6:
        return True, "784 pixels -> 4 x 7 x 7 = 196 numbers: a quarter of the size, yet the decoder rebuilds the digit."
    if abs(value - 16) < 1e-6:
        return False, "16 is 28 x 28 / (7 x 7), the positions; the latent has 4 numbers at each of its 49 positions."
    if abs(value - 1 / want) < 1e-6:
        return False, "the other way round: how many times smaller is the latent (image size / latent size)?"
    return False, "count the numbers: the image has 1 x 28 x 28, the latent 4 x 7 x 7."


def latent_scale_solution(latents):
    # the factor that gives the latents a standard deviation of 1
    return 1.0 / latents.std()


def _encoded_digits() -> tuple[torch.Tensor, float]:
    """Latents of 50 images from a freshly built LatentAutoencoder, and the scale `encode_dataset` gives them."""
    with torch.random.fork_rng(devices=[]):  # a fixed model and images, without moving the student's generator
        torch.manual_seed(11)
        autoencoder, images = LatentAutoencoder(), torch.rand(50, 1, 28, 28)
    with evaluating(autoencoder), torch.no_grad():
        latents = autoencoder.encode(images)
    _, scale = encode_dataset(autoencoder, TensorDataset(images, torch.zeros(50, dtype=torch.long)))
    return latents, scale


def _grade_latent_scale(fn):
    z, want = _encoded_digits()
    got = fn(z)
    if got is None:
        return False, "your function returned None; return one number."
    got = float(torch.as_tensor(got).float().mean()) if torch.as_tensor(got).numel() == 1 else None
    if got is None:
        return False, "return a single number for all latents (one scale, not one per latent)."
    if math.isclose(got, z.std().item(), rel_tol=1e-3):
        return False, "that is the spread itself; the scale is what to multiply by to make the spread 1: 1 / std."
    if math.isclose(got, 1 / z.abs().max().item(), rel_tol=1e-3):
        return False, "dividing by the largest value squeezes into [-1, 1]; we want standard deviation 1: 1 / std."
    if not math.isclose(got, want, rel_tol=1e-3):
        return False, "scale = 1 / latents.std(); check: (latents * scale).std() should be 1."
    return True, "after multiplying by it the latents have spread 1, the size of the noise the forward process adds."


def _grade_decode_when(answer):
    picked = choice(answer, "ab")
    if picked == "b":
        return True, "the reverse process runs entirely on latents; the decoder is called once, on z_0."
    if picked == "a":
        return False, "decoding at every step would cost a decoder pass per step and give the U-Net images, which it " \
                      "was not trained on; it only ever saw (noisy) latents."
    return False, "answer 'a' or 'b'."


register(
    latent_factor=Exercise(
        "A digit has 1 x 28 x 28 numbers, its latent 4 x 7 x 7. By what factor is the latent smaller?",
        _grade_latent_factor, "784 / 196 = 4",
    ),
    latent_scale=Exercise(
        "Write latent_scale(latents): the number that gives the latents a standard deviation of 1 when multiplied.",
        _grade_latent_scale, latent_scale_solution,
    ),
    decode_when=Exercise(
        "When does latent diffusion call the decoder while sampling? (a) after every denoising step, to denoise the "
        "image; (b) once, on the final latent z_0.",
        _grade_decode_when, "b: the U-Net denoises latents; the decoder turns the final latent into an image.",
    ),
)
