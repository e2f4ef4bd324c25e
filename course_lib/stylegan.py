"""A style-based generator (lesson 7): Karras, Laine & Aila 2019 (StyleGAN), at digit size.

Instead of feeding the noise z into the first layer, StyleGAN

1. maps z through an MLP to an intermediate latent w = f(z) (the *mapping network*);
2. starts the image from a learned constant (7 x 7 here, 4 x 4 in the paper's faces);
3. after every convolution, renormalises each feature map (instance norm) and gives it a scale and a bias computed
   from w: AdaIN(h, w) = (1 + s(w)) * (h - mean(h)) / std(h) + b(w). Each layer has its own affine map from w,
   so each layer's *style* can come from a different w (style mixing);
4. adds fresh per-pixel noise to every layer, scaled per channel: the stochastic details (the exact stroke edge);
5. turns the last feature maps of each resolution into an image with a 1 x 1 convolution and adds it to the image
   so far, upsampled (bilinear) to that resolution (StyleGAN2's "skip" generator; the first StyleGAN grew
   progressively instead). The coarse layers draw into the image from the first step; this small generator
   learned faster with it (see `recipes.STYLEGAN`).

AdaIN is what the lecture shows (means and deviations computed from the latent); StyleGAN2 replaced it by weight
modulation to remove blob artefacts of large images, a problem 28 x 28 digits do not have.

Every weight of the generator has an *equalised learning rate* (`EqualisedLinear`, `EqualisedConv2d`), and the
mapping network learns 100 times slower than the rest, as in the paper: without them this generator's digits kept
jumping from one kind of digit to another during training instead of improving (see `recipes.STYLEGAN`).

    >>> g = StyleGenerator()
    >>> g(torch.randn(3, g.z_dim)).shape
    torch.Size([3, 1, 28, 28])
    >>> g.styles(torch.randn(3, g.z_dim)).shape  # one w per layer
    torch.Size([3, 6, 64])
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .gans import check_noise
from .nets import device_of, evaluating

# the synthesis layers, coarse to fine: two at 7 x 7, two at 14 x 14, two at 28 x 28
RESOLUTIONS = (7, 7, 14, 14, 28, 28)
RESOLUTION_LEVELS = (7, 14, 28)
LEVELS = {"coarse (7 x 7)": (0, 2), "middle (14 x 14)": (2, 4), "fine (28 x 28)": (4, 6)}


def adain(h: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalisation: AdaIN(h) = (1 + scale) * (h - mu(h)) / sigma(h) + bias, with mu and sigma
    each feature map's own mean and standard deviation (over its pixels), and scale, bias (B, C) from the style.

    >>> h = torch.randn(2, 3, 5, 5) * 4 + 7
    >>> out = adain(h, torch.zeros(2, 3), torch.zeros(2, 3))
    >>> abs(round(out.mean().item(), 4)), round(out.std(dim=(2, 3), unbiased=False).mean().item(), 2)
    (0.0, 1.0)
    """
    normalised = F.instance_norm(h, eps=eps)  # (h - mu(h)) / sigma(h), each feature map of each image on its own
    return torch.addcmul(bias[:, :, None, None], 1 + scale[:, :, None, None], normalised)


