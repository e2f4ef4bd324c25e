"""Lesson 8, super-resolution: the 4 x 4 block mean and the bicubic baseline (checked by hand), PSNR against
torchmetrics and its 6 dB per halved error, SSIM, SRResNet's shapes and a few MSE steps that lower the error, SRGAN's
frozen perceptual features (a shift costs little there, a blur a lot) and its step, and SR3: the condition, a loss
that falls on a tiny batch, a sampler whose samples line up with their inputs and that a seed reproduces, and the
U-Net's `cond` checks."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import peak_signal_noise_ratio

from course_lib.config import one_thread
from course_lib.data import load_dataset
from course_lib.diffusion import DiffusionSchedule, q_sample, to_model_range
from course_lib.metrics import digit_classifier
from course_lib.superres import (SRGAN, PerceptualFeatures, SRGANStep, SRResNet, downscale, psnr, sr3_condition,
                                 eps_from_v, sr3_step, sr3_upscale, sr_mse_step, ssim, upscale_bicubic, v_target)
from course_lib.unet import UNet


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """These tensors are tiny: one thread is faster, and much faster when other work shares the cores."""
    with one_thread():
        yield


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", n=64, source="bundled").tensors[0]  # (64, 1, 28, 28) in [0, 1]


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_sr3_unet() -> UNet:
    return UNet(channels=(8, 16, 16), time_dim=32, cond_channels=1)


# ---------------------------------------------------------------- the task and its scores


def test_downscale_is_the_mean_of_each_4x4_block():
    y = torch.zeros(1, 1, 28, 28)
    y[..., 4:8, 8:12] = 1.0  # block (1, 2) all ink
    y[..., 20:22, 0:4] = 1.0  # block (5, 0) half ink
    y[..., 27, 27] = 0.8  # one pixel of the last block
    expected = torch.zeros(1, 1, 7, 7)
    expected[..., 1, 2], expected[..., 5, 0], expected[..., 6, 6] = 1.0, 0.5, 0.8 / 16
    torch.testing.assert_close(downscale(y), expected)

    x = torch.rand(3, 2, 28, 28, generator=seeded(0))  # any channels
    by_hand = x.view(3, 2, 7, 4, 7, 4).mean(dim=(3, 5))
    torch.testing.assert_close(downscale(x), by_hand)
    with pytest.raises(ValueError, match="unsqueeze"):
        downscale(torch.rand(28, 28))


def test_bicubic_upscale_keeps_a_constant_and_stays_in_the_pixel_range():
    assert torch.allclose(upscale_bicubic(torch.full((2, 1, 7, 7), 0.3)), torch.full((2, 1, 28, 28), 0.3), atol=1e-6)
    edges = torch.zeros(1, 1, 7, 7)
    edges[..., 4:] = 1.0  # a hard step from black to white
    raw = F.interpolate(edges, scale_factor=4, mode="bicubic", align_corners=False)
    assert raw.min() < 0 and raw.max() > 1  # bicubic overshoots at hard edges ...
    up = upscale_bicubic(edges)
    assert up.shape == (1, 1, 28, 28) and up.min() >= 0 and up.max() <= 1  # ... and the clip keeps valid pixels
    torch.testing.assert_close(up, raw.clamp(0, 1))


def test_psnr_is_torchmetrics_per_image_averaged_and_gains_6db_when_the_error_halves():
    target = torch.full((4, 1, 28, 28), 0.5)
    error = torch.randn(4, 1, 28, 28, generator=seeded(1)) * torch.tensor([0.02, 0.05, 0.1, 0.2]).view(4, 1, 1, 1)
    prediction = target + error  # a different error size per image: a batch-wide MSE would give another number
    reference = sum(peak_signal_noise_ratio(prediction[i:i + 1], target[i:i + 1], data_range=1.0).item()
                    for i in range(4)) / 4
    batch_wide = peak_signal_noise_ratio(prediction, target, data_range=1.0).item()
    assert psnr(prediction, target) == pytest.approx(reference, abs=1e-3)
    assert abs(batch_wide - reference) > 1  # so the test tells "per image" from "over the batch"
    gain = psnr(target + error / 2, target) - psnr(prediction, target)
    assert gain == pytest.approx(20 * math.log10(2), abs=1e-3)  # 6.02 dB
    assert psnr(torch.full((1, 1, 2, 2), 0.1), torch.zeros(1, 1, 2, 2)) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    assert psnr(target, target) == pytest.approx(100.0)  # the cap for a perfect prediction


def test_ssim_is_one_for_identical_images_and_falls_as_noise_grows(digits):
    y = digits[:8]
    assert ssim(y, y) == pytest.approx(1.0, abs=1e-5)
    noise = torch.randn(y.shape, generator=seeded(2))
    scores = [ssim((y + s * noise).clamp(0, 1), y) for s in (0.02, 0.1, 0.3)]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_scores_refuse_mismatched_pairs_and_say_to_upscale_first(digits):
    y = digits[:2]
    for score in (psnr, ssim):
        with pytest.raises(ValueError, match=r"upscale_bicubic\(x\)"):
            score(downscale(y), y)  # forgot to upscale
        with pytest.raises(ValueError, match="both shaped"):
            score(y[0], y[1])  # single images, not batches
        with pytest.raises(ValueError, match="list"):
            score(y.tolist(), y)


# ---------------------------------------------------------------- SRResNet and the MSE


def test_srresnet_upscales_7x7_to_28x28_pixels_and_refuses_full_size_digits(digits):
    torch.manual_seed(0)
    out = SRResNet(width=8, blocks=1)(downscale(digits[:3]))
    assert out.shape == (3, 1, 28, 28) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match=r"downscale\(y\)"):
        SRResNet(width=8, blocks=1)(digits[:3])  # forgot to shrink


def test_a_few_adam_steps_of_the_mse_step_lower_the_error(digits):
    torch.manual_seed(0)
    model = SRResNet(width=16, blocks=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss = sr_mse_step(model, (digits, None))  # (images, labels) as the loaders give them
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]


# ---------------------------------------------------------------- SRGAN


def test_perceptual_features_are_a_frozen_copy_of_the_digit_classifier(digits):
    phi = PerceptualFeatures(digit_classifier())
    assert not any(p.requires_grad for p in phi.parameters())
    phi.train()  # as fit does
    assert not any(m.training for m in phi.modules())  # BatchNorm keeps its running statistics
    y = digits[:8]
    classifier = digit_classifier()
    with torch.no_grad():
        features = phi(y)
        assert features.shape == (8, 64, 14, 14)
        torch.testing.assert_close(features, classifier.body[:12](y))
    assert phi.net[0].weight.data_ptr() != classifier.body[0].weight.data_ptr()  # a copy: the shared one stays put


def test_perceptual_distance_forgives_a_shift_but_not_a_blur(digits):
    """SRGAN's reason for the perceptual loss: a stroke one pixel off costs about as much pixel MSE as a blur, but far
    less in the classifier's features."""
    phi, y = PerceptualFeatures(digit_classifier()), digits
    shifted, blurred = torch.roll(y, 1, dims=3), upscale_bicubic(downscale(y))
    assert F.mse_loss(shifted, y).item() == pytest.approx(F.mse_loss(blurred, y).item(), rel=0.25)
    with torch.no_grad():
        assert F.mse_loss(phi(blurred), phi(y)) > 5 * F.mse_loss(phi(shifted), phi(y))


