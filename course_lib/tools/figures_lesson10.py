"""Lesson 10's slide figures (text-to-image in miniature), from the captioned colour digits and the bundled weights;
`course_lib.tools.figures` lists them with the other lessons' and draws them
(`python -m course_lib.tools.figures --only 10_`).

Each function draws one figure, with the lesson's own calls and seeds where the notebook has them (`draw_from_codes`
without guidance, `draw_from_text` at w = 3, the latents scaled by `latent_diffusion.encode_dataset` over the training
pictures);
every number a figure prints is measured here. The captions and the quantiser's toy need no trained model; the
others load the bundled `text_to_image/*` weights into the networks the recipes build at the build profile's sizes.
"""

import functools
import textwrap
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from torch.utils.data import TensorDataset

from .. import recipes
from ..captions import (BACKS, HELD_OUT, INKS, TEMPLATES, VOCABULARY, caption, captioned_digits, prompts_for, tokenize,
                        words)
from ..data import POSITIONS, SIZES
from ..diffusion import DiffusionSchedule
from ..latent_diffusion import encode_dataset
from ..plotting import image_grid, show_images
from ..pretrained import BUILD_PROFILE, load_into
from ..prompt_following import read_attributes
from ..text2image import draw_from_text
from ..vqvae import VectorQuantizer, dead_codes, draw_from_codes, encode_codes, perplexity
from .figures_lesson7 import _slide_text  # the same larger font: these figures too are shown at about half size

W = 3.0  # the notebook's guidance scale for latent diffusion (its code prior samples without guidance)


def _settings():
    """Lesson 10's numbers in the profile the bundled weights were trained in."""
    return recipes.lesson_settings("text_to_image", BUILD_PROFILE)


def _bundled(recipe, part: str = "model") -> torch.nn.Module:
    """The network `recipe` builds at the build profile's sizes, with the bundled weights of `part`, in eval mode.
    (The text U-Net bundles only its averaged weights, as the part "ema": the network the lesson samples with.)"""
    model = recipe.build(_settings())
    load_into(recipe.name, **{part: model})
    return model.eval()


_vqvae = functools.cache(lambda: _bundled(recipes.VQ_T2I))
_prior = functools.cache(lambda: _bundled(recipes.CODE_PRIOR))
_clip = functools.cache(lambda: _bundled(recipes.MINI_CLIP))
_unet = functools.cache(lambda: _bundled(recipes.T2I_UNET, "ema"))


@functools.cache
def _latent_scale() -> float:
    """1 / std of the VQ-VAE encoder's outputs over the lesson's training pictures (`encode_dataset`)."""
    S = _settings()
    train, _ = captioned_digits("train", n=S.n_train, copies=S.copies, source="bundled")
    return encode_dataset(_vqvae(), TensorDataset(train.tensors[0], train.tensors[3]))[1]


@functools.cache
def _test():
    """The lesson's test pictures: (images, labels, attributes, tokens), captions."""
    data, texts = captioned_digits("test", n=_settings().n_test, source="bundled")
    return data.tensors, texts


def _diffuse(texts: list[str], w: float = W, seed: int = 0) -> torch.Tensor:
    """The notebook's latent diffusion samples: guided DDIM at its step count, decoded by the VQ-VAE."""
    return draw_from_text(_unet(), _vqvae(), DiffusionSchedule(T=recipes.T2I_UNET.T), _latent_scale(), texts, w=w,
                          steps=_settings().ddim_steps[0], seed=seed)


def _prompt(digit: int, ink=None, background=None, size=None, position=None, template: int = 0):
    """(a caption made by `captions.caption`, what it asks for as indices: -1 where it names nothing)."""
    named = {"digit": digit, "ink": ink, "background": background, "size": size, "position": position}
    names = {"ink": INKS, "background": BACKS, "size": SIZES, "position": POSITIONS}
    asked = {k: -1 if v is None else (v if k == "digit" else names[k].index(v)) for k, v in named.items()}
    row = [max(asked[k], 0) for k in ("ink", "background", "size", "position")]
    return caption(digit, row, template, [k for k, v in named.items() if v is not None]), asked


def _asked(prompts: list) -> tuple[list[str], dict[str, torch.Tensor]]:
    texts = [text for text, _ in prompts]
    return texts, {k: torch.tensor([asked[k] for _, asked in prompts]) for k in prompts[0][1]}


def _follows(read: dict[str, torch.Tensor], asked: dict[str, torch.Tensor]) -> torch.Tensor:
    """Which images show every attribute their caption asked for, given what `read_attributes` read in them."""
    return torch.stack([(read[k] == wanted) | (wanted < 0) for k, wanted in asked.items()]).all(0)


