"""Lesson 3: GAN losses against hand-computed values, the theory's numbers, one training step, the guards."""

import math

import pytest
import torch

from course_lib.data import make_loader
from course_lib.gans import (GAN, DCGANDiscriminator, DCGANGenerator, GANGuard, GANStep, MLPDiscriminator,
                             MLPGenerator, critic_loss_wasserstein, d_loss, g_loss_minimax, g_loss_non_saturating,
                             g_loss_wasserstein, gradient_penalty, jensen_shannon, optimal_discriminator,
                             value_function)
from course_lib.toy2d import sample_toy
from course_lib.training import fit


def logit(p):
    return torch.log(torch.tensor(p) / (1 - torch.tensor(p)))


def test_losses_match_hand_computed_values():
    real, fake = logit([0.8, 0.6]), logit([0.3, 0.1])
    v = (math.log(0.8) + math.log(0.6)) / 2 + (math.log(0.7) + math.log(0.9)) / 2
    assert value_function(real, fake).item() == pytest.approx(v, abs=1e-6)
    assert d_loss(real, fake).item() == pytest.approx(-v, abs=1e-6)
    assert g_loss_minimax(fake).item() == pytest.approx((math.log(0.7) + math.log(0.9)) / 2, abs=1e-6)
    assert g_loss_non_saturating(fake).item() == pytest.approx(-(math.log(0.3) + math.log(0.1)) / 2, abs=1e-6)
    assert critic_loss_wasserstein(torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 0.0])).item() == -3.5
    assert g_loss_wasserstein(torch.tensor([-1.0, 0.0])).item() == 0.5


def test_logit_losses_stay_finite_where_d_is_certain():
    sure = torch.tensor([60.0])  # sigmoid(60) rounds to 1 in float32: log(1 - D) computed naively would be -inf
    assert torch.isfinite(g_loss_minimax(sure)) and torch.isfinite(d_loss(sure, -sure))


def test_minimax_generator_gradient_vanishes_where_the_non_saturating_one_does_not():
    fake = logit([0.01]).requires_grad_()
    (minimax,) = torch.autograd.grad(g_loss_minimax(fake), fake)  # d/dl log(1 - sigmoid(l)) = -D
    (ns,) = torch.autograd.grad(g_loss_non_saturating(fake), fake)  # d/dl -log sigmoid(l) = -(1 - D)
    assert minimax.item() == pytest.approx(-0.01, rel=1e-4) and ns.item() == pytest.approx(-0.99, rel=1e-4)


def test_gradient_penalty_of_a_linear_critic_is_its_slope_minus_one_squared():
    critic = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[1.2, 1.6]]))  # ||grad|| = 2 everywhere
    penalty = gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2))
    assert penalty.item() == pytest.approx(1.0, abs=1e-6)


def test_optimal_discriminator_and_jensen_shannon():
    x = torch.linspace(-12, 12, 24001)
    dx = float(x[1] - x[0])
    p = torch.exp(-((x + 6) ** 2) / 2)
    q = torch.exp(-((x - 6) ** 2) / 2)
    assert jensen_shannon(p, q, dx) == pytest.approx(math.log(2), abs=1e-6)  # (almost) no overlap
    assert jensen_shannon(p, p, dx) == pytest.approx(0.0, abs=1e-9)
    d_star = optimal_discriminator(p, p)
    assert torch.allclose(d_star[p > 1e-6], torch.tensor(0.5))
    # V(D*, G) = 2 JSD - log 4, evaluated by integration on the grid
    p_n, q_n = p / (p.sum() * dx), torch.exp(-((x - 1) ** 2) / 2)
    q_n = q_n / (q_n.sum() * dx)
    d = optimal_discriminator(p_n, q_n)
    v = float((p_n * torch.log(d.clamp_min(1e-30)) + q_n * torch.log((1 - d).clamp_min(1e-30))).sum() * dx)
    assert v == pytest.approx(2 * jensen_shannon(p_n, q_n, dx) - math.log(4), abs=1e-5)


def toy_gan(seed=0):
    torch.manual_seed(seed)
    return GAN(MLPGenerator(), MLPDiscriminator())


