"""Self-checking exercises: reference answers pass, typical mistakes get their specific hint, nothing crashes, and
the graders expect the library's numbers."""

import inspect
import re

import pytest
import torch

from course_lib.exercises.lesson7_gan_architectures import adain_solution, fade_solution, mode_seeking_solution

from course_lib import exercises
from course_lib.exercises import EXERCISES, Exercise, check, register, solution
from course_lib.exercises.lesson1_autoencoders import ae_loss_solution, ae_train_step_solution, mask_pixels_solution
from course_lib.exercises.lesson2_vae import kl_solution, log_px_solution, reparameterize_solution, vae_step_solution
from course_lib.exercises.lesson3_gans import g_loss_non_saturating_solution, gan_d_loss_solution, gan_step_solution
from course_lib.exercises.lesson4_diffusion import (ddpm_loss_solution, ddpm_sample_solution, q_sample_solution,
                                                    reverse_step_solution)
from course_lib.exercises.lesson5_conditional import (classifier_guidance_solution, guidance_solution,
                                                      guided_model_solution, one_hot_solution, pix2pix_g_loss_solution)
from course_lib.exercises.lesson6_latent_diffusion import latent_decode_solution, latent_scale_solution
from course_lib.exercises.lesson8_restoration import (pixel_shuffle_solution, psnr_solution, repaint_merge_solution,
                                                      sdedit_start_solution)
from course_lib.editing import repaint
from course_lib.flow import sample_flow
from course_lib.recipes import REFLOW
from course_lib.exercises.lesson9_score_and_flow import (euler_sample_solution, flow_loss_solution, heun_step_solution,
                                                         langevin_step_solution, score_solution)
from course_lib.exercises.lesson10_text_to_image import (clip_loss_solution, cross_attention_solution,
                                                         vector_quantize_solution)

REPAINT_STEPS, REPAINT_RESAMPLE = (inspect.signature(repaint).parameters[p].default for p in ("steps", "resample"))

NAMES = (  # the exercises the notebooks call, in lesson order
    "ae_loss", "mask_pixels", "ae_params", "linear_ae", "ae_train_step", "kl", "reparameterize", "vae_step", "log_px",
    "beta", "gan_d_loss", "g_loss_ns",
    "optimal_d", "v_at_optimum", "jsd_disjoint", "gan_step", "q_sample", "signal_left", "ddpm_loss", "reverse_step", "ddpm_sample", "one_hot",
    "pix2pix_g_loss", "classifier_guidance", "guidance", "paper_w", "guided_model", "guidance_cost", "latent_factor", "latent_scale", "unscaled_snr",
    "latent_decode", "decode_when", "adain", "fade_in", "mode_seeking", "psi_zero",
    "identity_level", "psnr", "pixel_shuffle", "psnr_paradox", "sdedit_start", "repaint_merge", "repaint_calls",
    "score_from_eps", "langevin_step", "flow_loss", "euler_sampler", "heun_step", "one_step_nfe",
    "vq_quantize", "clip_loss", "cross_attention", "code_bits", "perplexity", "caption_dropout", "prior_passes",
    "held_out",
)

