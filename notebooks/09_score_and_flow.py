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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/image-generation-course/image-generation-course/blob/main/notebooks/09_score_and_flow.ipynb)

# %% [markdown]
# # Lesson 9 — Scores, SDEs and flow matching
#
# Lesson 4 trained a network to predict the noise in a noisy digit and undid 1000 small noising steps, or 50 with
# DDIM. The lectures place DDPM next to a second family, **score-based models**, and show that both are one model seen
# in continuous time, as a **stochastic differential equation** (Song et al. 2021). That view leads to what current
# image models (Stable Diffusion 3, Flux) are trained with: **flow matching**, a straight path from data to noise and a
# network that learns its velocity. In this lesson you will:
#
# 1. meet the **score** $\nabla_x \log p(x)$ and sample with **Langevin dynamics**, on a 2-D toy whose score is known;
#    see why one noise level is not enough and what annealing over noise levels fixes;
# 2. read DDPM as an **SDE**, run its reverse SDE and its **probability-flow ODE** (same marginals, no noise), and
#    check that DDIM is Euler's method on that ODE;
# 3. train a **flow-matching** model, first on the toy (watch its particles move), then on digits with lesson 4's
#    U-Net;
# 4. count the cost: quality against the number of network calls, Euler and Heun against lesson 4's DDIM;
# 5. **straighten** the flow (reflow) and distill it into a model that draws a digit in **one** call;
# 6. guide a class-conditional flow with lesson 5's classifier-free guidance.

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
from torch.utils.data import TensorDataset

from course_lib import exercises, recipes
from course_lib.conditional import GuidedModel, class_grid_labels, drop_labels
from course_lib.data import load_dataset, make_loader
from course_lib.diffusion import DiffusionSchedule, ddim_sample
from course_lib.diffusion_theory import GaussianMixture2D
from course_lib.fastpath import describe_fast_path, exact_float32, fast_autocast
from course_lib.flow import (FlowPath, distill_step, flow_matching_loss, pair_step, reflow_pairs, sample_flow,
                             straightness)
from course_lib.lesson import start_lesson
from course_lib.liveplot import LivePlot
from course_lib.metrics import class_accuracy, fd_to_training_digits
from course_lib.nets import n_params
from course_lib.plotting import show_images
from course_lib.pretrained import load_into, train_or_load
from course_lib.scores import (annealed_langevin, ddim_as_euler, dsm_loss, langevin, learned_score, mode_shares,
                               score_from_eps, ve_score, vp_sample, weighted_pair)
from course_lib.training import EMA, fit
from course_lib.widgets import FrameScrubber, PointScrubber

