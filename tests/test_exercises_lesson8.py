"""Lesson 8's exercises: every right answer passes, each typical mistake gets its own hint and never passes, and the
graders expect the library's numbers (`superres.psnr`, `F.pixel_shuffle`, `editing.sdedit_start`,
`editing.repaint_merge`, the calls `editing.repaint` makes), so the lesson can use the students' functions once they
pass."""

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import exercises
from course_lib.diffusion import DiffusionSchedule, q_sample
from course_lib.editing import repaint, repaint_merge, sdedit_start
from course_lib.exercises.lesson8_restoration import (_repaint_calls, pixel_shuffle_solution, psnr_solution,
                                                      repaint_merge_solution, sdedit_start_solution)
from course_lib.superres import SRResNet, psnr

STEPS, RESAMPLE = (inspect.signature(repaint).parameters[p].default for p in ("steps", "resample"))
CALLS = (STEPS - 1) * RESAMPLE + 1  # every step but the last, to the clean image, is done `resample` times

RIGHT = {  # in the notebook's order
    "psnr": psnr_solution,
    "pixel_shuffle": pixel_shuffle_solution,
    "psnr_paradox": "b",
    "sdedit_start": sdedit_start_solution,
    "repaint_merge": repaint_merge_solution,
    "repaint_calls": CALLS,
}


def test_lesson_8_registers_its_exercises_in_the_notebooks_order():
    names = list(exercises.EXERCISES)
    assert names[names.index("psnr"):names.index("repaint_calls") + 1] == list(RIGHT)
    assert names.index("repaint_calls") < names.index("score_from_eps")  # lesson 8 before lesson 9
    code = {name for name in RIGHT if callable(exercises.EXERCISES[name].solution)}
    assert code == {"psnr", "pixel_shuffle", "sdedit_start", "repaint_merge"}


@pytest.mark.parametrize("name", list(RIGHT))
def test_the_right_answer_passes(name, capsys):
    assert exercises.check(name, RIGHT[name]).right
    assert capsys.readouterr().out.startswith("Correct!")


def test_the_library_functions_themselves_are_right_answers(capsys):
    answers = {"psnr": psnr, "pixel_shuffle": F.pixel_shuffle, "sdedit_start": sdedit_start,
               "repaint_merge": repaint_merge}
    for name, answer in answers.items():
        assert exercises.check(name, answer).right, capsys.readouterr().out


def test_the_solutions_agree_with_the_library_on_other_inputs():
    """The graders use one schedule and a few images; the solutions also match on a cosine schedule of another T, at
    every strength, and PixelShuffle inside SRResNet."""
    gen = torch.Generator().manual_seed(0)
    schedule = DiffusionSchedule(T=50, kind="cosine")
    x, eps = torch.rand(2, 1, 28, 28, generator=gen), torch.randn(2, 1, 28, 28, generator=gen)
    for strength in (0.0, 0.1, 0.5, 0.99, 1.0):
        (mine, t0), (library, t0_library) = sdedit_start_solution(schedule, x, strength, eps), \
            sdedit_start(schedule, x, strength, eps)
        assert t0 == t0_library and torch.allclose(mine, library, atol=1e-5)
    known, x_gen = 2 * x - 1, torch.randn(2, 1, 28, 28, generator=gen)
    mask = torch.zeros(1, 1, 28, 28)
    mask[..., :14, :] = 1  # broadcast over the batch, as the lesson's masks are
    for t in (-1, 0, 25, 49):
        assert torch.allclose(repaint_merge_solution(schedule, x_gen, known, mask, t, eps),
                              repaint_merge(schedule, x_gen, known, mask, t, eps), atol=1e-5)
    pred, target = torch.rand(5, 3, 9, 9, generator=gen), torch.rand(5, 3, 9, 9, generator=gen)
    assert psnr_solution(pred, target) == pytest.approx(psnr(pred, target), abs=1e-4)
    torch.manual_seed(0)
    net = SRResNet().eval()
    low = torch.rand(2, 1, 7, 7, generator=gen)
    with torch.no_grad():
        library = net(low)
        for stage in net.upsample:  # the student's rearrangement in place of nn.PixelShuffle(2)
            stage[1] = LambdaModule(lambda h: pixel_shuffle_solution(h, 2))
        assert torch.allclose(net(low), library, atol=1e-6)


class LambdaModule(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, h):
        return self.fn(h)


