"""Lesson 6 exercises: how much smaller the latent is, the latent scale, the signal-to-noise ratio of unscaled latents,
decoding a sampled latent, when the decoder runs."""

import math

import torch
from torch.utils.data import TensorDataset

from ..latent_diffusion import LatentAutoencoder, decode_latents, encode_dataset
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


def _grade_unscaled_snr(answer):
    value = number(answer)
    if value is None:
        return False, f"give a number (e.g. 0.5); {answer!r} is not one."
    alpha_bar, std = 0.5, 5.0
    want = alpha_bar * std**2 / (1 - alpha_bar)  # signal variance over noise variance in x_t
    if abs(value - want) < 1e-3:
        return True, (f"{want:g}: the signal's variance is alpha_bar * 25, the noise's 1 - alpha_bar. The step the "
                      f"schedule meant as half signal, half noise is still almost all signal, and the noise only wins "
                      f"at much later steps: the schedule's steps are spent in the wrong places.")
    if abs(value - std) < 1e-3:
        return False, "a signal-to-noise ratio compares variances: square the standard deviation."
    if abs(value - 1) < 1e-3:
        return False, "1 is the ratio for data of standard deviation 1; these latents have 5 times that."
    if abs(value - 1 / want) < 1e-3:
        return False, "the other way round: signal over noise, alpha_bar * std^2 / (1 - alpha_bar)."
    return False, ("x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps: compare alpha_bar * Var(x_0) with "
                   "(1 - alpha_bar).")


def latent_decode_solution(autoencoder, z, scale):
    # the diffusion model works on latents multiplied by `scale`: undo it, then decode (BatchNorm in eval mode)
    with evaluating(autoencoder), torch.no_grad():
        return autoencoder.decode(z / scale)


def _decoder_and_latents() -> tuple[LatentAutoencoder, torch.Tensor, float]:
    """An autoencoder in training mode with BatchNorm statistics of its own, and scaled latents, the same each call."""
    with torch.random.fork_rng(devices=[]):  # without moving the student's generator
        torch.manual_seed(12)
        autoencoder = LatentAutoencoder()
        with torch.no_grad():
            autoencoder(torch.rand(64, 1, 28, 28))  # a training-mode pass: the running statistics move off 0 and 1
        z = torch.randn(6, *autoencoder.latent_shape)
    return autoencoder.train(), z, 2.5


def _decoded(how: str, train: bool) -> torch.Tensor:
    """What a fresh copy of the grading autoencoder decodes from latents made `how` ("z / scale", "z", "z * scale"),
    in training or in eval mode. A fresh copy each time: a training-mode pass moves BatchNorm's running statistics."""
    autoencoder, z, scale = _decoder_and_latents()
    latents = {"z / scale": z / scale, "z": z, "z * scale": z * scale}[how]
    with torch.no_grad():
        return autoencoder.train(train).decoder(latents)


def _grade_latent_decode(fn):
    autoencoder, z, scale = _decoder_and_latents()
    want = decode_latents(*_decoder_and_latents())
    got = fn(autoencoder, z, scale)
    if got is None:
        return False, "your function returned None; return the decoded images."
    got = torch.as_tensor(got).detach().float().cpu()
    if got.shape != want.shape:
        return False, f"expected images shaped {tuple(want.shape)}, one per latent; got {tuple(got.shape)}."
    if torch.allclose(got, want, atol=1e-5):
        return True, "z / scale undoes the scaling of encode_dataset, and the decoder turns the latents into digits."
    # in training mode BatchNorm normalizes each batch by its own statistics, which also hides a wrong scale
    if any(torch.allclose(got, _decoded(how, train=True), atol=1e-4) for how in ("z / scale", "z", "z * scale")):
        return False, ("BatchNorm used the batch's own statistics: decode in eval mode (autoencoder.eval(), or with "
                       "evaluating(autoencoder):), from z / scale.")
    if torch.allclose(got, _decoded("z", train=False), atol=1e-5):
        return False, ("the latents are still scaled: the diffusion model made latents times `scale`, so divide by "
                       "scale before decoding.")
    if torch.allclose(got, _decoded("z * scale", train=False), atol=1e-5):
        return False, "multiplying by scale again goes the wrong way: undo the scaling with z / scale."
    return False, "images = autoencoder.decode(z / scale), in eval mode."


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
    unscaled_snr=Exercise(
        "At the step where alpha_bar = 0.5, x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps is half signal, half "
        "noise for data of standard deviation 1 (signal-to-noise ratio 1). What is the ratio there for latents of "
        "standard deviation 5 that went in unscaled?",
        _grade_unscaled_snr, "0.5 * 5^2 / (1 - 0.5) = 25: the signal's variance over the noise's variance.",
    ),
    latent_decode=Exercise(
        "Write latent_decode(autoencoder, z, scale): images from latents that the diffusion model sampled (scaled "
        "latents, as encode_dataset made them); the autoencoder may be in training mode.",
        _grade_latent_decode, latent_decode_solution,
    ),
    decode_when=Exercise(
        "When does latent diffusion call the decoder while sampling? (a) after every denoising step, to denoise the "
        "image; (b) once, on the final latent z_0.",
        _grade_decode_when, "b: the U-Net denoises latents; the decoder turns the final latent into an image.",
    ),
)
