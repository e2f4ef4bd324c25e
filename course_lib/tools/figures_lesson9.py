"""Lesson 9's slide figures (scores, SDEs and flow matching), from exact scores and the bundled weights;
`course_lib.tools.figures` lists them with the other lessons' and draws them
(`python -m course_lib.tools.figures --only 09_`).

Each function draws one figure, with the lesson's own calls and seeds where the notebook has them; every number a
figure prints is measured here (exact scores on the 2-D toys, the bundled weights on the digits).
"""

import functools

import matplotlib.pyplot as plt
import torch

from .. import recipes
from ..conditional import GuidedModel, class_grid_labels
from ..diffusion import DiffusionSchedule, ddim_sample
from ..diffusion_theory import GaussianMixture2D
from ..flow import sample_flow, straightness
from ..metrics import class_accuracy, digit_classifier, fd_to_training_digits, reference_points
from ..plotting import show_images
from ..pretrained import BUILD_PROFILE
from ..scores import annealed_langevin, langevin, learned_score, mode_shares, ve_score, vp_sample, weighted_pair
from .bundle import load
from .figures_lesson7 import _slide_text  # the same larger font: these figures too are shown at about half size

LIMIT = 3.2  # the toy panels show the square [-LIMIT, LIMIT]^2
PATHS = 10  # paths drawn in the SDE / ODE figure


def _settings():
    """Lesson 9's numbers in the profile the bundled weights were trained in."""
    return recipes.lesson_settings("score_and_flow", BUILD_PROFILE)


def _velocity(name: str):
    """The bundled digit flow `name`'s averaged weights as the samplers call them, outputs in float32."""
    net = load(name)["ema"]
    return lambda x, t: net(x, t).float()


def _points(ax, points, title, colour="C0", size=2, alpha=0.35):
    ax.scatter(points[:, 0], points[:, 1], s=size, alpha=alpha, color=colour)
    ax.set_title(title), ax.set_aspect("equal")
    ax.set_xlim(-LIMIT, LIMIT), ax.set_ylim(-LIMIT, LIMIT)


def _shares(shares, weights) -> str:
    return f"lower left {shares[0]:.0%}, upper right {shares[1]:.0%}\n(weights {weights[0]:.0%}, {weights[1]:.0%})"


def _near_a_mode(x: torch.Tensor, mixture: GaussianMixture2D) -> float:
    """The share of points within 3 std of one of the mixture's centres (the lesson's test)."""
    return (torch.cdist(x, mixture.centres).min(dim=1).values < 3 * mixture.std).float().mean().item()


# ------------------------------------------------------------------ 1. scores and Langevin dynamics


@functools.cache
def _section_1() -> dict:
    """Section 1 of the notebook, in its order and with its generator (seed 0), so that every draw is the notebook's:
    the toy data, the uniform start, 1,000 Langevin steps with the exact score, then the learned score's errors and
    its two samplers."""
    two, R = weighted_pair(), recipes.TOY_SCORE
    sigmas = R.sigmas()
    gen = torch.Generator().manual_seed(0)
    toy_data, _ = two.sample(20000, gen)
    start = 6 * torch.rand(2000, 2, generator=gen) - 3
    plain_exact, _ = langevin(lambda p: ve_score(two, p, 0.0), start, 0.01, 1000, gen, record_every=25)
    score = learned_score(load(R.name)["model"], sigmas)
    far_points = 6 * torch.rand(2000, 2, generator=gen) - 3
    errors = {}
    for i in (0, len(sigmas) - 1):
        sigma = sigmas[i].item()
        for where, points in (("near the data", toy_data[:2000] + sigma * torch.randn(2000, 2, generator=gen)),
                              ("anywhere", far_points)):
            true = ve_score(two, points, sigma)
            errors[sigma, where] = ((score(points, i) - true).pow(2).sum(1).mean() / true.pow(2).sum(1).mean()).item()
    plain_learned, _ = langevin(lambda p: score(p, len(sigmas) - 1), start, 0.01, 1000, gen)
    annealed_learned, _ = annealed_langevin(score, sigmas, start, R.langevin_steps, R.langevin_eps, gen)
    # annealed Langevin with the exact scores of the blurred mixture (not in the notebook): its own generator
    annealed_exact, _ = annealed_langevin(lambda p, i: ve_score(two, p, sigmas[i].item()), sigmas, start,
                                          R.langevin_steps, R.langevin_eps, torch.Generator().manual_seed(1))
    return {"two": two, "sigmas": sigmas, "data": toy_data, "plain_exact": plain_exact, "errors": errors,
            "plain_learned": plain_learned, "annealed_learned": annealed_learned, "annealed_exact": annealed_exact}