RIGHT_ANSWERS = {
    "ae_loss": ae_loss_solution,
    "mask_pixels": mask_pixels_solution,
    "ae_params": 784 * 512 + 512 + 512 * 256 + 256 + 256 * 2 + 2,  # 533762
    "linear_ae": "b",
    "ae_train_step": ae_train_step_solution,
    "kl": kl_solution,
    "reparameterize": reparameterize_solution,
    "vae_step": vae_step_solution,
    "log_px": log_px_solution,
    "beta": "b",
    "gan_d_loss": gan_d_loss_solution,
    "g_loss_ns": g_loss_non_saturating_solution,
    "jsd_disjoint": 0.6931,
    "gan_step": gan_step_solution,
    "optimal_d": 0.75,
    "v_at_optimum": -1.3863,
    "q_sample": q_sample_solution,
    "reverse_step": reverse_step_solution,
    "signal_left": 0.0063,
    "ddpm_loss": ddpm_loss_solution,
    "ddpm_sample": ddpm_sample_solution,
    "one_hot": one_hot_solution,
    "guidance": guidance_solution,
    "pix2pix_g_loss": pix2pix_g_loss_solution,
    "classifier_guidance": classifier_guidance_solution,
    "paper_w": 3,
    "guided_model": guided_model_solution,
    "guidance_cost": 100,
    "latent_factor": 4,
    "latent_scale": latent_scale_solution,
    "unscaled_snr": 25,
    "latent_decode": latent_decode_solution,
    "decode_when": "b",
    "adain": adain_solution,
    "fade_in": fade_solution,
    "mode_seeking": mode_seeking_solution,
    "psi_zero": "b",
    "identity_level": "a",
    "psnr": psnr_solution,
    "pixel_shuffle": pixel_shuffle_solution,
    "psnr_paradox": "b",
    "sdedit_start": sdedit_start_solution,
    "repaint_merge": repaint_merge_solution,
    "repaint_calls": (REPAINT_STEPS - 1) * REPAINT_RESAMPLE + 1,  # every step but the last is done `resample` times
    "score_from_eps": score_solution,
    "langevin_step": langevin_step_solution,
    "flow_loss": flow_loss_solution,
    "euler_sampler": euler_sample_solution,
    "heun_step": heun_step_solution,
    "one_step_nfe": sample_flow(lambda x, t: 0 * x, noise=torch.zeros(1, 2), steps=REFLOW.pair_solver[1],
                                method=REFLOW.pair_solver[0], image_range=False)[1].nfe,  # the calls that made the pairs
    "vq_quantize": vector_quantize_solution,
    "clip_loss": clip_loss_solution,
    "cross_attention": cross_attention_solution,
    "code_bits": 14 * 14 * 8,  # 196 codes, each one of 256: 8 bits
    "perplexity": 2**1.5,  # usage (1/2, 1/4, 1/4): entropy 1.5 bits
    "caption_dropout": "b",
    "prior_passes": "b",
    "held_out": "b",
}


def test_the_exercise_names_are_the_ones_the_notebooks_use():
    assert tuple(exercises.EXERCISES) == NAMES  # `from course_lib import exercises`, as the notebooks do
    assert exercises.check is check and exercises.solution is solution


def test_every_exercise_has_a_right_answer_here():
    assert set(RIGHT_ANSWERS) == set(EXERCISES)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_answer_passes(name, capsys):
    assert check(name, RIGHT_ANSWERS[name]).right is True
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


MISTAKES_1_2 = [
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
    ("ae_train_step", lambda m, opt, x_in, x: ae_loss_solution(x, m(x_in)).item(), "no gradients"),
    ("vae_step", lambda m, batch: {k: v.item() for k, v in vae_step_solution(m, batch).items()}, "no gradient"),
    ("log_px", lambda log_w: log_w.mean(-1), "estimate of the ELBO"),
]  # more of lessons 1 and 2's in tests/test_exercises_lesson1.py and tests/test_exercises_lesson2.py


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_empty_answer(name, capsys):
    assert check(name, None).right is False
    assert "empty" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(name for name, e in EXERCISES.items() if callable(e.solution)))
def test_the_notebooks_placeholder_function_is_not_yet(name, capsys):
    def placeholder(*args):
        # YOUR CODE HERE
        return None

    assert not check(name, placeholder).right
    assert capsys.readouterr().out.startswith("Not yet")


def test_an_answer_that_raises_is_a_hint_not_a_crash(capsys):
    assert check("ae_loss", lambda x, x_hat: 1 / 0).right is False
    assert "ZeroDivisionError" in capsys.readouterr().out
    assert check("ae_params", "many").right is False


