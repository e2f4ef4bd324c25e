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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/image-generation-course/image-generation-course/blob/main/notebooks/05_conditional_models.ipynb)

# %% [markdown]
# # Lesson 5 — Conditional models: CGAN, pix2pix, CVAE and classifier-free guidance
#
# Every generator so far made *a* digit: which one was up to chance. A **conditional** model samples from
# $p(x \mid y)$ instead of $p(x)$: we say what we want, $y$, and it draws an $x$ that fits. The recipe is the same
# for every family: **give the condition to every network that needs it**.
#
# First, where conditional models sit: generative vs discriminative models, and Bayes' rule
# $p(x \mid y) = p(y \mid x)\, p(x) / p(y)$, which comes back at the end as guidance. Then:
#
# 1. **Labels as one-hot vectors**, the usual way to hand a class to a network.
# 2. **Conditional GAN** (Mirza & Osindero 2014): the label goes into the generator *and* the discriminator.
# 3. **pix2pix** (Isola et al. 2016): the condition is a whole image; the generator translates it, and the
#    discriminator judges (input, output) pairs.
# 4. **Conditional VAE**: the label goes into encoder and decoder, so the latent code no longer has to hold the
#    class, only the *style*.
# 5. **Classifier guidance** (Bayes' rule on a diffusion model's scores) and **classifier-free guidance** (Ho &
#    Salimans 2022): lesson 4's diffusion model with a label, and a dial $w$ that trades diversity for fidelity to the
#    label.
#
# Every model is scored with the bundled digit classifier: **class accuracy** (does the sample show the digit we
# asked for?) and the Frechet distance (do the samples look like real digits?).

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
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown

from course_lib import exercises, recipes
from course_lib.classifiers import accuracy, fit_linear_classifier
from course_lib.conditional import (GuidedModel, cfg_step, class_grid_labels, cvae_step, drop_labels, guided_eps,
                                    one_hot, style_share)
from course_lib.data import load_dataset, make_loader
from course_lib.diffusion import DiffusionSchedule, ddim_sample
from course_lib.diffusion_theory import GaussianMixture2D, classifier_guided_eps
from course_lib.fastpath import fast_autocast, prepare_model
from course_lib.gans import GANGuard, GANStep
from course_lib.lesson import start_lesson
from course_lib.liveplot import LivePlot
from course_lib.metrics import class_accuracy, fd_to_training_digits
from course_lib.nets import n_params
from course_lib.pix2pix import Pix2PixStep, hide_lower_half, sharpness
from course_lib.plotting import latent_scatter, markdown_table, show_images, show_rows
from course_lib.pretrained import load_into, train_or_load
from course_lib.training import EMA, CosineSchedule, fit
from course_lib.widgets import FrameScrubber, LatentExplorer

USE_PRETRAINED = False  # True (or COURSE_PRETRAINED=1 in the environment): load bundled weights instead of training
PRESENTER = False  # True: larger fonts, figures and widgets, for a projector
PROFILE, S, device = start_lesson("conditional", pretrained=USE_PRETRAINED, presenter=PRESENTER)
train = load_dataset("mnist", "train", n=S.n_train)
test_x, test_y = load_dataset("mnist", "test", n=S.n_test).tensors
scores = {}  # what each model achieves, for the table at the end

# %% [markdown]
# ## Generative, discriminative and conditional models
#
# Three kinds of model, by the distribution they learn:
#
# - a **discriminative** model learns $p(y \mid x)$: for each image, the labels compete for probability mass. It must
#   give every input a label distribution, even an input that looks like no digit at all;
# - a **generative** model learns $p(x)$: all images compete with each other, so an implausible image can be given
#   almost no probability;
# - a **conditional generative** model learns $p(x \mid y)$: each label starts its own competition among images.
#
# **Bayes' rule** ties the three together:
#
# $$\underbrace{p(x \mid y)}_{\text{conditional generative}} = \frac{\overbrace{p(y \mid x)}^{\text{discriminative}}
#   \;\overbrace{p(x)}^{\text{generative}}}{p(y)}.$$
#
# A conditional generator can be built from a classifier and an unconditional generator: that is where section 5
# comes back to this rule. The CGAN, pix2pix and the CVAE below learn $p(x \mid y)$ directly.
#
# In the plane everything can be computed: a mixture of eight Gaussians on a ring, one class per Gaussian. Below:
# $p(x)$, the classifier $p(y = 2 \mid x)$, and $p(x \mid y = 2)$, and a check of Bayes' rule at random points.

# %%
toy = GaussianMixture2D.ring()
ticks = torch.linspace(-3, 3, 121)
plane = torch.cartesian_prod(ticks, ticks).flip(1)  # (x, y) pairs, row by row
two = torch.full((len(plane),), 2)
maps = {"p(x): generative": toy.log_prob(plane).exp(),
        "p(y = 2 | x): discriminative": toy.class_log_prob(plane)[:, 2].exp(),
        "p(x | y = 2): conditional generative": toy.log_prob(plane, y=two).exp()}
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
for ax, (name, values) in zip(axes, maps.items()):
    ax.imshow(values.view(121, 121).flip(0), extent=(-3, 3, -3, 3), cmap="viridis")
    ax.set_title(name)
