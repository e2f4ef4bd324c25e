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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/image-generation-course/image-generation-course/blob/main/notebooks/03_gans.ipynb)

# %% [markdown]
# # Lesson 3 — Generative adversarial networks
#
# A VAE is trained to give the data a high likelihood, and it pays for that with blur: where it is unsure, it
# averages. A **generative adversarial network** (GAN, Goodfellow et al. 2014) drops the likelihood altogether. Two
# networks play a game:
#
# - the **generator** $G$ turns noise $z \sim \mathcal{N}(0, I)$ into a sample $G(z)$ (it is a decoder with no
#   encoder);
# - the **discriminator** $D$ looks at a sample and outputs $D(x)$, the probability that $x$ is real.
#
# $D$ learns to tell real from generated; $G$ learns to fool $D$. Nothing ever compares a generated image with a
# particular real one, so nothing rewards averaging, and samples come out sharp. In this lesson you will:
# 1. write down the game, and see why the generator's original loss **saturates** and how the non-saturating loss
#    fixes it;
# 2. derive the **optimal discriminator** and the link to the **Jensen–Shannon divergence**, check each step
#    numerically, and see why the JSD stops helping the generator once the two distributions no longer overlap;
# 3. watch a GAN learn a 2-D distribution **live**, with the discriminator's opinion of every point in the plane;
# 4. measure **mode collapse**, and try **WGAN-GP** against it;
# 5. write the **training step** yourself, then train a **DCGAN** on digits with it: live plots, scrub through its
#    training, interpolate, explore and do arithmetic in its $z$, and score it.

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
from course_lib.config import N_SCORED, one_thread
from course_lib.data import load_dataset, make_loader
from course_lib.gan_dashboard import GANDashboard
from course_lib.lesson import start_lesson
from course_lib.gans import (GANGuard, GANStep, MLPDiscriminator, d_loss, g_loss_minimax, g_loss_non_saturating,
                             jensen_shannon, move_generator_away, optimal_discriminator, value_function)
from course_lib.liveplot import LivePlot
from course_lib.metrics import class_accuracy, digit_classifier, quality_report
from course_lib.nets import n_params
from course_lib.plotting import show_images, show_rows
from course_lib.pretrained import train_or_load
from course_lib.recipes import train_toy_gan
from course_lib.toy2d import mode_centres, mode_coverage
from course_lib.training import Snapshots, fit
from course_lib.vae import slerp
from course_lib.widgets import FrameScrubber, LatentExplorer

USE_PRETRAINED = False  # True (or COURSE_PRETRAINED=1 in the environment): load bundled weights instead of training
PRESENTER = False  # True: larger fonts, figures and widgets, for a projector
PROFILE, S, device = start_lesson("gan", pretrained=USE_PRETRAINED, presenter=PRESENTER)

# %% [markdown]
# ## The game
#
# $D$ and $G$ share one **value function**:
#
# $$V(D, G) = \mathbb{E}_{x \sim p_\text{data}}\big[\log D(x)\big] + \mathbb{E}_{z \sim p(z)}\big[\log\big(1 - D(G(z))\big)\big]$$
#
# $D$ wants $V$ large: $D(x) \to 1$ on real images and $D(G(z)) \to 0$ on generated ones. That is binary
# cross-entropy with label 1 for real and 0 for fake, so $D$'s loss is simply $-V$. $G$ only appears in the second
# term and wants $V$ small: $\min_G \max_D V(D, G)$. On a batch of $m$ real and $m$ generated images the expectations
# become averages.
#
# In `course_lib.gans` the discriminator outputs a *logit* $l$ with $D = \sigma(l)$, and the losses are written with
# $\log D = -\operatorname{softplus}(-l)$ so they stay finite when $D$ is certain. When $D$ can't tell at all
# ($D = \tfrac12$ everywhere), $V = 2\log\tfrac12 = -\log 4$:

# %%
undecided = torch.zeros(1000)  # logit 0, i.e. D = 1/2 for every image
v = value_function(undecided, undecided).item()
print(f"V with D = 1/2 everywhere: {v:.4f}   (-log 4 = {-math.log(4):.4f})")
assert abs(v + math.log(4)) < 1e-6

# %% [markdown]
# ### Exercise 1 — the discriminator's loss
# `d_real` and `d_fake` are D's outputs (probabilities) on a batch of real and a batch of generated images. Write
# D's loss (a single number).

# %%
def my_d_loss(d_real, d_fake):
    # YOUR CODE HERE
    return None


exercises.check("gan_d_loss", my_d_loss)
# exercises.solution("gan_d_loss")  # uncomment to see a reference answer

