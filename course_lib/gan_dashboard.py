"""A GAN lab for the 2-D toys (lesson 3): watch a generator chase a distribution while the discriminator pushes back.

The idea of GAN Lab (Kahng et al. 2018), in Python with core ipywidgets. One figure, redrawn in place:

- left, the plane [-2.5, 2.5]^2 coloured by the discriminator's opinion D(x) = sigmoid(logit) (green: "real",
  purple: "generated"; for WGAN-GP the critic's raw score, rescaled every frame). On top, the real points, the
  generated points G(z) for a fixed set of noise vectors z, and on each generated point an arrow: -grad_x g_loss at
  x = G(z), the way the generator's loss wants that point to move. For the ring and the grid the title counts the
  modes the generated points cover.
- right, d_loss and g_loss, and the mean D(real) and D(fake), against step.

Controls: the toy, the loss, both learning rates and D steps per G step (these act at once, even while training),
run / pause (trains in the background, so the controls stay live), step, reset. `dash.train(2000)` trains inside a
cell instead, redrawing every `every_s` seconds; `python -m course_lib.gan_dashboard` measures frames per second.

    >>> dash = GANDashboard(toy="ring", loss="non_saturating", seed=0)
    >>> logs = dash.train(20)  # headless here: only the final frame is drawn
    >>> len(logs["g_loss"]), dash.steps, bytes(dash.image.value)[1:4]
    (20, 20, b'PNG')
"""

import asyncio
import io
import math
import time
from collections import defaultdict

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .config import one_thread
from .gans import GAN, LOSSES, GANStep, MLPDiscriminator, MLPGenerator
from .gans import g_loss_minimax, g_loss_non_saturating, g_loss_wasserstein
from .liveplot import is_headless
from .plotting import zoom
from .toy2d import LIMITS, TOYS, mode_centres, mode_coverage, sample_toy

G_LOSSES = {"minimax": g_loss_minimax, "non_saturating": g_loss_non_saturating, "wgan_gp": g_loss_wasserstein}
N_REAL, N_FAKE = 512, 256  # points shown (fixed, so frames differ only because the networks changed)
GRID = 64  # the heatmap's resolution: D is evaluated on GRID x GRID points
WINDOW = 400  # the curves show the last WINDOW steps, so a frame costs the same at step 100 and at step 100 000
TOY_GP_WEIGHT = 0.1  # WGAN-GP's penalty weight for 2-D toys (the value its authors' toy code uses; 10 is for images)
ARROW = 0.3  # arrow length, in plane units, of a typical strong push (the 90th percentile); none is longer