plt.show()
points = torch.randn(1000, 2, dtype=torch.float64) * 1.5  # float64: far from the ring log p(x) is a large number
y_points = torch.randint(0, 8, (1000,))
log_p_y_given_x = toy.class_log_prob(points).gather(1, y_points[:, None]).squeeze(1)
bayes = log_p_y_given_x + toy.log_prob(points) - toy.weights.double()[y_points].log()  # log p(y|x) p(x) / p(y)
gap = (toy.log_prob(points, y=y_points) - bayes).abs().max().item()
far = torch.tensor([[2.8, 2.8]])  # far from every Gaussian: an input like none of the data
print(f"{len(toy.centres)} Gaussians, one class each. Bayes' rule: largest gap in log p(x | y) {gap:.1e}. "
      f"At (2.8, 2.8): p(x) = "
      f"{toy.log_prob(far).exp().item():.1e}, yet the classifier's largest p(y | x) = "
      f"{toy.class_log_prob(far).exp().max().item():.2f}")
assert gap < 1e-9 and toy.log_prob(far).exp() < 1e-6 and toy.class_log_prob(far).exp().max() > 0.5

# %% [markdown]
# ## 1. Labels as one-hot vectors
#
# A network takes numbers, so the label must become numbers. Feeding the digit itself ($y = 3$) would tell the
# network that a 3 is "between" a 2 and a 4, and twice a 1.5, which means nothing for classes. The **one-hot**
# vector gives every class its own position instead: $y = 3$ becomes $(0, 0, 0, 1, 0, 0, 0, 0, 0, 0)$. All classes
# are equally far apart, and the first layer's weights for position $k$ become "what class $k$ adds".

# %%
y = torch.tensor([3, 0, 9])
code = one_hot(y)
print(code)
assert torch.equal(code.sum(dim=1), torch.ones(3)) and torch.equal(code.argmax(dim=1), y)

# %% [markdown]
# **Exercise 1.** Write `one_hot` yourself: labels of shape (B,) in, a (B, 10) float tensor out.

# %%
def my_one_hot(y):
    # YOUR CODE HERE
    return None


exercises.check("one_hot", my_one_hot)
# exercises.solution("one_hot")  # uncomment to see a reference answer

# %% [markdown]
# ## 2. Conditional GAN
#
# Lesson 3's game, with the label $y$ given to both players:
#
# $$\min_G \max_D V(D, G) = \mathbb{E}_{x, y \sim p_\text{data}}[\log D(x, y)]
#   + \mathbb{E}_{z \sim p(z),\, y}[\log(1 - D(G(z, y), y))]$$
#
# - $G(z, y)$: the noise $z$ (100 numbers) and the one-hot $y$ (10 numbers) side by side, 110 inputs.
# - $D(x, y)$: the image, plus the one-hot label as 10 extra *channels* (constant planes; the one for class $y$
#   is all ones). Why must $D$ see the label? A $D$ that only asks "is it a real digit?" would happily accept a
#   perfect 7 that was asked to be a 3: $G$ could ignore $y$. With the label, $D$ asks "is it a real **3**?".
#
# Everything else is lesson 3's DCGAN: the same loss, optimizer and augmentation (`recipes.CGAN`, printed below).

# %%
torch.manual_seed(0)
R = recipes.CGAN
cgan = prepare_model(R.build(S), device)  # on the device, in the memory layout that is fastest there
print(R)
print(f"generator: {n_params(cgan.generator):,} parameters; discriminator: {n_params(cgan.discriminator):,}")
print("first layer of G reads", cgan.generator.project[0].in_features, "numbers; first layer of D reads",
      cgan.discriminator.net[0].in_channels, "channels")
assert cgan.generator.project[0].in_features == 100 + 10 and cgan.discriminator.net[0].in_channels == 1 + 10

# %% [markdown]
# Train it. The live grid shows four fixed noise vectors (rows), each asked for every digit (columns).

# %%
epochs, batch_size = S.for_model("cgan")
grid_z = cgan.sample_z(4, torch.Generator().manual_seed(1)).repeat_interleave(10, dim=0)  # each z 10 times
grid_y = class_grid_labels(4).to(device)  # 0..9 for each z
step = GANStep(cgan, generator=torch.Generator().manual_seed(0), **recipes.CGAN.step_args())
live = LivePlot(keys=["d_loss", "g_loss", "d_real", "d_fake"], images=lambda m: m.generator(grid_z, grid_y),
                title="conditional DCGAN", nrow=10)
history = train_or_load(recipes.CGAN.name, lambda: fit(cgan, make_loader(train, batch_size), step, None, epochs,
                                                      device=device, callbacks=[live, GANGuard()]),
                        show=live, gan=cgan)
