"""SinGAN (lesson 7): Shaham, Dekel & Michaeli 2019, a GAN learned from one single image.

A pyramid of N scales x_0, x_1, ..., x_{N-1}: the image itself is x_{N-1}, and each scale is `scale_factor` (~0.75)
times the size of the next, down to ~25 pixels. Every scale has its own small GAN: a generator G_n and a
*patch* discriminator D_n, both five 3 x 3 convolutions, so D_n judges 11 x 11 patches. At the coarsest scale
11 x 11 pixels is half the picture, so G_0 learns the layout; at the finest it is a detail, so G_{N-1} learns texture.
Each generator only adds detail to the upsampled output of the scale below it:

    x~_0 = psi_0(z_0),        x~_n = up(x~_{n-1}) + psi_n(sigma_n z_n + up(x~_{n-1})),        z_n ~ N(0, I)

(here x~_0 too is written as a residual, on a grey image, so that one generator class serves every scale).

The scales are trained one after the other, coarse to fine, the coarser ones frozen, each on

    min_{G_n} max_{D_n}  L_adv(G_n, D_n) + alpha L_rec(G_n),

L_adv WGAN-GP (lesson 3) on patches, and L_rec the reconstruction loss: one fixed noise map z* at the coarsest scale,
and no noise above it, must give back the image, L_rec = ||G_n(0; up(x~rec_{n-1})) - x_n||^2 (at n = 0:
||G_0(z*) - x_0||^2). Its error also sets how much noise the next scale gets: sigma_n = 0.1 RMSE(up(x~rec_{n-1}), x_n),
as much randomness as the coarser scales leave undecided.

Because the generators are fully convolutional and only ever saw patches, the same pyramid also *edits*: inject an
image at scale n instead of the coarser scales' output (`inject`: paint-to-image, harmonisation), or run the finest
generator again on the image enlarged by 1 / scale_factor (`super_resolve`).

Scales are counted here from the coarsest (0) to the finest (N - 1), as lesson 7's other models count resolutions;
the paper counts down (its scale N is our 0).

    >>> singan = SinGAN(terrain_image(32), num_scales=2)
    >>> singan.sizes
    [(20, 24), (27, 32)]
    >>> history = train_singan(singan, steps=2)  # the lesson trains 150 steps per scale
    >>> sample(singan, 2, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 3, 27, 32])
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

from .data import check_pixels
from .gans import _apply, critic_loss_wasserstein, g_loss_wasserstein
from .nets import device_of, evaluating
from .training import Callback, History, fit

DEPTH = 5  # 3 x 3 convolutions per network: D_n sees patches of 1 + 2 * DEPTH = 11 pixels


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Images (B, C, H, W) resized to `size` = (height, width), bilinear, antialiased when shrinking."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)


def scale_sizes(height: int, width: int, num_scales: int, scale_factor: float = 0.75) -> list[tuple[int, int]]:
    """The (height, width) of every scale, coarsest first: the image's size times scale_factor^(N - 1 - n).

    >>> scale_sizes(82, 96, 5)
    [(26, 30), (35, 40), (46, 54), (62, 72), (82, 96)]
    """
    return [(round(height * scale_factor ** (num_scales - 1 - n)), round(width * scale_factor ** (num_scales - 1 - n)))
            for n in range(num_scales)]


# ---------------------------------------------------------------- the image the lesson learns from


def terrain_image(size: int = 80) -> torch.Tensor:
    """A shaded-relief map (1, 3, H, W) in [0, 1], its longer side `size` pixels: ridges, valleys and a fault line
    in the Appalachians near Jacksboro, Tennessee, drawn with matplotlib's hill shading and `gist_earth` colours.

    The heights come with matplotlib (a course dependency), so this works offline: its sample file
    `jacksboro_fault_dem.npz` holds 344 x 403 heights of NASA's Shuttle Radar Topography Mission (SRTM, 3 arc-second
    grid), which is in the public domain (added to matplotlib in its pull request #3291, 2014).

    >>> terrain_image(64).shape
    torch.Size([1, 3, 55, 64])
    """
    import numpy as np
    from matplotlib import cbook, colormaps
    from matplotlib.colors import LightSource

    with np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False)) as dem:
        heights = dem["elevation"].astype(np.float64)
    # light from the north-west; the height is exaggerated a little so that the ridges cast visible shadows
    rgb = LightSource(azdeg=315, altdeg=45).shade(heights, cmap=colormaps["gist_earth"], vert_exag=0.05,
                                                  blend_mode="overlay")[..., :3]
    image = torch.tensor(rgb, dtype=torch.float32).permute(2, 0, 1)[None]  # (1, 3, 344, 403)
    h, w = image.shape[-2:]
    shape = (round(size * h / w), size) if w >= h else (size, round(size * w / h))
    return resize(image, shape).clamp(0, 1)


def noise_map(count: int, size: tuple[int, int], scale: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """z_n ~ N(0, I), shaped (count, 3, *size), drawn on the CPU (the same seed gives the same samples on any device).
    At the coarsest scale one grey map serves all three channels, as in the SinGAN authors' code: there the noise
    must decide the layout, not the colour of single pixels."""
    channels = 1 if scale == 0 else 3
    return torch.randn(count, channels, *size, generator=generator).expand(count, 3, *size)


# ---------------------------------------------------------------- the networks of one scale


def _conv_block(c_in: int, c_out: int, padding: int, norm: bool) -> nn.Sequential:
    """conv 3 x 3 -> (BatchNorm) -> LeakyReLU(0.2)."""
    norm_layer = nn.BatchNorm2d(c_out) if norm else nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=padding), norm_layer, nn.LeakyReLU(0.2))


class ScaleGenerator(nn.Module):
    """G_n: x~_n = x_up + psi_n(noise + x_up), with x_up the coarser scale's output enlarged to this scale (grey at
    the coarsest) and `noise` = sigma_n z_n. psi_n is five 3 x 3 convolutions (BatchNorm, LeakyReLU; tanh at the end),
    padded so that the output has the input's size, whatever that size is."""

    def __init__(self, width: int = 32, depth: int = DEPTH):
        super().__init__()
        blocks = [_conv_block(3 if i == 0 else width, width, padding=1, norm=True) for i in range(depth - 1)]
        self.psi = nn.Sequential(*blocks, nn.Conv2d(width, 3, 3, padding=1), nn.Tanh())

    def forward(self, noise: torch.Tensor, x_up: torch.Tensor) -> torch.Tensor:
        # tanh / 2: the residual moves a pixel by at most half the [0, 1] range either way, so at the coarsest scale,
        # which starts from grey (x_up = 0.5), the output spans exactly the pixels' range (SinGAN's tanh in [-1, 1])
        return x_up + 0.5 * self.psi(noise + x_up)  # (B, 3, H, W)


