"""Denoising diffusion (lesson 4): DDPM (Ho et al. 2020) and DDIM (Song et al. 2021).

The forward process adds a little Gaussian noise at each of T steps until the image is pure noise; a network
`eps_model(x_t, t)` learns to predict the noise that was added, and a sampler runs the process backwards from
x_T ~ N(0, I). Three objects stay apart, so one network serves every sampler:

- the noise schedule (`DiffusionSchedule`): beta_t, alpha_t = 1 - beta_t, abar_t = alpha_0 ... alpha_t;
- the network: any callable `eps_model(x, t) -> eps`, x shaped (B, 1, 28, 28), t a (B,) long tensor;
- the samplers (`ddpm_sample`, `ddim_sample`).

Timesteps are t = 0 .. T-1 (the paper's t = 1 .. T, shifted by one). Images are in [0, 1]; diffusion works on
x in [-1, 1] (`to_model_range`, `to_image_range`): the loss maps its data there, samplers map their output back.

    >>> schedule = DiffusionSchedule(T=1000)
    >>> f"{schedule.alpha_bars[-1]:.1e}"  # after 1000 steps almost nothing of x_0 is left
    '4.0e-05'
    >>> x0 = torch.rand(8, 1, 28, 28)
    >>> no_noise = lambda x, t: torch.zeros_like(x)  # a "network" that always predicts eps = 0
    >>> round(diffusion_loss(no_noise, schedule, x0, torch.Generator().manual_seed(0)).item(), 1)  # E[eps^2] = 1
    1.0
    >>> images, trajectory = ddim_sample(no_noise, schedule, n=2, steps=10, record_every=5)
    >>> images.shape, trajectory.t
    (torch.Size([2, 1, 28, 28]), [999, 444, 0])
"""

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .data import check_pixels
from .nets import check_finite, check_float32, device_of, evaluating