def generator_push(gan: GAN, z: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The generated points x = G(z) (n, 2) and, for each, -d l / d x with l = g_loss(D(x)) the point's own loss:
    the direction in which the generator's loss pushes the point (G follows it as far as its weights allow).

    >>> gan = GAN(MLPGenerator(), MLPDiscriminator())
    >>> x, push = generator_push(gan, torch.randn(5, 2), "non_saturating")
    >>> x.shape, push.shape
    (torch.Size([5, 2]), torch.Size([5, 2]))
    """
    with torch.no_grad():
        x = gan.generator(z)
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(G_LOSSES[loss](gan.discriminator(x)), x)  # only d/dx: no weight gets a .grad
    return x.detach(), -grad * len(z)  # g_loss is a mean over points: times n gives each point's own gradient


def _check_names(toy: str, loss: str) -> None:
    if toy not in TOYS:
        raise ValueError(f"Unknown toy {toy!r}. Choose one of {', '.join(TOYS)}, e.g. GANDashboard(toy='ring').")
    if loss not in LOSSES:
        raise ValueError(f"Unknown loss {loss!r}. Choose one of {', '.join(LOSSES)}, "
                         f"e.g. GANDashboard(loss='non_saturating').")


LR_RANGE = (1e-5, 1e-1)  # what the learning-rate sliders offer
MAX_D_STEPS = 20  # the D-steps slider's upper end, however many are asked for


def _check_controls(lr_d: float, lr_g: float, d_steps: int) -> None:
    """Refuse what the sliders could not show, rather than clamp it silently (asked for 1.0, trained at 0.1)."""
    low, high = LR_RANGE
    for name, lr in (("lr_d", lr_d), ("lr_g", lr_g)):
        if not (isinstance(lr, (int, float)) and low <= lr <= high):
            raise ValueError(f"{name}={lr!r} is outside the learning-rate slider's range {low:g} .. {high:g}; "
                             f"choose a value in it, e.g. GANDashboard({name}=1e-3).")
    if isinstance(d_steps, bool) or not isinstance(d_steps, int) or not 1 <= d_steps <= MAX_D_STEPS:
        raise ValueError(f"d_steps={d_steps!r} must be a whole number from 1 to {MAX_D_STEPS} (discriminator updates "
                         f"per generator update), e.g. GANDashboard(d_steps=1).")


class GANDashboard:
    """An MLP GAN training on toy `toy` with loss `loss`, its live figure and its controls.

    `dash.train(steps)` trains in the cell; the run button trains in the background. `dash.history` holds every
    logged number since the last reset (a dict of lists, one entry per step); `dash.coverage` the last frame's
    `mode_coverage` (ring and grid only). Show it by leaving `dash` last in a cell.
    """

    def __init__(self, toy: str = "ring", loss: str = "non_saturating", lr_d: float = 1e-3, lr_g: float = 1e-3,
                 d_steps: int = 1, z_dim: int = 2, batch_size: int = 256, seed: int = 0, every_s: float = 0.15,
                 steps_per_frame: int = 5):
        _check_names(toy, loss)
        _check_controls(lr_d, lr_g, d_steps)
        self.z_dim, self.batch_size, self.seed = z_dim, batch_size, seed
        self.every_s, self.steps_per_frame = every_s, steps_per_frame
        self.headless = is_headless()
        self.frames, self.fps, self._last_frame, self._task = 0, 0.0, float("-inf"), None
        self._build_controls(toy, loss, lr_d, lr_g, d_steps)
        self._build_figure()
        self.reset()

    # ------------------------------------------------------------ controls

    def _build_controls(self, toy, loss, lr_d, lr_g, d_steps) -> None:
        wide = widgets.Layout(width="300px")
        self.toy_menu = widgets.Dropdown(options=list(TOYS), value=toy, description="toy", layout=wide)
        self.loss_menu = widgets.Dropdown(options=list(LOSSES), value=loss, description="loss", layout=wide)
        low, high = (math.log10(v) for v in LR_RANGE)
        self.lr_d = widgets.FloatLogSlider(value=lr_d, base=10, min=low, max=high, step=0.1, description="lr D",
                                           readout_format=".1e", layout=wide)
        self.lr_g = widgets.FloatLogSlider(value=lr_g, base=10, min=low, max=high, step=0.1, description="lr G",
                                           readout_format=".1e", layout=wide)
        self.d_steps = widgets.IntSlider(value=d_steps, min=1, max=max(5, d_steps), description="D steps",
                                         layout=wide)
        self.run_button = widgets.ToggleButton(value=False, description="run", icon="play")
        self.step_button = widgets.Button(description="step", icon="step-forward")
        self.reset_button = widgets.Button(description="reset", icon="refresh")
        self.status = widgets.Label()
        self.image = widgets.Image(format="png")

        self.toy_menu.observe(lambda _: self.reset(), names="value")
        self.loss_menu.observe(lambda _: self.reset(), names="value")
        self.lr_d.observe(lambda change: self.gan_step.set_lr(lr_d=change["new"]), names="value")
        self.lr_g.observe(lambda change: self.gan_step.set_lr(lr_g=change["new"]), names="value")
        self.d_steps.observe(lambda change: setattr(self.gan_step, "d_steps", change["new"]), names="value")
        self.run_button.observe(self._on_run, names="value")
        self.step_button.on_click(lambda _: self.step())
        self.reset_button.on_click(lambda _: self.reset())
        buttons = widgets.HBox([self.run_button, self.step_button, self.reset_button])
        left, right = [self.toy_menu, self.loss_menu, buttons], [self.lr_d, self.lr_g, self.d_steps]
        self.widget = widgets.VBox([widgets.HBox([widgets.VBox(left), widgets.VBox(right)]), self.status, self.image])

    def reset(self) -> None:
        """New networks and a new GANStep for the toy and loss the menus show (same seed: the same start)."""
        toy, loss = self.toy_menu.value, self.loss_menu.value
        with torch.random.fork_rng(devices=[]):  # seeds the weights without touching the notebook's random state
            torch.manual_seed(self.seed)
            self.gan = GAN(MLPGenerator(z_dim=self.z_dim), MLPDiscriminator())
        self.rng = torch.Generator().manual_seed(self.seed)  # real batches and GANStep's noise
        self.gan_step = GANStep(self.gan, loss, lr_d=self.lr_d.value, lr_g=self.lr_g.value,
                                d_steps=self.d_steps.value, gp_weight=TOY_GP_WEIGHT, generator=self.rng)
        shown = torch.Generator().manual_seed(self.seed + 1)
        self.real = sample_toy(toy, N_REAL, shown)
        self.z = torch.randn(N_FAKE, self.z_dim, generator=shown)
        self.history, self.steps, self.coverage = defaultdict(list), 0, None
        self._real_dots.set_offsets(self.real.numpy())
        critic = loss == "wgan_gp"
        self._colorbar.set_label("critic score (rescaled each frame)" if critic else "D(x)")
        if not critic:
            self._heat.set_clim(0, 1)
        for line, name in zip(self._score_lines, ("critic_real", "critic_fake") if critic else ("D(real)", "D(fake)")):
            line.set_label(name)
        self._score_ax.set_ylabel("critic score" if critic else "mean D")
        self._score_ax.legend(loc="upper right", fontsize=8)
        self.draw()

    def _on_run(self, change) -> None:
        self.run_button.description, self.run_button.icon = ("pause", "pause") if change["new"] else ("run", "play")
        if not change["new"] or (self._task is not None and not self._task.done()):
            return  # pausing, or already running: the loop below sees the button and stops or goes on
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.run_button.value = False
            self.status.value = "run needs a running event loop (Jupyter has one); here, call dash.train(1000)"
            return
        self._task = loop.create_task(self._run_loop())

    async def _run_loop(self) -> None:
        """Train `steps_per_frame` steps, draw, let the kernel handle clicks and slider moves; until paused."""
        try:
            while self.run_button.value:
                self._train(self.steps_per_frame)
                self.draw()
                await asyncio.sleep(0.01)
        except Exception as error:  # a background task's error would otherwise pass unseen
            self.status.value = f"stopped: {error!r}"
            raise
        finally:
            self.run_button.value = False

    # ------------------------------------------------------------ training

    def start(self) -> None:
        """Press run: train in the background on the running event loop until `pause()` (needs Jupyter or asyncio)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("dash.start() trains in the background, which needs a running event loop (Jupyter "
                               "has one; a plain script does not). Train in the foreground instead: dash.train(1000)")
        self.run_button.value = True

    def pause(self) -> None:
        """Press pause: background training stops after the frame it is drawing."""
        self.run_button.value = False

    def _train(self, steps: int) -> dict[str, list[float]]:
        logs = defaultdict(list)
        with one_thread():
            for _ in range(steps):
                real = sample_toy(self.toy_menu.value, self.batch_size, self.rng)
                for key, value in self.gan_step(self.gan, (real,)).items():
                    logs[key].append(value)
                    self.history[key].append(value)
                self.steps += 1
        return dict(logs)

    def step(self) -> dict[str, float]:
        """One training step (d_steps D updates, one G update) and a redraw; returns that step's logs."""
        logs = self._train(1)
        self.draw()
        return {key: values[0] for key, values in logs.items()}

    def train(self, steps: int) -> dict[str, list[float]]:
        """Train `steps` steps in this cell, redrawing at most every `every_s` seconds (only at the end when
        headless); the final frame is always drawn. Returns the logs of these steps: {"d_loss": [...], ...}."""
        logs, last = defaultdict(list), time.monotonic()
        try:
            for _ in range(steps):
                for key, values in self._train(1).items():
                    logs[key] += values
                if not self.headless and time.monotonic() - last >= self.every_s:
                    last = time.monotonic()  # before drawing: a frame every every_s, not every every_s + drawing
                    self.draw()
        except KeyboardInterrupt:
            print(f"Interrupted after {len(logs['d_loss'])} of {steps} steps; the networks keep what they learned.")
        self.draw()
        return dict(logs)

    # ------------------------------------------------------------ the figure

    def _build_figure(self) -> None:
        """Every artist is made once here; `draw` only changes their data."""
        self.figure = fig = Figure(figsize=(9.0, 4.2), dpi=72 * zoom())
        FigureCanvasAgg(fig)
        side = 0.78 * 4.2 / 9.0  # the map is square: 78% of the height, as a fraction of the width
        self._map_ax = ax = fig.add_axes((0.055, 0.1, side, 0.78))
        self._heat = ax.imshow(np.zeros((GRID, GRID)), origin="lower", extent=(-LIMITS, LIMITS, -LIMITS, LIMITS),
                               cmap="PRGn", vmin=0, vmax=1, interpolation="bilinear", aspect="auto")
        self._colorbar = fig.colorbar(self._heat, cax=fig.add_axes((0.055 + side + 0.01, 0.1, 0.012, 0.78)))
        self._real_dots = ax.scatter([], [], s=5, color="black", label="real")
        self._fake_dots = ax.scatter([], [], s=5, color="#d95f02", label="generated G(z)")
        self._arrows = ax.quiver(np.zeros(N_FAKE), np.zeros(N_FAKE), np.zeros(N_FAKE), np.zeros(N_FAKE),
                                 angles="xy", scale_units="xy", scale=1, width=0.003, color="#d95f02", alpha=0.7)
        ax.set_xlim(-LIMITS, LIMITS), ax.set_ylim(-LIMITS, LIMITS)
        ax.set_xticks(range(-2, 3)), ax.set_yticks(range(-2, 3))
        ax.legend(loc="upper left", fontsize=8, markerscale=2, framealpha=0.7)
        self._push_text = ax.text(0.01, 0.01, "", transform=ax.transAxes, fontsize=8,  # on a white box: readable
                                  bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 2})
        self._loss_ax = fig.add_axes((0.6, 0.56, 0.38, 0.34))
        self._loss_lines = [self._loss_ax.plot([], [], lw=1, label=k)[0] for k in ("d_loss", "g_loss")]
        self._loss_ax.legend(loc="upper right", fontsize=8)
        self._loss_ax.set_ylabel("loss")
        self._score_ax = fig.add_axes((0.6, 0.1, 0.38, 0.34))
        self._score_lines = [self._score_ax.plot([], [], lw=1)[0] for _ in range(2)]
        self._score_ax.set_xlabel("step")
        for curves in (self._loss_ax, self._score_ax):
            curves.locator_params(nbins=4)  # every tick label is text to render, each frame
        self._title = fig.suptitle("")
        ticks = torch.linspace(-LIMITS, LIMITS, GRID)
        self._grid = torch.stack(torch.meshgrid(ticks, ticks, indexing="xy"), dim=-1).reshape(-1, 2)  # (GRID^2, 2)

    def draw(self) -> bytes:
        """Update every artist for the networks as they are now, render to PNG, show it; returns the PNG bytes."""
        with one_thread(), torch.no_grad():
            self._update_artists()
        return self._show(self._render())

    def _update_artists(self) -> None:
        toy, loss = self.toy_menu.value, self.loss_menu.value
        scores = self.gan.discriminator(self._grid).reshape(GRID, GRID)  # row i is y = ticks[i]: origin="lower"
        if loss == "wgan_gp":
            low, high = scores.min().item(), scores.max().item()
            self._heat.set_clim(low, max(high, low + 1e-6))
        else:
            scores = torch.sigmoid(scores)
        self._heat.set_data(scores.numpy())

        with torch.enable_grad():
            fake, push = generator_push(self.gan, self.z, loss)
        length = push.norm(dim=1, keepdim=True)  # (N_FAKE, 1)
        typical = length.quantile(0.9).item()  # not the longest: one outlier would shrink every other arrow
        shown = (length * (ARROW / max(typical, 1e-12))).clamp(max=ARROW)  # lengths in the plane
        arrows = push / length.clamp_min(1e-12) * shown
        self._fake_dots.set_offsets(fake.numpy())
        self._arrows.set_offsets(fake.numpy())
        self._arrows.set_UVC(arrows[:, 0].numpy(), arrows[:, 1].numpy())
        self._push_text.set_text(f"arrows: -grad g_loss; 90% of |grad| < {typical:.1e}")

        keys = ("critic_real", "critic_fake") if loss == "wgan_gp" else ("d_real", "d_fake")
        for ax, lines, keys in ((self._loss_ax, self._loss_lines, ("d_loss", "g_loss")),
                                (self._score_ax, self._score_lines, keys)):
            for line, key in zip(lines, keys):
                values = self.history.get(key, [])[-WINDOW:]
                line.set_data(np.arange(self.steps - len(values), self.steps), values)
            ax.relim()
            ax.autoscale_view()

        title = f"{toy}, {loss} loss: step {self.steps}"
        if mode_centres(toy) is not None:
            self.coverage = mode_coverage(fake, toy)
            title += (f"   modes covered {self.coverage['modes_covered']}/{self.coverage['n_modes']},"
                      f" high quality {self.coverage['high_quality']:.0%}")
        self._title.set_text(title)

    def _render(self) -> bytes:
        self.figure.canvas.draw()
        rgb = np.asarray(self.figure.canvas.buffer_rgba())[..., :3]
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="png", compress_level=1)  # fast zlib: the frame lives 0.2 s
        return buffer.getvalue()

    def _show(self, png: bytes) -> bytes:
        now = time.monotonic()
        since = max(now - self._last_frame, 1e-6)
        if since < 2.0:  # frames/s averages recent frames only, not the pause between two cells
            self.fps = 0.8 * self.fps + 0.2 / since if self.fps else 1 / since
        self._last_frame, self.frames = now, self.frames + 1
        self.image.value = png
        self.status.value = f"step {self.steps}   {self.fps:.1f} frames/s"
        return png

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