# %% [markdown]
# ## Why the generator's loss saturates
#
# Early in training the generator is bad, $D$ rejects its samples easily and $D(G(z)) \approx 0$. Look at what the
# minimax loss $\log(1 - D(G(z)))$ gives $G$ there: its slope with respect to D's logit is $-D(G(z))$, close to
# zero. $G$ gets almost no gradient exactly when it most needs one.
#
# The **non-saturating** loss $-\log D(G(z))$ has the same goal (make $D(G(z))$ large) but slope $-(1 - D(G(z)))$:
# steep when $G$ is losing, flat when it is winning. Both slopes, computed with autograd:

# %%
d_fake = torch.linspace(0.001, 0.999, 500)
logits = torch.log(d_fake / (1 - d_fake)).requires_grad_()
(grad_minimax,) = torch.autograd.grad(g_loss_minimax(logits) * len(logits), logits)
(grad_ns,) = torch.autograd.grad(g_loss_non_saturating(logits) * len(logits), logits)

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(d_fake, grad_minimax.abs(), label=r"minimax  $\log(1 - D(G(z)))$")
ax.plot(d_fake, grad_ns.abs(), label=r"non-saturating  $-\log D(G(z))$")
ax.set_xlabel("D(G(z))  (0: D is sure the sample is fake)"), ax.set_ylabel("|gradient| w.r.t. D's logit")
ax.axvspan(0, 0.1, color="grey", alpha=0.15, label="where G starts")
ax.legend()
plt.show()
early = d_fake < 0.05
print(f"for D(G(z)) < 0.05: minimax gradient at most {grad_minimax[early].abs().max():.3f}, "
      f"non-saturating at least {grad_ns[early].abs().min():.3f}")
assert grad_minimax[early].abs().max() < 0.06 and grad_ns[early].abs().min() > 0.94

# %% [markdown]
# ### Exercise 2 — the non-saturating loss
# Write `my_g_loss(d_fake)`, the non-saturating generator loss from D's outputs on generated images.

# %%
def my_g_loss(d_fake):
    # YOUR CODE HERE
    return None


exercises.check("g_loss_ns", my_g_loss)
# exercises.solution("g_loss_ns")

# %% [markdown]
# ## The optimal discriminator, and what the game minimizes
#
# Fix $G$. For each $x$, $D$ maximizes $p_\text{data}(x)\log D(x) + p_g(x)\log(1 - D(x))$; the function
# $a\log y + b\log(1-y)$ peaks at $y = a / (a + b)$, so the best discriminator is
#
# $$D^*(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_g(x)}.$$
#
# Now put $D^*$ back into $V$. The second term of $V$ averages over $z$, which is the same as averaging over
# $x = G(z) \sim p_g$, and $1 - D^*(x) = p_g(x) / (p_\text{data}(x) + p_g(x))$:
#
# $$V(D^*, G) = \mathbb{E}_{x \sim p_\text{data}}\Big[\log \frac{p_\text{data}(x)}{p_\text{data}(x) + p_g(x)}\Big]
#   + \mathbb{E}_{x \sim p_g}\Big[\log \frac{p_g(x)}{p_\text{data}(x) + p_g(x)}\Big].$$
#
# Write the sum in each denominator as twice the mixture $m = \tfrac12 (p_\text{data} + p_g)$, a density itself;
# each logarithm gives up a $\log 2$:
#
# $$V(D^*, G) = \mathbb{E}_{x \sim p_\text{data}}\Big[\log \frac{p_\text{data}(x)}{m(x)}\Big] - \log 2
#   + \mathbb{E}_{x \sim p_g}\Big[\log \frac{p_g(x)}{m(x)}\Big] - \log 2
#   = \mathrm{KL}(p_\text{data} \,\|\, m) + \mathrm{KL}(p_g \,\|\, m) - \log 4.$$
#
# The two KL terms are, by definition, twice the **Jensen–Shannon divergence**:
#
# $$\max_D V(D, G) = V(D^*, G) = 2\,\mathrm{JSD}(p_\text{data} \,\|\, p_g) - \log 4, \qquad
# \mathrm{JSD}(p \,\|\, q) = \tfrac12 \mathrm{KL}\big(p \,\|\, \tfrac{p+q}{2}\big) + \tfrac12 \mathrm{KL}\big(q \,\|\, \tfrac{p+q}{2}\big).$$
#
# The JSD is never negative and is 0 only when $p_g = p_\text{data}$, so the game's best generator is the data
# distribution, where $V = -\log 4$. (The theory says nothing about whether gradient steps get there.)
#
# Let us check both statements on 1-D densities. The data is a mixture of two Gaussians; the generator is frozen
# at $G(z) = z + 0.5$, so $p_g = \mathcal{N}(0.5, 1)$. We train only $D$, a small MLP, with its loss $-V$:

# %%
p_data = torch.distributions.MixtureSameFamily(
    torch.distributions.Categorical(torch.tensor([0.5, 0.5])),
    torch.distributions.Normal(torch.tensor([-2.0, 2.0]), torch.tensor([0.6, 0.6])))
p_g = torch.distributions.Normal(0.5, 1.0)

