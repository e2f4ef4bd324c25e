"""Lesson 5 exercises: one-hot labels, pix2pix's generator loss, classifier guidance, classifier-free guidance (the
formula, the paper's w, the guided noise prediction of a U-Net), the cost of guidance.

The guided noise prediction is checked against the library's `GuidedModel` on a small class-conditional U-Net with
fixed weights, the same noisy images, steps and labels.
"""

import inspect

import torch
import torch.nn.functional as F

from ..conditional import GuidedModel, guided_eps, one_hot
from ..diffusion import ddim_timesteps
from ..diffusion_theory import classifier_guided_eps
from ..gans import g_loss_minimax, g_loss_non_saturating
from ..nets import evaluating
from ..pix2pix import Pix2PixStep
from ..unet import UNet
from ._base import Exercise, number, register, whole_number

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
        return False, "your function returned None; return the guided noise prediction."
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


def classifier_guidance_solution(eps, grad_log_p_y, abar_t, s):
    # grad log p(x_t | y) = grad log p(x_t) + grad log p(y | x_t), and eps = -sqrt(1 - abar_t) * score
    return eps - s * (1 - abar_t) ** 0.5 * grad_log_p_y


def _grade_classifier_guidance(fn):
    gen = torch.Generator().manual_seed(15)
    eps, grad = torch.randn(3, 2, generator=gen), torch.randn(3, 2, generator=gen)
    abar, s = 0.36, 2.0  # sqrt(1 - abar) = 0.8, distinct from (1 - abar) and sqrt(abar)
    got = fn(eps, grad, abar, s)
    if got is None:
        return False, "your function returned None; return the guided noise prediction."
    got = torch.as_tensor(got)
    if got.shape != eps.shape:
        return False, f"the guided noise has the shape of eps {tuple(eps.shape)}, got {tuple(got.shape)}."
    wrong = [
        (eps + s * 0.8 * grad, "the sign is flipped: the score is -eps / sqrt(1 - abar_t), so adding "
                               "s grad log p(y | x) to the score subtracts s sqrt(1 - abar_t) grad log p(y | x) "
                               "from eps."),
        (eps - s * grad, "the gradient is in the score's units; in the noise's it is scaled by sqrt(1 - abar_t)."),
        (eps - s * 0.64 * grad, "scale by sqrt(1 - abar_t), the noise's standard deviation, not by 1 - abar_t."),
        (eps - s * 0.6 * grad, "scale by sqrt(1 - abar_t), the noise's share of x_t, not by sqrt(abar_t)."),
        (eps - 0.8 * grad, "the guidance scale s multiplies the classifier's gradient."),
    ]
    for value, hint in wrong:
        if torch.allclose(got, value, atol=1e-5):
            return False, hint
    if not torch.allclose(got, classifier_guided_eps(eps, grad, abar, s), atol=1e-5):
        return False, "eps~ = eps - s * sqrt(1 - abar_t) * grad log p(y | x_t)."
    return True, ("Bayes' rule on scores: the classifier's gradient turns the unconditional score into the "
                  "conditional one (s = 1), or a more decided one (s > 1).")


def _grade_paper_w(answer):
    value = number(answer)
    if value is None:
        return False, f"give a number (e.g. 1.5); {answer!r} is not one."
    theirs = 2.0
    eps_u, eps_c = torch.tensor([0.2]), torch.tensor([1.0])
    paper = (1 + theirs) * eps_c - theirs * eps_u  # Ho & Salimans' form with their w = 2
    if torch.allclose(guided_eps(eps_u, eps_c, value), paper):
        return True, (f"w = 1 + w' = {value:g}: eps_u + w (eps_c - eps_u) = w eps_c - (w - 1) eps_u, so the paper's "
                      f"w' is this lesson's w - 1 (their w' = 0 is the plain conditional model, our w = 1).")
    if abs(value - (theirs - 1)) < 1e-6:
        return False, "the other way round: the paper's w' = 0 already follows the label (our w = 1)."
    if abs(value - theirs) < 1e-6:
        return False, ("the two forms differ: expand (1 + w') eps_c - w' eps_u and match it with "
                       "eps_u + w (eps_c - eps_u).")
    return False, "write both as a * eps_c + b * eps_u and match the coefficient of eps_c."


def _tiny_conditional_unet() -> UNet:
    with torch.random.fork_rng(devices=[]):  # the student's random state is left as it was
        torch.manual_seed(16)
        return UNet(channels=(8, 16, 16), time_dim=32, num_classes=10).eval()


def guided_model_solution(unet, x_t, t, y, w):
    # the U-Net twice: with the labels, and with the "empty" label (index unet.num_classes = 10, label dropout's)
    empty = torch.full_like(y, unet.num_classes)
    eps_cond, eps_uncond = unet(x_t, t, y), unet(x_t, t, empty)
    return eps_uncond + w * (eps_cond - eps_uncond)