def _held_out(asked: dict) -> bool:
    return (asked["digit"], INKS[asked["ink"]] if asked["ink"] >= 0 else None) in HELD_OUT


# the notebook's four captions of sections 3 and 5, and the first two held-out pairs (`prompts_for(2, held_out=True)`)
PROMPTS = [_prompt(7, "red"), _prompt(3, "yellow", size="small", position="left"),
           _prompt(0, "cyan", "navy", template=2), _prompt(4, "white", "maroon", template=3),
           _prompt(7, "green"), _prompt(2, "red")]


# ------------------------------------------------------------------ 1. captioned colour digits


@_slide_text
@torch.no_grad()
def captioned_digits_figure():
    data, texts = captioned_digits("train", n=12, source="bundled")
    images, labels, attributes = data.tensors[:3]
    fig = plt.figure(figsize=(15, 6.4))
    grid = fig.add_gridspec(2, 6, hspace=0.55, left=0.01, right=0.99, bottom=0.27, top=0.82)
    for i in range(12):
        ax = fig.add_subplot(grid[i // 6, i % 6])
        show_images(images[i:i + 1], nrow=1, ax=ax)
        ax.set_title("\n".join(textwrap.wrap(texts[i], 20)), fontsize=13)
    every = [f"{k + 1}. {caption(int(labels[0]), attributes[0], k)}" for k in range(len(TEMPLATES))]
    held = ", ".join(f"{ink} {d}" for d, ink in HELD_OUT)
    fig.text(0.01, 0.22, f"the first picture in all {len(TEMPLATES)} phrasings, every attribute named:\n"
             + "\n".join(every), va="top", fontsize=13)
    fig.text(0.56, 0.22, f"never in a training caption:\n{held}\n\nthe models know {len(VOCABULARY) - 2} words, "
             "and two\nmarkers (padding, the empty caption)", va="top", fontsize=13)
    fig.suptitle("training pictures and their captions (each attribute named or left out at random)", y=1.0)
    return fig


# ------------------------------------------------------------------ 2. VQ-VAE


def _quantiser_panel(ax, vq, z, title):
    ticks = torch.linspace(-4, 4, 161)
    plane = torch.cartesian_prod(ticks, ticks).flip(1)  # rows: y, columns: x
    regions = vq.nearest(plane[:, :, None, None]).view(len(ticks), len(ticks))
    colours = ListedColormap(plt.cm.tab10.colors[:vq.num_codes])
    ax.imshow(regions, origin="lower", extent=(-4, 4, -4, 4), cmap=colours, alpha=0.25, vmin=-0.5,
              vmax=vq.num_codes - 0.5, interpolation="nearest")
    codes = vq.nearest(z[:, :, None, None]).flatten()
    ax.scatter(z[:, 0], z[:, 1], c=codes, cmap=colours, vmin=-0.5, vmax=vq.num_codes - 0.5, s=6)
    e = vq.codebook.weight
    ax.scatter(e[:, 0], e[:, 1], marker="*", s=320, c="k", edgecolors="w", zorder=3)
    ax.set_title(f"{title}\nperplexity {perplexity(codes, vq.num_codes):.2f}, "
                 f"{dead_codes(codes, vq.num_codes)} dead code(s)", fontsize=15)
    ax.set_xlim(-4, 4), ax.set_ylim(-4, 4), ax.set_aspect("equal"), ax.set_xticks([]), ax.set_yticks([])


@_slide_text
def vq_idea():
    """The library's `VectorQuantizer` on 2-D vectors: nearest codes, the codebook loss, a dead code restarted."""
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-2.2, -1.2], [-1.6, 1.8], [0.6, 2.2], [2.2, 0.2], [0.8, -2.2], [0.0, 0.0]])
    cluster = torch.randint(len(centres), (600,), generator=gen)
    z = centres[cluster] + 0.4 * torch.randn(600, 2, generator=gen)
    z_e = z[:, :, None, None]  # (600, D = 2, 1, 1): 600 encoder vectors of two numbers
    vq = VectorQuantizer(num_codes=8, code_dim=2)
    with torch.no_grad():  # codes on encoder vectors (one per cluster, and one more); one far from all: nobody picks it
        picked = [z[cluster == c][0] for c in range(len(centres))] + [z[-1]]
        vq.codebook.weight.copy_(torch.cat([torch.stack(picked), torch.tensor([[3.6, -3.6]])]))
    opt = torch.optim.Adam(vq.parameters(), lr=0.03)

    def train(steps: int) -> None:
        with torch.enable_grad():  # the figure tool draws with gradients off; this toy trains
            for _ in range(steps):
                loss = vq(z_e).codebook_loss  # ||sg[z_e] - e||^2: each code moves towards the vectors it won
                opt.zero_grad(), loss.backward(), opt.step()

    fig, axes = plt.subplots(1, 3, figsize=(16, 6))
    start = vq.codebook.weight.detach().clone()
    with torch.no_grad():
        _quantiser_panel(axes[0], vq, z, "start: each vector takes its nearest code")
    train(300)
    with torch.no_grad():
        _quantiser_panel(axes[1], vq, z, "after 300 steps of the codebook loss")
        end = vq.codebook.weight
        for a, b in zip(start, end):
            axes[1].annotate("", xy=b.tolist(), xytext=a.tolist(), arrowprops=dict(arrowstyle="->", lw=1.5))
        with torch.random.fork_rng():
            torch.manual_seed(0)
            moved = vq.restart_dead_codes(z_e)
    train(300)
    with torch.no_grad():
        _quantiser_panel(axes[2], vq, z, f"{moved} code(s) restarted on encoder vectors,\n300 more steps")
    fig.suptitle(f"{len(z)} encoder vectors (dots), a codebook of {vq.num_codes} (stars); shading: where each code is "
                 f"the nearest", y=1.0)
    fig.tight_layout()
    return fig


