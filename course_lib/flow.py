"""Flow matching and rectified flow (lesson 9): a straight path from data to noise, and a network that learns its
velocity (Lipman et al. 2023; Liu et al. 2023).

The path mixes a data point x_0 and a noise eps ~ N(0, I) in a straight line, t running from 0 (data) to 1 (noise):

    x_t = (1 - t) x_0 + t eps,        its velocity   dx_t / dt = eps - x_0   (the same at every t).

A network v_theta(x_t, t) is trained to predict that velocity, a plain regression (`flow_matching_loss`). Many
straight lines cross at each x_t, so the best prediction is their average E[eps - x_0 | x_t]: a velocity field whose
flow carries N(0, I) to the data. To generate, integrate dx/dt = v_theta(x, t) from t = 1 back to t = 0 with a few
Euler or Heun steps (`sample_flow`). Training again on the model's own (noise, image) pairs, "reflow", straightens
the paths so that fewer steps suffice (`reflow_pairs`, `straightness`), and a model distilled from those pairs maps
noise to an image in one call (`distill_loss`).

The network is lesson 4's U-Net, unchanged: `FlowNet` only feeds it t in [0, 1] scaled to the timesteps it knows.

    >>> x0 = torch.zeros(2, 1, 28, 28); eps = torch.ones(2, 1, 28, 28)
    >>> interpolate(x0, eps, torch.tensor([0.0, 0.25]))[:, 0, 0, 0]  # t = 0 is the data, t = 1 the noise
    tensor([0.0000, 0.2500])
    >>> exact = lambda x, t: eps - x0                       # the velocity of this one straight line
    >>> images, path = sample_flow(exact, noise=eps, steps=1, image_range=False, record=True)
    >>> images.abs().max().item(), path.t, path.nfe         # one Euler step lands exactly on x_0
    (0.0, [1.0, 0.0], 1)
"""

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .data import check_pixels
from .diffusion import _randn, _start, to_image_range, to_model_range
from .nets import check_finite, check_float32, device_of, evaluating

TIME_SCALE = 1000.0  # FlowNet feeds the U-Net 1000 t: the range of timesteps its sinusoidal embedding was sized for
METHODS = ("euler", "heun")


