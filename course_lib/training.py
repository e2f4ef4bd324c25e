"""One training loop for every model in the course, extended by callbacks.

A model plugs in through a *step function* `step(model, batch) -> loss` (a scalar tensor, or a dict of named
scalar tensors whose `"loss"` entry is minimized; the other entries are only logged). `fit` does the rest:
moves batches to the device, zero_grad / backward / optimizer step, records the history, shows progress with
tqdm, calls the callbacks (e.g. a live plot), saves a checkpoint each epoch if asked, and stops cleanly on an
interrupt (Ctrl-C or Jupyter's stop button) or a NaN loss, keeping the model and its history.

A step that updates its model itself (a GAN alternates two optimizers) is given `optimizer=None` and returns
plain numbers; `fit` then only drives and records.

    >>> model = torch.nn.Linear(1, 1)
    >>> batches = [(torch.randn(16, 1),) for _ in range(4)]
    >>> step = lambda m, batch: (m(batch[0]) - 3 * batch[0]).pow(2).mean()
    >>> history = fit(model, batches, step, torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, progress=False)
    >>> history.epoch, len(history.steps["loss"])
    (3, 12)
"""

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from tqdm.auto import tqdm

from .checkpoints import load_training_state, save_training_state
from .nets import evaluating


@dataclass
class History:
    """What happened during training: per-step and per-epoch means of every logged quantity."""

    steps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    epochs: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    epoch: int = 0  # epochs completed
    seconds: float = 0.0  # time spent training
    stopped: str | None = None  # None, "interrupted", "nan", or the reason a callback's StopTraining gave

    def state_dict(self) -> dict:
        return {"steps": dict(self.steps), "epochs": dict(self.epochs), "epoch": self.epoch, "seconds": self.seconds}

    @classmethod
    def from_state_dict(cls, state: dict) -> "History":
        history = cls(epoch=state["epoch"], seconds=state["seconds"])
        history.steps.update(state["steps"])
        history.epochs.update(state["epochs"])
        return history


class StopTraining(Exception):
    """Raised by a callback to end training early: `fit` prints `message`, records `reason` in `history.stopped`,
    and keeps the model as it is."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


class Callback:
    """Override what you need. `state` has: model, history, epoch, step (global), logs (this step's numbers).
    A callback may raise `StopTraining` to end training with a message."""

    def on_step_end(self, state: "TrainState") -> None: ...

    def on_epoch_end(self, state: "TrainState") -> None: ...

    def on_train_end(self, state: "TrainState") -> None: ...


class CosineSchedule(Callback):
    """Lower the optimizer's learning rate along a half cosine, from its start value to 0 over `epochs` epochs."""

    def __init__(self, optimizer: torch.optim.Optimizer, epochs: int):
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)

    def on_epoch_end(self, state: "TrainState") -> None:
        self.scheduler.step()


@dataclass
class TrainState:
    model: torch.nn.Module
    history: History
    epoch: int = 0
    step: int = 0
    logs: dict[str, float] = field(default_factory=dict)