scores["CGAN"] = {"parameters": n_params(cgan.generator), "training s": history.seconds}
print(f"{history.epoch} epochs in {history.seconds:.0f} s")
assert history.stopped is None

# %% [markdown]
# One row per noise vector $z$, one column per label. Look along a row: the label decides the digit, and $z$
# decides much of the rest (thickness, slant, size), shared along the row. `style_share` puts a number on the
# thickness part: the share of the variation in ink that the rows explain once each digit's own ink level is taken
# out (about 0.1 if rows shared nothing, 1 if $z$ alone set the thickness).

# %%
z = cgan.sample_z(6, torch.Generator().manual_seed(3)).repeat_interleave(10, dim=0)
grid = cgan.decode(z, class_grid_labels(6)).cpu()
show_images(grid, nrow=10, title="CGAN: rows = z, columns = the label asked for")
plt.show()
print(f"share of the ink variation explained by z (the rows): {style_share(grid, n_rows=6):.2f}")
if PROFILE != "smoke":
    assert style_share(grid, n_rows=6) > 0.2  # at least twice what rows that share nothing would explain

# %% [markdown]
# Does it make the digit it was asked for? The classifier reads every sample; the class accuracy is the share
# read as the digit asked for (10% would be chance).

# %%
def score(name, images, labels, seconds_per_100):
    """Class accuracy and Frechet distance of samples, kept for the final table."""
    scores[name].update({"class accuracy": class_accuracy(images, labels), "Frechet distance":
                         fd_to_training_digits(images), "s / 100 samples": seconds_per_100})
    print(f"{name}: class accuracy {scores[name]['class accuracy']:.1%}, "
          f"Frechet distance {scores[name]['Frechet distance']:.0f}")


labels = torch.arange(S.n_sampled) % 10
start = time.perf_counter()
samples = cgan.sample(S.n_sampled, torch.Generator().manual_seed(2), labels=labels).cpu()
score("CGAN", samples, labels, (time.perf_counter() - start) * 100 / S.n_sampled)
if PROFILE != "smoke":  # a few smoke steps are far too few to draw the right digit
    assert scores["CGAN"]["class accuracy"] >= 0.9

# %% [markdown]
# ## 3. pix2pix: the condition is an image
#
# pix2pix is a conditional GAN whose condition $x$ is a picture and whose output $y$ is another picture:
# line drawing to photo, map to aerial view. We build a task from the digits themselves: **hide the lower half and
# ask for the whole digit**. The pairs are (top half, full digit).
#
# - **Generator**: a U-Net (encoder, decoder, and skip connections that pass the input's details straight across).
#   It gets no noise $z$; the only randomness is dropout.
# - **Discriminator**: a *PatchGAN* that sees the **pair** $(x, y)$ stacked as two channels, and gives one
#   real/fake opinion per 18 x 18 patch.
# - **Loss**: the conditional GAN's, plus $\lambda$ times the L1 distance to the true completion:
#
# $$G^* = \arg\min_G \max_D \; \mathbb{E}_{x,y}[\log D(x, y)] + \mathbb{E}_x[\log(1 - D(x, G(x)))]
#   + \lambda\, \mathbb{E}_{x,y}\|y - G(x)\|_1, \qquad \lambda = 100$$

# %%
pairs = test_x[:10]
show_rows({"input x": hide_lower_half(pairs), "target y": pairs})
plt.show()

# %% [markdown]
# The discriminator sees both images of the pair: it judges whether the output fits *this* input. Change only
# the input, and its opinion changes.

# %%
torch.manual_seed(0)
p2p = recipes.PIX2PIX.build(S).to(device)
x_in, y_true = hide_lower_half(pairs[:4]).to(device), pairs[:4].to(device)
with torch.no_grad():
    p2p.eval()
    same = p2p.discriminator(x_in, y_true)
    other_input = p2p.discriminator(hide_lower_half(test_x[4:8]).to(device), y_true)
print(f"D's patch map: {tuple(same.shape)}; mean change when only the input changes: "
      f"{(same - other_input).abs().mean():.3f}")
assert not torch.allclose(same, other_input)

# %% [markdown]
# Train the same generator twice, for the same number of epochs: once with **L1 alone**, once with the full
# pix2pix loss. The live grid completes the same eight held-out digits. (Adam's learning rate, printed below, is
# higher than pix2pix's 2e-4: with 4,000 digits and a few minutes, the faster rate reached better completions.)

# %%
epochs, batch_size = S.for_model("pix2pix")
shown = hide_lower_half(test_x[:8])
completers = {}
for name, R in [("L1 only", recipes.PIX2PIX_L1), ("pix2pix", recipes.PIX2PIX)]:
    print(R)
    torch.manual_seed(0)
    model = prepare_model(R.build(S), device)
    keys = ["l1", "d_real", "d_fake"] if R.adversarial else ["l1"]
    step = Pix2PixStep(model, **R.step_args())
    live = LivePlot(keys=keys, images=lambda m: m.translate(shown), title=name)
    history = train_or_load(R.name, lambda: fit(model, make_loader(train, batch_size), step, None, epochs,
                                                device=device, callbacks=[live]), show=live, model=model)
    completers[name] = model
    scores[name] = {"parameters": n_params(model.generator), "training s": history.seconds}
    assert history.stopped is None

