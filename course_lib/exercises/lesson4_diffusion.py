"""Lesson 4 exercises: the forward process in closed form, what is left of x_0 at the end, Algorithm 1's loss, one
reverse step, and Algorithm 2's whole sampling loop.

In the first ones the students get abar_t and beta_t as numbers; the graders read them off the library's
`DiffusionSchedule` at one step t and compare with the library's `q_sample` / `ddpm_update` at that step. The loss
and the sampler get the schedule itself and a seeded torch.Generator, and are compared with the library's
`diffusion_loss` and `ddpm_sample` drawing from a generator with the same seed: the same t, eps and z, in the same
order, so a right answer gives the same numbers.
"""

import math

import torch

from ..diffusion import DiffusionSchedule, ddpm_sample, ddpm_update, diffusion_loss, predict_x0, q_sample
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


# ---------------------------------------------------------------- Algorithm 1: the training loss


def ddpm_loss_solution(eps_model, schedule, x0, gen, min_snr_gamma=None):
    # Algorithm 1, lines 2-5, for a batch x0 in [-1, 1]; the code's t = 0 .. T-1 is the paper's t = 1 .. T
    t = torch.randint(0, schedule.T, (len(x0),), generator=gen)  # one step per image, drawn first
    eps = torch.randn(x0.shape, generator=gen)  # then the noise
    abar = schedule.alpha_bars[t].view(-1, 1, 1, 1)  # abar_t, shaped to broadcast over the images
    x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps  # the closed form q(x_t | x_0)
    error = (eps - eps_model(x_t, t)).pow(2).mean(dim=(1, 2, 3))  # one squared error per image
    if min_snr_gamma is not None:  # Min-SNR: weight min(SNR, gamma) / SNR per image
        snr = schedule.snr(t)
        error = error * snr.clamp(max=min_snr_gamma) / snr
    return error.mean()


class _Recorder:
    """A stand-in noise predictor with one learnable number: eps(x, t) = a * x + 0.1 cos(t / 50). It keeps the t
    and x_t of every call, so a grader can say what went wrong, not only that something did."""

    def __init__(self):
        self.a = torch.tensor(0.6, requires_grad=True)
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, x, t):
        t = torch.as_tensor(t)
        self.calls.append((t.detach().clone(), x.detach().clone()))
        shift = 0.1 * torch.cos(t.float() / 50)
        return self.a * x + (shift.view(-1, *([1] * (x.dim() - 1))) if shift.dim() else shift)


