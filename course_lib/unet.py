"""The noise-predicting U-Net of DDPM (Ho et al. 2020), sized for 28 x 28 one-channel images.

A denoising diffusion model trains a network eps_theta(x_t, t) to find the noise eps in a noisy image
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps. This file is only that network: it knows nothing about noise
schedules, so the same U-Net serves DDPM, DDIM and classifier-free guidance (the schedule and the samplers live
apart and take any `eps_model(x, t)`).

Shape of the network with channels (32, 64, 128); every ResBlock also gets the time embedding:

    28 x 28   x_t -> conv 1->32 -> ResBlock 32 ---------- skip ----------> cat 64 -> ResBlock ->32 -> conv ->1 = eps
                                     | stride-2 conv                          ^ upsample, conv 64->32
    14 x 14                       ResBlock 32->64 ----- skip -----> cat 128 -> ResBlock ->64
                                     | stride-2 conv                  ^ upsample, conv 128->64
     7 x 7                        ResBlock 64->128 -> 2 ResBlocks -> cat 256 -> ResBlock ->128
                                     |______________ skip ___________^

The timestep t enters every residual block: a sinusoidal embedding of t, through a small MLP, is projected to each
block's channels and added to its feature map. With `num_classes`, a learned class embedding is added to the time
embedding too (for classifier-free guidance; the extra index `num_classes` means "no label").

    >>> model = UNet(channels=(8, 16, 16), time_dim=32)
    >>> x, t = torch.randn(4, 1, 28, 28), torch.randint(0, 1000, (4,))
    >>> model(x, t).shape
    torch.Size([4, 1, 28, 28])
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .nets import check_finite, check_float32


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """The Transformer's positional encoding (Vaswani et al. 2017), used for the timestep t: (B,) -> (B, dim).

        emb[:, i]           = sin(t / max_period^(i / half))    for i = 0 .. half - 1,  half = dim / 2
        emb[:, half + i]    = cos(t / max_period^(i / half))

    Sines first, then cosines (the paper interleaves them; the network does not care about the order). Frequencies
    run from 1 (changes with every step of t) down to 1/max_period (changes over the whole range of t), so both
    nearby and distant timesteps get distinct codes. At t = 0 every sine is 0 and every cosine is 1.

    >>> sinusoidal_embedding(torch.tensor([0, 1]), 4)
    tensor([[0.0000, 0.0000, 1.0000, 1.0000],
            [0.8415, 0.0100, 0.5403, 0.9999]])
    """
    if dim % 2:
        raise ValueError(f"The embedding needs an even dim (half sines, half cosines), got dim={dim}. "
                         f"Try dim={dim + 1}.")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (B, dim)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 8 groups (fewer when `channels` is not a multiple of 8, as in the tiny test models)."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResBlock(nn.Module):
    """A residual block that also sees the time embedding (DDPM's block, without dropout):

        h = conv3x3(SiLU(GroupNorm(x)))  +  Linear(SiLU(emb))        the time, one number per channel
        h = conv3x3(SiLU(GroupNorm(h)))
        out = skip(x) + h                                           skip: 1x1 conv if the channels change
    """

    def __init__(self, in_channels: int, out_channels: int, time_dim: int):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, out_channels)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        h = h + self.time_proj(F.silu(emb))[:, :, None, None]  # (B, C_out, 1, 1) broadcast over H, W
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


def downsample(channels: int) -> nn.Module:
    """Halve the size with a stride-2 3x3 convolution: 28 -> 14 -> 7."""
    return nn.Conv2d(channels, channels, 3, stride=2, padding=1)


class Upsample(nn.Module):
    """Grow to the size of the skip it joins (7 -> 14 -> 28; for a 7 x 7 latent, 2 -> 4 -> 7): nearest-neighbour
    copy, then a 3x3 convolution (no checkerboard artefacts)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class UNet(nn.Module):
    """eps_theta(x_t, t[, y]): noisy images (B, 1, 28, 28) and timesteps (B,) -> predicted noise (B, 1, 28, 28).

    `channels` = (c0, c1, c2): the width at 28 x 28, 14 x 14 and 7 x 7. The default (32, 64, 128) has 1.79 M
    parameters; `UNet(channels=(8, 16, 16), time_dim=32)` builds a tiny one for tests.
    `image_shape`: what it denoises, (1, 28, 28) for digits; lesson 6 uses the same network on an autoencoder's
    latents, e.g. `UNet(image_shape=(4, 7, 7))` (then the sizes are 7, 4 and 2).
    `time_dim`: size of the time embedding. `num_classes`: None for an unconditional model, or the number of classes
    for a class-conditional one, then called as `model(x, t, y)` with labels y (B,) in 0 .. num_classes - 1, or
    `num_classes` for "no label" (y=None means no label for the whole batch).
    `cond_channels`: images the network also sees, concatenated to x on the channels, `model(x, t, cond=c)` with c
    shaped (B, cond_channels, H, W): lesson 8's SR3 gives it the upsampled low-resolution digit.

    >>> model = UNet(channels=(8, 16, 16), num_classes=10)
    >>> y = torch.tensor([3, 10])  # a "3", and an image with no label
    >>> model(torch.randn(2, 1, 28, 28), torch.tensor([10, 500]), y).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(self, channels: tuple[int, int, int] = (32, 64, 128), time_dim: int = 128,
                 num_classes: int | None = None, image_shape: tuple[int, int, int] = (1, 28, 28),
                 cond_channels: int = 0):
        super().__init__()
        if len(channels) != 3:
            raise ValueError(f"channels gives the width at 28x28, 14x14 and 7x7, so it needs 3 numbers, got "
                             f"{tuple(channels)}. For example UNet(channels=(32, 64, 128)).")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be a positive number of classes (e.g. 10) or None, not {num_classes}.")
        if len(image_shape) != 3:
            raise ValueError(f"image_shape is (channels, height, width), e.g. (1, 28, 28); got {tuple(image_shape)}.")
        c0, c1, c2 = channels
        self.channels, self.time_dim, self.num_classes = tuple(channels), time_dim, num_classes
        self.image_shape, self.cond_channels = tuple(image_shape), cond_channels
        in_channels = image_shape[0]

        # t -> sinusoidal code -> MLP; a class label adds its own learned vector (index num_classes = no label)
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.label_emb = nn.Embedding(num_classes + 1, time_dim) if num_classes is not None else None

        self.stem = nn.Conv2d(in_channels + cond_channels, c0, 3, padding=1)
        # down path: each level's output is kept for the skip connection
        self.down0 = ResBlock(c0, c0, time_dim)  # 28 x 28
        self.pool0 = downsample(c0)  # 28 -> 14
        self.down1 = ResBlock(c0, c1, time_dim)  # 14 x 14
        self.pool1 = downsample(c1)  # 14 -> 7
        self.down2 = ResBlock(c1, c2, time_dim)  # 7 x 7
        # middle, at the smallest size, where each pixel sees most of the image
        self.mid1 = ResBlock(c2, c2, time_dim)
        self.mid2 = ResBlock(c2, c2, time_dim)
        # up path: concatenate the skip from the same size, then a ResBlock
        self.up2 = ResBlock(c2 + c2, c2, time_dim)  # 7 x 7
        self.unpool2 = Upsample(c2, c1)  # 7 -> 14
        self.up1 = ResBlock(c1 + c1, c1, time_dim)  # 14 x 14
        self.unpool1 = Upsample(c1, c0)  # 14 -> 28
        self.up0 = ResBlock(c0 + c0, c0, time_dim)  # 28 x 28
        self.out = nn.Sequential(group_norm(c0), nn.SiLU(), nn.Conv2d(c0, in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor | int, y: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        x = check_noisy_images(x, self.image_shape).to(self.stem.weight.device)  # inputs go where the model is
        cond = self._check_cond(cond, x)
        t = self._check_timesteps(t, len(x), x.device)
        emb = self.time_mlp(sinusoidal_embedding(t, self.time_dim))  # (B, time_dim)
        if self.label_emb is not None:
            emb = emb + self.label_emb(self._check_labels(y, len(x), x.device))
        elif y is not None:
            raise ValueError("This UNet is unconditional (num_classes=None), so it takes no labels: call model(x, t). "
                             "For a class-conditional model build UNet(num_classes=10).")

        h = self.stem(x if cond is None else torch.cat([x, cond], dim=1))  # (B, c0, 28, 28)
        h0 = self.down0(h, emb)  # (B, c0, 28, 28)
        h1 = self.down1(self.pool0(h0), emb)  # (B, c1, 14, 14)
        h2 = self.down2(self.pool1(h1), emb)  # (B, c2, 7, 7)
        h = self.mid2(self.mid1(h2, emb), emb)  # (B, c2, 7, 7)
        h = self.up2(torch.cat([h, h2], dim=1), emb)  # (B, 2 c2, 7, 7) -> (B, c2, 7, 7)
        h = self.up1(torch.cat([self.unpool2(h, h1.shape[-2:]), h1], dim=1), emb)  # (B, 2 c1, 14, 14) -> (B, c1, ..)
        h = self.up0(torch.cat([self.unpool1(h, h0.shape[-2:]), h0], dim=1), emb)  # (B, 2 c0, 28, 28) -> (B, c0, ..)
        return self.out(h)  # (B, 1, 28, 28)

    def _check_cond(self, cond, x: torch.Tensor) -> torch.Tensor | None:
        """The conditioning images on x's device, checked against `cond_channels`."""
        b, _, h, w = x.shape
        if self.cond_channels == 0:
            if cond is not None:
                raise ValueError("This UNet takes no conditioning images (cond_channels=0): call model(x, t). For "
                                 "SR3, build UNet(cond_channels=1) and call model(x, t, cond=upsampled).")
            return None
        expected = (b, self.cond_channels, h, w)
        if cond is None or not isinstance(cond, torch.Tensor) or tuple(cond.shape) != expected:
            got = tuple(cond.shape) if isinstance(cond, torch.Tensor) else cond
            raise ValueError(f"This UNet also sees {self.cond_channels} conditioning channel(s): call model(x, t, "
                             f"cond=c) with c shaped {expected}, got {got}.")
        return check_noisy_images(cond, (self.cond_channels, h, w)).to(x.device)

    def _check_timesteps(self, t, batch: int, device: torch.device) -> torch.Tensor:
        """t as a (B,) tensor on x's device; a single number (or 0-d tensor) is used for the whole batch."""
        t = torch.as_tensor(t, device=device)
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"Expected one timestep per image, shaped ({batch},), got {tuple(t.shape)}. Use e.g. "
                             f"torch.full(({batch},), 500) for the same step everywhere.")
        if len(t) and not t.is_meta and not bool(torch.isfinite(t).all() & (t >= 0).all()):
            raise ValueError(f"Timesteps count from 0 (the clean image) up, got values from {t.min().item()} to "
                             f"{t.max().item()}. Draw them with torch.randint(0, T, (B,)).")
        return t

    def _check_labels(self, y, batch: int, device: torch.device) -> torch.Tensor:
        """Labels as a (B,) long tensor in 0 .. num_classes (num_classes = "no label"); None = no label at all."""
        n = self.num_classes
        if y is None:
            return torch.full((batch,), n, dtype=torch.long, device=device)
        y = torch.as_tensor(y, device=device)
        if y.dim() == 0:
            y = y.expand(batch)
        if y.shape != (batch,) or y.is_floating_point():
            raise ValueError(f"Expected one whole-number label per image, shaped ({batch},), got {tuple(y.shape)} "
                             f"{y.dtype}. Use e.g. torch.full(({batch},), 3) to ask for the class 3 everywhere.")
        if len(y) and (int(y.min()) < 0 or int(y.max()) > n):
            raise ValueError(f"Labels must be in 0 .. {n - 1} (a class), or {n} for 'no label'; got values from "
                             f"{int(y.min())} to {int(y.max())}.")
        return y.long()


def check_noisy_images(x: torch.Tensor, shape: tuple[int, int, int] = (1, 28, 28)) -> torch.Tensor:
    """Raise a clear error unless `x` is a float32 batch shaped (B, *shape), (B, 1, 28, 28) for digits, without NaN or
    inf; return it unchanged. Unlike `data.check_images`, the range is not checked: noisy images x_t have any.

    >>> check_noisy_images(torch.zeros(28, 28))
    Traceback (most recent call last):
    ...
    ValueError: The U-Net takes noisy images shaped (B, 1, 28, 28), got (28, 28). For one image use x.view(1, 1, 28, 28); for a batch of flat vectors use x.view(-1, 1, 28, 28).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"The U-Net takes a torch.Tensor, got {type(x).__name__}. Convert with torch.as_tensor(x).")
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(shape):
        c, h, w = shape
        raise ValueError(f"The U-Net takes noisy images shaped (B, {c}, {h}, {w}), got {tuple(x.shape)}. For one "
                         f"image use x.view(1, {c}, {h}, {w}); for a batch of flat vectors use x.view(-1, {c}, {h}, {w}).")
    return check_finite(check_float32(x, "the noisy images x"), "the noisy images x")