def test_psnr_pairs_tell_per_image_from_pooled():
    """The grader's first pair has errors of very different sizes, so the mean of the PSNRs and the PSNR of the mean
    error differ by more than a decibel: the pooled slip cannot pass by being close."""
    from course_lib.exercises.lesson8_restoration import _psnr_pairs

    prediction, target = _psnr_pairs()[0]
    pooled = 10 * math.log10(1 / (prediction - target).pow(2).mean().item())
    assert abs(psnr(prediction, target) - pooled) > 1.0


# ---------------------------------------------------------------- PSNR


def mse_per_image(p, t):
    return (p - t).pow(2).flatten(1).mean(1)


PSNR_MISTAKES = [
    (lambda p, t: 10 * torch.log10(1 / (p - t).pow(2).mean()), "pooled MSE"),
    (lambda p, t: (20 * torch.log10(1 / mse_per_image(p, t))).mean(), "twice the dB"),
    (lambda p, t: (10 * torch.log(1 / mse_per_image(p, t))).mean(), "base-10 logarithm"),
    (lambda p, t: (10 * torch.log10(255**2 / mse_per_image(p, t))).mean(), "the peak is 1"),
    (lambda p, t: (10 * torch.log10(255 / mse_per_image(p, t))).mean(), "the peak is 1"),
    (lambda p, t: (10 * torch.log10(mse_per_image(p, t))).mean(), "sign is flipped"),
    (lambda p, t: (10 * torch.log10(1 / mse_per_image(p, t).sqrt())).mean(), "not its root"),
    (lambda p, t: (10 * torch.log10(1 / (p - t).pow(2).flatten(1).sum(1))).mean(), "not their sum"),
    (lambda p, t: 10 * torch.log10(1 / mse_per_image(p, t)), "one per image: return their mean"),
    (lambda p, t: 20 * torch.log10(1 / (p - t).pow(2).mean()), "not one for the whole batch"),
    (lambda p, t: (10 * torch.log10(1 / mse_per_image(p, t))).tolist(), "as one number"),
    (lambda p, t: psnr(p, t) + 0.5, "expected"),
]