def _loss_variant(schedule, x0, seed, gamma=None, alpha=False, no_sqrt=False, eps_first=False, one_based=False,
                  target_x0=False, total=False, inverted=False):
    """Algorithm 1's loss with one typical mistake switched on (all off: the library's loss)."""
    gen, model = torch.Generator().manual_seed(seed), _Recorder()
    if eps_first:
        eps = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, schedule.T, (len(x0),), generator=gen)
    else:
        t = torch.randint(0, schedule.T, (len(x0),), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
    t = (t + 1).clamp(max=schedule.T - 1) if one_based else t
    a = (schedule.alphas if alpha else schedule.alpha_bars)[t].view(-1, 1, 1, 1)
    x_t = a * x0 + (1 - a) * eps if no_sqrt else a.sqrt() * x0 + (1 - a).sqrt() * eps
    error = ((x0 if target_x0 else eps) - model(x_t, t)).pow(2)
    error = error.sum(dim=(1, 2, 3)) if total else error.mean(dim=(1, 2, 3))
    if gamma is not None:
        snr = schedule.snr(t)
        error = error * (snr / snr.clamp(max=gamma) if inverted else snr.clamp(max=gamma) / snr)
    return error.sum() if total else error.mean()


_LOSS_MISTAKES = [
    (dict(alpha=True), "x_t uses abar_t = alpha_1 ... alpha_t (schedule.alpha_bars), not alpha_t alone "
                       "(schedule.alphas): the closed form jumps all t steps at once."),
    (dict(no_sqrt=True), "the coefficients of x_t are standard deviations: sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."),
    (dict(eps_first=True), "draw t first, then eps (the library's order), so the same seed gives the same numbers."),
    (dict(one_based=True), "t is one too large: the tensors hold the paper's t = 1 .. T at the indices 0 .. T-1. Draw "
                           "t = torch.randint(0, schedule.T, (B,), generator=gen): the code's t is the paper's t - 1."),
    (dict(target_x0=True), "the network predicts the noise: compare eps_model(x_t, t) with eps, not with x_0."),
    (dict(total=True), "take the mean over the pixels and the images (the library's loss: a model that always says "
                       "eps = 0 scores about 1), not the sum."),
]


def _grade_ddpm_loss(fn):
    schedule, seed = _SCHEDULE, 11
    x0 = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(12)) * 2 - 1
    model = _Recorder()
    try:
        got = fn(model, schedule, x0, torch.Generator().manual_seed(seed), None)
    except IndexError as err:
        return False, (f"an index ran past the schedule ({err}): the tensors hold t = 0 .. T-1 (the paper's "
                       f"t = 1 .. T). Draw t = torch.randint(0, schedule.T, (B,), generator=gen).")
    if got is None:
        return False, "your function returned None; return the loss, one number."
    got = torch.as_tensor(got)
    if got.numel() != 1:
        return False, f"return one number for the batch (the mean of the squared errors), got shape {tuple(got.shape)}."
    want = diffusion_loss(_Recorder(), schedule, x0, torch.Generator().manual_seed(seed), image_range=False)
    if not torch.isclose(got.detach().float(), want.detach(), rtol=1e-4, atol=1e-6):
        for mistake, hint in _LOSS_MISTAKES:
            if torch.isclose(got.detach().float(), _loss_variant(schedule, x0, seed, **mistake).detach(), rtol=1e-4):
                return False, hint
        ts = [t for t, _ in model.calls]
        if ts and ts[0].numel() == len(x0) and bool((ts[0] >= 1).all()):
            return False, ("the noise prediction was asked for no t = 0: draw t from 0 .. T-1 with "
                           "torch.randint(0, schedule.T, (B,), generator=gen) (the code's t is the paper's t - 1).")
        return False, ("not the library's loss for the same seed. Draw t = torch.randint(0, schedule.T, (B,), "
                       "generator=gen), then eps = torch.randn(x0.shape, generator=gen); x_t = sqrt(abar_t) x0 + "
                       "sqrt(1 - abar_t) eps; loss = mean of (eps - eps_model(x_t, t))^2.")
    if not got.requires_grad:
        return False, ("the value is right but it carries no gradient: return the loss tensor itself (no .item(), "
                       "no .detach(), no torch.no_grad()), so that loss.backward() can train the network.")
    try:
        got_snr = torch.as_tensor(fn(_Recorder(), schedule, x0, torch.Generator().manual_seed(seed), 5.0))
    except Exception as err:  # noqa: BLE001 (shown to the student as a hint)
        return False, (f"right without weights, but with min_snr_gamma=5 your function raised "
                       f"{type(err).__name__}: {err}")
    want_snr = diffusion_loss(_Recorder(), schedule, x0, torch.Generator().manual_seed(seed), 5.0, image_range=False)
    if got_snr is None or got_snr.numel() != 1:
        return False, "right without weights; with min_snr_gamma=5 return one number as well."
    if not torch.isclose(got_snr.detach().float(), want_snr.detach(), rtol=1e-3, atol=1e-6):
        if torch.isclose(got_snr.detach().float(), want.detach(), rtol=1e-4):
            return False, ("right without weights; with min_snr_gamma given, weight each image's error by "
                           "min(SNR(t), gamma) / SNR(t), SNR(t) = abar_t / (1 - abar_t) (schedule.snr(t)).")
        if torch.isclose(got_snr.detach().float(), _loss_variant(schedule, x0, seed, 5.0, inverted=True), rtol=1e-3):
            return False, "the Min-SNR weight is upside down: min(SNR(t), gamma) / SNR(t), at most 1."
        return False, ("right without weights; with min_snr_gamma: per image, error * min(SNR(t), gamma) / SNR(t), "
                       "then the mean over the images.")
    return True, ("the same loss as the library's diffusion_loss for the same seed, plain and with Min-SNR: the "
                  "lesson trains with your function from here.")


