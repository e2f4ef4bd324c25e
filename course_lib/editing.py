"""Editing existing images with a diffusion model that was trained only to generate (lesson 8), and the damaged inputs
the lesson repairs.

- **SDEdit** (Meng et al. 2021): noise a rough input to a chosen time t0 (`strength` = t0 / (T - 1)), then denoise from
  there. Little noise keeps the input's layout and fixes little; much noise gives a realistic digit that may forget
  the input. The model is lesson 4's, unchanged.
- **RePaint** (Lugmayr et al. 2022): fill the unknown pixels of an image. At every reverse step the known pixels are
  replaced by the known image noised to that step, so the model only ever completes a consistent noisy picture;
  `resample` rounds per step (noise back up one step, denoise again) let both parts agree.
- Damaged inputs: `sketch` (a digit's outline, the lecture's line-drawing -> photo example) and `stamp` (a
  semi-transparent watermark).

    >>> y = torch.zeros(1, 1, 28, 28); y[..., 8:20, 12:16] = 1.0  # a bar, 4 pixels wide
    >>> int(sketch(y).sum())  # its outline: 2 x 12 + 2 x 2 pixels
    28
"""

from typing import Callable

import torch
import torch.nn.functional as F

from .data import check_batch, check_images
from .diffusion import (DiffusionSchedule, _at, _randn, ddim_timesteps, ddim_update, q_sample, to_image_range,
                        to_model_range)
from .nets import evaluating


def _eps(eps_model: Callable, x: torch.Tensor, t: int) -> torch.Tensor:
    return eps_model(x, torch.full((len(x),), t, device=x.device, dtype=torch.long)).float()


# ---------------------------------------------------------------- SDEdit


def sdedit_start(schedule: DiffusionSchedule, x: torch.Tensor, strength: float, eps: torch.Tensor) -> tuple:
    """Where SDEdit starts: t0 = round(strength * (T - 1)) and x_t0 = sqrt(abar_t0) x + sqrt(1 - abar_t0) eps, with x the
    input in [0, 1] taken to [-1, 1]. Returns (x_t0, t0).

    >>> s = DiffusionSchedule(T=1000)
    >>> x_t0, t0 = sdedit_start(s, torch.zeros(1, 1, 28, 28), 0.5, torch.zeros(1, 1, 28, 28))
    >>> t0, round(x_t0[0, 0, 0, 0].item(), 3) == round(-s.sqrt_alpha_bars[t0].item(), 3)
    (500, True)
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength is how far to noise the input, from 0 (keep it) to 1 (pure noise), e.g. 0.5; got "
                         f"{strength}.")
    t0 = round(strength * (schedule.T - 1))
    return q_sample(schedule, to_model_range(check_images(x)), t0, eps), t0


@torch.no_grad()
def sdedit(eps_model: Callable, schedule: DiffusionSchedule, x: torch.Tensor, strength: float, steps: int = 50,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """SDEdit: noise images x (B, 1, 28, 28) in [0, 1] to t0 = round(strength * (T - 1)) (`sdedit_start`), then run DDIM from t0
    to 0 in about strength * `steps` steps. strength 0 returns x; 1 ignores it.

        realistic = sdedit(unet, schedule, sketches, strength=0.5)
    """
    device = x.device
    x_t, t0 = sdedit_start(schedule, x, strength, _randn(x.shape, generator, device))
    if strength == 0:
        return x.clone()
    ts = ddim_timesteps(t0 + 1, min(t0 + 1, max(1, round(steps * strength))))  # t0, ..., 0
    with evaluating(eps_model):
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            x_t, _ = ddim_update(schedule, x_t, t, t_prev, _eps(eps_model, x_t, t))
    return to_image_range(x_t)


# ---------------------------------------------------------------- RePaint


def repaint_merge(schedule: DiffusionSchedule, x_generated: torch.Tensor, known: torch.Tensor, mask: torch.Tensor,
                  t: int, eps: torch.Tensor) -> torch.Tensor:
    """RePaint's merge at step t: m * (the known image noised to t) + (1 - m) * (the model's x_t), with m = 1 on the
    known pixels and `known` in [-1, 1]. At t = -1 (the end) the known pixels are put back exactly.

    >>> s = DiffusionSchedule(T=1000)
    >>> m = torch.zeros(1, 1, 28, 28); m[..., :14, :] = 1
    >>> out = repaint_merge(s, torch.zeros(1, 1, 28, 28), torch.ones(1, 1, 28, 28), m, -1, torch.zeros(1, 1, 28, 28))
    >>> out[..., :14, :].unique().tolist(), out[..., 14:, :].unique().tolist()
    ([1.0], [0.0])
    """
    known_t = known if t < 0 else q_sample(schedule, known, t, eps)
    return mask * known_t + (1 - mask) * x_generated


def _renoise(schedule: DiffusionSchedule, x: torch.Tensor, t_from: int, t_to: int, eps: torch.Tensor) -> torch.Tensor:
    """q(x_{t_to} | x_{t_from}) for t_to > t_from: x = sqrt(abar_to / abar_from) x + sqrt(1 - abar_to / abar_from) eps."""
    ratio = _at(schedule.alpha_bars, t_to, x) / _at(schedule.alpha_bars, t_from, x)
    return ratio.sqrt() * x + (1 - ratio).sqrt() * eps


@torch.no_grad()
def repaint(eps_model: Callable, schedule: DiffusionSchedule, known: torch.Tensor, mask: torch.Tensor, steps: int = 50,
            resample: int = 5, eta: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Inpaint images `known` (B, 1, 28, 28) in [0, 1] where `mask` (1 = known, 0 = to fill; broadcastable) is 0, with
    an unconditional noise-predicting model. DDIM steps (eta = 1: DDPM-like noise, as RePaint), each repeated
    `resample` times (the result noised back up one step in between). Returns images in [0, 1] whose known pixels
    are exactly `known`'s.

        filled = repaint(unet, schedule, digits, mask, steps=50, resample=5)
    """
    device = known.device
    mask = torch.as_tensor(mask, dtype=torch.float32, device=device).expand_as(known)
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask holds 1 where a pixel is known and 0 where it is to be filled, nothing else; e.g. "
                         "mask = torch.ones_like(x); mask[..., 14:, :] = 0 to fill the lower half.")
    if resample < 1:
        raise ValueError(f"resample is how many times each step is done, at least 1 (1: no resampling); got {resample}.")
    x0 = to_model_range(check_images(known))
    ts = ddim_timesteps(schedule.T, steps)
    x_t = _randn(known.shape, generator, device)
    with evaluating(eps_model):
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            for r in range(resample if t_prev >= 0 else 1):
                z = _randn(known.shape, generator, device) if eta > 0 and t_prev >= 0 else None
                x_prev, _ = ddim_update(schedule, x_t, t, t_prev, _eps(eps_model, x_t, t), eta, z)
                x_prev = repaint_merge(schedule, x_prev, x0, mask, t_prev, _randn(known.shape, generator, device))
                if r + 1 < resample and t_prev >= 0:  # go back up to t and try the step again
                    x_t = _renoise(schedule, x_prev, t_prev, t, _randn(known.shape, generator, device))
            x_t = x_prev
    return mask * known + (1 - mask) * to_image_range(x_t)  # the known pixels exactly, not via [-1, 1] and back


