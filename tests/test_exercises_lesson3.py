"""Lesson 3's exercises: every right answer passes, each typical mistake gets its own hint and never passes, an empty
answer is "not yet", and the training-step exercise agrees with the library's GANStep, which can then train with the
student's function."""

import copy
import math

import pytest
import torch

from course_lib import exercises
from course_lib.exercises.lesson3_gans import (g_loss_non_saturating_solution, gan_d_loss_solution,
                                               gan_step_solution)
from course_lib.gans import (GAN, DCGANDiscriminator, DCGANGenerator, GANStep, d_loss, g_loss_minimax,
                             g_loss_non_saturating, jensen_shannon)
from course_lib.training import fit

RIGHT = {
    "gan_d_loss": gan_d_loss_solution,
    "g_loss_ns": g_loss_non_saturating_solution,
    "optimal_d": 0.75,
    "v_at_optimum": -math.log(4),
    "jsd_disjoint": math.log(2),
    "gan_step": gan_step_solution,
}


def test_lesson_3_has_at_least_five_exercises_two_of_them_code():
    names = list(exercises.EXERCISES)
    lesson = names[names.index("gan_d_loss"):names.index("gan_step") + 1]
    assert lesson == list(RIGHT)
    assert sum(callable(exercises.EXERCISES[name].solution) for name in lesson) >= 2


def step_with(d_part, g_part, detach=True, zero_grad=True, noise="fresh", order="dg", scale_d=1.0):
    """A training step put together from parts, as a student might write it."""

    def step(G, D, opt_d, opt_g, real, z_d, z_g):
        def update_d():
            fake = G(z_d)
            loss = scale_d * d_part(D(real), D(fake.detach() if detach else fake))
            if zero_grad:
                opt_d.zero_grad()
            loss.backward()
            opt_d.step()
            return loss, fake

        def update_g(fake):
            loss = g_part(D(G(z_g) if noise == "fresh" else fake))
            if zero_grad:
                opt_g.zero_grad()
            loss.backward()
            opt_g.step()
            return loss

        if order == "dg":
            loss_d, fake = update_d()
            return loss_d, update_g(fake)
        loss_g = update_g(None)
        return update_d()[0], loss_g

    return step


MISTAKES = [
    ("gan_step", step_with(d_loss, g_loss_non_saturating, detach=False, zero_grad=False), "detach"),
    ("gan_step", step_with(d_loss, g_loss_non_saturating, detach=False), "detach"),
    ("gan_step", step_with(d_loss, g_loss_minimax), "saturates"),
    ("gan_step", step_with(d_loss, g_loss_non_saturating, zero_grad=False), "zero_grad"),
    ("gan_step", step_with(lambda r, f: -d_loss(r, f), g_loss_non_saturating), "wrong way"),
    ("gan_step", step_with(d_loss, g_loss_non_saturating, order="gd"), "update D first"),
    ("gan_step", step_with(d_loss, g_loss_non_saturating, noise="same"), "fresh noise"),
    ("gan_step", step_with(d_loss, g_loss_non_saturating, scale_d=0.5), "half of -V"),
    ("gan_step", lambda G, D, opt_d, opt_g, real, z_d, z_g: gan_step_solution(G, D, opt_d, opt_g, real, z_g, z_d),
     "swapped"),
    ("gan_step", lambda *args: gan_step_solution(*args)[0], "pair"),
    ("gan_step", lambda G, D, opt_d, opt_g, real, z_d, z_g: (d_loss(D(real), D(G(z_d))), torch.tensor(0.0)),
     "did not change"),
    ("jsd_disjoint", 0.0, "equal distributions"),
    ("jsd_disjoint", math.log(4), "half of it"),
    ("jsd_disjoint", 1.0, "bits"),
    ("jsd_disjoint", "far", "not one"),
]


@pytest.mark.parametrize("name, answer, hint", MISTAKES)
def test_a_typical_mistake_gets_its_hint_and_never_passes(name, answer, hint, capsys):
    assert not exercises.check(name, answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_the_students_step_written_with_cross_entropy_on_logits_also_passes(capsys):
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def with_bce(G, D, opt_d, opt_g, real, z_d, z_g):
        real_out, fake_out = D(real), D(G(z_d).detach())
        loss_d = bce(real_out, torch.ones_like(real_out)) + bce(fake_out, torch.zeros_like(fake_out))
        opt_d.zero_grad(), loss_d.backward(), opt_d.step()
        out = D(G(z_g))
        loss_g = bce(out, torch.ones_like(out))
        opt_g.zero_grad(), loss_g.backward(), opt_g.step()
        return loss_d.item(), loss_g.item()

    assert exercises.check("gan_step", with_bce).right, capsys.readouterr().out


def test_a_passed_step_is_the_one_the_lesson_trains_with(capsys):
    wrong = step_with(d_loss, g_loss_minimax)
    exercises.check("gan_step", wrong)
    assert not exercises.passed("gan_step", wrong)
    exercises.check("gan_step", gan_step_solution)
    assert exercises.passed("gan_step", gan_step_solution) and not exercises.passed("gan_step", wrong)


def small_dcgan() -> GAN:
    torch.manual_seed(0)
    return GAN(DCGANGenerator(z_dim=100, width=8), DCGANDiscriminator(width=8))


def test_gan_step_with_the_students_update_is_the_library_step():
    library, student = small_dcgan(), small_dcgan()
    settings = dict(lr_d=2e-3, lr_g=2e-3)
    step_lib = GANStep(library, generator=torch.Generator().manual_seed(1), **settings)
    step_own = GANStep(student, generator=torch.Generator().manual_seed(1), update=gan_step_solution, **settings)
    for real in torch.rand(3, 16, 1, 28, 28):
        assert step_lib(library, (real,)) == step_own(student, (real,))  # d_loss, g_loss, d_real, d_fake
    for (name, a), b in zip(library.state_dict().items(), student.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_dcgan_trains_with_the_students_step_and_augmentation():
    gan = small_dcgan()
    before = copy.deepcopy(gan.generator.state_dict())
    step = GANStep(gan, lr_d=2e-3, lr_g=2e-3, augment=1.0, generator=torch.Generator().manual_seed(0),
                   update=gan_step_solution)
    history = fit(gan, [(torch.rand(16, 1, 28, 28),) for _ in range(4)], step, None, epochs=1, progress=False)
    assert history.stopped is None and set(history.steps) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(0 < value < 1 for name in ("d_real", "d_fake") for value in history.steps[name])
    assert any(not torch.equal(before[name], value) for name, value in gan.generator.state_dict().items())


def test_an_own_update_is_only_for_the_plain_non_saturating_step():
    with pytest.raises(ValueError, match="non-saturating"):
        GANStep(small_dcgan(), loss="wgan_gp", update=gan_step_solution)
    with pytest.raises(ValueError, match="d_steps"):
        GANStep(small_dcgan(), d_steps=2, update=gan_step_solution)


def test_grading_the_step_leaves_the_students_random_generator_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    exercises.check("gan_step", step_with(d_loss, g_loss_non_saturating, zero_grad=False))
    assert torch.equal(torch.rand(3), expected)


def test_the_jsd_of_distributions_that_do_not_overlap_is_log_2():
    x = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    for gap in (1.0, 5.0):  # however far apart
        p, q = (x.abs() < 0.5).double(), ((x - gap - 1).abs() < 0.5).double()
        assert jensen_shannon(p, q, float(x[1] - x[0])) == pytest.approx(math.log(2), abs=1e-9)
