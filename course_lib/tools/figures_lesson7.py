"""Lesson 7's slide figures (GAN architectures), from the bundled weights; `course_lib.tools.figures` lists them with
the other lessons' and draws them (`python -m course_lib.tools.figures --only 07_`).

Each function draws one figure, with the lesson's own calls and seeds where the notebook has them; every number a
figure prints is measured here, on the bundled weights.
"""

import functools

import matplotlib.pyplot as plt
import torch

from .. import recipes
from ..data import load_dataset
from ..gan_variants import class_diversity
from ..metrics import digit_classifier
from ..plotting import show_images, show_rows
from ..pretrained import BUILD_PROFILE
from ..progressive import Grow
from ..patches import blurred, detail, sample_report
from ..singan import inject, resize, sample as singan_sample, super_resolve
from ..stylegan import mix_styles, mixing_grid, path_length
from .bundle import load


def _slide_text(draw):
    """Draw with a larger font: these figures are shown at about half their size on a slide."""

    @functools.wraps(draw)
    def drawn():
        with plt.rc_context({"font.size": 16}):
            return draw()

    return drawn


def _stylegan():
    return load(recipes.STYLEGAN.name)["gan"]


def _read_digits(images: torch.Tensor) -> torch.Tensor:
    """The class the digit classifier reads in each image."""
    return digit_classifier()(images.cpu()).argmax(dim=1)


# ------------------------------------------------------------------ 1. progressive growing


def _growth(name: str):
    """The bundled snapshots of a progressive run {step: frame} and the schedule it was trained with."""
    parts = load(name)
    settings = recipes.PROGRESSIVE.settings(BUILD_PROFILE)
    fade_steps = int(recipes.PROGRESS_FADE_SHARE * settings.toy_steps) if name == recipes.PROGRESSIVE.name else 0
    grow = Grow(parts["gan"], steps_per_stage=settings.toy_steps, fade_steps=fade_steps)  # only its schedule is used
    snapshots = parts["snapshots"]
    return dict(zip(snapshots.at_step, snapshots.frames)), grow


@_slide_text
@torch.no_grad()
def progressive_growth():
    frames, grow = _growth(recipes.PROGRESSIVE.name)
    rows = {}
    for stage in range(3):  # the last snapshot of each stage: what the GAN had learned at that resolution
        step = max(s for s in frames if grow.schedule(s)[0] == stage)
        size = 7 * 2 ** stage
        rows[f"{size} x {size}, step {step}"] = frames[step][:10]
    return show_rows(rows, scale=0.8)


@_slide_text
@torch.no_grad()
def fade_vs_jump():
    runs = {"with fade-in": _growth(recipes.PROGRESSIVE.name),
            "without (new layers at once)": _growth(recipes.PROGRESSIVE_JUMP.name)}
    fig, axes = plt.subplots(4, 2, figsize=(13, 5.2))
    for j, (title, (frames, grow)) in enumerate(runs.items()):
        every = sorted(frames)[1] - sorted(frames)[0]
        changes = []
        for k, switch in enumerate(grow.switches()):  # the snapshot just before each switch, and the one at it
            size = 7 * 2 ** (k + 1)
            for i, step in enumerate((switch - every, switch)):
                ax = axes[2 * k + i, j]
                show_images(frames[step][:8], nrow=8, ax=ax)
                if j == 0:  # both runs switch at the same steps: label the rows once
                    label = f"step {step}" + (f"\n(now {size} x {size})" if step == switch else "")
                    ax.text(-0.03, 0.5, label, transform=ax.transAxes, ha="right", va="center")
            changes.append((frames[switch] - frames[switch - every]).abs().mean().item())
        axes[0, j].set_title(f"{title}\nmean change at the switches: " + ", ".join(f"{c:.3f}" for c in changes))
    fig.subplots_adjust(left=0.02, right=0.99, top=0.84, bottom=0.02, wspace=0.06, hspace=0.12)
    return fig


# ------------------------------------------------------------------ 2.-6. the style-based generator


@_slide_text
@torch.no_grad()
def stylegan_samples():
    samples = _stylegan().sample(32, torch.Generator().manual_seed(2))
    fig, ax = plt.subplots(figsize=(11, 1.9))
    show_images(samples, nrow=16, ax=ax, title="style-based generator: 32 samples")
    return fig