KINDS = ("linear", "cosine")


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> diffusion's range [-1, 1]: 2x - 1.

    >>> to_model_range(torch.tensor([0.0, 0.5, 1.0]))
    tensor([-1.,  0.,  1.])
    """
    return 2 * x - 1


def to_image_range(x: torch.Tensor) -> torch.Tensor:
    """Diffusion's range [-1, 1] -> images in [0, 1]: (x + 1) / 2, clipped to [0, 1].

    >>> to_image_range(torch.tensor([-3.0, 0.0, 1.0]))
    tensor([0.0000, 0.5000, 1.0000])
    """
    return ((x + 1) / 2).clamp(0, 1)


# ---------------------------------------------------------------- the noise schedule


class DiffusionSchedule:
    """beta_t for t = 0 .. T-1 and everything derived from it (tensors of length T):

        alphas = 1 - beta_t,   alpha_bars = abar_t = prod_{s <= t} alpha_s,
        posterior_variance = beta~_t = (1 - abar_{t-1}) / (1 - abar_t) * beta_t   (abar_{-1} = 1)

    kind="linear": Ho et al.'s beta_t = linspace(1e-4, 0.02, T); for T other than 1000 both ends are scaled by
    1000 / T (as in Nichol & Dhariwal), so x_{T-1} is still about pure noise. Pass beta_start / beta_end to choose.
    kind="cosine": Nichol & Dhariwal's abar_t = f(t) / f(0), f(t) = cos^2((t / T + s) / (1 + s) * pi / 2), s = 0.008,
    which destroys information more evenly over t; betas are clipped at 0.999.

    >>> schedule = DiffusionSchedule(T=1000, kind="linear")
    >>> schedule.betas[0].item(), round(schedule.betas[-1].item(), 4)
    (9.999999747378752e-05, 0.02)
    >>> DiffusionSchedule(kind="quadratic")
    Traceback (most recent call last):
    ...
    ValueError: Unknown schedule kind 'quadratic'. Use kind="linear" or kind="cosine".
    """

    def __init__(self, T: int = 1000, kind: str = "linear", beta_start: float | None = None,
                 beta_end: float | None = None, s: float = 0.008):
        if kind not in KINDS:
            raise ValueError(f"Unknown schedule kind {kind!r}. Use " + " or ".join(f'kind="{k}"' for k in KINDS) + ".")
        if int(T) != T or T < 1:
            raise ValueError(f"T is the number of noising steps and must be a whole number >= 1, got {T}. "
                             f"Try DiffusionSchedule(T=1000).")
        self.T, self.kind = int(T), kind
        if kind == "linear":
            beta_start = 1e-4 * 1000 / T if beta_start is None else beta_start
            beta_end = 0.02 * 1000 / T if beta_end is None else beta_end
            betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
        else:
            steps = torch.arange(T + 1, dtype=torch.float64) / T
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = 1 - f[1:] / f[:-1]  # beta_t = 1 - abar_t / abar_{t-1}
        betas = betas.clamp(0, 0.999)  # beta = 1 would erase x entirely and make 1 / sqrt(1 - ...) blow up
        alpha_bars = torch.cumprod(1 - betas, dim=0)
        alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        # computed in float64 (a product of 1000 numbers near 1 loses digits in float32), kept in float32
        self.betas = betas.float()
        self.alphas = (1 - betas).float()
        self.alpha_bars = alpha_bars.float()
        self.alpha_bars_prev = alpha_bars_prev.float()
        self.sqrt_alpha_bars = alpha_bars.sqrt().float()
        self.sqrt_one_minus_alpha_bars = (1 - alpha_bars).sqrt().float()
        self.posterior_variance = ((1 - alpha_bars_prev) / (1 - alpha_bars) * betas).float()

    def snr(self, t: int | torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio of x_t: SNR(t) = abar_t / (1 - abar_t). Falls from ~1e4 to ~4e-5 (linear, T=1000).

        >>> DiffusionSchedule().snr(torch.tensor([0, 999]))
        tensor([9.9990e+03, 4.0360e-05])
        """
        t = check_timesteps(t, self.T).to(self.alpha_bars.device)
        return self.alpha_bars[t] / self.sqrt_one_minus_alpha_bars[t] ** 2  # 1 - abar_t kept from float64

    def to(self, device: torch.device | str) -> "DiffusionSchedule":
        """A copy whose tensors live on `device` (keep the schedule where the model is)."""
        moved = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(moved, name, value.to(device))
        return moved

    def __len__(self) -> int:
        return self.T

    def __repr__(self) -> str:
        return f"DiffusionSchedule(T={self.T}, kind={self.kind!r})"


def check_timesteps(t: int | torch.Tensor, T: int) -> torch.Tensor:
    """t as a long tensor, or a clear error unless every t is a whole number in 0 .. T-1. (Python would read a
    negative t as counting from the end of the schedule, t = -1 as T-1: a silent wrong step.)

    >>> check_timesteps(torch.tensor([0, -1]), T=1000)
    Traceback (most recent call last):
    ...
    ValueError: Timesteps run from 0 to T-1 = 999, got values from -1 to 0. Draw them with torch.randint(0, 1000, (B,)); the clean image is t = 0.
    """
    t = torch.as_tensor(t)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(f"Timesteps are whole numbers 0 .. {T - 1}, got dtype {t.dtype}. Use t.long().")
    if t.numel() and not t.is_meta:
        low, high = (int(v) for v in torch.aminmax(t))
        if low < 0 or high >= T:
            raise ValueError(f"Timesteps run from 0 to T-1 = {T - 1}, got values from {low} to {high}. Draw them "
                             f"with torch.randint(0, {T}, (B,)); the clean image is t = 0.")
    return t.long()