# %% [markdown]
# Compare the completions of held-out digits. Look at the lower halves: where several endings fit the top,
# L1 alone draws a faint average of them; the discriminator rejects faint strokes (no real digit has them), so
# pix2pix commits to one ending.

# %%
inputs = hide_lower_half(test_x[10:22])
show_rows({"input": inputs, "L1 only": completers["L1 only"].translate(inputs).cpu(),
           "pix2pix": completers["pix2pix"].translate(inputs).cpu(), "truth": test_x[10:22]})
plt.show()

# %% [markdown]
# Now in numbers, on all held-out digits. *L1 error*: mean distance to the true completion (what the L1-only
# model optimizes). *Sharpness*: the variance of the image's Laplacian, a classic focus measure (blur lowers it).
# *Class accuracy*: is the completed digit the digit it was? *Frechet distance*: do completions look like digits?
# The adversarial term reliably makes the completions sharper (the cell checks it). Whether they also come out
# closer to real digits on the Frechet distance depends on the run at this training length (the seed, even the
# CPU, which rounds its sums in its own order), so the cell prints which model is ahead there instead of asserting it.

# %%
print(f"sharpness of the real digits: {sharpness(test_x):.3f}")
for name, model in completers.items():
    start = time.perf_counter()
    out = model.translate(hide_lower_half(test_x)).cpu()
    seconds_per_100 = (time.perf_counter() - start) * 100 / len(test_x)
    scores[name].update({"L1 error": (out - test_x).abs().mean().item(), "sharpness": sharpness(out)})
    print(f"{name}: L1 error {scores[name]['L1 error']:.4f}, sharpness {scores[name]['sharpness']:.3f}")
    score(name, out, test_y, seconds_per_100)
if PROFILE != "smoke":
    assert scores["pix2pix"]["sharpness"] > scores["L1 only"]["sharpness"]  # the adversarial term sharpens
    gap = scores["L1 only"]["Frechet distance"] - scores["pix2pix"]["Frechet distance"]
    print(f"on the Frechet distance pix2pix is {'ahead of' if gap > 0 else 'behind'} L1 only by {abs(gap):.0f}")

# %% [markdown]
# **Exercise 2.** Write pix2pix's generator loss: the non-saturating adversarial term $-\log D(x, G(x))$
# averaged over all patches, plus $\lambda$ times the mean absolute error. `d_fake` holds $D(x, G(x))$ as
# probabilities.

# %%
def my_pix2pix_g_loss(d_fake, fake, target, l1_weight=100.0):
    # YOUR CODE HERE
    return None


exercises.check("pix2pix_g_loss", my_pix2pix_g_loss)
# exercises.solution("pix2pix_g_loss")

# %% [markdown]
# ## 4. Conditional VAE
#
# Give the label to the VAE's encoder and decoder, $q_\phi(z \mid x, y)$ and $p_\theta(x \mid z, y)$, and
# condition the ELBO on it:
#
# $$\mathcal{L}_\text{CVAE} = -\mathbb{E}_{z \sim q_\phi(z \mid x, y)}[\log p_\theta(x \mid z, y)]
#   + D_\text{KL}(q_\phi(z \mid x, y)\,\|\,\mathcal{N}(0, I))$$
#
# The decoder is *told* the class, so nothing rewards $z$ for storing it; the KL term even punishes every bit
# that $z$ stores without need. What is left for $z$ is how the digit is drawn. We compare a VAE and a CVAE, both
# with a 2-number code so we can look at it. The VAE is lesson 2's 2-D VAE (`recipes.VAE2`), loaded from the course's
# bundle as lesson 2's `cpu` Run-All trained it (20 epochs), rather than trained a second time. The CVAE is the same
# network with the label added to its encoder and decoder (`recipes.CVAE`: the same optimizer and schedule), trained
# here for longer, as it needs to draw every digit well (the README lists the shorter runs that drew fewer right). In
# the course's runs a VAE trained longer put *more* class information into its code, not less, so the shorter VAE
# does not flatter the comparison below of how much of the class each code holds.

# %%
epochs, batch_size = S.for_model("cvae")
loader = make_loader(train, batch_size)
vae = recipes.VAE2.build(S).to(device)
vae_history = load_into(recipes.VAE2.name, model=vae)  # lesson 2's VAE (its network has no profile-dependent size)
print(f"VAE: lesson 2's, loaded from the bundle ({vae_history.epoch} epochs)")
torch.manual_seed(0)
R = recipes.CVAE
cvae = R.build(S).to(device)
optimizer = torch.optim.Adam(cvae.parameters(), lr=R.lr)
live = LivePlot(keys=["loss", "kl"], title="CVAE")
callbacks = [CosineSchedule(optimizer, epochs), live]
cvae_history = train_or_load(R.name, lambda: fit(cvae, loader, cvae_step(beta=R.beta), optimizer, epochs, device=device,
                                                 callbacks=callbacks), show=live, model=cvae)