def test_one_step_moves_d_and_g_the_way_their_losses_say():
    real = sample_toy("ring", 1024, torch.Generator().manual_seed(0))
    z = torch.randn(1024, 2, generator=torch.Generator().manual_seed(1))

    def losses(gan):
        with torch.no_grad():
            fake_logits = gan.discriminator(gan.generator(z))
            return d_loss(gan.discriminator(real), fake_logits).item(), g_loss_non_saturating(fake_logits).item()

    gan = toy_gan()
    d_before, _ = losses(gan)
    GANStep(gan, lr_d=1e-3, lr_g=0.0)(gan, (real,))
    d_after, _ = losses(gan)
    assert d_after < d_before  # D got better at telling real from fake

    gan = toy_gan()
    _, g_before = losses(gan)
    GANStep(gan, lr_d=0.0, lr_g=1e-3)(gan, (real,))
    _, g_after = losses(gan)
    assert g_after < g_before  # G's samples fool D a little more


def test_step_logs_probabilities_or_critic_scores():
    real = sample_toy("ring", 64)
    logs = GANStep(gan := toy_gan(), "minimax", d_steps=2)(gan, (real,))
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake"} and 0 < logs["d_fake"] < 1
    logs = GANStep(gan := toy_gan(), "wgan_gp")(gan, (real,))
    assert set(logs) == {"d_loss", "g_loss", "critic_real", "critic_fake"}


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="non_saturating"):
        GANStep(toy_gan(), loss="hinge")
    with pytest.raises(ValueError, match="at least 1"):
        GANStep(toy_gan(), d_steps=0)


def test_nan_loss_stops_training_and_keeps_the_weights_finite():
    gan = toy_gan()
    batches = [(sample_toy("ring", 64),), (torch.full((64, 2), float("nan")),), (sample_toy("ring", 64),)]
    history = fit(gan, batches, GANStep(gan), None, epochs=3, progress=False)
    assert history.stopped == "nan" and len(history.steps["d_loss"]) == 1
    assert all(torch.isfinite(p).all() for p in gan.parameters())


def test_guard_stops_when_the_discriminator_wins_for_long(capsys):
    gan = toy_gan()
    crushed = lambda model, batch: {"d_loss": 0.01, "g_loss": 9.0, "d_real": 0.999, "d_fake": 0.0001}
    history = fit(gan, [(torch.zeros(1),)] * 10, crushed, None, epochs=5, callbacks=[GANGuard(patience=20)],
                  progress=False)
    assert history.stopped == "d_wins" and len(history.steps["d_fake"]) == 20
    assert "discriminator has won" in capsys.readouterr().out
    healthy = lambda model, batch: {"d_loss": 1.3, "g_loss": 0.7, "d_real": 0.55, "d_fake": 0.45}
    history = fit(gan, [(torch.zeros(1),)] * 10, healthy, None, epochs=5, callbacks=[GANGuard(patience=20)],
                  progress=False)
    assert history.stopped is None and history.epoch == 5


def test_dcgan_shapes_range_and_z_of_100():
    gan = GAN(DCGANGenerator(), DCGANDiscriminator())
    assert gan.z_dim == 100
    images = gan.sample(5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    assert gan.discriminator(images).shape == (5,)
    assert gan.training  # sample() puts the model back in the mode it found it in


def test_dcgan_trains_with_fit_and_the_losses_are_logged():
    torch.manual_seed(0)
    gan = GAN(DCGANGenerator(width=8), DCGANDiscriminator(width=8))
    data = torch.utils.data.TensorDataset(torch.rand(64, 1, 28, 28))
    history = fit(gan, make_loader(data, 16), GANStep(gan), None, epochs=2, progress=False)
    assert history.epoch == 2 and len(history.steps["g_loss"]) == 8 and history.stopped is None


def test_wrong_noise_or_image_shapes_are_clear_errors():
    gan = GAN(DCGANGenerator(), DCGANDiscriminator())
    with pytest.raises(ValueError, match=r"noise shaped \(B, 100\).*sample_z"):
        gan.generator(torch.randn(4, 64))
    with pytest.raises(ValueError, match=r"z.view\(1, 100\)"):
        gan.generator(torch.randn(100))
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        gan.discriminator(torch.rand(4, 784))
    with pytest.raises(ValueError, match=r"noise shaped \(B, 2\)"):
        MLPGenerator()(torch.randn(8, 3))