def _at(values: torch.Tensor, t: int | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """values[t], shaped to broadcast over x: a scalar for an int t, (B, 1, 1, 1) for a (B,) tensor t."""
    t = t if isinstance(t, int) and 0 <= t < len(values) else check_timesteps(t, len(values))
    v = values[torch.as_tensor(t, device=values.device)].to(device=x.device, dtype=x.dtype)
    return v.view(-1, *([1] * (x.dim() - 1))) if v.dim() else v


def _randn(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """N(0, I) noise on `device`, drawn from `generator` (on its own device) when one is given."""
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


# ---------------------------------------------------------------- the forward process q


def q_sample(schedule: DiffusionSchedule, x0: torch.Tensor, t: int | torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Jump straight to step t: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, with eps ~ N(0, I).

    x0 in [-1, 1]; t an int or a (B,) long tensor (one step per image).

    >>> x_t = q_sample(DiffusionSchedule(), torch.zeros(2, 1, 28, 28), torch.tensor([0, 999]), torch.ones(2, 1, 28, 28))
    >>> x_t[:, 0, 0, 0]  # x_0 = 0, eps = 1: sqrt(1 - abar_t), 0.01 at t = 0 and about 1 at t = 999
    tensor([0.0100, 1.0000])
    """
    eps = eps.to(x0.device)
    return _at(schedule.sqrt_alpha_bars, t, x0) * x0 + _at(schedule.sqrt_one_minus_alpha_bars, t, x0) * eps


def q_step(schedule: DiffusionSchedule, x_prev: torch.Tensor, t: int | torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """One noising step: x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps (with x_{-1} = x_0, the clean image).

    Applying it for t = 0, 1, ..., t gives x_t distributed as `q_sample(schedule, x0, t, eps)`.
    """
    beta = _at(schedule.betas, t, x_prev)
    return (1 - beta).sqrt() * x_prev + beta.sqrt() * eps


def forward_trajectory(schedule: DiffusionSchedule, x0: torch.Tensor, ts, generator: torch.Generator | None = None,
                       image_range: bool = True) -> torch.Tensor:
    """x_t for each t in `ts`, stacked: (len(ts), B, C, H, W), all made from the same eps per image (closed form).

    x0 are images in [0, 1]. The frames come back in [0, 1] (noise beyond the range is clipped, for display), or in
    [-1, 1] unclipped with image_range=False. `frames[i]` is x at t = ts[i]; a slider over i scrubs the noising.

    >>> frames = forward_trajectory(DiffusionSchedule(), torch.rand(2, 1, 28, 28), [0, 100, 999])
    >>> frames.shape
    torch.Size([3, 2, 1, 28, 28])
    """
    x0 = to_model_range(check_pixels(x0, "the clean images x0"))
    eps = _randn(x0.shape, generator, x0.device)
    frames = torch.stack([q_sample(schedule, x0, int(t), eps) for t in ts])
    return to_image_range(frames) if image_range else frames


# ---------------------------------------------------------------- training (Algorithm 1)


def predict_x0(schedule: DiffusionSchedule, x_t: torch.Tensor, t: int | torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """q_sample solved for x_0: x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t). Not clipped."""
    return (x_t - _at(schedule.sqrt_one_minus_alpha_bars, t, x_t) * eps) / _at(schedule.sqrt_alpha_bars, t, x_t)


def diffusion_loss(eps_model: Callable, schedule: DiffusionSchedule, x0: torch.Tensor,
                   generator: torch.Generator | None = None, min_snr_gamma: float | None = None,
                   image_range: bool = True) -> torch.Tensor:
    """Algorithm 1's simple loss: L = E_{t, eps} || eps - eps_model(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2,

    with t ~ Uniform{0, ..., T-1} per image and eps ~ N(0, I); averaged over pixels and images (so a model that
    predicts 0 scores about 1). x0 are images in [0, 1]; they are mapped to [-1, 1] here. With image_range=False,
    x0 is used as it is (lesson 6 diffuses an autoencoder's latents, scaled to about unit variance).

    `min_snr_gamma` (e.g. 5) weighs each image's error by min(SNR(t), gamma) / SNR(t) ("Min-SNR", Hang et al.
    2023): nearly clean images (high SNR, where predicting the noise is easy but teaches little about the digit's
    shape) count less, noisy ones fully. Lessons 4 and 5 use it: on a CPU it reaches good samples several times sooner.
    x0 goes to the network's device (an nn.Module's own, or wherever a function returns its prediction).
    """
    check_finite(check_float32(x0, "the clean images x0"), "the clean images x0")
    if isinstance(eps_model, nn.Module):
        x0 = x0.to(device_of(eps_model))
    if image_range:
        try:
            check_pixels(x0, "the clean images x0")
        except ValueError as err:
            raise ValueError(f"{err} (diffusion_loss maps images in [0, 1] to [-1, 1] itself: for data already in "
                             f"[-1, 1] pass to_image_range(x0); for latents or other data used as they are, pass "
                             f"image_range=False.)") from None
        x0 = to_model_range(x0)
    b = x0.shape[0]
    if generator is None:
        t = torch.randint(0, schedule.T, (b,), device=x0.device)
    else:
        t = torch.randint(0, schedule.T, (b,), generator=generator, device=generator.device).to(x0.device)
    eps = _randn(x0.shape, generator, x0.device)
    pred = _predict(eps_model, q_sample(schedule, x0, t, eps), t)
    error = (eps.to(pred.device) - pred).pow(2)
    if min_snr_gamma is None:
        return error.mean()
    snr = schedule.snr(t.to(schedule.alpha_bars.device)).to(error.device)
    return (error.flatten(1).mean(dim=1) * snr.clamp(max=min_snr_gamma) / snr).mean()


def ddpm_step(schedule: DiffusionSchedule, generator: torch.Generator | None = None) -> Callable:
    """A step function for `fit`: the batch's `diffusion_loss`. A batch is (images, labels), (images,) or images.

        fit(unet, loader, ddpm_step(schedule), torch.optim.Adam(unet.parameters(), 2e-4), epochs=5)
    """

    def step(model, batch):
        x0 = batch[0] if isinstance(batch, (tuple, list)) else batch
        return diffusion_loss(model, schedule, x0, generator)

    return step


# ---------------------------------------------------------------- sampling (Algorithm 2, DDIM)


def ddpm_update(schedule: DiffusionSchedule, x_t: torch.Tensor, t: int, eps: torch.Tensor, z: torch.Tensor,
                variance: str = "beta") -> torch.Tensor:
    """One reverse step of Algorithm 2: x_{t-1} = 1 / sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) + sigma_t z,

    with sigma_t^2 = beta_t (variance="beta") or beta~_t (variance="posterior"), and no noise at t = 0.
    """
    if variance not in ("beta", "posterior"):
        raise ValueError(f"Unknown variance {variance!r}. Use variance=\"beta\" or variance=\"posterior\".")
    beta = _at(schedule.betas, t, x_t)
    mean = (x_t - beta / _at(schedule.sqrt_one_minus_alpha_bars, t, x_t) * eps) / _at(schedule.alphas, t, x_t).sqrt()
    if t == 0:
        return mean
    var = beta if variance == "beta" else _at(schedule.posterior_variance, t, x_t)
    return mean + var.sqrt() * z


def ddim_update(schedule: DiffusionSchedule, x_t: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor,
                eta: float = 0.0, z: torch.Tensor | None = None, clip: float | None = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM step from t to an earlier t_prev (t_prev = -1: the clean image, abar = 1). Song et al. eq. 12:

        x0_hat     = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clipped to [-1, 1]
        eps        = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t)   (the noise that fits the clipped x0_hat)
        sigma      = eta * sqrt((1 - abar_prev) / (1 - abar_t)) * sqrt(1 - abar_t / abar_prev)
        x_{t_prev} = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z

    eta = 0: deterministic; eta = 1: the DDPM posterior's noise. Returns (x_{t_prev}, x0_hat). `clip` is the
    range x0_hat is clipped to, [-clip, clip]; None for data without a fixed range (latents).
    """
    check_eta(eta)
    abar = _at(schedule.alpha_bars, t, x_t)
    abar_prev = _at(schedule.alpha_bars, t_prev, x_t) if t_prev >= 0 else torch.ones((), device=x_t.device)
    x0_hat = predict_x0(schedule, x_t, t, eps)
    if clip is not None:
        x0_hat = x0_hat.clamp(-clip, clip)
    # Clipping moves x0_hat; without re-deriving eps to match, the two disagree, and over many small steps (where
    # x0_hat is far out of range near t = T) the error piles up: DDIM-1000 scored 3.5x worse than DDIM-50.
    eps = (x_t - abar.sqrt() * x0_hat) / (1 - abar).sqrt()
    sigma = eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)).sqrt()
    x_prev = abar_prev.sqrt() * x0_hat + (1 - abar_prev - sigma**2).clamp(min=0).sqrt() * eps
    if eta > 0 and z is not None:
        x_prev = x_prev + sigma * z
    return x_prev, x0_hat