scores["CVAE"] = {"parameters": n_params(cvae), "training s": cvae_history.seconds}
print(f"last epoch's loss (negative ELBO, nats): VAE {vae_history.epochs['loss'][-1]:.1f} after "
      f"{vae_history.epoch} epochs, CVAE {cvae_history.epochs['loss'][-1]:.1f} after {cvae_history.epoch}")

# %% [markdown]
# The two latent maps, the held-out digits' codes coloured by their label. The VAE sorts the digits into
# regions, since its code must say which digit it is. In the CVAE's map the colours are mixed: where a code
# sits says how the digit is drawn, not which digit it is.

# %%
with torch.no_grad():
    vae.eval(), cvae.eval()
    z_vae = vae.encode(test_x)[0].cpu()
    z_cvae = cvae.encode(test_x, test_y)[0].cpu()
fig, axes = plt.subplots(1, 2, figsize=(12, 5))
latent_scatter(z_vae, test_y, ax=axes[0], title="VAE: q(z | x)")
latent_scatter(z_cvae, test_y, ax=axes[1], title="CVAE: q(z | x, y)")
fig.tight_layout()
plt.show()

# %% [markdown]
# How much class information is left in each code? Fit a linear classifier on the codes of half the held-out
# digits and test it on the other half (10% is chance).

# %%
half = len(test_y) // 2
knows = {}
for name, z in [("VAE", z_vae), ("CVAE", z_cvae)]:
    classifier = fit_linear_classifier(z[:half], test_y[:half])
    knows[name] = accuracy(classifier, z[half:], test_y[half:])
    print(f"{name}: the label read off the 2-number code with {knows[name]:.0%} accuracy")
if PROFILE != "smoke":  # a few smoke epochs leave both codes nearly untrained
    assert knows["CVAE"] < knows["VAE"] - 0.2  # the class has (mostly) left the CVAE's latent space

# %% [markdown]
# The same codes $z$ (rows) decoded with each of the ten labels (columns): one handwriting style, written as every
# digit.

# %%
z = torch.randn(6, 2, generator=torch.Generator().manual_seed(4)).repeat_interleave(10, dim=0)
with torch.no_grad():
    style_grid = cvae.decode(z, class_grid_labels(6)).cpu()
show_images(style_grid, nrow=10, title="CVAE: rows = z (style), columns = the label")
plt.show()
print(f"share of the ink variation explained by z (the rows): {style_share(style_grid, n_rows=6):.2f}")
if PROFILE != "smoke":
    assert style_share(style_grid, n_rows=6) > 0.2

# %% [markdown]
# The latent explorer, now with a row of buttons for the label: pick a style with the sliders, then press the
# digits one by one. Then keep the digit and move a slider to see what each latent direction does to the style.

# %%
explorer = LatentExplorer(cvae.decode, latent_dim=2, classes=10, start=torch.tensor([0.5, -0.5]))
explorer

# %% [markdown]
# Sample every digit from the prior and score it as the CGAN was. A 2-number code leaves the decoder unsure about
# some styles, and where it is unsure it draws a blurry blob (in the runs listed in the README, most misses were
# read as 8s): expect about 9 in 10 right, fewer than the CGAN.

# %%
start = time.perf_counter()
samples = cvae.sample(S.n_sampled, torch.Generator().manual_seed(2), labels=labels).cpu()
score("CVAE", samples, labels, (time.perf_counter() - start) * 100 / S.n_sampled)
if PROFILE != "smoke":
    assert 0.85 <= scores["CVAE"]["class accuracy"] < scores["CGAN"]["class accuracy"]

# %% [markdown]
# ## 5. Classifier-free guidance
#
# ### Classifier guidance: Bayes' rule on scores
# Lesson 4 read the noise predictor as a scaled **score**: $\epsilon_\theta(x_t, t) \approx -\sqrt{1 - \bar\alpha_t}\,
# \nabla_{x_t} \log p(x_t)$. Take the logarithm of Bayes' rule for the noisy images and its gradient in $x_t$;
# $p(y)$ does not depend on $x_t$ and drops out:
#
# $$\nabla_{x_t} \log p(x_t \mid y) = \nabla_{x_t} \log p(x_t) + \nabla_{x_t} \log p(y \mid x_t).$$
#
# So an unconditional diffusion model becomes a conditional one by adding a classifier's gradient to its score.
# **Classifier guidance** (Dhariwal & Nichol 2021) does this with a classifier $p_\phi(y \mid x_t)$ trained on noisy
# images, and a scale $s$ (in the noise's terms, where the score is multiplied by $-\sqrt{1 - \bar\alpha_t}$):
#
# $$\tilde\epsilon = \epsilon_\theta(x_t, t) - s\,\sqrt{1 - \bar\alpha_t}\; \nabla_{x_t} \log p_\phi(y \mid x_t).$$
#
# $s = 1$ samples $p(x \mid y)$; $s > 1$ a distribution more decided about $y$. On the ring the best noise
# predictions are known exactly: with the exact classifier's gradient (autograd of $\log p(y \mid x_t)$), classifier
# guidance at $s = 1$ turns the best unconditional prediction into the best conditional one.

