"""Lesson 8, editing with a diffusion model: SDEdit's start and its loop (with an oracle that knows the clean image,
any strength must return it), RePaint's merge, its re-noising (its marginal against q_sample by Monte Carlo) and its
loop, the damaged inputs `sketch` and `stamp` (counted pixel by pixel), and pix2pix from grey to colour."""

import math

import pytest
import torch

from course_lib.config import one_thread
from course_lib.data import load_dataset, to_grey
from course_lib.diffusion import DiffusionSchedule, q_sample, to_model_range
from course_lib.editing import _renoise, repaint, repaint_merge, sdedit, sdedit_start, sketch, stamp
from course_lib.pix2pix import PatchDiscriminator, Pix2Pix, Pix2PixGenerator, Pix2PixStep


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """These tensors are tiny: one thread is faster, and much faster when other work shares the cores."""
    with one_thread():
        yield


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", n=16, source="bundled").tensors[0]  # (16, 1, 28, 28) in [0, 1]


@pytest.fixture(scope="module")
def schedule():
    return DiffusionSchedule(T=1000)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def oracle(schedule: DiffusionSchedule, clean: torch.Tensor, calls: list | None = None):
    """The noise predictor that knows the clean images (in [0, 1]): eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t).
    Every exact sampler started anywhere must end on x0. `calls` records (t, x_t) of each call."""
    x0 = to_model_range(clean)

    def eps_model(x, t):
        if calls is not None:
            calls.append((t.clone(), x.clone()))
        abar = schedule.alpha_bars[t].view(-1, 1, 1, 1)
        return (x - abar.sqrt() * x0) / (1 - abar).sqrt()

    return eps_model


def never_called(x, t):
    raise AssertionError("the model should not be called")


# ---------------------------------------------------------------- SDEdit


def test_sdedit_start_goes_from_the_input_to_pure_noise(schedule, digits):
    x, eps = digits[:4], torch.randn(4, 1, 28, 28, generator=seeded(0))
    x_t0, t0 = sdedit_start(schedule, x, 0.0, eps)
    assert t0 == 0 and x_t0.shape == x.shape
    assert (x_t0 - to_model_range(x)).abs().max() < 0.06  # sqrt(1 - abar_0) = 0.01: the input, in [-1, 1]
    x_t0, t0 = sdedit_start(schedule, x, 1.0, eps)
    assert t0 == schedule.T - 1
    x_t0, t0 = sdedit_start(schedule, x, 0.3, eps)
    assert t0 == round(0.3 * (schedule.T - 1))
    torch.testing.assert_close(x_t0, q_sample(schedule, to_model_range(x), t0, eps))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="strength is how far to noise the input"):
            sdedit_start(schedule, x, bad, eps)


def test_sdedit_at_strength_zero_returns_the_input_untouched(schedule, digits):
    x = digits[:3]
    out = sdedit(never_called, schedule, x, strength=0.0)
    assert torch.equal(out, x) and out is not x


@pytest.mark.parametrize("strength", [0.1, 0.5, 1.0])
def test_sdedit_with_an_oracle_returns_the_clean_image_and_walks_t0_down_to_0(schedule, digits, strength):
    clean, rough = digits[:4], digits[4:8]  # the oracle knows `clean`; SDEdit starts from another digit
    calls = []
    out = sdedit(oracle(schedule, clean, calls), schedule, rough, strength, steps=20, generator=seeded(3))
    torch.testing.assert_close(out, clean, atol=1e-4, rtol=0)
    ts = [int(t[0]) for t, _ in calls]
    t0 = round(strength * (schedule.T - 1))
    assert len(ts) == max(1, round(20 * strength))
    assert ts[0] == t0 and ts[-1] == 0 and all(a > b for a, b in zip(ts, ts[1:]))
    eps = torch.randn(rough.shape, generator=seeded(3))  # the same draw SDEdit makes first
    torch.testing.assert_close(calls[0][1], q_sample(schedule, to_model_range(rough), t0, eps))


# ---------------------------------------------------------------- RePaint


def lower_half_unknown() -> torch.Tensor:
    mask = torch.ones(1, 1, 28, 28)
    mask[..., 14:, :] = 0
    return mask