def test_srgan_step_logs_its_losses_and_updates_g_and_d_but_not_the_features(digits):
    torch.manual_seed(0)
    model = SRGAN(SRResNet(width=8, blocks=1))
    phi_net = PerceptualFeatures(digit_classifier())
    g_before = [p.clone() for p in model.generator.parameters()]
    d_before = [p.clone() for p in model.discriminator.parameters()]
    phi_before = {k: v.clone() for k, v in phi_net.state_dict().items()}
    step = SRGANStep(model, phi_net)
    model.train()
    y = digits[:16]
    with torch.no_grad():  # G before its first update, as the step sees it
        fake = model.generator(downscale(y))
        content, mse = F.mse_loss(phi_net(fake), phi_net(y)).item(), F.mse_loss(fake, y).item()
    logs = step(model, (y, None))
    assert logs["content"] == pytest.approx(content, rel=1e-4)  # compared in the classifier's features ...
    assert logs["mse"] == pytest.approx(mse, rel=1e-4)  # ... while the MSE is only reported
    logs = step(model, (y, None))
    assert set(logs) == {"g_loss", "content", "adversarial", "d_loss", "d_real", "d_fake", "mse"}
    assert all(math.isfinite(v) for v in logs.values())
    assert 0 < logs["d_real"] < 1 and 0 < logs["d_fake"] < 1
    assert logs["g_loss"] == pytest.approx(logs["content"] + 1e-2 * logs["adversarial"], rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))
    after = phi_net.state_dict()
    assert all(torch.equal(phi_before[k], after[k]) for k in phi_before)  # weights and BatchNorm statistics
    with pytest.raises(ValueError, match="adv_weight"):
        SRGANStep(model, phi_net, adv_weight=-1.0)


def test_srgan_upscale_is_deterministic_and_restores_the_training_mode(digits):
    torch.manual_seed(0)
    model = SRGAN(SRResNet(width=8, blocks=1)).train()
    x = downscale(digits[:4])
    a, b = model.upscale(x), model.upscale(x[:2])
    assert a.shape == (4, 1, 28, 28)
    torch.testing.assert_close(a[:2], b)  # eval mode: an image's upscale does not depend on its batch
    assert model.generator.training


# ---------------------------------------------------------------- SR3


def test_sr3_condition_is_the_bicubic_upscale_in_the_model_range(digits):
    x = downscale(digits[:5])
    cond = sr3_condition(x)
    assert cond.shape == (5, 1, 28, 28) and cond.min() >= -1 and cond.max() <= 1
    torch.testing.assert_close(cond, to_model_range(upscale_bicubic(x)))


