"""Lesson 4's exercises: every right answer passes, each typical mistake gets its own hint and never passes, an empty
answer is "not yet", and the two exercises that write the lesson's code (Algorithm 1's loss, Algorithm 2's loop)
agree with the library's `diffusion_loss` and `ddpm_sample`, so the lesson can train and sample with them."""

import copy

import pytest
import torch

from course_lib import exercises
from course_lib.diffusion import (DiffusionSchedule, ddpm_sample, ddpm_update, diffusion_loss, q_sample,
                                  to_model_range)
from course_lib.exercises.lesson4_diffusion import (ddpm_loss_solution, ddpm_sample_solution, q_sample_solution,
                                                    reverse_step_solution)
from course_lib.training import fit
from course_lib.unet import UNet

RIGHT = {  # in the notebook's order
    "q_sample": q_sample_solution,
    "signal_left": 0.0063,
    "ddpm_loss": ddpm_loss_solution,
    "reverse_step": reverse_step_solution,
    "ddpm_sample": ddpm_sample_solution,
}


def test_lesson_4_has_at_least_five_exercises_two_of_them_the_lessons_code():
    names = list(exercises.EXERCISES)
    lesson = names[names.index("q_sample"):names.index("ddpm_sample") + 1]
    assert lesson == list(RIGHT)
    assert {"ddpm_loss", "ddpm_sample"} <= {name for name in lesson if callable(exercises.EXERCISES[name].solution)}


def test_the_library_functions_themselves_are_right_answers(capsys):
    def library_loss(eps_model, schedule, x0, gen, min_snr_gamma=None):
        return diffusion_loss(eps_model, schedule, x0, gen, min_snr_gamma, image_range=False)

    def library_sampler(eps_model, schedule, x_T, gen):
        return ddpm_sample(eps_model, schedule, noise=x_T, generator=gen, image_range=False)[0]

    assert exercises.check("ddpm_loss", library_loss).right, capsys.readouterr().out
    assert exercises.check("ddpm_sample", library_sampler).right, capsys.readouterr().out


# ---------------------------------------------------------------- Algorithm 1: typical mistakes


