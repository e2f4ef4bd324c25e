"""Lesson 9 exercises: a noise prediction read as a score, one Langevin step, the flow-matching loss, the Euler
sampler, one Heun step, and what the pairs of the one-step model cost.

The graders take their expected values from the library: `score_from_eps`, one step of `langevin` drawing from a
generator whose first draw is the z the student gets, `flow_matching_loss` drawing from a generator with the same seed
(t, then eps, in the library's order), `sample_flow` and `heun_step` on the same starting points. The flows are graded
with a stand-in velocity field, the exact one for data whose pixels are N(0.3, 0.5^2): it is smooth and curved in t,
so each typical slip gives numbers of its own, and the grader can name it. The loss and the sampler are graded on
images (B, 1, 28, 28) and on points in the plane (B, 2): the lesson trains and samples its 2-D toy with them.
"""

import math

import torch

from .. import recipes
from ..diffusion import DiffusionSchedule
from ..diffusion_theory import GaussianMixture2D
from ..flow import euler_step, flow_matching_loss, heun_step, sample_flow, time_grid
from ..scores import langevin, score_from_eps, ve_score
from ._base import Exercise, register, whole_number

_MU, _S = 0.3, 0.5  # the stand-in data: every pixel N(0.3, 0.5^2)


def _gaussian_velocity(x, t):
    """E[eps - x_0 | x_t] on the straight path x_t = (1 - t) x_0 + t eps when every pixel of x_0 is N(mu, s^2):
    the velocity a perfectly trained network would predict, in closed form."""
    t = torch.as_tensor(t, dtype=x.dtype)
    t = t.view(-1, *([1] * (x.dim() - 1))) if t.dim() else t
    var = (1 - t) ** 2 * _S**2 + t**2  # Var(x_t)
    return (t - (1 - t) * _S**2) / var * (x - (1 - t) * _MU) - _MU


class _TimeShapeError(Exception):
    """v_model was called with t shaped otherwise than FlowNet takes it."""


class _Velocity:
    """A stand-in v_model(x, t): `scale` times the Gaussian data's exact velocity, `scale` a learnable number (so a
    loss computed with it has a gradient). It accepts t as FlowNet does, one number or one per sample (B,), and keeps
    the inputs of every call, so a grader can say what went wrong, not only that something did."""

    def __init__(self, scale: float = 1.0, per_image: bool = False):
        self.scale = torch.tensor(scale, requires_grad=True)
        self.per_image = per_image  # the loss draws one t per sample: a single number there is a slip
        self.times: list[float] = []
        self.inputs: list[tuple[torch.Tensor, torch.Tensor]] = []  # (x, t) of every call

    def __call__(self, x, t):
        t = torch.as_tensor(t, dtype=x.dtype)
        if t.dim() > 1 or (t.dim() == 1 and len(t) != len(x)) or (self.per_image and t.dim() != 1):
            raise _TimeShapeError(tuple(t.shape))
        self.times.append(float(t.flatten()[0]))
        self.inputs.append((x.detach().clone(), t.detach().clone()))
        return self.scale * _gaussian_velocity(x, t)


_RESHAPE = "t.view(-1, *[1] * (x0.dim() - 1))"  # (B, 1, 1, 1) for images, (B, 1) for points


def _time_shape_hint(shape, batch):
    return (f"v_model was called with t shaped {shape}; it takes t shaped ({batch},), one time per sample, as "
            f"FlowNet does. Reshape a copy, {_RESHAPE}, for mixing x0 and eps only.")


# ---------------------------------------------------------------- scores


_SCHEDULE = DiffusionSchedule(T=1000)  # lesson 4's linear schedule


def score_solution(eps, abar_t):
    # x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps: the noise has standard deviation sqrt(1 - abar_t), and the score
    # points back against it: grad log q(x_t) = -eps / sqrt(1 - abar_t)
    return -eps / math.sqrt(1 - abar_t)


