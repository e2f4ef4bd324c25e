"""Lesson 9, flow matching: the straight path and its loss (checked by hand on a fixed seed), FlowNet's time scaling
and labels, the Euler and Heun samplers on velocity fields whose exact flow is known (one straight line; a Gaussian
carried to a Gaussian, where Heun's error falls as 1/steps^2 and Euler's as 1/steps), straightness, reflow pairs
and one-step distillation."""

import math

import pytest
import torch
from torch import nn

from course_lib.conditional import GuidedModel
from course_lib.config import one_thread
from course_lib.diffusion import to_image_range, to_model_range
from course_lib.diffusion_theory import TimeMLP
from course_lib.flow import (
    FlowNet,
    FlowPath,
    distill_loss,
    distill_step,
    flow_matching_loss,
    flow_step,
    interpolate,
    pair_step,
    reflow_pairs,
    sample_flow,
    straightness,
    time_grid,
)
from course_lib.training import fit
from course_lib.unet import UNet


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """These tensors are tiny: one thread is faster, and much faster when other work shares the cores."""
    with one_thread():
        yield


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """t (B,) shaped to broadcast over `like` (B, ...)."""
    return t.view(-1, *([1] * (like.dim() - 1)))


def gaussian_velocity(m, s):
    """The exact (marginal) velocity field that carries N(0, I) to N(m, s^2) (per coordinate), for data x_0 ~ N(m, s^2)
    and eps ~ N(0, 1) joined by x_t = (1 - t) x_0 + t eps.

    x_t is Gaussian with mean (1 - t) m and variance V = (1 - t)^2 s^2 + t^2, and the line's velocity u = eps - x_0
    has mean -m and Cov(u, x_t) = t - (1 - t) s^2, so E[u | x_t] = -m + (t - (1 - t) s^2) / V (x_t - (1 - t) m).
    Its flow keeps each point's standardised position (x - mean) / std, so from t = 1 to t = 0 it maps eps to
    m + s eps exactly: the reference for the solvers' error."""
    m, s = torch.as_tensor(m, dtype=torch.float32), torch.as_tensor(s, dtype=torch.float32)

    def velocity(x, t):
        t = per_sample(t, x)
        v = (1 - t) ** 2 * s**2 + t**2
        return -m + (t - (1 - t) * s**2) / v * (x - (1 - t) * m)

    return velocity


class Recorder(nn.Module):
    """A fake network that records what it is given and returns a velocity built from it: x * (1 + y) + t / 1000."""

    def __init__(self, num_classes: int | None = None):
        super().__init__()
        self.num_classes, self.calls = num_classes, []

    def forward(self, x, t, *rest):
        self.calls.append((t.clone(), [r.clone() for r in rest]))
        scale = 1.0 if not rest else 1.0 + per_sample(rest[0].float(), x)
        return x * scale + per_sample(t, x) / 1000


# ---------------------------------------------------------------- the path and the loss


def test_interpolate_runs_from_the_data_at_0_to_the_noise_at_1():
    x0, eps = torch.rand(3, 1, 4, 4, generator=seeded(0)), torch.randn(3, 1, 4, 4, generator=seeded(1))
    assert torch.equal(interpolate(x0, eps, 0.0), x0) and torch.equal(interpolate(x0, eps, 1.0), eps)
    mixed = interpolate(x0, eps, torch.tensor([0.0, 0.25, 1.0]))  # one t per sample
    assert torch.equal(mixed[0], x0[0]) and torch.equal(mixed[2], eps[2])
    assert torch.allclose(mixed[1], 0.75 * x0[1] + 0.25 * eps[1])


def test_the_loss_is_the_hand_computed_one_with_t_drawn_before_eps():
    x0 = torch.rand(6, 1, 5, 5, generator=seeded(0))
    model = lambda x, t: 0.5 * x + per_sample(t, x)  # noqa: E731
    loss = flow_matching_loss(model, x0, seeded(7))
    g = seeded(7)
    t = torch.rand(6, generator=g)
    eps = torch.randn(x0.shape, generator=g)
    x0m = 2 * x0 - 1
    x_t = (1 - per_sample(t, x0m)) * x0m + per_sample(t, x0m) * eps
    by_hand = (model(x_t, t) - (eps - x0m)).pow(2).mean()
    assert torch.isclose(loss, by_hand, rtol=1e-6)
    assert loss == flow_matching_loss(model, x0, seeded(7))  # reproducible from the generator