torch.manual_seed(0)
D1 = MLPDiscriminator(hidden=64, depth=2, in_dim=1)
optimizer = torch.optim.Adam(D1.parameters(), lr=3e-3)
with one_thread():
    for _ in range(1500):
        real, fake = p_data.sample((512, 1)), p_g.sample((512, 1))
        loss = d_loss(D1(real), D1(fake))
        optimizer.zero_grad(), loss.backward(), optimizer.step()

x = torch.linspace(-5, 5, 2001)
dx = float(x[1] - x[0])
density_data, density_g = p_data.log_prob(x).exp(), p_g.log_prob(x).exp()
d_star = optimal_discriminator(density_data, density_g)
with torch.no_grad():
    d_trained = torch.sigmoid(D1(x[:, None]))

fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(x, density_data, label=r"$p_{data}$"), ax.plot(x, density_g, label=r"$p_g$")
ax.plot(x, d_star, "k--", label=r"$D^*$ (formula)"), ax.plot(x, d_trained, "r", alpha=0.7, label="trained D")
ax.set_xlabel("x"), ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the curves, not over them
plt.show()

where_data = (density_data + density_g) > 0.05  # D is only trained where samples fall
gap = (d_trained - d_star)[where_data].abs().max().item()
print(f"largest |D - D*| where either density is above 0.05: {gap:.3f}")
assert gap < 0.1

# %% [markdown]
# The trained D follows the formula where there is data to learn from (far from both densities it has no reason
# to be right). Now the value of the game: a Monte Carlo estimate of $V$ with the trained D, against
# $2\,\mathrm{JSD} - \log 4$ computed by integrating the two densities on the grid.

# %%
with torch.no_grad():
    v_trained = value_function(D1(p_data.sample((200_000, 1))), D1(p_g.sample((200_000, 1)))).item()
jsd = jensen_shannon(density_data, density_g, dx)
print(f"V with the trained D (Monte Carlo): {v_trained:.4f}")
print(f"2 JSD - log 4 (integration):         {2 * jsd - math.log(4):.4f}   (JSD = {jsd:.4f}, log 2 = {math.log(2):.4f})")
assert abs(v_trained - (2 * jsd - math.log(4))) < 0.03

# %% [markdown]
# Each line of the derivation is a number we can compute on the grid, with the formula's $D^*$ (no training
# involved): they must agree.

# %%
p, q = density_data.double(), density_g.double()
p, q = p / (p.sum() * dx), q / (q.sum() * dx)  # densities on the grid, each integrating to 1
m = (p + q) / 2
d_opt = optimal_discriminator(p, q)
lines = {"E log D* + E log(1 - D*)": ((p * d_opt.log() + q * (1 - d_opt).log()).sum() * dx).item(),
         "E log p_data/m - log 2 + E log p_g/m - log 2": ((p * (p / m).log()).sum() * dx - math.log(2)
                                                         + (q * (q / m).log()).sum() * dx - math.log(2)).item(),
         "2 JSD - log 4": 2 * jensen_shannon(p, q, dx) - math.log(4)}
for line, value in lines.items():
    print(f"{line:46s} {value:.6f}")
assert max(lines.values()) - min(lines.values()) < 1e-6

# %% [markdown]
# The trained D reaches the value the formula predicts. Try it yourself:
#
# ### Exercise 3 — the optimal discriminator
# At a point $x$, $p_\text{data}(x) = 0.3$ and $p_g(x) = 0.1$. What is $D^*(x)$?

# %%
my_answer = None  # a number
exercises.check("optimal_d", my_answer)
# exercises.solution("optimal_d")

# %% [markdown]
# ### Exercise 4 — the value at the end of the game
# When the generator is perfect ($p_g = p_\text{data}$) and D is optimal, what is $V(D, G)$?

# %%
my_answer = None  # a number
exercises.check("v_at_optimum", my_answer)
# exercises.solution("v_at_optimum")

# %% [markdown]
# ### When the distributions stop overlapping, the JSD stops changing
#
# Suppose $p_\text{data}$ and $p_g$ do not overlap: wherever one is positive, the other is 0. On $p_\text{data}$'s
# support the mixture is $m = p_\text{data} / 2$, so $\mathrm{KL}(p_\text{data} \,\|\, m) = \mathbb{E}[\log 2] =
# \log 2$; the same holds for $p_g$, and $\mathrm{JSD} = \log 2$, **however far apart** the two are. Then
# $V(D^*, G) = 2 \log 2 - \log 4 = 0$ does not change when $G$ moves its samples a little: the generator's
# gradient against the optimal discriminator is zero, and the minimax game gives $G$ no direction to the data.
# (This is the vanishing gradient of the lecture: $D$ says 0 on every fake and is flat there.)
#
# The same 1-D example: the generator $G(z) = z + s$ with a **shift** $s$, pushed from 0 to 12, away from the data.
# For each shift we compute the JSD on a wider grid, and the gradient the generator gets, $\partial V(D^*, G) /
# \partial s$ by autograd, with $D^*$ fitted to the current $G$ and held fixed while $G$ moves. For comparison, the
# **Wasserstein-1** distance of WGAN (below), $\int |F_\text{data}(x) - F_g(x)|\,dx$ with the two distribution
# functions $F$: it keeps growing with the shift.