def check_eta(eta: float) -> float:
    """eta, or a clear error unless 0 <= eta <= 1 (beyond 1 the noise DDIM adds would exceed what is left of x_t)."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta sets how much fresh noise DDIM adds at each step: 0 (deterministic, the same noise gives "
                         f"the same images) up to 1 (as much as DDPM). Got eta={eta}; try eta=0.0.")
    return eta


@dataclass
class Trajectory:
    """Frames of one sampling run, for a slider. Frame i belongs to the step at timestep `t[i]`:

    - `x_t[i]`: the sample *after* that step, in [0, 1] (the last frame is the returned images);
    - `x0_pred[i]`: the clean image the model predicted at that step, x0_hat, in [0, 1];
    - `eps_pred[i]`: the predicted noise as the model gave it (about N(0, 1), not mapped): show it with
      `to_image_range(eps / 3)` (grey = 0) or `imshow(eps, cmap="RdBu", vmin=-3, vmax=3)`.
    All on the CPU, each (n, C, H, W). With image_range=False (latents), x_t and x0_pred are kept as they are.
    """

    image_range: bool = True
    t: list[int] = field(default_factory=list)
    x_t: list[torch.Tensor] = field(default_factory=list)
    x0_pred: list[torch.Tensor] = field(default_factory=list)
    eps_pred: list[torch.Tensor] = field(default_factory=list)

    def add(self, t: int, x: torch.Tensor, x0_pred: torch.Tensor, eps: torch.Tensor) -> None:
        self.t.append(int(t))
        keep = to_image_range if self.image_range else torch.clone
        self.x_t.append(keep(x).cpu())
        self.x0_pred.append(keep(x0_pred).cpu())
        self.eps_pred.append(eps.float().cpu())

    def __len__(self) -> int:
        return len(self.t)


def _predict(eps_model: Callable, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    eps = eps_model(x, t)
    if not isinstance(eps, torch.Tensor) or eps.shape != x.shape:
        got = tuple(eps.shape) if isinstance(eps, torch.Tensor) else type(eps).__name__
        raise ValueError(f"eps_model(x, t) must return the predicted noise shaped like x {tuple(x.shape)}, got {got}. "
                         f"Check that your network's forward(x, t) returns one tensor of the input's shape.")
    return eps


def _start(eps_model, n, noise, generator, device, shape) -> torch.Tensor:
    """x_T: the given `noise`, or fresh N(0, I) noise of `shape` for n images, on the right device."""
    if device is None:
        params = list(eps_model.parameters())[:1] if isinstance(eps_model, nn.Module) else []
        device = noise.device if noise is not None else (params[0].device if params else "cpu")
    if noise is None:
        if n is None:
            raise ValueError("Say how many images to sample (n=16), or pass the starting noise (noise=x_T).")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n is how many images to sample, a whole number >= 1, got {n!r}.")
        return _randn((n, *shape), generator, device)
    check_finite(check_float32(noise, "the starting noise"), "the starting noise")
    if n is not None and n != noise.shape[0]:
        raise ValueError(f"n={n} but noise holds {noise.shape[0]} starting images; pass n=None or n={noise.shape[0]}.")
    return noise.to(device)


def _kept(i: int, n_steps: int, record_every: int | None) -> bool:
    return record_every is not None and (i % record_every == 0 or i == n_steps - 1)


@torch.no_grad()
def ddpm_sample(eps_model: Callable, schedule: DiffusionSchedule, n: int | None = None,
                generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
                record_every: int | None = None, variance: str = "beta", *, device=None,
                shape: tuple[int, ...] = (1, 28, 28), image_range: bool = True):
    """Algorithm 2 (ancestral sampling): x_T ~ N(0, I); for t = T-1 .. 0: x_{t-1} = `ddpm_update` (T model calls).

    `noise` is the starting x_T (fixed noise: the same images again); `generator` seeds the fresh noise z of every
    step. Returns (images in [0, 1], or in [-1, 1] with image_range=False;  a `Trajectory` with a frame every
    `record_every` steps and at the last, or None).

        images, trajectory = ddpm_sample(unet, schedule, n=16, record_every=50)
    """
    x = _start(eps_model, n, noise, generator, device, shape)
    trajectory = Trajectory(image_range) if record_every else None
    with evaluating(eps_model):
        for i, t in enumerate(range(schedule.T - 1, -1, -1)):
            eps = _predict(eps_model, x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
            x0_hat = predict_x0(schedule, x, t, eps).clamp(-1, 1) if trajectory is not None else None
            z = _randn(x.shape, generator, x.device) if t > 0 else None
            x = ddpm_update(schedule, x, t, eps, z, variance)
            if _kept(i, schedule.T, record_every):
                trajectory.add(t, x, x0_hat, eps)
    return (to_image_range(x) if image_range else x), trajectory


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """`steps` timesteps evenly spaced from T-1 down to 0, e.g. ddim_timesteps(1000, 5) = [999, 749, 500, 250, 0]."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps={steps} must be between 1 and the schedule's T={T}, e.g. steps={min(50, T)}.")
    return torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long().tolist()