def _grade_score(fn):
    eps = torch.randn(4, 1, 6, 6, generator=torch.Generator().manual_seed(21))
    abar = _SCHEDULE.alpha_bars[300].item()  # about 0.39: the two square roots differ clearly
    got = fn(eps.clone(), abar)
    if got is None:
        return False, "your function returned None; return the score, a tensor shaped like eps."
    got, want = torch.as_tensor(got).float(), score_from_eps(eps, abar)
    if got.shape != want.shape:
        return False, f"the score is shaped like eps {tuple(eps.shape)}, got {tuple(got.shape)}."
    if torch.allclose(got, want, atol=1e-5):
        return True, ("the network's noise prediction is a score, up to the factor -1 / sqrt(1 - abar_t): lesson 4 "
                      "trained a score model without saying so.")
    if torch.allclose(got, -eps / math.sqrt(abar), atol=1e-5):
        return False, ("sqrt(abar_t) scales the image; the noise in x_t has standard deviation sqrt(1 - abar_t): "
                       "divide by that.")
    if torch.allclose(got, -want, atol=1e-5):
        return False, ("the minus sign is missing: the score points back towards the data, against the noise that "
                       "was added, so it is -eps / sqrt(1 - abar_t).")
    if torch.allclose(got, -eps / (1 - abar), atol=1e-5):
        return False, "divide by the standard deviation sqrt(1 - abar_t), not by the variance 1 - abar_t."
    if torch.allclose(got, -eps * math.sqrt(1 - abar), atol=1e-5):
        return False, "divide by sqrt(1 - abar_t), do not multiply: a small noise level means a large score."
    return False, "score = -eps / sqrt(1 - abar_t), with abar_t a number (math.sqrt works)."


def langevin_step_solution(score, x, delta, z):
    # x <- x + (delta / 2) grad log p(x) + sqrt(delta) z: half a step up the log-density, plus noise
    return x + delta / 2 * score(x) + math.sqrt(delta) * z


def _langevin_case():
    """The grader's points, score, step size and z; `langevin` fed a generator with the same seed draws this z."""
    ring, seed = GaussianMixture2D.ring(), 23
    x = 2 * torch.randn(64, 2, generator=torch.Generator().manual_seed(22))
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return (lambda points: ve_score(ring, points, sigma=0.3)), x, 0.05, z, seed


def _grade_langevin_step(fn):
    score, x, delta, z, seed = _langevin_case()
    got = fn(score, x.clone(), delta, z.clone())
    if got is None:
        return False, "your function returned None; return the new points, shaped like x."
    got = torch.as_tensor(got).float()
    if got.shape != x.shape:
        return False, f"the new points are shaped like x {tuple(x.shape)}, got {tuple(got.shape)}."
    want, _ = langevin(score, x, delta, 1, generator=torch.Generator().manual_seed(seed))  # its first draw is z
    if torch.allclose(got, want, atol=1e-5):
        return True, ("half a step up the log-density plus a little noise; repeated, the points spread out over p "
                      "instead of all piling onto its peaks.")
    s, drift = score(x), delta / 2 * score(x)
    if torch.allclose(got, x + delta * s + math.sqrt(delta) * z, atol=1e-5):
        return False, "the score's step is delta / 2: x + delta / 2 * score(x) + sqrt(delta) * z."
    if torch.allclose(got, x + drift + delta * z, atol=1e-5):
        return False, ("the noise is scaled by sqrt(delta), not delta: its variance, not its size, grows like the "
                       "step, which is what lets the chain settle on p.")
    if torch.allclose(got, x - drift + math.sqrt(delta) * z, atol=1e-5):
        return False, "add the score, do not subtract it: the score points up the log-density, towards the data."
    if torch.allclose(got, x + drift, atol=1e-5):
        return False, ("the noise is missing: add sqrt(delta) * z. Without it the step is gradient ascent, and every "
                       "point ends on a peak instead of spreading over p.")
    rest = (got - x - drift) / math.sqrt(delta)
    if 0.5 < rest.std().item() < 1.5:
        return False, "use the z you are given, not noise of your own (the checker compares with that z)."
    return False, "x + delta / 2 * score(x) + sqrt(delta) * z, with math.sqrt(delta)."


# ---------------------------------------------------------------- flow matching: the loss


