"""Scores, Langevin dynamics and the SDE view of diffusion (lesson 9), on points in the plane and on digits.

The *score* of a density p is the direction in which it rises fastest, grad_x log p(x): no normalising constant is
needed, and knowing it everywhere is enough to sample p with Langevin dynamics,

    x <- x + (delta / 2) grad_x log p(x) + sqrt(delta) z,    z ~ N(0, I)      (`langevin`).

A network learns the score of the data blurred by Gaussian noise of level sigma by *denoising score matching*
(Vincent 2011; Song & Ermon 2019): for x~ = x + sigma z, the score of x~ given x is -z / sigma, so predicting z from
x~ is predicting the score, s(x~, sigma) = -z_hat / sigma: lesson 4's noise predictor again (`dsm_loss`). One noise
level is not enough (the score is wrong where there was no data); `annealed_langevin` walks down a ladder of levels.

Diffusion is the same picture in continuous time (Song et al. 2021): DDPM's forward process is a variance-preserving
SDE, dx = -1/2 beta(s) x ds + sqrt(beta(s)) dw; it runs backwards as the reverse SDE, and as an ODE with the same
marginals, the probability-flow ODE dx = -1/2 beta(s) (x + grad log q_s(x)) ds (`vp_sample`). DDIM is Euler's method
on that ODE, written in the variables x / sqrt(abar) and sqrt((1 - abar) / abar) (`ddim_as_euler`).

    >>> from course_lib.diffusion_theory import GaussianMixture2D
    >>> toy = GaussianMixture2D.ring()
    >>> x = torch.zeros(1, 2)
    >>> ve_score(toy, x, sigma=0.0).abs().max() < 1e-3  # at the ring's centre every mode pulls equally: score 0
    tensor(True)
"""

import math
from typing import Callable

import torch
from torch import nn

from .diffusion import DiffusionSchedule, _at, _randn, ddim_timesteps
from .diffusion_theory import GaussianMixture2D
from .nets import evaluating

KINDS = ("sde", "ode")


