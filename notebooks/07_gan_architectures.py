# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown] tags=["colab"]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/image-generation-course/image-generation-course/blob/main/notebooks/07_gan_architectures.ipynb)

# %% [markdown]
# # Lesson 7 — GAN architectures
#
# Lesson 3's DCGAN turns noise into a digit with a few transposed convolutions. The GANs that draw convincing faces
# changed *how the generator is built* and *what the game rewards*, much more than the basic minimax game:
#
# 1. **progressive growing**: learn the coarse layout at 7 x 7 first, then add layers for 14 x 14 and 28 x 28,
#    fading each new resolution in;
# 2. **a style-based generator** (StyleGAN): a mapping network z -> w, a learned constant as the starting image, and
#    the latent entering at every layer as a *style* that renormalises the feature maps (AdaIN), plus per-layer noise;
# 3. what the styles give us: **style mixing** (coarse styles from one latent, fine from another), the **truncation
#    trick**, and a latent space **w** that is smoother to walk in than z;
# 4. two other games: **EBGAN**, whose discriminator is an autoencoder, and **MSGAN**, whose conditional generator is
#    rewarded for turning different noise into different images;
# 5. **SinGAN**: a pyramid of small GANs that learns from a single picture, then draws new pictures from it and
#    edits it.
#
# Every model here is trained with lesson 3's machinery: `fit`, a step object, the same data.

# %% tags=["colab"]
# NBVAL_SKIP
# On Colab only: install the course without replacing Colab's own torch, torchvision, numpy or ipywidgets.
# (Made by `python -m course_lib.tools.colab` from the repository URL in pyproject.toml.)
import importlib.util
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("course_lib") is None:
    missing = [name for name in ('torchmetrics', 'safetensors', 'tqdm') if importlib.util.find_spec(name) is None]
    if missing:  # they accept the torch that is there, so nothing of Colab's is replaced
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "git+https://github.com/image-generation-course/image-generation-course"], check=True)
if "google.colab" in sys.modules:
    import course_lib

    course_lib.doctor()  # the GPU runtime, the data, the bundled weights: what to fix, if anything

# %% [markdown]
# ## Setup

# %%
import course_lib  # first, before torch: it picks how torch's threads wait (sleep on a busy CPU, spin on an idle one)
import math

import matplotlib.pyplot as plt
import torch

from course_lib import exercises, recipes
from course_lib.data import load_dataset, make_loader
from course_lib.gan_variants import EBGANStep, MSGANStep, class_diversity
from course_lib.gans import GANGuard, GANStep
from course_lib.lesson import start_lesson
from course_lib.liveplot import LivePlot
from course_lib.metrics import class_accuracy, digit_classifier, quality_report
from course_lib.nets import n_params
from course_lib.plotting import show_images, show_rows
from course_lib.pretrained import train_or_load
from course_lib.progressive import Grow
from course_lib.patches import blurred, detail, sample_report
from course_lib.singan import inject, resize, sample, super_resolve, train_singan
from course_lib.stylegan import (EqualisedConv2d, EqualisedLinear, mix_styles, mixing_grid, path_length,
                                relative_change)
from course_lib.training import Snapshots, fit
from course_lib.widgets import FrameScrubber

USE_PRETRAINED = False  # True (or COURSE_PRETRAINED=1 in the environment): load bundled weights instead of training
PRESENTER = False  # True: larger fonts, figures and widgets, for a projector
PROFILE, S, device = start_lesson("gan_architectures", pretrained=USE_PRETRAINED, presenter=PRESENTER)
train = load_dataset("mnist", "train", n=S.n_train)
test_x, test_y = load_dataset("mnist", "test", n=S.n_test).tensors
classifier = digit_classifier()  # the course's digit classifier: class of an image, features for distances


def read_digits(images):
    """The class the digit classifier reads in each image."""
    with torch.no_grad():
        return classifier(images.cpu()).argmax(dim=1)


# %% [markdown]
# ## 1. Progressive growing
#
# The generator below has three blocks, for 7 x 7, 14 x 14 and 28 x 28, each with its own 1 x 1 convolution that
# turns features into an image; the discriminator mirrors it. Training starts with the 7 x 7 block alone (the real
# digits are averaged down to 7 x 7 for the discriminator). Then a new block is added, and its output is **faded in**:
#
# $$\text{out} = (1 - \alpha)\,\text{upsample}(\text{old image}) + \alpha\,\text{new image}, \qquad \alpha: 0 \to 1$$
#
# over the first half of the new stage. First, write that blend.

# %%
def my_fade(old, new, alpha):
    # YOUR CODE HERE
    return None


exercises.check("fade_in", my_fade)
# exercises.solution("fade_in")

