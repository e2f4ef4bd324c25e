"""Lesson 1: the autoencoders, their loss, PCA, the corruptions and the latent grid."""

import pytest
import torch

from course_lib.autoencoders import (
    PCA,
    ConvAutoencoder,
    MLPAutoencoder,
    add_gaussian_noise,
    ae_loss,
    downsample,
    latent_grid,
    mask_pixels,
    mask_square,
    random_corruption,
)
from course_lib.data import load_dataset

NETWORKS = [MLPAutoencoder, ConvAutoencoder]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", "train", source="bundled").tensors[0]


@pytest.mark.parametrize("Net", NETWORKS)
def test_shapes_and_output_range(Net):
    torch.manual_seed(0)
    ae = Net(latent_dim=3)
    x = torch.rand(8, 1, 28, 28)
    assert ae.encode(x).shape == (8, 3)
    x_hat = ae(x)
    assert x_hat.shape == (8, 1, 28, 28)
    assert x_hat.min() >= 0 and x_hat.max() <= 1


@pytest.mark.parametrize("Net", NETWORKS)
@pytest.mark.parametrize("shape", [(8, 784), (28, 28)])
def test_wrong_image_shape_suggests_view(Net, shape):
    with pytest.raises(ValueError, match=r"view\("):
        Net(latent_dim=2)(torch.rand(shape))


@pytest.mark.parametrize("Net", NETWORKS)
def test_decode_with_wrong_latent_size(Net):
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        Net(latent_dim=2).decode(torch.rand(4, 3))


def test_ae_loss_is_the_slide_formula():
    x, x_hat = torch.rand(5, 1, 28, 28), torch.rand(5, 1, 28, 28)
    by_hand = sum(((x[i] - x_hat[i]) ** 2).sum() for i in range(5)) / 5
    assert torch.isclose(ae_loss(x, x_hat), by_hand)
    assert ae_loss(torch.ones(3, 1, 28, 28), torch.zeros(3, 1, 28, 28)).item() == 784.0


@pytest.mark.parametrize("Net", NETWORKS)
def test_loss_goes_down_on_a_tiny_batch(Net, digits):
    torch.manual_seed(0)
    ae, x = Net(latent_dim=8), digits[:32]
    optimizer = torch.optim.Adam(ae.parameters(), lr=1e-3)
    losses = []
    for _ in range(60):
        loss = ae_loss(x, ae(x))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.fixture(scope="module")
def pca10(digits):
    return PCA(latent_dim=10).fit(digits[:300])


def test_pca_components_are_orthonormal(pca10):
    c = pca10.components
    assert c.shape == (10, 784)
    assert torch.allclose(c @ c.T, torch.eye(10), atol=1e-4)


def test_pca_error_falls_as_k_grows(digits):
    x = digits[:300]
    errors = [ae_loss(x, PCA(latent_dim=k).fit(x)(x)).item() for k in (1, 5, 20)]
    assert errors[0] > errors[1] > errors[2]


def test_pca_beats_random_directions(digits, pca10):
    x = digits[:300]
    centred = x.flatten(1) - pca10.mean
    q, _ = torch.linalg.qr(torch.randn(784, 10, generator=torch.Generator().manual_seed(0)))  # 10 random directions
    random_error = (centred - centred @ q @ q.T).pow(2).sum(1).mean()
    assert ae_loss(x, pca10(x)) < random_error


def test_gaussian_noise_stays_in_range_and_is_reproducible():
    x = torch.rand(4, 1, 28, 28)
    a = add_gaussian_noise(x, 0.5, torch.Generator().manual_seed(0))
    b = add_gaussian_noise(x, 0.5, torch.Generator().manual_seed(0))
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, x)


def test_mask_pixels_zeroes_about_p():
    x = torch.rand(64, 1, 28, 28) * 0.9 + 0.1  # no zeros to start with
    out = mask_pixels(x, 0.3, torch.Generator().manual_seed(0))
    assert abs((out == 0).float().mean().item() - 0.3) < 0.02
    assert torch.equal(out[out != 0], x[out != 0])


def test_mask_square_blacks_out_one_square_per_image():
    x = torch.ones(16, 1, 28, 28)
    out = mask_square(x, size=12, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, torch.ones(16, 1, 28, 28))  # input untouched
    for img in out:
        rows, cols = (img[0] == 0).nonzero(as_tuple=True)
        assert len(rows) == 144
        assert rows.max() - rows.min() == 11 and cols.max() - cols.min() == 11


def test_downsample_keeps_the_shape_and_is_blocky():
    x = torch.rand(4, 1, 28, 28)
    out = downsample(x, 2)
    assert out.shape == x.shape
    blocks = out.unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)  # (4, 1, 14, 14, 4): the pixels of each 2x2 block
    assert torch.all(blocks == blocks[..., :1])
    assert torch.allclose(blocks[..., 0], x.unfold(2, 2, 2).unfold(3, 2, 2).mean((-1, -2)))


def test_random_corruption_leaves_its_input_alone():
    x = torch.rand(32, 1, 28, 28)
    original = x.clone()
    out = random_corruption(x, torch.Generator().manual_seed(0))
    assert torch.equal(x, original)
    assert out.shape == x.shape and not torch.equal(out, x)


def test_latent_grid_is_ordered_like_an_image():
    grid = latent_grid((-1, 1), (-2, 2), n=5)
    assert grid.shape == (25, 2)
    rows = grid.view(5, 5, 2)
    assert torch.equal(rows[0, :, 1], torch.full((5,), 2.0))  # top row: largest z2
    assert torch.equal(rows[-1, :, 1], torch.full((5,), -2.0))
    assert torch.equal(rows[0, :, 0], torch.linspace(-1, 1, 5))  # z1 grows left to right
    assert torch.all(rows[:, :, 0] == rows[0, :, 0])