def ve_score(mixture: GaussianMixture2D, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The exact score of the mixture blurred by N(0, sigma^2 I), grad_x log p_sigma(x), from its variance-preserving
    form: with a = 1 / (1 + sigma^2), sqrt(a) (x_0 + sigma z) = sqrt(a) x_0 + sqrt(1 - a) z is lesson 4's x_t at
    abar = a, so p_sigma(x) is proportional to q_a(sqrt(a) x) and its score is sqrt(a) times q_a's score there."""
    a = 1.0 / (1.0 + float(sigma) ** 2)
    return math.sqrt(a) * mixture.score(math.sqrt(a) * x, a)


def weighted_pair() -> GaussianMixture2D:
    """Lesson 9's toy for Langevin dynamics: two Gaussians (std 0.3) at (-1.5, -1.5) and (1.5, 1.5), weights 0.2 and
    0.8, so that a sampler that gets the weights wrong shows it."""
    return GaussianMixture2D(torch.tensor([[-1.5, -1.5], [1.5, 1.5]]), std=0.3, weights=torch.tensor([0.2, 0.8]))


def noise_levels(sigma_max: float, sigma_min: float, n: int) -> torch.Tensor:
    """n noise levels falling geometrically from sigma_max to sigma_min (Song & Ermon 2019's ladder).

    >>> noise_levels(10.0, 0.1, 3)
    tensor([10.0000,  1.0000,  0.1000])
    """
    if not sigma_max > sigma_min > 0 or n < 2:
        raise ValueError(f"Need sigma_max > sigma_min > 0 and at least 2 levels, got {sigma_max}, {sigma_min}, {n}; "
                         f"e.g. noise_levels(3.0, 0.05, 10).")
    return torch.logspace(math.log10(sigma_max), math.log10(sigma_min), n)


def dsm_loss(noise_model: Callable, x: torch.Tensor, sigmas: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoising score matching over noise levels: draw a level i per point (uniformly), z ~ N(0, I), x~ = x +
    sigma_i z, and regress noise_model(x~, i) onto z (mean squared error). With s(x~, sigma) = -noise_model / sigma
    this is Song & Ermon's loss, sum over levels of sigma^2 / 2 E|| s(x~, sigma) + z / sigma ||^2, up to a factor 2:
    their weight sigma^2 is what makes every level count alike."""
    if generator is None:
        i = torch.randint(0, len(sigmas), (len(x),), device=x.device)
    else:
        i = torch.randint(0, len(sigmas), (len(x),), generator=generator, device=generator.device).to(x.device)
    z = _randn(x.shape, generator, x.device)
    sigma = sigmas.to(x)[i].view(-1, *([1] * (x.dim() - 1)))
    pred = noise_model(x + sigma * z, i)
    if not isinstance(pred, torch.Tensor) or pred.shape != x.shape:
        got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
        raise ValueError(f"noise_model(x, i) must return the predicted noise shaped like x {tuple(x.shape)}, got {got}.")
    return (pred - z).pow(2).mean()


def learned_score(noise_model: Callable, sigmas: torch.Tensor) -> Callable:
    """score(x, i) = -noise_model(x, i) / sigma_i: the learned score at level i, as `annealed_langevin` calls it."""

    def score(x, i):
        with torch.no_grad(), evaluating(noise_model):
            return -noise_model(x, torch.full((len(x),), i, device=x.device)) / sigmas[i].item()

    return score


# ---------------------------------------------------------------- Langevin dynamics


def langevin(score: Callable, x: torch.Tensor, step_size: float, n_steps: int,
             generator: torch.Generator | None = None, record_every: int | None = None):
    """n_steps of Langevin dynamics x <- x + (step_size / 2) score(x) + sqrt(step_size) z from the points x.
    Returns (x, frames): frames the points every `record_every` steps (and the first and last), else []."""
    if step_size <= 0:
        raise ValueError(f"step_size is delta > 0, e.g. 0.01; got {step_size}.")
    frames = [x.clone()] if record_every else []
    for k in range(n_steps):
        x = x + step_size / 2 * score(x) + math.sqrt(step_size) * _randn(x.shape, generator, x.device)
        if record_every and ((k + 1) % record_every == 0 or k == n_steps - 1):
            frames.append(x.clone())
    return x, frames


def annealed_langevin(score: Callable, sigmas: torch.Tensor, x: torch.Tensor, n_steps_each: int, eps: float,
                      generator: torch.Generator | None = None, record: bool = False):
    """Song & Ermon's Algorithm 1: for each level i, largest sigma first, `n_steps_each` Langevin steps on score(x, i)
    with step size alpha_i = eps sigma_i^2 / sigma_L^2 (big steps while the blur is wide, small at the end).
    Returns (x, frames): the points after every level when `record`."""
    frames = [x.clone()] if record else []
    for i, sigma in enumerate(sigmas.tolist()):
        alpha = eps * sigma**2 / sigmas[-1].item() ** 2
        x, _ = langevin(lambda points: score(points, i), x, alpha, n_steps_each, generator)
        if record:
            frames.append(x.clone())
    return x, frames


def mode_shares(points: torch.Tensor, mixture: GaussianMixture2D) -> torch.Tensor:
    """The share of `points` nearest to each of the mixture's centres (K,): compare with `mixture.weights`."""
    nearest = torch.cdist(points.float(), mixture.centres).argmin(dim=1)
    return torch.bincount(nearest, minlength=len(mixture.centres)).float() / len(points)


# ---------------------------------------------------------------- the SDE view


def vp_sample(score: Callable, schedule: DiffusionSchedule, x_T: torch.Tensor, kind: str = "sde",
              generator: torch.Generator | None = None, record_every: int | None = None):
    """Run DDPM's forward SDE backwards with Euler steps of one timestep each, t = T-1 .. 0, given score(x, t):

        reverse SDE:          x_{t-1} = x_t + beta_t (x_t / 2 + score) + sqrt(beta_t) z
        probability flow ODE: x_{t-1} = x_t + beta_t / 2 (x_t + score)            (no noise: deterministic)

    (beta_t = beta(s) ds with ds = 1 / T: the schedule's own betas). Both carry N(0, I) to the same marginals
    q(x_t) at every t. Returns (x_0, frames every `record_every` steps or [])."""
    if kind not in KINDS:
        raise ValueError(f"Unknown kind {kind!r}. Use kind=\"sde\" (the reverse SDE) or kind=\"ode\" (probability flow).")
    x, frames = x_T, [x_T.clone()] if record_every else []
    for i, t in enumerate(range(schedule.T - 1, -1, -1)):
        beta = _at(schedule.betas, t, x)
        s = score(x, t)
        if kind == "ode":
            x = x + beta / 2 * (x + s)
        else:
            noise = _randn(x.shape, generator, x.device) if t > 0 else torch.zeros_like(x)
            x = x + beta * (x / 2 + s) + beta.sqrt() * noise
        if record_every and ((i + 1) % record_every == 0 or t == 0):
            frames.append(x.clone())
    return x, frames


def score_from_eps(eps: torch.Tensor, abar_t: float | torch.Tensor) -> torch.Tensor:
    """Lesson 4's noise prediction read as a score: grad log q(x_t) = -eps / sqrt(1 - abar_t).

    >>> score_from_eps(torch.tensor([0.6]), 0.64)
    tensor([-1.])
    """
    return -eps / torch.as_tensor(1 - abar_t, dtype=eps.dtype).sqrt()


@torch.no_grad()
def ddim_as_euler(eps_model: Callable, schedule: DiffusionSchedule, noise: torch.Tensor, steps: int) -> torch.Tensor:
    """DDIM (eta = 0, no clipping) written as Euler's method on the probability-flow ODE. In y = x / sqrt(abar) and
    sigma = sqrt((1 - abar) / abar) the ODE is dy / dsigma = eps(x, t): each step is y <- y + (sigma' - sigma) eps.
    Returns x_0 as the model sees it ([-1, 1]); equals `ddim_sample(..., clip=None, image_range=False)`."""
    ts = ddim_timesteps(schedule.T, steps)
    abars = schedule.alpha_bars.double()
    x = noise.double()
    with evaluating(eps_model):
        for i, t in enumerate(ts):
            abar = abars[t]
            abar_prev = abars[ts[i + 1]] if i + 1 < len(ts) else torch.ones((), dtype=torch.float64)
            sigma, sigma_prev = ((1 - abar) / abar).sqrt(), ((1 - abar_prev) / abar_prev).sqrt()
            eps = eps_model(x.float(), torch.full((len(x),), t, device=x.device, dtype=torch.long)).double()
            y = x / abar.sqrt() + (sigma_prev - sigma) * eps
            x = y * abar_prev.sqrt()
    return x.float()


class LevelMLP(nn.Module):
    """A noise predictor for points in the plane at one of `n_levels` noise levels: z_hat(x~, i), a three-layer MLP
    that sees the level as a learned vector. Read as a score with `learned_score`.

    >>> LevelMLP(n_levels=4)(torch.zeros(5, 2), torch.zeros(5, dtype=torch.long)).shape
    torch.Size([5, 2])
    """

    def __init__(self, n_levels: int, hidden: int = 128):
        super().__init__()
        self.level = nn.Embedding(n_levels, hidden)
        self.inp = nn.Linear(2, hidden)
        self.net = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return self.net(self.inp(x) + self.level(torch.as_tensor(i, device=x.device).long()))