def flow_loss_solution(v_model, x0, gen):
    # L = E || v(x_t, t) - (eps - x_0) ||^2 with x_t = (1 - t) x_0 + t eps, for a batch x0 in [-1, 1]
    t = torch.rand(len(x0), generator=gen)  # one time per sample in [0, 1], drawn first
    eps = torch.randn(x0.shape, generator=gen)  # then the noise
    t_ = t.view(-1, *[1] * (x0.dim() - 1))  # (B, 1, 1, 1) for images, (B, 1) for points: one t per sample
    x_t = (1 - t_) * x0 + t_ * eps  # the straight path from the data (t = 0) to the noise (t = 1)
    return (v_model(x_t, t) - (eps - x0)).pow(2).mean()  # its velocity is eps - x0, at every t


def _loss_variant(x0, seed, eps_first=False, swapped_ends=False, target_sign=1, remapped=False, total=False):
    """The flow-matching loss with one typical slip switched on (all off: the library's loss)."""
    gen, model = torch.Generator().manual_seed(seed), _Velocity(0.8, per_image=True)
    x0 = 2 * x0 - 1 if remapped else x0
    if eps_first:
        eps = torch.randn(x0.shape, generator=gen)
        t = torch.rand(len(x0), generator=gen)
    else:
        t = torch.rand(len(x0), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
    t_ = t.view(-1, 1, 1, 1)
    x_t = t_ * x0 + (1 - t_) * eps if swapped_ends else (1 - t_) * x0 + t_ * eps
    error = (model(x_t, t) - target_sign * (eps - x0)).pow(2)
    return (error.sum() if total else error.mean()).detach()


_FLOW_LOSS_MISTAKES = [
    (dict(target_sign=-1), "the target has the wrong sign: x_t moves from x0 (t = 0) to eps (t = 1), so its velocity "
                           "is eps - x0, not x0 - eps."),
    (dict(swapped_ends=True), "the path's ends are swapped: x_t = (1 - t) x0 + t eps is the data at t = 0 and the "
                              "noise at t = 1; sampling starts from noise at t = 1."),
    (dict(eps_first=True), "draw t first, then eps (the library's order), so the same seed gives the same numbers."),
    (dict(remapped=True), "x0 is already in [-1, 1]: use it as it is, without 2 * x0 - 1."),
    (dict(total=True), "take the mean over the pixels and the images (.mean()), not the sum."),
]


def _call_loss(fn, model, x0, seed):
    """(the student's loss, None) or (None, a hint) when the call went wrong in a way the grader can name."""
    try:
        return fn(model, x0.clone(), torch.Generator().manual_seed(seed)), None
    except _TimeShapeError as err:
        return None, _time_shape_hint(err.args[0], len(x0))
    except RuntimeError as err:
        if "must match the size" not in str(err):
            raise
        return None, (f"shapes do not broadcast for x0 shaped {tuple(x0.shape)} ({err}): t is shaped (B,); reshape "
                      f"a copy to one number per sample, {_RESHAPE}, to mix x0 and eps, and give v_model the (B,) one.")


def _same_loss(got, want, model, library) -> bool:
    """The library's loss value, computed from the same x_t and t that the library gave v_model: a loss drawn from
    other random numbers can come close to the value by chance, never to the inputs."""
    if got.numel() != 1 or not torch.isclose(got.detach().float(), want.detach(), rtol=1e-4, atol=1e-6):
        return False
    return len(model.inputs) == len(library.inputs) and all(
        a.shape == b.shape and torch.allclose(a.float(), b, atol=1e-5)
        for mine, theirs in zip(model.inputs, library.inputs) for a, b in zip(mine, theirs))


def _grade_flow_loss(fn):
    seed, gen = 31, torch.Generator().manual_seed(32)
    x0 = torch.rand(6, 1, 28, 28, generator=gen) * 2 - 1  # 6 images: t shaped (6,) cannot broadcast over 28 columns
    model, library = _Velocity(0.8, per_image=True), _Velocity(0.8, per_image=True)
    got, hint = _call_loss(fn, model, x0, seed)
    if hint:
        return False, hint
    if got is None:
        return False, "your function returned None; return the loss, one number."
    got = torch.as_tensor(got)
    if got.numel() != 1:
        return False, f"return one number for the batch (the mean of the squared errors), got shape {tuple(got.shape)}."
    want = flow_matching_loss(library, x0, torch.Generator().manual_seed(seed), image_range=False)
    if not _same_loss(got, want, model, library):
        for mistake, hint in _FLOW_LOSS_MISTAKES:
            if torch.isclose(got.detach().float(), _loss_variant(x0, seed, **mistake), rtol=1e-4):
                return False, hint
        return False, ("not the library's loss for the same seed. Draw t = torch.rand(B, generator=gen), then eps = "
                       "torch.randn(x0.shape, generator=gen); x_t = (1 - t) x0 + t eps with t shaped (B, 1, 1, 1); "
                       "loss = mean of (v_model(x_t, t) - (eps - x0))^2, v_model given t shaped (B,).")
    if not got.requires_grad:
        return False, ("the value is right but it carries no gradient: return the loss tensor itself (no .item(), "
                       "no .detach(), no torch.no_grad()), so that loss.backward() can train the network.")
    # the lesson's 2-D toy trains with the same function; another seed, so that drawing from torch's own generator
    # cannot pass by chance (after torch.manual_seed(31) it draws what gen draws, once)
    points, seed = torch.randn(5, 2, generator=gen), seed + 2
    model, library = _Velocity(0.8, per_image=True), _Velocity(0.8, per_image=True)
    got, hint = _call_loss(fn, model, points, seed)
    if hint:
        return False, "right for images, but not for points in the plane (B, 2): " + hint
    want = flow_matching_loss(library, points, torch.Generator().manual_seed(seed), image_range=False)
    if got is None or not _same_loss(torch.as_tensor(got), want, model, library):
        shapes = [tuple(x.shape) for x, _ in model.inputs]
        if any(shape != tuple(points.shape) for shape in shapes):
            return False, (f"right for images, but for points (B, 2) v_model saw x_t shaped {shapes[0]}: t "
                           f"reshaped to (B, 1, 1, 1) spreads points over new axes. Reshape t to x0's number of "
                           f"dimensions, {_RESHAPE}: (B, 1, 1, 1) for images, (B, 1) for points.")
        return False, ("right for images, but not for points in the plane (B, 2), which the lesson's toy trains on: "
                       f"write it for any x0 shaped (B, ...), with t reshaped as {_RESHAPE}, and draw t and eps "
                       f"from gen (generator=gen).")
    return True, ("the same loss as the library's flow_matching_loss for the same seed, on images and on points: a "
                  "plain regression onto the straight line's velocity. The lesson trains with your function from here.")


# ---------------------------------------------------------------- sampling: Euler and Heun


def euler_sample_solution(v_model, x1, steps):
    # integrate dx/dt = v(x, t) from t = 1 (the noise x1) to t = 0 in `steps` equal steps; dt = -1 / steps
    x = x1
    for i in range(steps):
        t, t_next = 1 - i / steps, 1 - (i + 1) / steps
        v = v_model(x, torch.full((len(x),), t, device=x.device))  # the velocity where x is now
        x = x + (t_next - t) * v
    return x


def _grade_euler_sample(fn):
    gen = torch.Generator().manual_seed(41)
    images, points = torch.randn(3, 1, 4, 4, generator=gen), torch.randn(7, 2, generator=gen)
    for x1, steps in ((images, 5), (points, 2)):  # the second run catches a loop written for one number of steps
        model = _Velocity()
        try:
            got = fn(model, x1.clone(), steps)
        except _TimeShapeError as err:
            return False, (f"v_model was called with t shaped {err.args[0]}; give it torch.full((B,), t), one time "
                           f"per image.")
        if got is None:
            return False, "your function returned None; return x at t = 0, the last x of the loop."
        got = torch.as_tensor(got).float()
        if got.shape != x1.shape:
            return False, f"x at t = 0 is shaped like x1 {tuple(x1.shape)}, got {tuple(got.shape)}."
        want, _ = sample_flow(_gaussian_velocity, noise=x1.clone(), steps=steps, image_range=False)
        if torch.allclose(got, want, rtol=1e-4, atol=1e-4):
            continue
        times, grid = model.times, time_grid(steps)
        if len(times) > 1 and times[0] < times[-1]:
            return False, ("the loop runs forwards: sampling starts from the noise at t = 1 and ends at the data, "
                           "t = 0 (t = 1, 1 - 1/steps, ..., 0).")
        if len(times) == steps - 1:
            return False, (f"{steps} steps took {len(times)} network calls: one step too few. {steps} equal steps "
                           f"join {steps + 1} times, torch.linspace(1, 0, steps + 1), and the velocity is taken at "
                           f"each of the first {steps}.")
        if len(times) == steps + 1:
            return False, (f"{steps} steps took {len(times)} network calls: one step too many. The times are 1, "
                           f"1 - 1/steps, ..., 0; the last one, t = 0, is where you stop (no call there).")
        if len(times) != steps:
            return False, (f"{steps} steps should call v_model {steps} times, once per step; yours called it "
                           f"{len(times)}.")
        if all(abs(a - b) < 1e-5 for a, b in zip(times, grid[1:])):
            return False, ("the velocity was taken at t_next; Euler's step uses it where x is now: "
                           "v_model(x, torch.full((B,), t)), then x + (t_next - t) * v.")
        backwards = x1.clone()
        for t, t_next in zip(grid[:-1], grid[1:]):
            backwards = backwards - (t_next - t) * _gaussian_velocity(backwards, torch.full((len(x1),), t))
        if torch.allclose(got, backwards, rtol=1e-4, atol=1e-4):
            return False, ("the step has the wrong sign: t falls, so dt = t_next - t = -1 / steps is negative, and "
                           "x + dt * v already walks back from the noise. Add (t_next - t) * v.")
        return False, ("for t, t_next = 1, 1 - 1/steps, ... down to 0: v = v_model(x, torch.full((B,), t)), x = x + "
                       "(t_next - t) * v; return x.")
    return True, ("the same x at t = 0 as the library's sample_flow, for images and for points: one network call per "
                  "step. The lesson samples with your function from here.")


def heun_step_solution(v_model, x, t, t_next):
    # Heun (the trapezoid rule): an Euler step to guess x at t_next, then the step again with the average velocity
    v1 = v_model(x, torch.full((len(x),), t, device=x.device))  # the velocity at the start
    guess = x + (t_next - t) * v1  # Euler's guess of x at t_next
    v2 = v_model(guess, torch.full((len(x),), t_next, device=x.device))  # the velocity at the end
    return x + (t_next - t) * (v1 + v2) / 2


def _grade_heun_step(fn):
    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(51))
    t, t_next = 0.8, 0.45
    try:
        got = fn(_Velocity(), x.clone(), t, t_next)
    except _TimeShapeError as err:
        return False, f"v_model was called with t shaped {err.args[0]}; give it torch.full((B,), t)."
    if got is None:
        return False, "your function returned None; return x at t_next."
    if isinstance(got, (tuple, list)):
        return False, ("return x at t_next alone (the library's heun_step also returns the velocity it used; "
                       "yours returns only x).")
    got = torch.as_tensor(got).float()
    if got.shape != x.shape:
        return False, f"x at t_next is shaped like x {tuple(x.shape)}, got {tuple(got.shape)}."
    want, _ = heun_step(_gaussian_velocity, x, t, t_next)
    if torch.allclose(got, want, atol=1e-5):
        return True, ("two network calls, and the error per step falls from O(h^2) to O(h^3): where the path "
                      "curves, a few Heun steps go as far as many Euler steps.")
    dt, v = t_next - t, lambda points, time: _gaussian_velocity(points, torch.full((len(points),), time))
    v1 = v(x, t)
    if torch.allclose(got, euler_step(_gaussian_velocity, x, t, t_next)[0], atol=1e-5):
        return False, ("that is a plain Euler step. Heun also takes the velocity v2 at Euler's guess, x + dt * v1 at "
                       "t_next, and steps with the average (v1 + v2) / 2.")
    if torch.allclose(got, x + dt * v(x + dt * v1, t_next), atol=1e-5):
        return False, ("the step uses v2 alone; Heun averages the two velocities: x + (t_next - t) * (v1 + v2) / 2, "
                       "the trapezoid rule.")
    if torch.allclose(got, x + dt * v(x + dt / 2 * v1, t + dt / 2), atol=1e-5):
        return False, ("that is the midpoint method (the velocity half way); Heun's is the trapezoid: v2 at Euler's "
                       "full step, x + dt * v1 at t_next, then x + dt * (v1 + v2) / 2.")
    return False, ("v1 = v_model(x, t); guess = x + (t_next - t) * v1; v2 = v_model(guess, t_next); return x + "
                   "(t_next - t) * (v1 + v2) / 2, each t given as torch.full((B,), t).")