def test_repaint_merge_puts_the_known_pixels_back_noised_to_the_step(schedule):
    generated = torch.randn(2, 1, 28, 28, generator=seeded(0))
    known = torch.rand(2, 1, 28, 28, generator=seeded(1)) * 2 - 1
    eps = torch.randn(2, 1, 28, 28, generator=seeded(2))
    mask = lower_half_unknown()  # broadcast over the batch
    end = repaint_merge(schedule, generated, known, mask, -1, eps)
    assert torch.equal(end[..., :14, :], known[..., :14, :])  # t = -1: exactly the known image
    assert torch.equal(end[..., 14:, :], generated[..., 14:, :])
    mid = repaint_merge(schedule, generated, known, mask, 300, eps)
    torch.testing.assert_close(mid[..., :14, :], q_sample(schedule, known, 300, eps)[..., :14, :])
    assert torch.equal(mid[..., 14:, :], generated[..., 14:, :])


@pytest.mark.parametrize("t_from, t_to", [(0, 1), (100, 600), (500, 999)])
def test_renoise_has_the_marginal_of_q_sample_at_the_later_step(schedule, t_from, t_to):
    """x_{t_from} ~ q(. | x0), then _renoise to t_to: mean sqrt(abar_to) x0 and variance 1 - abar_to, as if q_sample
    had noised x0 to t_to directly (Monte Carlo over 20000 pixels, within 4 standard errors)."""
    n, x0 = 20000, 0.6
    g = seeded(t_to)
    x_from = q_sample(schedule, torch.full((n,), x0), t_from, torch.randn(n, generator=g))
    x_to = _renoise(schedule, x_from, t_from, t_to, torch.randn(n, generator=g))
    abar = schedule.alpha_bars[t_to].item()
    mean, var = math.sqrt(abar) * x0, 1 - abar
    assert abs(x_to.mean().item() - mean) < 4 * math.sqrt(var / n)
    assert abs(x_to.var().item() - var) < 4 * var * math.sqrt(2 / (n - 1))


def test_repaint_with_an_oracle_fills_in_the_clean_image(schedule, digits):
    clean = digits[:3]
    mask = lower_half_unknown()
    known = clean.clone()
    known[..., 14:, :] = 1.0  # what lies under the unknown part must not matter
    out = repaint(oracle(schedule, clean), schedule, known, mask, steps=8, resample=2, generator=seeded(0))
    torch.testing.assert_close(out, clean, atol=1e-4, rtol=0)
    torch.testing.assert_close(out[..., :14, :], known[..., :14, :], atol=1e-6, rtol=0)


def test_repaint_keeps_the_known_pixels_whatever_the_model_says(schedule, digits):
    known, mask = digits[:2], lower_half_unknown()

    def confused(x, t):  # a model that is wrong everywhere
        return torch.randn(x.shape, generator=seeded(int(t[0])))

    out = repaint(confused, schedule, known, mask, steps=5, resample=3, generator=seeded(1))
    assert out.shape == known.shape and out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out[..., :14, :], known[..., :14, :], atol=1e-6, rtol=0)
    again = repaint(confused, schedule, known, mask, steps=5, resample=3, generator=seeded(1))
    assert torch.equal(out, again)  # a seed reproduces the fill


def test_repaint_returns_the_known_pixels_exactly(schedule, digits):
    """The docstring's promise: "images in [0, 1] whose known pixels are exactly `known`'s" (torch.equal, which is
    what a student checks), not only up to the rounding of the trip to [-1, 1] and back."""
    known, mask = digits[:4], lower_half_unknown()
    out = repaint(lambda x, t: torch.zeros_like(x), schedule, known, mask, steps=3, resample=1, generator=seeded(0))
    assert torch.equal(out * mask, known * mask)


def test_repaint_refuses_a_soft_mask_and_no_rounds(schedule, digits):
    known = digits[:1]
    with pytest.raises(ValueError, match="mask holds 1 where a pixel is known"):
        repaint(never_called, schedule, known, torch.full((1, 1, 28, 28), 0.5))
    with pytest.raises(ValueError, match="resample is how many times"):
        repaint(never_called, schedule, known, lower_half_unknown(), resample=0)


# ---------------------------------------------------------------- damaged inputs


