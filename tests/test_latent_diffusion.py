"""Lesson 6: the latent autoencoder, scaled latents, and lesson 4's U-Net, loss and sampler reused on latents."""

import pytest
import torch

from course_lib.conditional import GuidedModel, cfg_step
from course_lib.data import load_dataset
from course_lib.diffusion import DiffusionSchedule, ddim_sample, diffusion_loss
from course_lib.latent_diffusion import LatentAutoencoder, decode_latents, encode_dataset
from course_lib.training import fit
from course_lib.unet import UNet


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", "train", n=64, source="bundled")


def test_autoencoder_shapes_and_a_clear_error_for_wrong_latents():
    ae = LatentAutoencoder(latent_channels=4)
    x = torch.rand(3, 1, 28, 28)
    assert ae.encode(x).shape == (3, 4, 7, 7) and ae(x).shape == (3, 1, 28, 28)
    assert 0 <= ae(x).min() and ae(x).max() <= 1
    with pytest.raises(ValueError, match=r"\(B, 4, 7, 7\)"):
        ae.decode(torch.zeros(3, 196))


def test_autoencoder_learns_to_reconstruct(digits):
    torch.manual_seed(0)
    ae = LatentAutoencoder(width=16)
    x = digits.tensors[0]
    step = lambda m, b: (m(b[0]) - b[0]).pow(2).flatten(1).sum(1).mean()  # noqa: E731  (lesson 1's L_AE)
    history = fit(ae, [(x,)] * 80, step, torch.optim.Adam(ae.parameters(), 3e-3), 1, progress=False)
    assert history.steps["loss"][-1] < 0.5 * history.steps["loss"][0]


def test_encoded_latents_have_unit_spread_and_decode_back(digits):
    torch.manual_seed(0)
    ae = LatentAutoencoder(width=16)
    latents, scale = encode_dataset(ae, digits)
    z, y = latents.tensors
    assert z.shape == (64, 4, 7, 7) and torch.equal(y, digits.tensors[1])
    assert abs(z.std().item() - 1.0) < 1e-4  # scaled to unit standard deviation
    assert ae.training  # encoding ran in eval mode, then the mode was restored
    images = decode_latents(ae, z, scale)
    assert ae.training
    with torch.no_grad():
        assert torch.allclose(images, ae.eval()(digits.tensors[0]), atol=1e-5)  # D(z / scale) = D(E(x))


def test_the_lesson_4_unet_takes_latents_and_checks_their_shape():
    unet = UNet(channels=(8, 16, 16), time_dim=32, num_classes=10, image_shape=(4, 7, 7))
    z, t = torch.randn(5, 4, 7, 7), torch.randint(0, 1000, (5,))
    assert unet(z, t, torch.arange(5)).shape == (5, 4, 7, 7)  # 7 -> 4 -> 2 and back to 7
    with pytest.raises(ValueError, match=r"\(B, 4, 7, 7\)"):
        unet(torch.randn(5, 1, 28, 28), t)


def test_latent_loss_and_guided_sampler_need_no_image_range():
    torch.manual_seed(0)
    schedule = DiffusionSchedule(T=100)
    unet = UNet(channels=(8, 16, 16), time_dim=32, num_classes=10, image_shape=(4, 7, 7))
    z0 = 3 * torch.randn(16, 4, 7, 7)  # far outside [0, 1]: only allowed with image_range=False
    with pytest.raises(ValueError, match="image_range=False"):
        diffusion_loss(lambda x, t: unet(x, t), schedule, z0)
    loss = cfg_step(schedule, fast=False, image_range=False)(unet, (z0, torch.arange(16) % 10))
    assert loss.dim() == 0 and torch.isfinite(loss)
    labels = torch.tensor([1, 2, 3])
    clipped, _ = ddim_sample(GuidedModel(unet, labels, 2.0, fast=False), schedule, n=3, steps=5, shape=(4, 7, 7),
                             image_range=False, generator=torch.Generator().manual_seed(0))
    free, _ = ddim_sample(GuidedModel(unet, labels, 2.0, fast=False), schedule, n=3, steps=5, shape=(4, 7, 7),
                          image_range=False, clip=None, generator=torch.Generator().manual_seed(0))
    assert clipped.shape == free.shape == (3, 4, 7, 7)
    assert free.abs().max() > 1  # without clipping, latents keep their full range
