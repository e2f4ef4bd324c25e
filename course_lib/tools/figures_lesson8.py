"""Lesson 8's slide figures (restoration, super-resolution and editing), from the bundled weights;
`course_lib.tools.figures` lists them with the other lessons' and draws them
(`python -m course_lib.tools.figures --only 08_`).

Each function draws one figure, with the lesson's own calls and seeds where the notebook has them; every number a
figure prints is measured here, on the bundled weights and the notebook's held-out digits. Batches are kept small
(10-36 images to look at, 100-300 to measure), so that each figure takes seconds on a CPU.
"""

import functools

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from .. import recipes
from ..conditional import GuidedModel
from ..data import load_dataset, to_grey
from ..diffusion import DiffusionSchedule, ddim_sample
from ..editing import repaint, sdedit, sketch, stamp
from ..metrics import class_accuracy, fd_to_training_digits
from ..nets import n_params
from ..pix2pix import hide_lower_half, sharpness
from ..plotting import show_images
from ..pretrained import BUILD_PROFILE
from ..superres import FACTOR, downscale, psnr, sr3_upscale, ssim, upscale_bicubic
from .bundle import load
from .figures_lesson7 import _slide_text  # the same larger font: these figures too are shown at about half size

W = 3.0  # the cascade's guidance scale, as in the notebook
SHOWN = 10  # digits per row in the picture figures
STRENGTHS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)  # the notebook's SDEdit strengths
# The strength at which SDEdit's sketches -> digits had the lowest Frechet distance in the notebook's section 6 on the
# bundled weights (its table, 300 digits): the one section 8 compares with pix2pix. Measuring it here would take
# minutes, so it is read off the notebook's output.
SKETCH_STRENGTH = 0.3


def _settings():
    """Lesson 8's numbers in the profile the bundled weights were trained in."""
    return recipes.lesson_settings("restoration", BUILD_PROFILE)


def _steps() -> int:
    """SR3's and SDEdit's DDIM steps in the notebook."""
    return _settings().ddim_steps[0]


@functools.cache
def _truth() -> tuple[torch.Tensor, torch.Tensor]:
    """The notebook's scored digits: the first `n_sampled` of its test split, and their labels."""
    S = _settings()
    digits, labels = load_dataset("mnist", "test", n=S.n_test, source="bundled").tensors
    return digits[:S.n_sampled], labels[:S.n_sampled]


def _schedule(recipe: recipes.DiffusionRecipe) -> DiffusionSchedule:
    return DiffusionSchedule(T=recipe.T, kind=recipe.schedule)


def _big_pixels(small: torch.Tensor) -> torch.Tensor:
    """A 7 x 7 image shown at 28 x 28 with its pixels as blocks (nearest neighbour), as the notebook shows inputs."""
    return F.interpolate(small, scale_factor=FACTOR, mode="nearest")


def _rows(rows: dict[str, torch.Tensor], title: str | None = None, width: float = 13.0, left: float = 0.27):
    """One grid per named row, stacked, the names on the left (grey or colour images)."""
    n = max(len(images) for images in rows.values())
    cell = width * (0.99 - left) / n  # inches per image
    top_inches = 0.4 + 0.35 * (title.count("\n") + 1) if title else 0.1
    height = len(rows) * cell * 1.12 + top_inches
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, height), squeeze=False)
    for ax, (name, images) in zip(axes[:, 0], rows.items()):
        show_images(images, nrow=len(images), ax=ax)
        ax.text(-0.015, 0.5, name, transform=ax.transAxes, ha="right", va="center")
    if title:
        fig.suptitle(title, x=(left + 0.99) / 2, y=1 - 0.12 / height)
    fig.subplots_adjust(left=left, right=0.99, top=1 - top_inches / height, bottom=0.01, hspace=0.12)
    return fig


@functools.cache
def _colour_digits() -> torch.Tensor:
    """The notebook's colour test digits: the first `n_sampled` of its split."""
    S = _settings()
    return load_dataset("colour_digits", "test", n=S.n_test, source="bundled").tensors[0][:S.n_sampled]


@functools.cache
def _upscaled() -> dict[str, torch.Tensor]:
    """The notebook's deterministic upscales of the scored digits: bicubic, SRResNet (MSE) and SRGAN."""
    low = downscale(_truth()[0])
    with torch.no_grad():
        return {"bicubic": upscale_bicubic(low), "SRResNet (MSE)": load(recipes.SR_MSE.name)["model"](low),
                "SRGAN": load(recipes.SRGAN_FT.name)["model"].upscale(low)}