def to_device(batch, device: torch.device):
    """Move a batch (a tensor, or a tuple/list of tensors) to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    return type(batch)(to_device(b, device) for b in batch)


def fit(
    model: torch.nn.Module,
    loader: Iterable,
    step: Callable,
    optimizer: torch.optim.Optimizer | None,
    epochs: int,
    *,
    device: torch.device | str | None = None,
    callbacks: Iterable[Callback] = (),
    history: History | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
) -> History:
    """Train `model` over `loader` until it has done `epochs` epochs in all, and return the History.

    Pass the `history` of an earlier (e.g. interrupted) call to continue it up to `epochs`. With
    `checkpoint="run.pt"`, the model, optimizer, history and random state (torch's and the loader's shuffling)
    are saved after every epoch, and a later `fit(..., checkpoint="run.pt")` resumes from the last saved epoch and
    ends where an uninterrupted run would have.
    """
    device = torch.device(device) if device else next(model.parameters()).device
    model.to(device)
    history = history or History()
    history.stopped = None  # continuing an interrupted run: it is no longer stopped
    if checkpoint and Path(checkpoint).exists():
        history = History.from_state_dict(load_training_state(checkpoint, model, optimizer, loader))
        print(f"Resuming from {checkpoint} after epoch {history.epoch}.")
    callbacks = list(callbacks)
    state = TrainState(model, history, epoch=history.epoch, step=len(next(iter(history.steps.values()), [])))
    start, first_epoch = time.perf_counter(), history.epoch
    try:
        for epoch in range(first_epoch, epochs):
            state.epoch = epoch
            model.train()
            sums, count = defaultdict(float), 0
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=not progress)
            for batch in bar:
                logs = _run_step(model, to_device(batch, device), step, optimizer)
                if not all(math.isfinite(v) for v in logs.values()):
                    history.stopped = "nan"
                    print(
                        f"Training stopped at epoch {epoch + 1}: the loss became {logs}. The model diverged; "
                        f"lower the learning rate or check the data range, then train again."
                    )
                    return history
                for name, value in logs.items():
                    history.steps[name].append(value)
                    sums[name] += value
                count += 1
                state.step, state.logs = state.step + 1, logs
                bar.set_postfix({name: f"{value:.4g}" for name, value in list(logs.items())[:2]})
                for cb in callbacks:
                    cb.on_step_end(state)
            for name, total in sums.items():
                history.epochs[name].append(total / max(count, 1))
            history.epoch = epoch + 1
            if checkpoint:
                save_training_state(checkpoint, model, optimizer, history, loader)
            for cb in callbacks:
                cb.on_epoch_end(state)
    except StopTraining as stop:
        history.stopped = stop.reason
        print(stop.message)
    except KeyboardInterrupt:
        history.stopped = "interrupted"
        print(
            f"Training interrupted during epoch {state.epoch + 1}. The model and its history are kept; "
            f"call fit again with history=history to continue."
        )
    finally:
        history.seconds += time.perf_counter() - start
        model.eval()
        for cb in callbacks:
            cb.on_train_end(state)
    return history


def _run_step(model, batch, step, optimizer) -> dict[str, float]:
    if optimizer is None:  # the step updates the model itself (e.g. a GAN's alternating updates)
        out = step(model, batch)
        return {k: float(v) for k, v in (out.items() if isinstance(out, dict) else {"loss": out}.items())}
    out = step(model, batch)
    losses = out if isinstance(out, dict) else {"loss": out}
    if "loss" not in losses:
        raise KeyError("A step function that returns a dict must include the total under 'loss'.")
    optimizer.zero_grad(set_to_none=True)
    if torch.isfinite(losses["loss"]):  # a NaN loss would turn every weight into NaN; fit stops before that
        losses["loss"].backward()
        optimizer.step()
    return {k: float(v.detach()) for k, v in losses.items()}


class Snapshots(Callback):
    """Keep what `make(model)` returns (e.g. samples from fixed noise) every `every` steps and at the end, for a
    scrubber over training. `frames[i]` was taken after `at_step[i]` steps.

        snaps = Snapshots(lambda gan: gan.generator(fixed_z), every=100)
        fit(..., callbacks=[snaps]);  FrameScrubber(snaps.frames)
    """

    def __init__(self, make: Callable[[torch.nn.Module], torch.Tensor], every: int):
        self.make, self.every = make, every
        self.frames: list[torch.Tensor] = []
        self.at_step: list[int] = []

    def take(self, model: torch.nn.Module, step: int) -> None:
        with evaluating(model), torch.no_grad():
            self.frames.append(self.make(model).detach().cpu())
        self.at_step.append(step)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self.take(state.model, state.step)

    def state_dict(self) -> dict:  # kept with bundled pretrained weights, so the scrubber works without training
        return {"frames": self.frames, "at_step": self.at_step}

    def load_state_dict(self, state: dict) -> None:
        self.frames, self.at_step = list(state["frames"]), list(state["at_step"])

    def on_train_end(self, state: TrainState) -> None:
        if not self.at_step or self.at_step[-1] != state.step:
            self.take(state.model, state.step)


class EMA(Callback):
    """An exponential moving average of the model's weights, updated after every step:
    w_avg <- decay * w_avg + (1 - decay) * w. The average of the last few hundred steps samples better than the
    last, noisy step's weights (standard for diffusion models). `ema.model` is the averaged copy; sample with it.

        ema = EMA(model, decay=0.995)
        fit(model, ..., callbacks=[ema]);  ema.model(x, t)
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.995):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.averaged.requires_grad_(False)

    @property
    def model(self) -> torch.nn.Module:
        return self.averaged.module

    def on_step_end(self, state: TrainState) -> None:
        self.averaged.update_parameters(state.model)