@torch.no_grad()
def ddim_sample(eps_model: Callable, schedule: DiffusionSchedule, n: int | None = None, steps: int = 50,
                eta: float = 0.0, generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
                record_every: int | None = None, *, device=None, shape: tuple[int, ...] = (1, 28, 28),
                image_range: bool = True, clip: float | None = 1.0):
    """DDIM: `ddim_update` over `steps` evenly spaced timesteps (`ddim_timesteps`), so 50 model calls instead of T.
    `shape` is one sample's shape and `clip` the range of the predicted x0 (None for latents: see `ddim_update`).

    With eta = 0 the sampler is deterministic: the same `noise` gives the same images (and nearby noises give nearby
    images, so noises can be interpolated). eta = 1 adds DDPM-like noise, drawn from `generator`. Returns (images in
    [0, 1], or [-1, 1] with image_range=False;  a `Trajectory` every `record_every` steps and at the last, or None).

        images, trajectory = ddim_sample(unet, schedule, n=16, steps=50, eta=0.0, record_every=5)
    """
    check_eta(eta)
    x = _start(eps_model, n, noise, generator, device, shape)
    ts = ddim_timesteps(schedule.T, steps)
    trajectory = Trajectory(image_range) if record_every else None
    with evaluating(eps_model):
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            eps = _predict(eps_model, x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
            z = _randn(x.shape, generator, x.device) if eta > 0 and t_prev >= 0 else None
            x, x0_hat = ddim_update(schedule, x, t, t_prev, eps, eta, z, clip)
            if _kept(i, len(ts), record_every):
                trajectory.add(t, x, x0_hat, eps)
    return (to_image_range(x) if image_range else x), trajectory
