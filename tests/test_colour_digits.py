"""The colour digits: MNIST digits painted with a seeded ink, background, size and position, for the lessons on
colouring (grey -> colour) and on captions."""

import pytest
import torch

from course_lib.data import (BACKGROUNDS, COLOUR_ATTRIBUTES, INK_COLOURS, POSITIONS, SIZES, colour_of,
                             describe_attributes, load_dataset, to_grey)

LUMA = torch.tensor([0.299, 0.587, 0.114])  # written out again here, so a changed constant in data.py shows
INKS, BGS = torch.tensor(list(INK_COLOURS.values())), torch.tensor(list(BACKGROUNDS.values()))
MIN_LUMINANCE_GAP = 0.35  # every drawn ink is at least this much brighter than its background, in grey
MIN_RGB_DISTANCE = 0.5  # and this far from it in RGB


def colour(split, **kwargs):
    return load_dataset("colour_digits", split, source="bundled", **kwargs).tensors


def grey(split, **kwargs):
    return load_dataset("mnist", split, source="bundled", **kwargs).tensors


def alpha(images, attributes):
    """Recover each digit's alpha `a` from `grey = Y_bg + (Y_ink - Y_bg) a`: (N, 28, 28)."""
    y_ink, y_bg = INKS[attributes[:, 0]] @ LUMA, BGS[attributes[:, 1]] @ LUMA
    return (to_grey(images)[:, 0] - y_bg[:, None, None]) / (y_ink - y_bg)[:, None, None]


@pytest.mark.parametrize("split, size", [("train", 4000), ("test", 1000)])
def test_shapes_types_and_range(split, size):
    x, y, attributes = colour(split)
    assert x.shape == (size, 3, 28, 28) and x.dtype == torch.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert y.shape == (size,) and y.dtype == torch.int64
    assert attributes.shape == (size, len(COLOUR_ATTRIBUTES)) and attributes.dtype == torch.int64
    for column, names in enumerate((INK_COLOURS, BACKGROUNDS, SIZES, POSITIONS)):
        assert 0 <= attributes[:, column].min() and attributes[:, column].max() < len(names)


@pytest.mark.parametrize("split", ["train", "test"])
def test_each_image_is_its_grey_digit_painted_in_the_same_order(split):
    x, y, attributes = colour(split)
    a, y_grey = grey(split)
    assert torch.equal(y, y_grey)
    large = attributes[:, 2] == SIZES.index("large")
    ink, bg = INKS[attributes[large, 0], :, None, None], BGS[attributes[large, 1], :, None, None]
    torch.testing.assert_close(x[large], bg * (1 - a[large]) + ink * a[large], rtol=0, atol=1e-6)


def test_n_keeps_the_same_subset_as_mnist_with_the_same_attribute_rows():
    x, y, attributes = colour("train")
    x50, y50, attributes50 = colour("train", n=50)
    g, _ = grey("train")
    g50, _ = grey("train", n=50)
    rows = torch.cdist(x50.flatten(1), x.flatten(1)).argmin(1)  # where each kept image sits in the full split
    assert torch.equal(x50, x[rows])
    grey_rows = torch.cdist(g50.flatten(1), g.flatten(1)).argmin(1)
    assert torch.equal(g50, g[grey_rows]) and torch.equal(rows, grey_rows)
    assert torch.equal(y50, y[rows]) and torch.equal(attributes50, attributes[rows])


def test_attributes_and_pixels_are_pinned():
    """Computed once (torch 2.14, CPU); a different machine or a changed rule must give the same numbers."""
    for split, first_rows, checksum in [("train", [[5, 0, 1, 3], [3, 1, 1, 1], [4, 1, 0, 0]], 50072649),
                                        ("test", [[0, 1, 0, 0], [7, 1, 0, 0], [5, 0, 1, 1]], 3084743)]:
        attributes = colour(split)[2]
        assert attributes[:3].tolist() == first_rows
        assert (attributes * torch.arange(1, len(attributes) + 1)[:, None]).sum().item() == checksum
    x = colour("test")[0].double()
    assert x.sum((0, 2, 3)).tolist() == pytest.approx([107444.1876, 70959.6404, 144840.8858], rel=1e-6)


def test_every_drawn_pair_contrasts_and_every_ink_has_several_backgrounds():
    attributes = torch.cat([colour("train")[2], colour("test")[2]])
    pairs = attributes[:, :2].unique(dim=0)
    ink, bg = INKS[pairs[:, 0]], BGS[pairs[:, 1]]
    assert (ink @ LUMA - bg @ LUMA).min() >= MIN_LUMINANCE_GAP
    assert (ink - bg).norm(dim=1).min() >= MIN_RGB_DISTANCE
    assert torch.bincount(pairs[:, 0], minlength=len(INK_COLOURS)).min() >= 2
    assert (INKS @ LUMA).min() - BGS[0] @ LUMA >= MIN_LUMINANCE_GAP  # "black" suits every ink


