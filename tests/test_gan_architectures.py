"""Lesson 7's networks: the style-based generator (AdaIN, mixing, truncation, noise), progressive growing (the
fade-in starts exactly where the smaller network was), EBGAN and MSGAN (losses, steps, diversity)."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.data import load_dataset
from course_lib.conditional import ConditionalDiscriminator, ConditionalGAN, ConditionalGenerator
from course_lib.gan_variants import (EBGANStep, EnergyDiscriminator, MSGANStep, class_diversity, ebgan_d_loss,
                                     mode_seeking_term)
from course_lib.gans import GAN, DCGANDiscriminator, DCGANGenerator, GANStep
from course_lib.progressive import Grow, ProgressiveDiscriminator, ProgressiveGenerator, fade
from course_lib.stylegan import (EqualisedConv2d, EqualisedLinear, StyleGenerator, adain, mix_styles, mixing_grid,
                                path_length, relative_change)


def test_adain_gives_each_feature_map_the_styles_mean_and_spread():
    h = torch.randn(2, 4, 6, 6) * 5 + 3
    scale, bias = torch.rand(2, 4), torch.randn(2, 4)
    out = adain(h, scale, bias)
    assert torch.allclose(out.mean(dim=(2, 3)), bias, atol=1e-4)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), 1 + scale, atol=1e-3)


def test_equalised_layers_compute_a_plain_layer_and_learn_at_one_relative_rate():
    torch.manual_seed(0)
    layer, x = EqualisedLinear(400, 50, gain=2.0, lr_mul=0.1), torch.randn(8, 400)
    expected = F.linear(x, layer.weight * layer.scale, layer.bias * 0.1)
    assert torch.allclose(layer(x), expected)
    assert abs((layer.weight * layer.scale).std().item() - 2.0 / 400 ** 0.5) < 0.01  # He's std, gain 2
    conv, images = EqualisedConv2d(4, 6, 3, padding=1), torch.randn(2, 4, 5, 5)
    expected = F.conv2d(images, conv.weight / 6, conv.bias, padding=1)  # 6 = sqrt(fan-in) = sqrt(4 * 3 * 3)
    assert torch.allclose(conv(images), expected, atol=1e-6)
    # a plain layer with a large fan-in has small weights, so Adam's steps (about lr each) change it much faster,
    # relative to its size, than one with a small fan-in; equalised, both change at about the same relative rate
    small_in, large_in = torch.randn(64, 16), torch.randn(64, 1024)
    inputs = ((16, small_in), (1024, large_in))
    plain = [relative_change(torch.nn.Linear(n, 16), x, 1e-2) for n, x in inputs]
    equal = [relative_change(EqualisedLinear(n, 16), x, 1e-2) for n, x in inputs]
    assert plain[1] / plain[0] > 4 and 0.7 < equal[1] / equal[0] < 1.4, (plain, equal)
    slow = relative_change(EqualisedLinear(16, 16, lr_mul=0.01), small_in, 1e-2)
    assert 0.005 < slow / equal[0] < 0.02  # lr_mul = 0.01: a hundred times slower


def test_style_generator_shapes_truncation_and_noise():
    torch.manual_seed(0)
    g = StyleGenerator().eval()
    z = torch.randn(4, g.z_dim)
    assert g(z).shape == (4, 1, 28, 28) and 0 <= g(z).min() and g(z).max() <= 1
    g.w_avg.normal_()
    average = g.generate(z, psi=0.0, noise=False)
    assert torch.allclose(average, average[:1].expand_as(average), atol=1e-6)  # psi = 0: every z gives w_avg
    assert not torch.allclose(g.generate(z, noise=False)[0], g.generate(z, noise=False)[1])
    with torch.no_grad():  # noise switched on: the same seed repeats the details, another seed changes them
        g.layers[-1].noise_strength.fill_(1.0)
    a = g.generate(z, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, g.generate(z, generator=torch.Generator().manual_seed(1)))
    assert not torch.equal(a, g.generate(z, generator=torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="styles"):
        g.synthesis(torch.zeros(2, 3, g.w_dim))


def test_every_resolution_draws_into_the_image_through_its_own_skip():
    torch.manual_seed(0)
    g = StyleGenerator().eval()
    ws = g.styles(torch.randn(4, g.z_dim))
    with torch.no_grad():
        for to_image in g.to_images:  # small logits, where the sigmoid can be inverted without losing digits
            to_image.bias.fill_(0.0)
            to_image.weight.mul_(0.01)
        logits = lambda: torch.logit(g.synthesis(ws, noise=False).double())  # noqa: E731
        full = logits()
        coarse_weight = g.to_images[0].weight.clone()
        g.to_images[0].weight.zero_()  # without the 7 x 7 image: the logits drop exactly its upsampled part
        without_coarse = logits()
        g.to_images[0].weight.copy_(coarse_weight)
        h = g.const.expand(4, -1, -1, -1)
        for i in range(2):
            h = g.layers[i](h, ws[:, i], None)
        coarse = g.to_images[0](h)  # (4, 1, 7, 7)
        upsampled = F.interpolate(F.interpolate(coarse, size=14, mode="bilinear"), size=28, mode="bilinear")
    assert (full - without_coarse).abs().max() > 0.005
    assert torch.allclose(full - without_coarse, upsampled.double(), atol=1e-5)


def test_training_forward_tracks_the_average_w_and_mixes_styles():
    torch.manual_seed(0)
    g = StyleGenerator(mixing=1.0).train()
    before = g.w_avg.clone()
    g(torch.randn(8, g.z_dim))
    assert not torch.equal(before, g.w_avg)
    g.eval()
    g(torch.randn(8, g.z_dim))  # eval mode: the average stays
    after = g.w_avg.clone()
    g(torch.randn(8, g.z_dim))
    assert torch.equal(after, g.w_avg)


def test_mixing_takes_coarse_layers_from_one_latent_and_fine_from_the_other():
    torch.manual_seed(0)
    g = StyleGenerator().eval()
    za, zb = torch.randn(2, g.z_dim), torch.randn(3, g.z_dim)
    wa, wb = g.styles(za), g.styles(zb[:2])
    assert torch.equal(mix_styles(wa, wb, g.num_layers), wa) and torch.equal(mix_styles(wa, wb, 0), wb)
    with pytest.raises(ValueError, match="crossover"):
        mix_styles(wa, wb, 9)
    grid = mixing_grid(g, za, zb, crossover=g.num_layers)  # every layer from the row's latent: rows repeat
    assert grid.shape == (6, 1, 28, 28) and torch.allclose(grid[0], grid[2], atol=1e-6)


def test_a_stylegan_trains_with_lesson_3s_step():
    torch.manual_seed(0)
    gan = GAN(StyleGenerator(), DCGANDiscriminator(width=8))
    step = GANStep(gan, lr_d=2e-3, lr_g=2e-3, augment=1.0, generator=torch.Generator().manual_seed(0))
    before = [p.clone() for p in gan.generator.parameters()]
    logs = [step(gan, (torch.rand(16, 1, 28, 28),)) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(list(log.values()))).all() for log in logs)
    assert any(not torch.equal(a, b) for a, b in zip(before, gan.generator.parameters()))


def test_path_length_is_zero_for_a_constant_decoder_and_grows_with_jumps():
    a, b = torch.zeros(3, 2), torch.ones(3, 2)
    flat = lambda x: x.flatten(1)  # noqa: E731
    constant = path_length(lambda z: torch.zeros(len(z), 1, 28, 28), a, b, flat)
    assert torch.equal(constant, torch.zeros(3))
    smooth = path_length(lambda z: z[:, :1, None, None].expand(-1, 1, 28, 28), a, b, flat)
    jump = path_length(lambda z: (z[:, :1, None, None] > 0.5).float().expand(-1, 1, 28, 28), a, b, flat)
    assert (jump > smooth).all()  # the same start and end, reached in one jump: a longer path


@pytest.mark.parametrize("stage", [1, 2])
def test_fade_in_starts_exactly_where_the_smaller_network_was(stage):
    torch.manual_seed(0)
    g, d = ProgressiveGenerator(), ProgressiveDiscriminator()
    z, x = torch.randn(4, g.z_dim), torch.rand(4, 1, 28, 28)
    for net in (g, d):
        net.grow_to(stage - 1)
    before = g(z), d(x)
    for net in (g, d):
        net.grow_to(stage, alpha=0.0)
    assert torch.allclose(g(z), before[0], atol=1e-6) and torch.allclose(d(x), before[1], atol=1e-5)
    for net in (g, d):
        net.grow_to(stage, alpha=1.0)
    assert not torch.allclose(g(z), before[0], atol=1e-3)


def test_the_generator_draws_at_its_stage_resolution():
    g = ProgressiveGenerator()
    z = torch.randn(2, g.z_dim)
    image = g(z)  # stage 0: 7 x 7 pixels, each repeated 4 x 4 times
    assert torch.allclose(image, F.interpolate(F.avg_pool2d(image, 4), scale_factor=4, mode="nearest"), atol=1e-6)
    with pytest.raises(ValueError, match="stage"):
        g.grow_to(3)


def test_grow_schedule_with_and_without_fade():
    gan = GAN(ProgressiveGenerator(), ProgressiveDiscriminator())
    grow = Grow(gan, steps_per_stage=10, fade_steps=4)
    assert [grow.schedule(s) for s in (0, 9, 10, 12, 14, 20, 25, 99)] == \
        [(0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0), (2, 0.0), (2, 1.0), (2, 1.0)]
    assert Grow(gan, 10, 0).schedule(10) == (1, 1.0) and grow.switches() == [10, 20]
    with pytest.raises(ValueError, match="fade_steps"):
        Grow(gan, 10, 11)
    grow.finish()
    assert gan.generator.resolution == gan.discriminator.resolution == 28


def test_grow_state_puts_a_fresh_gan_where_training_left_off():
    """Bundled weights and checkpoints carry Grow's state: a new GAN loaded from it is at the same stage and alpha."""
    gan = GAN(ProgressiveGenerator(), ProgressiveDiscriminator())
    grow = Grow(gan, steps_per_stage=10, fade_steps=4)
    grow._set(12)  # half-way through the fade-in to 14 x 14
    fresh = GAN(ProgressiveGenerator(), ProgressiveDiscriminator())
    Grow(fresh, steps_per_stage=1, fade_steps=0).load_state_dict(grow.state_dict())
    for net in (fresh.generator, fresh.discriminator):
        assert (net.stage, net.alpha) == (1, 0.5)