def test_unknown_exercise_lists_the_real_ones():
    with pytest.raises(KeyError, match="ae_loss"):
        check("nope", 1)


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="kl"):
        register(kl=Exercise("?", lambda answer: (True, ""), "-"))
    assert tuple(EXERCISES) == NAMES


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_solution_prints_an_answer(name, capsys):
    solution(name)
    assert len(capsys.readouterr().out.strip()) > 0


def test_a_printed_solution_shows_the_formula(capsys):
    solution("kl")
    assert "-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)" in capsys.readouterr().out


MISTAKES_GAN_D = [
    (lambda r, f: torch.log(r).mean() + torch.log(1 - f).mean(), "sign is flipped"),
    (lambda r, f: -(torch.log(f).mean() + torch.log(1 - r).mean()), "swapped"),
    (lambda r, f: -(torch.log(r) + torch.log(1 - f)), "single number"),
]


@pytest.mark.parametrize("answer, hint", MISTAKES_GAN_D)
def test_gan_d_loss_mistakes_get_their_hint(answer, hint, capsys):
    assert check("gan_d_loss", answer).right is False
    assert hint in capsys.readouterr().out


MISTAKES_G_NS = [
    (lambda f: torch.log(1 - f).mean(), "saturates"),
    (lambda f: -torch.log(1 - f).mean(), "flips the target"),
]


@pytest.mark.parametrize("answer, hint", MISTAKES_G_NS)
def test_non_saturating_mistakes_get_their_hint(answer, hint, capsys):
    assert check("g_loss_ns", answer).right is False
    assert hint in capsys.readouterr().out


MISTAKES_GAN_THEORY = [
    ("optimal_d", 0.25, "real"), ("optimal_d", 3.0, "ratio"), ("v_at_optimum", 0.0, "constant remains"),
    ("v_at_optimum", -0.6931, "two terms"), ("jsd_disjoint", 0.0, "equal distributions"),
    ("gan_step", lambda G, D, opt_d, opt_g, real, z_d, z_g: gan_step_solution(G, D, opt_d, opt_g, real, z_g, z_d),
     "swapped"),
]  # more of lesson 3's in tests/test_exercises_lesson3.py


MISTAKES_DIFFUSION = [
    ("q_sample", lambda x0, a, e: a * x0 + (1 - a) * e, "square roots"),
    ("q_sample", lambda x0, a, e: (1 - a) ** 0.5 * x0 + a ** 0.5 * e, "swapped"),
    ("reverse_step", lambda x, e, b, a, z: (x - b / (1 - a) ** 0.5 * e) / (1 - b) ** 0.5, "fresh noise is missing"),
    ("reverse_step", lambda x, e, b, a, z: (x - b / (1 - a) ** 0.5 * e) / (1 - b) ** 0.5 + b * z, "sqrt(beta_t)"),
    ("reverse_step", lambda x, e, b, a, z: (x - (1 - a) ** 0.5 * e) / a ** 0.5, "predicted x_0"),
    ("signal_left", 4e-5, "square root"),
    ("ddpm_loss", lambda m, s, x0, g, gamma=None: ddpm_loss_solution(m, s, x0, g, gamma).detach(), "no gradient"),
    ("ddpm_sample", lambda m, s, x_T, g: ddpm_sample_solution(m, s, x_T, g).clamp(-1, 1), "without clipping"),
]  # more of lesson 4's in tests/test_exercises_lesson4.py