@_slide_text
@torch.no_grad()
def style_mixing():
    gan = _stylegan()
    G = gan.generator
    z_a = gan.sample_z(5, torch.Generator().manual_seed(3))
    z_b = gan.sample_z(6, torch.Generator().manual_seed(4))
    sources_a = G.generate(z_a, generator=torch.Generator().manual_seed(0))
    sources_b = G.generate(z_b, generator=torch.Generator().manual_seed(0))
    # how often a mixed digit is the coarse source's class (the notebook's count, 300 pairs of different digits)
    za, zb = gan.sample_z(300, torch.Generator().manual_seed(5)), gan.sample_z(300, torch.Generator().manual_seed(6))
    wa, wb = G.styles(za), G.styles(zb)
    class_a = _read_digits(G.generate(za, generator=torch.Generator().manual_seed(0)))
    class_b = _read_digits(G.generate(zb, generator=torch.Generator().manual_seed(0)))
    differ = class_a != class_b
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6))
    for ax, crossover in zip(axes, (2, 4)):
        mixed = _read_digits(G.synthesis(mix_styles(wa, wb, crossover), generator=torch.Generator().manual_seed(0)))
        coarse, fine = ((mixed == c)[differ].float().mean().item() for c in (class_a, class_b))
        grid = mixing_grid(G, z_a, z_b, crossover).unflatten(0, (5, 6))
        cells = torch.cat([torch.cat([torch.zeros(1, 1, 28, 28), sources_b]).unsqueeze(0),
                           torch.cat([sources_a.unsqueeze(1), grid], dim=1)])  # (6, 7, 1, 28, 28)
        show_images(cells.flatten(0, 1), nrow=7, ax=ax,
                    title=f"crossover {crossover}\nrow's digit {coarse:.0%}, column's {fine:.0%}")
    fig.subplots_adjust(wspace=0.2)
    return fig


@_slide_text
@torch.no_grad()
def truncation():
    gan = _stylegan()
    z = gan.sample_z(8, torch.Generator().manual_seed(7))
    return show_rows({f"psi = {psi:g}": gan.generator.generate(z, psi, generator=torch.Generator().manual_seed(0))
                      for psi in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)}, scale=0.65)


@_slide_text
@torch.no_grad()
def z_vs_w():
    gan = _stylegan()
    G = gan.generator
    t = torch.linspace(0, 1, 10)[:, None]
    rows = {}
    for pair, seed in enumerate((9, 14), start=1):
        za, zb = gan.sample_z(2, torch.Generator().manual_seed(seed))
        w_ends = G.styles(torch.stack([za, zb]))[:, 0]
        rows[f"pair {pair}, line in z"] = G.synthesis(G.styles((1 - t) * za + t * zb), noise=False)
        w_line = ((1 - t) * w_ends[0] + t * w_ends[1])[:, None].repeat(1, G.num_layers, 1)
        rows[f"pair {pair}, line in w"] = G.synthesis(w_line, noise=False)
    fig = show_rows(rows, scale=0.8)
    # the notebook's path length: 200 pairs, 16 equal steps, in the digit classifier's features
    za = gan.sample_z(200, torch.Generator().manual_seed(10))
    zb = gan.sample_z(200, torch.Generator().manual_seed(11))
    features = digit_classifier().features
    in_z = path_length(lambda z: G.synthesis(G.styles(z), noise=False), za, zb, features).mean().item()
    in_w = path_length(lambda w: G.synthesis(w[:, None].repeat(1, G.num_layers, 1), noise=False),
                       G.mapping(za), G.mapping(zb), features).mean().item()
    fig.suptitle(f"mean path length over 200 pairs: in z {in_z:.1f}, in w {in_w:.1f}", y=1.05)
    return fig


@_slide_text
@torch.no_grad()
def noise():
    gan = _stylegan()
    z = gan.sample_z(1, torch.Generator().manual_seed(12)).repeat(8, 1)
    draws = gan.generator.generate(z, generator=torch.Generator().manual_seed(13))
    quiet = gan.generator.generate(z, noise=False)
    spread = draws.std(dim=0)
    fig, axes = plt.subplots(1, 3, figsize=(13, 2.6), gridspec_kw={"width_ratios": [8, 1.6, 1.6], "wspace": 0.1})
    show_images(draws, nrow=8, ax=axes[0], title="one z, 8 draws of the per-layer noise")
    axes[1].imshow(spread[0].numpy(), cmap="magma")
    axes[1].set_axis_off(), axes[1].set_title(f"pixel std\nmax {spread.max():.3f}")
    show_images(quiet[:1], nrow=1, ax=axes[2])
    axes[2].set_title(f"noise off\nstd {quiet.std(dim=0).max():.3f}")
    return fig


# ------------------------------------------------------------------ 7. EBGAN, 8. MSGAN


