"""Lesson 6's exercises: every right answer passes, each typical mistake gets its own hint and never passes, an empty
answer is "not yet", and the decoding exercise agrees with the library's decode_latents."""

import pytest
import torch
from torch.utils.data import TensorDataset

from course_lib import exercises
from course_lib.exercises.lesson6_latent_diffusion import latent_decode_solution, latent_scale_solution
from course_lib.latent_diffusion import LatentAutoencoder, decode_latents, encode_dataset
from course_lib.nets import evaluating

RIGHT = {
    "latent_factor": 4,
    "latent_scale": latent_scale_solution,
    "unscaled_snr": 25,
    "latent_decode": latent_decode_solution,
    "decode_when": "b",
}


def test_lesson_6_has_at_least_five_exercises_two_of_them_code():
    names = list(exercises.EXERCISES)
    lesson = names[names.index("latent_factor"):names.index("decode_when") + 1]
    assert lesson == list(RIGHT)
    assert sum(callable(exercises.EXERCISES[name].solution) for name in lesson) >= 2


def train_mode_decode(autoencoder, z, scale):
    return autoencoder.train().decode(z / scale)


MISTAKES = [
    ("unscaled_snr", 5, "square"),
    ("unscaled_snr", 1, "5 times"),
    ("unscaled_snr", 0.04, "other way round"),
    ("unscaled_snr", 12.5, "compare alpha_bar"),
    ("latent_decode", lambda autoencoder, z, scale: autoencoder.eval().decode(z), "still scaled"),
    ("latent_decode", lambda autoencoder, z, scale: autoencoder.eval().decode(z * scale), "wrong way"),
    ("latent_decode", train_mode_decode, "eval mode"),
    ("latent_decode", lambda autoencoder, z, scale: autoencoder.decode(z), "eval mode"),  # training mode hides it
    ("latent_decode", lambda autoencoder, z, scale: latent_decode_solution(autoencoder, z, scale)[:2], "shaped"),
    ("latent_decode", lambda autoencoder, z, scale: 1 - latent_decode_solution(autoencoder, z, scale),
     "autoencoder.decode(z / scale)"),
]


@pytest.mark.parametrize("name, answer, hint", MISTAKES)
def test_a_typical_mistake_gets_its_hint_and_never_passes(name, answer, hint, capsys):
    assert not exercises.check(name, answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_the_library_decoder_is_a_right_answer(capsys):
    assert exercises.check("latent_decode", decode_latents).right, capsys.readouterr().out


def test_decoding_undoes_the_scale_of_encode_dataset():
    torch.manual_seed(0)
    autoencoder, images = LatentAutoencoder().eval(), torch.rand(8, 1, 28, 28)
    scaled, scale = encode_dataset(autoencoder, TensorDataset(images, torch.zeros(8, dtype=torch.long)))
    with evaluating(autoencoder), torch.no_grad():
        rebuilt = autoencoder(images)
    assert torch.allclose(latent_decode_solution(autoencoder, scaled.tensors[0], scale), rebuilt, atol=1e-5)


def test_the_snr_answer_follows_from_the_forward_process():
    from course_lib.diffusion import DiffusionSchedule, q_sample

    schedule = DiffusionSchedule(T=1000)
    t = int((schedule.alpha_bars - 0.5).abs().argmin())
    x0 = 5 * torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(200_000, generator=torch.Generator().manual_seed(1))
    signal = q_sample(schedule, x0, t, torch.zeros_like(eps))  # sqrt(alpha_bar) x_0
    noise = q_sample(schedule, x0, t, eps) - signal  # sqrt(1 - alpha_bar) eps
    assert (signal.var() / noise.var()).item() == pytest.approx(RIGHT["unscaled_snr"], rel=0.02)


@pytest.mark.parametrize("name", ["latent_decode", "unscaled_snr"])
def test_grading_leaves_the_students_random_generator_alone(name):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    exercises.check(name, RIGHT[name])
    assert torch.equal(torch.rand(3), expected)


def test_a_passed_decoder_is_the_one_the_lesson_samples_with(capsys):
    exercises.check("latent_decode", train_mode_decode)
    assert not exercises.passed("latent_decode", train_mode_decode)
    exercises.check("latent_decode", latent_decode_solution)
    assert exercises.passed("latent_decode", latent_decode_solution)