@_slide_text
@torch.no_grad()
def vq_reconstructions():
    (x, y, a, _), _ = _test()
    vq = _vqvae()
    codes = encode_codes(vq, x)
    rebuilt = torch.cat([vq.decode_codes(c) for c in codes.split(500)])
    read, read_x = read_attributes(rebuilt), read_attributes(x)
    truth = {"digit": y, "ink": a[:, 0], "background": a[:, 1]}
    share = {k: ((read[k] == v).float().mean().item(), (read_x[k] == v).float().mean().item())
             for k, v in truth.items()}
    counts = torch.bincount(codes.flatten(), minlength=vq.num_codes).sort(descending=True).values
    fig, (left, right) = plt.subplots(1, 2, figsize=(16, 5.2), gridspec_kw={"width_ratios": [1.5, 1]})
    show_images(torch.cat([x[:8], rebuilt[:8]]), nrow=8, ax=left,
                title=f"top: test pictures; below: decoded from their {codes.shape[1]} x {codes.shape[2]} codes\n"
                      f"MSE {F.mse_loss(rebuilt, x).item():.4f};  read back from the decoded (the originals):\n"
                      + ",  ".join(f"{k} {r:.1%} ({o:.1%})" for k, (r, o) in share.items()))
    right.bar(range(vq.num_codes), counts / counts.sum(), width=1.0)
    right.set_yscale("log"), right.set_xlabel("codes, most used first"), right.set_ylabel("share of grid cells")
    right.set_title(f"codebook use over {len(x)} test pictures: perplexity\n"
                    f"{perplexity(codes, vq.num_codes):.1f} of {vq.num_codes}; "
                    f"{dead_codes(codes, vq.num_codes)} codes never used")
    fig.tight_layout()
    return fig


@_slide_text
@torch.no_grad()
def code_grid():
    (x, _, _, _), _ = _test()
    vq = _vqvae()
    shown = x[:5]
    codes = encode_codes(vq, shown)
    rebuilt = vq.decode_codes(codes)
    used, counts = codes.flatten().unique(return_counts=True)  # a colour per code that appears, the same in each grid
    used = used[counts.argsort(descending=True)]  # the commonest codes get the first (most distinct) colours
    colours = [*plt.cm.tab20.colors, *plt.cm.tab20b.colors, *plt.cm.tab20c.colors]
    lookup = torch.zeros(vq.num_codes, dtype=torch.long)
    lookup[used] = torch.arange(len(used))
    palette = ListedColormap([colours[i % len(colours)] for i in range(len(used))])
    fig, axes = plt.subplots(3, len(shown), figsize=(13, 8.2))
    for j in range(len(shown)):
        show_images(shown[j:j + 1], nrow=1, ax=axes[0, j])
        axes[1, j].imshow(lookup[codes[j]], cmap=palette, vmin=-0.5, vmax=len(used) - 0.5)
        axes[1, j].set_title(f"{len(codes[j].unique())} distinct codes", fontsize=14)
        axes[1, j].set_axis_off()
        show_images(rebuilt[j:j + 1], nrow=1, ax=axes[2, j])
    for ax, name in zip(axes[:, 0], ("picture", f"codes ({codes.shape[1]} x {codes.shape[2]})", "decoded codes")):
        ax.text(-0.08, 0.5, name, transform=ax.transAxes, ha="right", va="center", rotation=90)
    fig.suptitle(f"each picture as a grid of code indices, one colour per code ({len(used)} of the "
                 f"{vq.num_codes} appear here)", y=0.99)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ 4. a miniature CLIP


