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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/image-generation-course/image-generation-course/blob/main/notebooks/01_autoencoders.ipynb)

# %% [markdown]
# # Lesson 1 — Autoencoders
#
# An **autoencoder** learns, without any labels, to squeeze an image $x$ into a short code $z = g_\phi(x)$ (the
# *encoder*) and to rebuild the image from that code, $\hat{x} = f_\theta(z)$ (the *decoder*). Because the code is much
# smaller than the image, the network has to find the few factors that matter: stroke, slant, thickness, which digit.
#
# In this lesson you will:
# 1. train an autoencoder with a **2-D code** and look at where the digits land in that plane;
# 2. see the **gap problem**: codes between the digits decode to blurry mixtures, so a plain autoencoder is not yet a
#    generator (that is what lesson 2, the VAE, fixes);
# 3. compare it with **PCA**, the best *linear* autoencoder;
# 4. write one **training step** yourself (forward, loss, backward, update), then train a **denoising autoencoder**
#    with it and use that to denoise, inpaint and upsample;
# 5. reuse the **encoder** as a feature extractor when only 100 labels are known;
# 6. steer the decoder yourself with the **latent explorer**.
#
# Every cell runs on a laptop CPU. `COURSE_PROFILE=smoke` (tiny, seconds), `cpu` (a few minutes) or `gpu` (full)
# sets how much data and training each cell gets.

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
# The profile decides the sizes below; the seed makes every run repeat exactly.

# %%
import course_lib  # first, before torch: it picks how torch's threads wait (sleep on a busy CPU, spin on an idle one)
import matplotlib.pyplot as plt
import torch

from course_lib import exercises, recipes
from course_lib.autoencoders import (PCA, add_gaussian_noise, ae_loss, downsample, fit_code_gaussian, latent_grid,
                                     mask_square, random_corruption)
from course_lib.classifiers import accuracy, fit_linear_classifier
from course_lib.config import N_SCORED, seed_everything
from course_lib.data import load_dataset, make_loader
from course_lib.lesson import start_lesson
from course_lib.liveplot import LivePlot
from course_lib.metrics import quality_report
from course_lib.nets import n_params
from course_lib.plotting import latent_scatter, show_images, show_rows
from course_lib.pretrained import train_or_load
from course_lib.training import fit
from course_lib.widgets import LatentExplorer

USE_PRETRAINED = False  # True (or COURSE_PRETRAINED=1 in the environment): load bundled weights instead of training
PRESENTER = False  # True: larger fonts, figures and widgets, for a projector
PROFILE, S, device = start_lesson("autoencoders", pretrained=USE_PRETRAINED, presenter=PRESENTER)

# %% [markdown]
# ## The data
# MNIST digits as tensors shaped `(N, 1, 28, 28)` with pixel values in $[0, 1]$ (0 is the black background). With
# no internet the course uses the 5,000 real MNIST digits bundled inside `course_lib`.

# %%
train = load_dataset("mnist", "train", n=S.n_train)
test = load_dataset("mnist", "test", n=S.n_test)
x_test, y_test = test.tensors
assert x_test.shape[1:] == (1, 28, 28) and 0 <= x_test.min() and x_test.max() <= 1
print(f"{len(train)} training and {len(test)} test images")
show_images(x_test[:32], nrow=16, title="test digits")
plt.show()

# %% [markdown]
# ## An autoencoder with a 2-D code
#
# The loss asks the decoder to give back the encoder's input, averaged over the $n$ images of a batch:
#
# $$L_\text{AE}(\theta, \phi) = \frac{1}{n}\sum_{i=1}^{n} \big\lVert x^{(i)} - f_\theta(g_\phi(x^{(i)}))\big\rVert^2$$
#
# In code, a *step function* computes that loss for one batch; the course's single training loop `fit` does the
# rest (backward pass, optimizer, progress bar, live plot). Watch the loss fall and the reconstructions (right)
# sharpen as it trains.

# %%
def ae_step(model, batch):
    x, _ = batch  # the labels are not used: no supervision
    return ae_loss(x, model(x))  # 1/n sum ||x - f(g(x))||^2