# %%
x_wide = torch.linspace(-8, 20, 14001, dtype=torch.float64)
data_wide = p_data.log_prob(x_wide.float()).double().exp()
shifts = torch.linspace(0, 12, 49, dtype=torch.float64)
curves = move_generator_away(data_wide, x_wide, shifts)  # course_lib/gans.py: the loop over shifts, D* held fixed
jsd_curve, grad_g, w1 = curves["jsd"], curves["grad"], curves["w1"]
slope_w1 = torch.gradient(w1, spacing=(shifts,))[0]

fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
axes[0].plot(x_wide, data_wide, "k", label=r"$p_{data}$")
for shift in (2.0, 5.0, 9.0):
    axes[0].plot(x_wide, torch.distributions.Normal(shift, 1.0).log_prob(x_wide).exp(), label=f"$p_g$, shift {shift:g}")
axes[0].set_xlim(-5, 13), axes[0].set_xlabel("x"), axes[0].legend(fontsize=8)
axes[1].plot(shifts, jsd_curve, label="JSD")
axes[1].axhline(math.log(2), color="grey", linestyle=":", label="log 2")
axes[1].set_xlabel("shift s"), axes[1].set_title("JSD(p_data || p_g)"), axes[1].legend()
axes[2].semilogy(shifts, grad_g.abs().clamp_min(1e-12), label=r"$|\partial V(D^*, G) / \partial s|$")
axes[2].semilogy(shifts, slope_w1.abs(), label=r"$|\partial W_1 / \partial s|$")
axes[2].set_ylim(1e-8, 3), axes[2].set_xlabel("shift s"), axes[2].set_title("the generator's gradient")
axes[2].legend()
fig.tight_layout()
plt.show()

far = shifts >= 9
print(f"shift >= 9: JSD within {(math.log(2) - jsd_curve[far]).max():.1e} of log 2 = {math.log(2):.4f}; |dV/ds| at "
      f"most {grad_g[far].abs().max():.1e} (largest anywhere: {grad_g.abs().max():.2f}); dW1/ds from "
      f"{slope_w1[far].min():.3f} to {slope_w1[far].max():.3f}")
assert (math.log(2) - jsd_curve[far]).max() < 1e-3  # the JSD has reached log 2 and stays there
assert grad_g[far].abs().max() < 1e-3 * grad_g.abs().max()  # the generator's gradient has vanished
slope_jsd = torch.gradient(jsd_curve, spacing=(shifts,))[0]  # central differences (one-sided at the two ends)
assert torch.allclose(grad_g[1:-1], 2 * slope_jsd[1:-1], atol=0.01)  # autograd's dV/ds is 2 dJSD/ds
assert (slope_w1[far] - 1).abs().max() < 0.01  # W1 still grows by 1 per unit of shift

# %% [markdown]
# The JSD climbs to $\log 2$ and flattens; the generator's gradient falls by orders of magnitude to nothing, while
# the Wasserstein distance still grows by one unit per unit of shift, so its slope still tells the generator which
# way to go. This is not a corner case: real digits, and the images of an untrained generator, fill only thin sets
# of the 784-dimensional pixel space, which need not meet at all (Arjovsky and Bottou, 2017, make this argument;
# we do not measure it here).
#
# ### Exercise 5 — the JSD of distributions that do not overlap
# What is $\mathrm{JSD}(p_\text{data} \,\|\, p_g)$ when the two have no overlap at all? (natural logarithm)

# %%
my_answer = None  # a number
exercises.check("jsd_disjoint", my_answer)
# exercises.solution("jsd_disjoint")

# %% [markdown]
# ## A GAN lab: 2-D data, trained live
#
# Images are hard to look at all at once; 2-D points are easy. Below, a small MLP generator ($z \in \mathbb{R}^2$)
# learns the **ring of 8 Gaussians**. In the figure:
# - the background is $D(x)$ over the plane: green where D says "real", purple where it says "generated";
# - black dots are real points, orange dots are $G(z)$ for a fixed set of $z$;
# - each arrow shows where the generator's loss pushes that point (minus its gradient): the generator follows the
#   arrows as far as its weights allow;
# - on the right, both losses and the mean $D(\text{real})$ and $D(\text{fake})$.
#
# The cell below trains in the foreground (watch it move). When it has finished, play: **run / pause** trains in the
# background so every control acts at once; **step** does one step. Things to try: the *minimax* loss (do the
# arrows shrink where D is sure?); a 10x larger D learning rate; 5 D steps per G step; *wgan_gp* with 5 D steps; the
# *grid* toy.

