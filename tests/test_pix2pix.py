"""Lesson 5: pix2pix. The paired task, the U-Net and PatchGAN shapes, a discriminator that judges pairs, one
training step that lowers L1 on a tiny batch, the L1-only baseline, deterministic translation, the blur measure."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.data import load_dataset
from course_lib.pix2pix import (PatchDiscriminator, Pix2Pix, Pix2PixGenerator, Pix2PixStep, hide_lower_half,
                                sharpness)
from course_lib.training import fit


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", "train", n=32, source="bundled").tensors  # (32, 1, 28, 28), (32,)


def test_hide_lower_half_keeps_the_top_and_greys_the_bottom(digits):
    y = digits[0]
    original = y.clone()
    x = hide_lower_half(y)
    assert torch.equal(x[:, :, :14], y[:, :, :14])
    assert torch.all(x[:, :, 14:] == 0.5)
    assert torch.equal(y, original)  # a copy: the targets are untouched
    with pytest.raises(ValueError, match="x.view"):
        hide_lower_half(torch.zeros(28, 28))


def test_generator_and_discriminator_shapes(digits):
    y = digits[0][:4]
    out = Pix2PixGenerator()(hide_lower_half(y))
    assert out.shape == (4, 1, 28, 28) and out.min() >= 0 and out.max() <= 1
    assert PatchDiscriminator()(hide_lower_half(y), y).shape == (4, 1, 7, 7)
    prefixes = {key.split(".")[0] for key in Pix2Pix().state_dict()}
    assert prefixes == {"generator", "discriminator"}  # fit, .to(device) and checkpoints see both networks


def test_discriminator_judges_the_pair_patch_by_patch(digits):
    torch.manual_seed(0)
    D = PatchDiscriminator().eval()  # eval: BatchNorm must not mix the images of a batch
    y, other = digits[0][:8], digits[0][8:16]
    x = hide_lower_half(y)
    base = D(x, y)
    assert not torch.allclose(D(hide_lower_half(other), y), base, atol=1e-5)  # only the condition changed
    assert not torch.allclose(D(x, other), base, atol=1e-5)  # only the image changed
    corner = y.clone()
    corner[:, :, :4, :4] = 1 - corner[:, :, :4, :4]  # change the top-left corner only
    change = (D(x, corner) - base).abs()[:, 0]  # (B, 7, 7)
    assert change[:, 0, 0].min() > 0  # the patch that covers the corner sees it
    assert change[:, 4:, 4:].max() == 0  # patches far away do not: each logit judges its own patch


def test_discriminator_refuses_pairs_of_different_shapes():
    with pytest.raises(ValueError, match="same shape"):
        PatchDiscriminator()(torch.zeros(2, 1, 28, 28), torch.zeros(3, 1, 28, 28))


def test_sixty_steps_lower_the_l1_on_a_tiny_batch(digits):
    torch.manual_seed(0)
    model = Pix2Pix()
    history = fit(model, [digits] * 60, Pix2PixStep(model), None, epochs=1, progress=False)
    l1 = history.steps["l1"]
    assert len(l1) == 60 and history.stopped is None
    assert sum(l1[-5:]) / 5 < 0.7 * sum(l1[:5]) / 5
    assert set(history.steps) == {"g_loss", "l1", "d_loss", "d_real", "d_fake"}
    assert all(0 < p < 1 for p in history.steps["d_real"] + history.steps["d_fake"])


def test_only_the_adversarial_step_updates_the_discriminator(digits):
    batch = (digits[0][:8], digits[1][:8])
    for adversarial in (False, True):
        torch.manual_seed(0)
        model = Pix2Pix()
        before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
        g_before = [p.clone() for p in model.generator.parameters()]
        step = Pix2PixStep(model, adversarial=adversarial)
        for _ in range(3):
            logs = step(model, batch)
        after = model.discriminator.state_dict()
        d_unchanged = all(torch.equal(before[k], after[k]) for k in before)
        assert d_unchanged is (not adversarial)
        assert not all(torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))  # G always learns
        if not adversarial:
            assert set(logs) == {"g_loss", "l1"} and logs["g_loss"] == pytest.approx(100 * logs["l1"], rel=1e-5)


def test_translate_is_deterministic_and_restores_the_mode(digits):
    torch.manual_seed(0)
    model = Pix2Pix().train()
    x = hide_lower_half(digits[0][:8])
    assert not torch.equal(model(x), model(x))  # in training mode dropout makes G random
    a, b = model.translate(x), model.translate(x)
    assert torch.equal(a, b) and not a.requires_grad
    assert model.training and model.generator.training and model.generator.up1[-1].training
    model.eval()
    model.translate(x)
    assert not model.training


def test_sharpness_is_lower_for_blurred_digits(digits):
    y = digits[0]
    blur3 = F.avg_pool2d(y, 3, stride=1, padding=1)
    blur5 = F.avg_pool2d(y, 5, stride=1, padding=2)
    assert sharpness(blur5) < sharpness(blur3) < sharpness(y)
    assert sharpness(torch.full((4, 1, 28, 28), 0.3)) == pytest.approx(0.0, abs=1e-10)
    ramp = torch.linspace(0, 1, 28).expand(2, 1, 28, 28)  # varies a lot, but has no edges: its Laplacian is 0
    assert sharpness(ramp) == pytest.approx(0.0, abs=1e-10)
    dot = torch.zeros(1, 1, 5, 5)
    dot[0, 0, 2, 2] = 1.0  # Laplacian on the 3 x 3 interior: -4 in the middle, 1 at its 4 neighbours, 0 at corners
    assert sharpness(dot) == pytest.approx((4 * 1 + 16) / 9)  # mean 0, so the variance is the mean square
    assert sharpness(torch.rand(4, 3, 16, 16)) > 0  # any (B, C, H, W)