@_slide_text
@torch.no_grad()
def score_langevin():
    run = _section_1()
    two, sigmas = run["two"], run["sigmas"]
    ticks = torch.linspace(-3, 3, 15)
    grid = torch.cartesian_prod(ticks, ticks)
    field = ve_score(two, grid, 0.0)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.8))
    _points(axes[0], run["data"][:2000], "the exact score\n(arrows shortened to length 1 at most)", "grey", 2, 0.3)
    field = field / field.norm(dim=1, keepdim=True).clamp(min=1)
    axes[0].quiver(grid[:, 0], grid[:, 1], field[:, 0], field[:, 1], color="C0")
    _points(axes[1], run["plain_exact"], "Langevin, 1,000 steps, delta 0.01:\n"
            + _shares(mode_shares(run["plain_exact"], two), two.weights))
    _points(axes[2], run["annealed_exact"], f"annealed Langevin, {len(sigmas)} levels:\n"
            + _shares(mode_shares(run["annealed_exact"], two), two.weights))
    fig.suptitle("two Gaussians, exact scores; 2,000 points from a uniform start", y=1.0)
    fig.tight_layout()
    return fig


@_slide_text
@torch.no_grad()
def learned_scores():
    run = _section_1()
    two, sigmas = run["two"], run["sigmas"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6), gridspec_kw={"width_ratios": [1.25, 1, 1]})
    levels = sorted({sigma for sigma, _ in run["errors"]}, reverse=True)
    width = 0.38
    for k, where in enumerate(("near the data", "anywhere")):
        values = [run["errors"][sigma, where] for sigma in levels]
        bars = axes[0].bar([j + (k - 0.5) * width for j in range(len(levels))], values, width, label=where)
        axes[0].bar_label(bars, fmt="%.3f", fontsize=13)
    axes[0].set_xticks(range(len(levels)), [f"sigma = {s:.2f}" for s in levels])
    axes[0].set_yscale("log"), axes[0].set_ylim(top=axes[0].get_ylim()[1] * 4)
    axes[0].set_ylabel("relative error"), axes[0].legend(loc="upper left", fontsize=13)
    axes[0].set_title("learned score against the exact one")
    _points(axes[1], run["plain_learned"], f"Langevin at sigma = {sigmas[-1]:.2f}:\n"
            + _shares(mode_shares(run["plain_learned"], two), two.weights))
    _points(axes[2], run["annealed_learned"], f"annealed, {len(sigmas)} levels:\n"
            + _shares(mode_shares(run["annealed_learned"], two), two.weights))
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ 2. the SDE view


@_slide_text
@torch.no_grad()
def sde_vs_ode():
    ring = GaussianMixture2D.ring()
    schedule = DiffusionSchedule(T=recipes.DDPM.T, kind=recipes.DDPM.schedule)
    x_T = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.4))
    for ax, (kind, name) in zip(axes, (("sde", "reverse SDE"), ("ode", "probability-flow ODE"))):
        x, frames = vp_sample(lambda p, t: ring.score(p, schedule.alpha_bars[t].item()), schedule, x_T, kind,
                              torch.Generator().manual_seed(1), record_every=20)
        lines = torch.stack([f[:PATHS] for f in frames])  # (frames, PATHS, 2): a few paths from noise to the ring
        shares = mode_shares(x, ring)
        _points(ax, x, f"{name}\n{_near_a_mode(x, ring):.1%} within 3 std of a mode;\n"
                       f"mode shares {shares.min():.1%} to {shares.max():.1%}", alpha=0.25)
        jitter = kind == "sde"  # fresh noise at every step: thinner lines, or they hide everything else
        ax.plot(lines[:, :, 0], lines[:, :, 1], color="C1", alpha=0.6 if jitter else 0.9,
                linewidth=0.8 if jitter else 1.4, zorder=2)
        ax.scatter(x_T[:PATHS, 0], x_T[:PATHS, 1], s=30, color="k", zorder=3)
        ax.scatter(x[:PATHS, 0], x[:PATHS, 1], s=30, color="C3", zorder=3)
    axes[0].scatter([], [], s=30, color="k", label=f"{PATHS} starting noises")
    axes[0].scatter([], [], s=30, color="C3", label="where they end")
    axes[0].plot([], [], color="C1", label="their paths")
    fig.suptitle(f"exact score of the ring, {schedule.T} steps, the same 2,000 noises", y=0.98)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(loc="lower center", ncol=3, fontsize=14, frameon=False)
    return fig


