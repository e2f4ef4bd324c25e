"""One training loop for every model in the course, extended by callbacks.

A model plugs in through a *step function* `step(model, batch) -> loss` (a scalar tensor, or a dict of named
scalar tensors whose `"loss"` entry is minimized; the other entries are only logged). `fit` does the rest:
moves batches to the device, zero_grad / backward / optimizer step, records the history, shows progress with
tqdm, calls the callbacks (e.g. a live plot), and saves a checkpoint each epoch if asked.

A step that updates its model itself (a GAN alternates two optimizers) is given `optimizer=None` and returns
plain numbers; `fit` then only drives and records.

Denormal numbers count as 0 on the CPU (set by `import course_lib`: late epochs ran 1.8x faster, same loss).

When something goes wrong, nothing is half done:

- a batch with NaN or inf in it, or a step whose loss (or gradient) is not finite, changes nothing (not the weights,
  not BatchNorm's statistics, not the optimizers); `fit` stops with a message saying where, and
  `history.stopped == "nan"`;
- with float16 (a T4, see `fit`'s `scaler`) an infinite gradient is first taken for overflow: the step is skipped,
  the scale halved, and `fit` goes on; at scale 1 it is divergence, and `fit` stops as above;
- Ctrl-C or Jupyter's stop button: `fit` keeps the model and its history (`last_history()`), then raises
  `TrainingInterrupted`, a KeyboardInterrupt, so Run All stops there instead of going on with a half-trained model;
- with `checkpoint="run.pt"`, a later `fit(..., checkpoint="run.pt")` resumes from the last finished epoch and ends
  with exactly the weights of an uninterrupted run (CPU): the checkpoint holds every part with a state, i.e. the
  model, the optimizer, the step's own state (`state_dict()`, or the torch.Generators a step function draws from),
  the state of every callback that has one (EMA, Snapshots, CosineSchedule, GANGuard...), the gradient scaler's
  scale where float16 uses one, the loader's shuffling and torch's random state.

    >>> model = torch.nn.Linear(1, 1)
    >>> batches = [(torch.randn(16, 1),) for _ in range(4)]
    >>> step = lambda m, batch: (m(batch[0]) - 3 * batch[0]).pow(2).mean()
    >>> history = fit(model, batches, step, torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, progress=False)
    >>> history.epoch, len(history.steps["loss"])
    (3, 12)
"""

import math
import time
import types
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
from tqdm.auto import tqdm

from .checkpoints import GeneratorState, checkpoint_path, load_training_state, save_training_state
from .fastpath import grad_scaler
from .nets import device_of, evaluating, nonfinite


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


class TrainingInterrupted(KeyboardInterrupt):
    """What `fit` raises when you stop it, after keeping the model and its history (`.history`, or `last_history()`).
    It is a KeyboardInterrupt, so Jupyter's Run All stops at this cell; Jupyter shows only the message."""

    def __init__(self, message: str, history: "History"):
        super().__init__(message)
        self.history = history

    def _render_traceback_(self) -> list[str]:  # IPython shows these lines instead of a traceback
        return [f"TrainingInterrupted: {self}"]


_last = {"history": None}


def last_history() -> "History | None":
    """The History of the latest `fit` call, also when you interrupted it: continue that run with
    `fit(..., history=last_history())`.

        fit(model, loader, step, optimizer, 10)         # press stop during epoch 4
        fit(model, loader, step, optimizer, 10, history=last_history())   # goes on from epoch 4
    """
    return _last["history"]


class Callback:
    """Override what you need. `state` has: model, history, epoch, step (global), logs (this step's numbers).
    A callback may raise `StopTraining` to end training with a message. A callback that keeps something across
    steps also defines `state_dict()` / `load_state_dict(state)`, so a checkpoint saves and restores it."""

    def on_step_end(self, state: "TrainState") -> None: ...

    def on_epoch_end(self, state: "TrainState") -> None: ...

    def on_train_end(self, state: "TrainState") -> None: ...


class CosineSchedule(Callback):
    """Lower the optimizer's learning rate along a half cosine, from its start value to 0 over `epochs` epochs."""

    def __init__(self, optimizer: torch.optim.Optimizer, epochs: int):
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)

    def on_epoch_end(self, state: "TrainState") -> None:
        self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


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