@_slide_text
@torch.no_grad()
def ebgan():
    gan, margin = load(recipes.EBGAN.name)["gan"], recipes.EBGAN.margin
    test_x = load_dataset("mnist", "test", n=500, source="bundled").tensors[0]
    fakes = gan.sample(500, torch.Generator().manual_seed(2))
    energy_real, energy_fake = gan.discriminator(test_x), gan.discriminator(fakes)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1, 1.1]})
    left.hist([energy_real.numpy(), energy_fake.numpy()], bins=40,
              label=[f"real (test): mean {energy_real.mean():.4f}", f"generated: mean {energy_fake.mean():.4f}"])
    left.axvline(margin, color="k", ls="--", label=f"margin m = {margin:g}")
    left.set_xlabel("energy E(x) (reconstruction error)"), left.set_ylabel("images")
    left.locator_params(axis="x", nbins=5)
    left.legend(fontsize="small"), left.set_title("energies of 500 real, 500 generated")
    show_images(fakes[:32], nrow=8, ax=right, title="EBGAN samples")
    return fig


@_slide_text
@torch.no_grad()
def msgan_grid():
    classifier = digit_classifier()
    n = recipes.MSGAN.settings(BUILD_PROFILE).n_sampled
    labels = torch.arange(n) % 10
    grid_y = torch.arange(10).repeat(6)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, recipe in zip(axes, (recipes.MSGAN_OFF, recipes.MSGAN)):
        gan = load(recipe.name)["gan"]
        images = gan.sample(n, torch.Generator().manual_seed(3), labels=labels)
        diversity = class_diversity(images, labels, classifier.features)
        grid_z = gan.sample_z(6, torch.Generator().manual_seed(4)).repeat_interleave(10, dim=0)
        show_images(gan.decode(grid_z, grid_y), nrow=10, ax=ax,
                    title=f"ms_weight {recipe.ms_weight:g}: 6 z (rows) x 10 digits\n"
                          f"diversity within a class: {diversity:.2f}")
    return fig


# ------------------------------------------------------------------ 9. SinGAN


@_slide_text
@torch.no_grad()
def singan_samples():
    singan = load(recipes.SINGAN.name)["singan"]
    picture = singan.image.cpu()
    rows = {"the picture": picture}
    for k in range(3):  # the notebook's seeds: 1 for the samples from noise, 3 for the rows that start higher up
        rows["from noise" if k == 0 else f"from scale {k}"] = singan_sample(
            singan, 6, start_scale=k, generator=torch.Generator().manual_seed(1 if k == 0 else 3))
    ours = sample_report(singan_sample(singan, 8, generator=torch.Generator().manual_seed(1)), picture)
    noise = sample_report(torch.rand(8, *picture.shape[1:], generator=torch.Generator().manual_seed(2)), picture)
    fig = show_rows(rows, scale=1.6)
    fig.suptitle(f"8 samples from noise: distance to the picture {ours['pixel distance to the image']:.2f}, "
                 f"patch distance {ours['patch distance']:.3f} (noise {noise['patch distance']:.3f}),\n"
                 f"detail {ours['detail']:.3f} (the picture {float(detail(picture)):.3f}, "
                 f"blurred {float(detail(blurred(picture))):.3f})", fontsize=14)
    fig.tight_layout()
    return fig


@_slide_text
@torch.no_grad()
def singan_editing():
    singan = load(recipes.SINGAN.name)["singan"]
    picture = singan.image.cpu()
    sharp = super_resolve(singan, steps=2, generator=torch.Generator().manual_seed(4))
    smooth = resize(picture, sharp.shape[-2:]).clamp(0, 1)
    painting = resize(resize(picture, (5, 6)), picture.shape[-2:]).clamp(0, 1)
    painted = inject(singan, painting, scale=1, n=2, generator=torch.Generator().manual_seed(5))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1, 1, 1.6]})
    show_images(smooth, nrow=1, ax=axes[0], title=f"bilinear x1.78\ndetail {float(detail(smooth)):.3f}")
    show_images(sharp, nrow=1, ax=axes[1], title=f"SinGAN super-resolution\ndetail {float(detail(sharp)):.3f}")
    show_images(torch.cat([painting, painted]), nrow=3, ax=axes[2], title="paint-to-image (at scale 1)\npainting, "
                                                                             "then two pictures drawn from it")
    return fig


FIGURES = {
    "07_progressive_growth": progressive_growth, "07_fade_vs_jump": fade_vs_jump,
    "07_stylegan_samples": stylegan_samples, "07_style_mixing": style_mixing, "07_truncation": truncation,
    "07_z_vs_w": z_vs_w, "07_noise": noise, "07_ebgan": ebgan, "07_msgan_grid": msgan_grid,
    "07_singan_samples": singan_samples, "07_singan_editing": singan_editing,
}