def loss_with(first="t", low=0, high_extra=0, use_alphas=False, sqrt=True, target="eps", reduce="mean",
              detach=False, weigh=True, inverted=False):
    """Algorithm 1's loss put together from parts, as a student might write it."""

    def loss(eps_model, schedule, x0, gen, min_snr_gamma=None):
        draw_t = lambda: torch.randint(low, schedule.T + high_extra, (len(x0),), generator=gen)  # noqa: E731
        if first == "t":
            t = draw_t()
            eps = torch.randn(x0.shape, generator=gen)
        else:
            eps = torch.randn(x0.shape, generator=gen)
            t = draw_t()
        a = (schedule.alphas if use_alphas else schedule.alpha_bars)[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps if sqrt else a * x0 + (1 - a) * eps
        error = ((eps if target == "eps" else x0) - eps_model(x_t, t)).pow(2).mean(dim=(1, 2, 3))
        if min_snr_gamma is not None and weigh:
            snr = schedule.snr(t)
            error = error * (snr / snr.clamp(max=min_snr_gamma) if inverted else snr.clamp(max=min_snr_gamma) / snr)
        out = error.sum() * x0[0].numel() if reduce == "sum" else error.mean()
        return out.detach() if detach else out

    return loss


LOSS_MISTAKES = [
    (loss_with(first="eps"), "draw t first, then eps"),
    (loss_with(low=1, high_extra=1), "t is one too large"),
    (loss_with(low=1), "no t = 0"),
    (loss_with(use_alphas=True), "not alpha_t alone"),
    (loss_with(sqrt=False), "standard deviations"),
    (loss_with(target="x0"), "predicts the noise"),
    (loss_with(reduce="sum"), "not the sum"),
    (loss_with(detach=True), "carries no gradient"),
    (loss_with(weigh=False), "min(SNR(t), gamma) / SNR(t)"),
    (loss_with(inverted=True), "upside down"),
]


@pytest.mark.parametrize("answer, hint", LOSS_MISTAKES)
def test_ddpm_loss_mistakes_get_their_hint(answer, hint, capsys):
    assert not exercises.check("ddpm_loss", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_a_loss_drawn_without_the_generator_is_told_how_to_draw(capsys):
    def unseeded(eps_model, schedule, x0, gen, min_snr_gamma=None):
        t = torch.randint(0, schedule.T, (len(x0),))  # torch's own generator, not gen
        eps = torch.randn_like(x0)
        return (eps - eps_model(q_sample(schedule, x0, t, eps), t)).pow(2).mean()

    assert not exercises.check("ddpm_loss", unseeded).right
    assert "generator=gen" in capsys.readouterr().out


# ---------------------------------------------------------------- Algorithm 2: typical mistakes


def sampler_with(steps="all", noise_at_last=False, divisor="alpha", sigma="sqrt_beta", eps_scale="sqrt",
                 clip=False, one_based=False):
    """Algorithm 2's loop put together from parts, as a student might write it."""

    def sample(eps_model, schedule, x_T, gen):
        x = x_T
        ts = range(schedule.T, 0, -1) if one_based else (
            range(schedule.T - 1, 0, -1) if steps == "skip_last" else reversed(range(schedule.T)))
        for t in ts:
            eps = eps_model(x, torch.full((len(x),), t))
            beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]
            scale = beta / ((1 - abar).sqrt() if eps_scale == "sqrt" else 1 - abar)
            x = (x - scale * eps) / (alpha if divisor == "alpha" else abar).sqrt()
            if t > 0 or noise_at_last:
                s = {"sqrt_beta": beta.sqrt(), "beta": beta,
                     "posterior": schedule.posterior_variance[t].sqrt()}[sigma]
                x = x + s * torch.randn(x.shape, generator=gen)
        return x.clamp(-1, 1) if clip else x

    return sample


SAMPLE_MISTAKES = [
    (sampler_with(noise_at_last=True), "no fresh noise at the last step"),
    (sampler_with(one_based=True), "the tensors hold t = 0 .. T-1"),
    (sampler_with(steps="skip_last"), "stops one step early"),
    (sampler_with(divisor="abar"), "not sqrt(abar_t)"),
    (sampler_with(sigma="beta"), "not beta_t * z"),
    (sampler_with(sigma="posterior"), "posterior variance"),
    (sampler_with(eps_scale="linear"), "a square root in the denominator"),
    (sampler_with(clip=True), "without clipping"),
]


@pytest.mark.parametrize("answer, hint", SAMPLE_MISTAKES)
def test_ddpm_sample_mistakes_get_their_hint(answer, hint, capsys):
    assert not exercises.check("ddpm_sample", answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_a_loop_that_runs_forwards_is_told_so(capsys):
    def forwards(eps_model, schedule, x_T, gen):
        x = x_T
        for t in range(schedule.T):
            x = ddpm_update(schedule, x, t, eps_model(x, torch.full((len(x),), t)), torch.randn(x.shape, generator=gen))
        return x

    assert not exercises.check("ddpm_sample", forwards).right
    assert "runs forwards" in capsys.readouterr().out


def test_the_other_hints_of_lesson_4_still_hold(capsys):
    for name, answer, hint in [
        ("q_sample", lambda x0, a, e: a * x0 + (1 - a) * e, "square roots"),
        ("reverse_step", lambda x, e, b, a, z: (x - b / (1 - a) ** 0.5 * e) / (1 - b) ** 0.5, "fresh noise is missing"),
        ("signal_left", 4e-5, "square root"),
    ]:
        assert not exercises.check(name, answer).right
        assert hint in capsys.readouterr().out


# ---------------------------------------------------------------- the lesson trains and samples with them


def test_training_with_the_students_loss_is_training_with_the_librarys():
    """The lesson's training step switches to my_ddpm_loss once it is right: the same t, eps and loss, so the same
    weights after a few steps (with Min-SNR, as the lesson trains; SGD, whose step follows the gradient's size)."""
    schedule = DiffusionSchedule(T=1000)
    torch.manual_seed(0)
    start = UNet(channels=(8, 16, 16), time_dim=32)
    images = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    batches = [(images[:8],), (images[8:],)]

    def trained(loss_of):
        model = copy.deepcopy(start)
        noise = torch.Generator().manual_seed(2)
        fit(model, batches, lambda m, batch: loss_of(m, batch[0], noise), torch.optim.SGD(model.parameters(), 0.1),
            epochs=1, progress=False)
        return [p.detach() for p in model.parameters()]

    library = trained(lambda m, x, noise: diffusion_loss(m, schedule, x, noise, 5.0))
    yours = trained(lambda m, x, noise: ddpm_loss_solution(m, schedule, to_model_range(x), noise, 5.0))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(library, yours))


def test_the_lessons_sampling_cell_with_the_students_loop_draws_what_the_library_draws():
    """The lesson draws x_T from a generator, then hands the sampler that generator for the z of every step: the same
    images as ddpm_sample(..., n=16, generator=...) with the same seed."""
    schedule = DiffusionSchedule(T=40)
    torch.manual_seed(0)
    model = UNet(channels=(8, 16, 16), time_dim=32).eval()
    eps_model = lambda x, t: model(x, t)  # noqa: E731
    gen = torch.Generator().manual_seed(2)
    x_T = torch.randn(4, 1, 28, 28, generator=gen)
    with torch.no_grad():
        yours = ddpm_sample_solution(eps_model, schedule, x_T, gen)
    library, _ = ddpm_sample(eps_model, schedule, n=4, generator=torch.Generator().manual_seed(2), image_range=False)
    assert torch.allclose(yours, library, atol=1e-4)


def test_passed_follows_the_latest_check(capsys):
    assert exercises.check("ddpm_sample", ddpm_sample_solution).right
    assert exercises.passed("ddpm_sample", ddpm_sample_solution)
    assert not exercises.check("ddpm_sample", sampler_with(noise_at_last=True)).right
    assert not exercises.passed("ddpm_sample")
