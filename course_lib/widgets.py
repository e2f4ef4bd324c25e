"""Interactive widgets (core ipywidgets only, APIs common to versions 7 and 8, so they work on Colab too).

The latent explorer: one slider per latent dimension of any decoder (or per each of the first few, for a GAN's
100-number z); moving a slider decodes the code at once and shows the image, sent to the browser as PNG bytes in an
`ipywidgets.Image`. The frame scrubber: a slider and play button over frames computed beforehand; the point
scrubber: the same over clouds of points in the plane (Langevin dynamics, a flow's particles).

    >>> from course_lib.autoencoders import MLPAutoencoder
    >>> explorer = LatentExplorer(MLPAutoencoder(latent_dim=2).decode, latent_dim=2)
    >>> before = explorer.image.value
    >>> explorer.sliders[0].value = 2.0
    >>> explorer.image.value != before
    True
"""

import math
import time
from typing import Callable

import ipywidgets as widgets
import torch

from .plotting import image_grid, to_png, zoom

SLIDER_PX = 520  # a latent slider's width with its name and readout: a track of about 350 px, so a 10 px drag is a
# small step of the range, not a jump to its end


class LatentExplorer:
    """Sliders for the code z of `decode(z: (1, latent_dim)) -> (1, 1, 28, 28)`, and the decoded image.

    `set_latent(z)` moves every slider at once (e.g. to the code of a test image). Give `images` and `encode`
    (`encode(x: (1, 1, 28, 28)) -> (1, latent_dim)`) to add a picker: choose one of those images, press
    "start from this image", and the sliders jump to its code. Show the explorer by leaving the object last in a
    cell, or with `display(explorer.widget)`.

    For a long code (a GAN's z has 100 numbers) give `n_sliders`: sliders move the first `n_sliders` numbers, and
    the others keep the values of `start` (or of the last `set_latent` code).

    For a conditional decoder (lesson 5) give `classes=10`: `decode(z, y)` then also gets the label y (a (1,) long
    tensor) chosen with a row of buttons, so the same code can be drawn as every digit.
    """

    def __init__(
        self,
        decode: Callable[[torch.Tensor], torch.Tensor],
        latent_dim: int,
        value_range: tuple[float, float] = (-3.0, 3.0),
        start: torch.Tensor | None = None,
        scale: int = 8,
        images: torch.Tensor | None = None,
        encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
        n_sliders: int | None = None,
        classes: int | None = None,
    ):
        if latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1, got {latent_dim}.")
        n_sliders = latent_dim if n_sliders is None else n_sliders
        if not 1 <= n_sliders <= latent_dim:
            raise ValueError(f"n_sliders must be between 1 and latent_dim={latent_dim}, got {n_sliders}.")
        self.base = torch.zeros(latent_dim)  # the code's values that have no slider
        low, high = float(value_range[0]), float(value_range[1])
        if not low < 0 < high:
            raise ValueError(f"value_range must contain 0 (the centre of the latent space), got {value_range}.")
        # a round step (0.01, 0.1, ...) and a range on its grid, so every slider can sit exactly at 0
        step = 10 ** math.floor(math.log10((high - low) / 100))
        low, high = round(math.floor(low / step) * step, 10), round(math.ceil(high / step) * step, 10)
        self.decode, self.latent_dim, self.scale = decode, latent_dim, round(scale * zoom())
        self.sliders = [
            widgets.FloatSlider(
                value=0.0, min=low, max=high, step=step, description=f"z{i + 1}",
                continuous_update=True, readout_format=".2f", layout=widgets.Layout(width=f"{SLIDER_PX}px"),
            )
            for i in range(n_sliders)
        ]
        side = f"{28 * self.scale}px"  # a fixed square, so the box around it cannot stretch the digit
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=side, height=side))
        self.reset = widgets.Button(description="all to 0")
        self.reset.on_click(lambda _: self._sliders_to_zero())
        self._updating = False
        for slider in self.sliders:
            slider.observe(self._on_change, names="value")
        self.label = None
        extra = []
        if classes is not None:
            if classes < 2:
                raise ValueError(f"classes is the number of labels the decoder knows (e.g. 10), got {classes}.")
            self.label = widgets.ToggleButtons(options=list(range(classes)), value=0, description="digit",
                                               style={"button_width": "40px"})
            self.label.observe(self._on_change, names="value")
            extra = [self.label]
        controls = widgets.VBox(extra + self.sliders + [self.reset])
        parts = [controls, self.image]
        if images is not None:
            if encode is None:
                raise ValueError("To start from an image the explorer needs `encode` as well as `images`.")
            parts.append(self._image_picker(images, encode, self.scale))
        self.widget = widgets.HBox(parts, layout=widgets.Layout(align_items="flex-start"))
        if start is not None:
            self.set_latent(start)
        else:
            self._redraw()

    def _image_picker(self, images: torch.Tensor, encode, scale: int) -> widgets.VBox:
        """An index slider over `images`, a preview, and a button that moves the sliders to the shown image's code."""
        if len(images) == 0:
            raise ValueError("`images` is empty: give the explorer at least one image to start from, "
                             "e.g. images=x_test[:50].")
        self.picker = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image")
        side = f"{14 * scale}px"
        preview = widgets.Image(value=to_png(images[0], scale // 2), format="png",
                                layout=widgets.Layout(width=side, height=side))
        self.start_button = widgets.Button(description="start from this image", layout=widgets.Layout(width="200px"))

        def show(change):
            preview.value = to_png(images[change["new"]], scale // 2)

        @torch.no_grad()
        def start(_):
            x = images[self.picker.value : self.picker.value + 1]
            self.set_latent(encode(x.to(self._device())))

        self.picker.observe(show, names="value")
        self.start_button.on_click(start)
        return widgets.VBox([self.picker, preview, self.start_button])

    def _sliders_to_zero(self) -> None:
        z = self.base.clone()
        z[: len(self.sliders)] = 0
        self.set_latent(z)

    @property
    def z(self) -> torch.Tensor:
        """The code the sliders show now, shaped (1, latent_dim)."""
        z = self.base.clone()
        z[: len(self.sliders)] = torch.tensor([s.value for s in self.sliders], dtype=torch.float32)
        return z.unsqueeze(0)

    def set_latent(self, z: torch.Tensor) -> None:
        """Move all sliders to code `z` (shape (latent_dim,) or (1, latent_dim)) and redraw once. Values outside the
        sliders' range sit at its edge (the code shown is then the clamped one); NaN or infinite values are refused."""
        z = torch.as_tensor(z, dtype=torch.float32).detach().cpu().flatten()
        if z.numel() != self.latent_dim:
            raise ValueError(f"This explorer has {self.latent_dim} latent dimensions; got a code with {z.numel()} values.")
        bad = (~torch.isfinite(z)).nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"The code has {len(bad)} value(s) that are NaN or infinite, at position(s) "
                             f"{bad[:5]}; a slider cannot show them. Give finite numbers, e.g. torch.zeros("
                             f"{self.latent_dim}) or an encoder's output.")
        self.base = z.clone()
        self._updating = True  # one redraw for the whole move, not one per slider
        try:
            for slider, value in zip(self.sliders, z.tolist()):
                slider.value = min(max(value, slider.min), slider.max)  # codes outside the range sit at its edge
        finally:
            self._updating = False
        self._redraw()

    def _on_change(self, change) -> None:
        if not self._updating:
            self._redraw()

    def _device(self) -> torch.device:
        """Where the decoder's model lives (CPU unless `decode` is a bound method of a model on another device)."""
        try:
            return next(self.decode.__self__.parameters()).device
        except (AttributeError, StopIteration):
            return torch.device("cpu")

    @torch.no_grad()
    def _redraw(self) -> None:
        z = self.z.to(self._device())
        image = self.decode(z) if self.label is None else self.decode(z, torch.tensor([self.label.value], device=z.device))
        self.image.value = to_png(image[0], self.scale)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class FrameScrubber:
    """A slider and a play button over frames computed beforehand (e.g. sample grids saved during training, or the
    steps of a diffusion trajectory). Moving the slider only swaps PNG images that are already made, so it responds
    at once however expensive the frames were to compute.

    `frames` is a list of image batches (B, 1, H, W) in [0, 1], each shown as one grid of `nrow` columns; `values`
    (optional) the quantity each frame stands for (a timestep t, a guidance scale w, a training step), which the
    slider shows beside `description` (without it, the frame's number); `captions` (optional) one text per frame.
    It opens on frame `start` (a Python index: -1, the default, is the last frame).

    >>> scrubber = FrameScrubber([torch.zeros(4, 1, 28, 28), torch.ones(4, 1, 28, 28)], values=[0, 999],
    ...                          description="t", captions=["start", "end"], start=0)
    >>> scrubber.slider.label, scrubber.caption.value
    ('0', 'start')
    >>> scrubber.slider.value = 1   # the frame's index
    >>> scrubber.slider.label, scrubber.caption.value
    ('999', 'end')
    """

    def __init__(self, frames: list[torch.Tensor], captions: list[str] | None = None, nrow: int = 8,
                 scale: int = 3, interval_ms: int = 300, description: str = "frame", values: list | None = None,
                 start: int = -1):
        n = len(frames)
        if n == 0:
            raise ValueError("FrameScrubber needs at least one frame; pass a list of image batches.")
        for name, given in (("captions", captions), ("values", values)):
            if given is not None and len(given) != n:
                raise ValueError(f"Got {n} frames but {len(given)} {name}; give one of the {name} per frame.")
        if not -n <= start < n:
            raise ValueError(f"start must be a frame index between {-n} and {n - 1} (there are {n} frames), "
                             f"got {start}.")
        start = start % n
        self.pngs = self._render(frames, nrow, scale)
        self.values = list(range(n)) if values is None else list(values)
        self.captions = captions or [f"{description} {_readout(v)}" for v in self.values]
        # the slider's value is the frame's index, its readout the frame's own quantity (t = 525, not frame 21)
        self.slider = widgets.SelectionSlider(options=[(_readout(v), i) for i, v in enumerate(self.values)],
                                              index=start, description=description, continuous_update=True,
                                              layout=widgets.Layout(width="500px"))
        self.play = widgets.Play(value=start, min=0, max=n - 1, interval=interval_ms)
        widgets.link((self.play, "value"), (self.slider, "index"))
        self.image = widgets.Image(value=self.pngs[start], format="png")
        self.caption = widgets.Label(value=self.captions[start])
        self.slider.observe(self._show, names="index")
        self.widget = widgets.VBox([widgets.HBox([self.play, self.slider, self.caption]), self.image])

    def _render(self, frames, nrow: int, scale: int) -> list[bytes]:
        return [to_png(torch.from_numpy(image_grid(frame, nrow)), round(scale * zoom())) for frame in frames]

    def _show(self, change) -> None:
        self.image.value, self.caption.value = self.pngs[change["new"]], self.captions[change["new"]]

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class PointScrubber(FrameScrubber):
    """A `FrameScrubber` over clouds of points in the plane: frame i is the points `frames[i]` (n, 2), drawn as a
    scatter plot within [-limit, limit]^2, with the path every point took so far drawn faintly for its first
    `trails` points. `background` (optional) draws on each frame's axes first, `background(ax, i)`: a target
    density, a vector field. Rendered to PNG once; the slider and play button only swap them.

    >>> frames = [torch.zeros(5, 2), torch.ones(5, 2)]
    >>> scrubber = PointScrubber(frames, values=[1.0, 0.0], description="t", start=0)
    >>> scrubber.slider.label, len(scrubber.pngs)
    ('1', 2)
    """

    def __init__(self, frames: list[torch.Tensor], captions: list[str] | None = None, limit: float = 3.0,
                 trails: int = 0, background: Callable | None = None, interval_ms: int = 200,
                 description: str = "frame", values: list | None = None, start: int = -1, size_px: int = 360):
        if not frames:
            raise ValueError("PointScrubber needs at least one frame; pass a list of point clouds shaped (n, 2).")
        for i, frame in enumerate(frames):
            if not isinstance(frame, torch.Tensor):
                raise TypeError(f"Frame {i} is a {type(frame).__name__}; pass torch tensors (torch.as_tensor(frame)).")
            if frame.dim() != 2 or frame.shape[1] != 2:
                raise ValueError(f"Each frame holds points in the plane, shaped (n, 2); frame {i} is "
                                 f"{tuple(frame.shape)}.")
        self.limit, self.trails, self.background, self.size_px = limit, trails, background, size_px
        super().__init__(frames, captions, interval_ms=interval_ms, description=description, values=values,
                         start=start)
        self.image.layout.width = f"{round(size_px * zoom())}px"  # its own size: an output area would stretch it

    def _render(self, frames, nrow: int, scale: int) -> list[bytes]:
        import io

        from matplotlib.figure import Figure

        points = [frame.detach().float().cpu() for frame in frames]
        inches = self.size_px * zoom() / 100
        pngs = []
        for i, frame in enumerate(points):
            fig = Figure(figsize=(inches, inches), dpi=100)
            ax = fig.add_axes((0.02, 0.02, 0.96, 0.96))
            if self.background is not None:
                self.background(ax, i)
            if self.trails and i > 0:
                path = torch.stack([p[:self.trails] for p in points[:i + 1]])  # (frames so far, trails, 2)
                ax.plot(path[:, :, 0].numpy(), path[:, :, 1].numpy(), color="C1", alpha=0.35, linewidth=0.8)
            ax.scatter(frame[:, 0].numpy(), frame[:, 1].numpy(), s=3, alpha=0.5, color="C0")
            ax.set_xlim(-self.limit, self.limit), ax.set_ylim(-self.limit, self.limit)
            ax.set_xticks([]), ax.set_yticks([]), ax.set_aspect("equal")
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png")
            pngs.append(buffer.getvalue())
        return pngs


def _readout(value) -> str:
    """A frame's quantity as the slider shows it: 525, 0.5, 1e-05."""
    return f"{value:g}" if isinstance(value, float) else str(value)


class MaskPainter:
    """Choose which part of some images is hidden, by clicking the cells of a grid (each cell is a block of pixels)
    or picking a preset (rounded to the grid: a cell mostly hidden in it is hidden), then press the button: `fill(mask)` gets the mask (1, 1, H, W), 1 = known, 0 = to fill, and
    returns the filled images, shown under the masked inputs (hidden pixels in mid grey). The fill runs only on the
    button, so clicking cells costs nothing.

    >>> painter = MaskPainter(torch.zeros(2, 1, 28, 28), lambda mask: torch.ones(2, 1, 28, 28) * mask)
    >>> painter.buttons[0].value = True   # hide the top-left 4 x 4 block
    >>> float(painter.mask()[0, 0, :4, :4].sum()), float(painter.mask().sum())
    (0.0, 768.0)
    >>> painter.run.click(); painter.status.value
    'filled 16 of 784 pixels'
    """

    def __init__(self, images: torch.Tensor, fill: Callable[[torch.Tensor], torch.Tensor], cells: int = 7,
                 presets: dict[str, torch.Tensor] | None = None, scale: int = 3):
        height = images.shape[-1]
        if height % cells:
            raise ValueError(f"The grid's {cells} cells must split the {height}-pixel image evenly; use cells=7 or 14.")
        self.images, self.fill, self.cells, self.block, self.scale = images, fill, cells, height // cells, scale
        self.presets = dict(presets or {})
        px = f"{round(26 * zoom())}px"
        self.buttons = [widgets.ToggleButton(value=False, layout=widgets.Layout(width=px, height=px))
                        for _ in range(cells * cells)]
        grid = widgets.GridBox(self.buttons, layout=widgets.Layout(grid_template_columns=f"repeat({cells}, {px})"))
        self.preset = widgets.Dropdown(options=["(click the cells)", *self.presets], description="preset")
        self.preset.observe(self._apply_preset, names="value")
        self.run = widgets.Button(description="fill the hidden cells", button_style="primary")
        self.run.on_click(self._fill)
        self.status = widgets.Label(value="click cells to hide them, then fill")
        self.image = widgets.Image(value=self._render(self.images * self.mask() + 0.5 * (1 - self.mask())),
                                   format="png")
        self.widget = widgets.HBox([widgets.VBox([self.preset, grid, self.run, self.status]), self.image])

    def mask(self) -> torch.Tensor:
        """(1, 1, H, W): 1 where the pixel is known, 0 in the cells switched on."""
        hidden = torch.tensor([b.value for b in self.buttons], dtype=torch.float32).view(1, 1, self.cells, self.cells)
        return 1 - hidden.repeat_interleave(self.block, dim=2).repeat_interleave(self.block, dim=3)

    def _apply_preset(self, change) -> None:
        mask = self.presets.get(change["new"])
        if mask is None:
            return
        cells = torch.nn.functional.avg_pool2d(mask.float().view(1, 1, *mask.shape[-2:]), self.block)[0, 0]
        for button, known in zip(self.buttons, cells.flatten().tolist()):
            button.value = known < 0.5  # a cell mostly hidden in the preset is hidden here

    def _fill(self, _=None) -> None:
        mask = self.mask()
        masked = self.images * mask + 0.5 * (1 - mask)
        filled = self.fill(mask).detach().cpu()
        self.image.value = self._render(torch.cat([masked, filled]))
        self.status.value = f"filled {int((mask == 0).sum())} of {mask.numel()} pixels"

    def _render(self, images: torch.Tensor) -> bytes:
        return to_png(torch.from_numpy(image_grid(images, nrow=len(self.images))), round(self.scale * zoom()))

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class PromptBox:
    """Type a caption, see a grid of images drawn for it: `draw(caption, w, seed)` returns images (N, C, H, W) in
    [0, 1]. Pressing Enter, the button, or letting go of the guidance slider or the seed draws again; a caption the
    models cannot read (an unknown word) is answered in the status line with what they do know, and the last
    images stay.

    >>> from course_lib.captions import words  # refuses unknown words
    >>> box = PromptBox(lambda caption, w, seed: torch.full((len(words(caption)), 3, 28, 28), w / 10))
    >>> box.caption.value = "a red seven"; box.status.value
    "'a red seven', w = 3, seed 0: 3 images in 0.0 s"
    >>> box.caption.value = "a red sevn"; box.status.value[:25]
    "Unknown word(s) 'sevn' (d"
    """

    def __init__(self, draw: Callable[[str, float, int], torch.Tensor], caption: str = "", w: float = 3.0,
                 w_max: float = 8.0, seed: int = 0, scale: int = 4):
        self.draw, self.scale = draw, scale
        self.caption = widgets.Text(value=caption, placeholder="a small red seven on the left", description="caption",
                                    continuous_update=False, layout=widgets.Layout(width="420px"))
        self.w = widgets.FloatSlider(value=w, min=0.0, max=w_max, step=0.5, description="guidance w",
                                     continuous_update=False)
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=10**6, description="seed",
                                           layout=widgets.Layout(width="160px"))
        self.button = widgets.Button(description="draw", button_style="primary")
        self.status = widgets.Label(value="type a caption and press Enter")
        self.image = widgets.Image(format="png")
        for control in (self.caption, self.w, self.seed):
            control.observe(self._draw, names="value")
        self.button.on_click(self._draw)
        self.widget = widgets.VBox([widgets.HBox([self.caption, self.button]), widgets.HBox([self.w, self.seed]),
                                    self.status, self.image])
        if caption:
            self._draw()

    def _draw(self, _=None) -> None:
        text, w, seed = self.caption.value, float(self.w.value), int(self.seed.value)
        start = time.perf_counter()
        try:
            images = self.draw(text, w, seed).detach().cpu()
        except ValueError as error:  # an unknown word, or a caption too long: say what the models know
            self.status.value = str(error)
            return
        self.image.value = to_png(torch.from_numpy(image_grid(images, nrow=len(images))), round(self.scale * zoom()))
        self.status.value = (f"{text!r}, w = {w:g}, seed {seed}: {len(images)} images in "
                             f"{time.perf_counter() - start:.1f} s")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
