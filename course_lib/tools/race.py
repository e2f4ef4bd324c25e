"""The peer race's clock (`python -m course_lib.tools.peers`).

Each model trains with `fit` until it has spent `budget_s` seconds training. At a few points along the way
(`RaceSettings.checkpoints`, fractions of the budget) the clock stops, `n_scored` images are sampled (the same seed
every time) and scored, and the clock starts again, so scoring costs neither side training time.

Time to quality: a distance at one budget says where each side stands then, not how much sooner one got there. Each
pair has a fixed Frechet distance (`RaceSettings.thresholds`), and each side's `seconds_to_threshold` is the first
training second at which its curve is at or below it (`seconds_to_reach`: linearly interpolated between the
checkpoints around the first one at or below it; None, shown as "> budget", when no checkpoint is). Where both sides
reach it, `time_ratio` = course seconds / peer seconds (below 1: the course gets there sooner).

    >>> seconds_to_reach([[10, 900.0], [20, 700.0], [30, 400.0]], 500)
    26.67
"""

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.utils.data import TensorDataset

from ..config import seed_everything
from ..data import make_loader
from ..metrics import fd_to_training_digits
from ..nets import n_params
from ..training import Callback, StopTraining, fit
from . import peer_models
from .setups import Setup


@dataclass(frozen=True)
class RaceSettings:
    """How long and how carefully one profile races: seconds of training per model and pair, images scored at each
    checkpoint, DDIM steps when a diffusion model is sampled, the checkpoints as fractions of the budget (a pair in
    `pair_checkpoints` has its own), and per pair the Frechet distance whose time to reach is reported."""

    budgets: dict  # pair -> seconds of training for each of its two models
    n_scored: int
    ddim_steps: int
    checkpoints: tuple[float, ...]
    thresholds: dict  # pair -> the Frechet distance of "time to quality" (`seconds_to_reach`)
    pair_checkpoints: dict = field(default_factory=dict)  # pair -> its own checkpoints, where scoring is cheap
    diffusers_channels: tuple[int, int, int] = peer_models.DIFFUSERS_CHANNELS  # the HF course's; smoke shrinks it

    def checkpoints_of(self, pair: str) -> tuple[float, ...]:
        """The fractions of the budget at which `pair`'s models are scored."""
        return self.pair_checkpoints.get(pair, self.checkpoints)



class Race(Callback):
    """A stopwatch for `fit`: counts training seconds (scoring excluded) and images, stops the clock at each
    checkpoint to call `score()`, and ends training with `StopTraining` once `budget_s` seconds are spent.

        race = Race(budget_s=60, checkpoints=(0.5, 1.0), score=lambda: fd_to_training_digits(sample()))
        fit(model, loader, race.counting(step), optimizer, epochs=10**9, callbacks=[race.started()])
        race.curve  # [(seconds, score), ...]
    """

    def __init__(self, budget_s: float, checkpoints: tuple[float, ...], score: Callable[[], float],
                 name: str = "model", device: torch.device | str = "cpu"):
        if budget_s <= 0:
            raise ValueError(f"budget_s is the training time in seconds and must be positive, got {budget_s}.")
        self.budget_s, self.score, self.name, self.device = budget_s, score, name, torch.device(device)
        self.marks = sorted(budget_s * f for f in checkpoints if 0 < f < 1) + [budget_s]
        self.seconds, self.images = 0.0, 0
        self.curve: list[tuple[float, float]] = []
        self._lap = time.perf_counter()

    def started(self) -> "Race":
        """Start (or restart) the clock now; returns the race, to put in `fit`'s callbacks."""
        self._lap = time.perf_counter()
        return self

    def counting(self, step: Callable) -> Callable:
        """`step`, counting the images of every batch it trains on."""

        def counted(model, batch):
            self.images += len(batch[0] if isinstance(batch, (tuple, list)) else batch)
            return step(model, batch)

        return counted

    def on_step_end(self, state) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # GPU work is queued: wait for it before reading the clock
        self.seconds += time.perf_counter() - self._lap
        if self.seconds >= self.marks[0]:
            while self.marks and self.seconds >= self.marks[0]:
                self.marks.pop(0)  # a slow step may pass several checkpoints: score once
            self.checkpoint()
            if not self.marks:
                raise StopTraining("budget", f"{self.name}: {self.budget_s:g} s of training done "
                                             f"({self.images / max(self.seconds, 1e-9):,.0f} images/s).")
        self._lap = time.perf_counter()

    def checkpoint(self) -> None:
        """Score now (the clock is stopped while scoring) and add (seconds, score) to the curve."""
        start = time.perf_counter()
        value = self.score()
        self.curve.append((self.seconds, value))
        print(f"  {self.name}: {self.seconds:7.1f} s, {self.images:>9,} images: Frechet distance {value:9.1f} "
              f"(scored in {time.perf_counter() - start:.1f} s)")

    def finish(self) -> None:
        """Make sure the curve ends where training ended (when it stopped before the budget: NaN, D won)."""
        if not self.curve or self.curve[-1][0] != self.seconds:
            self.checkpoint()


