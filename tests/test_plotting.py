"""Image grids, PNG bytes and the latent scatter plot."""

import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.plotting import image_grid, latent_scatter, to_png


def test_image_grid_shape_and_range():
    grid = image_grid(3 * torch.randn(10, 1, 28, 28), nrow=4)  # values far outside [0, 1] get clipped
    assert grid.shape == (3 * 29 + 1, 4 * 29 + 1)  # 3 rows of 4, 1 pixel of padding around each image
    assert grid.min() >= 0 and grid.max() <= 1


@pytest.mark.parametrize("shape", [(1, 28, 28), (28, 28)])
def test_to_png_is_an_enlarged_crisp_image(shape):
    image = torch.rand(shape)
    png = to_png(image, scale=3)
    assert png.startswith(b"\x89PNG")
    decoded = np.array(Image.open(io.BytesIO(png)))
    assert decoded.shape == (28 * 3, 28 * 3)
    expected = (image.squeeze().numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(decoded, expected.repeat(3, axis=0).repeat(3, axis=1))


def test_to_png_refuses_a_batch():
    with pytest.raises(ValueError, match="one grey or RGB image"):
        to_png(torch.rand(2, 1, 28, 28))


def test_latent_scatter_draws_2d_codes_only():
    ax = latent_scatter(torch.randn(30, 2), torch.arange(30) % 3)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        latent_scatter(torch.randn(30, 3))


def test_latent_scatter_puts_its_legend_beside_the_points_not_over_them():
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax in axes:
        latent_scatter(torch.randn(200, 2), torch.arange(200) % 10, ax=ax)
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for i, ax in enumerate(axes):
        legend = ax.get_legend().get_window_extent(renderer)
        assert legend.x0 >= ax.get_window_extent(renderer).x1, "the legend covers the map"
        if i + 1 < len(axes):  # and tight_layout keeps it off the next map
            assert legend.x1 <= axes[i + 1].get_tightbbox(renderer).x0
    plt.close(fig)