class FlowNet(nn.Module):
    """v_theta(x, t[, y]): a network that takes lesson 4's timesteps (0 .. 1000), given t in [0, 1] instead.

    Wraps a U-Net (or lesson 4's `TimeMLP` for points in the plane); `num_classes` is the wrapped network's, so a
    class-conditional FlowNet works with lesson 5's `GuidedModel`.

    >>> from course_lib.unet import UNet
    >>> net = FlowNet(UNet(channels=(8, 16, 16), time_dim=32))
    >>> net(torch.randn(3, 1, 28, 28), torch.rand(3)).shape
    torch.Size([3, 1, 28, 28])
    >>> net(torch.randn(1, 1, 28, 28), torch.tensor([999]))
    Traceback (most recent call last):
    ...
    ValueError: A flow's time runs from 0 (data) to 1 (noise), got values from 999.0 to 999.0. Draw t with torch.rand(B) (FlowNet scales it to the U-Net's timesteps itself).
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    @property
    def num_classes(self) -> int | None:
        return getattr(self.net, "num_classes", None)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor | None = None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32, device=x.device)
        t = t.expand(len(x)) if t.dim() == 0 else t
        if len(t) and not t.is_meta and not bool(((t >= 0) & (t <= 1)).all()):
            raise ValueError(f"A flow's time runs from 0 (data) to 1 (noise), got values from {t.min().item():.1f} to "
                             f"{t.max().item():.1f}. Draw t with torch.rand(B) (FlowNet scales it to the U-Net's "
                             f"timesteps itself).")
        return self.net(x, TIME_SCALE * t) if y is None else self.net(x, TIME_SCALE * t, y)


# ---------------------------------------------------------------- the path and the loss


def interpolate(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """The straight path x_t = (1 - t) x_0 + t eps; t a number or one per sample (B,)."""
    t = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
    t = t.view(-1, *([1] * (x0.dim() - 1))) if t.dim() else t
    return (1 - t) * x0 + t * eps.to(x0.device)


def _rand(n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    if generator is None:
        return torch.rand(n, device=device)
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def flow_matching_loss(v_model: Callable, x0: torch.Tensor, generator: torch.Generator | None = None,
                       noise: torch.Tensor | None = None, image_range: bool = True) -> torch.Tensor:
    """The conditional flow-matching loss: L = E_{t, eps} || v_theta((1 - t) x_0 + t eps, t) - (eps - x_0) ||^2,

    t ~ Uniform(0, 1) per sample, then eps ~ N(0, I), drawn in that order from `generator`; averaged over pixels and
    samples (a model that predicts 0 scores about 2 on images: E||eps - x_0||^2 per pixel). x0 are images in [0, 1],
    mapped to [-1, 1] here; image_range=False uses x0 as it is (points in the plane). `noise`: the eps paired with
    each x0 (reflow trains on the model's own pairs); None draws fresh noise, the usual independent pairing.
    """
    check_finite(check_float32(x0, "the clean images x0"), "the clean images x0")
    if isinstance(v_model, nn.Module):
        x0 = x0.to(device_of(v_model))
    if image_range:
        x0 = to_model_range(check_pixels(x0, "the clean images x0"))
    t = _rand(len(x0), generator, x0.device)
    eps = _randn(x0.shape, generator, x0.device) if noise is None else noise.to(x0.device)
    if eps.shape != x0.shape:
        raise ValueError(f"noise must pair one eps with each x0, shaped {tuple(x0.shape)}; got {tuple(eps.shape)}.")
    pred = _velocity(v_model, interpolate(x0, eps, t), t)
    return (pred - (eps - x0).to(pred.device)).pow(2).mean()


def flow_step(generator: torch.Generator | None = None, image_range: bool = True) -> Callable:
    """A step function for `fit`: the batch's `flow_matching_loss`. A batch is (images, labels), (images,) or
    images; (images, noise) pairs are the input of `pair_step` instead."""

    def step(model, batch):
        x0 = batch[0] if isinstance(batch, (tuple, list)) else batch
        return flow_matching_loss(model, x0, generator, image_range=image_range)

    return step


def _velocity(v_model: Callable, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    v = v_model(x, t)
    if not isinstance(v, torch.Tensor) or v.shape != x.shape:
        got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
        raise ValueError(f"v_model(x, t) must return the velocity shaped like x {tuple(x.shape)}, got {got}.")
    return v.float().to(x.device)  # where the sample is, whichever device the network ran on


# ---------------------------------------------------------------- sampling: integrate from t = 1 to t = 0


@dataclass
class FlowPath:
    """The states of one sampling run: `t[i]` and `x[i]` (on the CPU, as the model sees them: [-1, 1] for images),
    from the noise at t = 1 to the result at t = 0; `v[i]` the velocity used for the step that left x[i]
    (a Heun step: the average of its two); `nfe` network calls in all."""

    t: list[float] = field(default_factory=list)
    x: list[torch.Tensor] = field(default_factory=list)
    v: list[torch.Tensor] = field(default_factory=list)
    nfe: int = 0


def time_grid(steps: int) -> list[float]:
    """steps + 1 times evenly spaced from 1 down to 0: time_grid(4) = [1.0, 0.75, 0.5, 0.25, 0.0]."""
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps is the number of solver steps, a whole number >= 1, got {steps!r}.")
    return [1 - i / steps for i in range(int(steps) + 1)]


def euler_step(v_model: Callable, x: torch.Tensor, t: float, t_next: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x at t_next = x + (t_next - t) v(x, t): one network call. Returns (x_next, the velocity used)."""
    v = _velocity(v_model, x, torch.full((len(x),), t, device=x.device))
    return x + (t_next - t) * v, v


def heun_step(v_model: Callable, x: torch.Tensor, t: float, t_next: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Heun's method (the trapezoid rule): an Euler step to t_next, the velocity there, then the step again with the
    average of both velocities. Two network calls, error O(h^3) per step instead of Euler's O(h^2)."""
    v1 = _velocity(v_model, x, torch.full((len(x),), t, device=x.device))
    guess = x + (t_next - t) * v1
    v2 = _velocity(v_model, guess, torch.full((len(x),), t_next, device=x.device))
    v = (v1 + v2) / 2
    return x + (t_next - t) * v, v


@torch.no_grad()
def sample_flow(v_model: Callable, n: int | None = None, steps: int = 10, method: str = "euler",
                generator: torch.Generator | None = None, noise: torch.Tensor | None = None, record: bool = False,
                *, device=None, shape: tuple[int, ...] = (1, 28, 28), image_range: bool = True):
    """Integrate dx/dt = v_model(x, t) from t = 1 (x = noise) to t = 0 in `steps` equal steps of `method`
    ("euler": one network call per step; "heun": two, except the last step, which is Euler's: 2 steps - 1 calls).
    Returns (images in [0, 1], or as they are with image_range=False; a `FlowPath` with every step's x and v when
    `record`, else one with only the network calls counted).

        images, path = sample_flow(net, n=16, steps=8, method="heun")   # 15 network calls
    """
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}. Use " + " or ".join(f'method="{m}"' for m in METHODS) + ".")
    x = _start(v_model, n, noise, generator, device, shape)
    grid, path = time_grid(steps), FlowPath()
    with evaluating(v_model):
        for t, t_next in zip(grid[:-1], grid[1:]):
            if record:
                path.t.append(t), path.x.append(x.cpu())
            # Heun's second call would ask for the velocity at t = 0 of a point that is not yet a digit: the field
            # is steep there and the network never saw such inputs. The last step is Euler's (as in Karras et al.
            # 2022), so Heun with k steps costs 2k - 1 calls.
            heun = method == "heun" and t_next > 0
            x, v = (heun_step if heun else euler_step)(v_model, x, t, t_next)
            path.nfe += 2 if heun else 1
            if record:
                path.v.append(v.cpu())
    if record:
        path.t.append(0.0), path.x.append(x.cpu())
    return (to_image_range(x) if image_range else x), path


def straightness(path: FlowPath) -> float:
    """How far a recorded sampling run is from one straight line (Liu et al. 2023's S, per run): the mean over steps
    of E|| v_k - (x_noise - x_end) ||^2, over E|| x_noise - x_end ||^2, where v_k is the velocity of step k and
    x_noise - x_end the constant velocity of the straight line between the run's ends. 0: perfectly straight, so one
    Euler step would give the same result.

    >>> straight = FlowPath(t=[1.0, 0.0], x=[torch.ones(1, 2), torch.zeros(1, 2)], v=[torch.ones(1, 2)])
    >>> straightness(straight)
    0.0
    """
    if not path.v:
        raise ValueError("straightness needs a recorded run: sample_flow(..., record=True).")
    chord = (path.x[0] - path.x[-1]).flatten(1)
    defects = torch.stack([(v.flatten(1) - chord).pow(2).sum(1).mean() for v in path.v])
    return float(defects.mean() / chord.pow(2).sum(1).mean())


# ---------------------------------------------------------------- reflow and distillation


@torch.no_grad()
def reflow_pairs(v_model: Callable, n: int, steps: int = 8, method: str = "heun", batch_size: int = 500,
                 generator: torch.Generator | None = None, *, device=None, shape: tuple[int, ...] = (1, 28, 28),
                 image_range: bool = True) -> torch.utils.data.TensorDataset:
    """The model's own couplings: n noises eps and the images x_0 its flow carries them to (`sample_flow`), as a
    TensorDataset of (x_0 in [0, 1], eps) on the CPU, for `pair_step` (with image_range=False, x_0 as the flow
    made it: points in the plane). Training on these pairs ("reflow") teaches
    straight lines between points that the flow already connects, so the new flow crosses itself less."""
    images, noises = [], []
    if device is None and isinstance(v_model, nn.Module):
        device = device_of(v_model)
    for start in range(0, n, batch_size):
        eps = _randn((min(batch_size, n - start), *shape), generator, device or "cpu")
        x0, _ = sample_flow(v_model, noise=eps, steps=steps, method=method, device=device, image_range=image_range)
        images.append(x0.cpu()), noises.append(eps.cpu())
    return torch.utils.data.TensorDataset(torch.cat(images), torch.cat(noises))


def pair_step(generator: torch.Generator | None = None, image_range: bool = True) -> Callable:
    """A step function for `fit` on (images, noise) pairs from `reflow_pairs`: `flow_matching_loss` with each image's
    own noise instead of fresh noise (the reflow step)."""

    def step(model, batch):
        return flow_matching_loss(model, batch[0], generator, noise=batch[1], image_range=image_range)

    return step


def distill_loss(v_model: Callable, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """One-step distillation: the image one Euler step from t = 1 makes, eps - v(eps, 1), against the pair's image
    x_0 (in [0, 1], mapped to [-1, 1]): mean squared error. A model trained on it samples with `steps=1`."""
    x0 = to_model_range(check_pixels(x0, "the paired images x0"))
    if isinstance(v_model, nn.Module):
        x0, noise = x0.to(device_of(v_model)), noise.to(device_of(v_model))
    one_step = noise - _velocity(v_model, noise, torch.ones(len(noise), device=noise.device))
    return (one_step - x0.to(one_step.device)).pow(2).mean()


def distill_step() -> Callable:
    """A step function for `fit` on (images, noise) pairs: `distill_loss`."""
    return lambda model, batch: distill_loss(model, batch[0], batch[1])

