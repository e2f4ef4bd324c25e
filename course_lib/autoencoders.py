"""Autoencoders (lesson 1): an encoder g squeezes an image into a short code z, a decoder f rebuilds the image.

    L_AE = 1/n sum_i || x_i - f(g(x_i)) ||^2

Two networks with the same interface (`encode`, `decode`, `forward`), PCA as the linear baseline with that interface
too, and the corruptions M_D(x~ | x) that turn an autoencoder into a denoising autoencoder.

    >>> ae = MLPAutoencoder(latent_dim=2)
    >>> x = torch.rand(8, 1, 28, 28)
    >>> ae.encode(x).shape, ae(x).shape
    (torch.Size([8, 2]), torch.Size([8, 1, 28, 28]))
"""

import torch
import torch.nn.functional as F
from torch import nn

from .data import check_images, check_pixels
from .nets import check_finite, check_float32, device_of


def ae_loss(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """L_AE = 1/n sum_i ||x_i - x_hat_i||^2: squared error summed over the pixels of an image, averaged over images.
    x are images with pixels in [0, 1] (0-255 pixels or NaN are refused with the fix); x_hat may stray outside
    (PCA's reconstructions do) but must be finite. x is moved to x_hat's device, where the model put its output.

    >>> float(ae_loss(torch.ones(2, 1, 28, 28), torch.zeros(2, 1, 28, 28)))
    784.0
    """
    check_pixels(x, "the images x")
    check_finite(check_float32(x_hat, "the reconstructions x_hat"), "the reconstructions x_hat")
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}. "
                         f"Compare each image with its own reconstruction: ae_loss(x, model(x)).")
    return (x.to(x_hat.device) - x_hat).pow(2).flatten(1).sum(dim=1).mean()


class Autoencoder(nn.Module):
    """What every autoencoder here shares: input checks, `forward = decode(encode(x))`, and the latent size. Inputs
    are moved to the model's own device, so `model.encode(x_test)` works wherever the model is."""

    latent_dim: int

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(check_images(x).to(device_of(self)))

    def check_code(self, z: torch.Tensor) -> torch.Tensor:
        """Raise a clear error unless `z` is a batch of finite float32 codes shaped (B, latent_dim)."""
        check_float32(z, "the code z")
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"This decoder takes codes shaped (B, {self.latent_dim}), got {tuple(z.shape)}. "
                f"For a single code use z.view(1, {self.latent_dim})."
            )
        return check_finite(z, "the code z")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.check_code(z).to(device_of(self)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class MLPAutoencoder(Autoencoder):
    """784 -> 512 -> 256 -> latent -> 256 -> 512 -> 784, with a sigmoid so the output is in [0, 1] like the input."""

    def __init__(self, latent_dim: int = 2, hidden: tuple[int, int] = (512, 256)):
        super().__init__()
        h1, h2 = hidden
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Flatten(),  # (B, 1, 28, 28) -> (B, 784)
            nn.Linear(784, h1), nn.ReLU(),
            nn.Linear(h1, h2), nn.ReLU(),
            nn.Linear(h2, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, h2), nn.ReLU(),
            nn.Linear(h2, h1), nn.ReLU(),
            nn.Linear(h1, 784), nn.Sigmoid(),
            nn.Unflatten(1, (1, 28, 28)),
        )


class ConvAutoencoder(Autoencoder):
    """Strided convolutions down (28 -> 14 -> 7), transposed convolutions up (7 -> 14 -> 28).

    BatchNorm after each convolution keeps training stable at a high learning rate (without it, a run sometimes
    gets stuck drawing the same blur for every input).
    """

    def __init__(self, latent_dim: int = 16, channels: int = 32):
        super().__init__()
        c = channels
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),  # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(),  # (B, 2c, 7, 7)
            nn.Flatten(),
            nn.Linear(2 * c * 7 * 7, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 2 * c * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (2 * c, 7, 7)),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),  # (B, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1), nn.Sigmoid(),  # (B, 1, 28, 28)
        )


class PCA(Autoencoder):
    """Principal component analysis as a *linear* autoencoder: encode = project on the top-k directions, decode =
    map back. Fitted in closed form (an SVD), not trained; it is the best any linear encoder/decoder pair can do.

    >>> pca = PCA(latent_dim=2).fit(torch.rand(100, 1, 28, 28))
    >>> pca.encode(torch.rand(5, 1, 28, 28)).shape
    torch.Size([5, 2])
    """

    def __init__(self, latent_dim: int = 2):
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("mean", torch.zeros(784))
        self.register_buffer("components", torch.zeros(latent_dim, 784))  # rows: orthonormal directions

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> "PCA":
        if len(check_images(x)) < 2:
            raise ValueError(f"PCA needs at least 2 images to find directions of spread, got {len(x)}.")
        flat = x.flatten(1)
        self.mean = flat.mean(dim=0)
        _, _, vh = torch.linalg.svd(flat - self.mean, full_matrices=False)
        self.components = vh[: self.latent_dim]
        return self

    def encoder(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.mean) @ self.components.T

    def decoder(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.components + self.mean).view(-1, 1, 28, 28)