def seconds_to_reach(curve, threshold: float) -> float | None:
    """The first training second at which a curve of (seconds, Frechet distance) is at or below `threshold`:
    linearly interpolated between the last checkpoint above it and the first at or below it,

        t = s_0 + (FD_0 - threshold) / (FD_0 - FD_1) * (s_1 - s_0),

    the first checkpoint's seconds when that one is already at or below it (the curve says nothing earlier), and
    None when no checkpoint is ("not reached within the budget").

    >>> seconds_to_reach([(10, 900.0), (20, 700.0), (30, 400.0)], 500)
    26.67
    >>> seconds_to_reach([(10, 450.0), (20, 300.0)], 500), seconds_to_reach([(10, 900.0), (20, 600.0)], 500)
    (10.0, None)
    """
    previous = None
    for seconds, fd in curve:
        if fd <= threshold:
            if previous is None:
                return round(float(seconds), 2)
            s0, fd0 = previous
            return round(s0 + (fd0 - threshold) / (fd0 - fd) * (seconds - s0), 2)
        previous = (seconds, fd)
    return None


def time_ratio(course_s: float | None, peer_s: float | None) -> float | None:
    """Course seconds / peer seconds to the threshold, when both reached it (below 1: the course got there sooner).

    >>> time_ratio(30.0, 120.0), time_ratio(30.0, None)
    (0.25, None)
    """
    if course_s is None or peer_s is None:
        return None
    return round(course_s / max(peer_s, 1e-9), 4)


class CosineOverBudget(Callback):
    """Lower the optimizer's learning rate along a half cosine from its start value to 0 over a race's budget:
    lr = lr_0 (1 + cos(pi * seconds / budget)) / 2. (The course's `CosineSchedule` does this over epochs.)"""

    def __init__(self, optimizer: torch.optim.Optimizer, race: Race):
        self.optimizer, self.race = optimizer, race
        self.start_lrs = [group["lr"] for group in optimizer.param_groups]

    def on_step_end(self, state) -> None:
        progress = min(self.race.seconds / self.race.budget_s, 1.0)
        for group, lr in zip(self.optimizer.param_groups, self.start_lrs):
            group["lr"] = lr * (1 + math.cos(math.pi * progress)) / 2


@dataclass
class Entrant:
    """One model in a race: a name, its settings in words, how to build its `Setup`, the data it trains on (the
    pair's digits, in the form the model reads them), its batch size, and optional extra scores after training."""

    name: str
    settings: str
    build: Callable[[], Setup]
    data: TensorDataset
    batch_size: int
    extra: Callable[[nn.Module], dict] | None = None


def race(entrant: Entrant, budget_s: float, settings: RaceSettings, device: torch.device,
         checkpoints: tuple[float, ...] | None = None) -> dict:
    """Train `entrant` for `budget_s` seconds of training, scoring at `checkpoints` (fractions of the budget; by
    default `settings.checkpoints`); returns its row of peers.json."""
    seed_everything(0)
    setup = entrant.build()

    def score():
        images = setup.sample(settings.n_scored, torch.Generator().manual_seed(1))
        return fd_to_training_digits(images.float().clamp(0, 1))

    clock = Race(budget_s, checkpoints or settings.checkpoints, score, entrant.name, device)
    # the setup's own callbacks (EMA...) first, so the model is scored as its lesson would use it
    callbacks = [*setup.callbacks, clock.started()]
    if setup.cosine_lr:
        callbacks.append(CosineOverBudget(setup.optimizer, clock))
    history = fit(setup.model, make_loader(entrant.data, entrant.batch_size), clock.counting(setup.step),
                  setup.optimizer, epochs=10**9, device=device, callbacks=callbacks, progress=False)
    clock.finish()
    model = setup.model
    gan = hasattr(model, "generator") and hasattr(model, "discriminator")  # GAN rows count G's parameters
    row = {"name": entrant.name, "settings": entrant.settings, "fd": round(clock.curve[-1][1], 2),
           "train_seconds": round(clock.seconds, 2), "images_seen": clock.images,
           "images_per_s": round(clock.images / max(clock.seconds, 1e-9), 1),
           "n_params": n_params(model.generator if gan else model),
           "curve": [[round(s, 2), round(fd, 2)] for s, fd in clock.curve], "stopped": history.stopped}
    row.update({"d_params": n_params(model.discriminator)} if gan else {})
    # the last point's samples again (same seed), on the second feature network, so that no verdict rests on one metric
    final = setup.sample(settings.n_scored, torch.Generator().manual_seed(1)).float().clamp(0, 1)
    row["fd2"] = round(fd_to_training_digits(final, network="second"), 2)
    if entrant.extra:
        row.update({k: round(v, 2) for k, v in entrant.extra(model).items()})
    return row


def fd_text(side: dict) -> str:
    """A side's Frechet distance, with the second feature network's in brackets where the race measured it.

    >>> fd_text({"fd": 635.8, "fd2": 15.08}), fd_text({"fd": 722.4})
    ('635.8 (second network: 15.08)', '722.4')
    """
    second = f" (second network: {side['fd2']:,.2f})" if "fd2" in side else ""
    return f"{side['fd']:,.1f}{second}"