class EqualisedLinear(nn.Linear):
    """nn.Linear with an *equalised learning rate* (Karras et al. 2018, kept by StyleGAN). Its weights are stored at
    the scale N(0, 1 / lr_mul^2) and multiplied by gain * lr_mul / sqrt(fan_in) at every call (bias by lr_mul): the
    layer starts as a He-initialised one would. Adam's steps have about the same size for every parameter, whatever
    its scale, so a layer with small weights (a large fan-in) changes much faster, relative to its weights, than one
    with large weights; stored at one scale, every layer changes at the same relative rate, lr_mul times Adam's
    learning rate.

    >>> layer = EqualisedLinear(400, 10, lr_mul=0.01)
    >>> round(layer.weight.std().item(), -1), round((layer.weight * layer.scale).std().item() * 20, 1)  # 20 = sqrt(400)
    (100.0, 1.0)
    """

    def __init__(self, in_features: int, out_features: int, gain: float = 1.0, lr_mul: float = 1.0):
        super().__init__(in_features, out_features)
        self.scale, self.lr_mul = gain * lr_mul / math.sqrt(in_features), lr_mul
        nn.init.normal_(self.weight, std=1 / lr_mul)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualisedConv2d(nn.Conv2d):
    """nn.Conv2d with an equalised learning rate (see `EqualisedLinear`): weights N(0, 1) times gain / sqrt(fan_in),
    fan_in = in_channels * kernel_size^2."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, gain: float = 1.0):
        super().__init__(in_channels, out_channels, kernel_size, padding=padding)
        self.scale = gain / math.sqrt(in_channels * kernel_size ** 2)
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def relative_change(layer: nn.Module, x: torch.Tensor, lr: float) -> float:
    """How much one Adam step with learning rate `lr` (on the loss sum(layer(x)^2)) changes the weights the layer
    computes with, relative to their size: |w_after - w_before| / |w_before|, w = weight * scale when equalised."""
    effective = lambda: layer.weight * getattr(layer, "scale", 1.0)  # noqa: E731
    before = effective().detach().clone()
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr)
    layer(x).pow(2).sum().backward()
    optimizer.step()
    return ((effective() - before).norm() / before.norm()).item()


LEAKY_GAIN = math.sqrt(2)  # He's gain: a layer followed by LeakyReLU keeps its input's scale


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> w (B, w_dim): z normalised to unit length per coordinate, then `depth` linear layers with
    LeakyReLU. The data need not be a simple function of a Gaussian; the MLP can warp z into a space w where they
    are (which makes w smoother to walk in than z). Its layers learn at `lr_mul` times the generator's rate."""

    def __init__(self, z_dim: int = 64, w_dim: int = 64, depth: int = 4, lr_mul: float = 0.01):
        super().__init__()
        layers, width = [], z_dim
        for _ in range(depth):
            layers += [EqualisedLinear(width, w_dim, gain=LEAKY_GAIN, lr_mul=lr_mul), nn.LeakyReLU(0.2)]
            width = w_dim
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)  # "pixel norm": z on a sphere of radius sqrt(d)
        return self.net(z)


