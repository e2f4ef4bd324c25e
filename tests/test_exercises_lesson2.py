"""Lesson 2's new exercises: the training step (vae_step, the negative ELBO through the reparameterization trick) and
the importance-sampled estimate of log p(x) (log_px). Right answers pass, the usual mistakes get their own hint and
never pass, the empty placeholder is "not yet", and a step that passes trains exactly as the library's does."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import exercises
from course_lib.exercises import check, passed, solution
from course_lib.exercises.lesson2_vae import log_px_solution, vae_step_solution
from course_lib.training import fit
from course_lib.vae import (MLPVAE, bernoulli_nll, importance_sampled_log_px, kl_to_standard_normal, reparameterize,
                            vae_step)


def step_with(z_of=reparameterize, recon_of=lambda x, logits: bernoulli_nll(x, logits).mean(),
              kl_of=lambda mu, logvar: kl_to_standard_normal(mu, logvar).mean(), loss_of=lambda r, k: r + k):
    """A VAE step with one part changed: how z is drawn, the reconstruction term, the KL, or how they add up."""

    def step(model, batch):
        x = batch[0]
        mu, logvar = model.encode(x)
        recon, kl = recon_of(x, model.decoder(z_of(mu, logvar))), kl_of(mu, logvar)
        return {"loss": loss_of(recon, kl), "recon": recon, "kl": kl}

    return step


def sampled_without_gradient(mu, logvar):
    return torch.distributions.Normal(mu, (0.5 * logvar).exp()).sample()


VAE_RIGHT = [
    vae_step_solution,
    vae_step(),  # the library's own step
    step_with(z_of=lambda mu, logvar: torch.distributions.Normal(mu, (0.5 * logvar).exp()).rsample()),
    step_with(recon_of=lambda x, logits: F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum") / len(x)),
]

VAE_MISTAKES = [
    (step_with(loss_of=lambda r, k: r - k), "sign of the KL is flipped"),
    (step_with(loss_of=lambda r, k: r), "KL term is missing"),
    (step_with(z_of=lambda mu, logvar: mu), "decoded mu itself"),
    (step_with(z_of=lambda mu, logvar: mu + logvar.exp() * torch.randn_like(mu)), "sigma = exp(logvar / 2)"),
    (step_with(recon_of=lambda x, logits: (x - torch.sigmoid(logits)).pow(2).flatten(1).sum(1).mean()),
     "not the squared error"),
    (step_with(recon_of=lambda x, logits: bernoulli_nll(x, torch.sigmoid(logits)).mean()), "gives logits"),
    (step_with(recon_of=lambda x, logits: F.binary_cross_entropy_with_logits(logits, x)),
     "averaged the reconstruction"),
    (step_with(recon_of=lambda x, logits: bernoulli_nll(x, logits).sum(),
               kl_of=lambda mu, logvar: kl_to_standard_normal(mu, logvar).sum()), "summed over the images"),
    (step_with(kl_of=lambda mu, logvar: kl_to_standard_normal(mu, logvar)), "each entry is one number"),
    (step_with(kl_of=lambda mu, logvar: -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1).mean() * 2), "closed form"),
    (step_with(z_of=lambda mu, logvar: reparameterize(mu, logvar).detach()), "other gradients"),
    (step_with(z_of=sampled_without_gradient), "other gradients"),
    (step_with(z_of=lambda mu, logvar: mu + (0.5 * logvar).exp() * torch.randn(
        mu.shape, generator=torch.Generator().manual_seed(99))), "torch.randn_like(mu)"),
    (lambda model, batch: vae_step()(model, batch)["loss"], "return a dict"),
    (lambda model, batch: {k: v.item() for k, v in vae_step()(model, batch).items()}, "no gradient"),
]


@pytest.mark.parametrize("answer", VAE_RIGHT)
def test_vae_step_right_answers_pass(answer, capsys):
    assert check("vae_step", answer).right is True
    assert capsys.readouterr().out.startswith("Correct!")


@pytest.mark.parametrize("answer, hint", VAE_MISTAKES)
def test_vae_step_mistakes_get_their_hint_and_never_pass(answer, hint, capsys):
    assert check("vae_step", answer).right is False
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


LOG_PX_MISTAKES = [
    (lambda log_w: log_w.exp().mean(-1).log(), "underflows"),
    (lambda log_w: log_w.mean(-1), "estimate of the ELBO"),
    (lambda log_w: torch.logsumexp(log_w, dim=-1), "subtract log K"),
    (lambda log_w: log_w.max(-1).values, "largest log-weight"),
    (lambda log_w: torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1]), "last dimension"),
    (lambda log_w: torch.logsumexp(log_w, dim=-1) - math.log(log_w.shape[1]), "logsumexp over the K samples"),
]


@pytest.mark.parametrize("answer", [
    log_px_solution, importance_sampled_log_px,
    lambda log_w: log_w.amax(-1) + (log_w - log_w.amax(-1, keepdim=True)).exp().mean(-1).log(),  # shifted by the max
])
def test_log_px_right_answers_pass(answer, capsys):
    assert check("log_px", answer).right is True
    assert capsys.readouterr().out.startswith("Correct!")


@pytest.mark.parametrize("answer, hint", LOG_PX_MISTAKES)
def test_log_px_mistakes_get_their_hint_and_never_pass(answer, hint, capsys):
    assert check("log_px", answer).right is False
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


@pytest.mark.parametrize("name", ["vae_step", "log_px"])
def test_the_notebooks_empty_placeholder_is_not_yet(name, capsys):
    def placeholder(*args):
        # YOUR CODE HERE
        return None

    assert check(name, placeholder).right is False
    assert capsys.readouterr().out.startswith("Not yet")
    assert check(name, None).right is False
    assert "empty" in capsys.readouterr().out
    assert check(name, lambda *args: ...).right is False
    assert "still returns `...`" in capsys.readouterr().out


@pytest.mark.parametrize("name, right", [("vae_step", vae_step_solution), ("log_px", log_px_solution)])
def test_passed_is_true_only_for_the_function_last_checked_right(name, right, capsys):
    check(name, lambda *args: None)
    assert not passed(name, right)
    check(name, right)
    assert passed(name, right) and not passed(name, print)


@pytest.mark.parametrize("name, lines", [
    ("vae_step", ["reparameterize(mu, logvar)", "model.decoder(z)", "kl_to_standard_normal(mu, logvar).mean()"]),
    ("log_px", ["torch.logsumexp(log_w, dim=-1) - math.log(K)"]),
])
def test_the_solutions_show_the_formula(name, lines, capsys):
    solution(name)
    out = capsys.readouterr().out
    assert all(line in out for line in lines)


@pytest.mark.parametrize("name, right", [("vae_step", vae_step_solution), ("log_px", log_px_solution)])
def test_grading_leaves_the_students_random_generator_alone(name, right):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check(name, right)
    assert torch.equal(torch.rand(3), expected)


def test_training_with_a_passing_step_gives_the_librarys_weights():
    """The lesson trains its 2-D VAE with the student's step once it passes: same seed, same weights."""
    torch.manual_seed(0)
    start = MLPVAE(latent_dim=2, hidden=(32, 16))
    batches = [(torch.rand(8, 1, 28, 28), torch.zeros(8)) for _ in range(3)]
    trained = []
    for step in (vae_step(), vae_step_solution):
        model = copy.deepcopy(start)
        torch.manual_seed(1)
        fit(model, batches, step, torch.optim.Adam(model.parameters(), lr=2e-3), epochs=2, progress=False)
        trained.append(model)
    a, b = trained
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), start.parameters()))
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))