@pytest.mark.parametrize("kind", ["digit-like (0 or 1)", "uniform"])
def test_a_zero_model_scores_one_plus_the_mean_square_of_the_data(kind):
    """E||eps - x_0||^2 per pixel = E[eps^2] + E[x_0^2] = 1 + E[x_0^2], x_0 in [-1, 1]: 2 for ink-or-paper digits."""
    u = torch.rand(64, 1, 28, 28, generator=seeded(1))
    x0 = (u > 0.8).float() if kind.startswith("digit") else u
    expected = 1 + to_model_range(x0).pow(2).mean().item()
    zero = flow_matching_loss(lambda x, t: torch.zeros_like(x), x0, seeded(2)).item()
    assert zero == pytest.approx(expected, abs=0.03)


def test_given_noise_is_used_as_each_images_own_pair():
    x0, eps = torch.rand(1, 1, 4, 4, generator=seeded(0)), torch.randn(1, 1, 4, 4, generator=seeded(1))
    line = lambda x, t: eps - to_model_range(x0)  # noqa: E731  the velocity of this one pair's straight line
    assert flow_matching_loss(line, x0, seeded(2), noise=eps).item() < 1e-12
    assert flow_matching_loss(line, x0, seeded(2)).item() > 0.1  # with fresh noise it is the wrong line
    # with noise given, only t is drawn from the generator
    model = lambda x, t: x * per_sample(t, x)  # noqa: E731
    t = torch.rand(1, generator=seeded(3))
    x_t = interpolate(to_model_range(x0), eps, t)
    by_hand = (model(x_t, t) - (eps - to_model_range(x0))).pow(2).mean()
    assert torch.isclose(flow_matching_loss(model, x0, seeded(3), noise=eps), by_hand, rtol=1e-6)


def test_the_loss_refuses_mismatched_noise_and_images_outside_0_1():
    x0 = torch.rand(4, 1, 4, 4)
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    with pytest.raises(ValueError, match=r"one eps with each x0, shaped \(4, 1, 4, 4\); got \(3, 1, 4, 4\)"):
        flow_matching_loss(zero, x0, noise=torch.randn(3, 1, 4, 4))
    with pytest.raises(ValueError, match=r"map them to \[0, 1\] with \(x \+ 1\) / 2"):
        flow_matching_loss(zero, 2 * x0 - 1)
    with pytest.raises(ValueError, match="divide by 255"):
        flow_matching_loss(zero, 255 * x0)


def test_with_image_range_false_points_are_used_as_they_are():
    points = 3 * torch.randn(8, 2, generator=seeded(0))  # far outside [0, 1]: no error, no mapping
    model = lambda x, t: -x  # noqa: E731
    loss = flow_matching_loss(model, points, seeded(1), image_range=False)
    g = seeded(1)
    t = torch.rand(8, generator=g)
    eps = torch.randn(points.shape, generator=g)
    x_t = interpolate(points, eps, t)
    assert torch.isclose(loss, (-x_t - (eps - points)).pow(2).mean(), rtol=1e-6)


# ---------------------------------------------------------------- FlowNet


def test_flownet_feeds_the_network_1000_t_and_refuses_t_outside_0_1():
    rec = Recorder()
    flow = FlowNet(rec)
    t = torch.tensor([0.0, 0.25, 1.0])
    flow(torch.zeros(3, 2), t)
    assert torch.equal(rec.calls[-1][0], 1000 * t)
    flow(torch.zeros(3, 2), 0.5)  # one number for the batch
    assert torch.equal(rec.calls[-1][0], torch.full((3,), 500.0))
    for bad in (torch.tensor([0.5, 1.5, 0.0]), torch.tensor([-0.1, 0.0, 0.0]), torch.tensor([999, 0, 0])):
        with pytest.raises(ValueError, match=r"from 0 \(data\) to 1 \(noise\).*torch\.rand\(B\)"):
            flow(torch.zeros(3, 2), bad)