def _grade_guided_model(fn):
    unet = _tiny_conditional_unet()
    gen = torch.Generator().manual_seed(17)
    x_t = torch.randn(4, 1, 28, 28, generator=gen)
    t, y = torch.tensor([100, 400, 700, 900]), torch.tensor([3, 0, 9, 5])
    with torch.no_grad(), evaluating(unet):
        got = {w: fn(unet, x_t, t, y, w) for w in (0.0, 1.0, 3.0)}
        want = {w: GuidedModel(unet, y, w, fast=False)(x_t, t) for w in got}
        eps_c, eps_u = unet(x_t, t, y), unet(x_t, t, torch.full_like(y, 10))
        eps_zero = unet(x_t, t, torch.zeros_like(y))
    if any(v is None for v in got.values()):
        return False, "your function returned None; return the guided noise prediction, shaped like x_t."
    got = {w: torch.as_tensor(v).float() for w, v in got.items()}
    if got[3.0].shape != x_t.shape:
        return False, f"the guided noise has the shape of x_t {tuple(x_t.shape)}, got {tuple(got[3.0].shape)}."
    if all(torch.allclose(got[w], want[w], atol=1e-4) for w in got):
        return True, ("the same guided noise as the library's GuidedModel at w = 0, 1 and 3: the guidance slider "
                      "below samples with your function.")
    if torch.allclose(got[3.0], guided_eps(eps_zero, eps_c, 3.0), atol=1e-4):
        return False, ("the empty label is unet.num_classes = 10, the extra class that label dropout trained; label 0 "
                       "is the digit zero. Use torch.full_like(y, unet.num_classes).")
    if torch.allclose(got[3.0], 4.0 * eps_c - 3.0 * eps_u, atol=1e-4):
        return False, ("that is Ho & Salimans' (1 + w) eps_c - w eps_u; this lesson's w is theirs + 1: use "
                       "eps_u + w * (eps_c - eps_u).")
    if torch.allclose(got[3.0], guided_eps(eps_c, eps_u, 3.0), atol=1e-4):
        return False, ("conditional and unconditional are swapped: start from eps(x_t, t, empty), move towards "
                       "eps(x_t, t, y).")
    if torch.allclose(got[3.0], eps_u, atol=1e-4):
        return False, ("both predictions came out unconditional: the conditional one is unet(x_t, t, y), with "
                       "the labels.")
    if torch.allclose(got[3.0], eps_c, atol=1e-4):
        return False, "only the conditional prediction: guidance needs the unconditional one too, unet(x_t, t, empty)."
    if torch.allclose(got[1.0], want[1.0], atol=1e-4) and torch.allclose(got[0.0], want[0.0], atol=1e-4):
        return False, "right at w = 0 and w = 1; for other w: eps_u + w * (eps_c - eps_u)."
    return False, ("eps_c = unet(x_t, t, y), eps_u = unet(x_t, t, empty) with empty = torch.full_like(y, "
                   "unet.num_classes); return eps_u + w * (eps_c - eps_u).")


register(
    one_hot=Exercise(
        "Write one_hot(y): labels (B,) -> a (B, 10) float tensor with a single 1 per row, in column y.",
        _grade_one_hot, one_hot_solution,
    ),
    pix2pix_g_loss=Exercise(
        "Write pix2pix_g_loss(d_fake, fake, target, l1_weight): the generator's loss, with d_fake = D(x, G(x)) "
        "as probabilities.",
        _grade_pix2pix_g_loss, pix2pix_g_loss_solution,
    ),
    classifier_guidance=Exercise(
        "Write classifier_guided(eps, grad_log_p_y, abar_t, s): the noise prediction of classifier guidance, "
        "eps - s sqrt(1 - abar_t) grad log p(y | x_t).",
        _grade_classifier_guidance, classifier_guidance_solution,
    ),
    guidance=Exercise(
        "Write guide(eps_uncond, eps_cond, w): classifier-free guidance's noise prediction.",
        _grade_guidance, guidance_solution,
    ),
    paper_w=Exercise(
        "Ho & Salimans write (1 + w') eps(x_t, t, y) - w' eps(x_t, t, empty). Which w of this lesson's formula is "
        "their w' = 2?",
        _grade_paper_w, "3: eps_u + w (eps_c - eps_u) = w eps_c - (w - 1) eps_u, so w = 1 + w'.",
    ),
    guided_model=Exercise(
        "Write guided_eps(unet, x_t, t, y, w): the U-Net's guided noise prediction, from its prediction with the "
        "labels y and with the empty label (unet.num_classes).",
        _grade_guided_model, guided_model_solution,
    ),
    guidance_cost=Exercise(
        "How many U-Net evaluations does guided DDIM with 50 steps need for one image (w not 0 or 1)?",
        _grade_guidance_cost, "100: two noise predictions per step.",
    ),
)