def test_the_solution_agrees_with_the_librarys_estimator_on_any_shape():
    log_w = -150 + 5 * torch.randn(3, 4, 25)
    assert torch.allclose(log_px_solution(log_w), importance_sampled_log_px(log_w))
    assert importance_sampled_log_px(log_w).shape == (3, 4)


def test_the_exercises_are_registered_in_the_notebooks_order():
    names = list(exercises.EXERCISES)
    i = names.index("kl")
    assert names[i:i + 5] == ["kl", "reparameterize", "vae_step", "log_px", "beta"]


@pytest.mark.parametrize("name", ["kl", "reparameterize", "vae_step", "log_px"])
def test_the_lessons_random_numbers_do_not_depend_on_whether_an_exercise_is_answered(name):
    """The 2-D VAE is built after exercises 1-3: an answered exercise must leave torch's generator where the empty
    placeholder leaves it, so the student's VAE starts from the instructor's weights."""
    from course_lib.exercises.lesson2_vae import kl_solution, reparameterize_solution

    right = {"kl": kl_solution, "reparameterize": reparameterize_solution, "vae_step": vae_step_solution,
             "log_px": log_px_solution}[name]
    after = []
    for answer in (lambda *args: None, right):
        torch.manual_seed(0)
        check(name, answer)
        after.append(torch.rand(3))
    assert torch.equal(*after)
