"""The slides' figures, made from the bundled digits and the bundled pretrained weights (nothing trains):

    python -m course_lib.tools.figures                 # every figure into slides/figs/
    python -m course_lib.tools.figures --only 04_      # those whose name starts with 04_

Each function below draws one figure and is named after its file.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from ..data import load_dataset
from ..plotting import image_grid, latent_scatter
from .bundle import load
from .figures_lesson7 import FIGURES as LESSON_7  # lesson 7's figures live in their own module
from .figures_lesson8 import FIGURES as LESSON_8  # and lesson 8's
from .figures_lesson9 import FIGURES as LESSON_9  # and lesson 9's
from .figures_lesson10 import FIGURES as LESSON_10  # and lesson 10's

FIGS = Path(__file__).resolve().parents[2] / "slides" / "figs"
DPI = 150


def _test(n: int = 1000):
    return load_dataset("mnist", "test", n=n, source="bundled").tensors


def _grid(ax, images: torch.Tensor, nrow: int, title: str | None = None) -> None:
    ax.imshow(image_grid(images, nrow), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)


def _rows(rows: dict[str, torch.Tensor], width: float = 10.0):
    per_row = max(len(images) for images in rows.values())
    height = len(rows) * 0.79 * width / per_row * 1.2  # one image's height per row, plus a little space
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, height), squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], rows.items()):
        _grid(ax, images, len(images))
        ax.text(-0.01, 0.5, name, transform=ax.transAxes, ha="right", va="center", fontsize=12)
    fig.subplots_adjust(left=0.2, right=0.99, top=0.98, bottom=0.02, hspace=0.15)
    return fig


# ------------------------------------------------------------------ lesson 1


@torch.no_grad()
def ae_latent_map():
    x, y = _test()
    z = load("autoencoders/ae2")["model"].encode(x)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    latent_scatter(z, y, ax=ax, title="2-D codes of 1,000 test digits (MLP autoencoder)")
    return fig


@torch.no_grad()
def ae_gap():
    x, y = _test()
    model = load("autoencoders/ae2")["model"]
    z = model.encode(x)
    a, b = z[y == 1].mean(0), z[y == 0].mean(0)
    t = torch.linspace(-0.2, 1.2, 12)[:, None]
    line = (1 - t) * a + t * b
    images = model.decode(line)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1, 2.2]})
    latent_scatter(z, y, ax=left, title="a straight line from the 1s to the 0s")
    left.plot(line[:, 0], line[:, 1], "k.-", markersize=8)
    left.get_legend().remove()
    _grid(right, images, 12, "decoded along the line: mixtures in the gap")
    return fig


@torch.no_grad()
def ae_vs_pca():
    from ..autoencoders import PCA

    train_x = load_dataset("mnist", "train", source="bundled").tensors[0]
    x, _ = _test()
    pca = PCA(16).fit(train_x)
    conv = load("autoencoders/conv16")["model"]
    shown = x[:10]
    return _rows({"original": shown, "PCA, 16 numbers": pca(shown).clamp(0, 1),
                  "conv AE, 16 numbers": conv(shown)})


@torch.no_grad()
def dae_applications():
    from ..autoencoders import add_gaussian_noise, downsample, mask_square

    x, _ = _test()
    dae = load("autoencoders/dae")["model"]
    shown = x[:6]
    g = torch.Generator().manual_seed(0)
    corrupted = torch.cat([add_gaussian_noise(shown, 0.5, g), mask_square(shown, 12, g), downsample(shown, 4)])
    return _rows({"corrupted": corrupted, "restored": dae(corrupted), "original": shown.repeat(3, 1, 1, 1)},
                 width=12)


# ------------------------------------------------------------------ lesson 2


@torch.no_grad()
def ae_vs_vae_latents():
    x, y = _test()
    ae, vae = load("vae/ae2")["model"], load("vae/vae2")["model"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    latent_scatter(ae.encode(x), y, ax=axes[0], title="autoencoder: codes anywhere")
    latent_scatter(vae.encode(x)[0], y, ax=axes[1], title="VAE: codes (means) fill N(0, I)")
    circle = plt.Circle((0, 0), 2, fill=False, linestyle="--", color="k")
    axes[1].add_patch(circle)
    return fig


@torch.no_grad()
def vae_manifold():
    from ..autoencoders import latent_grid

    vae = load("vae/vae2")["model"]
    n = 15
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    _grid(ax, vae.decode(latent_grid((-2.5, 2.5), (-2.5, 2.5), n)), n, "the decoder over z in [-2.5, 2.5]^2")
    return fig


@torch.no_grad()
def vae_samples():
    vae = load("vae/vae8")["model"]
    z = torch.randn(64, vae.latent_dim, generator=torch.Generator().manual_seed(0))
    fig, ax = plt.subplots(figsize=(7, 7))
    _grid(ax, vae.decode(z), 8, "decoded z ~ N(0, I), convolutional VAE, 8-D code")
    return fig


@torch.no_grad()
def vae_interpolation():
    from ..vae import slerp

    x, y = _test()
    vae = load("vae/vae8")["model"]
    rows = {}
    for a, b in [(3, 8), (1, 7), (0, 6)]:
        za, zb = vae.encode(x[y == a][:1])[0], vae.encode(x[y == b][:1])[0]
        rows[f"{a} -> {b}"] = vae.decode(slerp(za[0], zb[0], torch.linspace(0, 1, 10)))
    return _rows(rows)


# ------------------------------------------------------------------ lesson 3


def optimal_discriminator():
    from ..gans import optimal_discriminator as d_star

    x = torch.linspace(-4, 6, 400)

    def normal(mu, sd):
        return torch.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

    p_data = 0.5 * normal(0, 0.7) + 0.5 * normal(2.5, 0.5)
    p_g = normal(1.5, 1.3)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(x, p_data, label="$p_{data}(x)$", color="k")
    ax.plot(x, p_g, label="$p_g(x)$", color="#d95f02")
    ax.plot(x, d_star(p_data, p_g), label="$D^*(x) = p_{data} / (p_{data} + p_g)$", color="#1b9e77", linewidth=2.5)
    ax.axhline(0.5, color="grey", linestyle=":")
    ax.set_xlabel("x"), ax.legend(loc="upper left")
    return fig


@torch.no_grad()
def toy_gan():
    from ..toy2d import mode_centres, sample_toy

    centres = mode_centres("ring")
    real = sample_toy("ring", 2000, torch.Generator().manual_seed(0))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    panels = {"data: 8 Gaussians on a ring": real}
    for loss, label in [("gan", "GAN (non-saturating)"), ("wgan_gp", "WGAN-GP")]:
        gan = load(f"gan/toy_{loss}_seed0")["gan"]
        panels[label] = gan.sample(2000, torch.Generator().manual_seed(1))
    for ax, (title, points) in zip(axes, panels.items()):
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.35)
        ax.scatter(centres[:, 0], centres[:, 1], c="r", marker="x")
        ax.set_title(title), ax.set_aspect("equal"), ax.set_xlim(-3, 3), ax.set_ylim(-3, 3)
    return fig


@torch.no_grad()
def dcgan_samples():
    gan = load("gan/dcgan")["gan"]
    fig, ax = plt.subplots(figsize=(7, 7))
    _grid(ax, gan.sample(64, torch.Generator().manual_seed(0)), 8, "DCGAN samples")
    return fig


def jsd_saturation():
    from ..gans import move_generator_away

    # lesson 3's 1-D example: p_data a mixture of N(-2, 0.6^2) and N(2, 0.6^2); G(z) = z + s moved away from it
    x = torch.linspace(-8, 20, 14001, dtype=torch.float64)
    p_data = 0.5 * sum(torch.exp(-0.5 * ((x - mu) / 0.6) ** 2) / (0.6 * math.sqrt(2 * math.pi)) for mu in (-2, 2))
    shifts = torch.linspace(0, 12, 49, dtype=torch.float64)
    with torch.enable_grad():  # the generator's gradient is taken by autograd
        curves = move_generator_away(p_data, x, shifts)
    slope_w1 = torch.gradient(curves["w1"], spacing=(shifts,))[0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.plot(shifts, curves["jsd"], label="JSD(p_data || p_g)")
    left.axhline(math.log(2), color="grey", linestyle=":", label="log 2")
    left.set_xlabel("shift s of the generator"), left.legend(loc="lower right")
    right.semilogy(shifts, curves["grad"].abs().clamp_min(1e-12), label=r"$|\partial V(D^*, G) / \partial s|$")
    right.semilogy(shifts, slope_w1.abs(), label=r"$|\partial W_1 / \partial s|$")
    right.set_ylim(1e-8, 3), right.set_xlabel("shift s of the generator"), right.legend(loc="lower left")
    right.set_title("the generator's gradient")
    return fig


# ------------------------------------------------------------------ lesson 4


@torch.no_grad()
def noising_sequence():
    from ..diffusion import DiffusionSchedule, q_sample, to_image_range, to_model_range

    schedule = DiffusionSchedule()
    x, _ = _test()
    x0 = to_model_range(x[:1])
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    ts = [0, 50, 100, 200, 400, 700, 999]
    frames = torch.cat([to_image_range(q_sample(schedule, x0, t, eps)).clamp(0, 1) for t in ts])
    fig, axes = plt.subplots(1, len(ts), figsize=(12, 2.3))
    for ax, t, frame in zip(axes, ts, frames):
        ax.imshow(frame[0], cmap="gray", vmin=0, vmax=1), ax.set_axis_off(), ax.set_title(f"t = {t}")
    return fig


def linear_schedule():
    from ..diffusion import DiffusionSchedule

    schedule = DiffusionSchedule()
    t = torch.arange(schedule.T)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(t, schedule.betas / schedule.betas.max(), label=r"$\beta_t$ (1e-4 to 0.02, shown / 0.02)")
    ax.plot(t, schedule.alpha_bars, label=r"$\bar\alpha_t = \prod_{s \leq t} (1 - \beta_s)$", linewidth=2.5)
    ax.set_xlabel("t"), ax.legend(), ax.set_title("the linear schedule, T = 1000")
    return fig


@torch.no_grad()
def reverse_process():
    from ..diffusion import DiffusionSchedule, ddpm_sample

    unet = load("diffusion/unet")["ema"]
    torch.manual_seed(0)
    _, trajectory = ddpm_sample(unet, DiffusionSchedule(), n=4, record_every=100)
    fig, axes = plt.subplots(4, len(trajectory), figsize=(1.2 * len(trajectory), 5.2))
    for j, (t, frame) in enumerate(zip(trajectory.t, trajectory.x_t)):
        axes[0, j].set_title(f"t = {t}", fontsize=10)
        for i in range(4):
            axes[i, j].imshow(frame[i, 0], cmap="gray", vmin=0, vmax=1), axes[i, j].set_axis_off()
    return fig


@torch.no_grad()
def ddpm_samples():
    from ..diffusion import DiffusionSchedule, ddpm_sample

    unet = load("diffusion/unet")["ema"]
    torch.manual_seed(1)
    images, _ = ddpm_sample(unet, DiffusionSchedule(), n=48)
    fig, ax = plt.subplots(figsize=(8, 6))
    _grid(ax, images, 8, "DDPM samples (Algorithm 2, 1000 steps)")
    return fig


# ------------------------------------------------------------------ lesson 5


@torch.no_grad()
def cgan_grid():
    from ..conditional import class_grid_labels

    gan = load("conditional/cgan")["gan"]
    labels = class_grid_labels(5)
    z = gan.sample_z(5, torch.Generator().manual_seed(0)).repeat_interleave(10, dim=0)
    fig, ax = plt.subplots(figsize=(9, 4.8))
    _grid(ax, gan.decode(z, labels), 10, "rows: one z each; columns: the label 0-9")
    return fig


@torch.no_grad()
def pix2pix():
    from ..pix2pix import hide_lower_half

    x, _ = _test()
    shown = x[10:20]
    hidden = hide_lower_half(shown)
    return _rows({"input": hidden, "L1 alone": load("conditional/pix2pix_l1")["model"].translate(hidden),
                  "pix2pix": load("conditional/pix2pix")["model"].translate(hidden), "real": shown})


@torch.no_grad()
def cvae_style_grid():
    x, y = _test()
    cvae = load("conditional/cvae")["model"]
    rows = {}
    for i in range(4):
        z = cvae.encode(x[i:i + 1], y[i:i + 1])[0].expand(10, -1)
        rows[f"style of test digit {i}"] = cvae.decode(z, torch.arange(10))
    return _rows(rows)


@torch.no_grad()
def cfg_scales():
    from ..conditional import GuidedModel
    from ..diffusion import DiffusionSchedule, ddim_sample

    unet = load("conditional/cfg_unet")["ema"]
    labels = torch.arange(10)
    noise = torch.randn(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    rows = {}
    for w in (0.0, 1.0, 3.0, 7.0):
        rows[f"w = {w:g}"] = ddim_sample(GuidedModel(unet, labels, w), DiffusionSchedule(), noise=noise, steps=50)[0]
    return _rows(rows)


# ------------------------------------------------------------------ lesson 6


@torch.no_grad()
def latents():
    x, _ = _test()
    autoencoder = load("latent_diffusion/autoencoder")["model"]
    z = autoencoder.encode(x[:1])
    rebuilt = autoencoder.decode(z)
    fig, axes = plt.subplots(1, 6, figsize=(12, 2.4))
    axes[0].imshow(x[0, 0], cmap="gray"), axes[0].set_title("digit, 28 x 28")
    for c in range(4):
        axes[1 + c].imshow(z[0, c], cmap="RdBu"), axes[1 + c].set_title(f"latent channel {c + 1}, 7 x 7")
    axes[5].imshow(rebuilt[0, 0], cmap="gray", vmin=0, vmax=1), axes[5].set_title("decoded")
    for ax in axes:
        ax.set_axis_off()
    return fig


@torch.no_grad()
def ldm_samples():
    from ..conditional import GuidedModel, class_grid_labels
    from ..diffusion import DiffusionSchedule, ddim_sample
    from ..latent_diffusion import decode_latents, encode_dataset

    autoencoder = load("latent_diffusion/autoencoder")["model"]
    unet = load("latent_diffusion/latent_unet")["ema"]
    _, scale = encode_dataset(autoencoder, load_dataset("mnist", "train", source="bundled"))
    labels = class_grid_labels(8)
    torch.manual_seed(0)
    z, _ = ddim_sample(GuidedModel(unet, labels, 3.0), DiffusionSchedule(), n=len(labels), steps=50,
                       shape=(4, 7, 7), clip=None, image_range=False)
    images = decode_latents(autoencoder, z, scale)
    fig, ax = plt.subplots(figsize=(9, 7.5))
    # class_grid_labels runs 0..9 along each row; show one row per digit instead
    order = torch.argsort(labels, stable=True)
    _grid(ax, images[order], 8, "latent diffusion, guidance w = 3: one row per digit")
    return fig


FIGURES = {
    "01_ae_latent_map": ae_latent_map, "01_ae_gap": ae_gap, "01_ae_vs_pca": ae_vs_pca,
    "01_dae_applications": dae_applications,
    "02_ae_vs_vae_latents": ae_vs_vae_latents, "02_vae_manifold": vae_manifold, "02_vae_samples": vae_samples,
    "02_vae_interpolation": vae_interpolation,
    "03_optimal_discriminator": optimal_discriminator, "03_toy_gan": toy_gan, "03_dcgan_samples": dcgan_samples,
    "03_jsd_saturation": jsd_saturation,
    "04_noising_sequence": noising_sequence, "04_linear_schedule": linear_schedule,
    "04_reverse_process": reverse_process, "04_ddpm_samples": ddpm_samples,
    "05_cgan_grid": cgan_grid, "05_pix2pix": pix2pix, "05_cvae_style_grid": cvae_style_grid,
    "05_cfg_scales": cfg_scales,
    "06_latents": latents, "06_ldm_samples": ldm_samples,
    **LESSON_7,
    **LESSON_8,
    **LESSON_9,
    **LESSON_10,
}


def make(names: list[str], out: Path = FIGS) -> list[Path]:
    """Draw the named figures into `out` as PNG; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        start = time.perf_counter()
        fig = FIGURES[name]()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        print(f"{path.name:32s} {time.perf_counter() - start:5.1f} s")
        paths.append(path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.tools.figures", description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="make only the figures whose name starts with this")
    parser.add_argument("--out", type=Path, default=FIGS, help="folder for the PNG files (default slides/figs)")
    args = parser.parse_args(argv)
    names = [name for name in FIGURES if name.startswith(args.only)]
    if not names:
        print(f"No figure name starts with {args.only!r}; names: {', '.join(FIGURES)}")
        return 1
    torch.set_grad_enabled(False)
    start = time.perf_counter()
    make(names, args.out)
    print(f"{len(names)} figures in {time.perf_counter() - start:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