def test_flownet_on_a_unet_is_the_unet_at_1000_t():
    torch.manual_seed(0)
    unet = UNet(channels=(8, 16, 16), time_dim=32).eval()
    x, t = torch.randn(2, 1, 28, 28, generator=seeded(1)), torch.tensor([0.1, 0.9])
    with torch.no_grad():
        assert torch.equal(FlowNet(unet)(x, t), unet(x, 1000 * t))
    assert FlowNet(unet).num_classes is None and FlowNet(UNet(channels=(8, 16, 16), num_classes=10)).num_classes == 10


def test_flownet_forwards_labels_only_when_given():
    rec = Recorder(num_classes=3)
    flow = FlowNet(rec)
    assert flow.num_classes == 3
    flow(torch.ones(2, 2), torch.tensor([0.5, 0.5]))
    assert rec.calls[-1][1] == []  # no label argument at all
    y = torch.tensor([2, 0])
    flow(torch.ones(2, 2), torch.tensor([0.5, 0.5]), y)
    assert len(rec.calls[-1][1]) == 1 and torch.equal(rec.calls[-1][1][0], y)


def test_guidance_works_on_a_class_conditional_flow():
    """Lesson 5's GuidedModel on a FlowNet: the guided velocity is u + w (c - u), with u the velocity for the empty
    label (num_classes) and c the one for the asked class; sampling uses it."""
    flow = FlowNet(Recorder(num_classes=3))
    labels, w = torch.tensor([0, 2]), 2.5
    guided = GuidedModel(flow, labels, w=w, fast=False)
    x, t = torch.randn(2, 1, 3, 3, generator=seeded(0)), torch.tensor([0.3, 0.8])
    c, u = flow(x, t, labels), flow(x, t, torch.full((2,), 3))
    assert torch.allclose(guided(x, t), u + w * (c - u))
    assert not torch.allclose(c, u)  # the check above would not see a missing label otherwise
    images, path = sample_flow(guided, noise=x, steps=1, image_range=False)
    assert torch.allclose(images, x - guided(x, torch.ones(2)))
    assert path.nfe == 1


# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_on_one_straight_line_one_step_is_exact(method):
    x0, eps = torch.rand(2, 1, 4, 4, generator=seeded(0)) * 2 - 1, torch.randn(2, 1, 4, 4, generator=seeded(1))
    line = lambda x, t: eps - x0  # noqa: E731
    for steps in (1, 3):
        images, _ = sample_flow(line, noise=eps, steps=steps, method=method, image_range=False)
        assert torch.allclose(images, x0, atol=1e-6)
    shown, _ = sample_flow(line, noise=eps, steps=1, method=method)
    assert torch.allclose(shown, to_image_range(x0), atol=1e-6)


def test_the_gaussian_velocity_field_is_exact():
    """The test's reference: many Heun steps on `gaussian_velocity` land where the closed form says."""
    m, s = torch.tensor([1.5, -0.5]), torch.tensor([0.5, 2.0])
    eps = torch.randn(200, 2, generator=seeded(0))
    x, _ = sample_flow(gaussian_velocity(m, s), noise=eps, steps=200, method="heun", image_range=False)
    assert torch.allclose(x, m + s * eps, atol=1e-3)


def test_heuns_error_falls_as_steps_squared_and_eulers_as_steps():
    m, s = torch.tensor([1.5, -0.5]), torch.tensor([0.5, 2.0])
    eps = torch.randn(256, 2, generator=seeded(0))
    exact, velocity = m + s * eps, gaussian_velocity(m, s)

    def error(method, steps):
        x, _ = sample_flow(velocity, noise=eps, steps=steps, method=method, image_range=False)
        return (x - exact).abs().max().item()

    euler, heun = [error("euler", k) for k in (4, 8, 16)], [error("heun", k) for k in (4, 8, 16)]
    for a, b in zip(euler, euler[1:]):
        assert 1.6 < a / b < 2.5  # order 1: twice the steps, half the error
    for a, b in zip(heun, heun[1:]):
        assert 3.5 < a / b < 6.0  # order 2: twice the steps, a quarter of the error
    assert heun[1] < euler[2]  # at the same 16 network calls Heun is closer


