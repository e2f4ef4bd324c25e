"""Where DDPM's loss comes from, in code (lesson 4), and the score view of diffusion (lessons 4 and 5).

The negative ELBO of a diffusion model splits into one term per step (Ho et al. 2020, eq. 5):

    L = E_q[ L_T + sum_{t>1} L_{t-1} + L_0 ],   L_{t-1} = KL( q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t) )

- `posterior`: q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I), the forward process run backwards when x_0 is known;
- `elbo_weight`: with the noise parameterisation, L_{t-1} = elbo_weight(t) * ||eps - eps_theta||^2 (the model's
  variance sigma_t^2 fixed); the simple loss sets every weight to 1, Min-SNR (`min_snr_weight`) to min(SNR, 5) / SNR;
- `GaussianMixture2D`: points in the plane from a mixture of Gaussians. Noised in closed form, every q(x_t) is again
  a mixture of Gaussians, so its score, its best noise prediction E[eps | x_t] and the class posterior q(y | x_t)
  (one class per component) are known exactly; `TimeMLP` is a tiny noise predictor to train on it.

Timesteps are the library's t = 0 .. T-1 (the paper's t = 1 .. T): `posterior(schedule, x0, x_t, t)` is the
paper's q(x_{t} | x_{t+1}, x_0) in the paper's numbering, the step that Algorithm 2 takes at the code's t.

    >>> schedule = DiffusionSchedule(T=1000)
    >>> x0, eps = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    >>> x_t = q_sample(schedule, x0, 500, eps)
    >>> mean, variance = posterior(schedule, x0, x_t, 500)
    >>> algorithm_2_mean = ddpm_update(schedule, x_t, 500, eps, torch.zeros_like(x_t))  # given the true noise
    >>> torch.allclose(mean, algorithm_2_mean)
    True
"""

import math

import torch
from torch import nn

from .diffusion import DiffusionSchedule, check_timesteps, ddpm_update, q_sample  # noqa: F401 (the doctest's names)
from .unet import sinusoidal_embedding

VARIANCES = ("beta", "posterior")


def _at(values: torch.Tensor, t: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] shaped to broadcast over `like`: a 0-d tensor for an int t, (B, 1, ...) for a (B,) tensor t."""
    t = check_timesteps(t, len(values))
    v = values[t.to(values.device)].to(device=like.device, dtype=like.dtype)
    return v.view(-1, *([1] * (like.dim() - 1))) if v.dim() else v


def posterior(schedule: DiffusionSchedule, x0: torch.Tensor, x_t: torch.Tensor,
              t: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I), by Bayes' rule from q(x_t | x_{t-1}) and q(x_{t-1} | x_0):

        mu~_t   = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0  +  sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
        beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t

    Returns (mean, variance); the variance is a tensor broadcastable over x_t. At the code's t = 0 (the paper's
    t = 1) abar_{t-1} = 1: the mean is x_0 and the variance 0.
    """
    abar, abar_prev = _at(schedule.alpha_bars, t, x_t), _at(schedule.alpha_bars_prev, t, x_t)
    beta, alpha = _at(schedule.betas, t, x_t), _at(schedule.alphas, t, x_t)
    one_minus = _at(schedule.sqrt_one_minus_alpha_bars, t, x_t) ** 2  # 1 - abar_t, kept from float64
    mean = abar_prev.sqrt() * beta / one_minus * x0.to(x_t) + alpha.sqrt() * (1 - abar_prev) / one_minus * x_t
    return mean, _at(schedule.posterior_variance, t, x_t)


def model_variance(schedule: DiffusionSchedule, t: int | torch.Tensor, variance: str = "beta") -> torch.Tensor:
    """sigma_t^2 of the model's step p_theta(x_{t-1} | x_t) = N(mu_theta, sigma_t^2 I): beta_t ("beta", Algorithm 2
    as printed) or beta~_t ("posterior"). Ho et al. found both about as good."""
    if variance not in VARIANCES:
        raise ValueError(f"Unknown variance {variance!r}. Use variance=\"beta\" or variance=\"posterior\".")
    t = check_timesteps(t, schedule.T)
    return (schedule.betas if variance == "beta" else schedule.posterior_variance)[t]