def fit(model: torch.nn.Module, loader: Iterable, step: Callable, optimizer: torch.optim.Optimizer | None, epochs: int,
        *, device: torch.device | str | None = None, callbacks: Iterable[Callback] = (), history: History | None = None,
        checkpoint: str | Path | None = None, progress: bool = True,
        scaler: "torch.amp.GradScaler | None" = None) -> History:
    """Train `model` over `loader` until it has done `epochs` epochs in all, and return the History.

    Pass the `history` of an earlier (e.g. interrupted) call to continue it up to `epochs`. With
    `checkpoint="run.pt"`, everything a resumed run needs (see the module's docstring) is saved at the start and
    after every epoch, and a later `fit(..., checkpoint="run.pt")` resumes from the last saved epoch and ends where
    an uninterrupted run would have.

        history = fit(model, make_loader(train, 64), step, optimizer, epochs=5, checkpoint="runs/ae.pt")

    On a T4 the fast path computes in float16, whose smallest gradients round to 0: `fit` then backpropagates loss x
    scale and unscales before the step, with `scaler` (default `fastpath.grad_scaler(device)`: on exactly there, a
    no-op for bfloat16 and float32). A step that updates the model itself (`optimizer=None`) gets no scaler.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs is the number of passes over the data in all, a whole number, got {epochs!r}.")
    if hasattr(loader, "__len__") and len(loader) == 0:
        raise ValueError(_EMPTY_LOADER)
    device = torch.device(device) if device else device_of(model)
    model.to(device)
    if optimizer is None and scaler is not None and scaler.is_enabled():
        raise ValueError("A step that updates the model itself (optimizer=None) does its own backward, so fit cannot "
                         "scale its loss. Scale the losses inside the step, or give fit the optimizer instead.")
    scaler = grad_scaler(device) if scaler is None else scaler
    callbacks = list(callbacks)
    history = history or History()
    history.stopped = None  # continuing an interrupted run: it is no longer stopped
    parts = training_parts(step, callbacks)
    if optimizer is not None and scaler.is_enabled():  # its scale, so a resumed run skips the same steps
        parts["gradient scaler"] = scaler
    if checkpoint:
        checkpoint = checkpoint_path(checkpoint)
        if checkpoint.exists():
            history = History.from_state_dict(load_training_state(checkpoint, model, optimizer, loader, parts))
            print(f"Resuming from {checkpoint} after epoch {history.epoch}.")
        else:  # the starting point too: a run stopped in its first epoch also resumes exactly
            save_training_state(checkpoint, model, optimizer, history, loader, parts)
    _last["history"] = history
    state = TrainState(model, history, epoch=history.epoch, step=len(next(iter(history.steps.values()), [])))
    start, interrupted, undo = time.perf_counter(), False, _Undo(model, step, optimizer)
    try:
        for epoch in range(history.epoch, epochs):
            state.epoch = epoch
            model.train()
            sums, count = defaultdict(float), 0
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=not progress)
            for batch in bar:
                batch = to_device(batch, device)
                where = f"in epoch {epoch + 1}, at step {state.step + 1} (batch {count + 1} of the epoch)"
                problem = _bad_batch(batch)
                logs = {} if problem else _run_step(model, batch, step, optimizer, undo, scaler)
                bad = {name: value for name, value in logs.items() if not math.isfinite(value)}
                if problem or bad:
                    history.stopped = "nan"
                    print(f"Training stopped {where}: " + (problem or _diverged(bad)))
                    return history
                for name, value in logs.items():
                    history.steps[name].append(value)
                    sums[name] += value
                count += 1
                state.step, state.logs = state.step + 1, logs
                bar.set_postfix({name: f"{value:.4g}" for name, value in list(logs.items())[:2]}, refresh=False)
                for cb in callbacks:
                    cb.on_step_end(state)
            if count == 0:
                raise ValueError(_EMPTY_LOADER)
            for name, total in sums.items():
                history.epochs[name].append(total / count)
            history.epoch = epoch + 1
            for cb in callbacks:
                cb.on_epoch_end(state)
            if checkpoint:  # after the callbacks: a learning-rate schedule has stepped, as a resumed run expects
                save_training_state(checkpoint, model, optimizer, history, loader, parts)
    except StopTraining as stop:
        history.stopped = stop.reason
        print(stop.message)
    except KeyboardInterrupt:
        history.stopped, interrupted = "interrupted", True
    finally:
        history.seconds += time.perf_counter() - start
        model.eval()
        for cb in callbacks:
            cb.on_train_end(state)
    if interrupted:
        saved = f" The checkpoint {checkpoint} holds epoch {history.epoch}." if checkpoint else ""
        raise TrainingInterrupted(
            f"Training stopped in epoch {state.epoch + 1} of {epochs}, after {state.step} steps. The model keeps what "
            f"it has learned, and Run All stops here.{saved} To go on: fit(..., history=last_history())"
            f"{' or fit(..., checkpoint=...) again' if checkpoint else ''}.", history) from None
    return history


_EMPTY_LOADER = ("The loader gave no batches, so there is nothing to train on. Check that the dataset is not empty "
                 "(len(dataset) > 0) and, with drop_last=True, that it holds at least one full batch.")


def _bad_batch(batch) -> str | None:
    """Why `batch` must not be trained on (NaN or inf in it), in a student's words; None when it is fine."""
    tensors = [batch] if isinstance(batch, torch.Tensor) else list(batch)
    for i, x in enumerate(tensors):
        found = nonfinite(x, "batch" if len(tensors) == 1 else f"batch[{i}]") if isinstance(x, torch.Tensor) else None
        if found:
            return (f"the batch holds {found}. Nothing was trained on it, and nothing changed. The data has NaN or "
                    f"inf in it: find those images with (~torch.isfinite(x)).flatten(1).any(1).nonzero() on the "
                    f"dataset's images x, and fix or drop them.")
    return None