@pytest.mark.parametrize("method, steps, expected", [("euler", 5, 5), ("heun", 5, 9), ("heun", 1, 1)])
def test_nfe_counts_the_network_calls(method, steps, expected):
    """Euler: one call per step. Heun: two per step, except the last step, which is Euler's (no call at t = 0)."""
    calls = []

    def model(x, t):
        calls.append(t.clone())
        return -x

    _, path = sample_flow(model, n=3, steps=steps, method=method, shape=(2,), image_range=False)
    assert path.nfe == len(calls) == expected
    assert path.x == [] and path.v == []  # without record only the calls are counted
    assert all(t.shape == (3,) and 0 <= t.min() <= t.max() <= 1 for t in calls)
    assert all(t.min() > 0 for t in calls)  # the network is never asked at t = 0


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_a_recorded_run_holds_every_state_and_velocity(method):
    eps = torch.randn(4, 2, generator=seeded(0))
    x, path = sample_flow(gaussian_velocity(1.0, 0.5), noise=eps, steps=4, method=method, record=True,
                          image_range=False)
    assert path.t == [1.0, 0.75, 0.5, 0.25, 0.0] and len(path.x) == 5 and len(path.v) == 4
    assert torch.equal(path.x[0], eps) and torch.equal(path.x[-1], x)
    for k in range(4):  # each state is the one before moved by its recorded velocity
        assert torch.allclose(path.x[k + 1], path.x[k] + (path.t[k + 1] - path.t[k]) * path.v[k], atol=1e-6)


def test_sampling_is_reproducible_from_a_generator():
    model = gaussian_velocity(0.0, 0.5)
    a, _ = sample_flow(model, n=4, steps=3, generator=seeded(0), shape=(2,), image_range=False)
    b, _ = sample_flow(model, n=4, steps=3, generator=seeded(0), shape=(2,), image_range=False)
    c, _ = sample_flow(model, n=4, steps=3, generator=seeded(1), shape=(2,), image_range=False)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_method_and_steps_say_what_to_type():
    model = lambda x, t: x  # noqa: E731
    with pytest.raises(ValueError, match='method="euler" or method="heun"'):
        sample_flow(model, n=2, method="rk4", shape=(2,))
    for steps in (0, 2.5, -1):
        with pytest.raises(ValueError, match="whole number >= 1"):
            sample_flow(model, n=2, steps=steps, shape=(2,))
    with pytest.raises(ValueError, match=r"velocity shaped like x \(2, 2\), got \(2, 3\)"):
        sample_flow(lambda x, t: torch.zeros(2, 3), n=2, shape=(2,))