@_slide_text
@torch.no_grad()
def clip_similarity():
    """Section 4's retrieval test: 200 test pictures against the full captions of the same 200."""
    (x, y, a, _), _ = _test()
    k, pool = 6, 200
    full = [caption(int(d), r, template=0) for d, r in zip(y[:pool], a[:pool])]
    key = torch.cat([y[:pool, None], a[:pool]], 1)
    same = (key[:, None] == key[None]).all(2)  # (picture, caption): the caption describes the picture exactly
    clip = _clip()
    similarity = clip.embed_images(x[:pool]) @ clip.embed_text(tokenize(full)).T
    retrieval = same[torch.arange(pool), similarity.argmax(1)].float().mean().item()
    sim = similarity[:k, :k].T  # rows: captions, columns: pictures
    fig = plt.figure(figsize=(12, 8.4))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, k], width_ratios=[1, 0.04], hspace=0.04, wspace=0.03)
    strip, heat = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
    strip.imshow(image_grid(x[:k], nrow=k), aspect="auto"), strip.set_axis_off()
    shown = heat.imshow(sim, cmap="viridis", aspect="auto")
    for i in range(k):
        for j in range(k):
            heat.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=14,
                      color="w" if sim[i, j] < sim.min() + 0.7 * (sim.max() - sim.min()) else "k")
    heat.set_yticks(range(k), ["\n".join(textwrap.wrap(t, 26)) for t in full[:k]], fontsize=13)
    heat.set_xticks([])
    heat.set_xlabel(f"cosine similarity of each full caption (row) with each test picture (column)\nof {pool} test "
                    f"pictures, {retrieval:.1%} find a caption that describes them exactly as the\nmost similar of "
                    f"the {pool} (chance {same.float().mean().item():.1%})", fontsize=14)
    fig.colorbar(shown, cax=fig.add_subplot(grid[1, 1]))
    return fig


# ------------------------------------------------------------------ 5. cross-attention; 7. prompt following


@_slide_text
@torch.no_grad()
def cross_attention():
    """Section 5's maps: the 7 x 7 layers' weights on each word at the last sampling step, for its caption and one
    more."""
    texts = ["a small red seven on the left", _prompt(2, "yellow", "navy", "large")[0]]
    layers = [layer for name, layer in _unet().attention_layers().items() if name.startswith("7x7")]
    for layer in layers:
        layer.keep_attention = True
    try:
        images = _diffuse(texts)
        attention = sum(layer.attention[:len(texts)] for layer in layers) / len(layers)  # (captions, 49, 16)
    finally:
        for layer in layers:
            layer.keep_attention, layer.attention = False, None
    side = int(attention.shape[1] ** 0.5)
    columns = 1 + max(len(words(t)) for t in texts)
    fig, axes = plt.subplots(len(texts), columns, figsize=(2.0 * columns, 2.6 * len(texts)), squeeze=False)
    for i, text in enumerate(texts):
        said = words(text)
        maps = attention[i, :, :len(said)].T.reshape(len(said), 1, side, side)
        maps = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        show_images(images[i:i + 1], nrow=1, ax=axes[i, 0], title="\n".join(textwrap.wrap(f"'{text}'", 16)))
        axes[i, 0].title.set_fontsize(12)
        for j, word in enumerate(said):
            ax = axes[i, j + 1]
            ax.imshow(images[i].permute(1, 2, 0).clamp(0, 1)), ax.set_axis_off()
            ax.imshow(maps[j], cmap="inferno", alpha=0.7, vmin=0, vmax=maps[j].max())  # each word to its own peak
            ax.set_title(f"{word}\n{attention[i, :, j].mean():.2f}", fontsize=14)
        for ax in axes[i, len(said) + 1:]:
            ax.set_axis_off()
    fig.suptitle(f"where the pixels look: cross-attention at {side} x {side} (the two layers, the last sampling step),"
                 f" per word,\neach map scaled to its own peak; under the word, its mean weight over the pixels", y=1.0)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.78, bottom=0.01, hspace=0.45, wspace=0.08)
    return fig


