"""Self-checking exercises: reference answers pass, typical mistakes get their specific hint, nothing crashes."""

import pytest
import torch

from course_lib import exercises
from course_lib.exercises import EXERCISES, check, solution

RIGHT_ANSWERS = {
    "ae_loss": exercises.ae_loss_solution,
    "mask_pixels": exercises.mask_pixels_solution,
    "ae_params": 784 * 512 + 512 + 512 * 256 + 256 + 256 * 2 + 2,  # 533762
    "linear_ae": "b",
    "kl": exercises.kl_solution,
    "reparameterize": exercises.reparameterize_solution,
    "beta": "b",
    "gan_d_loss": exercises.gan_d_loss_solution,
    "g_loss_ns": exercises.g_loss_non_saturating_solution,
    "optimal_d": 0.75,
    "v_at_optimum": -1.3863,
    "q_sample": exercises.q_sample_solution,
    "reverse_step": exercises.reverse_step_solution,
    "signal_left": 0.0063,
    "one_hot": exercises.one_hot_solution,
    "guidance": exercises.guidance_solution,
    "pix2pix_g_loss": exercises.pix2pix_g_loss_solution,
    "guidance_cost": 100,
    "latent_factor": 4,
    "latent_scale": exercises.latent_scale_solution,
    "decode_when": "b",
}


def test_every_exercise_has_a_right_answer_here():
    assert set(RIGHT_ANSWERS) == set(EXERCISES)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_answer_passes(name, capsys):
    assert check(name, RIGHT_ANSWERS[name]) is True
    assert capsys.readouterr().out.startswith("Correct!")


def test_ae_params_answer_and_solution_are_the_encoders_parameter_count(capsys):
    from course_lib.autoencoders import MLPAutoencoder

    count = sum(p.numel() for p in MLPAutoencoder(latent_dim=2).encoder.parameters())
    assert RIGHT_ANSWERS["ae_params"] == count
    solution("ae_params")
    assert str(count) in capsys.readouterr().out


def mask_in_place(x, p):
    x[torch.rand_like(x) < p] = 0
    return x


@pytest.mark.parametrize(
    "name, answer, hint",
    [
        ("ae_loss", lambda x, x_hat: (x - x_hat).pow(2).mean(), "averaged over the pixels"),
        ("ae_loss", lambda x, x_hat: (x - x_hat).pow(2).sum(), "summed over the images"),
        ("ae_loss", lambda x, x_hat: (x - x_hat).abs().flatten(1).sum(1).mean(), "Square the difference"),
        ("mask_pixels", mask_in_place, "changed its input"),
        ("mask_pixels", lambda x, p: x * (torch.rand_like(x) >= 0.5), "about 30% of pixels"),
        ("ae_params", 784 * 512 + 512 * 256 + 256 * 2, "bias"),
        ("linear_ae", "a", "Eckart-Young"),
        ("kl", lambda m, lv: 0.5 * (1 + lv - m**2 - lv.exp()).sum(1), "sign is flipped"),
        ("kl", lambda m, lv: -(1 + lv - m**2 - lv.exp()).sum(1), "factor 2"),
        ("kl", lambda m, lv: -0.5 * (1 + lv - m**2 - lv.exp()).sum(), "one KL value per image"),
        ("kl", lambda m, lv: -0.5 * (1 + torch.log(lv**2) - m**2 - lv**2).sum(1), "logvar is log(sigma^2)"),
        ("reparameterize", lambda m, lv: torch.normal(m, (0.5 * lv).exp()), "torch.normal"),
        ("reparameterize", lambda m, lv: torch.normal(m.detach(), (0.5 * lv.detach()).exp()), "random node"),
        ("reparameterize", lambda m, lv: m + lv.exp() * torch.randn_like(m), "exp(logvar / 2)"),
        ("reparameterize", lambda m, lv: m + 0 * lv, "no randomness"),
        ("beta", "a", "beta multiplies the KL term"),
        ("beta", "c", "balance"),
    ],
)
def test_typical_mistakes_get_their_hint(name, answer, hint, capsys):
    assert check(name, answer) is False
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_empty_answer(name, capsys):
    assert check(name, None) is False
    assert "empty" in capsys.readouterr().out


def test_an_answer_that_raises_is_a_hint_not_a_crash(capsys):
    assert check("ae_loss", lambda x, x_hat: 1 / 0) is False
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert check("ae_params", "many") is False


def test_unknown_exercise_lists_the_real_ones():
    with pytest.raises(KeyError, match="ae_loss"):
        check("nope", 1)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_solution_prints_an_answer(name, capsys):
    solution(name)
    assert len(capsys.readouterr().out.strip()) > 0