def _sr3():
    return load(recipes.SR3.name)["ema"], _schedule(recipes.SR3)


def _ddpm():
    """Lesson 4's DDPM (averaged weights) and its schedule: the model that SDEdit and RePaint edit with."""
    return load(recipes.DDPM.name)["ema"], _schedule(recipes.DDPM)


# ------------------------------------------------------------------ 1-3. the task, SRResNet and SRGAN


@_slide_text
@torch.no_grad()
def sr_rows():
    truth = _truth()[0][:SHOWN]
    up = {name: images[:SHOWN] for name, images in _upscaled().items()}
    return _rows({"input, 7 x 7": _big_pixels(downscale(truth)), "bicubic": up["bicubic"],
                  "SRResNet (MSE)": up["SRResNet (MSE)"], "SRGAN": up["SRGAN"], "truth, 28 x 28": truth},
                 title="the same held-out digits, shrunk to 7 x 7 and brought back")


@_slide_text
@torch.no_grad()
def paradox():
    truth, _ = _truth()
    outputs = _upscaled()
    scores = {name: {"psnr": psnr(images, truth), "ssim": ssim(images, truth),
                     "fd": fd_to_training_digits(images, "second"), "sharpness": sharpness(images)}
              for name, images in outputs.items()}
    reference = {"fd": fd_to_training_digits(truth, "second"), "sharpness": sharpness(truth)}
    panels = (("psnr", "PSNR (dB)\nhigher: closer to this digit", "%.2f"),
              ("ssim", "SSIM\nhigher: closer in structure", "%.3f"),
              ("fd", "Frechet distance, second network\nlower: more like real digits", "%.2f"),
              ("sharpness", "sharpness (Laplacian variance)\ncloser to the truth's: as crisp", "%.3f"))
    names = list(scores)
    colours = ["0.6", "C0", "C3"]
    fig, axes = plt.subplots(1, len(panels), figsize=(18, 5.2))
    for ax, (key, title, fmt) in zip(axes, panels):
        values = [scores[name][key] for name in names]
        bars = ax.bar(range(len(names)), values, color=colours)
        ax.bar_label(bars, fmt=fmt, fontsize=14)
        ax.set_xticks(range(len(names)), [name.replace(" (", "\n(") for name in names], fontsize=13)
        ax.set_title(title, fontsize=15)
        low = min(values + [reference.get(key, min(values))])
        high = max(values + [reference.get(key, max(values))])
        if key == "psnr":  # the differences are what matters: start the axis near the lowest bar
            ax.set_ylim(low - 0.6 * (high - low), high + 0.25 * (high - low))
        elif key == "fd":  # bicubic is far off: a log axis keeps the learned upscalers' bars readable
            ax.set_yscale("log"), ax.set_ylim(low / 3, high * 8)
        else:
            ax.set_ylim(0, high * 1.25)
        if key in reference:
            ax.axhline(reference[key], color="k", ls=":", label=f"the {len(truth)} true digits: "
                                                                f"{reference[key]:{fmt[1:]}}")
            ax.legend(loc="upper right", fontsize=12)
    fig.suptitle(f"{len(truth)} held-out digits upscaled from 7 x 7 (the bundled weights)", y=1.01)
    fig.tight_layout(w_pad=2.0)
    return fig


# ------------------------------------------------------------------ 4. SR3


@_slide_text
@torch.no_grad()
def sr3_samples():
    truth = _truth()[0][:6]
    low = downscale(truth)
    sr3, schedule = _sr3()
    several = sr3_upscale(sr3, schedule, low, steps=_steps(), samples=6,
                          generator=torch.Generator().manual_seed(2))  # the notebook's call: (6 inputs, 6 samples, ...)
    average = several.mean(1)
    grid = torch.cat([upscale_bicubic(low)[:, None], _upscaled()["SRResNet (MSE)"][:6, None], several,
                      average[:, None], truth[:, None]], dim=1)
    columns = ["bicubic", "MSE", *[""] * 6, "average", "truth"]
    fig, ax = plt.subplots(figsize=(11, 7.6))
    show_images(grid.flatten(0, 1), nrow=grid.shape[1], ax=ax)
    for j, name in enumerate(columns):
        ax.text((j + 0.5) / len(columns), 1.01, name, transform=ax.transAxes, ha="center", va="bottom", fontsize=14)
    ax.text(5 / len(columns), 1.01, "six SR3 samples", transform=ax.transAxes, ha="center", va="bottom", fontsize=14)
    one = several[:, 0]
    ax.set_title(f"one sample: PSNR {psnr(one, truth):.2f} dB, sharpness {sharpness(one):.3f}\n"
                 f"the average of six: PSNR {psnr(average, truth):.2f} dB, sharpness {sharpness(average):.3f}\n"
                 f"(the truth's sharpness: {sharpness(truth):.3f}; {_steps()} DDIM steps per sample)",
                 fontsize=15, pad=34)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ 5. the cascade