# ------------------------------------------------------------------ 3. flow matching on the toy


def _toy_run(name: str, x_T: torch.Tensor):
    model = load(name)["model"]
    return sample_flow(model, noise=x_T, steps=50, record=True, image_range=False)[1], model


@_slide_text
@torch.no_grad()
def toy_flow():
    ring = GaussianMixture2D.ring()
    x_T = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    path, _ = _toy_run(recipes.TOY_FLOW.name, x_T)
    shown = [0, 20, 35, len(path.x) - 1]
    fig, axes = plt.subplots(1, len(shown), figsize=(17, 4.9))
    for ax, k in zip(axes, shown):
        trails = torch.stack([x[:40] for x in path.x[:k + 1]])
        ax.plot(trails[:, :, 0], trails[:, :, 1], color="C1", alpha=0.8, linewidth=1.0, zorder=3)
        title = f"t = {path.t[k]:.1f}"
        if k == len(path.x) - 1:
            shares = mode_shares(path.x[k], ring)
            title += (f": {_near_a_mode(path.x[k], ring):.1%} near a mode,\n"
                      f"shares {shares.min():.1%} to {shares.max():.1%}")
        _points(ax, path.x[k], title)
    fig.suptitle(f"the toy flow, {len(path.x) - 1} Euler steps from N(0, I) at t = 1 to the ring at t = 0 "
                 f"(lines: 40 particles)", y=1.02)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ 4. flow matching on digits, 5. steps vs quality


@_slide_text
@torch.no_grad()
def flow_digits():
    v = _velocity(recipes.FLOW.name)
    noise = torch.randn(12, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    rows = {}
    for method, steps in (("euler", 1), ("euler", 2), ("euler", 4), ("euler", 8), ("euler", 32), ("heun", 8)):
        images, path = sample_flow(v, noise=noise, steps=steps, method=method)
        calls = f"{path.nfe} call" + ("s" if path.nfe > 1 else "")
        rows[f"Euler, {calls}" if method == "euler" else f"Heun, {steps} steps: {calls}"] = images
    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 0.86 * len(rows) + 0.7))
    for ax, (name, images) in zip(axes, rows.items()):
        show_images(images, nrow=len(images), ax=ax)
        ax.text(-0.02, 0.5, name, transform=ax.transAxes, ha="right", va="center")
    fig.suptitle(f"the flow from the same {len(noise)} noises, more network calls going down", x=0.6, y=0.99)
    fig.subplots_adjust(left=0.26, right=0.99, top=0.9, bottom=0.01, hspace=0.15)
    return fig


@_slide_text
@torch.no_grad()
def steps_vs_quality():
    S = _settings()
    flow = _velocity(recipes.FLOW.name)
    unet = load(recipes.DDPM.name)["ema"]
    schedule = DiffusionSchedule(T=recipes.DDPM.T, kind=recipes.DDPM.schedule)
    plans = {"flow, Euler": [("euler", steps) for steps in S.ddim_steps],  # the notebook's plans and seed
             "flow, Heun": [("heun", steps) for steps in S.ddim_steps if 2 <= steps <= 16],
             "DDPM, DDIM": [("ddim", steps) for steps in (*S.ddim_steps, 50)]}
    n = S.n_sampled
    table = {name: {} for name in plans}  # name -> {network calls: (FD, FD on the second network)}
    for name, plan in plans.items():
        for method, steps in plan:
            if method == "ddim":
                samples, _ = ddim_sample(unet, schedule, n=n, steps=steps, generator=torch.Generator().manual_seed(4))
                nfe = steps
            else:
                samples, path = sample_flow(flow, n=n, steps=steps, method=method,
                                            generator=torch.Generator().manual_seed(4))
                nfe = path.nfe
            table[name][nfe] = (fd_to_training_digits(samples), fd_to_training_digits(samples, "second"))
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.6))
    for ax, k, network in ((axes[0], 0, "first"), (axes[1], 1, "second")):
        for (name, row), marker in zip(table.items(), "os^"):
            ax.plot(list(row), [v[k] for v in row.values()], marker + "-", label=name, markersize=8)
        floor = reference_points(n, network)["fd_real"]
        ax.axhline(floor, color="grey", ls=":", label=f"{n} held-out real digits")
        ax.set_xscale("log", base=2), ax.set_yscale("log"), ax.set_xlabel("network calls per sample")
        ticks = sorted(table["DDPM, DDIM"])  # DDIM's step counts: one call each
        ax.set_xticks(ticks, [str(t) for t in ticks]), ax.minorticks_off()
        ax.set_ylabel("Frechet distance")
        best_flow = min(v[k] for name in ("flow, Euler", "flow, Heun") for nfe, v in table[name].items() if nfe <= 10)
        best_ddim = min(v[k] for v in table["DDPM, DDIM"].values())
        ax.set_title(("digit classifier's features" if k == 0 else "second network's features")
                     + f"\nbest: flow {best_flow:.2f} (<= 10 calls), DDIM {best_ddim:.2f}", fontsize=15)
    axes[0].legend(loc="upper right", fontsize=13)
    fig.suptitle(f"{n} samples per point, scored against the training digits", y=1.0)
    fig.tight_layout(w_pad=2.5)
    return fig


