"""Every training number lives once, in course_lib/recipes.py: the lessons' sizes per profile, and one recipe per
trained model that the lessons, the benchmark and the bundle of pretrained weights all build from."""

import dataclasses
import re
from dataclasses import astuple
from pathlib import Path

import pytest
import torch

from course_lib import recipes
from course_lib.config import PROFILES
from course_lib.nets import n_params
from course_lib.recipes import LESSONS, TOY_GAN, lesson_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_has_every_profile_and_smoke_is_smallest(lesson):
    settings = {p: lesson_settings(lesson, profile=p) for p in PROFILES}
    smoke = settings["smoke"]
    for profile in ("cpu", "gpu"):
        assert all(s <= o for s, o in zip(astuple(smoke), astuple(settings[profile])))
        assert smoke.n_train * smoke.epochs < settings[profile].n_train * settings[profile].epochs


def test_unknown_lesson_or_profile_is_refused():
    with pytest.raises(ValueError, match="Unknown lesson"):
        lesson_settings("no_such_lesson", profile="cpu")
    with pytest.raises(ValueError, match="Unknown profile"):
        lesson_settings(LESSONS[0], profile="tpu")


def test_every_recipe_builds_at_every_profile_and_names_a_lesson():
    for name, R in recipes.every_recipe().items():
        assert R.lesson in LESSONS, name
        sizes = [n_params(R.build(R.settings(profile))) for profile in PROFILES]
        assert sizes == sorted(sizes) and sizes[0] > 0, (name, sizes)  # larger profiles never build smaller models


def test_the_unets_widths_come_from_the_profile():
    for R in (recipes.DDPM, recipes.CFG, recipes.LATENT_UNET):
        for profile in PROFILES:
            assert R.build(R.settings(profile)).channels == R.settings(profile).channels


def test_recipes_are_frozen_and_variants_are_made_by_replace():
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipes.DDPM.lr = 1.0
    plain = dataclasses.replace(recipes.DDPM, min_snr_gamma=None)
    assert plain.min_snr_gamma is None and recipes.DDPM.min_snr_gamma == 5.0 and plain.name == recipes.DDPM.name


def test_gan_step_arguments_come_from_the_recipe():
    args = recipes.TOY_WGAN_GP.step_args()
    assert args == dict(loss="wgan_gp", lr_d=3e-4, lr_g=3e-4, betas=(0.5, 0.9), d_steps=5, gp_weight=0.1, augment=0.0,
                        fast=False)
    assert recipes.PIX2PIX.step_args()["fast"] and not recipes.CGAN.step_args()["fast"]  # see their recipes
    assert recipes.DCGAN.step_args()["lr_g"] == recipes.DCGAN.lr  # lr_g None: the same rate as D


def test_toy_gan_training_follows_its_recipe_and_repeats_with_a_seed():
    runs = [recipes.train_toy_gan(TOY_GAN, "ring", steps=80, every=40, seed=3, bundled=False) for _ in range(2)]
    (gan_a, history_a, _), (gan_b, history_b, _) = runs
    assert history_a.steps["d_loss"] == history_b.steps["d_loss"]
    assert all(torch.equal(a, b) for a, b in zip(gan_a.state_dict().values(), gan_b.state_dict().values()))


# a training number typed as a keyword argument, or a network built by its class instead of its recipe
NUMBER_LITERALS = re.compile(r"\b(lr|lr_d|lr_g|decay|min_snr_gamma|gp_weight|augment|z_dim|width)\s*=\s*[0-9(]"
                             r"|\b\w*(Autoencoder|VAE|UNet|GAN|Pix2Pix)\(|\b(DCGAN|MLP|Conditional)(Generator|Discriminator)\(")


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.py")) + [ROOT / "course_lib/tools/benchmark.py"],
                         ids=lambda p: p.name)
def test_lessons_and_the_benchmark_type_no_training_number_of_a_recipe(path):
    """A learning rate, EMA decay, width or code size typed in a lesson or in the benchmark would be a second copy
    of the recipe's: they read it from `course_lib.recipes` instead."""
    typed = [line.strip() for line in path.read_text().splitlines()
             if NUMBER_LITERALS.search(line) and not line.lstrip().startswith("#")]
    # lesson 3 trains a tiny 1-D discriminator by hand to show the optimal D, lesson 4 a tiny noise predictor on 2-D
    # points to show the score: demonstrations of a few seconds, not recipes (nothing is bundled from them)
    typed = [line for line in typed if "D1.parameters()" not in line and "D1 = MLPDiscriminator(" not in line
             and "torch.optim.Adam(mlp.parameters()" not in line]
    assert not typed, typed


@pytest.mark.parametrize("profile", PROFILES)
def test_lesson_7_snapshots_land_exactly_on_the_switches_of_resolution(profile):
    # lesson 7 snapshots the progressive GAN every toy_steps // 20 steps and compares the frames around each switch
    steps = lesson_settings("gan_architectures", profile).toy_steps
    assert steps % max(1, steps // 20) == 0, f"{profile}: toy_steps={steps} is not a multiple of toy_steps // 20"


def test_lesson_5_guided_unet_starts_from_lesson_4s_bundled_weights_where_they_fit():
    cpu, smoke = lesson_settings("conditional", "cpu"), lesson_settings("conditional", "smoke")
    assert recipes.fits_bundle(recipes.DDPM, cpu) and not recipes.fits_bundle(recipes.DDPM, smoke)
    assert not recipes.fits_bundle(recipes.DDPM, lesson_settings("conditional", "gpu"))
    base = recipes.DDPM.build(lesson_settings("diffusion", "cpu"))
    recipes.load_into(recipes.DDPM.name, ema=base)
    torch.manual_seed(0)
    started = recipes.CFG.build(cpu).state_dict()
    shared = base.state_dict()
    assert set(started) - set(shared) == {"label_emb.weight"}  # the one new layer, left random
    assert all(torch.equal(started[key], value) for key, value in shared.items())
    torch.manual_seed(0)
    fresh = recipes.CFG.build(smoke).state_dict()  # other widths: a random start, no error
    assert fresh["label_emb.weight"].shape[0] == 11


def test_a_bundled_start_refuses_a_network_without_the_bundles_layers():
    from course_lib.unet import UNet
    cpu = lesson_settings("conditional", "cpu")
    smaller = UNet(channels=cpu.channels, num_classes=10, time_dim=32)
    with pytest.raises(ValueError, match="cannot start from diffusion/unet's weights.*num_classes=10"):
        recipes.bundled_start(recipes.DDPM, smaller, cpu)