def train_autoencoder(model, R, step=ae_step, title="autoencoder", train_step=None):
    """Train `model` with recipe R's learning rate; R.name also names its bundled weights. With
    `train_step(model, optimizer, batch)`, a step that also updates the weights, `fit` only drives it."""
    seed_everything(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
    fit_step, fit_optimizer = step, optimizer
    if train_step is not None:  # it does zero_grad / backward / step itself, so fit gets no optimizer
        fit_step, fit_optimizer = (lambda m, batch: train_step(m, optimizer, batch)), None
    fixed = x_test[:8]
    live = LivePlot(images=lambda m: torch.cat([fixed, m(fixed).cpu()]), title=title)
    history = train_or_load(R.name, lambda: fit(model, make_loader(train, S.batch_size), fit_step, fit_optimizer,
                                                S.epochs, device=device, callbacks=[live]), show=live, model=model)
    if history.stopped is None:  # a run you interrupted keeps its model; there is nothing to check yet
        first, last = history.steps["loss"][:5], history.steps["loss"][-5:]
        assert sum(last) < sum(first), "the loss should go down while training"
    return history


R = recipes.AE2  # course_lib/recipes.py: the architecture, the learning rate and the name of the bundled weights
ae2 = R.build(S).to(device)
print(ae2)
history2 = train_autoencoder(ae2, R, title="MLP autoencoder, 2-D code")

# %% [markdown]
# Top row: test digits the model never trained on. Bottom row: what comes back through a bottleneck of just **two
# numbers**. Look at each pair: does the digit's identity survive? Which details are lost?

# %% [markdown]
# ## The 2-D latent map
# Encode every test digit and plot its code $z = (z_1, z_2)$, coloured by its label (which the autoencoder never
# saw). Look at which digits land next to each other: are they the ones that look alike?

# %%
with torch.no_grad():
    z_test = ae2.encode(x_test).cpu()
latent_scatter(z_test, y_test, title="codes of the test digits (2-D autoencoder)")
plt.show()

# %% [markdown]
# ## The gap problem
# Now decode codes the encoder never produced. First: walk in a straight line from the code of one digit to the
# code of another and decode each point. Look at the images halfway: a 1, a 0, or neither?

# %%
a, b = z_test[(y_test == 1).nonzero()[0, 0]], z_test[(y_test == 0).nonzero()[0, 0]]
steps = torch.linspace(0, 1, 9).unsqueeze(1)
path = (1 - steps) * a + steps * b  # z = (1 - t) z_a + t z_b
with torch.no_grad():
    show_images(ae2.decode(path).cpu(), nrow=9, title="decoding the straight line from a 1 to a 0")
plt.show()

# %% [markdown]
# Second: decode a regular grid over the whole latent plane (right) next to the codes of real digits (left).
# Where there are no real codes (the gaps), the decoder has never been told what to draw. Look at those cells: do
# they show digits, blends of neighbouring digits, or shapes that belong to no digit in particular?

# %%
lo, hi = z_test.quantile(0.01, dim=0), z_test.quantile(0.99, dim=0)
n = 15
grid = latent_grid((lo[0], hi[0]), (lo[1], hi[1]), n)  # (n*n, 2), row 0 at the top (largest z_2)
with torch.no_grad():
    decoded_grid = ae2.decode(grid).cpu()
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6.5))
latent_scatter(z_test, y_test, ax=ax1, title="codes of real digits")
ax1.scatter(grid[:, 0], grid[:, 1], s=6, c="k", marker="+")
show_images(decoded_grid, nrow=n, ax=ax2, title="decoded grid (the + points)")
fig.tight_layout()
plt.show()

# %% [markdown]
# How much of the plane is gap? Cut the same box into $15 \times 15$ cells and count the training codes in each.
# If the codes filled the box evenly, every cell would hold about the same number. They do not: half of all codes
# crowd into a few cells, and many cells hold almost none. A code picked at random in the box often lands in such a
# gap.

# %%
x_train, y_train = train.tensors
with torch.no_grad():
    z_train = ae2.encode(x_train).cpu()