# ---------------------------------------------------------------- cost


def _pair_solver() -> tuple[str, int]:
    """(method, steps) with which the lesson's flow makes the (noise, image) pairs for reflow and distillation."""
    method, steps = recipes.REFLOW.pair_solver
    return method, steps


def _teacher_calls() -> int:
    """How many network calls sample_flow makes with the pairs' solver, counted on a stand-in network."""
    method, steps = _pair_solver()
    calls = []
    sample_flow(lambda x, t: calls.append(1) or torch.zeros_like(x), noise=torch.zeros(1, 2), steps=steps,
                method=method, image_range=False)
    return len(calls)


def _cost_solution() -> str:
    method, steps = _pair_solver()
    calls = _teacher_calls()
    if method == "heun" and calls == 2 * steps - 1:
        why = (f"two per Heun step, except the last, which sample_flow takes as an Euler step with one call: "
               f"2 x {steps} - 1 = {calls}")
    else:
        why = f"{calls // steps} per {method} step x {steps} steps = {calls}"
    return f"{calls} network calls per batch of pairs ({why}); the distilled model makes 1."


def _grade_one_step_nfe(answer):
    value = whole_number(answer)
    if value is None:
        return False, f"give a whole number, the count of network calls; {answer!r} is not one."
    (method, steps), want = _pair_solver(), _teacher_calls()
    if value == want:
        return True, f"{_cost_solution()} One call instead of {want}: that is what distillation buys."
    if value == 1:
        return False, "one call is the distilled model itself; the question asks about the flow that made its pairs."
    if method == "heun" and value == steps:
        return False, ("that counts the steps; a Heun step calls the network twice, at its start and at Euler's guess "
                       "of its end.")
    if method == "heun" and value == 2 * steps and want == 2 * steps - 1:
        return False, ("two calls per Heun step, but read sample_flow's docstring: its last step is an Euler step, "
                       "one call, so as not to ask the network for the velocity at t = 0 of a point that is not yet "
                       "a digit.")
    if value in (steps + 1, 2 * (steps + 1), 2 * steps + 1):
        return False, (f"{steps} steps join {steps + 1} times, but the last one, t = 0, is where sampling stops: no "
                       f"call there.")
    return False, (f"run it and read the count: sample_flow(v, n=1, steps={steps}, method=\"{method}\") returns "
                   f"(images, path), and path.nfe is the number of network calls.")