MISTAKES_CONDITIONAL = [
    ("one_hot", lambda y: one_hot_solution(y).T, "transposed"),
    ("one_hot", lambda y: 1 - one_hot_solution(y), "swapped"),
    ("one_hot", lambda y: one_hot_solution(y).long(), "float"),
    ("guidance", lambda u, c, w: c + w * (c - u), "start from the unconditional"),
    ("guidance", lambda u, c, w: w * c, "not guidance"),
    ("pix2pix_g_loss", lambda d, f, t, lam: -torch.log(d).mean() + lam * (f - t).pow(2).mean(), "(L1)"),
    ("pix2pix_g_loss", lambda d, f, t, lam: -torch.log(d).mean() + (f - t).abs().mean(), "weight"),
    ("pix2pix_g_loss", lambda d, f, t, lam: torch.log(1 - d).mean() + lam * (f - t).abs().mean(), "minimax"),
    ("guidance_cost", 50, "two noise predictions"),
    ("classifier_guidance", lambda e, g, a, s: e + s * (1 - a) ** 0.5 * g, "sign is flipped"),
    ("paper_w", 2, "the two forms differ"),
    ("guided_model", lambda unet, x, t, y, w: unet(x, t, y), "only the conditional prediction"),
]  # more of lesson 5's in tests/test_exercises_lesson5.py


MISTAKES_LATENT = [
    ("latent_factor", 16, "positions"),
    ("latent_factor", 0.25, "other way round"),
    ("latent_scale", lambda z: z.std(), "spread itself"),
    ("latent_scale", lambda z: 1 / z.abs().max(), "largest value"),
    ("decode_when", "a", "only ever saw"),
    ("unscaled_snr", 5, "square"),
    ("latent_decode", lambda autoencoder, z, scale: autoencoder.eval().decode(z), "still scaled"),
]  # more of lesson 6's in tests/test_exercises_lesson6.py


MISTAKES_GAN_ARCHITECTURES = [
    ("adain", lambda h, s, b: (1 + s[:, :, None, None]) * (h - h.mean()) / h.std() + b[:, :, None, None],
     "each feature map on its own"),
    ("adain", lambda h, s, b: s[:, :, None, None] * (h - h.mean((2, 3), True)) / h.std((2, 3), keepdim=True, unbiased=False)
     + b[:, :, None, None], "(1 + scale)"),
    ("fade_in", lambda old, new, alpha: alpha * old + (1 - alpha) * new, "the other way round"),
    ("mode_seeking", lambda f1, f2, z1, z2: ((f1 - f2).abs().flatten(1).mean(1)
                                              / (z1 - z2).abs().flatten(1).mean(1)).mean(), "inverse"),
    ("psi_zero", "a", "what is left of z"),
    ("psi_zero", "bogus", "answer 'a', 'b' or 'c'"),
    ("identity_level", "b", "coarser styles"),
]

MISTAKES_RESTORATION = [
    ("psnr", lambda p, t: 10 * torch.log10(1 / (p - t).pow(2).mean()), "pooled MSE"),
    ("pixel_shuffle", lambda h, r: h.reshape(len(h), -1, h.shape[2] * r, h.shape[3] * r), "a reshape alone"),
    ("psnr_paradox", "a", "sharper is not closer"),
    ("sdedit_start", lambda s, x, strength, eps: sdedit_start_solution(s, (x + 1) / 2, strength, eps), "2 * x - 1"),
    ("repaint_merge", lambda s, x_gen, known, m, t, eps: repaint_merge_solution(s, x_gen, known, 1 - m, t, eps),
     "the mask is the other way round"),
    ("repaint_calls", REPAINT_STEPS * REPAINT_RESAMPLE, "done once"),
]  # more of lesson 8's in tests/test_exercises_lesson8.py

MISTAKES_SCORE_AND_FLOW = [
    ("score_from_eps", lambda eps, abar: eps / (1 - abar) ** 0.5, "minus sign"),
    ("langevin_step", lambda score, x, delta, z: x + delta * score(x) + delta ** 0.5 * z, "delta / 2"),
    ("flow_loss", lambda v_model, x0, gen: flow_loss_solution(v_model, x0, gen).item(), "no gradient"),
    ("euler_sampler", lambda v_model, x1, steps: x1 - v_model(x1, torch.ones(len(x1))), "once per step"),
    ("heun_step", lambda v_model, x, t, t_next: x + (t_next - t) * v_model(x, torch.full((len(x),), t)),
     "plain Euler step"),
    ("one_step_nfe", REFLOW.pair_solver[1], "counts the steps"),
]  # more of lesson 9's in tests/test_exercises_lesson9.py