# %%
dash = GANDashboard(toy="ring", loss="non_saturating")
dash

# %%
logs = dash.train(S.toy_steps)
early, late = sum(logs["d_loss"][:50]) / 50, sum(logs["d_loss"][-50:]) / 50
print(f"D's loss: {early:.3f} in the first 50 steps, {late:.3f} in the last 50 (at the stalemate, D = 1/2 "
      f"everywhere, it is -V = log 4 = {math.log(4):.3f});  modes covered: {dash.coverage['modes_covered']}/8")
assert len(logs["d_loss"]) == S.toy_steps and dash.coverage is not None
assert late > 0.9  # no runaway discriminator: D's loss stays near the stalemate's log 4; 0 would mean D wins outright

# %% [markdown]
# ## Mode collapse, measured
#
# The ring has 8 modes. A generator can fool D by producing only a few of them: D's objective checks that each
# sample looks real, not that all modes are there. When D catches on, G may jump to another mode, and so on:
# **mode collapse**. With a mixture we can count it for 2,000 samples:
# - **modes covered**: how many of the 8 Gaussians receive at least 1% of the samples (within 3 standard deviations);
# - **high quality**: the fraction of samples within 3 standard deviations of some mode (not in the gaps).
#
# We train the standard GAN (non-saturating loss) three times, with three seeds, and measure both numbers along the
# way. (The ring's Gaussians are narrow, standard deviation 0.02 at radius 2, which makes collapse more likely.)

