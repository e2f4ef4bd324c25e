"""The latent explorer: sliders -> decode -> PNG, never a stale frame, one redraw per set_latent."""

import ipywidgets as widgets
import pytest
import torch

from course_lib.autoencoders import MLPAutoencoder
from course_lib.plotting import to_png
from course_lib.widgets import LatentExplorer, MaskPainter


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


def test_frame_scrubber_swaps_prepared_frames():
    from course_lib.widgets import FrameScrubber

    frames = [torch.full((4, 1, 28, 28), v) for v in (0.0, 0.5, 1.0)]
    scrubber = FrameScrubber(frames, captions=["a", "b", "c"])
    assert scrubber.slider.value == 2 and scrubber.caption.value == "c"  # opens on the last frame
    for i in [0, 2, 1, 0, 2, 1]:  # rapid moves: the last one wins
        scrubber.slider.value = i
    assert bytes(scrubber.image.value) == scrubber.pngs[1] and scrubber.caption.value == "b"
    assert len(set(scrubber.pngs)) == 3
    scrubber.play.value = 0  # the play button drives the slider
    assert scrubber.slider.value == 0
    with pytest.raises(ValueError, match="one of the captions per frame"):
        FrameScrubber(frames, captions=["a"])


def test_explorer_with_fewer_sliders_than_latent_numbers():
    seen = []

    def decode(z):
        seen.append(z.clone())
        return torch.sigmoid(z[:, :1]).view(1, 1, 1, 1).expand(1, 1, 28, 28)

    start = torch.arange(10, dtype=torch.float32) / 10
    explorer = LatentExplorer(decode, latent_dim=10, n_sliders=3, start=start)
    assert len(explorer.sliders) == 3
    explorer.sliders[1].value = -2.0
    z = seen[-1][0]
    assert z[1] == -2.0 and torch.equal(z[3:], start[3:])  # the numbers without sliders keep start's values
    explorer.reset.click()
    assert torch.equal(seen[-1][0][:3], torch.zeros(3)) and torch.equal(seen[-1][0][3:], start[3:])
    with pytest.raises(ValueError, match="n_sliders"):
        LatentExplorer(decode, latent_dim=10, n_sliders=11)


def test_class_buttons_redraw_the_same_code_as_another_digit():
    from course_lib.conditional import ConditionalVAE

    torch.manual_seed(0)
    cvae = ConditionalVAE(latent_dim=2, hidden=(16, 32)).eval()
    explorer = LatentExplorer(cvae.decode, latent_dim=2, classes=10, start=torch.tensor([0.5, -0.5]))
    assert explorer.label.value == 0
    before = bytes(explorer.image.value)
    explorer.label.value = 7
    with torch.no_grad():
        assert bytes(explorer.image.value) == to_png(cvae.decode(explorer.z, torch.tensor([7]))[0], 8)
    assert bytes(explorer.image.value) != before
    explorer.sliders[0].value = -1.0  # the sliders keep using the chosen digit
    with torch.no_grad():
        assert bytes(explorer.image.value) == to_png(cvae.decode(explorer.z, torch.tensor([7]))[0], 8)


def test_frame_scrubber_shows_each_frame_quantity_and_opens_where_asked():
    from course_lib.widgets import FrameScrubber

    frames = [torch.full((2, 1, 28, 28), v) for v in (0.0, 0.5, 1.0)]
    scrubber = FrameScrubber(frames, values=[0.0, 0.5, 8.0], description="w", start=0)
    assert scrubber.slider.index == 0 and scrubber.slider.label == "0"  # w = 0, as the lesson's text says
    assert scrubber.caption.value == "w 0" and bytes(scrubber.image.value) == scrubber.pngs[0]
    scrubber.slider.value = 1  # the value is the frame's index; the readout is the frame's w
    assert scrubber.slider.label == "0.5" and scrubber.caption.value == "w 0.5"
    scrubber.play.value = 2
    assert scrubber.slider.label == "8" and bytes(scrubber.image.value) == scrubber.pngs[2]
    steps = FrameScrubber(frames, values=[999, 525, 0], description="t")
    assert steps.slider.label == "0" and steps.slider.index == 2  # by default the last frame
    assert FrameScrubber(frames).slider.label == "2"  # without values: the frame's number
    with pytest.raises(ValueError, match="one of the values per frame"):
        FrameScrubber(frames, values=[1, 2])
    with pytest.raises(ValueError, match="between -3 and 2"):
        FrameScrubber(frames, start=3)


