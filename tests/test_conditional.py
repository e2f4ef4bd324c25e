"""Lesson 5's conditional models: one-hot labels, label dropout, guidance at w = 0 and w = 1, CGAN and CVAE."""

import pytest
import torch

from course_lib.conditional import (
    CPU_CHUNK, ConditionalDiscriminator, ConditionalGAN, ConditionalGenerator, ConditionalVAE, GuidedModel,
    check_labels, class_grid_labels, cfg_step, cvae_loss, cvae_step, drop_labels, guided_eps, one_hot, style_share,
)
from course_lib.data import load_dataset
from course_lib.diffusion import DiffusionSchedule, ddim_sample
from course_lib.gans import GANStep
from course_lib.training import fit
from course_lib.unet import UNet


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", "train", n=64, source="bundled").tensors


def test_one_hot_puts_a_single_one_at_the_label():
    code = one_hot(torch.tensor([0, 3, 9]))
    assert code.shape == (3, 10)
    assert torch.equal(code.sum(dim=1), torch.ones(3))
    assert torch.equal(code.argmax(dim=1), torch.tensor([0, 3, 9]))
    assert code.dtype == torch.float32


@pytest.mark.parametrize("bad, fix", [
    (torch.tensor([3, 10]), "0 .. 9"),
    (torch.tensor([-1]), "0 .. 9"),
    (torch.tensor([1.0, 2.0]), "whole number"),
    (torch.zeros(2, 10, dtype=torch.long), "shaped (B,)"),
])
def test_bad_labels_get_an_error_naming_the_fix(bad, fix):
    with pytest.raises(ValueError, match="e.g. torch.tensor") as err:
        check_labels(bad)
    assert fix in str(err.value)


def test_one_label_per_image_is_required():
    with pytest.raises(ValueError, match="one label per image"):
        check_labels(torch.tensor([1, 2, 3]), n=4)


def test_class_grid_labels_cycle_through_the_classes():
    assert class_grid_labels(3).tolist() == list(range(10)) * 3


def test_label_dropout_rate_and_extremes():
    y = torch.arange(20000) % 10
    assert torch.equal(drop_labels(y, 0.0), y)
    assert torch.equal(drop_labels(y, 1.0), torch.full_like(y, 10))
    dropped = drop_labels(y, 0.1, generator=torch.Generator().manual_seed(0))
    empty = dropped == 10
    assert 0.09 < empty.float().mean().item() < 0.11  # about one label in ten becomes "empty"
    assert torch.equal(dropped[~empty], y[~empty])  # the others are kept as they were
    with pytest.raises(ValueError, match="probability"):
        drop_labels(y, 1.5)


def test_guided_eps_is_unconditional_at_0_and_conditional_at_1():
    eps_u, eps_c = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    assert torch.equal(guided_eps(eps_u, eps_c, 0.0), eps_u)
    assert torch.allclose(guided_eps(eps_u, eps_c, 1.0), eps_c, atol=1e-6)
    assert torch.allclose(guided_eps(eps_u, eps_c, 3.0), eps_u + 3 * (eps_c - eps_u), atol=1e-6)


@pytest.fixture(scope="module")
def tiny_unet():
    torch.manual_seed(0)
    return UNet(channels=(8, 16, 16), time_dim=32, num_classes=10).eval()


def test_guided_model_matches_its_two_parts(tiny_unet):
    x, t, y = torch.randn(3, 1, 28, 28), torch.tensor([10, 500, 900]), torch.tensor([1, 5, 7])
    with torch.no_grad():
        eps_c, eps_u = tiny_unet(x, t, y), tiny_unet(x, t, None)
        for w, expected in [(0.0, eps_u), (1.0, eps_c), (2.5, eps_u + 2.5 * (eps_c - eps_u))]:
            got = GuidedModel(tiny_unet, y, w, fast=False)(x, t)
            assert torch.allclose(got, expected, atol=1e-5), w


def test_a_large_batch_on_a_cpu_is_guided_in_chunks_with_the_same_result(tiny_unet, monkeypatch):
    n = 2 * CPU_CHUNK + 7  # three calls per pass: 100, 100 and 7 images
    x, t = torch.randn(n, 1, 28, 28), torch.randint(0, 1000, (n,))
    y = torch.arange(n) % 10
    calls = []
    monkeypatch.setattr(tiny_unet, "forward", lambda x, t, y: calls.append(len(x)) or UNet.forward(tiny_unet, x, t, y))
    with torch.no_grad():
        got = GuidedModel(tiny_unet, y, 2.5, fast=False)(x, t)
        sizes, calls[:] = list(calls), []
        eps_c, eps_u = tiny_unet(x, t, y), tiny_unet(x, t, torch.full_like(y, 10))
    assert sizes == [CPU_CHUNK, CPU_CHUNK, 7] * 2
    assert torch.allclose(got, eps_u + 2.5 * (eps_c - eps_u), atol=1e-5)
    with torch.no_grad():  # a single timestep for the whole batch is spread over the chunks too
        assert torch.allclose(GuidedModel(tiny_unet, y, 1.0, fast=False)(x, 500), tiny_unet(x, 500, y), atol=1e-5)