# %%
schedule = DiffusionSchedule(T=recipes.CFG.T, kind=recipes.CFG.schedule)
t = 300
abar = schedule.alpha_bars[t].item()
x0_toy, y_toy = toy.sample(2000, torch.Generator().manual_seed(1))
x_t = (abar**0.5 * x0_toy + (1 - abar) ** 0.5 * torch.randn(2000, 2, generator=torch.Generator().manual_seed(2)))
x_t.requires_grad_()
grad_log_p_y = torch.autograd.grad(toy.class_log_prob(x_t, abar).gather(1, y_toy[:, None]).sum(), x_t)[0]
x_t = x_t.detach()
eps_u, eps_c = toy.best_eps(x_t, abar), toy.best_eps(x_t, abar, y=y_toy)  # E[eps | x_t] and E[eps | x_t, y]
gap = (classifier_guided_eps(eps_u, grad_log_p_y, abar, scale=1.0) - eps_c).abs().max().item()
print(f"t = {t}: unconditional prediction + the classifier's gradient vs the conditional prediction: largest gap "
      f"{gap:.1e}")
assert gap < 1e-4

# %% [markdown]
# **Exercise 3.** Write classifier guidance's noise prediction: `my_classifier_guided(eps, grad_log_p_y, abar_t, s)`.

# %%
def my_classifier_guided(eps, grad_log_p_y, abar_t, s):
    # YOUR CODE HERE
    return None


exercises.check("classifier_guidance", my_classifier_guided)
# exercises.solution("classifier_guidance")  # uncomment to see a reference answer

# %% [markdown]
# ### Without a classifier
#
# A classifier on noisy images is one more network to train. **Classifier-free guidance** (Ho & Salimans 2022) gets
# the same effect from the diffusion model alone. Lesson 4's U-Net learns the noise $\epsilon_\theta(x_t, t)$. Give it
# the label as well (a learned vector per class, added to the time embedding) and it learns
# $\epsilon_\theta(x_t, t, y)$. **Label dropout**: in training, each label is replaced by an extra "empty" label
# $\emptyset$ with probability 0.1, so the *same* network also learns the unconditional
# $\epsilon_\theta(x_t, t, \emptyset)$. At sampling time, guidance amplifies the difference between the two:
#
# $$\tilde\epsilon = \epsilon_\theta(x_t, t, \emptyset) + w\,\big(\epsilon_\theta(x_t, t, y)
#   - \epsilon_\theta(x_t, t, \emptyset)\big)$$
#
# $w = 0$ is the unconditional model, $w = 1$ the conditional one, and $w > 1$ pushes further in the direction that
# makes the image "more $y$". No separate classifier is needed (hence the name).
#
# **Why it is guidance.** By Bayes' rule on scores, the difference of the two predictions is a classifier's gradient
# in disguise: $\epsilon_\theta(x_t, t, y) - \epsilon_\theta(x_t, t, \emptyset) \approx -\sqrt{1 - \bar\alpha_t}\,
# \nabla_{x_t} \log p(y \mid x_t)$, the classifier implied by $p(y \mid x_t) \propto p(x_t \mid y) / p(x_t)$. So
# classifier-free guidance with scale $w$ is classifier guidance with $s = w$, using that implied classifier.
#
# **This lesson's $w$ and the paper's.** Ho & Salimans write $\tilde\epsilon = (1 + w')\,\epsilon_\theta(x_t, t, y) -
# w'\,\epsilon_\theta(x_t, t, \emptyset)$. Expanding the formula above gives $w\,\epsilon_\theta(x_t, t, y) - (w - 1)\,
# \epsilon_\theta(x_t, t, \emptyset)$: the same with $w = 1 + w'$. Their $w' = 0$ is our $w = 1$, the plain
# conditional model; a guidance strength they report as $w'$ is our $w' + 1$. Both statements checked on the ring:

# %%
for w in (0.0, 1.0, 3.0):
    implied = classifier_guided_eps(eps_u, grad_log_p_y, abar, scale=w)
    assert (guided_eps(eps_u, eps_c, w) - implied).abs().max() < 1e-4