# %%
SEEDS, every = recipes.TOY_SEEDS, max(50, S.toy_steps // 8)
print(recipes.TOY_GAN)  # course_lib/recipes.py: the networks and every setting of their training
runs = {"GAN": [train_toy_gan(recipes.TOY_GAN, "ring", steps=S.toy_steps, every=every, seed=seed) for seed in SEEDS]}

# %% [markdown]
# **WGAN-GP** (Arjovsky et al. 2017; Gulrajani et al. 2017) replaces the classifier by a **critic** $f$ with any real
# output, trained to maximize $\mathbb{E}[f(x)] - \mathbb{E}[f(G(z))]$: an estimate of the Wasserstein-1 ("earth
# mover's") distance when $f$ is 1-Lipschitz, which a **gradient penalty** $\lambda\,\mathbb{E}_{\hat x}(\|\nabla f(\hat
# x)\| - 1)^2$ enforces. Here $\hat x = t\,x + (1 - t)\,G(z)$ with $t \sim U[0, 1]$: a random point on the segment
# between a real sample $x$ and a generated one $G(z)$, drawn afresh for each pair (the penalty checks the slope
# where the critic has to carry points from one distribution to the other). Unlike the JSD, this distance still says
# *how far* apart two distributions are when they do not overlap (its slope stayed 1 in the 1-D example above), so
# every generated point is pulled toward the data, wherever the modes are. The critic takes 5 steps per
# generator step, so each generator step costs about 4 times as much. For 2-D toys we use $\lambda = 0.1$, the value
# the WGAN-GP authors' own toy code uses ($\lambda = 10$ is their setting for images).

# %%
R = recipes.TOY_WGAN_GP
print(f"critic steps per generator step: {R.d_steps}; gradient penalty weight lambda = {R.gp_weight}")
runs["WGAN-GP"] = [train_toy_gan(R, "ring", steps=S.toy_steps, every=every, seed=seed) for seed in SEEDS]

# %%
fig, axes = plt.subplots(2, 1 + len(SEEDS), figsize=(3.4 * (1 + len(SEEDS)), 7.4))  # small: fonts read large
centres = mode_centres("ring")
for row, (name, results) in zip(axes, runs.items()):
    for seed, (gan, history, coverage) in zip(SEEDS, results):
        row[0].plot([s for s, _ in coverage], [r["modes_covered"] for _, r in coverage], "o-", label=f"seed {seed}")
    row[0].set_title(f"{name}: modes covered (of 8)"), row[0].set_xlabel("step"), row[0].legend()
    for ax, seed, (gan, _, coverage) in zip(row[1:], SEEDS, results):
        samples = gan.sample(2000, torch.Generator().manual_seed(1))
        ax.scatter(*samples.T, s=2, alpha=0.3), ax.scatter(*centres.T, c="r", marker="x")
        report = coverage[-1][1]
        ax.set_title(f"{name}, seed {seed}:\n{report['modes_covered']}/8 modes, {report['high_quality']:.0%} on a mode")
        ax.set_aspect("equal"), ax.set_xlim(-3, 3), ax.set_ylim(-3, 3)
fig.tight_layout()
plt.show()



def largest_drop(coverage):
    """The most modes lost between one measurement and a later one: how far coverage fell back."""
    covered = [report["modes_covered"] for _, report in coverage]
    return max(max(covered[:i + 1]) - covered[i] for i in range(len(covered)))


summary = {}
for name, results in runs.items():
    final = [coverage[-1][1] for _, _, coverage in results]
    samples = [gan.sample(2000, torch.Generator().manual_seed(1)) for gan, _, _ in results]
    near = [mode_coverage(x, "ring", n_std=15) for x in samples]  # 15 standard deviations = 0.3
    summary[name] = {"modes covered": [r["modes_covered"] for r in final],
                     "on a mode": [round(r["high_quality"], 2) for r in final],
                     "modes with samples within 0.3": [r["modes_covered"] for r in near],
                     "modes lost on the way": [largest_drop(coverage) for _, _, coverage in results],
                     "seconds": round(sum(history.seconds for _, history, _ in results) / len(results), 1)}
    print(f"{name:8s} after {S.toy_steps} steps (one value per seed): {summary[name]}")
assert summary["WGAN-GP"]["seconds"] > 2 * summary["GAN"]["seconds"], "each WGAN-GP run costs several GAN runs"
if PROFILE != "smoke":  # a few hundred steps (smoke) are too few for any of this
    gan, wgan = summary["GAN"], summary["WGAN-GP"]
    assert all(drop > 0 for drop in gan["modes lost on the way"]), "every GAN run lost modes it had"
    assert all(n == 8 for n in wgan["modes with samples within 0.3"]), "WGAN-GP comes near every mode"
    missed = {name: sum(n < 8 for n in runs["modes with samples within 0.3"]) for name, runs in summary.items()}
    on_more = sum(g > w for g, w in zip(gan["on a mode"], wgan["on a mode"]))
    print(f"runs with a mode nothing came within 0.3 of: GAN {missed['GAN']}, WGAN-GP {missed['WGAN-GP']} of "
          f"{len(SEEDS)}; runs whose GAN samples landed on a mode more often than WGAN-GP's with the same seed: "
          f"{on_more} of {len(SEEDS)}")

# %% [markdown]
# What to read in these numbers (the `cpu` profile; `smoke` trains too briefly to show anything):
# - **The standard GAN's coverage swings.** In every run it *lost* modes it had already covered: the generator moved
#   its samples from some modes to others as D caught up with them. That is mode collapse while it happens
#   ("mode hopping"); nothing in $V(D, G)$ rewards covering all modes at once.
# - **The thin trails** between modes in the scatter plots: G maps the connected noise plane onto eight separate
#   blobs, so some samples must land between them. This is why "on a mode" stays well below 100%.
# - **WGAN-GP's strength is coverage.** In every run its samples come within 0.3 of all eight modes (the cell
#   checks it), and each run takes several times as long. Its critic keeps giving a useful gradient even where real
#   and generated points do not overlap, so no mode is left without a pull. Its samples are spread wider, so often
#   fewer of them land *on* a mode (within 3 standard deviations) than the GAN's; but a GAN caught in the middle of a
#   hop has few samples on any mode, so which of the two is ahead there changes from run to run, the last line
#   above counts it. These runs are chaotic: the same seed on another CPU (which rounds its sums in another order)
#   can end elsewhere, and the bundled runs of instructor mode were trained on one particular machine.
#
# Try other seeds, more steps (`S.toy_steps`), or the *grid* of 25 modes, and in the GAN lab above switch the loss to
# *wgan_gp* with 5 D steps.
#
# ## DCGAN on digits
#
# Now images. **DCGAN** (Radford et al. 2015) gave GANs a convolutional recipe that trains reliably:
# - the generator is shaped like a decoder: $z$ (100 numbers) is projected to a small $7 \times 7$ map, and
#   **fractionally-strided** (transposed) convolutions double its size, $7 \to 14 \to 28$; BatchNorm and ReLU
#   inside, tanh at the end;
# - the discriminator is shaped like an encoder with one output: strided convolutions halve the size,
#   LeakyReLU(0.2), no pooling;
# - Adam with $\beta_1 = 0.5$. The paper's learning rate is $2 \cdot 10^{-4}$; with the few thousand steps a CPU
#   affords, $2 \cdot 10^{-3}$ for both networks reached a much lower Frechet distance in the same time (see the
#   README's results), so we use that.
#
# Our bundled set has only 4,000 digits, few enough for D to memorize them and win. So every image D sees, real and
# generated alike, is randomly shifted, rotated and zoomed a little (`augment`, the idea of DiffAugment): D can't
# memorize, and since both sides are augmented, G still learns to draw plain digits.

# %%
train = load_dataset("mnist", "train", n=S.n_train)
torch.manual_seed(0)
R = recipes.DCGAN  # course_lib/recipes.py: the architecture and every number of its training
dcgan = R.build(S).to(device)
print(f"generator: {n_params(dcgan.generator):,} parameters; discriminator: {n_params(dcgan.discriminator):,}")
print(dcgan.generator)

# %% [markdown]
# ### Exercise 6 — one training step, written by you
# A GAN cannot be trained with one loss and one `optimizer.step()`: two networks take turns, as in the lecture's
# custom training loop. One step on a batch of real images is
# 1. **update D** (the lecture's step B): generated images $G(z_d)$, **detached** so that D's loss does not reach
#    G's weights; D's loss $-V$ on the real and the generated batch; `zero_grad`, `backward`, `step` of D's optimizer;
# 2. **update G** (step A): fresh images $G(z_g)$, *not* detached (G learns through D), judged by the D you have just
#    updated, with the non-saturating loss $-\log D(G(z))$; `zero_grad`, `backward`, `step` of G's optimizer.
#
# (The lecture's Keras code computes both losses from one forward pass and applies the two updates together; here,
# as in the library's `GANStep`, D is updated first and G then faces the updated D.) D returns logits, so use the
# library's `d_loss(real_logits, fake_logits)` and `g_loss_non_saturating(fake_logits)`: the losses of exercises 1
# and 2, taking logits. The check runs three steps of your function on a small 2-D GAN and compares the weights with
# those of `GANStep`, from the same start with the same noise. Once it passes, the DCGAN below trains with **your**
# step.

# %%
def my_gan_step(G, D, opt_d, opt_g, real, z_d, z_g):
    # update D, then G; at the end: return loss_d, loss_g
    # YOUR CODE HERE
    return None


exercises.check("gan_step", my_gan_step)
# exercises.solution("gan_step")

# %% [markdown]
# Train it. The live plot shows both losses, $D(\text{real})$ and $D(\text{fake})$, and the images G makes from a
# fixed set of 32 noise vectors. A healthy run keeps D(real) above D(fake) without D(fake) collapsing to 0; the
# guard stops the run with advice if the losses become NaN or D wins outright for too long. If your `my_gan_step`
# passed its check, it does every update of this run; otherwise the library's step does.

# %%
fixed_z = dcgan.sample_z(32, torch.Generator().manual_seed(1))
print(R)
mine = exercises.passed("gan_step", my_gan_step)
print("training with", "your my_gan_step" if mine else "the library's step (your my_gan_step has not passed yet)")
step = GANStep(dcgan, generator=torch.Generator().manual_seed(0), update=my_gan_step if mine else None,
               **R.step_args())  # loss, learning rates, augment
loader = make_loader(train, S.batch_size)
snapshots = Snapshots(lambda gan: gan.generator(fixed_z), every=max(1, S.epochs * len(loader) // 40))
live = LivePlot(keys=["d_loss", "g_loss", "d_real", "d_fake"], images=lambda gan: gan.generator(fixed_z),
                title="DCGAN")
history = train_or_load(R.name, lambda: fit(dcgan, loader, step, None, S.epochs, device=device,
                                            callbacks=[live, snapshots, GANGuard()]),
                        show=live, gan=dcgan, snapshots=snapshots)
d_real, d_fake = history.epochs["d_real"][-1], history.epochs["d_fake"][-1]
print(f"{history.epoch} epochs in {history.seconds:.0f} s; last epoch: mean D(real) {d_real:.2f}, D(fake) {d_fake:.2f}")
assert history.stopped is None and d_real > d_fake > 0.05

# %% [markdown]
# ### Scrub through training
# The fixed noise vectors were decoded every few steps. The slider shows the training step and opens on the first
# snapshot: drag it (or press play) to watch digits emerge from blobs, the same $z$, a better $G$ each frame.

# %%
scrubber = FrameScrubber(snapshots.frames, [f"G after {s} training steps" for s in snapshots.at_step],
                         values=snapshots.at_step, description="step", start=0)
scrubber

# %% [markdown]
# ### Walking through $z$
# Noise vectors close to each other give similar images, so a path in $z$ space gives a smooth morph. We walk
# along the great circle (slerp) between random $z$'s, as in lesson 2: a straight line between two
# 100-dimensional Gaussian vectors passes through much shorter vectors than G ever saw.

# %%
gen = torch.Generator().manual_seed(7)
rows = []
for _ in range(4):
    z0, z1 = dcgan.sample_z(2, gen)
    rows.append(dcgan.decode(slerp(z0, z1, torch.linspace(0, 1, 10))).cpu())
show_images(torch.cat(rows), nrow=10, title="slerp between two noise vectors (one row each)")
plt.show()
neighbours = torch.stack([(row[1:] - row[:-1]).pow(2).mean() for row in rows]).mean().item()
ends = torch.stack([(row[-1] - row[0]).pow(2).mean() for row in rows]).mean().item()
print(f"mean squared change between neighbouring images {neighbours:.4f}, between the two ends {ends:.4f}")
assert neighbours < ends / 2  # small steps in z, small changes in the image

# %% [markdown]
# The latent explorer on $z$: 100 numbers are too many sliders, so the sliders move the first 8 and the other 92
# stay as they are. Move one slider at a time and see what it changes: nothing in a GAN's training asks a single
# number of $z$ to mean one thing, so a slider may change stroke, slant and even the digit at once.

# %%
explorer = LatentExplorer(dcgan.decode, latent_dim=100, n_sliders=8, start=fixed_z[0])
explorer

# %% [markdown]
# ### Arithmetic in $z$: thicker strokes
# The lecture's faces: the mean $z$ of men with glasses, minus that of men without, plus a woman without glasses,
# gives a woman *with* glasses. A direction in $z$ can carry an attribute. We try it with an attribute we can
# measure on every generated digit: the **amount of ink** (mean pixel value), which grows with stroke thickness.
# Generate 1,000 digits and let the classifier say which digit each one is; within each digit, take the mean $z$ of
# the quarter with the most ink minus that of the quarter with the least (as the lecture compares men with men), and
# average these differences over the digits. Then add the direction to new noise vectors, or subtract it:

# %%
z_many = dcgan.sample_z(1000, torch.Generator().manual_seed(3)).cpu()
images = dcgan.decode(z_many).cpu()
ink = images.mean(dim=(1, 2, 3))  # mean pixel value: more ink, thicker strokes
with torch.no_grad():
    digit = digit_classifier()(images).argmax(1)
directions = []
for c in range(10):
    z_c, ink_c = z_many[digit == c], ink[digit == c]
    if len(ink_c) >= 8:  # (a barely trained G may draw some digits rarely)
        order, k = ink_c.argsort(), len(ink_c) // 4
        directions.append(z_c[order[-k:]].mean(0) - z_c[order[:k]].mean(0))  # most ink - least ink
thicker = torch.stack(directions).mean(0)
z_new = dcgan.sample_z(10, torch.Generator().manual_seed(5)).cpu()
steps = (-1.0, -0.5, 0.0, 0.5, 1.0)
rows = {f"z {a:+g} x direction" if a else "z": dcgan.decode(z_new + a * thicker).cpu() for a in steps}
show_rows(rows)
plt.show()
ink_rows = torch.stack([row.mean(dim=(1, 2, 3)) for row in rows.values()])  # (5 steps, 10 digits)
with torch.no_grad():
    drawn = digit_classifier()(rows["z"]).argmax(1)  # the digit the classifier reads in each original
kept = {a: class_accuracy(row, drawn) for a, row in zip(steps, rows.values())}
for a, values in zip(steps, ink_rows):
    print(f"z {a:+.1f} x direction: mean ink {values.mean():.3f}; read as the same digit: {kept[a]:.0%}")
assert (ink_rows.mean(1).diff() > 0).all()  # more of the direction, more ink
assert (ink_rows[-1] > ink_rows[2]).float().mean() >= 0.8 and (ink_rows[0] < ink_rows[2]).float().mean() >= 0.8

# %% [markdown]
# The ink rises and falls on new digits too: the direction, found from other samples, carries "more ink". It is not
# a clean "stroke thickness" knob, though: going far along it, digits also grow rounder and some turn into another
# digit (the share the classifier still reads as the same digit is printed). Nothing in a GAN's training asks $z$
# to keep attributes apart; lesson 7's style-based generator is built to make such directions cleaner.
#
# ## How good is it?
# The same measurement as in lessons 1 and 2: the Frechet distance between the digit classifier's features of
# generated and real digits (lower is better), with precision (do samples look like real digits?) and recall (are
# all kinds of real digits produced?).

# %%
samples = dcgan.sample(N_SCORED[PROFILE], torch.Generator().manual_seed(2)).cpu()
report = quality_report(samples, name="DCGAN")
assert report["fd_real"] < report["fd"] < report["fd_noise"]

# %% [markdown]
# ## Summary
# - A GAN trains a generator against a discriminator with $\min_G \max_D V(D, G)$; the non-saturating loss
#   $-\log D(G(z))$ keeps the generator's gradient alive when it is losing.
# - Against a fixed generator the best discriminator is $p_\text{data} / (p_\text{data} + p_g)$, and the game then
#   minimizes $2\,\mathrm{JSD} - \log 4$: we checked every step of the derivation numerically.
# - When the two distributions do not overlap, the JSD sits at $\log 2$ and the generator's gradient against the
#   optimal discriminator vanishes; the Wasserstein distance keeps its slope.
# - GANs can collapse onto a few modes; counting modes on the ring shows it. WGAN-GP's critic gives gradients
#   toward every mode.
# - One training step: update D on real and detached generated images, then G against the updated D.
# - DCGAN makes sharp digits from 100 random numbers in minutes on a CPU; a direction in its $z$ (most ink minus
#   least ink) makes new digits thicker, though not without changing their shape.
# - **Next (lesson 4, diffusion):** generation as many small denoising steps, trained by regression: a network
#   predicts the noise that was added, its squared error weighted per timestep (Min-SNR), with no adversary.