def fit_code_gaussian(codes: torch.Tensor) -> torch.distributions.MultivariateNormal:
    """A Gaussian fitted to the codes of real images (their mean and covariance): the most natural way to pick
    "random codes" for a plain autoencoder, which has no prior of its own.

    >>> fit_code_gaussian(torch.randn(500, 3)).sample((4,)).shape
    torch.Size([4, 3])
    """
    check_finite(codes, "the codes")
    if codes.dim() != 2 or len(codes) < 2:
        raise ValueError(f"Expected at least 2 codes shaped (n, latent_dim) to fit a Gaussian, got {tuple(codes.shape)}.")
    codes = codes.detach().double().cpu()
    covariance = torch.cov(codes.T) + 1e-6 * torch.eye(codes.shape[1], dtype=codes.dtype)
    return torch.distributions.MultivariateNormal(codes.mean(0).float(), covariance_matrix=covariance.float())


# ---- corruptions M_D(x~ | x) for the denoising autoencoder: L_DAE = 1/n sum_i ||x_i - f(g(x~_i))||^2 ----

def add_gaussian_noise(x: torch.Tensor, std: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """x~ = clip(x + std * eps, 0, 1) with eps ~ N(0, I)."""
    check_pixels(x)
    eps = torch.randn(x.shape, generator=generator).to(x.device)
    return (x + std * eps).clamp(0, 1)


def mask_pixels(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """x~ = x with each pixel set to 0 independently with probability p (masking noise)."""
    check_pixels(x)
    keep = (torch.rand(x.shape, generator=generator) >= p).to(x.device)
    return x * keep


def mask_square(x: torch.Tensor, size: int = 12, generator: torch.Generator | None = None) -> torch.Tensor:
    """x~ = x with one size x size square per image blacked out at a random place (what inpainting must fill)."""
    x = check_images(x).clone()
    corners = torch.randint(0, 28 - size + 1, (x.shape[0], 2), generator=generator)
    for img, (top, left) in zip(x, corners.tolist()):
        img[:, top : top + size, left : left + size] = 0
    return x


def downsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """x~ = x averaged down by `factor` and blown back up to 28 x 28 with blocky pixels (what upsampling must undo)."""
    check_pixels(x)
    small = F.avg_pool2d(x, factor)
    return F.interpolate(small, scale_factor=factor, mode="nearest")


def random_corruption(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image gets one corruption picked at random: noise, masked pixels, a masked square, or 2x / 4x low-res.
    One denoising autoencoder trained on this mix can denoise, inpaint and upsample."""
    check_images(x)
    choices = [
        lambda b: add_gaussian_noise(b, 0.5, generator),
        lambda b: mask_pixels(b, 0.5, generator),
        lambda b: mask_square(b, 12, generator),
        lambda b: downsample(b, 2),
        lambda b: downsample(b, 4),
    ]
    pick = torch.randint(len(choices), (x.shape[0],), generator=generator)
    out = torch.empty_like(x)
    for i, corrupt in enumerate(choices):
        rows = (pick == i).nonzero().flatten().to(x.device)
        if len(rows):
            out[rows] = corrupt(x[rows])
    return out


def latent_grid(z1_range: tuple[float, float], z2_range: tuple[float, float], n: int = 15) -> torch.Tensor:
    """An n x n grid of 2-D codes, shaped (n*n, 2), ordered like an image: top row (largest z2) first, z1 growing
    left to right, so `show_images(decode(grid), nrow=n)` lines up with a scatter plot of the latent plane.

    >>> latent_grid((-1, 1), (-1, 1), 3)[:3]
    tensor([[-1.,  1.],
            [ 0.,  1.],
            [ 1.,  1.]])
    """
    z1 = torch.linspace(float(z1_range[0]), float(z1_range[1]), n)
    z2 = torch.linspace(float(z2_range[1]), float(z2_range[0]), n)
    rows, cols = torch.meshgrid(z2, z1, indexing="ij")
    return torch.stack([cols.flatten(), rows.flatten()], dim=1)