def test_sr3_step_reaches_the_condition_channel_and_lowers_the_loss(digits):
    torch.manual_seed(0)
    schedule, model = DiffusionSchedule(T=1000), tiny_sr3_unet()
    step = sr3_step(schedule, seeded(0), fast=False)
    batch = (digits[:16], None)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)

    def fixed_loss():  # the same t and noise every time
        with torch.no_grad():
            return sr3_step(schedule, seeded(99), fast=False)(model, batch).item()

    before, losses = fixed_loss(), []
    for i in range(30):
        loss = step(model, batch)
        opt.zero_grad()
        loss.backward()
        if i == 0:  # stem weights: (c0, 1 + cond_channels, 3, 3), the last input channel is the condition
            assert model.stem.weight.shape[1] == 2
            assert model.stem.weight.grad[:, 1].abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert fixed_loss() < 0.8 * before


def test_v_prediction_gives_back_the_noise_and_the_image():
    schedule = DiffusionSchedule(T=1000)
    x0, eps = torch.rand(4, 1, 28, 28) * 2 - 1, torch.randn(4, 1, 28, 28)
    t = torch.tensor([0, 10, 500, 999])
    x_t = q_sample(schedule, x0, t, eps)
    v = v_target(schedule, x0, t, eps)
    torch.testing.assert_close(eps_from_v(schedule, x_t, t, v), eps, atol=1e-4, rtol=0)
    abar = schedule.alpha_bars[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(abar.sqrt() * x_t - (1 - abar).sqrt() * v, x0, atol=1e-4, rtol=0)  # x0 from v


class ConditionOracle(nn.Module):
    """Predicts v as if the clean image were its condition (with eps = (x_t - sqrt(abar_t) c) / sqrt(1 - abar_t)):
    every SR3 sample of an input is then that input's own bicubic upscale."""

    def __init__(self, schedule: DiffusionSchedule):
        super().__init__()
        self.stem = nn.Conv2d(1, 1, 1)  # where sr3_upscale looks for the device
        self.schedule = schedule

    def forward(self, x, t, cond):
        abar = self.schedule.alpha_bars[t].view(-1, 1, 1, 1)
        eps = (x - abar.sqrt() * cond) / (1 - abar).sqrt()
        return v_target(self.schedule, cond, t, eps)


def test_sr3_upscale_keeps_each_inputs_samples_together(digits):
    schedule = DiffusionSchedule(T=1000)
    x = downscale(digits[:3])  # three different digits
    several = sr3_upscale(ConditionOracle(schedule), schedule, x, steps=5, generator=seeded(0), samples=4, fast=False)
    assert several.shape == (3, 4, 1, 28, 28)
    expected = upscale_bicubic(x).unsqueeze(1).expand(3, 4, 1, 28, 28)
    torch.testing.assert_close(several, expected, atol=1e-4, rtol=0)  # sample j of image i sits at [i, j]


def test_sr3_upscale_shapes_and_a_seed_reproduces_different_samples(digits):
    torch.manual_seed(0)
    schedule, model = DiffusionSchedule(T=1000), tiny_sr3_unet()
    x = downscale(digits[:2])
    one = sr3_upscale(model, schedule, x, steps=4, generator=seeded(0), fast=False)
    assert one.shape == (2, 1, 28, 28) and one.min() >= 0 and one.max() <= 1
    three = sr3_upscale(model, schedule, x, steps=4, generator=seeded(1), samples=3, fast=False)
    again = sr3_upscale(model, schedule, x, steps=4, generator=seeded(1), samples=3, fast=False)
    other = sr3_upscale(model, schedule, x, steps=4, generator=seeded(2), samples=3, fast=False)
    assert three.shape == (2, 3, 1, 28, 28)
    assert torch.equal(three, again)
    assert (three - other).abs().max() > 0.05
    for i in range(2):  # each sample starts from its own noise, so the guesses for one input differ
        assert (three[i, 0] - three[i, 1]).abs().max() > 0.05 and (three[i, 1] - three[i, 2]).abs().max() > 0.05


def test_unet_condition_changes_the_output_and_misuse_says_what_to_call():
    torch.manual_seed(0)
    model, plain = tiny_sr3_unet().eval(), UNet(channels=(8, 16, 16), time_dim=32).eval()
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([10, 500])
    c1, c2 = torch.zeros(2, 1, 28, 28), torch.ones(2, 1, 28, 28)
    with torch.no_grad():
        assert model(x, t, cond=c1).shape == (2, 1, 28, 28)
        assert not torch.allclose(model(x, t, cond=c1), model(x, t, cond=c2))
    with pytest.raises(ValueError, match=r"model\(x, t, cond=c\) with c shaped \(2, 1, 28, 28\), got None"):
        model(x, t)
    with pytest.raises(ValueError, match=r"cond=c\) with c shaped \(2, 1, 28, 28\), got \(2, 1, 7, 7\)"):
        model(x, t, cond=torch.zeros(2, 1, 7, 7))  # forgot to upscale
    with pytest.raises(ValueError, match=r"cond_channels=0\): call model\(x, t\).*UNet\(cond_channels=1\)"):
        plain(x, t, cond=c1)