@pytest.mark.parametrize("answer, hint", PSNR_MISTAKES)
def test_psnr_mistakes_get_their_hint(answer, hint, capsys):
    assert not exercises.check("psnr", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


@pytest.mark.parametrize("form", [float, torch.tensor, lambda v: torch.tensor([v]), lambda v: torch.tensor(v).double()])
def test_psnr_as_a_float_or_a_one_number_tensor_is_right(form, capsys):
    assert exercises.check("psnr", lambda p, t: form(psnr_solution(p, t))).right, capsys.readouterr().out


# ---------------------------------------------------------------- PixelShuffle


def shuffle_with(view="CRR", order=(0, 1, 4, 2, 5, 3), fixed_r=None):
    """depth-to-space put together from parts, as a student might write it."""

    def shuffle(h, r):
        B, channels, H, W = h.shape
        C = channels // (fixed_r or r) ** 2
        if view == "none":
            return h.reshape(B, C, H * r, W * r)
        blocks = h.reshape(B, C, r, r, H, W) if view == "CRR" else h.reshape(B, r, r, C, H, W)
        out = blocks.permute(*order)
        return out.reshape(B, C, *((W * r, H * r) if order == (0, 1, 5, 3, 4, 2) else (H * r, W * r)))

    return shuffle


PIXEL_SHUFFLE_MISTAKES = [
    (shuffle_with(view="none"), "a reshape alone"),
    (shuffle_with(order=(0, 1, 4, 3, 5, 2)), "comes out transposed"),
    (shuffle_with(view="RRC", order=(0, 3, 4, 1, 5, 2)), "TensorFlow's depth_to_space order"),
    (shuffle_with(fixed_r=2), "right for r = 2, but"),
    (lambda h, r: pixel_shuffle_solution(h, 2), "right for r = 2, but"),
    (shuffle_with(order=(0, 1, 5, 3, 4, 2)), "becomes (B, C, H r, W r)"),
    (shuffle_with(order=(0, 1, 2, 4, 3, 5)), "permute(0, 1, 4, 2, 5, 3)"),
]


@pytest.mark.parametrize("answer, hint", PIXEL_SHUFFLE_MISTAKES)
def test_pixel_shuffle_mistakes_get_their_hint(answer, hint, capsys):
    assert not exercises.check("pixel_shuffle", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_pixel_shuffle_written_with_view_and_contiguous_passes(capsys):
    def shuffle(h, r):
        B, channels, H, W = h.shape
        return h.view(B, -1, r, r, H, W).permute(0, 1, 4, 2, 5, 3).contiguous().view(B, -1, H * r, W * r)

    assert exercises.check("pixel_shuffle", shuffle).right, capsys.readouterr().out


# ---------------------------------------------------------------- the paradox


@pytest.mark.parametrize("answer, hint", [("a", "sharper is not closer"), ("c", "bicubic knows nothing"),
                                          ("d", "Realism needs one sample"), ("bogus", "one letter"),
                                          ("b and d", "one letter"), ("e", "one letter")])
def test_psnr_paradox_wrong_answers_get_their_hint(answer, hint, capsys):
    assert not exercises.check("psnr_paradox", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


@pytest.mark.parametrize("answer", ["b", "B", " (b) ", "b)"])
def test_psnr_paradox_reads_the_letter_in_the_usual_forms(answer):
    assert exercises.check("psnr_paradox", answer).right


# ---------------------------------------------------------------- SDEdit's start


def start_with(t0_of=lambda s, T: round(s * (T - 1)), remap=lambda x: 2 * x - 1, swapped=False, squared=False,
               order="x_first", back=False):
    """sdedit_start put together from parts, as a student might write it."""

    def start(schedule, x, strength, eps):
        t0 = t0_of(strength, schedule.T)
        abar = schedule.alpha_bars[t0]
        a, b = (abar, 1 - abar) if squared else (abar.sqrt(), (1 - abar).sqrt())
        x0 = remap(x)
        x_t0 = b * x0 + a * eps if swapped else a * x0 + b * eps
        x_t0 = (x_t0 + 1) / 2 if back else x_t0
        return (t0, x_t0) if order == "t_first" else (x_t0, t0)

    return start


SDEDIT_MISTAKES = [
    (start_with(remap=lambda x: x), "take x to 2 * x - 1"),
    (start_with(remap=lambda x: (x + 1) / 2), "the other way, 2 * x - 1"),
    (start_with(t0_of=lambda s, T: round(s * T)), "is strength * T"),
    (start_with(t0_of=lambda s, T: min(round(s * T), T - 1)), "is strength * T"),
    (start_with(t0_of=lambda s, T: int(s * (T - 1))), "int() cuts"),
    (start_with(t0_of=lambda s, T: s * (T - 1)), "a whole number"),
    (start_with(swapped=True), "square roots are swapped"),
    (start_with(squared=True), "square roots are missing"),
    (start_with(order="t_first"), "the other way round: return (x_t0, t0)"),
    (start_with(back=True), "leave x_t0 in the model's range"),
    (lambda schedule, x, strength, eps: sdedit_start(schedule, x, strength, eps)[0], "return the pair (x_t0, t0)"),
    (lambda schedule, x, strength, eps: (q_sample(schedule, x, schedule.T - 1, eps), schedule.T - 1), "t0 ="),
]


@pytest.mark.parametrize("answer, hint", SDEDIT_MISTAKES)
def test_sdedit_start_mistakes_get_their_hint(answer, hint, capsys):
    assert not exercises.check("sdedit_start", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_sdedit_start_indexing_past_the_schedule_is_told_where_the_steps_end(capsys):
    def past_the_end_at_one(schedule, x, strength, eps):  # right below strength 1, where it reads alpha_bars[T]
        if strength == 1:
            schedule.alpha_bars[round(strength * schedule.T)]
        return sdedit_start_solution(schedule, x, strength, eps)

    assert not exercises.check("sdedit_start", past_the_end_at_one).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet: at strength 1.0 your function indexed past the end of the schedule"), out
    assert "round(strength * (T - 1))" in out


# ---------------------------------------------------------------- RePaint's merge


def merge_with(inverted=False, noised=True, at_end="as_is", remap=False, noise_generated=False, own_eps=False):
    """repaint_merge put together from parts, as a student might write it."""

    def merge(schedule, x_generated, known, mask, t, eps):
        eps = torch.randn_like(eps) if own_eps else eps
        known = 2 * known - 1 if remap else known
        if t < 0 and at_end == "as_is" or not noised:
            known_t = known
        elif t < 0 and at_end == "library":
            known_t = q_sample(schedule, known, t, eps)  # refuses t = -1
        else:
            abar = schedule.alpha_bars[t]  # at t = -1, Python's last element: step T - 1
            known_t = abar.sqrt() * known + (1 - abar).sqrt() * eps
        if noise_generated and t >= 0:
            x_generated = q_sample(schedule, x_generated, t, eps)
        m = 1 - mask if inverted else mask
        return m * known_t + (1 - m) * x_generated

    return merge


REPAINT_MERGE_MISTAKES = [
    (merge_with(inverted=True), "the mask is the other way round"),
    (merge_with(noised=False), "noised to step t"),
    (merge_with(at_end="index"), "alpha_bars[-1] is the last step"),
    (merge_with(at_end="library"), "at t = -1 your function raised ValueError"),
    (merge_with(remap=True), "already in [-1, 1]"),
    (merge_with(noise_generated=True), "already the model's x_t"),
    (merge_with(own_eps=True), "use the eps you are given"),
    (lambda s, x_gen, known, mask, t, eps: repaint_merge(s, x_gen, known, mask, t, eps)[:1], "shaped like x_generated"),
    (lambda s, x_gen, known, mask, t, eps: repaint_merge(s, x_gen, known, mask, t, eps) * 0.9, "known_t = known at"),
]


@pytest.mark.parametrize("answer, hint", REPAINT_MERGE_MISTAKES)
def test_repaint_merge_mistakes_get_their_hint(answer, hint, capsys):
    assert not exercises.check("repaint_merge", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


# ---------------------------------------------------------------- what RePaint costs


def test_the_calls_answer_is_what_repaint_makes_for_several_settings(capsys):
    """The grader counts the calls a stand-in network receives inside repaint; it is (steps - 1) x resample + 1."""
    assert _repaint_calls() == CALLS == RIGHT["repaint_calls"]
    for steps, resample in ((1, 3), (4, 1), (10, 3)):
        assert _repaint_calls(steps, resample) == (steps - 1) * resample + 1
    assert f"steps={STEPS}, resample={RESAMPLE}" in exercises.EXERCISES["repaint_calls"].question
    exercises.solution("repaint_calls")
    assert capsys.readouterr().out.startswith(f"{CALLS} network calls")


CALLS_MISTAKES = [(STEPS, "counts the steps"), (STEPS * RESAMPLE, "done once"),
                  ((STEPS - 1) * RESAMPLE, "also calls the network, once"),
                  ((STEPS - 1) * (2 * RESAMPLE - 1) + 1, "no network call"),
                  (STEPS * (2 * RESAMPLE - 1), "no network call"),
                  (1000 * RESAMPLE, "count it"), (CALLS + 0.5, "whole number"), ("many", "whole number")]


@pytest.mark.parametrize("answer, hint", CALLS_MISTAKES)
def test_repaint_calls_mistakes_get_their_hint(answer, hint, capsys):
    assert not exercises.check("repaint_calls", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


@pytest.mark.parametrize("form", [str, float, torch.tensor])
def test_the_calls_count_in_any_whole_number_form_is_right(form, capsys):
    assert exercises.check("repaint_calls", form(CALLS)).right


# ---------------------------------------------------------------- what every exercise does


@pytest.mark.parametrize("name", [name for name, answer in RIGHT.items() if callable(answer)])
def test_an_answer_that_raises_gets_a_clear_message(name, capsys):
    def broken(*args):
        return 1 / 0

    assert not exercises.check(name, broken).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet: your answer raised ZeroDivisionError: division by zero"), out


@pytest.mark.parametrize("name", [name for name, answer in RIGHT.items() if callable(answer)])
def test_the_notebooks_placeholder_is_told_to_return_something(name, capsys):
    def placeholder(*args):
        # YOUR CODE HERE
        return None

    assert not exercises.check(name, placeholder).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet: your function returned None; return "), out


@pytest.mark.parametrize("name", list(RIGHT))
def test_grading_leaves_the_students_random_generator_alone(name, capsys):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    exercises.check(name, RIGHT[name])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", [name for name, answer in RIGHT.items() if callable(answer)])
def test_grading_leaves_the_inputs_of_a_later_check_unchanged(name, capsys):
    """A student's function that writes into its inputs must not change what the next check grades."""
    def in_place(*args):
        for a in args:
            if isinstance(a, torch.Tensor) and a.is_floating_point():
                a.mul_(0)
        return None

    exercises.check(name, in_place)
    assert exercises.check(name, RIGHT[name]).right, capsys.readouterr().out


def test_passed_follows_the_latest_check(capsys):
    assert exercises.check("repaint_merge", repaint_merge_solution).right
    assert exercises.passed("repaint_merge", repaint_merge_solution)
    assert not exercises.check("repaint_merge", merge_with(inverted=True)).right
    assert not exercises.passed("repaint_merge")