def test_ebgan_losses_and_step():
    assert ebgan_d_loss(torch.tensor([0.2]), torch.tensor([0.05]), margin=0.1).item() == pytest.approx(0.25)
    torch.manual_seed(0)
    gan = GAN(DCGANGenerator(z_dim=16, width=8), EnergyDiscriminator(width=8, code=8))
    step = EBGANStep(gan, margin=0.1, lr_d=2e-3, lr_g=2e-3, generator=torch.Generator().manual_seed(0))
    real = load_dataset("mnist", "train", n=16, source="bundled").tensors[0]
    logs = [step(gan, (real,)) for _ in range(40)]
    assert logs[-1]["energy_real"] < logs[0]["energy_real"]  # D learns to rebuild the real batch
    with pytest.raises(ValueError, match="margin"):
        EBGANStep(gan, margin=0.0)


def test_mode_seeking_term_is_small_when_noise_spreads_into_the_images():
    z1, z2 = torch.zeros(4, 8), torch.ones(4, 8)
    same, apart = torch.zeros(4, 1, 4, 4), torch.ones(4, 1, 4, 4)
    assert mode_seeking_term(same, apart, z1, z2) < mode_seeking_term(same, same + 0.01, z1, z2)


def test_msgan_step_needs_a_conditional_gan_and_logs_the_term():
    with pytest.raises(ValueError, match="conditional"):
        MSGANStep(GAN(DCGANGenerator(), DCGANDiscriminator()))
    torch.manual_seed(0)
    gan = ConditionalGAN(ConditionalGenerator(z_dim=16, width=8), ConditionalDiscriminator(width=8))
    logs = MSGANStep(gan, ms_weight=1.0)(gan, (torch.rand(10, 1, 28, 28), torch.arange(10)))
    assert logs["mode_seeking"] > 0 and set(logs) >= {"d_loss", "g_loss", "d_real", "d_fake"}


def test_class_diversity_orders_sets_by_spread():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    tight = torch.rand(1, 1, 28, 28).repeat(6, 1, 1, 1) + 0.01 * torch.rand(6, 1, 28, 28)
    loose = torch.rand(6, 1, 28, 28)
    flat = lambda x: x.flatten(1)  # noqa: E731
    assert class_diversity(loose, labels, flat) > class_diversity(tight, labels, flat) > 0
    with pytest.raises(ValueError, match="two images"):
        class_diversity(loose[:2], torch.tensor([0, 1]), flat)
    assert fade(torch.zeros(1), torch.ones(1), 1.0).item() == 1.0