@_slide_text
@torch.no_grad()
def cascade():
    labels = torch.arange(SHOWN)
    steps = _steps()
    base = load(recipes.BASE_7.name)["ema"]
    small = ddim_sample(GuidedModel(base, labels, W), _schedule(recipes.BASE_7), n=len(labels), steps=steps,
                        shape=(1, 7, 7), generator=torch.Generator().manual_seed(3))[0]
    sr3, schedule = _sr3()
    large = sr3_upscale(sr3, schedule, small, steps=steps, generator=torch.Generator().manual_seed(4))
    one_stage = load(recipes.CFG.name)["ema"]
    direct = ddim_sample(GuidedModel(one_stage, labels, W), _schedule(recipes.CFG), n=len(labels), steps=steps,
                         generator=torch.Generator().manual_seed(3))[0]
    return _rows({"7 x 7 base": _big_pixels(small), "+ SR3, 28 x 28": large, "one stage (lesson 5)": direct},
                 title=f"guidance w = {W:g}, {steps} DDIM steps per stage\nU-Net parameters: base "
                       f"{n_params(base):,} + SR3 {n_params(sr3):,}, one stage {n_params(one_stage):,}")


# ------------------------------------------------------------------ 6. SDEdit


@_slide_text
@torch.no_grad()
def sdedit_strengths():
    truth = _truth()[0][:SHOWN]
    sketches = sketch(truth)
    ddpm, schedule = _ddpm()
    rows = {}
    for strength in STRENGTHS:
        out = sdedit(ddpm, schedule, sketches, strength, steps=_steps(), generator=torch.Generator().manual_seed(5))
        t0 = round(strength * (schedule.T - 1))
        rows[f"strength {strength:g} (t0 = {t0})" if strength else "the sketch (strength 0)"] = out
    rows["the digit sketched"] = truth
    return _rows(rows, title="SDEdit with lesson 4's DDPM: noise the sketch to t0, then denoise")


# ------------------------------------------------------------------ 7. RePaint


def _masks() -> dict[str, torch.Tensor]:
    """The notebook's holes: 1 where a pixel is known, 0 where it is to be filled."""
    masks = {name: torch.ones(1, 1, 28, 28) for name in ("lower half", "centre square", "left half",
                                                          "every other row")}
    masks["lower half"][..., 14:, :] = 0
    masks["centre square"][..., 8:20, 8:20] = 0
    masks["left half"][..., :, :14] = 0
    masks["every other row"][..., 1::2, :] = 0
    return masks


@_slide_text
@torch.no_grad()
def repaint_masks():
    n, steps, resample = 6, 25, 3  # fewer steps and rounds than the notebook's, to draw in seconds
    truth = _truth()[0][:n]
    masks = _masks()
    mask = torch.cat([m.expand(n, -1, -1, -1) for m in masks.values()])  # one batch: every hole at once
    known = truth.repeat(len(masks), 1, 1, 1)
    ddpm, schedule = _ddpm()
    filled = repaint(ddpm, schedule, known, mask, steps=steps, resample=resample,
                     generator=torch.Generator().manual_seed(7)).split(n)
    completed = load(recipes.PIX2PIX.name)["model"].translate(hide_lower_half(truth))
    pix2pix_changed = (completed - truth)[..., :14, :].abs().max().item()  # pix2pix redraws the known half too
    fig, axes = plt.subplots(2, 2, figsize=(14, 6.6))
    for ax, (name, m), fill in zip(axes.flat, masks.items(), filled):
        shown = {"input": truth * m + 0.5 * (1 - m), "RePaint": fill}
        if name == "lower half":
            shown["pix2pix"] = completed
        show_images(torch.cat(list(shown.values())), nrow=n, ax=ax)
        for k, label in enumerate(shown):
            ax.text(-0.02, 1 - (k + 0.5) / len(shown), label, transform=ax.transAxes, ha="right", va="center")
        changed = f"{(fill - truth).mul(m).abs().max().item():.1g}"
        if name == "lower half":
            changed = f"RePaint {changed}, pix2pix {pix2pix_changed:.2f}"
        ax.set_title(f"{name}: largest change to a known pixel: {changed}", fontsize=15)
    fig.suptitle(f"one unconditional model (lesson 4's DDPM) for every hole; grey: unknown; {steps} steps x "
                 f"{resample} rounds", y=0.99)
    fig.subplots_adjust(left=0.1, right=0.99, top=0.86, bottom=0.01, hspace=0.3, wspace=0.22)
    return fig