edges = [torch.linspace(float(lo[0]), float(hi[0]), n + 1), torch.linspace(float(lo[1]), float(hi[1]), n + 1)]
counts = torch.histogramdd(z_train, bins=edges).hist.flatten()  # training codes per cell
crowded = (counts.sort(descending=True).values.cumsum(0) < counts.sum() / 2).float().mean().item()
sparse = (counts < counts.mean() / 4).float().mean().item()
print(f"half of the codes sit in {crowded:.0%} of the cells; {sparse:.0%} of the cells hold less than a quarter "
      f"of their even share")
assert crowded < 0.25 and sparse > 0.25, "the codes should crowd together and leave gaps"

# %% [markdown]
# So a plain autoencoder is a good *compressor* but a poor *generator*: a random code is likely to fall in a gap.
# Lesson 2 adds a prior over the codes that fills the gaps.
#
# ## Autoencoder vs PCA
# PCA is the best possible **linear** autoencoder: project onto the $k$ directions of largest variance, then map
# back. It is computed in closed form, with no training. With the same bottleneck, how do they compare? Below also a
# convolutional autoencoder with a 16-number code.

# %%
# NBVAL_CHECK_OUTPUT
conv16 = recipes.AE16.build(S).to(device)
print(f"convolutional autoencoder: {n_params(conv16):,} parameters, "
      f"a code of {conv16.latent_dim} numbers for 784 pixels")

# %%
history16 = train_autoencoder(conv16, recipes.AE16, title="convolutional autoencoder, 16-D code")

# %%
pca2, pca16 = PCA(2).fit(x_train), PCA(16).fit(x_train)
models = {"PCA, k=2": pca2, "MLP AE, k=2": ae2, "PCA, k=16": pca16, "conv AE, k=16": conv16}
with torch.no_grad():
    recon = {name: m(x_test).cpu().clamp(0, 1) for name, m in models.items()}
errors = {name: ae_loss(x_test, r).item() for name, r in recon.items()}
for name, err in errors.items():
    print(f"{name:14s} test L_AE = {err:6.2f}")
assert errors["MLP AE, k=2"] < errors["PCA, k=2"] and errors["conv AE, k=16"] < errors["PCA, k=16"]
show_rows({"input": x_test[:12], **{name: r[:12] for name, r in recon.items()}})
plt.show()

# %% [markdown]
# The nonlinear autoencoders rebuild the digits better than PCA from the same number of values: the curved
# "manifold" of digits is not a flat subspace.
#
# ### Exercise 1 — the loss
# Write $L_\text{AE}$ yourself for batches shaped `(n, 1, 28, 28)`: sum the squared error over the pixels of each
# image, then average over the images. Run the cell to check your answer; it gives a hint if it is not right yet.

# %%
def my_ae_loss(x, x_hat):
    # YOUR CODE HERE
    return None


exercises.check("ae_loss", my_ae_loss)
# exercises.solution("ae_loss")  # uncomment to see a reference answer

# %% [markdown]
# ### Exercise 2 — counting parameters
# The 2-D autoencoder's encoder is `Linear(784, 512)`, `Linear(512, 256)`, `Linear(256, 2)` (with ReLUs between).
# How many parameters (weights and biases) does it have? Work it out by hand, then compare with
# `sum(p.numel() for p in ae2.encoder.parameters())`.

# %%
my_count = None  # YOUR ANSWER HERE (a number)
exercises.check("ae_params", my_count)
# exercises.solution("ae_params")

# %% [markdown]
# ### Exercise 3 — a linear autoencoder
# Take away every nonlinearity (no ReLU, no sigmoid) and train with $L_\text{AE}$ and a $k$-number code. Its best
# reconstruction error is: **(a)** lower than PCA's with $k$ components, **(b)** the same as PCA's, or **(c)** always
# higher? Answer with a letter.

# %%
my_choice = None  # YOUR ANSWER HERE: "a", "b" or "c"
exercises.check("linear_ae", my_choice)
# exercises.solution("linear_ae")

