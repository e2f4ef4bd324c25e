"""Lesson 3's 2-D toy distributions and the mode-coverage measurement."""

import pytest
import torch

from course_lib.recipes import TOY_GAN, train_toy_gan
from course_lib.toy2d import LIMITS, TOYS, mode_centres, mode_coverage, sample_toy


@pytest.mark.parametrize("name", list(TOYS))
def test_every_toy_samples_points_in_the_shown_plane(name):
    x = sample_toy(name, 2000, torch.Generator().manual_seed(0))
    assert x.shape == (2000, 2)
    assert (x.abs() < LIMITS).float().mean() > 0.98


def test_seeded_toys_repeat():
    a = sample_toy("moons", 10, torch.Generator().manual_seed(3))
    assert torch.equal(a, sample_toy("moons", 10, torch.Generator().manual_seed(3)))


def test_coverage_counts_collapse_and_smearing():
    centres = mode_centres("ring")
    collapsed = centres[2] + 0.01 * torch.randn(1000, 2)
    report = mode_coverage(collapsed, "ring")
    assert report["modes_covered"] == 1 and report["high_quality"] == 1.0 and report["counts"][2] == 1000
    smeared = torch.randn(1000, 2)  # mass everywhere, little of it on the modes
    report = mode_coverage(smeared, "ring")
    assert report["high_quality"] < 0.1
    grid = mode_coverage(sample_toy("grid", 5000), "grid")
    assert grid["modes_covered"] == grid["n_modes"] == 25


def test_bad_names_and_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="Valid names: ring"):
        sample_toy("spiral", 10)
    with pytest.raises(ValueError, match="no separate modes"):
        mode_coverage(torch.zeros(5, 2), "moons")
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        mode_coverage(torch.zeros(5, 3), "ring")


def test_train_toy_gan_measures_coverage_along_the_way():
    gan, history, coverage = train_toy_gan(TOY_GAN, "ring", steps=156, every=50, seed=0, bundled=False)
    assert [step for step, _ in coverage] == [50, 100, 150]
    assert len(history.steps["d_loss"]) == 158  # two epochs of 79 batches (20,000 points, 256 a batch)
    assert all(0 <= report["modes_covered"] <= 8 for _, report in coverage)
