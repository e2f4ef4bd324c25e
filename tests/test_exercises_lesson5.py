"""Lesson 5's exercises: every right answer passes, each typical mistake gets its own hint and never passes, an empty
answer is "not yet", and the guided noise prediction agrees with the library's `GuidedModel`, so the lesson's
guidance slider can sample with the student's function."""

import pytest
import torch

from course_lib import exercises
from course_lib.conditional import GuidedModel
from course_lib.diffusion import DiffusionSchedule, ddim_sample
from course_lib.diffusion_theory import classifier_guided_eps
from course_lib.exercises.lesson5_conditional import (classifier_guidance_solution, guidance_solution,
                                                      guided_model_solution, one_hot_solution,
                                                      pix2pix_g_loss_solution)
from course_lib.unet import UNet

RIGHT = {  # in the notebook's order
    "one_hot": one_hot_solution,
    "pix2pix_g_loss": pix2pix_g_loss_solution,
    "classifier_guidance": classifier_guidance_solution,
    "guidance": guidance_solution,
    "paper_w": 3,
    "guided_model": guided_model_solution,
    "guidance_cost": 100,
}


def test_lesson_5_has_at_least_five_exercises_two_of_them_the_lessons_code():
    names = list(exercises.EXERCISES)
    lesson = names[names.index("one_hot"):names.index("guidance_cost") + 1]
    assert lesson == list(RIGHT)
    assert sum(callable(exercises.EXERCISES[name].solution) for name in lesson) >= 2


def test_the_notebooks_ellipsis_placeholder_for_a_number_is_not_yet(capsys):
    assert not exercises.check("paper_w", ...).right
    assert "empty" in capsys.readouterr().out


def guided_with(empty="num_classes", form="lesson", conditional=True, unconditional=True, swap=False):
    """A guided noise prediction put together from parts, as a student might write it."""

    def guided(unet, x_t, t, y, w):
        blank = torch.full_like(y, unet.num_classes) if empty == "num_classes" else torch.zeros_like(y)
        eps_c = unet(x_t, t, y) if conditional else unet(x_t, t)
        eps_u = unet(x_t, t, blank)
        if swap:
            eps_c, eps_u = eps_u, eps_c
        if not unconditional:
            return eps_c
        return (1 + w) * eps_c - w * eps_u if form == "paper" else eps_u + w * (eps_c - eps_u)

    return guided


MISTAKES = [
    ("guided_model", guided_with(empty="zero"), "label 0 is the digit zero"),
    ("guided_model", guided_with(form="paper"), "this lesson's w is theirs + 1"),
    ("guided_model", guided_with(swap=True), "swapped"),
    ("guided_model", guided_with(conditional=False), "both predictions came out unconditional"),
    ("guided_model", guided_with(unconditional=False), "only the conditional prediction"),
    ("classifier_guidance", lambda e, g, a, s: e + s * (1 - a) ** 0.5 * g, "sign is flipped"),
    ("classifier_guidance", lambda e, g, a, s: e - s * g, "score's units"),
    ("classifier_guidance", lambda e, g, a, s: e - s * (1 - a) * g, "not by 1 - abar_t"),
    ("classifier_guidance", lambda e, g, a, s: e - s * a ** 0.5 * g, "not by sqrt(abar_t)"),
    ("classifier_guidance", lambda e, g, a, s: e - (1 - a) ** 0.5 * g, "scale s multiplies"),
    ("paper_w", 1, "other way round"),
    ("paper_w", 2, "the two forms differ"),
    ("paper_w", "three", "not one"),
    ("guidance", lambda u, c, w: c + w * (c - u), "start from the unconditional"),
    ("guidance_cost", 50, "two noise predictions"),
]


@pytest.mark.parametrize("name, answer, hint", MISTAKES)
def test_typical_mistakes_get_their_hint(name, answer, hint, capsys):
    assert not exercises.check(name, answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_the_library_functions_themselves_are_right_answers(capsys):
    def library_guided(unet, x_t, t, y, w):
        return GuidedModel(unet, y, w, fast=False)(x_t, t)

    def library_classifier_guided(eps, grad, abar, s):
        return classifier_guided_eps(eps, grad, abar, s)

    assert exercises.check("guided_model", library_guided).right, capsys.readouterr().out
    assert exercises.check("classifier_guidance", library_classifier_guided).right, capsys.readouterr().out


def test_one_batched_call_is_as_right_as_two_calls(capsys):
    def batched(unet, x_t, t, y, w):
        eps_c, eps_u = unet(torch.cat([x_t, x_t]), torch.cat([t, t]),
                            torch.cat([y, torch.full_like(y, unet.num_classes)])).chunk(2)
        return eps_u + w * (eps_c - eps_u)

    assert exercises.check("guided_model", batched).right, capsys.readouterr().out


def test_the_slider_samples_with_the_students_function_as_with_the_librarys():
    """The lesson's guidance slider wraps my_guided_eps as the sampler's eps_model: the same DDIM samples as
    GuidedModel from the same noise."""
    schedule = DiffusionSchedule(T=100)
    torch.manual_seed(0)
    unet = UNet(channels=(8, 16, 16), time_dim=32, num_classes=10).eval()
    labels, noise = torch.tensor([1, 7, 3]), torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    for w in (0.0, 2.0):
        yours, _ = ddim_sample(lambda x, t: guided_model_solution(unet, x, t, labels, w), schedule, noise=noise,
                               steps=5)
        library, _ = ddim_sample(GuidedModel(unet, labels, w, fast=False), schedule, noise=noise, steps=5)
        assert torch.allclose(yours, library, atol=1e-4)