w_paper = 0.5
paper = (1 + w_paper) * eps_c - w_paper * eps_u  # Ho & Salimans' form
print(f"guidance at w = 0, 1, 3 equals classifier guidance with s = w; the paper's w' = {w_paper:g} is this lesson's "
      f"w = {1 + w_paper:g}: largest gap {(guided_eps(eps_u, eps_c, 1 + w_paper) - paper).abs().max():.1e}")
assert torch.allclose(guided_eps(eps_u, eps_c, 1 + w_paper), paper, atol=1e-5)

# %% [markdown]
# **Exercise 4.** Write the guided noise prediction from the two predictions and $w$.

# %%
def my_guide(eps_uncond, eps_cond, w):
    # YOUR CODE HERE
    return None


exercises.check("guidance", my_guide)
# exercises.solution("guidance")  # uncomment to see a reference answer

# %% [markdown]
# **Exercise 5.** Ho & Salimans write $(1 + w')\,\epsilon_\theta(x_t, t, y) - w'\,\epsilon_\theta(x_t, t, \emptyset)$.
# Which $w$ of this lesson's formula gives their $w' = 2$?

# %%
my_answer = ...  # a number
exercises.check("paper_w", my_answer)

# %% [markdown]
# Label dropout in numbers: the share of labels replaced by the empty label (index 10) in 10,000 draws.

# %%
y = torch.arange(10000) % 10
dropped = drop_labels(y, p=0.1, generator=torch.Generator().manual_seed(0))
print(f"labels replaced by the empty label (10): {(dropped == 10).float().mean():.1%}")
assert 0.09 < (dropped == 10).float().mean() < 0.11

# %% [markdown]
# Train it: Algorithm 1 with label dropout, and, as in lesson 4, the bfloat16 fast path where the CPU has it, the EMA
# of the weights and **Min-SNR weighting**: each image's error is multiplied by $\min(\mathrm{SNR}(t), 5) /
# \mathrm{SNR}(t)$, where $\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)$, so nearly clean images count less. On
# this CPU budget it made the difference between blobs and digits for the guided model (the README's results list
# the runs with and without it).
#
# This U-Net is lesson 4's plus one learned vector per label, so in the `cpu` profile it does not start from
# random weights: `recipes.CFG` copies in lesson 4's trained U-Net (the course's bundled copy) and only the label
# embedding starts random. It already knows how to denoise digits; what it learns here is to listen to the label,
# which takes fewer epochs than lesson 4 trained (both printed below), with the learning rate falling along a half
# cosine to 0, as for the CVAE above. (In the `smoke` and `gpu` profiles, whose widths differ from the bundle's, it
# trains from random weights.)

# %%
epochs, batch_size = S.for_model("cfg")
R = recipes.CFG
print(R)
schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
torch.manual_seed(0)
unet = prepare_model(R.build(S), device)  # moved to the device, in the memory layout that is fastest there
print("starts from lesson 4's trained U-Net" if recipes.fits_bundle(recipes.DDPM, S) else "starts from random weights")
optimizer = torch.optim.Adam(unet.parameters(), lr=R.lr)
ema = EMA(unet, decay=R.ema_decay)
step = cfg_step(schedule, p_uncond=R.p_uncond, generator=torch.Generator().manual_seed(0),
                min_snr_gamma=R.min_snr_gamma)
live = LivePlot(logy=True, title="noise-prediction loss")
history = train_or_load(R.name, lambda: fit(unet, make_loader(train, batch_size), step, optimizer, epochs,
                                            device=device, callbacks=[ema, CosineSchedule(optimizer, epochs), live]),
                        show=live, ema=ema.model)
losses = history.steps["loss"]
first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
scores["guided DDPM (w = 3)"] = {"parameters": n_params(unet), "training s": history.seconds}
print(f"{history.epoch} epochs, {len(losses)} steps in {history.seconds:.0f} s; loss {first:.3f} -> {last:.3f}")
if recipes.fits_bundle(recipes.DDPM, S):  # a trained denoiser from the first step: the loss starts low, and falls
    print(f"(lesson 4 trained the U-Net it started from {recipes.DDPM.settings(PROFILE).epochs} epochs)")
    assert last < first
else:
    assert last < (0.8 if PROFILE == "smoke" else 0.5) * first

# %% [markdown]
# **Exercise 6.** Write the guided noise prediction of the trained U-Net itself, the function a sampler calls at
# every step: `my_guided_eps(unet, x_t, t, y, w)` calls the U-Net with the labels `y` and with the empty label
# (`unet.num_classes`, here 10, the class that label dropout trained) and combines the two as in exercise 4. The
# checker compares it with the library's `GuidedModel` on a small U-Net; once it is right, the guidance slider below
# samples with your function.

# %%
def my_guided_eps(unet, x_t, t, y, w):
    # YOUR CODE HERE
    return None


exercises.check("guided_model", my_guided_eps)
# exercises.solution("guided_model")  # uncomment to see a reference answer

# %% [markdown]
# ### Guidance scale vs class accuracy vs diversity
# The same starting noise, sampled with DDIM (25 steps) at several guidance scales. As $w$ grows, class accuracy
# rises; past a point, the samples become exaggerated and alike, and the Frechet distance (which rewards variety
# as well as realism) gets worse again.