_METHOD, _STEPS = _pair_solver()

register(
    score_from_eps=Exercise(
        "Write score_from_eps(eps, abar_t): lesson 4's noise prediction read as a score, grad log q(x_t), with "
        "abar_t a number.", _grade_score, score_solution,
    ),
    langevin_step=Exercise(
        "Write langevin_step(score, x, delta, z): one step of Langevin dynamics from the points x with step size "
        "delta and the given noise z.", _grade_langevin_step, langevin_step_solution,
    ),
    flow_loss=Exercise(
        "Write flow_loss(v_model, x0, gen): the flow-matching loss for a batch x0 in [-1, 1], drawing t = "
        "torch.rand(B, generator=gen) and then eps = torch.randn(x0.shape, generator=gen).",
        _grade_flow_loss, flow_loss_solution,
    ),
    euler_sampler=Exercise(
        "Write euler_sample(v_model, x1, steps): integrate dx/dt = v_model(x, t) from t = 1 (x1, the noise) to "
        "t = 0 in `steps` equal Euler steps and return x at t = 0.", _grade_euler_sample, euler_sample_solution,
    ),
    heun_step=Exercise(
        "Write heun_step(v_model, x, t, t_next): x at t_next by Heun's method (the trapezoid rule).",
        _grade_heun_step, heun_step_solution,
    ),
    one_step_nfe=Exercise(
        f"The distilled model draws a digit in one network call. The flow made the (noise, image) pairs it learned "
        f"from with method=\"{_METHOD}\" and steps={_STEPS} (recipes.REFLOW.pair_solver). How many network calls did "
        f"that take per batch of pairs, as sample_flow counts them (path.nfe)?",
        _grade_one_step_nfe, _cost_solution(),
    ),
)