# %% [markdown]
# Train it twice with the same seed and the same number of steps per resolution: once with the fade-in, once with
# the new layers taking over at once. The snapshots (fixed noise, taken along the way) let you scrub through the
# growth; the live plot shows the losses.

# %%
def train_progressive(R, fade_share):
    torch.manual_seed(0)
    gan = R.build(S).to(device)
    fixed_z = gan.sample_z(16, torch.Generator().manual_seed(1))
    grow = Grow(gan, steps_per_stage=S.toy_steps, fade_steps=int(fade_share * S.toy_steps))
    every = max(1, S.toy_steps // 20)  # 20 snapshots per resolution, one exactly at each switch
    snapshots = Snapshots(lambda g: g.generator(fixed_z), every=every)
    loader = make_loader(train, S.batch_size)
    epochs = math.ceil(3 * S.toy_steps / len(loader))
    step = GANStep(gan, generator=torch.Generator().manual_seed(0), **R.step_args())
    live = LivePlot(keys=["d_loss", "g_loss"], images=lambda g: g.generator(fixed_z), title=R.name, nrow=16)
    history = train_or_load(R.name, lambda: fit(gan, loader, step, None, epochs, device=device,
                                                callbacks=[grow, snapshots, live]), show=live, gan=gan,
                            grow=grow, snapshots=snapshots)
    grow.finish()  # at 28 x 28, fully faded in (where training ended, or the bundled weights were saved)
    return gan, grow, snapshots, history


print(recipes.PROGRESSIVE)
progressive, grow, snaps_fade, history_fade = train_progressive(recipes.PROGRESSIVE, recipes.PROGRESS_FADE_SHARE)
_, _, snaps_jump, history_jump = train_progressive(recipes.PROGRESSIVE_JUMP, 0.0)
print(f"generator {n_params(progressive.generator):,} parameters; switches to 14 and 28 pixels at steps "
      f"{grow.switches()}")

# %% [markdown]
# What does the fade-in prevent? Compare the snapshot taken just before each switch with the one taken right at it
# (the networks already switched): with the fade-in the image barely changes (alpha is still 0), without it the
# untrained new layers replace what was learned in one step.

# %%
def change_at_switches(snapshots):
    """Mean absolute pixel change of the fixed-noise images across each switch of resolution."""
    at = {step: frame for step, frame in zip(snapshots.at_step, snapshots.frames)}
    every = snapshots.at_step[1] - snapshots.at_step[0]
    return [(at[s] - at[s - every]).abs().mean().item() for s in grow.switches() if s in at and s - every in at]


jump_change, fade_change = change_at_switches(snaps_jump), change_at_switches(snaps_fade)
for name, change in (("with fade-in", fade_change), ("without", jump_change)):
    print(f"{name:13s} change of the images across the switches to 14 and 28 pixels: "
          + ", ".join(f"{c:.3f}" for c in change))
assert len(fade_change) == len(jump_change) == 2
assert sum(jump_change) > 2 * sum(fade_change), "without fade-in the images should jump at each switch"
show_rows({f"{name}, step {s}": frames.frames[i] for name, frames in (("fade", snaps_fade), ("jump", snaps_jump))
           for i, s in enumerate(frames.at_step) if s in grow.switches()})
plt.show()

# %% [markdown]
# Scrub through the growth of the faded-in run: the slider shows the training step; the caption, the resolution.

# %%
stage_of = {step: grow.schedule(step) for step in snaps_fade.at_step}
scrubber = FrameScrubber(snaps_fade.frames, nrow=16, values=snaps_fade.at_step, description="step",
                         captions=[f"step {s}: {7 * 2 ** stage_of[s][0]} x {7 * 2 ** stage_of[s][0]} pixels, alpha "
                                   f"{stage_of[s][1]:.2f}" for s in snaps_fade.at_step])
scrubber

# %% [markdown]
# ## 2. A style-based generator
#
# StyleGAN does not feed z into the first layer. A **mapping network** (an MLP) turns z into $w = f(z)$; the image
# starts from a **learned constant** (7 x 7 here, 4 x 4 in the paper); and after every convolution each feature map
# $h_i$ is renormalised with a scale and a bias computed from $w$ by that layer's own affine map $A$:
#
# $$\text{AdaIN}(h_i, w) = \big(1 + s_i(w)\big)\,\frac{h_i - \mu(h_i)}{\sigma(h_i)} + b_i(w).$$
#
# Each layer also adds fresh noise, scaled per feature map. We use AdaIN, as in the lecture and the first StyleGAN;
# StyleGAN2 replaced it with weight modulation to remove blob artefacts of large images. Write AdaIN:

# %%
def my_adain(h, scale, bias):
    # YOUR CODE HERE
    return None


exercises.check("adain", my_adain)
# exercises.solution("adain")

# %% [markdown]
# The generator has six styled layers, two per resolution. Each resolution ends in a 1 x 1 convolution to an image,
# added to the image so far upsampled to that size, so the generator's image is a 7 x 7 sketch with 14 x 14 and
# 28 x 28 detail added on top (StyleGAN2's "skip" outputs, in the place of the first StyleGAN's progressive
# growing). Its discriminator and augmentation are lesson 3's DCGAN's (`recipes.STYLEGAN`), so what differs is the
# generator (and Adam's settings, StyleGAN's own).

# %%
R = recipes.STYLEGAN
torch.manual_seed(0)
stylegan = R.build(S).to(device)
G = stylegan.generator
print(R)
print(f"style-based generator: {n_params(G):,} parameters ({n_params(G.mapping):,} in the mapping network), "
      f"{G.num_layers} styled layers")

# %% [markdown]
# One more ingredient of StyleGAN (from progressive GANs): an **equalised learning rate**. Every weight is stored at
# the same scale, N(0, 1), and multiplied at every call by He's constant $\sqrt{2 / \text{fan-in}}$ (the layer computes
# what a He-initialised one would). Why bother? Adam's steps have about the same size, about the learning rate, for
# every parameter, so a layer whose weights are small (a large fan-in) changes much faster, relative to its weights,
# than a layer with a small fan-in. Stored at one scale, all layers learn at the same relative rate. The mapping
# network's layers are slowed a hundredfold on top (`lr_mul=0.01`), as in the paper. One Adam step on a fresh copy of
# this generator's first 14 x 14 convolution (fan-in 32 x 3 x 3 = 288) and of a style map (fan-in 64), plain and
# equalised (`relative_change` in `course_lib.stylegan` measures it, at the recipe's learning rate):

# %%
torch.manual_seed(0)
feature_maps, w = torch.randn(8, 32, 14, 14), torch.randn(8, G.w_dim)
change = {"plain": (relative_change(torch.nn.Conv2d(32, 16, 3, padding=1), feature_maps, R.lr),
                    relative_change(torch.nn.Linear(64, 64), w, R.lr)),
          "equalised": (relative_change(EqualisedConv2d(32, 16, 3, padding=1), feature_maps, R.lr),
                        relative_change(EqualisedLinear(64, 64), w, R.lr))}
for name, (conv, style) in change.items():
    print(f"{name:9s}: the convolution changes by {conv:.2%}, the style map by {style:.2%} (ratio {conv / style:.1f})")
# plain: the layer with the larger fan-in moves about sqrt(288 / 64) = 2.1 times faster; equalised: about the same
assert change["plain"][0] > 1.5 * change["plain"][1] and 0.7 < change["equalised"][0] / change["equalised"][1] < 1.4

# %% [markdown]
# Train it. During training, a share of the batches (printed below; 90% in the paper) mix two latents at a random
# layer (*mixing regularisation*), so that neighbouring layers cannot rely on sharing one style. The guard stops the
# run if D wins outright.

# %%
epochs, batch_size = S.for_model("stylegan")
print(f"mixing regularisation in {G.mixing:.0%} of the batches")
fixed_z = stylegan.sample_z(32, torch.Generator().manual_seed(1))
loader = make_loader(train, batch_size)
snapshots = Snapshots(lambda gan: gan.generator(fixed_z), every=max(1, epochs * len(loader) // 30))
live = LivePlot(keys=["d_loss", "g_loss", "d_real", "d_fake"], images=lambda gan: gan.generator(fixed_z),
                title="StyleGAN")
step = GANStep(stylegan, generator=torch.Generator().manual_seed(0), **R.step_args())
history = train_or_load(R.name, lambda: fit(stylegan, loader, step, None, epochs, device=device,
                                            callbacks=[live, snapshots, GANGuard()]), show=live,
                        gan=stylegan, snapshots=snapshots)
d_real, d_fake = history.epochs["d_real"][-1], history.epochs["d_fake"][-1]
print(f"{history.epoch} epochs in {history.seconds:.0f} s; last epoch: mean D(real) {d_real:.2f}, D(fake) {d_fake:.2f}")
assert history.stopped is None and d_real > d_fake

# %% [markdown]
# How good are its digits? The Frechet distance to the training digits, precision and recall, and which digits it
# draws: a GAN that leaves whole classes out (mode collapse, lesson 3) shows zeros in that count. (The benchmark,
# `python -m course_lib.tools.benchmark --only stylegan dcgan`, compares it with lesson 3's DCGAN at the same
# training time; the README has the numbers.)

# %%
samples = stylegan.sample(S.n_sampled, torch.Generator().manual_seed(2)).cpu()
show_images(samples[:32], nrow=16, title="StyleGAN samples")
plt.show()
report = quality_report(samples, name="StyleGAN")
assert report["fd"] < report["fd_noise"]
drawn = torch.bincount(read_digits(samples), minlength=10)
print("how many samples the classifier reads as each digit 0-9:", drawn.tolist(),
      f"({int((drawn == 0).sum())} digits never drawn)")

# %% [markdown]
# ## 3. Style mixing
#
# Every layer takes its own copy of w, so the layers can take *different* w. The grid below takes, in row i, the
# styles of the layers before the crossover from latent $a_i$, and in column j the styles from the crossover on from
# latent $b_j$ (the first row and column show the two sources alone). Move the slider: crossover 0 is all $b$,
# 6 all $a$.

# %%
z_a, z_b = stylegan.sample_z(5, torch.Generator().manual_seed(3)), stylegan.sample_z(6, torch.Generator().manual_seed(4))
sources_a, sources_b = G.generate(z_a, generator=torch.Generator().manual_seed(0)).cpu(), \
    G.generate(z_b, generator=torch.Generator().manual_seed(0)).cpu()
frames = []
for crossover in range(G.num_layers + 1):
    grid = mixing_grid(G, z_a, z_b, crossover).unflatten(0, (5, 6))
    rows = torch.cat([torch.cat([torch.zeros(1, 1, 28, 28), sources_b]).unsqueeze(0),
                      torch.cat([sources_a.unsqueeze(1), grid], dim=1)])  # (6, 7, 1, 28, 28)
    frames.append(rows.flatten(0, 1))
mixer = FrameScrubber(frames, description="crossover", nrow=7, values=list(range(G.num_layers + 1)),
                      captions=[f"crossover {k}: layers 0-{k - 1} from the row's latent, {k}-5 from the column's" if k
                                else "crossover 0: every layer from the column's latent" for k in range(G.num_layers + 1)])
mixer

# %% [markdown]
# Which level decides what? Mix many pairs of latents whose digits differ and ask the digit classifier which digit
# each mixed image shows: the digit of the coarse source (rows), of the fine source (columns), or neither. Crossover 4
# takes the 7 x 7 and 14 x 14 layers from the row's latent and only the 28 x 28 layers from the column's; crossover 2
# only the 7 x 7 layers from the row's. (Where neither source's digit is read, the mix drew something in between:
# this small StyleGAN's levels are not cleanly separated, and the numbers show how far they are.)

# %%
n = S.n_sampled // 4  # pairs
za, zb = stylegan.sample_z(n, torch.Generator().manual_seed(5)), stylegan.sample_z(n, torch.Generator().manual_seed(6))
with torch.no_grad():
    wa, wb = G.styles(za), G.styles(zb)
    class_a, class_b = read_digits(G.generate(za)), read_digits(G.generate(zb))
    follows = {}
    for crossover in (2, 4):
        mixed = read_digits(G.synthesis(mix_styles(wa, wb, crossover)))
        differ = class_a != class_b
        follows[crossover] = ((mixed == class_a)[differ].float().mean().item(),
                              (mixed == class_b)[differ].float().mean().item())
for crossover, (coarse, fine) in follows.items():
    print(f"crossover {crossover}: the mixed digit is the coarse source's in {coarse:.0%}, the fine source's in {fine:.0%}"
          f" (pairs of different digits)")
if PROFILE != "smoke":  # an untrained generator has no levels yet
    # the 28 x 28 layers seldom change which digit it is: at crossover 4 the mixed digit is the coarse source's far
    # more often than the fine source's, and more often than when only the 7 x 7 layers come from the coarse source
    assert follows[4][0] > 3 * follows[4][1] and follows[4][0] > follows[2][0], follows

# %% [markdown]
# ### Exercise — where does the digit's identity live?

# %%
my_answer = "?"  # 'a' (the 7 x 7 and 14 x 14 styles), 'b' (the 28 x 28 styles) or 'c' (the noise)
exercises.check("identity_level", my_answer)

# %% [markdown]
# ## 4. The truncation trick
#
# During training the generator kept a running average $\bar w$ of its w. Pulling every w towards it,
# $w' = \bar w + \psi\,(w - \bar w)$, trades diversity for typicality: $\psi = 1$ is the generator as trained, $\psi = 0$
# the "average digit". Slide $\psi$ (the same 16 latents in every frame):

# %%
psis = [round(0.1 * i, 1) for i in range(11)]
z16 = stylegan.sample_z(16, torch.Generator().manual_seed(7))
truncation = FrameScrubber([G.generate(z16, psi, generator=torch.Generator().manual_seed(0)).cpu() for psi in psis],
                           captions=[f"psi = {psi}" for psi in psis], description="psi", values=psis, nrow=16)
truncation

# %% [markdown]
# Measured on as many samples as the lesson scores: lower $\psi$ should raise precision (typical digits) and lower the
# diversity, here the mean distance between two samples' classifier features (recall, the share of real digits with
# a sample near them, falls too where it is not already near 0).

# %%
trunc = {}
for psi in (0.5, 0.75, 1.0):
    images = G.generate(stylegan.sample_z(S.n_sampled, torch.Generator().manual_seed(8)), psi).cpu()
    trunc[psi] = quality_report(images, name=f"psi = {psi}")
    trunc[psi]["diversity"] = class_diversity(images, torch.zeros(len(images)), classifier.features)
    print(f"psi = {psi}: diversity {trunc[psi]['diversity']:.2f}")
if PROFILE != "smoke":
    assert trunc[0.5]["precision"] > trunc[1.0]["precision"], "truncation should give more typical digits"
    assert trunc[0.5]["diversity"] < trunc[0.75]["diversity"] < trunc[1.0]["diversity"], "and cost diversity"

# %%
my_answer = "?"  # with psi = 0: 'a' 16 different digits, 'b' 16 copies of one image, 'c' noise
exercises.check("psi_zero", my_answer)

# %% [markdown]
# ## 5. Walking in w instead of z
#
# Interpolate between two latents in z (top) and between their images under the mapping in w (bottom):

# %%
za2, zb2 = stylegan.sample_z(2, torch.Generator().manual_seed(9))
t = torch.linspace(0, 1, 10, device=za2.device)[:, None]
w_ends = G.styles(torch.stack([za2, zb2]))[:, 0]
with torch.no_grad():
    in_z = G.synthesis(G.styles((1 - t) * za2 + t * zb2), noise=False).cpu()
    in_w = G.synthesis(((1 - t) * w_ends[0] + t * w_ends[1])[:, None].repeat(1, G.num_layers, 1), noise=False).cpu()
show_rows({"lerp in z": in_z, "lerp in w": in_w})
plt.show()

# %% [markdown]
# A smooth space changes the image evenly along a straight path. The *path length* adds up how much the image's
# features (the digit classifier's) change over 16 equal steps; long paths mean jumps. Averaged over many pairs:

# %%
pairs = S.n_sampled // 5
za, zb = stylegan.sample_z(pairs, torch.Generator().manual_seed(10)), stylegan.sample_z(pairs, torch.Generator().manual_seed(11))


def from_z(z):
    return G.synthesis(G.styles(z), noise=False)


def from_w(w):
    return G.synthesis(w[:, None].repeat(1, G.num_layers, 1), noise=False)


with torch.no_grad():
    length_z = path_length(from_z, za, zb, lambda x: classifier.features(x.cpu())).mean().item()
    length_w = path_length(from_w, G.mapping(za), G.mapping(zb), lambda x: classifier.features(x.cpu())).mean().item()
print(f"mean path length over {pairs} pairs: in z {length_z:.1f}, in w {length_w:.1f}")
if PROFILE != "smoke":  # the mapping network has learned to unwarp z
    assert length_w < length_z, "straight lines in w should change the digit more evenly than in z"

# %% [markdown]
# **Arithmetic in w.** Sort many samples by the digit the classifier reads in them and average their w per digit.
# Then move a sample's w by the difference of two averages, w + (mean w of the 7s - mean w of its own digit), and see
# which digit comes out: if w lays digits out in regions, the shift turns the sample into a 7 while keeping some of
# its style. The same shift in z, for comparison (in this small StyleGAN, w is not always the better space for it:
# compare the two numbers):

# %%
z_many = stylegan.sample_z(S.n_sampled, torch.Generator().manual_seed(15))
with torch.no_grad():
    w_many = G.mapping(z_many)
    read = read_digits(G.synthesis(w_many[:, None].repeat(1, G.num_layers, 1), noise=False))
target = 7
found = [d for d in range(10) if (read == d).sum() >= 5]  # digits with enough samples to average
if target in found:
    mean_w = {d: w_many[read == d].mean(dim=0) for d in found}
    mean_z = {d: z_many[read == d].mean(dim=0) for d in found}
    movers = (read != target) & torch.isin(read, torch.tensor(found))  # samples of another digit we can shift
    shift_w = torch.stack([mean_w[target] - mean_w[int(d)] for d in read[movers]])
    shift_z = torch.stack([mean_z[target] - mean_z[int(d)] for d in read[movers]])
    with torch.no_grad():
        moved_w = G.synthesis((w_many[movers] + shift_w)[:, None].repeat(1, G.num_layers, 1), noise=False)
        moved_z = G.synthesis(G.styles(z_many[movers] + shift_z), noise=False)
    hit_w, hit_z = ((read_digits(x) == target).float().mean().item() for x in (moved_w, moved_z))
    print(f"{int(movers.sum())} samples of other digits shifted towards the mean of the {target}s: read as a {target} "
          f"in {hit_w:.0%} after the shift in w, {hit_z:.0%} after the shift in z")
    before = G.synthesis(w_many[movers][:10, None].repeat(1, G.num_layers, 1), noise=False)
    show_rows({"samples": before.cpu(), f"w + (mean w of {target}s - mean w of own digit)": moved_w[:10].cpu(),
               "the same in z": moved_z[:10].cpu()})
    plt.show()
    if PROFILE != "smoke":
        # none of them was a 7 before the shift: a share well above 0 means the averages point towards the 7s
        assert hit_w > 0.1, "the shift in w should turn some of the samples into the target digit"
else:
    print(f"too few samples read as a {target} to average (an untrained generator): the arithmetic is skipped")

# %% [markdown]
# ## 6. Per-layer noise
#
# Keep z fixed and redraw only the per-layer noise: the digit stays, the details move. The map on the right shows
# each pixel's standard deviation over 8 noise draws; with the noise switched off, every draw is the same image.

# %%
z1 = stylegan.sample_z(1, torch.Generator().manual_seed(12)).repeat(8, 1)
draws = G.generate(z1, generator=torch.Generator().manual_seed(13)).cpu()
quiet = G.generate(z1, noise=False).cpu()
spread = draws.std(dim=0)
fig, axes = plt.subplots(1, 2, figsize=(10, 3), gridspec_kw={"width_ratios": [4, 1]})
show_images(draws, nrow=8, ax=axes[0], title="one z, 8 noise draws")
axes[1].imshow(spread[0], cmap="magma"), axes[1].set_axis_off(), axes[1].set_title("std per pixel")
plt.show()
print(f"largest per-pixel std: with noise {spread.max():.3f}, noise off {quiet.std(dim=0).max():.3f}")
assert quiet.std(dim=0).max() < 1e-5  # the same image, up to float rounding (a batch's rows can round differently)

# %% [markdown]
# ## 7. EBGAN: an autoencoder as the discriminator
#
# EBGAN's discriminator is an autoencoder whose **energy** is its reconstruction error $E(x)$. It learns to rebuild
# real digits (low energy) and to rebuild generated ones badly, up to a margin $m$; the generator learns to make images
# of low energy:
#
# $$L_D = E(x) + \max\big(0,\ m - E(G(z))\big), \qquad L_G = E(G(z)).$$
#
# The generator is lesson 3's DCGAN generator; only the discriminator and the game change.

# %%
R = recipes.EBGAN
print(R)
epochs, batch_size = S.for_model("ebgan")
torch.manual_seed(0)
ebgan = R.build(S).to(device)
step = EBGANStep(ebgan, margin=R.margin, lr_d=R.lr, lr_g=R.lr, betas=R.betas,
                 generator=torch.Generator().manual_seed(0))
fixed = ebgan.sample_z(16, torch.Generator().manual_seed(1))
live = LivePlot(keys=["energy_real", "energy_fake"], images=lambda gan: gan.generator(fixed), title="EBGAN", nrow=16)
history = train_or_load(R.name, lambda: fit(ebgan, make_loader(train, batch_size), step, None, epochs, device=device,
                                            callbacks=[live]), show=live, gan=ebgan)
assert history.stopped is None

# %% [markdown]
# The energies the trained discriminator gives held-out real digits and fresh generated ones:

# %%
with torch.no_grad():
    fakes = ebgan.sample(500, torch.Generator().manual_seed(2))
    energy_real, energy_fake = ebgan.discriminator(test_x[:500].to(device)).cpu(), ebgan.discriminator(fakes).cpu()
plt.figure(figsize=(7, 3))
plt.hist([energy_real.numpy(), energy_fake.numpy()], bins=40, label=["real (test)", "generated"])
plt.axvline(R.margin, color="k", ls="--", label="margin m")
plt.xlabel("energy E(x)"), plt.legend(), plt.title("EBGAN discriminator")
plt.show()
print(f"mean energy: real {energy_real.mean():.4f}, generated {energy_fake.mean():.4f}")
show_images(fakes[:32].cpu(), nrow=16, title="EBGAN samples")
plt.show()
ebgan_report = quality_report(fakes.cpu(), name="EBGAN")
if PROFILE != "smoke":
    assert energy_real.mean() < energy_fake.mean()

# %% [markdown]
# ## 8. MSGAN: rewarding diversity in a conditional GAN
#
# Lesson 5's conditional GAN is told which digit to draw, and can learn to ignore its noise: one style per class.
# The mode-seeking term compares two noise vectors and the two images they give for the same label, and the
# generator minimizes
#
# $$L_{ms} = \left(\frac{\operatorname{mean}|G(z_1, y) - G(z_2, y)|}{\operatorname{mean}|z_1 - z_2|} + \epsilon\right)^{-1}.$$
#
# Write it:

# %%
def my_mode_seeking(fake_1, fake_2, z_1, z_2):
    # YOUR CODE HERE
    return None


exercises.check("mode_seeking", my_mode_seeking)
# exercises.solution("mode_seeking")

# %% [markdown]
# Train lesson 5's conditional GAN twice, for the same epochs from the same start: without the term (`ms_weight` 0)
# and with it.

# %%
epochs, batch_size = S.for_model("msgan")
cgans = {}
for R in (recipes.MSGAN_OFF, recipes.MSGAN):
    torch.manual_seed(0)
    gan = R.build(S).to(device)
    step = MSGANStep(gan, ms_weight=R.ms_weight, lr_d=R.lr, lr_g=R.lr_g or R.lr, betas=R.betas,
                     generator=torch.Generator().manual_seed(0))
    live = LivePlot(keys=["d_loss", "g_loss", "mode_seeking"], title=f"{R.name}, ms_weight {R.ms_weight}")
    history = train_or_load(R.name, lambda: fit(gan, make_loader(train, batch_size), step, None, epochs,
                                                device=device, callbacks=[live, GANGuard()]), show=live, gan=gan)
    assert history.stopped is None
    cgans[R.ms_weight] = gan

# %% [markdown]
# Diversity per class: the mean distance between the classifier features of two samples of the same digit, and the
# class accuracy (is each sample the digit that was asked for?).

# %%
labels = torch.arange(S.n_sampled) % 10
msgan_scores = {}
for weight, gan in cgans.items():
    images = gan.sample(S.n_sampled, torch.Generator().manual_seed(3), labels=labels).cpu()
    msgan_scores[weight] = {"diversity": class_diversity(images, labels, classifier.features),
                            "class accuracy": class_accuracy(images, labels)}
    print(f"ms_weight {weight}: diversity within a class {msgan_scores[weight]['diversity']:.2f}, "
          f"class accuracy {msgan_scores[weight]['class accuracy']:.1%}")
if PROFILE != "smoke":
    assert msgan_scores[1.0]["diversity"] > msgan_scores[0.0]["diversity"], "the term should raise the diversity"
grid_z = cgans[1.0].sample_z(6, torch.Generator().manual_seed(4)).repeat_interleave(10, dim=0)
grid_y = torch.arange(10).repeat(6)
fig, axes = plt.subplots(1, 2, figsize=(14, 5))
for ax, (weight, gan) in zip(axes, cgans.items()):
    show_images(gan.decode(grid_z, grid_y).cpu(), nrow=10, ax=ax, title=f"ms_weight {weight}: 6 z (rows) x 10 digits")
plt.show()

# %% [markdown]
# The term does what it says: samples of one digit differ more. Compare the class accuracies too: pushed this hard
# (`ms_weight` 1 in this short run), diversity can also mean digits that are no longer the one asked for. The MSGAN
# paper tunes the weight per task; try 0.1 and 0.3 (the `ms_weight` given to `MSGANStep` in the training cell).

# %% [markdown]
# ## 9. SinGAN: a GAN that learns from one image
#
# Every GAN so far learned from thousands of digits. **SinGAN** learns from a single picture: it treats the picture's
# many small **patches** as its training set. A patch discriminator only ever sees an 11 x 11 window, so it can only
# ask "does this patch look like the picture's patches?", and the generator is free to arrange them anew.
#
# To get both the large layout and the fine texture right, SinGAN trains a **pyramid** of small GANs, coarse to fine:
# $x_0$ is the picture shrunk a few times, $x_N$ the picture itself. Scale $n$ enlarges what the coarser scales drew
# and adds detail:
#
# $$\tilde x_0 = G_0(z_0), \qquad \tilde x_n = (\tilde x_{n-1})\!\uparrow + \; G_n\big(z_n + (\tilde x_{n-1})\!\uparrow\big).$$
#
# At the coarsest scale the noise decides the whole layout; above it the noise has strength
# $\sigma_n \propto$ RMSE of the coarser reconstruction, so it only moves details. Each $G_n$ is trained with a
# WGAN-GP loss plus a **reconstruction** term, $\alpha\,\lVert G_n(\ldots z^*) - x_n \rVert^2$ for one fixed noise
# $z^*$, which keeps a way back to the picture itself. The picture here: a shaded-relief map of ridges and valleys
# (NASA's public-domain elevation data, shipped with matplotlib), at four scales.

# %%
R = recipes.SINGAN
print(R)
torch.manual_seed(0)
singan = R.build(S).to(device)
show_rows({f"scale {n}: {h} x {w}": singan.real(n).cpu() for n, (h, w) in enumerate(singan.sizes)}, scale=1.2)
plt.show()

# %% [markdown]
# Train the scales one after the other (each starts from the weights of the one below it); the live plot shows the
# critic's and the generator's losses and the reconstruction error, scale after scale.

# %%
live = LivePlot(keys=["d_loss", "g_loss", "rec"], title="SinGAN, coarse to fine")
history = train_or_load(R.name, lambda: train_singan(singan, R.steps(PROFILE), generator=torch.Generator().manual_seed(0),
                                                     callbacks=[live], **R.train_args()), show=live, singan=singan)
assert history.stopped is None
print("seconds per scale: " + ", ".join(f"{t:.0f}" for t in history.epochs["seconds"]) +
      "; noise strength sigma_n: " + ", ".join(f"{a:.3f}" for a in singan.noise_amp.tolist()))

# %% [markdown]
# Random samples, every scale from noise: new maps made of the picture's own ridges and valleys. The numbers say
# whether they are new (distance to the picture, diversity between samples; a copy has 0) and made of the picture's
# patches (patch distance: from each patch to its nearest patch of the picture, and back) with the picture's amount
# of fine detail. A blurred copy and noise give the two ends.

# %%
samples = sample(singan, 8, generator=torch.Generator().manual_seed(1))
show_images(torch.cat([singan.image.cpu(), samples]), nrow=9, title="the picture, then 8 samples", scale=1.5)
plt.show()
picture = singan.image.cpu()
references = {"8 samples": samples, "blurred picture": blurred(picture),
              "noise": torch.rand(8, *picture.shape[1:], generator=torch.Generator().manual_seed(2))}
singan_report = {name: sample_report(images, picture) for name, images in references.items()}
print(f"detail of the picture itself: {float(detail(picture)):.3f}")
for name, report in singan_report.items():
    print(f"{name:16s} " + "  ".join(f"{key} {value:.3f}" for key, value in report.items()))
if PROFILE != "smoke":
    ours, noise = singan_report["8 samples"], singan_report["noise"]
    assert ours["pixel distance to the image"] > 0.05 and ours["diversity"] > 0.05, "samples should be new pictures"
    assert ours["patch distance"] < 0.5 * noise["patch distance"], "made of the picture's patches, not noise"
    assert ours["detail"] > 3 * singan_report["blurred picture"]["detail"], "as detailed as a picture, not a blur"

# %% [markdown]
# Starting higher up the pyramid keeps more of the picture: from scale 1 (the real picture at scale 0) the layout
# stays and the ridges' shapes vary; from scale 2 only small details change.

# %%
show_rows({f"from scale {k}": sample(singan, 6, start_scale=k, generator=torch.Generator().manual_seed(3))
           for k in range(3)}, scale=1.2)
plt.show()

# %% [markdown]
# The same trained pyramid edits pictures. **Super-resolution**, as in the SinGAN paper: enlarge by $1/0.75$ and let
# the finest generator add the detail it learned one scale down, twice. Compare with plain bilinear enlargement by
# how much fine detail each has. **Paint-to-image**: a crude painting (the picture reduced to a few blocks of colour)
# enters the pyramid at scale 1, and the finer scales redraw it as terrain.

# %%
sharp = super_resolve(singan, steps=2, generator=torch.Generator().manual_seed(4))
smooth = resize(picture, sharp.shape[-2:]).clamp(0, 1)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
show_images(smooth, nrow=1, ax=axes[0], title=f"bilinear, detail {float(detail(smooth)):.3f}")
show_images(sharp, nrow=1, ax=axes[1], title=f"SinGAN super-resolution, detail {float(detail(sharp)):.3f}")
plt.show()
painting = resize(resize(picture, (5, 6)), picture.shape[-2:]).clamp(0, 1)
painted = inject(singan, painting, scale=1, n=4, generator=torch.Generator().manual_seed(5))
show_images(torch.cat([painting, painted]), nrow=5, title="a painting, then 4 pictures drawn from it", scale=1.5)
plt.show()
if PROFILE != "smoke":
    assert detail(sharp) > detail(smooth), "SinGAN's enlargement should carry more fine detail than bilinear's"

# %% [markdown]
# ## What's next
# - Growing the resolution with a fade-in lets the GAN settle the layout before the details; without the fade-in the
#   new layers erase what was learned at each switch.
# - A style-based generator makes the latent a set of per-layer styles: the 7 x 7 and 14 x 14 ones decide the digit
#   far more often than the 28 x 28 ones, which mostly change how it is drawn; the truncation trick trades diversity
#   for typical digits.
# - The game itself can change: an autoencoder as the discriminator (EBGAN), a reward for diversity (MSGAN).
# - One picture is a training set of patches: SinGAN's pyramid of patch GANs draws new pictures from it, enlarges it
#   and turns a painting into it.
# - **Lesson 8** turns generative models on existing images: super-resolution, restoration and editing.