MISTAKES_TEXT_TO_IMAGE = [
    ("vq_quantize", lambda z_e, codebook: (lambda z_q, codes: (z_q.detach(), codes))(
        *vector_quantize_solution(z_e, codebook)), "no gradient reaches the encoder"),
    ("clip_loss", lambda i, t, s: torch.nn.functional.cross_entropy(s.exp() * i @ t.T, torch.arange(len(i))),
     "only one direction"),
    ("cross_attention", lambda q, k, v, pad: (q @ k.transpose(-2, -1)).masked_fill(pad[:, None], -float("inf"))
     .softmax(-1) @ v, "not scaled"),
    ("code_bits", 196, "counts the codes"),
    ("perplexity", 3, "not equally often"),
    ("caption_dropout", "a", "not thinned"),
    ("prior_passes", "a", "size is not what stops it"),
    ("held_out", "c", "training split only"),
]  # more of lesson 10's in tests/test_exercises_lesson10.py

MISTAKES = (MISTAKES_1_2 + MISTAKES_GAN_THEORY + MISTAKES_DIFFUSION + MISTAKES_CONDITIONAL + MISTAKES_LATENT
            + MISTAKES_GAN_ARCHITECTURES + MISTAKES_RESTORATION + MISTAKES_SCORE_AND_FLOW + MISTAKES_TEXT_TO_IMAGE)


@pytest.mark.parametrize("name, answer, hint", MISTAKES)
def test_typical_mistakes_get_their_hint(name, answer, hint, capsys):
    assert check(name, answer).right is False
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out


def test_every_exercise_rejects_at_least_one_plausible_wrong_answer():
    tried = {name for name, _, _ in MISTAKES} | {"gan_d_loss", "g_loss_ns"}  # the last two: MISTAKES_GAN_D, _G_NS
    assert MISTAKES_GAN_D and MISTAKES_G_NS and tried == set(EXERCISES)


@pytest.mark.parametrize("name", [n for n, v in RIGHT_ANSWERS.items() if callable(v)])
def test_a_function_that_still_returns_the_placeholder_is_told_so(name, capsys):
    assert check(name, lambda *args, **kwargs: ...).right is False
    assert "still returns `...`" in capsys.readouterr().out


# ---------------------------------------------------------------- the graders expect the library's numbers


def test_lesson_1_and_2_solutions_agree_with_the_library():
    from course_lib.autoencoders import ae_loss
    from course_lib.vae import kl_to_standard_normal, reparameterize

    x, x_hat, mu, logvar = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28), torch.randn(4, 3), torch.randn(4, 3)
    assert torch.allclose(ae_loss_solution(x, x_hat), ae_loss(x, x_hat))
    assert torch.allclose(kl_solution(mu, logvar), kl_to_standard_normal(mu, logvar))
    torch.manual_seed(0)
    z = reparameterize_solution(mu, logvar)
    torch.manual_seed(0)
    assert torch.allclose(z, reparameterize(mu, logvar))


def test_gan_solutions_agree_with_the_library_losses_on_logits():
    from course_lib.gans import d_loss, g_loss_non_saturating

    real, fake = torch.randn(16), torch.randn(16)
    assert torch.allclose(gan_d_loss_solution(torch.sigmoid(real), torch.sigmoid(fake)), d_loss(real, fake))
    assert torch.allclose(g_loss_non_saturating_solution(torch.sigmoid(fake)), g_loss_non_saturating(fake))