# %% [markdown]
# ## Denoising autoencoder
#
# Instead of its own input, a denoising autoencoder sees a **corrupted** copy $\tilde{x} \sim \mathcal{M}_\mathcal{D}
# (\tilde{x} \mid x)$ and must still rebuild the clean $x$:
#
# $$L_\text{DAE}(\theta, \phi) = \frac{1}{n}\sum_{i=1}^{n} \big\lVert x^{(i)} - f_\theta(g_\phi(\tilde{x}^{(i)}))\big\rVert^2$$
#
# It cannot just copy pixels, so it must learn how strokes relate to each other. Our $\mathcal{M}_\mathcal{D}$ picks
# one corruption per image: Gaussian noise, masked pixels, a masked square, or a 2x / 4x loss of resolution.

# %%
corrupted = random_corruption(x_test[:12], generator=torch.Generator().manual_seed(0))
show_rows({"clean x": x_test[:12], "corrupted x~": corrupted})
plt.show()

# %% [markdown]
# ### Exercise 4 — masking noise
# Write one of these corruptions yourself: `my_mask(x, p)` returns a copy of `x` with each pixel set to 0 with
# probability `p`, independently. Leave `x` itself unchanged.

# %%
def my_mask(x, p):
    # YOUR CODE HERE
    return None


exercises.check("mask_pixels", my_mask)
# exercises.solution("mask_pixels")

# %% [markdown]
# ### Exercise 5 — one training step, written out
# So far `fit` did the update for you. Write one step of gradient descent on $L_\text{AE}$ yourself:
# `my_train_step(model, optimizer, x_in, x)` feeds `x_in` to the model (for a plain autoencoder `x_in` is `x`; for
# the denoising one below, the corrupted $\tilde{x}$), scores the output against the clean `x` with `ae_loss`, then
# clears the old gradients, backpropagates and takes the optimizer's step. Return the batch's loss as a number
# (`loss.item()`). The checker runs two of your steps on a small autoencoder and compares the weights with those the
# library's `fit` reaches from the same start.

# %%
def my_train_step(model, optimizer, x_in, x):
    # YOUR CODE HERE
    return None


exercises.check("ae_train_step", my_train_step)
# exercises.solution("ae_train_step")

# %% [markdown]
# Now train a convolutional autoencoder with $L_\text{DAE}$: the only change is the corruption inside the step. Once
# exercise 5 passes, the training below runs on **your** `my_train_step` (the title of the live plot says which); until
# then on the library's step. With a right answer, both give the same weights.

# %%
noise = torch.Generator().manual_seed(1)


def dae_step(model, batch):
    x, _ = batch
    x_tilde = random_corruption(x, generator=noise)  # x~ ~ M_D(x~ | x)
    return ae_loss(x, model(x_tilde))  # compare with the CLEAN x


def my_dae_train_step(model, optimizer, batch):  # exercise 5's step, fed the corrupted x~
    x, _ = batch
    return my_train_step(model, optimizer, random_corruption(x, generator=noise), x)


dae = recipes.DAE.build(S).to(device)
if exercises.passed("ae_train_step", my_train_step):
    history_dae = train_autoencoder(dae, recipes.DAE, train_step=my_dae_train_step,
                                    title="denoising autoencoder (your training step)")
else:
    history_dae = train_autoencoder(dae, recipes.DAE, step=dae_step, title="denoising autoencoder")

# %% [markdown]
# ## Applications: denoising, inpainting, upsampling
# The same network, four jobs, on the whole test split. For each, the error to the clean image before (the corrupted
# input) and after (the network's output). Look at the inpainted squares and the 4x upsampled digits.

# %%
gen = torch.Generator().manual_seed(2)
tasks = {
    "denoise": add_gaussian_noise(x_test, 0.5, gen),
    "inpaint": mask_square(x_test, 12, gen),
    "upsample 2x": downsample(x_test, 2),
    "upsample 4x": downsample(x_test, 4),
}
rows, restored_error = {"clean": x_test[:10]}, {}
with torch.no_grad():
    for task, x_tilde in tasks.items():
        out = dae(x_tilde).cpu()
        rows[f"{task}: input"], rows[f"{task}: output"] = x_tilde[:10], out[:10]
        restored_error[task] = (ae_loss(x_test, x_tilde).item(), ae_loss(x_test, out).item())
show_rows(rows)
plt.show()
for task, (before, after) in restored_error.items():
    print(f"{task:12s} L_AE corrupted {before:6.2f} -> restored {after:6.2f}")