# ---------------------------------------------------------------- Algorithm 2: the whole sampling loop


def ddpm_sample_solution(eps_model, schedule, x_T, gen):
    # Algorithm 2: from x_T ~ N(0, I) down to x_0; the code's t = T-1 .. 0 is the paper's t = T .. 1
    x = x_T
    for t in reversed(range(schedule.T)):
        eps = eps_model(x, torch.full((len(x),), t))
        beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]
        x = (x - beta / (1 - abar).sqrt() * eps) / alpha.sqrt()  # the mean of p(x_{t-1} | x_t)
        if t > 0:  # sigma_t z with sigma_t^2 = beta_t, except at the last step (the paper's t = 1)
            x = x + beta.sqrt() * torch.randn(x.shape, generator=gen)
    return x


def _gaussian_data_eps(x, t):
    """The best noise prediction when every pixel of x_0 is N(0.3, 0.5^2): a stand-in for a trained network whose
    samples stay finite over all T steps."""
    abar = _SCHEDULE.alpha_bars[torch.as_tensor(t).long()].view(-1, *([1] * (x.dim() - 1)))
    return (1 - abar).sqrt() * (x - abar.sqrt() * 0.3) / (abar * 0.25 + 1 - abar)


def _sample_variant(schedule, x_T, seed, last_noise=False, sigma="sqrt_beta", eps_coef="sqrt", clip=False):
    """Algorithm 2 with one typical mistake switched on (all off: the library's sampler)."""
    gen, x = torch.Generator().manual_seed(seed), x_T
    for t in reversed(range(schedule.T)):
        eps = _gaussian_data_eps(x, torch.full((len(x),), t))
        beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]
        coef = beta / (schedule.sqrt_one_minus_alpha_bars[t] if eps_coef == "sqrt" else 1 - abar)
        x = (x - coef * eps) / alpha.sqrt()
        if t > 0 or last_noise:
            s = {"sqrt_beta": beta.sqrt(), "beta": beta, "posterior": schedule.posterior_variance[t].sqrt()}[sigma]
            x = x + s * torch.randn(x.shape, generator=gen)
    return x.clamp(-1, 1) if clip else x


_SAMPLE_MISTAKES = [
    (dict(last_noise=True), "no fresh noise at the last step: at the code's t = 0 (the paper's t = 1) x_0 is the "
                            "mean alone. Add sigma_t z only while t > 0."),
    (dict(sigma="beta"), "sigma_t is a standard deviation: add sqrt(beta_t) * z, not beta_t * z."),
    (dict(sigma="posterior"), "that is sigma_t^2 = beta~_t, the posterior variance (the notebook compares it later); "
                              "Algorithm 2 here uses sigma_t^2 = beta_t."),
    (dict(eps_coef="linear"), "the noise is scaled by beta_t / sqrt(1 - abar_t): a square root in the denominator."),
    (dict(clip=True), "return x_0 as it is, in about [-1, 1], without clipping: the lesson maps it to pixels."),
]