def test_sketch_of_a_filled_rectangle_is_its_one_pixel_inner_outline():
    y = torch.zeros(1, 1, 28, 28)
    y[..., 5:15, 8:16] = 0.9  # 10 tall, 8 wide
    outline = sketch(y)
    expected = torch.zeros(1, 1, 28, 28)
    expected[..., 5:15, 8:16] = 1.0
    expected[..., 6:14, 9:15] = 0.0  # the inside
    assert torch.equal(outline, expected)
    assert outline.sum().item() == 2 * 8 + 2 * (10 - 2)
    assert sketch(torch.zeros(2, 1, 28, 28)).sum().item() == 0  # nothing drawn, nothing to outline
    assert sketch(torch.full((1, 1, 28, 28), 0.4)).sum().item() == 0  # below the threshold: no ink


def test_sketch_of_digits_is_a_thinner_drawing_on_the_digits_ink(digits):
    ink = (digits > 0.5).float()
    outline = sketch(digits)
    assert set(outline.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(outline <= ink)  # every line of the sketch lies on the digit's ink
    kept = outline.flatten(1).sum(1) / ink.flatten(1).sum(1)
    assert torch.all(kept > 0)  # each digit keeps an outline
    assert kept.min() < 0.75 and outline.sum() < 0.95 * ink.sum()  # and thick strokes lose their body (thin ones
    # are all outline already)


def test_stamp_marks_one_12x12_window_per_image_and_a_seed_reproduces_it():
    y = torch.zeros(6, 3, 28, 28)
    marked = stamp(y, seeded(0), opacity=0.6)
    assert torch.equal(marked, stamp(y, seeded(0), opacity=0.6))
    assert not torch.equal(marked, stamp(y, seeded(1), opacity=0.6))
    assert torch.equal(y, torch.zeros(6, 3, 28, 28))  # the input is left as it was
    for image in marked:
        assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])  # white: the same on every channel
        rows, cols = image[0].nonzero(as_tuple=True)
        assert rows.max() - rows.min() == 11 and cols.max() - cols.min() == 11  # one 12 x 12 window
        assert len(rows) == 44 + 24 - 4  # the square's outline and its two diagonals (which share its 4 corners)
        assert torch.allclose(image[0][rows, cols], torch.tensor(0.6))


def test_stamp_blends_with_the_opacity(digits):
    y = digits[:4]
    assert torch.equal(stamp(y, seeded(2), opacity=0.0), y)
    marked = stamp(y, seeded(2), opacity=0.5)
    changed = marked != y
    torch.testing.assert_close(marked[changed], 0.5 * y[changed] + 0.5)  # the digit shows through half
    assert torch.all(marked >= y)  # a white mark only brightens


# ---------------------------------------------------------------- pix2pix from grey to colour


@pytest.fixture(scope="module")
def colour_digits():
    return load_dataset("colour_digits", n=16, source="bundled").tensors[0]  # (16, 3, 28, 28)


def test_pix2pix_networks_take_a_grey_condition_and_a_colour_image(colour_digits):
    torch.manual_seed(0)
    y = colour_digits[:4]
    x = to_grey(y)
    assert x.shape == (4, 1, 28, 28)
    out = Pix2PixGenerator(out_channels=3)(x)
    assert out.shape == (4, 3, 28, 28) and out.min() >= 0 and out.max() <= 1
    D = PatchDiscriminator(in_channels=4)
    assert D(x, y).shape == (4, 1, 7, 7)
    with pytest.raises(ValueError, match="same shape"):
        D(x[:2], y)


def test_pix2pix_generator_takes_as_many_input_channels_as_it_is_built_with(colour_digits):
    torch.manual_seed(0)
    out = Pix2PixGenerator(in_channels=3)(colour_digits[:2])  # colour -> grey, the other way round
    assert out.shape == (2, 1, 28, 28)


def test_pix2pix_step_colours_grey_digits_and_lowers_the_l1(colour_digits):
    torch.manual_seed(0)
    model = Pix2Pix(Pix2PixGenerator(width=16, out_channels=3), PatchDiscriminator(width=16, in_channels=4))
    step = Pix2PixStep(model, task=to_grey, lr=1e-3)  # a larger step than pix2pix's 2e-4, to see it in 20 steps
    model.train()
    logs = [step(model, (colour_digits, None)) for _ in range(20)]
    assert set(logs[0]) == {"g_loss", "l1", "d_loss", "d_real", "d_fake"}
    assert all(math.isfinite(v) for entry in logs for v in entry.values())
    l1 = [entry["l1"] for entry in logs]
    assert sum(l1[-3:]) / 3 < 0.75 * sum(l1[:3]) / 3
    assert model.translate(to_grey(colour_digits[:2])).shape == (2, 3, 28, 28)