# %%
GUIDANCE = (0.0, 1.0, 2.0, 3.0, 5.0)
noise = torch.randn(S.n_sampled, 1, 28, 28, generator=torch.Generator().manual_seed(5)).to(device)
table = {}
for w in GUIDANCE:
    start = time.perf_counter()
    images, _ = ddim_sample(GuidedModel(ema.model, labels, w), schedule, noise=noise, steps=25)
    seconds = time.perf_counter() - start
    table[w] = {"class accuracy": class_accuracy(images.cpu(), labels), "Frechet distance":
                fd_to_training_digits(images.cpu()), "seconds": seconds}
    print(f"w = {w:3.1f}: class accuracy {table[w]['class accuracy']:6.1%}   Frechet distance "
          f"{table[w]['Frechet distance']:7.0f}   {seconds:.1f} s for {S.n_sampled} digits")
scores["guided DDPM (w = 3)"].update({"class accuracy": table[3.0]["class accuracy"],
                                      "Frechet distance": table[3.0]["Frechet distance"],
                                      "s / 100 samples": table[3.0]["seconds"] * 100 / S.n_sampled})
if PROFILE != "smoke":
    assert table[0.0]["class accuracy"] < 0.3  # w = 0 ignores the label: about chance
    assert min(table[w]["class accuracy"] for w in GUIDANCE if w >= 2) >= 0.95
    assert table[3.0]["class accuracy"] > table[1.0]["class accuracy"]
    best_w = min(GUIDANCE, key=lambda w: table[w]["Frechet distance"])
    assert 1.0 < best_w < max(GUIDANCE)  # realism improves with some guidance, then variety is lost

# %% [markdown]
# ### The guidance slider
# Two rows of the digits 0-9 from one fixed noise, at every guidance scale (computed once; the slider only
# swaps pictures). Start at $w = 0$, where the label is ignored and each column shows whatever digit the noise
# suggested, and slide up: when does every column show the digit asked for, and what happens to the strokes as
# $w$ keeps growing?

# %%
slider_w = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0]
few_labels = class_grid_labels(2)
few_noise = torch.randn(20, 1, 28, 28, generator=torch.Generator().manual_seed(6)).to(device)
yours = exercises.passed("guided_model", my_guided_eps)


def guided(w):  # what the sampler calls at scale w: your function once exercise 6 is right, else the library's
    if not yours:
        return GuidedModel(ema.model, few_labels, w)

    def eps_model(x, t):
        with fast_autocast(device):
            return my_guided_eps(ema.model, x, t, few_labels.to(device), w).float()

    return eps_model


frames = [ddim_sample(guided(w), schedule, noise=few_noise, steps=25)[0].cpu() for w in slider_w]
print("guided with", "your my_guided_eps" if yours else "the library's GuidedModel")
FrameScrubber(frames, [f"guidance w = {w}" for w in slider_w], nrow=10, description="w", values=slider_w, start=0)

# %% [markdown]
# **Exercise 7.** Guidance has a price. How many U-Net evaluations does guided DDIM with 50 steps need for one
# image (with $w$ not 0 or 1)?

# %%
my_answer = ...  # a whole number
exercises.check("guidance_cost", my_answer)

# %% [markdown]
# ## 6. Four conditional models side by side
# The same classifier and the same Frechet distance for all; pix2pix is scored on completing the held-out digits
# (its label is the true digit's), the others on sampling every digit equally often.

# %%
Markdown(markdown_table(scores))

# %% [markdown]
# ## Summary
# - A condition enters a network as numbers: a one-hot vector for a class, the image itself for pix2pix.
# - **CGAN**: the label goes to both players; a discriminator that sees it forces the generator to obey it.
# - **pix2pix**: a U-Net translates an image, a patch discriminator judges (input, output) pairs, and the L1 term
#   keeps the output near the truth; the adversarial term makes it sharp instead of averaged.
# - **CVAE**: with the label given, the latent code keeps only the style; the same $z$ writes every digit in one
#   hand.
# - Bayes' rule, $p(x \mid y) = p(y \mid x)\, p(x) / p(y)$, links discriminative, generative and conditional models;
#   on scores it reads $\nabla \log p(x_t \mid y) = \nabla \log p(x_t) + \nabla \log p(y \mid x_t)$: **classifier
#   guidance** adds a classifier's gradient to a diffusion model's score.
# - **Classifier-free guidance**: one diffusion network, conditional and unconditional through label dropout; their
#   difference plays the classifier's gradient. The guidance scale $w$ trades diversity for fidelity to the label, at
#   twice the cost per step; Ho & Salimans' $w'$ is this lesson's $w - 1$.
# - **Next (lesson 6, latent diffusion):** run this diffusion model in an autoencoder's small latent space, which is
#   what makes Stable Diffusion fast.
