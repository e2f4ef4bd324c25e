"""Figures the lessons reuse: image grids, 2-D latent maps, and images as PNG bytes for widgets.

    >>> grid = image_grid(torch.rand(16, 1, 28, 28), nrow=8)
    >>> grid.shape  # (H, W), values in [0, 1]
    (59, 233)
"""

import io

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

_presenter = {"on": False}


def presenter_mode(on: bool = True) -> None:
    """Larger fonts, thicker lines and bigger figures and widget images, to read from the back of a classroom.
    `start_lesson(..., presenter=True)` calls it; `presenter_mode(False)` goes back to the normal sizes."""
    _presenter["on"] = bool(on)
    plt.rcParams.update({"figure.dpi": 150 if on else 100, "font.size": 16 if on else 12,
                         "axes.titlesize": "large", "lines.linewidth": 2.5 if on else 1.5})


def zoom() -> float:
    """How much larger widgets and live plots draw: 1.5 in presenter mode, else 1."""
    return 1.5 if _presenter["on"] else 1.0


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 1) -> np.ndarray:
    """Tile a batch of (B, 1, H, W) images in [0, 1] into one grey (H', W') array, `nrow` images per row; colour
    images (B, 3, H, W) give an (H', W', 3) array."""
    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=padding, pad_value=0.5)
    return grid.permute(1, 2, 0).numpy() if images.shape[1] == 3 else grid[0].numpy()


def show_images(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None, scale: float = 0.8):
    """Show a batch of images as one grid; returns the matplotlib Axes."""
    grid = image_grid(images, nrow)
    if ax is None:
        rows, cols = grid.shape[:2]
        _, ax = plt.subplots(figsize=(max(2.0, cols / 29 * scale), max(1.5, rows / 29 * scale)))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")  # (colour images ignore the cmap)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_rows(rows: dict[str, torch.Tensor], scale: float = 0.75):
    """One grid per named row, stacked (e.g. {"input": x, "noisy": x_tilde, "output": x_hat}); returns the Figure."""
    n = max(len(r) for r in rows.values())
    label_width = 0.11 * max(len(name) for name in rows) + 0.4  # inches for the row names on the left
    fig, axes = plt.subplots(len(rows), 1, figsize=(n * scale + label_width, len(rows) * scale * 1.25), squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], rows.items()):
        ax.imshow(image_grid(images, nrow=n), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_ylabel(name, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def latent_scatter(z: torch.Tensor, labels: torch.Tensor | None = None, ax=None, title: str | None = None):
    """Scatter 2-D codes `z` (N, 2), coloured by digit label with a legend beside the map; returns the Axes."""
    z = torch.as_tensor(z).detach().cpu()
    if z.dim() != 2 or z.shape[1] != 2:
        raise ValueError(f"latent_scatter draws 2-D codes shaped (N, 2), got {tuple(z.shape)}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], s=4, alpha=0.6)
    else:
        labels = torch.as_tensor(labels).cpu()
        cmap = plt.get_cmap("tab10")
        for digit in labels.unique().tolist():
            pts = z[labels == digit]
            ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6, color=cmap(digit % 10), label=str(digit))
        # beside the map, not on it: no point is hidden (the figure's tight_layout makes room for it)
        ax.legend(markerscale=4, fontsize=8, title="label", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0, handletextpad=0.2)
    ax.set_xlabel("$z_1$"), ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return ax


def to_png(image: torch.Tensor, scale: int = 8) -> bytes:
    """One image in [0, 1] as PNG bytes, enlarged `scale` times with crisp pixels: grey (1, H, W) or (H, W), or
    colour (3, H, W) or (H, W, 3) (what `image_grid` gives for colour images)."""
    array = (image.detach().float().cpu().clamp(0, 1).squeeze().numpy() * 255).round().astype(np.uint8)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)  # (3, H, W) -> (H, W, 3)
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[-1] == 3):
        raise ValueError(f"to_png takes one grey or RGB image, got shape {tuple(image.shape)}.")
    pil = Image.fromarray(array)  # uint8 (H, W) -> grey "L" image, (H, W, 3) -> "RGB"
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def markdown_table(rows: dict[str, dict], digits: int = 3) -> str:
    """A markdown table with one row per key of `rows` and one column per key of the inner dicts (in order of first
    appearance); numbers are rounded to `digits` significant digits, missing cells left empty.

    >>> print(markdown_table({"CGAN": {"accuracy": 0.96123}, "CVAE": {"accuracy": 0.9, "seconds": 12.0}}))
    | model | accuracy | seconds |
    |---|---|---|
    | CGAN | 0.961 |  |
    | CVAE | 0.9 | 12 |
    """
    columns = list(dict.fromkeys(key for row in rows.values() for key in row))

    def cell(value):
        if isinstance(value, float):
            return f"{value:,.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"
        return "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)

    lines = ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(cell(row.get(c)) for c in columns) + " |" for name, row in rows.items()]
    return "\n".join(lines)