def test_q_sample_solution_matches_the_library_at_every_kind_of_step():
    from course_lib.diffusion import DiffusionSchedule, q_sample

    schedule, x0, eps = DiffusionSchedule(T=1000), torch.rand(2, 1, 28, 28) * 2 - 1, torch.randn(2, 1, 28, 28)
    for t in (0, 500, 999):
        got = q_sample_solution(x0, schedule.alpha_bars[t].item(), eps)
        assert torch.allclose(got, q_sample(schedule, x0, t, eps), atol=1e-5)


def test_reverse_step_solution_matches_the_library_sampler_step():
    from course_lib.diffusion import DiffusionSchedule, ddpm_update

    schedule = DiffusionSchedule(T=1000)
    x_t, eps, z = torch.randn(2, 1, 28, 28), torch.randn(2, 1, 28, 28), torch.randn(2, 1, 28, 28)
    t = 500
    want = ddpm_update(schedule, x_t, t, eps, z)
    got = reverse_step_solution(x_t, eps, schedule.betas[t].item(), schedule.alpha_bars[t].item(), z)
    assert torch.allclose(got, want, atol=1e-5)


def test_library_agrees_with_the_lesson_5_solutions():
    import inspect

    from course_lib.conditional import guided_eps, one_hot
    from course_lib.pix2pix import Pix2PixStep

    y = torch.tensor([4, 1, 7])
    assert torch.equal(one_hot(y), one_hot_solution(y))
    u, c = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(guided_eps(u, c, 2.5), guidance_solution(u, c, 2.5))
    library_weight = inspect.signature(Pix2PixStep).parameters["l1_weight"].default
    assert inspect.signature(pix2pix_g_loss_solution).parameters["l1_weight"].default == library_weight


def test_latent_scale_solution_is_the_scale_encode_dataset_uses():
    from torch.utils.data import TensorDataset

    from course_lib.latent_diffusion import LatentAutoencoder, encode_dataset

    autoencoder, images = LatentAutoencoder().eval(), torch.rand(20, 1, 28, 28)
    with torch.no_grad():
        latents = autoencoder.encode(images)
    _, scale = encode_dataset(autoencoder, TensorDataset(images, torch.zeros(20)))
    assert latent_scale_solution(latents).item() == pytest.approx(scale, rel=1e-5)


def test_the_library_functions_themselves_are_right_answers(capsys):
    from course_lib.autoencoders import ae_loss, mask_pixels
    from course_lib.conditional import guided_eps, one_hot
    from course_lib.vae import kl_to_standard_normal, reparameterize

    for name, fn in [("ae_loss", ae_loss), ("mask_pixels", mask_pixels), ("kl", kl_to_standard_normal),
                     ("reparameterize", reparameterize), ("one_hot", one_hot), ("guidance", guided_eps)]:
        assert check(name, fn).right is True, capsys.readouterr().out


@pytest.mark.parametrize("name", ["ae_params", "latent_factor", "latent_scale"])
def test_grading_leaves_the_students_random_generator_alone(name):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check(name, RIGHT_ANSWERS[name])
    assert torch.equal(torch.rand(3), expected)


def test_hints_are_plain_text_without_markdown_emphasis():
    """Hints are printed, not rendered: `*linear*` would show its asterisks."""
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[1] / "course_lib" / "exercises").glob("*.py")):
        for line in path.read_text().splitlines():
            if '"' in line and not line.strip().startswith(("#", ">>>")):
                assert not re.search(r"\s\*[a-z][a-z -]*\*[\s.,:;?]", line), f"{path.name}: {line.strip()}"


def test_a_check_shows_its_verdict_once_not_also_as_out_false(capsys):
    """Jupyter shows a cell's last value as `Out[n]`; the verdict is printed, so its value must display nothing."""
    from IPython.core.formatters import DisplayFormatter

    verdict = check("ae_params", 12.5)
    assert "Not yet" in capsys.readouterr().out and not verdict and verdict.right is False
    assert DisplayFormatter().format(verdict) == ({}, {})