def _diverged(bad: dict[str, float]) -> str:
    numbers = ", ".join(f"{name} = {value}" for name, value in bad.items())
    return (f"{numbers}. The model diverged. Nothing of this step was applied: the weights, BatchNorm's statistics "
            f"and the optimizer are as they were before it. Lower the learning rate (e.g. ten times) or check the "
            f"data range, then train again.")


def _run_step(model, batch, step, optimizer, undo: "_Undo", scaler: "torch.amp.GradScaler") -> dict[str, float]:
    """One step; when a number it gives is not finite, everything it changed is put back as it was (`undo`).
    With a disabled `scaler` (bfloat16, float32) its calls are plain backward() and optimizer.step()."""
    undo.save()
    if optimizer is None:  # the step updates the model itself (e.g. a GAN's alternating updates)
        out = step(model, batch)
        logs = {k: float(v) for k, v in (out.items() if isinstance(out, dict) else {"loss": out}.items())}
    else:
        out = step(model, batch)
        losses = out if isinstance(out, dict) else {"loss": out}
        if "loss" not in losses:
            raise KeyError("A step function that returns a dict must include the total under 'loss'.")
        optimizer.zero_grad(set_to_none=True)
        logs = {k: float(v.detach()) for k, v in losses.items()}
        if all(math.isfinite(v) for v in logs.values()):
            scaler.scale(losses["loss"]).backward()  # float16: loss x scale, so small gradients do not round to 0
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            if grads:  # (a loss that reaches none of the optimizer's parameters leaves nothing to apply)
                scaler.unscale_(optimizer)  # the gradients divided by the scale again, in place
                norm = float(torch.nn.utils.get_total_norm(grads))
                if math.isfinite(norm):
                    scaler.step(optimizer)
                    scaler.update()  # the scale doubles after `growth_interval` good steps in a row
                elif _float16_overflow(scaler):
                    scaler.step(optimizer)  # skips optimizer.step, as the scaler saw the inf
                    scaler.update()  # halves the scale
                    optimizer.zero_grad(set_to_none=True)
                    undo.restore()  # BatchNorm's statistics too: a skipped step changes nothing but the scale
                else:
                    logs["gradient norm"] = norm
                    scaler.update(scaler.get_scale())  # forget this step's check and keep the scale: nothing changed
                    optimizer.zero_grad(set_to_none=True)
    if not all(math.isfinite(v) for v in logs.values()):
        undo.restore()
    return logs