def test_to_grey_of_a_colour_digit_is_an_affine_function_of_its_grey_digit():
    x, _, attributes = colour("test")
    a, _ = grey("test")
    large = attributes[:, 2] == SIZES.index("large")
    torch.testing.assert_close(alpha(x[large], attributes[large]), a[large, 0], rtol=0, atol=1e-5)
    white_on_black = large & (attributes[:, 0] == list(INK_COLOURS).index("white")) & (attributes[:, 1] == 0)
    assert white_on_black.sum() > 10
    torch.testing.assert_close(to_grey(x[white_on_black]), a[white_on_black], rtol=0, atol=1e-6)


def test_ink_pixels_have_the_named_ink_and_the_rest_the_named_background():
    x, _, attributes = colour("test")
    a, _ = grey("test")
    for i in torch.nonzero(attributes[:, 2] == SIZES.index("large")).flatten()[:100].tolist():
        names = describe_attributes(attributes[i])
        ink, bg = colour_of(names["ink"]), colour_of(names["background"])
        pixels, mask = x[i].flatten(1).T, a[i].flatten()  # (784, 3), (784,)
        torch.testing.assert_close(pixels[mask == 1], ink.expand_as(pixels[mask == 1]), rtol=0, atol=1e-6)
        torch.testing.assert_close(pixels[mask == 0], bg.expand_as(pixels[mask == 0]), rtol=0, atol=1e-6)
        inked = pixels[mask > 0.5]
        assert ((inked - ink).norm(dim=1) < (inked - bg).norm(dim=1)).all()


def test_small_digits_stay_whole_and_sit_on_the_named_side():
    x, _, attributes = colour("train")
    a, _ = grey("train")
    small = attributes[:, 2] == SIZES.index("small")
    shrunk = alpha(x[small], attributes[small])
    assert shrunk.min() > -1e-4 and shrunk.max() < 1 + 1e-4
    # Nothing cut off at the frame: the ink shrinks with the area, (16/28)^2 = 0.33 of the large digit's.
    kept = shrunk.sum((1, 2)) / a[small].sum((1, 2, 3))
    assert kept.min() > 0.27 and kept.max() < 0.39
    rows, cols = torch.arange(28.0).view(1, 28, 1), torch.arange(28.0).view(1, 1, 28)
    dy = (shrunk * rows).sum((1, 2)) / shrunk.sum((1, 2)) - 14  # the digit's centre of mass, from the frame's
    dx = (shrunk * cols).sum((1, 2)) / shrunk.sum((1, 2)) - 14
    expected = {"centre": (0, 0), "left": (0, -1), "right": (0, 1), "top": (-1, 0), "bottom": (1, 0)}
    for p, name in enumerate(POSITIONS):
        here = attributes[small, 3] == p
        assert here.sum() > 100
        for d, sign in zip((dy[here], dx[here]), expected[name]):
            assert (d * sign >= 4).all() if sign else (d.abs() < 1).all(), name


def test_unknown_name_lists_colour_digits_and_the_american_spelling_works():
    with pytest.raises(ValueError, match="Unknown dataset") as err:
        load_dataset("colour_mnist", source="bundled")
    assert "colour_digits" in str(err.value) and "mnist" in str(err.value)
    x, y, attributes = colour("test")
    for spelling in ("color_digits", "Color-Digits"):
        x2, y2, attributes2 = load_dataset(spelling, "test", source="bundled").tensors
        assert torch.equal(x2, x) and torch.equal(y2, y) and torch.equal(attributes2, attributes)


def test_attributes_are_roughly_balanced():
    _, _, attributes = colour("train")
    ink = torch.bincount(attributes[:, 0], minlength=len(INK_COLOURS)) / len(attributes)
    assert ink.min() > 0.08 and ink.max() < 0.17
    assert torch.bincount(attributes[:, 1], minlength=len(BACKGROUNDS)).min() > 0.08 * len(attributes)
    small = attributes[:, 2] == SIZES.index("small")
    assert 0.45 < small.float().mean() < 0.55
    assert (attributes[~small, 3] == POSITIONS.index("centre")).all()
    position = torch.bincount(attributes[small, 3], minlength=len(POSITIONS)) / small.sum()
    assert position.min() > 0.15 and position.max() < 0.25


def test_helpers_name_things_and_say_what_to_type():
    assert describe_attributes([7, 3, 0, 0]) == {"ink": "white", "background": "maroon", "size": "large",
                                                 "position": "centre"}
    torch.testing.assert_close(colour_of("navy"), torch.tensor([0.0, 0.0, 0.4]))
    with pytest.raises(ValueError, match="Valid names: red, orange") as err:
        colour_of("pink")
    assert "black" in str(err.value)
    with pytest.raises(ValueError, match=r"describe_attributes\(attributes\[0\]\)"):
        describe_attributes(torch.zeros(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="N, 3, H, W"):
        to_grey(torch.rand(2, 1, 28, 28))


def test_changing_a_loaded_dataset_does_not_change_the_next_load():
    x, _, attributes = colour("test")
    x.zero_()
    attributes.zero_()
    x, _, attributes = colour("test")
    assert x.sum() > 0 and attributes.sum() > 0