def test_guided_sampler_at_w0_and_w1_equals_the_unconditional_and_conditional_samplers(tiny_unet):
    schedule, y = DiffusionSchedule(T=100), torch.tensor([2, 8])
    noise = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    unconditional, _ = ddim_sample(lambda x, t: tiny_unet(x, t), schedule, noise=noise, steps=10)
    conditional, _ = ddim_sample(lambda x, t: tiny_unet(x, t, y), schedule, noise=noise, steps=10)
    at_0, _ = ddim_sample(GuidedModel(tiny_unet, y, 0.0, fast=False), schedule, noise=noise, steps=10)
    at_1, _ = ddim_sample(GuidedModel(tiny_unet, y, 1.0, fast=False), schedule, noise=noise, steps=10)
    assert torch.allclose(at_0, unconditional, atol=1e-5)
    assert torch.allclose(at_1, conditional, atol=1e-5)
    assert not torch.allclose(unconditional, conditional, atol=1e-3)  # the label does change the samples


def test_guided_model_refuses_unconditional_unets_and_mismatched_batches(tiny_unet):
    with pytest.raises(ValueError, match="num_classes=10"):
        GuidedModel(UNet(channels=(8, 16, 16), time_dim=32), torch.tensor([1]), 2.0)
    with pytest.raises(ValueError, match="one per label"):
        GuidedModel(tiny_unet, torch.tensor([1, 2]), 2.0)(torch.randn(3, 1, 28, 28), torch.tensor([1, 2, 3]))


def test_cfg_step_lowers_the_loss_on_a_small_batch(digits):
    torch.manual_seed(0)
    model = UNet(channels=(8, 16, 16), time_dim=32, num_classes=10)
    x, y = digits[0][:32], digits[1][:32]
    step = cfg_step(DiffusionSchedule(T=100), generator=torch.Generator().manual_seed(0), fast=False)
    history = fit(model, [(x, y)] * 40, step, torch.optim.Adam(model.parameters(), 3e-3), 1, progress=False)
    losses = history.steps["loss"]
    assert sum(losses[-8:]) / 8 < 0.7 * sum(losses[:8]) / 8


def test_conditional_gan_networks_use_the_label():
    torch.manual_seed(0)
    G, D = ConditionalGenerator(width=8).eval(), ConditionalDiscriminator(width=8).eval()
    z = torch.randn(2, 100)
    with torch.no_grad():
        assert G(z, torch.tensor([1, 1])).shape == (2, 1, 28, 28)
        assert not torch.allclose(G(z, torch.tensor([1, 1])), G(z, torch.tensor([7, 7])))
        x = torch.rand(2, 1, 28, 28)
        assert D(x, torch.tensor([1, 1])).shape == (2,)
        assert not torch.allclose(D(x, torch.tensor([1, 1])), D(x, torch.tensor([7, 7])))
    with pytest.raises(ValueError, match="0 .. 9"):
        G(z, torch.tensor([1, 12]))


def test_gan_step_gives_a_conditional_gan_the_labels(digits):
    torch.manual_seed(0)
    cgan = ConditionalGAN(ConditionalGenerator(width=8), ConditionalDiscriminator(width=8))
    seen = []
    forward = cgan.discriminator.forward
    cgan.discriminator.forward = lambda x, y: seen.append(y) or forward(x, y)
    logs = GANStep(cgan)(cgan, (digits[0][:16], digits[1][:16]))
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(logs)
    assert seen and all(torch.equal(y, digits[1][:16]) for y in seen)  # real and generated judged with the batch's labels
    images = cgan.sample(10, torch.Generator().manual_seed(0))
    assert images.shape == (10, 1, 28, 28) and cgan.training  # sampled in eval mode, the mode then restored
    with pytest.raises(ValueError, match="needs a label"):
        cgan.decode(torch.randn(1, 100))


def test_cvae_learns_and_its_decoder_uses_the_label(digits):
    torch.manual_seed(0)
    cvae = ConditionalVAE(latent_dim=2, hidden=(64, 32))
    x, y = digits
    assert set(cvae_loss(cvae, x, y)) == {"loss", "recon", "kl"}
    history = fit(cvae, [(x, y)] * 60, cvae_step(), torch.optim.Adam(cvae.parameters(), 3e-3), 1, progress=False)
    losses = history.steps["loss"]
    assert losses[-1] < 0.7 * losses[0]
    z = torch.zeros(1, 2)
    with torch.no_grad():
        assert not torch.allclose(cvae.decode(z, torch.tensor([1])), cvae.decode(z, torch.tensor([8])), atol=1e-3)
    with pytest.raises(ValueError, match="codes have 2 numbers"):
        cvae.decode(torch.zeros(1, 3), torch.tensor([1]))
    with pytest.raises(ValueError, match="one label per image"):
        cvae.encode(x[:4], torch.tensor([1, 2]))


def test_style_share_is_high_when_rows_set_the_thickness_and_low_when_they_do_not():
    gen = torch.Generator().manual_seed(0)
    digit_ink = torch.rand(10, generator=gen) + 0.5  # each digit its own amount of ink
    row_style = torch.tensor([0.5, 1.0, 2.0]).view(3, 1)  # thin, normal, bold
    shared = (row_style * digit_ink).flatten().view(30, 1, 1, 1) * torch.ones(30, 1, 28, 28) / 784
    assert style_share(shared, n_rows=3) > 0.99
    unrelated = (torch.rand(3, 10, generator=gen) + 0.5) * digit_ink
    low = style_share(unrelated.flatten().view(30, 1, 1, 1) * torch.ones(30, 1, 28, 28) / 784, n_rows=3)
    assert low < 0.5