assert all(after < before for before, after in restored_error.values())

# %% [markdown]
# ## Reusing the encoder: learning from 100 labels
# Often only a few images are labelled. The encoder was trained on all images *without* labels; its 16-number codes
# can feed a small classifier that sees only **100 labelled digits**. Compare with the same classifier on the raw
# 784 pixels of the same 100 digits (both scored on the test set).

# %%
few = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(3))[:100]
with torch.no_grad():
    codes_train, codes_test = conv16.encode(x_train).cpu(), conv16.encode(x_test).cpu()
acc_codes = accuracy(fit_linear_classifier(codes_train[few], y_train[few]), codes_test, y_test)
acc_pixels = accuracy(fit_linear_classifier(x_train[few], y_train[few]), x_test, y_test)
print(f"100 labels: classifier on 16-D codes {acc_codes:.1%}, on 784 raw pixels {acc_pixels:.1%} (chance: 10%)")
assert acc_codes > acc_pixels - 0.03, "16 learned numbers should classify about as well as 784 pixels"
if PROFILE != "smoke":  # a fully trained encoder (cpu or gpu profile, or the bundled weights)
    assert acc_codes > acc_pixels, "after a full training the 16-D codes should beat the raw pixels"

# %% [markdown]
# Read the two numbers the cell printed: 16 learned numbers classify about as well as 784 pixels, and, after a full
# training (the `cpu` or `gpu` profile, or the bundled weights), better; the cell asserts both. The unlabelled images
# taught the encoder what varies between digits. In practice the encoder also serves as the starting point
# (initialization) of a supervised network that is then fine-tuned.
#
# ## The latent explorer
# Move the two sliders to choose a code $z = (z_1, z_2)$ and see what the decoder draws. Compare with the latent map
# above: which regions give which digits, and what lives in the gaps? The slider ranges cover the codes of the test
# digits.

# %%
explorer = LatentExplorer(ae2.decode, latent_dim=2, value_range=(float(z_test.min()), float(z_test.max())))
before = explorer.image.value
explorer.set_latent(z_test[0])  # start from the code of the first test digit
assert explorer.image.value != before, "moving the sliders must change the image"
explorer

# %% [markdown]
# ## How good is it? An autoencoder as a generator
# Reconstruction is one thing; *generating* is another. A plain autoencoder has no rule for picking a code, so the
# most natural try is to draw codes from a Gaussian fitted to the codes of the training digits, and decode them.
#
# To score the result, the course uses a small digit classifier (bundled, trained by `python -m
# course_lib.tools.train_classifier`): the **Frechet distance** compares the statistics of its features on generated
# images with those on real digits. Lower is better. The number is printed between two reference points: held-out
# real digits (the best possible) and uniform noise (the worst).

# %%
with torch.no_grad():
    code_prior = fit_code_gaussian(codes_train)  # mean and covariance of the 16-D training codes
    torch.manual_seed(4)
    samples = conv16.decode(code_prior.sample((N_SCORED[PROFILE],))).cpu()
show_images(samples[:32], nrow=16, title="decoded random codes (conv AE, k=16)")
plt.show()
report = quality_report(samples, name="conv AE, random codes")
print(f"test reconstruction L_AE of the same model: {errors['conv AE, k=16']:.2f}")
assert report["fd"] > 2 * report["fd_real"], "random codes should decode to images far less real than real digits"

# %% [markdown]
# Look at the samples: how many are clear digits, how many smudges or hybrids? A random code can land in a gap
# between the clusters, where the decoder was never trained. The Frechet distance sums it up in one number: the
# cell asserts that it is more than twice that of held-out real digits.
#
# ## What's next
# - A plain autoencoder compresses well (it beat PCA above) but leaves **gaps** in its latent space (the crowded
#   cells above), and its random codes score far from real digits: a good compressor, a poor generator.
# - **Lesson 2 (VAE)** makes the encoder output a *distribution* and pulls all codes towards $\mathcal{N}(0, I)$, so
#   that sampling $z \sim \mathcal{N}(0, I)$ gives new digits; lesson 2 measures how well.
