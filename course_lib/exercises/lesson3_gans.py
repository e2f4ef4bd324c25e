"""Lesson 3 exercises: the discriminator's loss, the non-saturating generator loss, the optimal discriminator.

The students work with D's probabilities; the library's losses take D's logits (exact where D is 0 or 1), so the
graders hand the library torch.logit of the same numbers.
"""

import math

import torch

from ..gans import d_loss, g_loss_minimax, g_loss_non_saturating, optimal_discriminator, value_function
from ._base import Exercise, number, register


def gan_d_loss_solution(d_real, d_fake):
    # -V(D, G) = -[mean log D(x) + mean log(1 - D(G(z)))]: D maximizes V, so it minimizes -V
    return -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())


def _grade_gan_d_loss(fn):
    gen = torch.Generator().manual_seed(5)
    d_real, d_fake = 0.05 + 0.9 * torch.rand(64, generator=gen), 0.05 + 0.9 * torch.rand(64, generator=gen)
    got, want = fn(d_real, d_fake), d_loss(torch.logit(d_real), torch.logit(d_fake))
    if got is None:
        return False, "your function returned None; return one number, the loss averaged over the batch."
    got = torch.as_tensor(got, dtype=torch.float32)
    if got.numel() != 1:
        return False, f"return a single number (average over the batch), got shape {tuple(got.shape)}."
    if torch.isclose(got, -want, atol=1e-4):
        return False, "the sign is flipped: D maximizes V, so its loss (to minimize) is -V."
    if torch.isclose(got, d_loss(torch.logit(d_fake), torch.logit(d_real)), atol=1e-4):
        return False, "real and fake are swapped: D should say 1 for real images (log D(x)) and 0 for fakes."
    if not torch.isclose(got, want, atol=1e-4):
        return False, "not -V yet: -(mean log D(x) + mean log(1 - D(G(z))))."
    return True, "that is the discriminator's loss -V(D, G), i.e. binary cross-entropy with real = 1, fake = 0."


def g_loss_non_saturating_solution(d_fake):
    # -mean log D(G(z)): large gradient where D(G(z)) is small, i.e. where the generator is losing
    return -torch.log(d_fake).mean()


def _grade_g_loss_ns(fn):
    d_fake = torch.tensor([0.01, 0.1, 0.5, 0.9], requires_grad=True)
    got = fn(d_fake)
    if got is None:
        return False, "your function returned None; return one number."
    got = torch.as_tensor(got)
    logits = torch.logit(d_fake.detach())
    minimax = g_loss_minimax(logits)
    if got.numel() == 1 and torch.isclose(got.detach().float(), minimax, atol=1e-4):
        return False, "that is the minimax loss log(1 - D(G(z))), which saturates; the trick uses log D(G(z))."
    if got.numel() == 1 and torch.isclose(got.detach().float(), -minimax, atol=1e-4):
        return False, "that is -log(1 - D(G(z))): the trick flips the target, use -log D(G(z)) instead."
    want = g_loss_non_saturating(logits)
    if got.numel() != 1 or not torch.isclose(got.detach().float(), want, atol=1e-4):
        return False, "the non-saturating loss is -mean log D(G(z)) (one number for the batch)."
    if got.requires_grad:
        (grad,) = torch.autograd.grad(got, d_fake)
        if grad[0].abs() < grad[-1].abs():
            return False, "the gradient should be largest where D(G(z)) is smallest."
    return True, "-log D(G(z)) has its steepest slope where D rejects the fake, so G learns fastest when it is worst."


def _grade_optimal_d(answer):
    value = number(answer)
    if value is None:
        return False, f"give a number (e.g. 0.5); {answer!r} is not one."
    want = optimal_discriminator(torch.tensor(0.3), torch.tensor(0.1)).item()
    if abs(value - want) < 1e-3:
        return True, f"D*(x) = p_data / (p_data + p_g) = 0.3 / 0.4 = {want:.2f}."
    if abs(value - 0.25) < 1e-3:
        return False, "that is p_g / (p_data + p_g): D* is the probability that x is real."
    if abs(value - 3.0) < 1e-3:
        return False, "that is the ratio p_data / p_g; D* divides by the sum p_data + p_g."
    return False, "use D*(x) = p_data(x) / (p_data(x) + p_g(x))."


def _grade_v_at_optimum(answer):
    value = number(answer)
    if value is None:
        return False, f"give a number (e.g. 0.5); {answer!r} is not one."
    want = value_function(torch.zeros(1), torch.zeros(1)).item()  # D* = 1/2 everywhere: logit 0
    if abs(value - want) < 1e-3:
        return True, f"with p_g = p_data, D* = 1/2 everywhere and V = log(1/2) + log(1/2) = -log 4 (about {want:.3f})."
    if abs(value) < 1e-3:
        return False, "JSD is 0 there, but V = 2 JSD - log 4: the constant remains."
    if abs(value - math.log(0.5)) < 1e-3:
        return False, "V has two terms, one for real and one for generated samples; both are log(1/2)."
    return False, "what is D* when p_data = p_g? Put it into V = E log D(x) + E log(1 - D(G(z)))."


register(
    gan_d_loss=Exercise(
        "Write gan_d_loss(d_real, d_fake): the discriminator's loss from its outputs (probabilities) on a batch of "
        "real images and a batch of generated ones.",
        _grade_gan_d_loss, gan_d_loss_solution,
    ),
    g_loss_ns=Exercise(
        "Write g_loss_ns(d_fake): the non-saturating generator loss, from D's outputs on generated images.",
        _grade_g_loss_ns, g_loss_non_saturating_solution,
    ),
    optimal_d=Exercise(
        "At a point x, p_data(x) = 0.3 and p_g(x) = 0.1. What does the optimal discriminator D*(x) say?",
        _grade_optimal_d, "D*(x) = 0.3 / (0.3 + 0.1) = 0.75",
    ),
    v_at_optimum=Exercise(
        "When the generator is perfect (p_g = p_data) and D is optimal, what is V(D, G)? (a number)",
        _grade_v_at_optimum, "-log 4 = -1.386: D* = 1/2 everywhere, so V = 2 log(1/2).",
    ),
)
