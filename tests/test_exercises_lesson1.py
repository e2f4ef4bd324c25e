"""Lesson 1's exercise "one training step, written out" (ae_train_step): the right answer passes, the usual mistakes
get their own hint and never pass, the empty placeholder is "not yet", and a step that passes trains exactly as the
library's loop does, which is what lets the lesson train its denoising autoencoder with the student's step."""

import copy

import pytest
import torch

from course_lib import exercises
from course_lib.autoencoders import ConvAutoencoder, ae_loss, random_corruption
from course_lib.exercises import check, passed, solution
from course_lib.exercises.lesson1_autoencoders import ae_train_step_solution
from course_lib.training import fit


def written_out(model, optimizer, x_in, x):
    """Another right answer: the loss written by hand, the tensor itself returned."""
    loss = (x - model(x_in)).pow(2).flatten(1).sum(1).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def step_with(loss_of, zero=True, backward=True, update=True, zero_last=False, returned="item"):
    """A training step with one thing changed: the loss, or which of zero_grad / backward / step it calls."""

    def train_step(model, optimizer, x_in, x):
        loss = loss_of(model, x_in, x)
        if zero and not zero_last:
            optimizer.zero_grad()
        if backward:
            loss.backward()
        if zero_last:
            optimizer.zero_grad()
        if update:
            optimizer.step()
        return {"item": lambda: loss.item(), "model": lambda: model, "none": lambda: None}[returned]()

    return train_step


RIGHT = lambda m, x_in, x: ae_loss(x, m(x_in))  # noqa: E731

MISTAKES = [
    (step_with(RIGHT, zero=False), "Call optimizer.zero_grad() before loss.backward()"),
    (step_with(RIGHT, update=False), "call optimizer.step()"),
    (step_with(RIGHT, backward=False), "no gradients"),
    (step_with(RIGHT, zero_last=True), "no gradients"),
    (step_with(lambda m, x_in, x: ae_loss(x_in, m(x_in))), "scored against the clean x"),
    (step_with(lambda m, x_in, x: ae_loss(x, m(x))), "scored against the clean x"),
    (step_with(lambda m, x_in, x: (m(x_in) - x).pow(2).mean()), "averages over the pixels"),
    (step_with(lambda m, x_in, x: (m(x_in) - x).pow(2).sum()), "sums over the images"),
    (step_with(lambda m, x_in, x: -ae_loss(x, m(x_in))), "wrong sign"),
    (step_with(RIGHT, returned="model"), "return the batch's loss as a number"),
    (step_with(RIGHT, returned="none"), "return the batch's loss as a number"),
    (lambda m, optimizer, x_in, x: step_with(RIGHT)(m, torch.optim.Adam(m.parameters()), x_in, x),
     "optimizer you are given"),
]


@pytest.mark.parametrize("answer", [ae_train_step_solution, written_out, step_with(RIGHT)])
def test_right_answers_pass(answer, capsys):
    assert check("ae_train_step", answer).right is True
    assert capsys.readouterr().out.startswith("Correct!")


@pytest.mark.parametrize("answer, hint", MISTAKES)
def test_typical_mistakes_get_their_hint_and_never_pass(answer, hint, capsys):
    assert check("ae_train_step", answer).right is False
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_the_notebooks_empty_placeholder_is_not_yet(capsys):
    def my_train_step(model, optimizer, x_in, x):
        # YOUR CODE HERE
        return None

    assert check("ae_train_step", my_train_step).right is False
    assert capsys.readouterr().out.startswith("Not yet")
    assert check("ae_train_step", None).right is False
    assert "empty" in capsys.readouterr().out
    assert check("ae_train_step", lambda *args: ...).right is False
    assert "still returns `...`" in capsys.readouterr().out


def test_passed_follows_the_last_check_of_that_very_function(capsys):
    def mine(model, optimizer, x_in, x):
        return ae_train_step_solution(model, optimizer, x_in, x)

    check("ae_train_step", step_with(RIGHT, zero=False))
    assert not passed("ae_train_step") and not passed("ae_train_step", mine)
    check("ae_train_step", mine)
    assert passed("ae_train_step", mine) and passed("ae_train_step")
    assert not passed("ae_train_step", written_out)  # another function than the one that was checked
    check("ae_train_step", None)
    assert not passed("ae_train_step", mine)
    with pytest.raises(KeyError, match="ae_train_step"):
        passed("ae_train_stepp")


def test_the_solution_shows_the_four_parts_of_a_step(capsys):
    solution("ae_train_step")
    out = capsys.readouterr().out
    for part in ("ae_loss(x, model(x_in))", "optimizer.zero_grad()", "loss.backward()", "optimizer.step()"):
        assert part in out


def test_grading_leaves_the_students_random_generator_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check("ae_train_step", ae_train_step_solution)
    assert torch.equal(torch.rand(3), expected)


def test_training_with_a_passing_step_gives_the_librarys_weights():
    """The lesson's denoising autoencoder trains with the student's step once it passes (fit without an optimizer):
    from the same start, with the same corruptions, it ends with the weights of fit's own update (Adam)."""
    torch.manual_seed(0)
    start = ConvAutoencoder(latent_dim=4, channels=4)
    batches = [(torch.rand(8, 1, 28, 28), torch.zeros(8)) for _ in range(3)]

    def library(model):
        noise = torch.Generator().manual_seed(1)
        step = lambda m, batch: ae_loss(batch[0], m(random_corruption(batch[0], generator=noise)))  # noqa: E731
        fit(model, batches, step, torch.optim.Adam(model.parameters(), lr=2e-3), epochs=2, progress=False)

    def students(model):
        noise, optimizer = torch.Generator().manual_seed(1), torch.optim.Adam(model.parameters(), lr=2e-3)
        step = lambda m, batch: ae_train_step_solution(  # noqa: E731
            m, optimizer, random_corruption(batch[0], generator=noise), batch[0])
        fit(model, batches, step, None, epochs=2, progress=False)

    a, b = copy.deepcopy(start), copy.deepcopy(start)
    library(a)
    students(b)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), start.parameters()))  # it did train
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.allclose(p.float(), q.float(), atol=1e-6)


def test_the_exercise_is_registered_after_lesson_1s_others():
    names = list(exercises.EXERCISES)
    assert names.index("ae_train_step") == names.index("linear_ae") + 1 < names.index("kl")


def test_the_checker_really_compares_with_fit():
    """A step that updates the weights on its own formula (not fit's) is told so, not passed: the reference is fit."""
    def plain_sgd_by_hand(model, optimizer, x_in, x):
        loss = ae_loss(x, model(x_in))
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p -= 2e-3 * g  # not the optimizer's learning rate
        return loss.item()

    assert check("ae_train_step", plain_sgd_by_hand).right is False


@pytest.mark.parametrize("name", ["ae_loss", "mask_pixels", "ae_train_step"])
def test_the_lessons_random_numbers_do_not_depend_on_whether_an_exercise_is_answered(name):
    """The models a lesson builds after an exercise draw their first weights from torch's generator: an answered
    exercise must leave it where the empty placeholder leaves it, so the student's run matches the instructor's."""
    from course_lib.exercises.lesson1_autoencoders import ae_loss_solution, mask_pixels_solution

    right = {"ae_loss": ae_loss_solution, "mask_pixels": mask_pixels_solution,
             "ae_train_step": ae_train_step_solution}[name]
    after = []
    for answer in (lambda *args: None, right):
        torch.manual_seed(0)
        check(name, answer)
        after.append(torch.rand(3))
    assert torch.equal(*after)
