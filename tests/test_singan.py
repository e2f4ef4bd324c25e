"""SinGAN (lesson 7): the pyramid's sizes and shapes, training (the reconstruction from z* improves), seeded sampling,
editing (injection, super-resolution), the patch measure, and saving/loading as the course bundles weights."""

import pytest
import torch

from course_lib import pretrained, recipes
from course_lib.config import one_thread
from course_lib.nets import evaluating
from course_lib.patches import blurred, detail, patch_distance, pixel_distance, sample_report
from course_lib.singan import (PatchDiscriminator, SinGAN, inject, reconstruct, sample, scale_sizes, super_resolve,
                               terrain_image, train_singan)

STEPS = 40  # per scale: a few seconds for the tiny pyramid below


def tiny_singan() -> SinGAN:
    torch.manual_seed(0)
    return SinGAN(terrain_image(32), num_scales=2, scale_factor=0.75)  # (20, 24) and (27, 32) pixels


@pytest.fixture(scope="module")
def trained():
    singan = tiny_singan()
    with evaluating(singan):
        before = singan.generate(1, noise=False)  # the untrained reconstruction: grey plus a little
    with one_thread():
        history = train_singan(singan, STEPS, d_steps=1, g_steps=1, generator=torch.Generator().manual_seed(0))
    return singan, history, before


def test_the_pyramid_has_the_sizes_and_shapes_of_every_scale():
    image = terrain_image(64)
    assert image.shape == (1, 3, 55, 64) and 0 <= image.min() and image.max() <= 1
    assert scale_sizes(55, 64, 4) == [(23, 27), (31, 36), (41, 48), (55, 64)]
    singan = tiny_singan()
    assert singan.sizes == [(20, 24), (27, 32)]
    assert singan.real(0).shape == (1, 3, 20, 24) and torch.equal(singan.real(1), singan.image)
    with evaluating(singan):
        for n, size in enumerate(singan.sizes):
            assert singan.generate(3, stop_scale=n).shape == (3, 3, *size)
    assert PatchDiscriminator()(torch.rand(2, 3, 20, 24)).shape == (2, 1, 10, 14)  # one score per 11 x 11 patch
    with pytest.raises(ValueError, match="coarsest scale"):
        SinGAN(torch.rand(1, 3, 24, 32), num_scales=4)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        SinGAN(torch.rand(1, 1, 24, 32))


def test_training_improves_the_reconstruction_from_z_star(trained):
    singan, history, before = trained
    assert int(singan.trained) == 2 and history.epoch == 2  # one "epoch" of the History per scale
    assert len(history.steps["rec"]) == 2 * STEPS and len(history.epochs["seconds"]) == 2
    after = reconstruct(singan)
    assert [r.shape[-2:] for r in after] == [torch.Size(s) for s in singan.sizes]
    error_before, error_after = float(pixel_distance(before, singan.image)), float(pixel_distance(after[-1], singan.image))
    assert error_after < 0.5 * error_before, (error_before, error_after)
    rec = history.steps["rec"][:STEPS]  # the coarsest scale's L_rec while it trains
    assert sum(rec[-5:]) < 0.5 * sum(rec[:5])
    # each finer scale's noise strength is 0.1 RMSE of the coarser reconstruction, enlarged, against its image
    assert singan.noise_amp[0] == 1 and 0 < singan.noise_amp[1] < 0.1


def test_sampling_with_a_seed_repeats_and_other_seeds_differ(trained):
    singan, _, _ = trained
    a = sample(singan, 3, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 3, 27, 32) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, sample(singan, 3, generator=torch.Generator().manual_seed(1)))
    assert not torch.equal(a, sample(singan, 3, generator=torch.Generator().manual_seed(2)))
    assert float(pixel_distance(a[:1], a[1:2])) > 0
    # starting at scale 1 keeps the real image's coarse scale: closer to the image than samples from noise
    kept = sample(singan, 3, start_scale=1, generator=torch.Generator().manual_seed(1))
    assert pixel_distance(kept, singan.image).mean() < pixel_distance(a, singan.image).mean()


def test_editing_injects_an_image_and_super_resolves(trained):
    singan, _, _ = trained
    painting = blurred(singan.image, 0.2)  # a rough "painting" of the layout
    out = inject(singan, painting, scale=1, n=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 27, 32) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="scale from 1"):
        inject(singan, painting, scale=0)
    sharp = super_resolve(singan, steps=2, generator=torch.Generator().manual_seed(0))
    assert sharp.shape == (1, 3, round(round(27 / 0.75) / 0.75), round(round(32 / 0.75) / 0.75))  # (48, 57)
    assert super_resolve(singan, torch.rand(1, 3, 10, 12), steps=1).shape == (1, 3, 13, 16)
    with pytest.raises(RuntimeError, match="Train them first"):
        sample(tiny_singan(), 1)


def test_patch_distance_is_zero_for_the_image_and_orders_noise_above_blur():
    image = terrain_image(48)
    assert patch_distance(image, image).item() < 1e-6  # 0 up to rounding
    report = {name: patch_distance(x, image).item()
              for name, x in {"blurred": blurred(image), "noise": torch.rand(1, *image.shape[1:])}.items()}
    assert 0 < report["blurred"] < report["noise"]
    assert detail(blurred(image)) < 0.5 * detail(image) < detail(torch.rand(1, *image.shape[1:]))
    numbers = sample_report(torch.cat([image, image.flip(-1)]), image)
    assert numbers["pixel distance to the image"] > 0 and numbers["diversity"] > 0


def test_the_pyramid_saves_and_loads_as_bundled_weights(trained, tmp_path):
    singan, history, _ = trained
    for eight_bit in (False, True):
        path = pretrained.save_file_of_parts(tmp_path / f"singan{eight_bit}.safetensors", history, eight_bit,
                                             singan=singan)
        loaded = tiny_singan()
        recorded = pretrained.load_file_into(path, "gan_architectures/singan", singan=loaded)
        assert recorded.epochs["seconds"] == history.epochs["seconds"]
        assert int(loaded.trained) == 2 and torch.equal(loaded.noise_amp, singan.noise_amp)
        a = sample(singan, 2, generator=torch.Generator().manual_seed(3))
        b = sample(loaded, 2, generator=torch.Generator().manual_seed(3))
        if eight_bit:  # kernels rounded to 8 bits: the same pictures, up to a little
            assert float(pixel_distance(a, b).max()) < 0.05
        else:
            assert torch.equal(a, b)


def test_the_recipe_builds_the_same_pyramid_in_every_profile():
    R = recipes.SINGAN
    assert R.lesson == "gan_architectures" and R.steps("smoke") < R.steps("cpu") < R.steps("gpu")
    built = R.build(R.settings("smoke"))
    assert built.sizes == [(23, 27), (31, 36), (41, 48), (55, 64)]
    assert set(R.train_args()) == {"lr", "betas", "d_steps", "g_steps", "gp_weight", "rec_weight", "noise_scale"}
    with pytest.raises(ValueError, match="Unknown profile"):
        R.steps("tpu")
