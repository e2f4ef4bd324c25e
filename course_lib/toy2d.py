"""Two-dimensional toy distributions for GANs (lesson 3), and how many of their modes a generator covers.

In 2-D you can *see* everything at once: the real points, the generated points, and the discriminator's opinion of
every place in the plane. The ring and the grid are mixtures of small Gaussians ("modes"), so mode collapse can be
counted: `mode_coverage` says how many modes the samples reach and what fraction of samples land near any mode.

    >>> x = sample_toy("ring", 1000, torch.Generator().manual_seed(0))
    >>> x.shape
    torch.Size([1000, 2])
    >>> report = mode_coverage(x, "ring")
    >>> report["modes_covered"], report["high_quality"] > 0.99
    (8, True)
"""

import math

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from .training import Callback

RING_RADIUS, RING_STD = 2.0, 0.02  # eight modes on a circle of radius 2 (as in Metz et al. 2016)
GRID_STD = 0.05  # twenty-five modes at (-2, -1, 0, 1, 2)^2
LIMITS = 2.5  # every toy lives inside [-LIMITS, LIMITS]^2, which is what the dashboard shows


def mode_centres(name: str) -> torch.Tensor | None:
    """The centres of the Gaussians of a mixture toy ("ring": 8, "grid": 25), or None for the others."""
    if name == "ring":
        angles = torch.arange(8) * (2 * math.pi / 8)
        return RING_RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)
    if name == "grid":
        ticks = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
        return torch.cartesian_prod(ticks, ticks)
    if name in TOYS:
        return None
    raise ValueError(f"Unknown toy distribution {name!r}. Valid names: {', '.join(TOYS)}.")


def _mixture(name: str, std: float):
    def sample(n, generator):
        centres = mode_centres(name)
        which = torch.randint(len(centres), (n,), generator=generator)
        return centres[which] + std * torch.randn(n, 2, generator=generator)

    return sample


def _moons(n, generator):
    """Two interleaved half circles (as scikit-learn's make_moons), centred and scaled to fit the plane."""
    upper = torch.rand(n, generator=generator) < 0.5
    angle = math.pi * torch.rand(n, generator=generator)
    x = torch.where(upper, angle.cos(), 1 - angle.cos())
    y = torch.where(upper, angle.sin(), 0.5 - angle.sin())
    points = torch.stack([x - 0.5, y - 0.25], dim=1) * 1.6
    return points + 0.05 * torch.randn(n, 2, generator=generator)


def _gaussian(n, generator):
    return torch.tensor([0.5, -0.5]) + 0.5 * torch.randn(n, 2, generator=generator)


def _line(n, generator):
    """Points along a diagonal segment: a 1-D manifold in the plane."""
    t = 4 * torch.rand(n, 1, generator=generator) - 2
    return t * torch.tensor([[0.8, 0.6]]) + 0.03 * torch.randn(n, 2, generator=generator)


TOYS = {
    "ring": _mixture("ring", RING_STD),
    "grid": _mixture("grid", GRID_STD),
    "moons": _moons,
    "gaussian": _gaussian,
    "line": _line,
}
MODE_STD = {"ring": RING_STD, "grid": GRID_STD}


def sample_toy(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`n` points (n, 2) from toy distribution `name`: "ring" (8 Gaussians), "grid" (25), "moons", "gaussian", "line"."""
    if name not in TOYS:
        raise ValueError(f"Unknown toy distribution {name!r}. Valid names: {', '.join(TOYS)}.")
    return TOYS[name](n, generator)


def toy_dataset(name: str, n: int = 20_000, seed: int = 0) -> TensorDataset:
    """A fixed set of `n` toy points as a TensorDataset, so `make_loader` and `fit` treat it like the digits."""
    return TensorDataset(sample_toy(name, n, torch.Generator().manual_seed(seed)))


def mode_coverage(samples: torch.Tensor, name: str, min_share: float = 0.01, n_std: float = 3.0) -> dict:
    """How well `samples` (n, 2) cover the modes of mixture toy `name` ("ring" or "grid").

    A sample is *high quality* when it lies within `n_std` standard deviations of some mode's centre (3, as in the
    GAN literature); a mode is *covered* when at least `min_share` of all samples are high quality and nearest to it. Returns {"modes_covered",
    "n_modes", "high_quality" (fraction of samples), "counts" (samples per mode)}. A collapsed generator covers few
    modes; one that smears mass between the modes has low "high_quality".
    """
    centres = mode_centres(name)
    if centres is None:
        raise ValueError(f"{name!r} has no separate modes to count; use 'ring' or 'grid'.")
    samples = samples.detach().float().cpu()
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"Expected samples shaped (n, 2), got {tuple(samples.shape)}.")
    distance, nearest = torch.cdist(samples, centres).min(dim=1)
    good = distance < n_std * MODE_STD[name]
    counts = torch.bincount(nearest[good], minlength=len(centres))
    return {
        "modes_covered": int((counts >= min_share * len(samples)).sum()),
        "n_modes": len(centres),
        "high_quality": float(good.float().mean()),
        "counts": counts.tolist(),
    }


class CoverageLog(Callback):
    """Measures `mode_coverage` of the generator's images of the fixed noise `z` every `every` steps:
    `coverage` is a list of (step, report)."""

    def __init__(self, z: torch.Tensor | None, toy: str, every: int):
        self.z, self.toy, self.every = z, toy, every
        self.coverage: list = []

    def on_step_end(self, state) -> None:
        if state.step % self.every == 0:
            with torch.no_grad():
                self.coverage.append((state.step, mode_coverage(state.model.generator(self.z), self.toy)))

    def state_dict(self) -> dict:
        return {"coverage": self.coverage}

    def load_state_dict(self, state: dict) -> None:
        self.coverage = [tuple(item) for item in state["coverage"]]


def toy_loader(toy: str, batch_size: int = 256, seed: int = 0) -> DataLoader:
    """Shuffled batches of `toy_dataset(toy, seed=seed)`, each taken by one indexing: a DataLoader picking 256 points
    one at a time is slower than the tiny GAN it feeds."""
    dataset = toy_dataset(toy, seed=seed)
    batches = BatchSampler(RandomSampler(dataset, generator=torch.Generator().manual_seed(seed)), batch_size, False)
    return DataLoader(dataset, sampler=batches, batch_size=None)