def _grade_ddpm_sample(fn):
    schedule, seed = _SCHEDULE, 13
    x_T = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(14))
    calls = []

    def model(x, t):
        calls.append(torch.as_tensor(t).flatten()[:1].clone())
        return _gaussian_data_eps(x, t)

    try:
        got = fn(model, schedule, x_T.clone(), torch.Generator().manual_seed(seed))
    except IndexError as err:
        return False, (f"an index ran past the schedule ({err}): the tensors hold t = 0 .. T-1. Loop "
                       f"for t in reversed(range(schedule.T)): the code's t = T-1 .. 0 is the paper's t = T .. 1.")
    if got is None:
        return False, "your function returned None; return x_0, the last x of the loop."
    got = torch.as_tensor(got)
    if got.shape != x_T.shape:
        return False, f"x_0 should have the shape of x_T {tuple(x_T.shape)}, got {tuple(got.shape)}."
    want, _ = ddpm_sample(_gaussian_data_eps, schedule, noise=x_T.clone(),
                          generator=torch.Generator().manual_seed(seed), image_range=False)
    if torch.allclose(got, want, rtol=1e-4, atol=1e-4):
        return True, ("the same x_0 as the library's ddpm_sample for the same x_T and seed: T steps from t = T-1 "
                      "down to 0, fresh noise at every step but the last. The lesson samples with your function.")
    ts = [int(t) for t in calls]
    if len(ts) != schedule.T or ts != list(range(schedule.T - 1, -1, -1)):
        if ts and ts == list(range(schedule.T - 1, 0, -1)):
            return False, ("the loop stops one step early: it must also run the code's t = 0 (the paper's t = 1), "
                           "the step that gives x_0. Loop for t in reversed(range(schedule.T)).")
        if ts and ts[0] < ts[-1]:
            return False, "the loop runs forwards; Algorithm 2 goes from t = T-1 down to t = 0."
        return False, (f"the noise prediction was called {len(ts)} times; it should be T = {schedule.T} times, at "
                       f"t = T-1, T-2, ..., 0 (for t in reversed(range(schedule.T))).")
    if not torch.isfinite(got).all():
        return False, ("your x_0 is not finite (inf or nan): the samples blew up. Each step divides by sqrt(alpha_t) "
                       "= sqrt(1 - beta_t), one step's shrinking (not sqrt(abar_t), which is near 0 for large t), and "
                       "subtracts beta_t / sqrt(1 - abar_t) * eps.")
    for mistake, hint in _SAMPLE_MISTAKES:
        if torch.allclose(got, _sample_variant(schedule, x_T, seed, **mistake), rtol=1e-4, atol=1e-4):
            return False, hint
    return False, ("x_(t-1) = (x_t - beta_t / sqrt(1 - abar_t) * eps) / sqrt(alpha_t) + sqrt(beta_t) * z for t > 0, "
                   "without z at t = 0; start from the x_T you are given and draw z = torch.randn(x.shape, "
                   "generator=gen).")


register(
    q_sample=Exercise(
        "Write q_sample(x0, abar_t, eps): the forward process in closed form.", _grade_q_sample, q_sample_solution,
    ),
    signal_left=Exercise(
        "With the linear schedule abar_T is about 4e-5. By what factor is x_0 scaled in x_T?",
        _grade_signal_left,
        f"sqrt({_SCHEDULE.alpha_bars[-1].item():.0e}) = {_SCHEDULE.sqrt_alpha_bars[-1].item():.4f}",
    ),
    ddpm_loss=Exercise(
        "Write ddpm_loss(eps_model, schedule, x0, gen, min_snr_gamma=None): Algorithm 1's loss for a batch x0 in "
        "[-1, 1], drawing t (0 .. T-1) and then eps from gen; with min_snr_gamma, each image's error weighted by "
        "min(SNR, gamma) / SNR.",
        _grade_ddpm_loss, ddpm_loss_solution,
    ),
    reverse_step=Exercise(
        "Write reverse_step(x_t, eps, beta_t, abar_t, z): one step of Algorithm 2 with sigma_t^2 = beta_t.",
        _grade_reverse_step, reverse_step_solution,
    ),
    ddpm_sample=Exercise(
        "Write ddpm_sample(eps_model, schedule, x_T, gen): Algorithm 2's loop from x_T down to x_0 (t = T-1 .. 0), "
        "with sigma_t^2 = beta_t and the noise z drawn from gen, none at the last step.",
        _grade_ddpm_sample, ddpm_sample_solution,
    ),
)