# ------------------------------------------------------------------ 8. sketch -> digit


@_slide_text
@torch.no_grad()
def sketch_to_digit():
    truth, labels = (t[:100] for t in _truth())  # 100 digits to measure, the first SHOWN to look at
    sketches = sketch(truth)
    ddpm, schedule = _ddpm()
    edited = sdedit(ddpm, schedule, sketches, SKETCH_STRENGTH, steps=_steps(),
                    generator=torch.Generator().manual_seed(5))
    drawn = load(recipes.SKETCH.name)["model"].translate(sketches)
    rows = {}
    for name, images in (("sketch", sketches), ("pix2pix", drawn), (f"SDEdit, strength {SKETCH_STRENGTH:g}", edited)):
        rows[f"{name}: {class_accuracy(images, labels):.0%}"] = images[:SHOWN]
    rows["truth"] = truth[:SHOWN]
    return _rows(rows, title=f"sketch -> digit; after each name, the share of {len(truth)} test digits\n"
                             f"that the classifier reads as the digit sketched")


# ------------------------------------------------------------------ 9. colouring


def _saturation(images: torch.Tensor) -> float:
    """The notebook's measure of how colourful the ink is: max - min of R, G, B over the ink pixels (grey 0)."""
    ink = to_grey(images) > 0.5
    spread = images.max(dim=1, keepdim=True).values - images.min(dim=1, keepdim=True).values
    return (spread * ink).sum().item() / ink.sum().clamp(min=1).item()


@_slide_text
@torch.no_grad()
def colouring():
    colour = _colour_digits()
    grey = to_grey(colour)
    rows = {"grey input": grey[:SHOWN].expand(-1, 3, -1, -1)}
    for name, bundled in (("L1 only", recipes.COLOUR_L1.name), ("pix2pix", recipes.COLOUR.name)):
        out = load(bundled)["model"].translate(grey)
        rows[f"{name}: error {(out - colour).abs().mean():.3f}, ink saturation {_saturation(out):.2f}"] = out[:SHOWN]
    rows[f"truth: ink saturation {_saturation(colour):.2f}"] = colour[:SHOWN]
    return _rows(rows, left=0.42, width=15.0,
                 title=f"colouring {len(colour)} grey test digits\nerror: mean |colour - truth| per pixel")


# ------------------------------------------------------------------ 10. removing a watermark


@_slide_text
@torch.no_grad()
def watermark():
    colour = _colour_digits()
    stamped = stamp(colour, torch.Generator().manual_seed(10))  # the notebook's stamps
    marked = (stamped - colour).abs().sum(1, keepdim=True) > 1e-3  # where the stamp changed a pixel

    def scores(images: torch.Tensor) -> str:
        under = ((images - colour).abs() * marked).sum().item() / (3 * marked.sum().item())
        return f"PSNR {psnr(images, colour):.1f} dB, error under the stamp {under:.3f}"

    rows = {f"stamped: {scores(stamped)}": stamped[:SHOWN]}
    for name, bundled in (("L1 only", recipes.WATERMARK_L1.name), ("pix2pix", recipes.WATERMARK.name)):
        out = load(bundled)["model"].translate(stamped)
        rows[f"{name}: {scores(out)}"] = out[:SHOWN]
    rows["truth"] = colour[:SHOWN]
    return _rows(rows, left=0.47, width=16.0, title=f"removing a stamp from {len(colour)} colour test digits\n"
                                                    f"error: mean |output - truth| on the pixels the stamp covers")


FIGURES = {
    "08_sr_rows": sr_rows, "08_paradox": paradox, "08_sr3_samples": sr3_samples, "08_cascade": cascade,
    "08_sdedit": sdedit_strengths, "08_repaint": repaint_masks, "08_sketch": sketch_to_digit,
    "08_colouring": colouring, "08_watermark": watermark,
}