def test_time_grid_runs_evenly_from_1_to_0():
    assert time_grid(4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert time_grid(1) == [1.0, 0.0]
    grid = time_grid(7)
    assert len(grid) == 8 and grid[0] == 1.0 and grid[-1] == 0.0
    assert all(math.isclose(a - b, 1 / 7) for a, b in zip(grid, grid[1:]))


# ---------------------------------------------------------------- straightness, reflow, distillation


def test_straightness_is_0_for_a_straight_flow_and_positive_for_a_curved_one():
    eps = torch.randn(32, 2, generator=seeded(0))
    _, straight = sample_flow(lambda x, t: torch.full_like(x, 0.7), noise=eps, steps=6, record=True,
                              image_range=False)
    assert straightness(straight) < 1e-10
    quarter_turn = torch.tensor([[0.0, 1.0], [-1.0, 0.0]]) * (math.pi / 2)  # points move on quarter circles
    _, curved = sample_flow(lambda x, t: x @ quarter_turn, noise=eps, steps=6, record=True, image_range=False)
    assert straightness(curved) > 0.1
    with pytest.raises(ValueError, match="record=True"):
        straightness(FlowPath())


def test_reflow_pairs_are_images_and_the_noise_that_the_flow_carries_to_them():
    velocity = gaussian_velocity(0.5, 0.8)  # in [-1, 1]: some samples beyond 1, clipped to white
    pairs = reflow_pairs(velocity, n=10, steps=6, method="heun", batch_size=4, generator=seeded(0), shape=(1, 3, 3))
    images, noise = pairs.tensors
    assert images.shape == noise.shape == (10, 1, 3, 3)
    assert images.min() >= 0 and images.max() == 1.0  # in [0, 1], clipped
    again, _ = sample_flow(velocity, noise=noise, steps=6, method="heun")
    assert torch.equal(again, images)  # deterministic: the noise gives back its image
    assert torch.allclose(images, to_image_range(0.5 + 0.8 * noise), atol=0.03)  # where the exact flow goes
    same = reflow_pairs(velocity, n=10, steps=6, method="heun", batch_size=4, generator=seeded(0), shape=(1, 3, 3))
    other = reflow_pairs(velocity, n=10, steps=6, method="heun", batch_size=4, generator=seeded(1), shape=(1, 3, 3))
    assert torch.equal(same.tensors[1], noise) and not torch.equal(other.tensors[1], noise)


def test_reflow_pairs_of_points_are_not_clipped():
    m, s = torch.tensor([3.0, -3.0]), torch.tensor([0.5, 0.5])
    velocity = gaussian_velocity(m, s)
    pairs = reflow_pairs(velocity, n=50, steps=16, generator=seeded(0), shape=(2,), image_range=False)
    points, noise = pairs.tensors
    assert points[:, 0].min() > 1.0 and points[:, 1].max() < -1.0
    assert torch.equal(points, sample_flow(velocity, noise=noise, steps=16, method="heun", image_range=False)[0])
    assert torch.allclose(points, m + s * noise, atol=0.03)


def test_the_rectified_field_fits_its_pairs_exactly_and_fresh_noise_does_not():
    """Pairs (x_0, eps) with x_0 = m + s eps: the straight lines between them do not cross, so one velocity field
    v(x, t) = (1 - s) (x - (1 - t) m) / ((1 - t) s + t) - m follows every one. pair_step's loss is 0 for it;
    flow_step's, with fresh independent noise, is not."""
    m, s = 1.0, 0.5
    noise = torch.randn(64, 2, generator=seeded(0))
    pairs = (m + s * noise, noise)

    def rectified(x, t):
        t = per_sample(t, x)
        return (1 - s) * (x - (1 - t) * m) / ((1 - t) * s + t) - m

    assert pair_step(seeded(1), image_range=False)(rectified, pairs).item() < 1e-10
    assert flow_step(seeded(1), image_range=False)(rectified, pairs).item() > 0.1


def test_flow_step_reads_images_from_any_batch_form():
    x0 = torch.rand(4, 1, 3, 3, generator=seeded(0))
    model = lambda x, t: 0.3 * x  # noqa: E731
    expected = flow_matching_loss(model, x0, seeded(1))
    for batch in ((x0, torch.zeros(4, dtype=torch.long)), (x0,), x0):
        assert torch.equal(flow_step(seeded(1))(model, batch), expected)
    noise = torch.randn(4, 1, 3, 3, generator=seeded(2))
    assert torch.equal(pair_step(seeded(1))(model, (x0, noise)), flow_matching_loss(model, x0, seeded(1), noise=noise))


@pytest.mark.parametrize("which", ["flow_step", "pair_step"])
def test_the_steps_train_a_small_flow_with_fit(which):
    torch.manual_seed(0)
    model = FlowNet(TimeMLP(hidden=32, time_dim=16))
    noise = torch.randn(256, 2, generator=seeded(0))
    points = torch.tensor([1.0, -1.0]) + 0.3 * noise
    step = (flow_step if which == "flow_step" else pair_step)(seeded(1), image_range=False)
    batches = [(points[i:i + 64], noise[i:i + 64]) for i in range(0, 256, 64)] * 25
    history = fit(model, batches, step, torch.optim.Adam(model.parameters(), 1e-2), epochs=1, progress=False)
    losses = history.steps["loss"]
    assert len(losses) == 100 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])


def test_distillation_is_0_for_a_model_whose_one_step_lands_on_each_image():
    images = torch.rand(5, 1, 3, 3, generator=seeded(0))
    noise = torch.randn(5, 1, 3, 3, generator=seeded(1))
    seen = []

    def one_step(x, t):  # v(eps, 1) = eps - x_0: one Euler step from t = 1 reaches x_0
        seen.append(t.clone())
        return x - to_model_range(images)

    assert distill_loss(one_step, images, noise).item() < 1e-12
    assert torch.equal(seen[0], torch.ones(5))
    zero = distill_loss(lambda x, t: torch.zeros_like(x), images, noise)
    assert torch.isclose(zero, (noise - to_model_range(images)).pow(2).mean())
    assert torch.equal(distill_step()(one_step, (images, noise)), distill_loss(one_step, images, noise))
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        distill_loss(one_step, to_model_range(images), noise)
    sampled, _ = sample_flow(one_step, noise=noise, steps=1)
    assert torch.allclose(sampled, images, atol=1e-6)  # and steps=1 then samples the images