# ------------------------------------------------------------------ 6. reflow and distillation


@_slide_text
@torch.no_grad()
def toy_reflow():
    ring = GaussianMixture2D.ring()
    x_T = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.4))
    for ax, (name, recipe) in zip(axes, (("flow", recipes.TOY_FLOW), ("reflow", recipes.TOY_REFLOW))):
        path, model = _toy_run(recipe.name, x_T)
        one_step, _ = sample_flow(model, noise=x_T, steps=1, image_range=False)
        lines = torch.stack([x[:60] for x in path.x])
        ax.plot(lines[:, :, 0], lines[:, :, 1], color="C1", alpha=0.7, linewidth=0.9)
        _points(ax, path.x[-1][:60], f"{name}: 60 paths, {len(path.x) - 1} Euler steps\nstraightness "
                f"{straightness(path):.3f}; one step puts\n{_near_a_mode(one_step, ring):.1%} of 2,000 points near "
                f"a mode", size=14, alpha=1.0)
    fig.tight_layout()
    return fig


@_slide_text
@torch.no_grad()
def one_call():
    n = _settings().n_sampled
    classifier = digit_classifier()  # what it reads in each sample: the flow's one call gives one blurry mean digit
    probe = torch.randn(100, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    names = {"flow": recipes.FLOW.name, "reflow": recipes.REFLOW.name, "distilled": recipes.DISTILL.name}
    fig, axes = plt.subplots(len(names), 1, figsize=(13, 5.4))
    for ax, (name, bundled) in zip(axes, names.items()):
        v = _velocity(bundled)
        _, path = sample_flow(v, noise=probe, steps=16, record=True)
        images, _ = sample_flow(v, n=n, steps=1, generator=torch.Generator().manual_seed(4))
        read = len(classifier(images).argmax(1).unique())
        shown, _ = sample_flow(v, noise=probe[:16], steps=1)
        show_images(shown, nrow=16, ax=ax, title=f"{name}: straightness {straightness(path):.3f}; FD "
                                                 f"{fd_to_training_digits(images):.1f} / "
                                                 f"{fd_to_training_digits(images, 'second'):.2f}; the classifier "
                                                 f"reads {read} of the 10 digits")
    fig.suptitle(f"one network call each, from the same noises (FD on the two networks, {n} samples)", y=1.0)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ 7. guidance for flows


@_slide_text
@torch.no_grad()
def guided_flow():
    net = load(recipes.CFG_FLOW.name)["ema"]
    labels = class_grid_labels(10)  # accuracy over 100 digits; the first 3 rows are shown
    noise = torch.randn(len(labels), 1, 28, 28, generator=torch.Generator().manual_seed(0))
    ws = (0.0, 1.0, 3.0, 5.0)
    fig, axes = plt.subplots(2, 2, figsize=(14, 5.9))
    for ax, w in zip(axes.flat, ws):
        guided = GuidedModel(net, labels, w)
        images, path = sample_flow(lambda x, t: guided(x, t).float(), noise=noise, steps=8, method="heun")
        show_images(images[:30], nrow=10, ax=ax,
                    title=f"w = {w:g}: {class_accuracy(images, labels):.0%} read as the digit asked for")
    fig.suptitle(f"guided flow, {path.nfe} calls (8 Heun steps); columns ask for 0-9, {len(labels)} digits per w",
                 y=0.99)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.85, bottom=0.01, hspace=0.25, wspace=0.05)
    return fig


FIGURES = {
    "09_score_langevin": score_langevin, "09_learned_scores": learned_scores, "09_sde_vs_ode": sde_vs_ode,
    "09_toy_flow": toy_flow, "09_flow_digits": flow_digits, "09_steps_vs_quality": steps_vs_quality,
    "09_toy_reflow": toy_reflow, "09_one_call": one_call, "09_guided_flow": guided_flow,
}