def _float16_overflow(scaler: "torch.amp.GradScaler") -> bool:
    """Whether a non-finite gradient is the scaler's to handle: with the loss scaled up (scale > 1), float16 may have
    overflowed although the true gradient is finite. At scale 1 the loss is not scaled, so it is the model's own."""
    return scaler.is_enabled() and scaler.get_scale() > 1.0


class _Undo:
    """A copy of what one step can change, to put back when its numbers are not finite. With fit's optimizer that is
    only the buffers (BatchNorm's running statistics move in forward; fit skips optimizer.step itself); a step that
    updates the model itself may change every weight, and the optimizers and generators it holds (GANStep's)."""

    def __init__(self, model: torch.nn.Module, step, optimizer):
        own = [] if optimizer is not None else list(model.parameters())
        self.tensors = own + list(model.buffers())
        held = list(vars(step).values()) if optimizer is None and hasattr(step, "__dict__") else []
        self.optimizers = [v for v in held if isinstance(v, torch.optim.Optimizer)]
        self.generators = [v for v in held if isinstance(v, torch.Generator)]

    def save(self) -> None:
        self.saved = [t.detach().clone() for t in self.tensors]
        self.states = [{p: {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
                        for p, state in opt.state.items()} for opt in self.optimizers]
        self.generator_states = [g.get_state() for g in self.generators]

    def restore(self) -> None:
        with torch.no_grad():
            for t, saved in zip(self.tensors, self.saved):
                t.copy_(saved)
        for opt, states in zip(self.optimizers, self.states):
            opt.state.clear()
            opt.state.update(states)
        for g, state in zip(self.generators, self.generator_states):
            g.set_state(state)


def training_parts(step: Callable, callbacks: list) -> dict:
    """Besides the model and the optimizer, what has a state that a resumed run needs: the step (its `state_dict`,
    or the torch.Generators a step function draws from) and every callback with a `state_dict`, by name."""
    parts = {}
    if hasattr(step, "state_dict") and hasattr(step, "load_state_dict"):
        parts["step"] = step
    else:
        for i, generator in enumerate(step_generators(step)):
            parts[f"step's generator {i + 1}"] = GeneratorState(generator)
    for cb in callbacks:
        if hasattr(cb, "state_dict") and hasattr(cb, "load_state_dict"):
            name, n = type(cb).__name__, 1
            while (name if n == 1 else f"{name} {n}") in parts:
                n += 1
            parts[name if n == 1 else f"{name} {n}"] = cb
    return parts


def step_generators(step: Callable) -> list[torch.Generator]:
    """The torch.Generators a step function draws from: those in its closure (e.g. `vae_step(generator=g)`) and
    the globals it names (a notebook's `step_noise`), also in functions written inside it.

    >>> noise = torch.Generator().manual_seed(0)
    >>> step_generators(lambda model, batch: torch.randn(3, generator=noise)) == [noise]
    True
    """
    if not isinstance(step, types.FunctionType):
        return []
    names, codes = set(), [step.__code__]
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    values = []
    for cell in step.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # a cell not filled yet
            pass
    values += [step.__globals__[name] for name in sorted(names) if name in step.__globals__]
    found = {}
    for value in values:
        if isinstance(value, torch.Generator):
            found.setdefault(id(value), value)
    return list(found.values())


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

    def state_dict(self) -> dict:  # also kept with bundled pretrained weights, so the scrubber works without training
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

        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay is the weight of the old average, from 0 up to (not including) 1, e.g. 0.995; "
                             f"got {decay}.")
        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.averaged.requires_grad_(False)

    @property
    def model(self) -> torch.nn.Module:
        return self.averaged.module

    def on_step_end(self, state: TrainState) -> None:
        self.averaged.update_parameters(state.model)

    def state_dict(self) -> dict:  # the averaged weights and how many steps they average
        return self.averaged.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.averaged.load_state_dict(state)
