"""Lesson 5 exercises: one-hot labels, classifier-free guidance, pix2pix's generator loss, the cost of guidance."""

import inspect

import torch
import torch.nn.functional as F

from ..conditional import guided_eps, one_hot
from ..diffusion import ddim_timesteps
from ..gans import g_loss_minimax, g_loss_non_saturating
from ..pix2pix import Pix2PixStep
from ._base import Exercise, register, whole_number

_L1_WEIGHT = inspect.signature(Pix2PixStep).parameters["l1_weight"].default  # pix2pix's lambda, as the library trains


def one_hot_solution(y, num_classes=10):
    # a row of zeros per label, with a 1 in the label's column
    code = torch.zeros(len(y), num_classes)
    code[torch.arange(len(y)), y] = 1.0
    return code


def _grade_one_hot(fn):
    y = torch.tensor([3, 0, 9, 3])
    want = one_hot(y)
    got = fn(y)
    if got is None or got is ...:
        return False, "your function returned None; return the (B, 10) one-hot codes."
    got = torch.as_tensor(got)
    if got.shape != want.shape:
        if got.shape == want.T.shape:
            return False, "the codes come out transposed: one row per label, one column per class, (B, 10)."
        return False, f"4 labels should give 4 rows of 10 numbers, shape (4, 10); got {tuple(got.shape)}."
    if torch.equal(got.float(), 1 - want):
        return False, "0s and 1s are swapped: the label's column holds the 1, every other column a 0."
    if not torch.equal(got.float(), want):
        return False, "row i should be all zeros except a 1 in column y[i] (label 3 -> a 1 in column 3, counting from 0)."
    if not got.is_floating_point():
        return False, "right positions, but networks take float inputs: return floats (e.g. .float())."
    return True, "each label is a direction of its own: no class is 'between' two others, as the numbers 3 and 4 would suggest."


def guidance_solution(eps_uncond, eps_cond, w):
    # eps = eps(x_t, t, empty) + w * (eps(x_t, t, y) - eps(x_t, t, empty))
    return eps_uncond + w * (eps_cond - eps_uncond)


def _grade_guidance(fn):
    gen = torch.Generator().manual_seed(9)
    eps_u, eps_c = torch.randn(2, 1, 28, 28, generator=gen), torch.randn(2, 1, 28, 28, generator=gen)
    got = {w: fn(eps_u, eps_c, w) for w in (0.0, 1.0, 3.0)}
    if any(v is None or v is ... for v in got.values()):
        return False, "your function returned nothing yet; return the guided noise prediction."
    got = {w: torch.as_tensor(v) for w, v in got.items()}
    if torch.allclose(got[3.0], eps_c + 3.0 * (eps_c - eps_u), atol=1e-5):
        return False, "you start from the conditional prediction; start from the unconditional one, eps(x_t, t, empty)."
    if torch.allclose(got[3.0], 3.0 * eps_c, atol=1e-5):
        return False, "scaling eps(x_t, t, y) is not guidance: move along the difference eps(x, y) - eps(x, empty)."
    if not torch.allclose(got[0.0], eps_u, atol=1e-5):
        return False, "at w = 0 the result should be the unconditional prediction eps_uncond."
    if not torch.allclose(got[1.0], eps_c, atol=1e-5):
        return False, "at w = 1 the result should be the conditional prediction eps_cond."
    if not torch.allclose(got[3.0], guided_eps(eps_u, eps_c, 3.0), atol=1e-5):
        return False, "right at w = 0 and w = 1; for other w: eps_uncond + w * (eps_cond - eps_uncond)."
    return True, "w = 0 ignores the label, w = 1 follows it, w > 1 goes further in the direction the label points."


def pix2pix_g_loss_solution(d_fake, fake, target, l1_weight=100.0):
    # -mean log D(x, G(x))  +  lambda * mean |G(x) - y|
    return -torch.log(d_fake).mean() + l1_weight * (fake - target).abs().mean()


def _grade_pix2pix_g_loss(fn):
    gen = torch.Generator().manual_seed(10)
    d_fake = torch.rand(4, 1, 7, 7, generator=gen) * 0.9 + 0.05
    fake, target = torch.rand(4, 1, 28, 28, generator=gen), torch.rand(4, 1, 28, 28, generator=gen)
    got = fn(d_fake, fake, target, _L1_WEIGHT)
    if got is None or got is ...:
        return False, "your function returned None; return one number (a 0-d tensor)."
    got = torch.as_tensor(got, dtype=torch.float32)
    if got.numel() != 1:
        return False, f"return one number for the whole batch (take the means), got shape {tuple(got.shape)}."
    # Pix2PixStep's generator loss, on D's logits as the library takes them
    adversarial, l1 = g_loss_non_saturating(torch.logit(d_fake)), F.l1_loss(fake, target)
    want = adversarial + _L1_WEIGHT * l1
    if torch.isclose(got, adversarial + _L1_WEIGHT * F.mse_loss(fake, target), atol=1e-4):
        return False, "that is a squared error (L2); pix2pix uses the absolute error |G(x) - y| (L1), which blurs less."
    if torch.isclose(got, g_loss_minimax(torch.logit(d_fake)) + _L1_WEIGHT * l1, atol=1e-4):
        return False, "that is the minimax term log(1 - D); use the non-saturating -log D(x, G(x)) as in lesson 3."
    if torch.isclose(got, adversarial + l1, atol=1e-4):
        return False, f"the L1 term is missing its weight lambda = l1_weight ({_L1_WEIGHT:g} in pix2pix)."
    if torch.isclose(got, _L1_WEIGHT * l1, atol=1e-4) or torch.isclose(got, adversarial, atol=1e-4):
        return False, "the loss has two terms: the adversarial -mean log D(x, G(x)) plus lambda times the mean L1."
    if not torch.isclose(got, want, atol=1e-4):
        return False, "L_G = -mean log D(x, G(x)) + lambda * mean |G(x) - y|."
    return True, "D pushes towards 'looks real', L1 towards 'is the right digit': together, sharp and correct."


def _grade_guidance_cost(answer):
    value, steps = whole_number(answer), len(ddim_timesteps(1000, 50))
    if value is None:
        return False, f"a number of U-Net evaluations is a whole number; {answer!r} is not one."
    if value == 2 * steps:  # eps(x_t, t, y) and eps(x_t, t, empty) at every step
        return True, "two predictions per step (with the label and with the empty label), so guidance doubles the cost."
    if value == steps:
        return False, "each step needs two noise predictions: eps(x_t, t, y) and eps(x_t, t, empty)."
    return False, "count the network evaluations in one step of guided sampling, then multiply by the 50 steps."


register(
    one_hot=Exercise(
        "Write one_hot(y): labels (B,) -> a (B, 10) float tensor with a single 1 per row, in column y.",
        _grade_one_hot, one_hot_solution,
    ),
    guidance=Exercise(
        "Write guide(eps_uncond, eps_cond, w): classifier-free guidance's noise prediction.",
        _grade_guidance, guidance_solution,
    ),
    pix2pix_g_loss=Exercise(
        "Write pix2pix_g_loss(d_fake, fake, target, l1_weight): the generator's loss, with d_fake = D(x, G(x)) "
        "as probabilities.",
        _grade_pix2pix_g_loss, pix2pix_g_loss_solution,
    ),
    guidance_cost=Exercise(
        "How many U-Net evaluations does guided DDIM with 50 steps need for one image (w not 0 or 1)?",
        _grade_guidance_cost, "100: two noise predictions per step.",
    ),
)