def elbo_weight(schedule: DiffusionSchedule, t: int | torch.Tensor, variance: str = "beta") -> torch.Tensor:
    """The weight of the noise error in the ELBO's term L_{t-1} (Ho et al. eq. 12):

        L_{t-1} = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)) * ||eps - eps_theta(x_t, t)||^2   (+ a constant)

    from KL(N(mu~, s^2) || N(mu_theta, s^2)) = ||mu~ - mu_theta||^2 / (2 s^2) with both means written through the
    noise. With sigma_t^2 = beta~_t it is undefined at the code's t = 0, which is L_0, the decoder's term.

    >>> [round(w, 3) for w in elbo_weight(DiffusionSchedule(), torch.tensor([0, 999])).tolist()]
    [0.5, 0.01]
    """
    t = check_timesteps(t, schedule.T)
    beta, alpha = schedule.betas[t], schedule.alphas[t]
    one_minus = schedule.sqrt_one_minus_alpha_bars[t] ** 2
    return beta**2 / (2 * model_variance(schedule, t, variance) * alpha * one_minus)


def min_snr_weight(schedule: DiffusionSchedule, t: int | torch.Tensor, gamma: float = 5.0) -> torch.Tensor:
    """Min-SNR's weight of the noise error at step t (Hang et al. 2023): min(SNR(t), gamma) / SNR(t), the weight
    `diffusion_loss(..., min_snr_gamma=gamma)` puts on each image. 1 wherever SNR(t) <= gamma (noisy images).

    >>> min_snr_weight(DiffusionSchedule(), torch.tensor([999])).item()
    1.0
    """
    snr = schedule.snr(t)
    return snr.clamp(max=gamma) / snr


def classifier_guided_eps(eps: torch.Tensor, grad_log_p_y: torch.Tensor, abar_t: float | torch.Tensor,
                          scale: float = 1.0) -> torch.Tensor:
    """Classifier guidance (Dhariwal & Nichol 2021) in the noise's terms:

        eps~ = eps - s sqrt(1 - abar_t) grad log p(y | x_t)

    The noise prediction is a scaled score, eps = -sqrt(1 - abar_t) grad log p(x_t), and Bayes' rule gives
    grad log p(x_t | y) = grad log p(x_t) + grad log p(y | x_t): adding a classifier's gradient to the score turns an
    unconditional model into a conditional one (scale s = 1), or a more decided one (s > 1).

    >>> classifier_guided_eps(torch.tensor([0.5]), torch.tensor([2.0]), abar_t=0.75, scale=1.0)  # 0.5 - 0.5 * 2
    tensor([-0.5000])
    """
    return eps - scale * torch.as_tensor(1 - abar_t, dtype=eps.dtype).sqrt() * grad_log_p_y


# ---------------------------------------------------------------- a 2-D toy whose every noised density is known