class StyledConv(nn.Module):
    """conv 3 x 3 -> + noise (scaled per channel) -> LeakyReLU -> AdaIN with this layer's style."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.conv = EqualisedConv2d(in_channels, out_channels, 3, padding=1, gain=LEAKY_GAIN)
        self.noise_strength = nn.Parameter(torch.zeros(out_channels))  # learned; starts with no noise
        self.style = EqualisedLinear(w_dim, 2 * out_channels)  # w -> (scale, bias) of every feature map

    def forward(self, h: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        h = self.conv(h)
        if noise is not None:  # (B, 1, H, W): the same noise image for every channel, each channel its own strength
            h = h + self.noise_strength[None, :, None, None] * noise
        scale, bias = self.style(w).chunk(2, dim=1)
        return adain(F.leaky_relu(h, 0.2), scale, bias)


class StyleGenerator(nn.Module):
    """The style-based generator: z (B, z_dim) -> images (B, 1, 28, 28) in [0, 1], through w and six styled layers
    (`channels` feature maps at 7, 14 and 28 pixels).

    - `styles(z, psi)`: the per-layer styles (B, 6, w_dim), pulled towards the average w by the truncation psi;
    - `synthesis(ws, noise=True)`: images from per-layer styles; `noise=False` switches the per-layer noise off;
    - `forward(z)`: what GAN training calls. In training mode, with probability `mixing`, the styles after a random
      layer come from a second z (mixing regularisation), so neighbouring layers do not learn to rely on each other.
    """

    def __init__(self, z_dim: int = 64, w_dim: int = 64, channels: tuple[int, int, int] = (32, 32, 16),
                 mixing: float = 0.9, w_avg_decay: float = 0.995):
        super().__init__()
        self.z_dim, self.w_dim, self.mixing, self.w_avg_decay = z_dim, w_dim, mixing, w_avg_decay
        self.num_layers = len(RESOLUTIONS)
        self.mapping = MappingNetwork(z_dim, w_dim)
        width = dict(zip(RESOLUTION_LEVELS, channels))  # fewer feature maps where they are larger, as in StyleGAN
        self.const = nn.Parameter(torch.randn(1, channels[0], 7, 7))
        c_in = [channels[0]] + [width[size] for size in RESOLUTIONS[:-1]]
        self.layers = nn.ModuleList(StyledConv(c, width[size], w_dim) for c, size in zip(c_in, RESOLUTIONS))
        # one 1 x 1 convolution to an image per resolution, added to the upsampled image so far (StyleGAN2's "skip"
        # generator: the coarse layers reach the image directly, so they get a learning signal from the start)
        self.to_images = nn.ModuleList(EqualisedConv2d(c, 1, 1) for c in channels)
        self.register_buffer("w_avg", torch.zeros(w_dim))  # the average w, tracked during training (truncation)

    @property
    def device(self) -> torch.device:
        return device_of(self)

    def styles(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """Per-layer styles (B, num_layers, w_dim) for noise z: w = f(z) repeated for every layer, truncated:
        w' = w_avg + psi (w - w_avg). psi = 1 leaves w as it is; psi = 0 gives the average digit."""
        w = self.mapping(check_noise(z, self.z_dim).to(self.device))
        w = self.w_avg + psi * (w - self.w_avg)
        return w[:, None, :].repeat(1, self.num_layers, 1)

    def synthesis(self, ws: torch.Tensor, noise: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images (B, 1, 28, 28) in [0, 1] from per-layer styles ws (B, num_layers, w_dim). The per-layer noise is
        drawn with `generator` (the same generator gives the same details) or switched off with noise=False."""
        ws = ws.to(self.device)
        if ws.dim() != 3 or ws.shape[1:] != (self.num_layers, self.w_dim):
            raise ValueError(f"Styles must be shaped (B, {self.num_layers}, {self.w_dim}), got {tuple(ws.shape)}. "
                             f"Make them with generator.styles(z).")
        h, image = self.const.expand(len(ws), -1, -1, -1), None
        for i, (layer, size) in enumerate(zip(self.layers, RESOLUTIONS)):
            if h.shape[-1] != size:
                h = F.interpolate(h, size=size, mode="nearest")
            n = torch.randn(len(ws), 1, size, size, generator=generator).to(self.device) if noise else None
            h = layer(h, ws[:, i], n)
            if i + 1 == len(RESOLUTIONS) or RESOLUTIONS[i + 1] != size:  # the last layer at this size: its image
                out = self.to_images[RESOLUTION_LEVELS.index(size)](h)
                image = out if image is None else F.interpolate(image, size=size, mode="bilinear") + out
        return torch.sigmoid(image)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        ws = self.styles(z)
        if self.training:
            with torch.no_grad():  # the running average of w, for truncation
                self.w_avg.lerp_(ws[:, 0].mean(dim=0), 1 - self.w_avg_decay)
            if self.mixing > 0 and torch.rand(()) < self.mixing:
                crossover = int(torch.randint(1, self.num_layers, ()))
                ws = mix_styles(ws, self.styles(torch.randn_like(z)), crossover)
        return self.synthesis(ws)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, psi: float = 1.0, noise: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Images for noise z in eval mode, with truncation psi (what the lesson's sliders call)."""
        with evaluating(self):
            return self.synthesis(self.styles(z, psi), noise, generator)


def mix_styles(coarse: torch.Tensor, fine: torch.Tensor, crossover: int) -> torch.Tensor:
    """Styles of layers 0 .. crossover - 1 from `coarse`, of layers crossover .. end from `fine` (both (B, L, w_dim)).

    >>> a, b = torch.zeros(1, 6, 2), torch.ones(1, 6, 2)
    >>> mix_styles(a, b, 2)[0, :, 0].tolist()
    [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    """
    if not 0 <= crossover <= coarse.shape[1]:
        raise ValueError(f"crossover is a layer index from 0 to {coarse.shape[1]}, got {crossover}.")
    return torch.cat([coarse[:, :crossover], fine[:, crossover:]], dim=1)


@torch.no_grad()
def mixing_grid(generator: StyleGenerator, z_coarse: torch.Tensor, z_fine: torch.Tensor, crossover: int,
                psi: float = 1.0) -> torch.Tensor:
    """The style-mixing grid: row i takes its coarse styles from z_coarse[i], column j its fine styles from z_fine[j].
    Returns (rows * cols, 1, 28, 28), row by row; the same noise in every cell, so only the styles differ."""
    rows, cols = len(z_coarse), len(z_fine)
    coarse = generator.styles(z_coarse, psi).repeat_interleave(cols, dim=0)
    fine = generator.styles(z_fine, psi).repeat(rows, 1, 1)
    with evaluating(generator):
        noise_seed = torch.Generator().manual_seed(0)
        return generator.synthesis(mix_styles(coarse, fine, crossover), generator=noise_seed).cpu()


@torch.no_grad()
def path_length(decode, a: torch.Tensor, b: torch.Tensor, features, steps: int = 16) -> torch.Tensor:
    """How much the image changes along the straight path from latents a to b (B, D each): the sum over `steps`
    segments of the squared distance between consecutive images' `features` (e.g. the digit classifier's),
    per path. A perceptual path length (Karras et al. 2019) in miniature: a space where equal steps change the
    image evenly has short paths; one that crosses gaps between digits jumps and has long ones.

    >>> line = lambda z: z[:, :, None, None].expand(-1, 1, 28, 28)
    >>> path_length(line, torch.zeros(2, 1), torch.ones(2, 1), lambda x: x.flatten(1), steps=4).tolist()
    [196.0, 196.0]
    """
    t = torch.linspace(0, 1, steps + 1)
    feats = [features(decode((1 - s) * a + s * b)) for s in t]
    return sum((f1 - f0).pow(2).sum(dim=1) for f0, f1 in zip(feats, feats[1:])).cpu()
