"""The latent explorer: sliders -> decode -> PNG, never a stale frame, one redraw per set_latent."""

import ipywidgets as widgets
import pytest
import torch

from course_lib.autoencoders import MLPAutoencoder
from course_lib.plotting import to_png
from course_lib.widgets import LatentExplorer


@pytest.fixture
def decoder():
    torch.manual_seed(0)
    return MLPAutoencoder(latent_dim=2, hidden=(16, 32)).eval()


def expected_png(decoder, z, scale=8):
    with torch.no_grad():
        return to_png(decoder.decode(z)[0], scale)


def test_moving_a_slider_changes_the_image(decoder):
    explorer = LatentExplorer(decoder.decode, latent_dim=2)
    before = bytes(explorer.image.value)
    explorer.sliders[0].value = 2.0
    assert bytes(explorer.image.value) != before


def test_rapid_moves_leave_the_latest_image(decoder):
    explorer = LatentExplorer(decoder.decode, latent_dim=2)
    for value in torch.linspace(-3, 3, 50).tolist():
        explorer.sliders[1].value = value
    assert explorer.z[0, 1].item() == pytest.approx(3.0)
    assert bytes(explorer.image.value) == expected_png(decoder, explorer.z)


def test_set_latent_moves_all_sliders_with_one_redraw(decoder):
    calls = []

    def counting_decode(z):
        calls.append(z.clone())
        return decoder.decode(z)

    explorer = LatentExplorer(counting_decode, latent_dim=2)
    calls.clear()
    explorer.set_latent(torch.tensor([[1.5, 10.0]]))
    assert len(calls) == 1
    assert [s.value for s in explorer.sliders] == [1.5, 3.0]  # 10 is clamped to the range (-3, 3)
    assert bytes(explorer.image.value) == expected_png(decoder, torch.tensor([[1.5, 3.0]]))


def test_reset_button_and_start(decoder):
    explorer = LatentExplorer(decoder.decode, latent_dim=2, start=torch.tensor([1.0, -1.0]))
    assert [s.value for s in explorer.sliders] == [1.0, -1.0]
    explorer.reset.click()
    assert [s.value for s in explorer.sliders] == [0.0, 0.0]
    assert bytes(explorer.image.value) == expected_png(decoder, torch.zeros(1, 2))


def test_wrong_sizes_are_refused(decoder):
    explorer = LatentExplorer(decoder.decode, latent_dim=2)
    with pytest.raises(ValueError, match="2 latent dimensions"):
        explorer.set_latent(torch.zeros(3))
    with pytest.raises(ValueError, match="at least 1"):
        LatentExplorer(decoder.decode, latent_dim=0)


def test_widget_is_a_box_with_a_png_image(decoder):
    explorer = LatentExplorer(decoder.decode, latent_dim=2)
    assert isinstance(explorer.widget, widgets.HBox)
    images = [c for c in explorer.widget.children if isinstance(c, widgets.Image)]
    assert images == [explorer.image]
    assert explorer.image.format == "png" and bytes(explorer.image.value).startswith(b"\x89PNG")


def test_start_from_an_image_moves_the_sliders_to_its_code(decoder):
    images = torch.rand(5, 1, 28, 28)
    explorer = LatentExplorer(decoder.decode, latent_dim=2, value_range=(-100, 100), images=images,
                              encode=decoder.encode)
    explorer.picker.value = 3
    explorer.start_button.click()
    with torch.no_grad():
        code = decoder.encode(images[3:4])
    assert torch.allclose(explorer.z, code, atol=explorer.sliders[0].step)
    assert bytes(explorer.image.value) == expected_png(decoder, explorer.z)


def test_images_without_encode_is_a_clear_error(decoder):
    with pytest.raises(ValueError, match="encode"):
        LatentExplorer(decoder.decode, latent_dim=2, images=torch.rand(2, 1, 28, 28))
