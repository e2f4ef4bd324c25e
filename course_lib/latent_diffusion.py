"""Latent diffusion (lesson 6, Rombach et al. 2022): run diffusion in an autoencoder's small latent space.

A diffusion model spends its steps on every pixel. Latent diffusion first trains an autoencoder that compresses an
image x into a small *spatial* latent z = E(x) (here 4 x 7 x 7 = 196 numbers for 784 pixels) and rebuilds it,
x ~ D(z). The diffusion model is then trained on the latents instead of the pixels, with nothing else changed:
the same schedule, the same loss, the same samplers and guidance, the same U-Net (built for a 4 x 7 x 7 input).
Sampling runs the reverse process on latents and decodes once at the end:

    z_T ~ N(0, I)  --(DDIM steps of eps_theta(z_t, t, y))-->  z_0  --D-->  image

That is why Stable Diffusion is fast enough to use: every step works on a latent 48 times smaller than the image.

The latents are scaled to about unit standard deviation before diffusion (the forward process assumes data of
about that size; Stable Diffusion multiplies its latents by 0.18215 for the same reason).

    >>> ae = LatentAutoencoder()
    >>> x = torch.rand(4, 1, 28, 28)
    >>> ae.encode(x).shape, ae(x).shape
    (torch.Size([4, 4, 7, 7]), torch.Size([4, 1, 28, 28]))
"""

import math

import torch
from torch import nn
from torch.utils.data import TensorDataset

from .data import check_images
from .nets import check_finite, check_float32, device_of, evaluating


class LatentAutoencoder(nn.Module):
    """E: image (B, 1, 28, 28) -> latent (B, latent_channels, 7, 7); D: latent -> image in [0, 1].

    Lesson 1's convolutional autoencoder without the final flattening: the code keeps its 7 x 7 layout, so the
    U-Net can treat it as a small image with `latent_channels` channels.
    """

    def __init__(self, latent_channels: int = 4, width: int = 32):
        super().__init__()
        c = width
        self.latent_shape = (latent_channels, 7, 7)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.SiLU(),  # (B, c, 14, 14)
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.BatchNorm2d(2 * c), nn.SiLU(),  # (B, 2c, 7, 7)
            nn.Conv2d(2 * c, latent_channels, 3, padding=1),  # (B, 4, 7, 7)
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.SiLU(),  # (B, 2c, 7, 7)
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.SiLU(),  # (B, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1), nn.Sigmoid(),  # (B, 1, 28, 28)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(check_images(x).to(device_of(self)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        check_float32(z, "the latents z")
        if z.dim() != 4 or tuple(z.shape[1:]) != self.latent_shape:
            c, h, w = self.latent_shape
            raise ValueError(f"This decoder takes latents shaped (B, {c}, {h}, {w}), got {tuple(z.shape)}. "
                             f"For one latent use z.view(1, {c}, {h}, {w}).")
        return self.decoder(check_finite(z, "the latents z").to(device_of(self)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@torch.no_grad()
def encode_dataset(autoencoder: LatentAutoencoder, dataset: TensorDataset, batch_size: int = 500,
                   scale: float | None = None) -> tuple[TensorDataset, float]:
    """The whole (images, labels) dataset as (scaled latents, labels), and the scale used.

    The scale is 1 / std of all latent numbers (unless given), so the diffusion model sees data of unit spread.
    Encoding runs in eval mode; decode samples with `autoencoder.decode(z / scale)`. An empty dataset, or latents
    without spread (e.g. an untrained or collapsed autoencoder), have no scale and are refused.
    """
    images, labels = dataset.tensors[0], dataset.tensors[1]
    if len(images) == 0:
        raise ValueError("encode_dataset got an empty dataset: there is nothing to encode. Check how it was made "
                         "(e.g. load_dataset('mnist', n=1000)).")
    device = device_of(autoencoder)
    with evaluating(autoencoder):
        latents = torch.cat([autoencoder.encode(x.to(device)).cpu() for x in images.split(batch_size)])
    if scale is None:
        spread = latents.std().item() if latents.numel() > 1 else 0.0
        if not spread > 0 or not math.isfinite(spread):
            raise ValueError(f"The latents have no spread (std {spread:.3g}), so 1 / std is no scale: is the "
                             f"autoencoder trained? Train it first, or pass scale=... yourself.")
        scale = 1.0 / spread
    elif not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale multiplies the latents and must be a positive number, got {scale}.")
    return TensorDataset(latents * scale, labels), scale


@torch.no_grad()
def decode_latents(autoencoder: LatentAutoencoder, z: torch.Tensor, scale: float, batch_size: int = 500) -> torch.Tensor:
    """Images (B, 1, 28, 28) in [0, 1] from scaled latents: D(z / scale), in eval mode, on the model's device."""
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale is the positive number encode_dataset returned, got {scale}.")
    device = device_of(autoencoder)
    with evaluating(autoencoder):
        return torch.cat([autoencoder.decode(b.to(device) / scale).cpu() for b in z.split(batch_size)])