class PatchDiscriminator(nn.Module):
    """D_n, a Markovian critic: images (B, 3, H, W) in [0, 1] -> scores (B, 1, H - 10, W - 10). Five unpadded 3 x 3
    convolutions, so each score judges one 11 x 11 patch, and the WGAN loss averages them over the image.

    No BatchNorm here, unlike the generator (and unlike the SinGAN authors' critic): WGAN-GP's authors advise against
    it in a critic, and with a batch of one image it normalises away each feature map's mean and spread over the
    image, which is the colour and contrast the critic has to compare. Measured at 64 pixels: with it, the coarsest
    scale still drew coloured pixel noise after 2,000 steps; without it, the terrain's ridges and valleys within 100."""

    def __init__(self, width: int = 32, depth: int = DEPTH):
        super().__init__()
        blocks = [_conv_block(3 if i == 0 else width, width, padding=0, norm=False) for i in range(depth - 1)]
        self.net = nn.Sequential(*blocks, nn.Conv2d(width, 1, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(2 * x - 1)  # pixels in [-1, 1], as SinGAN's (and DCGAN's) discriminators take them


def _init_weights(module: nn.Module) -> None:
    """DCGAN's initialisation, as SinGAN's: convolution weights N(0, 0.02), BatchNorm scales N(1, 0.02). With such
    small weights a new generator adds almost nothing: it starts as the identity on the coarser scale's image."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Scale(nn.Module):
    """The two networks of one scale: what `fit` trains while the coarser scales stay frozen."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.generator, self.discriminator = ScaleGenerator(width), PatchDiscriminator(width)
        self.apply(_init_weights)


# ---------------------------------------------------------------- the pyramid


class SinGAN(nn.Module):
    """A pyramid of `num_scales` GANs for one `image` (1, 3, H, W) in [0, 1], each scale `scale_factor` times the next.

    Everything a trained pyramid needs is in its state_dict, so it saves and loads (and is bundled) like any model:
    the networks of every scale, the training image (`image`), the fixed noise of the reconstruction (`z_rec`), each
    scale's noise strength sigma_n (`noise_amp`) and how many scales are trained (`trained`).

    - `real(n)`: the image at scale n;  `sizes[n]`: its (height, width);
    - `generate(n, ...)`: the chain x~_0 -> ... -> x~_{N-1} (what `sample`, `inject` and `reconstruct` call).
    """

    def __init__(self, image: torch.Tensor, num_scales: int = 5, scale_factor: float = 0.75, width: int = 32):
        super().__init__()
        check_pixels(image, "the training image")
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"SinGAN learns from one colour image shaped (1, 3, H, W), got {tuple(image.shape)}. "
                             f"For an (H, W, 3) array use torch.as_tensor(a).permute(2, 0, 1)[None].float().")
        self.num_scales, self.scale_factor = num_scales, scale_factor
        self.sizes = scale_sizes(*image.shape[-2:], num_scales, scale_factor)
        if min(self.sizes[0]) < 1 + 2 * DEPTH + 1:
            raise ValueError(f"The coarsest scale would be {self.sizes[0]} pixels, smaller than the discriminator's "
                             f"{1 + 2 * DEPTH} x {1 + 2 * DEPTH} patch. Use fewer scales or a larger image "
                             f"(aim for ~25 pixels at the coarsest).")
        self.scales = nn.ModuleList(Scale(width) for _ in range(num_scales))
        self.register_buffer("image", image.detach().clone())
        self.register_buffer("z_rec", noise_map(1, self.sizes[0], 0, torch.Generator().manual_seed(0)).clone())
        self.register_buffer("noise_amp", torch.ones(num_scales))
        self.register_buffer("trained", torch.tensor(0))

    @property
    def device(self) -> torch.device:
        return device_of(self)

    def real(self, n: int) -> torch.Tensor:
        """The training image at scale n: (1, 3, *sizes[n])."""
        return self.image if n == self.num_scales - 1 else resize(self.image, self.sizes[n]).clamp(0, 1)

    def generate(self, count: int, start_scale: int = 0, start: torch.Tensor | None = None, stop_scale: int | None = None,
                 noise: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """`count` images from scale `start_scale` up to `stop_scale` (default: the finest), (count, 3, *sizes[stop]).

        `start` is what enters G_{start_scale} in place of the coarser scales' output: an image of any size (enlarged
        or shrunk to sizes[start_scale]); None at start_scale 0 means plain grey (0.5), as in training. `noise=False`
        gives the reconstruction's noise: z* at the coarsest scale, none above it. No gradients; networks as they are
        (call it inside `evaluating(...)` for sampling)."""
        stop_scale = self.num_scales - 1 if stop_scale is None else stop_scale
        if not 0 <= start_scale <= stop_scale < self.num_scales:
            raise ValueError(f"Scales go from 0 (coarsest) to {self.num_scales - 1} (finest); got start_scale "
                             f"{start_scale} and stop_scale {stop_scale}.")
        if start is None and start_scale > 0:
            raise ValueError(f"Starting at scale {start_scale} needs an image to start from (`start`), e.g. "
                             f"singan.real({start_scale - 1}).")
        x = torch.full((count, 3, *self.sizes[start_scale]), 0.5, device=self.device) if start is None else \
            resize(start.to(self.device), self.sizes[start_scale]).expand(count, -1, -1, -1)
        for n in range(start_scale, stop_scale + 1):
            if n > start_scale:
                x = resize(x, self.sizes[n])
            if noise:
                z = noise_map(count, self.sizes[n], n, generator).to(self.device)
            else:
                z = self.z_rec.expand(count, -1, -1, -1) if n == 0 else torch.zeros_like(x)
            with torch.no_grad():
                x = self.scales[n].generator(self.noise_amp[n] * z, x)
        return x


# ---------------------------------------------------------------- training, one scale at a time


def patch_gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP's penalty for a critic of patches: mean over pixels of (||grad_x f(x_hat)|| - 1)^2, the gradient's
    norm taken over the colour channels of each pixel (as the SinGAN authors do), at x_hat on the line between real
    and fake. Lesson 3's `gradient_penalty` takes the norm over the whole image: that suits one score per image, but
    here f sums one score per patch, and a whole-image norm of 1 would leave each patch almost no gradient at all."""
    t = torch.rand(len(real), 1, 1, 1, generator=generator).to(real.device)
    between = (t * real + (1 - t) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return (grad.norm(dim=1) - 1).pow(2).mean()


def reconstruction_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L_rec = mean (G_n(0; up(x~rec_{n-1})) - x_n)^2: the squared error of the reconstruction, per pixel, measured
    on the [-1, 1] scale of the SinGAN authors' images (4 times the error in [0, 1] pixels), so that their
    alpha = 10 weighs it as it did for them."""
    return (2 * (fake - real)).pow(2).mean()


class SinGANStep:
    """One training step of scale `scale` for `fit(singan.scales[scale], [real] * steps, step, None, 1)`:
    `d_steps` updates of D_n, then `g_steps` updates of G_n, each on a fresh random sample of the frozen coarser scales.

    D_n: WGAN critic loss + `gp_weight` * gradient penalty (the SinGAN authors use 0.1). G_n: WGAN generator loss
    + `rec_weight` (alpha) * L_rec. Both Adam, lr `lr`, which drops to `lr_drop` times after `drop_at` of `steps`.
    Returns {"d_loss", "g_loss", "rec", "critic_real", "critic_fake"}.
    """

    def __init__(self, singan: SinGAN, scale: int, steps: int, lr: float = 5e-4,
                 betas: tuple[float, float] = (0.5, 0.999), d_steps: int = 3, g_steps: int = 3, gp_weight: float = 0.1,
                 rec_weight: float = 10.0, drop_at: float = 0.8, lr_drop: float = 0.1,
                 generator: torch.Generator | None = None):
        self.singan, self.scale, self.generator = singan, scale, generator
        self.d_steps, self.g_steps, self.gp_weight, self.rec_weight = d_steps, g_steps, gp_weight, rec_weight
        networks = singan.scales[scale]
        self.frozen = nn.ModuleList(singan.scales[:scale])  # the coarser scales
        self.opt_d = torch.optim.Adam(networks.discriminator.parameters(), lr=lr, betas=betas)
        self.opt_g = torch.optim.Adam(networks.generator.parameters(), lr=lr, betas=betas)
        milestone = [max(1, round(drop_at * steps))]
        self.schedules = [torch.optim.lr_scheduler.MultiStepLR(opt, milestone, gamma=lr_drop)
                          for opt in (self.opt_d, self.opt_g)]
        # the reconstruction's input is fixed: z* alone at the coarsest scale, the coarser reconstruction above it
        size = singan.sizes[scale]
        if scale == 0:
            self.rec_noise, self.rec_input = singan.z_rec, torch.full((1, 3, *size), 0.5, device=singan.device)
        else:
            with evaluating(self.frozen):
                coarser = singan.generate(1, stop_scale=scale - 1, noise=False)
            self.rec_noise, self.rec_input = torch.zeros(1, 3, *size, device=singan.device), resize(coarser, size)

    def state_dict(self) -> dict:
        state = {"opt_d": self.opt_d.state_dict(), "opt_g": self.opt_g.state_dict(),
                 "schedules": [s.state_dict() for s in self.schedules]}
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        for schedule, s in zip(self.schedules, state["schedules"]):
            schedule.load_state_dict(s)
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"].cpu())

    def fake(self, networks: Scale) -> torch.Tensor:
        """A random image of this scale: G_n(sigma_n z + x_up, x_up), x_up a fresh sample of the frozen coarser
        scales, enlarged."""
        singan, n = self.singan, self.scale
        if n == 0:
            x_up = self.rec_input  # grey
        else:
            with evaluating(self.frozen):  # frozen: BatchNorm on its running statistics, as when sampling
                x_up = resize(singan.generate(1, stop_scale=n - 1, generator=self.generator), singan.sizes[n])
        z = noise_map(1, x_up.shape[-2:], n, self.generator).to(x_up.device)
        return networks.generator(singan.noise_amp[n] * z, x_up)

    def __call__(self, networks: Scale, real: torch.Tensor) -> dict[str, float]:
        G, D = networks.generator, networks.discriminator
        for _ in range(self.d_steps):
            with torch.no_grad():  # D's update needs no gradient through G
                fake = self.fake(networks)
            real_scores, fake_scores = D(real), D(fake)
            loss_d = critic_loss_wasserstein(real_scores, fake_scores)
            loss_d = loss_d + self.gp_weight * patch_gradient_penalty(D, real, fake, self.generator)
            _apply(self.opt_d, loss_d)
        for _ in range(self.g_steps):
            fake_scores = D(self.fake(networks))
            rec = reconstruction_loss(G(self.rec_noise, self.rec_input), real)
            loss_g = g_loss_wasserstein(fake_scores) + self.rec_weight * rec
            _apply(self.opt_g, loss_g)
        for schedule in self.schedules:
            schedule.step()
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item(), "rec": rec.item(),
                "critic_real": real_scores.mean().item(), "critic_fake": fake_scores.mean().item()}


def train_singan(singan: SinGAN, steps: int, *, noise_scale: float = 0.1, callbacks: list[Callback] = (),
                 history: History | None = None, generator: torch.Generator | None = None, progress: bool = False,
                 **step_args) -> History:
    """Train the scales of `singan` not trained yet, coarse to fine, `steps` steps each, and return one History for
    the whole pyramid: `steps` holds every step of every scale in order; `epochs` one entry per scale (its mean
    losses, and its training time under "seconds").

    Before scale n trains, it starts from the weights of scale n - 1 (same shapes; as the SinGAN authors do, it
    saves most of the training), and its noise strength is set: sigma_n = noise_scale * RMSE(up(x~rec_{n-1}), x_n).
    `step_args` go to `SinGANStep` (lr, d_steps, gp_weight, rec_weight, ...).

        singan = SinGAN(terrain_image(64), num_scales=4)
        history = train_singan(singan, steps=150, generator=torch.Generator().manual_seed(0))
    """
    history = history or History()
    for n in range(int(singan.trained), singan.num_scales):
        networks, real = singan.scales[n], singan.real(n)
        if n > 0:
            networks.load_state_dict(singan.scales[n - 1].state_dict())
            with evaluating(singan.scales[:n]):
                coarser = resize(singan.generate(1, stop_scale=n - 1, noise=False), singan.sizes[n])
            singan.noise_amp[n] = noise_scale * (coarser - real).pow(2).mean().sqrt()
        step = SinGANStep(singan, n, steps, generator=generator, **step_args)
        start = time.perf_counter()
        fit(networks, [real] * steps, step, None, epochs=history.epoch + 1, callbacks=callbacks, history=history, progress=progress)
        history.epochs["seconds"].append(time.perf_counter() - start)
        if history.stopped is not None:  # the scale could not finish: the finer ones would build on it
            break
        singan.trained.fill_(n + 1)
    return history


# ---------------------------------------------------------------- using a trained pyramid


def _check_trained(singan: SinGAN) -> None:
    if int(singan.trained) < singan.num_scales:
        raise RuntimeError(f"Only {int(singan.trained)} of the {singan.num_scales} scales are trained. Train them "
                           f"first: train_singan(singan, steps=...), or load trained weights.")


@torch.no_grad()
def sample(singan: SinGAN, n: int, start_scale: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """n random images (n, 3, H, W) in [0, 1] at the image's size. start_scale 0: everything from noise (new layouts);
    start_scale k > 0: scales 0 .. k - 1 are the real image's, so the layout stays and only finer detail varies.

        samples = sample(singan, 8, generator=torch.Generator().manual_seed(0))
    """
    _check_trained(singan)
    start = None if start_scale == 0 else singan.real(start_scale - 1)
    with evaluating(singan):
        return singan.generate(n, start_scale, start, generator=generator).clamp(0, 1).cpu()


@torch.no_grad()
def inject(singan: SinGAN, image: torch.Tensor, scale: int, n: int = 1,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Paint-to-image and harmonisation: `image` (1, 3, h, w) in [0, 1], of any size, is shrunk to scale `scale - 1`
    and enters G_scale in place of the coarser scales' output; the finer scales then draw it in the texture they
    learned. A coarse scale (1-2) turns a rough painting of the layout into a picture; a fine one (N - 2) only matches
    the colours and texture of a pasted object to its surroundings. Returns (n, 3, H, W) in [0, 1].

        painted = inject(singan, painting, scale=1, generator=torch.Generator().manual_seed(0))
    """
    _check_trained(singan)
    check_pixels(image, "the injected image")
    if not 1 <= scale < singan.num_scales:
        raise ValueError(f"Inject at a scale from 1 to {singan.num_scales - 1} (scale 0 starts from noise alone: "
                         f"use sample(singan, n) for that); got {scale}.")
    start = resize(image[:1].to(singan.device), singan.sizes[scale - 1])  # what scale `scale - 1` would have drawn
    with evaluating(singan):
        return singan.generate(n, scale, start, generator=generator).clamp(0, 1).cpu()


@torch.no_grad()
def super_resolve(singan: SinGAN, image: torch.Tensor | None = None, steps: int = 2,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Super-resolution as in the paper: `steps` times, enlarge by 1 / scale_factor and let the finest generator add
    the detail it learned one scale down (its own noise strength). `image` defaults to the training image; the
    result is (1, 3, H / r^steps, W / r^steps) in [0, 1] (r = scale_factor: 2 steps of 0.75 enlarge 1.78 times).

        sharp = super_resolve(singan, steps=2, generator=torch.Generator().manual_seed(0))
    """
    _check_trained(singan)
    x = singan.image if image is None else check_pixels(image, "the image").to(singan.device)
    finest = singan.num_scales - 1
    with evaluating(singan):
        for _ in range(steps):
            x = resize(x, [round(s / singan.scale_factor) for s in x.shape[-2:]])
            z = noise_map(1, x.shape[-2:], finest, generator).to(x.device)
            x = singan.scales[finest].generator(singan.noise_amp[finest] * z, x)
    return x.clamp(0, 1).cpu()


@torch.no_grad()
def reconstruct(singan: SinGAN) -> list[torch.Tensor]:
    """The reconstruction x~rec_n of every trained scale (z* at the coarsest, no noise above), coarsest first."""
    with evaluating(singan):
        return [singan.generate(1, stop_scale=n, noise=False).cpu() for n in range(int(singan.trained))]
