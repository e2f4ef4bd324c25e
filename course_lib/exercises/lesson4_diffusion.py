"""Lesson 4 exercises: the forward process in closed form, one reverse step, what is left of x_0 at the end.

The students get abar_t and beta_t as numbers; the graders read them off the library's `DiffusionSchedule` at one
step t and compare with the library's `q_sample` / `ddpm_update` at that step.
"""

import math

import torch

from ..diffusion import DiffusionSchedule, ddpm_update, predict_x0, q_sample
from ._base import Exercise, number, register

_SCHEDULE = DiffusionSchedule(T=1000)  # lesson 4's linear schedule


def q_sample_solution(x0, abar_t, eps):
    # x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
    return math.sqrt(abar_t) * x0 + math.sqrt(1 - abar_t) * eps


def _grade_q_sample(fn):
    gen = torch.Generator().manual_seed(7)
    x0, eps = torch.rand(4, 1, 28, 28, generator=gen) * 2 - 1, torch.randn(4, 1, 28, 28, generator=gen)
    t = 342  # abar_t about 0.3: image and noise both clearly present
    abar = _SCHEDULE.alpha_bars[t].item()
    got = fn(x0, abar, eps)
    if got is None:
        return False, "your function returned None; return x_t."
    got = torch.as_tensor(got)
    if got.shape != x0.shape:
        return False, f"x_t should have the shape of x0 {tuple(x0.shape)}, got {tuple(got.shape)}."
    if torch.allclose(got, abar * x0 + (1 - abar) * eps, atol=1e-5):
        return False, "the coefficients are standard deviations: take square roots, sqrt(abar_t) and sqrt(1 - abar_t)."
    if torch.allclose(got, math.sqrt(1 - abar) * x0 + math.sqrt(abar) * eps, atol=1e-5):
        return False, "the two coefficients are swapped: the image gets sqrt(abar_t), the noise sqrt(1 - abar_t)."
    if not torch.allclose(got, q_sample(_SCHEDULE, x0, t, eps), atol=1e-5):
        return False, "x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps."
    return True, "x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps: any step in one jump."


def reverse_step_solution(x_t, eps, beta_t, abar_t, z):
    # x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) + sigma_t z, sigma_t^2 = beta_t
    alpha_t = 1 - beta_t
    return (x_t - beta_t / math.sqrt(1 - abar_t) * eps) / math.sqrt(alpha_t) + math.sqrt(beta_t) * z


def _grade_reverse_step(fn):
    gen = torch.Generator().manual_seed(8)
    x_t, eps, z = (torch.randn(3, 1, 28, 28, generator=gen) for _ in range(3))
    t = 298  # abar_t about 0.4
    beta, abar = _SCHEDULE.betas[t].item(), _SCHEDULE.alpha_bars[t].item()
    got = fn(x_t, eps, beta, abar, z)
    if got is None:
        return False, "your function returned None; return x_{t-1}."
    got = torch.as_tensor(got)
    want = ddpm_update(_SCHEDULE, x_t, t, eps, z, variance="beta")
    mean = ddpm_update(_SCHEDULE, x_t, t, eps, torch.zeros_like(z))
    if got.shape != want.shape:
        return False, f"x_(t-1) should have the shape of x_t {tuple(x_t.shape)}, got {tuple(got.shape)}."
    if torch.allclose(got, mean, atol=1e-5):
        return False, "the fresh noise is missing: add sigma_t * z with sigma_t = sqrt(beta_t)."
    if torch.allclose(got, mean + beta * z, atol=1e-5):
        return False, "sigma_t is the standard deviation: sqrt(beta_t), not beta_t."
    if torch.allclose(got, predict_x0(_SCHEDULE, x_t, t, eps), atol=1e-5):
        return False, "that is the predicted x_0 (one jump to the end); Algorithm 2 takes one small step."
    if not torch.allclose(got, want, atol=1e-5):
        return False, "x_(t-1) = (x_t - beta_t / sqrt(1 - abar_t) * eps) / sqrt(1 - beta_t) + sqrt(beta_t) * z."
    return True, "that is Algorithm 2's step: remove a little of the predicted noise, then add a little fresh noise."


def _grade_signal_left(answer):
    value = number(answer)
    if value is None:
        return False, f"give a number (e.g. 0.5); {answer!r} is not one."
    abar_T, want = _SCHEDULE.alpha_bars[-1].item(), _SCHEDULE.sqrt_alpha_bars[-1].item()
    if abs(value - want) < 5e-4:
        return True, (f"sqrt(abar_T) = sqrt({abar_T:.0e}), about {want:.3f}: less than 1% of the image is left, "
                      f"well below the noise.")
    if abs(value - abar_T) < 1e-5:
        return False, "abar_T scales the variance; the image itself is multiplied by its square root."
    return False, "x_T = sqrt(abar_T) x_0 + sqrt(1 - abar_T) eps: what multiplies x_0?"


register(
    q_sample=Exercise(
        "Write q_sample(x0, abar_t, eps): the forward process in closed form.", _grade_q_sample, q_sample_solution,
    ),
    reverse_step=Exercise(
        "Write reverse_step(x_t, eps, beta_t, abar_t, z): one step of Algorithm 2 with sigma_t^2 = beta_t.",
        _grade_reverse_step, reverse_step_solution,
    ),
    signal_left=Exercise(
        "With the linear schedule abar_T is about 4e-5. By what factor is x_0 scaled in x_T?",
        _grade_signal_left,
        f"sqrt({_SCHEDULE.alpha_bars[-1].item():.0e}) = {_SCHEDULE.sqrt_alpha_bars[-1].item():.4f}",
    ),
)