# ---------------------------------------------------------------- damaged inputs


def sketch(y: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """The outline of each digit: the ink pixels (above `threshold`) that touch a background pixel, 1 there and 0
    elsewhere. Like the edge maps pix2pix turns into photos, it keeps the shape and loses the stroke's body.

    >>> sketch(torch.ones(1, 1, 5, 5))[0, 0].sum().item()  # a full square: no background, so no outline inside
    0.0
    """
    ink = (check_batch(y) > threshold).float()
    eroded = -F.max_pool2d(-ink, 3, stride=1, padding=1)  # 1 where the whole 3 x 3 neighbourhood is ink (or frame)
    return ink - eroded


def stamp(y: torch.Tensor, generator: torch.Generator | None = None, opacity: float = 0.6) -> torch.Tensor:
    """A watermark on each image (B, C, 28, 28): a 12 x 12 square outline with a cross through it, white, blended in
    with `opacity` at a random place (from `generator`), so the digit under it shows through.

    >>> marked = stamp(torch.zeros(2, 3, 28, 28), torch.Generator().manual_seed(0))
    >>> marked.shape, round(marked.max().item(), 2)
    (torch.Size([2, 3, 28, 28]), 0.6)
    """
    y = check_batch(y)
    mark = torch.zeros(12, 12)
    mark[[0, -1], :] = mark[:, [0, -1]] = 1.0  # the square
    idx = torch.arange(12)
    mark[idx, idx] = mark[idx, 11 - idx] = 1.0  # the cross
    rows = torch.randint(0, 28 - 12 + 1, (len(y),), generator=generator)
    cols = torch.randint(0, 28 - 12 + 1, (len(y),), generator=generator)
    alpha = torch.zeros(len(y), 1, 28, 28)
    for i, (r, c) in enumerate(zip(rows.tolist(), cols.tolist())):
        alpha[i, 0, r:r + 12, c:c + 12] = opacity * mark
    alpha = alpha.to(y.device)
    return y * (1 - alpha) + 1.0 * alpha