USE_PRETRAINED = False  # True (or COURSE_PRETRAINED=1 in the environment): load bundled weights instead of training
PRESENTER = False  # True: larger fonts, figures and widgets, for a projector
PROFILE, S, device = start_lesson("score_and_flow", pretrained=USE_PRETRAINED, presenter=PRESENTER)
TOY_EPOCHS = max(1, S.toy_steps // 40)  # the toy sets below hold 20,000 points: 40 batches of 500 per epoch
print(recipes.FLOW)
train = load_dataset("mnist", "train", n=S.n_train)

# %% [markdown]
# ## 1. Scores and Langevin dynamics
#
# A density $p(x)$ is hard to learn directly: it must integrate to 1. Its **score**, the gradient of its logarithm,
# does not care about the normalising constant $Z$, because $\nabla_x \log (\tilde p(x) / Z) = \nabla_x \log \tilde
# p(x)$:
#
# $$s(x) = \nabla_x \log p(x), \quad \text{a vector at every point, pointing to where } p \text{ rises fastest.}$$
#
# Knowing the score is enough to sample. **Langevin dynamics** takes small steps up the score, with noise:
#
# $$x_{k+1} = x_k + \frac{\delta}{2} \nabla_x \log p(x_k) + \sqrt{\delta}\, z_k, \qquad z_k \sim \mathcal{N}(0, I).$$
#
# With a small step $\delta$ and many steps, $x_k$ is distributed as $p$, wherever it started. The noise matters:
# without it every point would climb to the nearest peak and stay there.
#
# The toy: two Gaussians in the plane, one with weight 0.2 (lower left), one with 0.8 (upper right). Its score is known
# exactly at every point, so we can first study sampling without any learning.

# %%
two = weighted_pair()  # course_lib/scores.py: two Gaussians, weights 0.2 and 0.8
print(f"centres {two.centres.tolist()}, std {two.std}, weights {two.weights.tolist()}")
gen = torch.Generator().manual_seed(0)
toy_data, _ = two.sample(20000, gen)
ticks = torch.linspace(-3, 3, 15)
grid = torch.cartesian_prod(ticks, ticks)


def draw_field(ax, field, title):
    ax.scatter(toy_data[:2000, 0], toy_data[:2000, 1], s=2, alpha=0.3, color="grey")
    ax.quiver(grid[:, 0], grid[:, 1], field[:, 0], field[:, 1], color="C0")
    ax.set_title(title), ax.set_aspect("equal"), ax.set_xlim(-3.2, 3.2), ax.set_ylim(-3.2, 3.2)


fig, ax = plt.subplots(figsize=(5, 5))
score_field = ve_score(two, grid, 0.0)
draw_field(ax, score_field / score_field.norm(dim=1, keepdim=True).clamp(min=1), "the score of the two Gaussians")
plt.show()

# %% [markdown]
# Lesson 4 ended by reading its noise predictor as a score (Tweedie's formula): the best prediction of the noise in
# $x_t$ is $-\sqrt{1 - \bar\alpha_t}$ times the score of the noisy data. Write that conversion.
#
# ### Exercise 1 — the score from the noise prediction
# Lesson 4's network predicts the noise $\epsilon$ in $x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\,
# \epsilon$. Write `my_score(eps, abar_t)`: the score $\nabla_x \log q(x_t)$ that a predicted noise `eps` (a tensor)
# gives at the level $\bar\alpha_t$ (a number). Which standard deviation does the noise have in $x_t$, and which way
# does the score point? The checker compares with the library's `score_from_eps`.

# %%
def my_score(eps, abar_t):
    # YOUR CODE HERE
    return None


exercises.check("score_from_eps", my_score)
# exercises.solution("score_from_eps")  # uncomment to see a reference answer


# %% [markdown]
# ### Exercise 2 — one Langevin step
# Write `my_langevin_step(score, x, delta, z)`: one step of Langevin dynamics from the points `x` (N, 2), with the
# score function `score(x)`, the step size $\delta$ (a number) and the noise `z` you are given (shaped like `x`):
# $x \leftarrow x + \frac{\delta}{2} \nabla_x \log p(x) + \sqrt{\delta}\, z$. The checker compares with one step of
# the library's `langevin`, which draws the same `z`.

# %%
def my_langevin_step(score, x, delta, z):
    # YOUR CODE HERE
    return None


exercises.check("langevin_step", my_langevin_step)
# exercises.solution("langevin_step")  # uncomment to see a reference answer


# %% [markdown]
# 1,000 Langevin steps with the exact score, from 2,000 points spread uniformly over the square. Scrub through them:
# the points find the two Gaussians within a few dozen steps. Then count: what share ends in each?

# %%
def run_langevin(score, x, delta, n_steps, every):
    """Langevin dynamics with your step when exercise 2 is right, the library's `langevin` otherwise."""
    if not exercises.passed("langevin_step", my_langevin_step):
        return langevin(score, x, delta, n_steps, gen, record_every=every)
    frames = [x.clone()]
    for k in range(n_steps):
        x = my_langevin_step(score, x, delta, torch.randn(x.shape, generator=gen))
        if (k + 1) % every == 0 or k == n_steps - 1:
            frames.append(x.clone())
    return x, frames


start_points = 6 * torch.rand(2000, 2, generator=gen) - 3
x, frames = run_langevin(lambda p: ve_score(two, p, 0.0), start_points, delta=0.01, n_steps=1000, every=25)
plain_shares = mode_shares(x, two)
print(f"after 1,000 steps: {plain_shares[0]:.1%} of the points at the lower-left Gaussian, {plain_shares[1]:.1%} at "
      f"the upper right; the true weights are {two.weights[0]:.0%} and {two.weights[1]:.0%}")
assert abs(plain_shares[0] - two.weights[0]) > 0.15  # the weights come out wrong: see below
PointScrubber(frames, description="step", values=[25 * i for i in range(len(frames))], start=0)

# %% [markdown]
# The points did find both Gaussians, but about half of them sit in each: the weights came out wrong. Each point
# climbed to the Gaussian whose side of the square it started on, and at this step size crossing the empty region in
# between would take far longer than 1,000 steps: the score there is large and points straight back. Langevin
# dynamics is correct only in the limit of very many steps.
#
# ### Why one noise level is not enough
# With a learned score there is a second problem. We do not know $p$; we learn its score from samples by **denoising
# score matching** (Vincent 2011): blur each sample, $\tilde x = x + \sigma z$; the score of the blurred point given
# the clean one is $-z / \sigma$, so a network $z_\theta(\tilde x, \sigma)$ that predicts the noise gives the score
# $s_\theta(\tilde x, \sigma) = -z_\theta / \sigma$ of the blurred density $p_\sigma$. That is lesson 4's noise
# prediction again, with noise added instead of mixed in.
#
# Trained where the samples are, the network is only right there: where there was no data it never saw a target. A
# small $\sigma$ means an accurate score near the data and a poor one elsewhere; a large $\sigma$ fills the plane
# (the blurred density is spread everywhere) but is the score of a blurry picture. Song & Ermon (2019) train **one
# network for a ladder of levels** $\sigma_1 > \dots > \sigma_L$ (`LevelMLP`: the level enters as a learned vector) and
# sample with **annealed Langevin**: some steps at each level, largest first, with step size $\alpha_i = \epsilon\,
# \sigma_i^2 / \sigma_L^2$.

# %%
RS = recipes.TOY_SCORE
sigmas = RS.sigmas()
print(RS)
print("noise levels:", [round(s, 3) for s in sigmas.tolist()])
torch.manual_seed(0)
score_net = RS.build(S)
toy_loader = make_loader(TensorDataset(toy_data), 500)
score_noise = torch.Generator().manual_seed(1)
history = train_or_load(RS.name, lambda: fit(score_net, toy_loader, lambda m, b: dsm_loss(m, b[0], sigmas, score_noise),
                                             torch.optim.Adam(score_net.parameters(), lr=RS.lr), TOY_EPOCHS,
                                             progress=False), eight_bit=False, model=score_net)
losses = history.steps["loss"]
print(f"{len(losses)} steps in {history.seconds:.1f} s; loss {sum(losses[:20]) / 20:.3f} -> {sum(losses[-20:]) / 20:.3f}")
score = learned_score(score_net, sigmas)

# %% [markdown]
# How good is the learned score, near the data and far from it, at the largest and the smallest level? The error is
# relative: $\mathbb{E}\|s_\theta - s\|^2 / \mathbb{E}\|s\|^2$ against the exact score of the blurred mixture. The
# plots draw the learned field (blue) over the exact one (grey) on a grid over the square.

# %%
far_points = 6 * torch.rand(2000, 2, generator=gen) - 3
errors = {}
for i in (0, len(sigmas) - 1):
    sigma = sigmas[i].item()
    for where, points in (("near the data", toy_data[:2000] + sigma * torch.randn(2000, 2, generator=gen)),
                          ("anywhere in the square", far_points)):
        true = ve_score(two, points, sigma)
        errors[i, where] = ((score(points, i) - true).pow(2).sum(1).mean() / true.pow(2).sum(1).mean()).item()
        print(f"sigma = {sigma:5.2f}, {where:24s}: relative error of the learned score {errors[i, where]:.3f}")
smallest = len(sigmas) - 1
fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
for ax, i in zip(axes, (0, smallest)):
    true, learned = ve_score(two, grid, sigmas[i].item()), score(grid, i)
    scale = true.norm(dim=1, keepdim=True).clamp(min=1)  # long arrows shortened alike, so the two stay comparable
    ax.quiver(grid[:, 0], grid[:, 1], (true / scale)[:, 0], (true / scale)[:, 1], color="grey", label="exact")
    ax.quiver(grid[:, 0], grid[:, 1], (learned / scale)[:, 0], (learned / scale)[:, 1], color="C0", alpha=0.7,
              label="learned")
    ax.set_title(f"sigma = {sigmas[i]:.2f}"), ax.set_aspect("equal"), ax.legend(loc="upper left")
plt.show()
assert errors[0, "anywhere in the square"] < errors[smallest, "anywhere in the square"]
if PROFILE != "smoke":  # the smoke profile's short training is not yet accurate anywhere at the smallest level
    assert errors[smallest, "anywhere in the square"] > 2 * errors[smallest, "near the data"]

# %% [markdown]
# At the smallest level the score is poor away from the data, and at the largest it is good everywhere. Now sample
# with the learned scores: plain Langevin at the smallest level, then annealed Langevin down the whole ladder. The
# scrubber shows the points after each level of the annealed run.

# %%
x_plain, _ = langevin(lambda p: score(p, smallest), start_points, 0.01, 1000, gen)
x_annealed, level_frames = annealed_langevin(score, sigmas, start_points, RS.langevin_steps, RS.langevin_eps, gen,
                                             record=True)
shares = {"plain Langevin, smallest level": mode_shares(x_plain, two),
          "annealed Langevin": mode_shares(x_annealed, two)}
for name, share in shares.items():
    print(f"{name:32s}: {share[0]:.1%} lower left, {share[1]:.1%} upper right (true: {two.weights[0]:.0%}, "
          f"{two.weights[1]:.0%})")
annealed_gap = abs(shares["annealed Langevin"][0] - two.weights[0]).item()
plain_gap = abs(shares["plain Langevin, smallest level"][0] - two.weights[0]).item()
assert annealed_gap < plain_gap
if PROFILE != "smoke":
    assert annealed_gap < 0.08 and plain_gap > 0.15
PointScrubber(level_frames, ["the uniform start"] + [f"level {i + 1} done: sigma = {s:.3f}" for i, s in
                                                     enumerate(sigmas.tolist())],
              description="level", values=list(range(len(level_frames))), start=0)

# %% [markdown]
# At the large levels the blurred density is one wide blob, so the points spread over the plane in proportion to
# where the mass is; as $\sigma$ shrinks the blob splits into two, and each point follows the part it is in. The
# weights come out right because the split happens while the points can still move freely.
#
# ## 2. The SDE view
#
# Take lesson 4's forward process, $x_t = \sqrt{1 - \beta_t}\, x_{t-1} + \sqrt{\beta_t}\, z$, with many tiny steps.
# Write $\beta_t = \beta(s)\, \Delta s$ with time $s = t / T \in [0, 1]$ and $\Delta s = 1/T$; since $\sqrt{1 - \beta_t}
# \approx 1 - \beta_t / 2$, the step becomes $x_{s + \Delta s} - x_s = -\frac{1}{2}\beta(s)\, x_s\, \Delta s +
# \sqrt{\beta(s)\, \Delta s}\, z$, which in the limit is a **stochastic differential equation**,
#
# $$dx = -\tfrac{1}{2}\beta(s)\, x\, ds + \sqrt{\beta(s)}\, dw \qquad \text{(variance preserving: } x \text{ stays
# about unit variance).}$$
#
# Anderson (1982) showed that such an SDE runs **backwards** in time as another SDE, which needs only the score of the
# noisy data at each time, $\nabla_x \log q_s(x)$:
#
# $$dx = \big[-\tfrac{1}{2}\beta(s)\, x - \beta(s)\, \nabla_x \log q_s(x)\big]\, ds + \sqrt{\beta(s)}\, d\bar w
# \qquad (s \text{ running from 1 down to 0}).$$
#
# Song et al. (2021) add an **ODE** whose solutions have the very same marginals $q_s$ at every time, without any
# noise, the **probability-flow ODE**:
#
# $$\frac{dx}{ds} = -\tfrac{1}{2}\beta(s)\, \big[x + \nabla_x \log q_s(x)\big].$$
#
# DDPM's Algorithm 2 is a discretisation of the reverse SDE; a network that predicts the noise gives the score
# (exercise 1). On lesson 4's ring of eight Gaussians the score is known at every $t$, so both can be run with the exact
# score, one timestep per Euler step (`vp_sample`): do they land on the ring, with every mode equally filled?

# %%
ring = GaussianMixture2D.ring()
schedule = DiffusionSchedule(T=recipes.DDPM.T, kind=recipes.DDPM.schedule)
x_T = torch.randn(2000, 2, generator=gen)
paths = {}
for kind in ("sde", "ode"):
    x, paths[kind] = vp_sample(lambda p, t: ring.score(p, schedule.alpha_bars[t].item()), schedule, x_T, kind, gen,
                               record_every=50)
    near = torch.cdist(x, ring.centres).min(dim=1).values < 3 * ring.std
    filled = mode_shares(x, ring)
    print(f"{kind}: {near.float().mean():.1%} of the points within 3 std of a mode; mode shares from "
          f"{filled.min():.1%} to {filled.max():.1%} (each should be {1 / len(ring.centres):.1%})")
    assert near.float().mean() > 0.97 and filled.min() > 0.09 and filled.max() < 0.16
again, _ = vp_sample(lambda p, t: ring.score(p, schedule.alpha_bars[t].item()), schedule, x_T, "ode")
assert torch.equal(again, x)  # the ODE is deterministic: the same noise, the same point

# %% [markdown]
# Both reach the same distribution, by different paths. Scrub through them: the SDE's points jitter (fresh noise at
# each step), the ODE's glide, each on a smooth curve of its own (the faint lines follow 30 of them). The ODE is what
# makes DDIM possible.

# %%
side = torch.tensor([3.5, 0.0])  # the SDE's points drawn on the left, the ODE's on the right
frames = [torch.cat([sde[:15] - side, ode[:15] + side, sde[15:] - side, ode[15:] + side])  # 15 + 15 with trails
          for sde, ode in zip(paths["sde"], paths["ode"])]
PointScrubber(frames, description="t", values=[recipes.DDPM.T - 50 * i for i in range(len(frames) - 1)] + [0],
              captions=[f"left: reverse SDE, right: probability-flow ODE; t = {max(recipes.DDPM.T - 50 * i, 0)}"
                        for i in range(len(frames))], limit=7.0, trails=30, start=0)

# %% [markdown]
# ### DDIM is Euler's method on the probability-flow ODE
# Divide $x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon$ by $\sqrt{\bar\alpha_t}$ and write
# $y = x / \sqrt{\bar\alpha_t}$, $\sigma = \sqrt{(1 - \bar\alpha_t) / \bar\alpha_t}$: then $y = x_0 + \sigma\,
# \epsilon$, noise simply added. In these variables the probability-flow ODE is
#
# $$\frac{dy}{d\sigma} = \epsilon_\theta(x, t),$$
#
# and one Euler step from $\sigma_t$ to $\sigma_{t'}$ is $y_{t'} = y_t + (\sigma_{t'} - \sigma_t)\, \epsilon_\theta$.
# Multiply by $\sqrt{\bar\alpha_{t'}}$ and expand: it is exactly DDIM's update, $x_{t'} = \sqrt{\bar\alpha_{t'}}\,
# \hat x_0 + \sqrt{1 - \bar\alpha_{t'}}\, \epsilon_\theta$. Check it with lesson 4's trained U-Net (loaded from the
# course's bundled weights, whatever `USE_PRETRAINED` says): the Euler steps of `ddim_as_euler` against lesson 4's
# `ddim_sample` without clipping, from the same noise.

# %%
ddpm = recipes.DDPM.build(recipes.lesson_settings("diffusion", "cpu")).to(device)
ddpm_history = load_into(recipes.DDPM.name, ema=ddpm)
print(f"lesson 4's DDPM: {n_params(ddpm):,} parameters, trained for {ddpm_history.seconds:.0f} s "
      f"({ddpm_history.epoch} epochs)")


def eps_model(x, t):
    return ddpm(x.to(device), t.to(device)).float().cpu()


noise = torch.randn(8, 1, 28, 28, generator=gen)
with torch.no_grad(), exact_float32():  # all of float32's digits on a GPU too (its default TF32 keeps about 3)
    euler = ddim_as_euler(eps_model, schedule, noise, steps=20)
    ddim, _ = ddim_sample(eps_model, schedule, noise=noise, steps=20, clip=None, image_range=False)
gap = (euler - ddim).abs().max().item()
print(f"largest difference between 20 Euler steps on the ODE and DDIM with 20 steps: {gap:.1e}")
assert gap < 1e-3

# %% [markdown]
# ## 3. Flow matching
#
# The SDE view makes sampling "solve an ODE from noise to data". **Flow matching** (Lipman et al. 2023; Liu et al.
# 2023's *rectified flow*) chooses the simplest path there is and learns its ODE directly. Join a data point $x_0$ and
# a noise $\epsilon$ by a straight line, time $t$ running from 0 (data) to 1 (noise):
#
# $$x_t = (1 - t)\, x_0 + t\, \epsilon, \qquad \frac{dx_t}{dt} = \epsilon - x_0 .$$
#
# A network $v_\theta(x_t, t)$ regresses that velocity, the **conditional flow-matching loss**:
#
# $$\mathcal{L} = \mathbb{E}_{t \sim U(0, 1),\, x_0,\, \epsilon}\, \big\| v_\theta(x_t, t) - (\epsilon - x_0) \big\|^2 .$$
#
# Many lines pass through the same $x_t$ (different pairs of $x_0$ and $\epsilon$), so the best the network can do is
# their average, $v(x, t) = \mathbb{E}[\epsilon - x_0 \mid x_t = x]$; Lipman et al. show that this averaged field's
# flow carries $\mathcal{N}(0, I)$ at $t = 1$ exactly to the data at $t = 0$. To sample, start from noise and integrate
# $dx/dt = v_\theta(x, t)$ from $t = 1$ to $t = 0$: Euler's method is $x \leftarrow x + (t_{\text{next}} - t)\,
# v_\theta(x, t)$, with $t_{\text{next}} < t$. No noise schedule, no $\bar\alpha_t$: the path is the schedule.

# %% [markdown]
# ### Exercise 3 — the flow-matching loss
# Write the loss of one training step: `my_flow_loss(v_model, x0, gen)` for a batch `x0` in $[-1, 1]$, images
# (B, 1, 28, 28) or points in the plane (B, 2). Draw one time per sample, `t = torch.rand(B, generator=gen)`, *then*
# the noise `eps = torch.randn(x0.shape, generator=gen)`: the library draws in this order, so the same seed gives the
# same numbers. Make $x_t = (1 - t)\, x_0 + t\, \epsilon$, with a copy of `t` reshaped to one number per sample,
# `t.view(-1, *[1] * (x0.dim() - 1))` ((B, 1, 1, 1) for images, (B, 1) for points); call `v_model(x_t, t)` with the
# (B,) times, and return the mean squared error to the straight line's velocity. The checker compares your function
# with the library's `flow_matching_loss` on a fixed seed, on images and on points, and tells you about the usual
# slips: the velocity's sign, the path's ends swapped, the draws in the other order, a loss that lost its gradient.
# Once it is right, the training cell below trains with your loss.

# %%
def my_flow_loss(v_model, x0, gen):
    # YOUR CODE HERE
    return None


exercises.check("flow_loss", my_flow_loss)
# exercises.solution("flow_loss")  # uncomment to see a reference answer

# %% [markdown]
# The toy: lesson 4's ring of eight Gaussians, and a small network (`FlowNet(TimeMLP())`: lesson 4's noise predictor
# for points, told the time $t \in [0, 1]$). It trains with your loss once exercise 3 is right.

# %%
RT = recipes.TOY_FLOW
ring_data, _ = ring.sample(20000, torch.Generator().manual_seed(3))
ring_loader = make_loader(TensorDataset(ring_data), 500)
flow_noise = torch.Generator().manual_seed(1)
yours = exercises.passed("flow_loss", my_flow_loss)


def toy_flow_step(model, batch):  # the points as they are, no pixel range
    if yours:
        return my_flow_loss(model, batch[0], flow_noise)
    return flow_matching_loss(model, batch[0], flow_noise, image_range=False)


print("training with", "your my_flow_loss" if yours else "the library's flow_matching_loss")
torch.manual_seed(0)
toy_flow = RT.build(S)
history = train_or_load(RT.name, lambda: fit(toy_flow, ring_loader, toy_flow_step, torch.optim.Adam(
    toy_flow.parameters(), lr=RT.lr), TOY_EPOCHS, progress=False), eight_bit=False, model=toy_flow)
losses = history.steps["loss"]
print(f"{len(losses)} steps in {history.seconds:.1f} s; loss {sum(losses[:20]) / 20:.3f} -> {sum(losses[-20:]) / 20:.3f}")
assert sum(losses[-20:]) < sum(losses[:20])

# %% [markdown]
# ### Exercise 4 — the Euler sampler
# Write `my_euler_sample(v_model, x1, steps)`: start from the noise `x1` (points (B, 2) or images) at $t = 1$ and
# integrate $dx/dt = v_\theta(x, t)$ down to $t = 0$ in `steps` equal steps. Each step goes from $t$ to
# $t_{next} = t - 1 / \text{steps}$: $x \leftarrow x + (t_{next} - t)\, v_\theta(x, t)$, with the time given as
# `torch.full((B,), t)`. Return $x$ at $t = 0$. The checker runs your loop and the library's `sample_flow` from the
# same `x1`, on points and on images. Once it is right, the sampling cell below uses your sampler.

# %%
def my_euler_sample(v_model, x1, steps):
    # YOUR CODE HERE
    return None


exercises.check("euler_sampler", my_euler_sample)
# exercises.solution("euler_sampler")  # uncomment to see a reference answer

# %% [markdown]
# 2,000 particles, 50 Euler steps (your sampler once exercise 4 is right). Scrub the time from $t = 1$ to $0$ and watch
# the Gaussian noise flow onto the ring; the faint lines are the paths of 40 particles. They are not straight: many
# straight lines cross at each point, and the network follows their average, which bends.

# %%
def library_euler(v_model, x1, steps):
    return sample_flow(v_model, noise=x1, steps=steps, image_range=False)[0]


toy_sampler = my_euler_sample if exercises.passed("euler_sampler", my_euler_sample) else library_euler
x_end = toy_sampler(toy_flow, x_T, 50)
_, toy_path = sample_flow(toy_flow, noise=x_T, steps=50, record=True, image_range=False)
near = (torch.cdist(x_end, ring.centres).min(dim=1).values < 3 * ring.std).float().mean().item()
print(f"{'your' if toy_sampler is my_euler_sample else 'the library'} sampler, 50 steps: {near:.1%} of the particles "
      f"within 3 std of a mode, modes filled {mode_shares(x_end, ring).min():.1%} to {mode_shares(x_end, ring).max():.1%}")
assert torch.allclose(x_end, toy_path.x[-1], atol=1e-4)
if PROFILE != "smoke":
    assert near > 0.8
PointScrubber(toy_path.x[::2] + [toy_path.x[-1]], description="t", values=[round(t, 2) for t in toy_path.t[::2]] + [0.0],
              trails=40, start=0)

# %% [markdown]
# ## 4. Flow matching on digits
#
# The same loss trains lesson 4's U-Net, unchanged, with lesson 4's training settings (Adam, EMA, the same epochs and
# batch size, bfloat16 where the CPU has it): only the loss differs. `FlowNet` tells the U-Net the time as $1000\, t$,
# the range of timesteps its sinusoidal embedding was sized for. The digits are mapped to $[-1, 1]$ as in lesson 4.

# %%
RF = recipes.FLOW
epochs, batch_size = S.for_model("flow")
torch.manual_seed(0)
flow = RF.build(S).to(device)
print(f"{RF}\nvelocity U-Net: {n_params(flow):,} parameters. {describe_fast_path(device)}")
optimizer = torch.optim.Adam(flow.parameters(), lr=RF.lr)
flow_ema = EMA(flow, decay=RF.ema_decay)
digit_noise = torch.Generator().manual_seed(0)


def flow_training_step(model, batch):
    with fast_autocast(device):
        return flow_matching_loss(lambda x, t: model(x, t).float(), batch[0], digit_noise)


live = LivePlot(logy=True, title="flow-matching loss")
flow_history = train_or_load(RF.name, lambda: fit(flow, make_loader(train, batch_size), flow_training_step, optimizer,
                                                  epochs, device=device, callbacks=[flow_ema, live]),
                             show=live, ema=flow_ema.model)
losses = flow_history.steps["loss"]
print(f"{len(losses)} steps in {flow_history.seconds:.0f} s; loss {sum(losses[:20]) / 20:.3f} -> "
      f"{sum(losses[-20:]) / 20:.3f} (a model that always says 0 scores about 2)")
assert sum(losses[-20:]) < 0.8 * sum(losses[:20])


def v_flow(x, t):  # what the samplers call: the averaged weights, outputs in float32
    with fast_autocast(device):
        return flow_ema.model(x.to(device), t.to(device)).float().cpu()


images, path = sample_flow(v_flow, n=32, steps=8, method="heun", generator=torch.Generator().manual_seed(2))
show_images(images, nrow=16, title=f"flow matching, 8 Heun steps ({path.nfe} network calls)")
plt.show()

# %% [markdown]
# ## 5. Steps against quality
#
# Euler's method makes an error at every step that shrinks with the step size $h$ as $h^2$, so $h$ over the whole run.
# **Heun's method** (the trapezoid rule) looks ahead: an Euler step to $t_{\text{next}}$, the velocity there, then the
# step again with the average of both velocities. Two network calls per step, and an error of order $h^2$ over the run.
#
# ### Exercise 5 — one Heun step
# Write `my_heun_step(v_model, x, t, t_next)`: $x$ at `t_next` by Heun's method. Take the velocity $v_1$ at $(x, t)$,
# make Euler's guess of $x$ at `t_next`, take the velocity $v_2$ there, and step from $x$ again with the trapezoid
# rule. Two network calls; give the times as `torch.full((B,), t)`. The checker compares with the library's
# `heun_step`.

# %%
def my_heun_step(v_model, x, t, t_next):
    # YOUR CODE HERE
    return None


exercises.check("heun_step", my_heun_step)
# exercises.solution("heun_step")  # uncomment to see a reference answer

# %% [markdown]
# The price of a sample is the number of network calls (function evaluations, NFE). Heun's last step, which ends at
# $t = 0$, is an Euler step (as in Karras et al. 2022): its second call would ask for the velocity at $t = 0$ of a
# point that is not yet a digit, where the field is steep and the network never saw such inputs. So $k$ Heun steps
# cost $2k - 1$ calls. For 1 to 32 calls: the flow with Euler and with Heun, and lesson 4's DDPM with DDIM (and its
# usual 50 steps), scored by the Frechet distance to the training digits on two feature networks (the course's digit
# classifier, and a second one of another architecture and seed). Lesson 4's model trained for the time printed
# above, with the same network, data, epochs and batch size as the flow here.

# %%
def ddim_eps(x, t):
    with fast_autocast(device):
        return eps_model(x, t)


plans = {"flow, Euler": [("euler", steps) for steps in S.ddim_steps],  # the step counts are the profile's
         "flow, Heun": [("heun", steps) for steps in S.ddim_steps if 2 <= steps <= 16],
         "DDPM, DDIM": [("ddim", steps) for steps in (*S.ddim_steps, 50)]}
n_table = S.n_sampled
table = {name: {} for name in plans}  # name -> {network calls: (FD, FD on the second network, seconds)}
for name, plan in plans.items():
    for method, steps in plan:
        start = time.perf_counter()
        if method == "ddim":
            samples, _ = ddim_sample(ddim_eps, schedule, n=n_table, steps=steps, generator=torch.Generator().manual_seed(4))
            nfe = steps
        else:
            samples, path = sample_flow(v_flow, n=n_table, steps=steps, method=method,
                                        generator=torch.Generator().manual_seed(4))
            nfe = path.nfe
        seconds = time.perf_counter() - start
        table[name][nfe] = (fd_to_training_digits(samples), fd_to_training_digits(samples, "second"), seconds)
print(f"{n_table} samples each; Frechet distance to the training digits on the digit classifier / the second network")
for name, row in table.items():
    print(f"{name:12s}" + "  ".join(f"{nfe:2d} calls: {fd:7.1f} / {fd2:5.2f}" for nfe, (fd, fd2, _) in row.items()))
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, k, title in ((axes[0], 0, "digit classifier"), (axes[1], 1, "second network")):
    for name, row in table.items():
        ax.plot(list(row), [v[k] for v in row.values()], "o-", label=name)
    ax.set_xscale("log", base=2), ax.set_yscale("log"), ax.set_xlabel("network calls per sample")
    ax.set_ylabel("Frechet distance"), ax.set_title(title), ax.legend()
plt.show()


def best(name, k, most_calls):
    return min(v[k] for nfe, v in table[name].items() if nfe <= most_calls)


for k, network in ((0, "digit classifier"), (1, "second network")):
    flow_best = min(best("flow, Euler", k, 10), best("flow, Heun", k, 10))
    print(f"{network}: the flow's best with at most 10 calls {flow_best:.2f}; DDIM's best with up to 50 calls "
          f"{best('DDPM, DDIM', k, 50):.2f}")
    if PROFILE == "cpu":
        assert flow_best < best("DDPM, DDIM", k, 50)

# %% [markdown]
# ## 6. Straightening the flow: reflow and distillation
#
# If every path were a straight line, one Euler step would land exactly where the whole path ends. The paths bend
# because the pairs $(x_0, \epsilon)$ were drawn independently, so straight lines cross and the network averages them.
# **Reflow** (Liu et al. 2023) re-pairs them: draw noises, let the trained flow carry each to its image, and train
# again on these pairs, noise and the image *it* became. Lines between such pairs hardly cross, so the new flow is
# straighter. We measure straightness along a sampling run (Liu et al.'s $S$): the mean squared difference between each
# step's velocity and the run's constant velocity $x_{\text{noise}} - x_{\text{end}}$, relative to the latter's size;
# 0 means a straight line.
#
# First on the toy, where everything is fast: pairs from the toy flow (50 Euler steps), then the reflowed copy.

# %%
RR = recipes.TOY_REFLOW
toy_pairs = reflow_pairs(toy_flow, 20000, steps=50, method="euler", batch_size=5000,
                         generator=torch.Generator().manual_seed(5), shape=(2,), image_range=False)
toy_reflow = RR.build(S)
toy_reflow.load_state_dict(toy_flow.state_dict())  # reflow continues from the flow it straightens
pair_noise = torch.Generator().manual_seed(6)
train_or_load(RR.name, lambda: fit(toy_reflow, make_loader(toy_pairs, 500), pair_step(pair_noise, image_range=False),
                                   torch.optim.Adam(toy_reflow.parameters(), lr=RR.lr), max(1, TOY_EPOCHS // 2),
                                   progress=False), eight_bit=False, model=toy_reflow)
toy_rows = {}
for name, net in (("flow", toy_flow), ("reflow", toy_reflow)):
    _, path = sample_flow(net, noise=x_T, steps=50, record=True, image_range=False)
    one_step, _ = sample_flow(net, noise=x_T, steps=1, image_range=False)
    near = (torch.cdist(one_step, ring.centres).min(dim=1).values < 3 * ring.std).float().mean().item()
    toy_rows[name] = (straightness(path), near, path)
    print(f"{name:7s}: straightness {toy_rows[name][0]:.3f}; one Euler step puts {near:.1%} of the points near a mode")
assert toy_rows["reflow"][0] < toy_rows["flow"][0]
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax, (name, (_, _, path)) in zip(axes, toy_rows.items()):
    lines = torch.stack([x[:60] for x in path.x])
    ax.plot(lines[:, :, 0], lines[:, :, 1], color="C1", alpha=0.6, linewidth=0.8)
    ax.scatter(path.x[-1][:60, 0], path.x[-1][:60, 1], s=8, color="C0")
    ax.set_title(f"{name}: 60 paths from noise to the ring"), ax.set_aspect("equal")
plt.show()

# %% [markdown]
# Now the digits. The pairs come from the flow of section 4 (the recipe's solver, `pair_solver`); reflow starts from the
# flow's averaged weights and trains on them with lower learning rate. Then **distillation**: a third copy is trained
# so that one Euler step from $t = 1$, $x_0 = \epsilon - v_\theta(\epsilon, 1)$, lands on the pair's image
# (`distill_loss`), a model that draws a digit in a single call.

# %%
RR, RD = recipes.REFLOW, recipes.DISTILL
method, pair_steps = RR.pair_solver
pair_gen = torch.Generator().manual_seed(7)


def make_pairs():
    start = time.perf_counter()
    pairs = reflow_pairs(v_flow, len(train), steps=pair_steps, method=method, generator=pair_gen)
    print(f"{len(pairs):,} pairs made with {pair_steps} {method} steps in {time.perf_counter() - start:.0f} s")
    return pairs


pairs = []


def in_fast_autocast(step):  # the library's step functions, in bfloat16 where the CPU has it (as in section 4)
    def fast_step(model, batch):
        with fast_autocast(device):
            return step(model, batch)
    return fast_step


def train_reflow():
    pairs.append(make_pairs())
    epochs, batch_size = S.for_model("reflow")
    return fit(reflow, make_loader(pairs[0], batch_size), in_fast_autocast(pair_step(torch.Generator().manual_seed(8))),
               torch.optim.Adam(reflow.parameters(), lr=RR.lr), epochs, device=device, callbacks=[reflow_ema])


def train_distill():
    epochs, batch_size = S.for_model("distill")
    return fit(distilled, make_loader(pairs[0], batch_size), in_fast_autocast(distill_step()),
               torch.optim.Adam(distilled.parameters(), lr=RD.lr), epochs, device=device, callbacks=[distill_ema])


reflow = RR.build(S).to(device)
reflow.load_state_dict(flow_ema.model.state_dict())
reflow_ema = EMA(reflow, decay=RR.ema_decay)
reflow_history = train_or_load(RR.name, train_reflow, ema=reflow_ema.model)
distilled = RD.build(S).to(device)
distilled.load_state_dict(reflow_ema.model.state_dict())
distill_ema = EMA(distilled, decay=RD.ema_decay)
distill_history = train_or_load(RD.name, train_distill, ema=distill_ema.model)
print(f"pairs made with {pair_steps} {method} steps (recipes.REFLOW.pair_solver); reflow trained "
      f"{reflow_history.seconds:.0f} s, distillation {distill_history.seconds:.0f} s")


def velocity(net):
    def v(x, t):
        with fast_autocast(device):
            return net(x.to(device), t.to(device)).float().cpu()
    return v


# %% [markdown]
# Straightness, and quality at 1, 2 and 4 network calls (Euler), for the flow, its reflow and the distilled model.
# Besides the two Frechet distances, **precision** (Kynkäänniemi et al. 2019): the share of samples that fall inside
# the cloud of real digits in the classifier's feature space (within the distance of a real digit to its third
# nearest real neighbour). A blurry average of all digits is far from every real one; a sharp, plausible digit is not.

# %%
from course_lib.metrics import precision_recall  # noqa: E402  (used only here)

real_digits = train.tensors[0][:1000]
models = {"flow": velocity(flow_ema.model), "reflow": velocity(reflow_ema.model),
          "distilled": velocity(distill_ema.model)}
probe = torch.randn(100, 1, 28, 28, generator=gen)
rows = {}
for name, v in models.items():
    _, path = sample_flow(v, noise=probe, steps=16, record=True)
    rows[name] = {"straightness": straightness(path)}
    for nfe in (1, 2, 4):
        images, _ = sample_flow(v, n=n_table, steps=nfe, generator=torch.Generator().manual_seed(4))
        rows[name][nfe] = (fd_to_training_digits(images), fd_to_training_digits(images, "second"),
                           precision_recall(images, real_digits)[0])
print(f"{'':10s}{'straightness':>13s}" + "".join(f"{f'{nfe} call(s): FD / FD2 / precision':>38s}" for nfe in (1, 2, 4)))
for name, row in rows.items():
    print(f"{name:10s}{row['straightness']:13.3f}" + "".join(
        f"{'%.1f / %.2f / %.2f' % row[n]:>38s}" for n in (1, 2, 4)))
assert rows["reflow"]["straightness"] < rows["flow"]["straightness"]
if PROFILE == "cpu":  # one call: the distilled model beats the flow on all three measures
    assert all(rows["distilled"][1][k] < rows["flow"][1][k] for k in (0, 1))
    assert rows["distilled"][1][2] > rows["flow"][1][2]
one_call = {name: sample_flow(v, noise=probe[:16], steps=1)[0] for name, v in models.items()}
fig, axes = plt.subplots(3, 1, figsize=(10, 2.4))
for ax, (name, images) in zip(axes, one_call.items()):
    show_images(images, nrow=16, ax=ax, title=f"{name}, one network call")
plt.show()

# %% [markdown]
# ### Exercise 6 — what one call replaces
# The distilled model draws a digit in one network call. The flow made the (noise, image) pairs it learned from with
# the method and steps printed above (`recipes.REFLOW.pair_solver`). How many network calls did that take per batch
# of pairs, as `sample_flow` counts them (`path.nfe`)? (A whole number; read `sample_flow`'s docstring.)

# %%
my_answer = None  # a whole number
exercises.check("one_step_nfe", my_answer)
# exercises.solution("one_step_nfe")  # uncomment to see a reference answer

# %% [markdown]
# ## 7. Guidance for flows
#
# Lesson 5's classifier-free guidance carries over unchanged: a velocity is a prediction like the noise, so mix the
# conditional and the unconditional one, $v = v(x, t, \varnothing) + w\, \big(v(x, t, y) - v(x, t, \varnothing)\big)$,
# with the label dropped (set to "no label") 10% of the time during training. Rather than train a class-conditional
# flow from scratch, start from the flow of section 4: the U-Net gets a label embedding that starts at zero, so at
# first the model *is* the unconditional flow, then it learns what each label adds. Lesson 5's `GuidedModel` guides it.

# %%
RC = recipes.CFG_FLOW
cfg_flow = RC.build(S).to(device)
missing = cfg_flow.load_state_dict(flow_ema.model.state_dict(), strict=False).missing_keys
torch.nn.init.zeros_(cfg_flow.net.label_emb.weight)
print(f"started from the flow's weights; new: {missing}")
cfg_ema = EMA(cfg_flow, decay=RC.ema_decay)
label_noise = torch.Generator().manual_seed(9)


def cfg_flow_step(model, batch):
    y = drop_labels(batch[1], RC.p_uncond, model.num_classes, label_noise)
    with fast_autocast(device):
        return flow_matching_loss(lambda x, t: model(x, t, y.to(device)).float(), batch[0], label_noise)


epochs, batch_size = S.for_model("cfg_flow")
live = LivePlot(logy=True, title="flow-matching loss, class-conditional")
cfg_history = train_or_load(RC.name, lambda: fit(cfg_flow, make_loader(train, batch_size), cfg_flow_step,
                                                 torch.optim.Adam(cfg_flow.parameters(), lr=RC.lr), epochs,
                                                 device=device, callbacks=[cfg_ema, live]),
                            show=live, ema=cfg_ema.model)

labels = class_grid_labels(4)
start_noise = torch.randn(len(labels), 1, 28, 28, generator=gen)
slider_w = [0.0, 1.0, 2.0, 3.0, 5.0]
grids, accuracy = [], {}
for w in slider_w:
    guided = GuidedModel(cfg_ema.model, labels, w)
    images, _ = sample_flow(lambda x, t: guided(x.to(device), t.to(device)).float().cpu(), noise=start_noise, steps=8,
                            method="heun")
    grids.append(images)
    accuracy[w] = class_accuracy(images, labels)
    print(f"w = {w}: {accuracy[w]:.0%} of the {len(labels)} digits are read as the class asked for")
if PROFILE == "cpu":
    assert accuracy[3.0] > accuracy[0.0] + 0.3
FrameScrubber(grids, [f"guidance w = {w}: columns 0-9 (accuracy {accuracy[w]:.0%})" for w in slider_w], nrow=10,
              description="w", values=slider_w, start=0)

# %% [markdown]
# ## Summary
# - The **score** $\nabla_x \log p$ needs no normalising constant; **Langevin dynamics** samples with it. One noise
#   level is not enough: the learned score is poor away from the data and the mixture's weights come out wrong.
#   **Annealed Langevin** over a ladder of noise levels fixes both.
# - DDPM's forward process is a **variance-preserving SDE**; it runs backwards as the **reverse SDE** (Algorithm 2) or
#   as the **probability-flow ODE**, with the same marginals and no noise. DDIM is Euler's method on that ODE.
# - **Flow matching** trains a velocity on straight paths $x_t = (1 - t) x_0 + t \epsilon$ with a plain regression;
#   sampling integrates an ODE. Heun buys accuracy per network call over Euler.
# - **Reflow** straightens the paths by training on the model's own pairs; a **distilled** model then draws in one call.
# - Classifier-free guidance works on velocities as on noise predictions.
# - **Next:** the lectures' last topics, text-to-image in miniature.