@_slide_text
@torch.no_grad()
def guidance_strip():
    """Section 7's measure (captions naming a digit and an ink, `prompts_for`, seed 1) over more guidance scales."""
    n, shown = _settings().n_sampled, 5
    runs = {"seen": prompts_for(n), "held out": prompts_for(max(n // 3, 8), held_out=True)}
    ws, strip = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0), (0.0, 1.0, 3.0, 8.0)
    fig = plt.figure(figsize=(16, 6.8))
    grid = fig.add_gridspec(len(strip), 2, width_ratios=[1.2, 1], wspace=0.2, hspace=0.06, top=0.84)
    shares = {f"{k}, {kind}": [] for kind in runs for k in ("all", "digit", "ink")}
    for w in ws:
        for kind, (texts, digits, inks) in runs.items():
            images = _diffuse(texts, w, seed=1)
            read = read_attributes(images)
            hits = {"digit": read["digit"] == digits, "ink": read["ink"] == inks}
            hits["all"] = hits["digit"] & hits["ink"]
            for k, hit in hits.items():
                shares[f"{k}, {kind}"].append(hit.float().mean().item())
            if w in strip and kind == "seen":
                ax = fig.add_subplot(grid[strip.index(w), 0])
                show_images(images[:shown], nrow=shown, ax=ax)
                ax.text(-0.01, 0.5, f"w = {w:g}", transform=ax.transAxes, ha="right", va="center")
                if w == strip[0]:
                    for j, text in enumerate(texts[:shown]):
                        ax.text((j + 0.5) / shown, 1.04, "\n".join(textwrap.wrap(text, 10)), transform=ax.transAxes,
                                ha="center", va="bottom", fontsize=12)
    plot = fig.add_subplot(grid[:, 1])
    for (name, values), style in zip(shares.items(), ("o-", "^-", "s-", "o--", "^--", "s--")):
        plot.plot(ws, values, style, label=name, color={"a": "C0", "d": "C1", "i": "C2"}[name[0]],
                  linewidth=3 if name.startswith("all") else 1.5)
    plot.set_xlabel("guidance scale w"), plot.set_ylabel("share of the samples that show it")
    plot.set_ylim(0, 1.02), plot.set_xticks(ws), plot.legend(loc="best", fontsize=12, ncol=2)
    plot.set_title(f"read back: {len(runs['seen'][0])} seen and {len(runs['held out'][0])} held-out\n(digit, ink) "
                   f"captions per w", fontsize=15)
    fig.suptitle("latent diffusion: the same noises at every w", x=0.3, y=1.0)
    return fig


@_slide_text
@torch.no_grad()
def two_routes():
    per = 6
    texts, asked = _asked([p for p in PROMPTS for _ in range(per)])
    runs = {}
    for route, draw in (("code prior", lambda: draw_from_codes(_prior(), _vqvae(), texts, seed=0)),
                        ("latent diffusion", lambda: _diffuse(texts, W, seed=0))):
        start = time.perf_counter()
        runs[route] = draw(), time.perf_counter() - start
    how = {"code prior": f"{_prior().grid ** 2} transformer passes per picture, no guidance",
           "latent diffusion": f"{_settings().ddim_steps[0]} DDIM steps, guidance w = {W:g}"}
    fig, axes = plt.subplots(1, 2, figsize=(16, 7.2))
    for ax, (route, (images, seconds)) in zip(axes, runs.items()):
        follows = _follows(read_attributes(images), asked).view(len(PROMPTS), per).sum(1)
        show_images(images, nrow=per, ax=ax)
        ax.set_title(f"{route}: {how[route]}\n{seconds:.1f} s for {len(texts)} pictures; "
                     f"{int(follows.sum())} of {len(texts)} show all asked", fontsize=14)
        for i, k in enumerate(follows.tolist()):
            ax.text(1.01, 1 - (i + 0.5) / len(PROMPTS), f"{k}/{per}", transform=ax.transAxes, va="center")
    for i, (text, spec) in enumerate(PROMPTS):
        label = "\n".join(textwrap.wrap(text, 24)) + ("\n(held out)" if _held_out(spec) else "")
        axes[0].text(-0.02, 1 - (i + 0.5) / len(PROMPTS), label, transform=axes[0].transAxes, ha="right",
                     va="center", fontsize=12)
    fig.subplots_adjust(left=0.17, right=0.96, top=0.86, bottom=0.02, wspace=0.12)
    return fig


FIGURES = {
    "10_captioned_digits": captioned_digits_figure, "10_vq_idea": vq_idea, "10_vq_reconstructions": vq_reconstructions,
    "10_code_grid": code_grid, "10_clip_similarity": clip_similarity, "10_cross_attention": cross_attention,
    "10_guidance_strip": guidance_strip, "10_two_routes": two_routes,
}