def test_a_nan_code_is_refused_naming_where(decoder):
    explorer = LatentExplorer(decoder.decode, latent_dim=2)
    before = bytes(explorer.image.value)
    with pytest.raises(ValueError, match=r"NaN or infinite, at position\(s\) \[1\]"):
        explorer.set_latent(torch.tensor([0.5, float("nan")]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        LatentExplorer(decoder.decode, latent_dim=2, start=torch.tensor([float("inf"), 0.0]))
    assert bytes(explorer.image.value) == before and [s.value for s in explorer.sliders] == [0.0, 0.0]


def test_an_empty_image_set_is_refused_with_an_example(decoder):
    with pytest.raises(ValueError, match=r"`images` is empty.*images=x_test\[:50\]"):
        LatentExplorer(decoder.decode, latent_dim=2, images=torch.zeros(0, 1, 28, 28), encode=decoder.encode)


def test_latent_sliders_are_wide_enough_to_drag_in_small_steps(decoder):
    explorer = LatentExplorer(decoder.decode, latent_dim=2)
    assert int(explorer.sliders[0].layout.width[:-2]) >= 500  # a track of ~350 px: 10 px is under 3% of the range


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_point_scrubber_draws_each_cloud_once_and_the_slider_swaps_them():
    from course_lib.plotting import zoom
    from course_lib.widgets import PointScrubber

    frames = [torch.zeros(20, 2), torch.randn(20, 2, generator=torch.Generator().manual_seed(0)),
              torch.full((20, 2), 2.0)]
    drawn = []
    scrubber = PointScrubber(frames, values=[1.0, 0.5, 0.0], description="t", start=0, trails=5, size_px=120,
                             background=lambda ax, i: drawn.append(i))
    pngs = scrubber.pngs
    assert drawn == [0, 1, 2]  # the background once per frame, when the PNGs are made
    assert len(pngs) == 3 and len(set(pngs)) == 3 and all(p.startswith(b"\x89PNG") for p in pngs)
    assert _png_size(pngs[0]) == (round(120 * zoom()),) * 2
    assert bytes(scrubber.image.value) == pngs[0] and scrubber.caption.value == "t 1"
    scrubber.slider.value = 2
    assert bytes(scrubber.image.value) == pngs[2] and scrubber.caption.value == "t 0" and scrubber.slider.label == "0"
    scrubber.play.value = 1
    assert bytes(scrubber.image.value) == pngs[1] and scrubber.caption.value == "t 0.5"
    assert drawn == [0, 1, 2]  # moving the slider draws nothing
    plain = PointScrubber(frames, captions=["a", "b", "c"], size_px=120)  # no trails: only later frames change
    assert plain.pngs[0] == pngs[0] and plain.pngs[2] != pngs[2]
    assert plain.caption.value == "c" and bytes(plain.image.value) == plain.pngs[2]


def test_point_scrubber_refuses_frames_that_are_not_points_in_the_plane():
    from course_lib.widgets import PointScrubber

    with pytest.raises(ValueError, match=r"shaped \(n, 2\); frame 0 is \(5, 3\)"):
        PointScrubber([torch.zeros(5, 3)])
    with pytest.raises(ValueError, match=r"frame 1 is \(4, 1, 28, 28\)"):
        PointScrubber([torch.zeros(5, 2), torch.zeros(4, 1, 28, 28)])


def test_mask_painter_hides_the_clicked_cells_and_fills_only_on_the_button():
    images = torch.rand(3, 1, 28, 28)
    calls = []

    def fill(mask):
        calls.append(mask.clone())
        return images * mask  # the hidden pixels come back black

    preset = torch.ones(1, 1, 28, 28)
    preset[..., 16:, :] = 0  # on the grid of 4-pixel cells (a preset off the grid is rounded to it)
    painter = MaskPainter(images, fill, presets={"lower rows": preset})
    first = painter.image.value
    painter.buttons[8].value = True  # row 1, column 1: pixels 4..7 x 4..7
    mask = painter.mask()
    assert mask.shape == (1, 1, 28, 28) and mask[0, 0, 4:8, 4:8].sum() == 0 and mask.sum() == 784 - 16
    assert not calls and painter.image.value == first  # clicking costs nothing
    painter.run.click()
    assert len(calls) == 1 and torch.equal(calls[0], mask) and painter.image.value != first
    assert painter.status.value == "filled 16 of 784 pixels"
    painter.preset.value = "lower rows"  # a preset switches its cells on and the others off
    assert torch.equal(painter.mask(), preset)
    with pytest.raises(ValueError, match="cells=7"):
        MaskPainter(images, fill, cells=5)