@pytest.mark.parametrize("answer, hint", [
    (lambda r, f: torch.log(r).mean() + torch.log(1 - f).mean(), "sign is flipped"),
    (lambda r, f: -(torch.log(f).mean() + torch.log(1 - r).mean()), "swapped"),
    (lambda r, f: -(torch.log(r) + torch.log(1 - f)), "single number"),
])
def test_gan_d_loss_mistakes_get_their_hint(answer, hint, capsys):
    assert check("gan_d_loss", answer) is False
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [
    (lambda f: torch.log(1 - f).mean(), "saturates"),
    (lambda f: -torch.log(1 - f).mean(), "flips the target"),
])
def test_non_saturating_mistakes_get_their_hint(answer, hint, capsys):
    assert check("g_loss_ns", answer) is False
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("name, answer, hint", [
    ("optimal_d", 0.25, "real"), ("optimal_d", 3.0, "ratio"), ("v_at_optimum", 0.0, "constant remains"),
])
def test_gan_theory_mistakes_get_their_hint(name, answer, hint, capsys):
    assert check(name, answer) is False
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("name, answer, hint", [
    ("q_sample", lambda x0, a, e: a * x0 + (1 - a) * e, "square roots"),
    ("q_sample", lambda x0, a, e: (1 - a) ** 0.5 * x0 + a ** 0.5 * e, "swapped"),
    ("reverse_step", lambda x, e, b, a, z: (x - b / (1 - a) ** 0.5 * e) / (1 - b) ** 0.5, "fresh noise is missing"),
    ("reverse_step", lambda x, e, b, a, z: (x - (1 - a) ** 0.5 * e) / a ** 0.5, "predicted x_0"),
    ("signal_left", 4e-5, "square root"),
])
def test_diffusion_mistakes_get_their_hint(name, answer, hint, capsys):
    assert check(name, answer) is False
    assert hint in capsys.readouterr().out


def test_reverse_step_solution_matches_the_library_sampler_step():
    from course_lib.diffusion import DiffusionSchedule, ddpm_update

    schedule = DiffusionSchedule(T=1000)
    x_t, eps, z = torch.randn(2, 1, 28, 28), torch.randn(2, 1, 28, 28), torch.randn(2, 1, 28, 28)
    t = 500
    want = ddpm_update(schedule, x_t, t, eps, z)
    got = exercises.reverse_step_solution(x_t, eps, schedule.betas[t].item(), schedule.alpha_bars[t].item(), z)
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("name, answer, hint", [
    ("one_hot", lambda y: exercises.one_hot_solution(y).T, "transposed"),
    ("one_hot", lambda y: 1 - exercises.one_hot_solution(y), "swapped"),
    ("one_hot", lambda y: exercises.one_hot_solution(y).long(), "float"),
    ("guidance", lambda u, c, w: c + w * (c - u), "start from the unconditional"),
    ("guidance", lambda u, c, w: w * c, "not guidance"),
    ("pix2pix_g_loss", lambda d, f, t, lam: -torch.log(d).mean() + lam * (f - t).pow(2).mean(), "(L1)"),
    ("pix2pix_g_loss", lambda d, f, t, lam: -torch.log(d).mean() + (f - t).abs().mean(), "weight"),
    ("pix2pix_g_loss", lambda d, f, t, lam: torch.log(1 - d).mean() + lam * (f - t).abs().mean(), "minimax"),
    ("guidance_cost", 50, "two noise predictions"),
])
def test_conditional_mistakes_get_their_hint(name, answer, hint, capsys):
    assert check(name, answer) is False
    assert hint in capsys.readouterr().out


def test_library_agrees_with_the_lesson_5_solutions():
    from course_lib.conditional import guided_eps, one_hot

    y = torch.tensor([4, 1, 7])
    assert torch.equal(one_hot(y), exercises.one_hot_solution(y))
    u, c = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(guided_eps(u, c, 2.5), exercises.guidance_solution(u, c, 2.5))


@pytest.mark.parametrize("name", [n for n, v in RIGHT_ANSWERS.items() if callable(v)])
def test_a_function_that_still_returns_the_placeholder_is_told_so(name, capsys):
    assert check(name, lambda *args, **kwargs: ...) is False
    assert "still returns `...`" in capsys.readouterr().out


@pytest.mark.parametrize("name, answer, hint", [
    ("latent_factor", 16, "positions"),
    ("latent_factor", 0.25, "other way round"),
    ("latent_scale", lambda z: z.std(), "spread itself"),
    ("latent_scale", lambda z: 1 / z.abs().max(), "largest value"),
    ("decode_when", "a", "only ever saw"),
])
def test_latent_diffusion_mistakes_get_their_hint(name, answer, hint, capsys):
    assert check(name, answer) is False
    assert hint in capsys.readouterr().out