class GaussianMixture2D:
    """A mixture of K Gaussians in the plane, N(mu_k, std^2 I) with weights pi_k; component k is class k.

    Noising keeps it a mixture: x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps has q(x_t | y = k) = N(sqrt(abar) mu_k,
    v I) with v = abar std^2 + 1 - abar. So everything a diffusion model is meant to learn is known in closed form:
    `log_prob` (of x_t, or of x_t given its class), `score` (grad log q(x_t)), `best_eps` (E[eps | x_t], the noise
    prediction with the smallest squared error, from the best denoiser E[x_0 | x_t]) and `class_log_prob`
    (log q(y | x_t), Bayes' rule: the classifier that classifier guidance would use).

    >>> toy = GaussianMixture2D.ring()
    >>> points, classes = toy.sample(4, torch.Generator().manual_seed(0))
    >>> points.shape, classes.shape
    (torch.Size([4, 2]), torch.Size([4]))
    """

    def __init__(self, centres: torch.Tensor, std: float, weights: torch.Tensor | None = None):
        self.centres = torch.as_tensor(centres, dtype=torch.float32)
        self.std = float(std)
        k = len(self.centres)
        self.weights = torch.full((k,), 1.0 / k) if weights is None else torch.as_tensor(weights, dtype=torch.float32)

    @classmethod
    def ring(cls, n_modes: int = 8, radius: float = 1.5, std: float = 0.15) -> "GaussianMixture2D":
        """`n_modes` Gaussians evenly spaced on a circle (lesson 3's ring, a little wider)."""
        angles = torch.arange(n_modes) * (2 * math.pi / n_modes)
        return cls(radius * torch.stack([angles.cos(), angles.sin()], dim=1), std)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n clean points (n, 2) and the class (component) of each, (n,)."""
        classes = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return self.centres[classes] + self.std * torch.randn(n, 2, generator=generator), classes

    def _components(self, x: torch.Tensor, abar) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per point and component: log N(x; sqrt(abar) mu_k, v I) (n, K), the means (K, 2), and v."""
        abar = torch.as_tensor(abar, dtype=x.dtype)
        v = abar * self.std**2 + 1 - abar
        means = abar.sqrt() * self.centres.to(x)
        sq = (x[:, None, :] - means[None]).pow(2).sum(-1)
        return -sq / (2 * v) - torch.log(2 * math.pi * v), means, v

    def log_prob(self, x: torch.Tensor, abar=1.0, y: torch.Tensor | None = None) -> torch.Tensor:
        """log q(x_t) (n,) at noise level abar (abar = 1: the clean data), or log q(x_t | y) for classes y (n,)."""
        log_n, _, _ = self._components(x, abar)
        if y is not None:
            return log_n.gather(1, y.view(-1, 1)).squeeze(1)
        return torch.logsumexp(log_n + self.weights.to(x).log(), dim=1)

    def class_log_prob(self, x: torch.Tensor, abar=1.0) -> torch.Tensor:
        """log q(y | x_t) for every class (n, K), by Bayes' rule: q(y | x) = q(x | y) q(y) / q(x)."""
        log_n, _, _ = self._components(x, abar)
        return torch.log_softmax(log_n + self.weights.to(x).log(), dim=1)

    def score(self, x: torch.Tensor, abar=1.0, y: torch.Tensor | None = None) -> torch.Tensor:
        """grad_x log q(x_t) (n, 2), or grad_x log q(x_t | y): -(x - sqrt(abar) mu_k) / v averaged over the
        components with their posterior weights q(k | x_t) (one component when y is given)."""
        log_n, means, v = self._components(x, abar)
        resp = self.class_log_prob(x, abar).exp() if y is None else nn.functional.one_hot(y, len(means)).to(x)
        return -(x - resp @ means) / v

    def best_eps(self, x: torch.Tensor, abar, y: torch.Tensor | None = None) -> torch.Tensor:
        """E[eps | x_t] (or E[eps | x_t, y]): the noise prediction with the smallest squared error, computed from the
        best denoiser E[x_0 | x_t] = sum_k q(k | x_t) (mu_k + sqrt(abar) std^2 / v (x_t - sqrt(abar) mu_k)) and
        eps = (x_t - sqrt(abar) x_0) / sqrt(1 - abar). No gradient is taken."""
        abar = torch.as_tensor(abar, dtype=x.dtype)
        _, means, v = self._components(x, abar)
        resp = self.class_log_prob(x, abar).exp() if y is None else nn.functional.one_hot(y, len(means)).to(x)
        # per component: E[x_0 | x_t, k] = mu_k + sqrt(abar) std^2 / v * (x_t - sqrt(abar) mu_k)
        x0_k = self.centres.to(x)[None] + abar.sqrt() * self.std**2 / v * (x[:, None, :] - means[None])
        x0_hat = (resp[:, :, None] * x0_k).sum(1)
        return (x - abar.sqrt() * x0_hat) / (1 - abar).sqrt()


class TimeMLP(nn.Module):
    """A tiny noise predictor for 2-D points: eps_theta(x_t, t) from x_t (B, 2) and a sinusoidal embedding of t,
    through three layers. What a U-Net is to digits, this is to points in the plane.

    >>> TimeMLP()(torch.zeros(5, 2), torch.zeros(5, dtype=torch.long)).shape
    torch.Size([5, 2])
    """

    def __init__(self, hidden: int = 128, time_dim: int = 32):
        super().__init__()
        self.time_dim = time_dim
        self.net = nn.Sequential(nn.Linear(2 + time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device).expand(len(x)) if torch.as_tensor(t).dim() == 0 else t.to(x.device)
        return self.net(torch.cat([x, sinusoidal_embedding(t, self.time_dim)], dim=1))
