"""A live training figure: loss curves and (optionally) a grid of the model's current images, redrawn in place.

It is a training callback: `fit(..., callbacks=[LivePlot(images=...)])`. It updates a single output (no growing
stack of figures), redraws at most once every `every_s` seconds, and less often where a frame is slow to draw, so that
drawing never takes more than `max_share` (a twentieth) of the time (a frame of lesson 10's text U-Net samples eight
captions: 0.52 s on 2 cores, a third of the time if drawn every second; with a tenth, lesson 5's guided U-Net trained
10-12% slower with the plot than without it). A curve longer than `MAX_POINTS` is drawn from every k-th step, which
keeps a frame cheap late in training (a log-scale loss curve of 1,875 steps: 0.18 s to draw, 0.12 s at 300 points).
It always draws the final state when
training ends, and costs nothing while training when there is no browser to draw for (CI, a plain Python script,
`MPLBACKEND=Agg`, or `COURSE_HEADLESS=1`). While training, its title counts epochs from 1, as the progress bar does
("epoch 3"); the final frame says how many were completed ("after 20 epochs"). In instructor mode,
`train_or_load(..., show=live)` has it draw the curves recorded when the bundled weights were trained.

    >>> live = LivePlot(keys=["loss"])
    >>> live.headless  # doctest runs outside Jupyter
    True
"""

import io
import os
import sys
import time
from typing import Callable

import torch
from matplotlib.figure import Figure

from .nets import evaluating
from .plotting import image_grid, zoom
from .training import Callback, History, TrainState


def is_headless() -> bool:
    """True when nobody is watching: no Jupyter kernel, `MPLBACKEND=Agg` (as CI sets), or `COURSE_HEADLESS=1`."""
    if os.environ.get("COURSE_HEADLESS", "") not in ("", "0"):
        return True
    if os.environ.get("MPLBACKEND", "").lower() == "agg":
        return True
    return "ipykernel" not in sys.modules


MAX_POINTS = 400  # a curve longer than this is drawn from every k-th step (a frame's width has few more pixels)


def _smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average, so a noisy per-step loss shows its trend."""
    out, avg = [], None
    for v in values:
        avg = v if avg is None else weight * avg + (1 - weight) * v
        out.append(avg)
    return out


class LivePlot(Callback):
    """Loss curves for `keys` (default: every logged quantity) and, if `images` is given, the grid it returns.

    `images(model)` must return a (B, 1, 28, 28) batch in [0, 1], e.g. `lambda m: m(fixed_test_batch)`.
    """

    def __init__(
        self,
        keys: list[str] | None = None,
        images: Callable[[torch.nn.Module], torch.Tensor] | None = None,
        every_s: float = 1.0,
        max_share: float = 0.05,
        logy: bool = False,
        title: str = "training",
        nrow: int = 8,
    ):
        self.keys, self.images, self.every_s, self.logy = keys, images, every_s, logy
        self.max_share, self._wait = max_share, every_s  # seconds until the next frame: grows if frames are slow
        self.title, self.nrow = title, nrow
        self.headless = is_headless()
        self.frames = 0  # how many times it actually drew (visible in tests)
        self._handle, self._last = None, float("-inf")  # the first step always draws, however young the clock

    def on_step_end(self, state: TrainState) -> None:
        if self.headless:
            return
        now = time.monotonic()
        if now - self._last >= self._wait:
            start = time.perf_counter()
            self.draw(state.history, state.model, f"epoch {state.epoch + 1}")  # counted from 1, as the progress bar
            self._last = now
            self._wait = max(self.every_s, (time.perf_counter() - start) / self.max_share)

    def on_train_end(self, state: TrainState) -> None:
        done = state.history.epoch
        self.draw(state.history, state.model, f"after {done} epoch{'' if done == 1 else 's'}")  # always drawn

    def draw(self, history: History, model: torch.nn.Module | None = None, when: str | None = None) -> bytes:
        """Render the figure for `history` (and `model`'s images) and show it in place; returns the PNG bytes.
        `when` ends the title (default: "after N epochs")."""
        png = self.render(history, model, when)
        self.frames += 1
        if "ipykernel" in sys.modules:
            from IPython.display import Image, display

            if self._handle is None:
                self._handle = display(Image(png), display_id=True)
            else:
                self._handle.update(Image(png))
        return png

    def render(self, history: History, model: torch.nn.Module | None = None, when: str | None = None) -> bytes:
        when = when or f"after {history.epoch} epochs"
        keys = self.keys or list(history.steps)
        with_images = self.images is not None and model is not None
        fig = Figure(figsize=(11 if with_images else 6.5, 3.6), dpi=90 * zoom())
        ax = fig.add_subplot(1, 2 if with_images else 1, 1)
        for key in keys:
            values = history.steps.get(key, [])
            if values:
                k = -(-len(values) // MAX_POINTS)  # every k-th step (1 while the curve is short)
                steps = range(0, len(values), k)
                line, = ax.plot(steps, values[::k], alpha=0.25, linewidth=1)
                ax.plot(steps, _smooth(values)[::k], color=line.get_color(), linewidth=2,
                        label=f"{key}: {values[-1]:.4g}")
        ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_title(f"{self.title}, {when}")
        if self.logy:
            ax.set_yscale("log")
        if any(history.steps.get(k) for k in keys):
            ax.legend(loc="upper right")
        if with_images:
            with evaluating(model), torch.no_grad():
                batch = self.images(model)
            img_ax = fig.add_subplot(1, 2, 2)
            img_ax.imshow(image_grid(batch, self.nrow), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            img_ax.set_axis_off(), img_ax.set_title("current model")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
