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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/image-generation-course/image-generation-course/blob/main/notebooks/04_diffusion.ipynb)

# %% [markdown]
# # Lesson 4 — Diffusion models (DDPM)
#
# GANs make sharp images in one step but are hard to train; VAEs train easily but blur. **Denoising diffusion
# probabilistic models** (DDPM, Ho et al. 2020) get both stable training and sharp samples by splitting generation
# into many small steps:
#
# - a fixed **forward process** adds a little Gaussian noise at each of $T = 1000$ steps, until a digit is pure noise;
# - a network learns to undo *one* small step: given a noisy image $x_t$ and the step $t$, predict the noise
#   $\epsilon$ that was added. Its loss is a plain regression;
# - to generate, start from pure noise and undo the steps one by one.
#
# In this lesson you will:
# 1. run the forward process, step by step and in closed form, and scrub through it;
# 2. look at the noise schedule (linear vs cosine);
# 3. write Algorithm 1's loss and Algorithm 2's sampling loop yourself, train a small time-conditioned U-Net with your
#    loss and sample it with your loop;
# 4. scrub backwards through a sampling run of *your* model: $x_t$, the predicted $x_0$ and the predicted noise;
# 5. see where the loss comes from: the ELBO, one KL term per step, each a weighted noise error, and how the simple
#    loss and Min-SNR reweigh those terms; compare the two variances Algorithm 2 may use;
# 6. read the noise predictor as a score, on a 2-D toy whose true score is known;
# 7. sample faster with DDIM, and measure what the speed costs.

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

from course_lib import exercises, recipes
from course_lib.data import load_dataset, make_loader
from course_lib.diffusion import (DiffusionSchedule, Trajectory, ddim_sample, ddpm_sample, ddpm_update, diffusion_loss,
                                  forward_trajectory, predict_x0, q_sample, q_step, to_image_range, to_model_range)
from course_lib.diffusion_theory import GaussianMixture2D, TimeMLP, elbo_weight, min_snr_weight, posterior
from course_lib.fastpath import describe_fast_path, fast_autocast, prepare_model
from course_lib.lesson import start_lesson
from course_lib.liveplot import LivePlot
from course_lib.metrics import fd_to_training_digits, quality_report
from course_lib.nets import n_params
from course_lib.plotting import show_images, show_rows
from course_lib.pretrained import train_or_load
from course_lib.training import EMA, fit
from torch.distributions import Normal, kl_divergence
from torch.utils.data import TensorDataset
from course_lib.vae import slerp
from course_lib.widgets import FrameScrubber

USE_PRETRAINED = False  # True (or COURSE_PRETRAINED=1 in the environment): load bundled weights instead of training
PRESENTER = False  # True: larger fonts, figures and widgets, for a projector
PROFILE, S, device = start_lesson("diffusion", pretrained=USE_PRETRAINED, presenter=PRESENTER)
R = recipes.DDPM  # course_lib/recipes.py: the U-Net, the schedule and every number of its training
print(R)
train = load_dataset("mnist", "train", n=S.n_train)
x_train = train.tensors[0]

# %% [markdown]
# ## The forward process
#
# With a variance schedule $\beta_1, \dots, \beta_T$ (here rising linearly from $10^{-4}$ to $0.02$), one step of the
# forward process shrinks the image a little and adds a little noise:
#
# $$q(x_t \mid x_{t-1}) = \mathcal{N}\big(x_t;\ \sqrt{1 - \beta_t}\, x_{t-1},\ \beta_t I\big).$$
#
# Steps of Gaussian noise add up to one Gaussian, so any $x_t$ can be reached from $x_0$ in one jump. With
# $\alpha_t = 1 - \beta_t$ and $\bar\alpha_t = \prod_{s \le t} \alpha_s$:
#
# $$x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon, \qquad \epsilon \sim \mathcal{N}(0, I).$$
#
# Pixels are mapped from $[0, 1]$ to $[-1, 1]$ first, so that pure noise $\mathcal{N}(0, I)$ has the data's scale.
#
# **Numbering: the paper's $t$ and the code's.** The paper counts the noising steps $t = 1, \dots, T$ and calls the
# clean image $x_0$. Python counts from 0, so the library keeps $\beta_t$, $\alpha_t$ and $\bar\alpha_t$ in tensors of
# length $T$ whose index is the paper's $t - 1$: `schedule.alpha_bars[0]` is $\bar\alpha_1 = \alpha_1$ and
# `schedule.alpha_bars[T - 1]` is $\bar\alpha_T$. From here on a `t` in code (the network's input, a slider, a plot's
# axis) is that index, the paper's $t - 1$; the clean image is `x0` in both.
#
# Check that both routes give the same distribution: take one image, apply the 300 single steps $q(x_1 \mid x_0),
# \dots, q(x_{300} \mid x_{299})$ (the code's steps 0 to 299) 2,000 times, and compare the mean and variance of every
# pixel with the closed form at the paper's $t = 300$, the code's `t = 299`.

# %%
schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
print(f"index 0 holds the paper's t = 1: abar_1 = {schedule.alpha_bars[0]:.4f} = alpha_1 = 1 - beta_1")
assert schedule.alpha_bars[0] == schedule.alphas[0]
x0 = to_model_range(x_train[:1]).repeat(2000, 1, 1, 1)  # the same digit 2,000 times
gen = torch.Generator().manual_seed(0)
t = 299  # the code's index of the paper's t = 300
x = x0
for s in range(t + 1):  # the code's steps s = 0 .. 299: the paper's x_1, ..., x_300
    x = q_step(schedule, x, s, torch.randn(x.shape, generator=gen))
mean_gap = (x.mean(0) - schedule.sqrt_alpha_bars[t] * x0[0]).abs().max().item()
var_gap = (x.var(0) - (1 - schedule.alpha_bars[t])).abs().max().item()
print(f"{t + 1} single steps (paper's t = {t + 1}, code's t = {t}): abar_t = {schedule.alpha_bars[t]:.4f}; largest "
      f"gap to the closed form: mean {mean_gap:.3f}, variance {var_gap:.3f}")
assert t + 1 == 300 and mean_gap < 0.1 and var_gap < 0.15

# %% [markdown]
# ### Exercise 1 — `q_sample`
# Write the closed form: `my_q_sample(x0, abar_t, eps)` returns $x_t$ given $x_0$, $\bar\alpha_t$ (a number) and the
# noise.

# %%
def my_q_sample(x0, abar_t, eps):
    # YOUR CODE HERE
    return None


exercises.check("q_sample", my_q_sample)
# exercises.solution("q_sample")  # uncomment to see a reference answer

# %% [markdown]
# ### Scrub through the forward process
# Eight digits on their way to noise. The slider shows the timestep $t$ and opens at $t = 0$, the clean digits;
# drag it or press play. The caption gives $\bar\alpha_t$ of $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}
# \,\epsilon$. Below, the histogram of all pixel values at a few steps: it starts as the digits' two bumps
# (background and ink) and ends as the standard normal.

# %%
ts = list(range(0, R.T, 25)) + [R.T - 1]
frames = forward_trajectory(schedule, x_train[:8], ts, generator=torch.Generator().manual_seed(1))
FrameScrubber(list(frames), [f"t = {t}: abar_t = {schedule.alpha_bars[t]:.3f}" for t in ts], nrow=8, description="t",
              values=ts, start=0)

# %%
fig, axes = plt.subplots(1, 5, figsize=(18, 3), sharey=True)
x0_many = to_model_range(x_train[:500])
normal = torch.distributions.Normal(0.0, 1.0)
grid = torch.linspace(-4, 4, 200)
for ax, t in zip(axes, [0, 50, 200, 500, 999]):
    xt = q_sample(schedule, x0_many, t, torch.randn(x0_many.shape, generator=gen))
    ax.hist(xt.flatten().numpy(), bins=80, range=(-4, 4), density=True, alpha=0.7)
    ax.plot(grid, normal.log_prob(grid).exp(), "r", label="N(0, 1)")
    ax.set_title(f"t = {t}")
axes[0].legend()
plt.show()
print(f"pixels at t = 999: mean {xt.mean():.3f}, std {xt.std():.3f}")
assert abs(xt.mean()) < 0.02 and abs(xt.std() - 1) < 0.02

# %% [markdown]
# ## The noise schedule
# $\bar\alpha_t$ is how much of the image is left at step $t$; the signal-to-noise ratio is
# $\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)$. The linear schedule destroys the image fast: by the middle
# almost nothing is left, and many late steps are spent on near-pure noise. The **cosine** schedule (Nichol &
# Dhariwal 2021) spreads the destruction more evenly.

# %%
cosine = DiffusionSchedule(T=R.T, kind="cosine")
steps = torch.arange(R.T)
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for sched, name in [(schedule, "linear"), (cosine, "cosine")]:
    axes[0].plot(steps, sched.alpha_bars, label=name)
    axes[1].semilogy(steps, sched.snr(steps), label=name)
axes[0].set_title(r"$\bar\alpha_t$ (signal left)"), axes[1].set_title("signal-to-noise ratio")
for ax in axes:
    ax.set_xlabel("t"), ax.legend()
plt.show()
print(f"linear: abar at T = {schedule.alpha_bars[-1]:.1e}, at t = 500: {schedule.alpha_bars[500]:.3f}; "
      f"cosine at t = 500: {cosine.alpha_bars[500]:.3f}")
assert 3.5e-5 < schedule.alpha_bars[-1] < 4.5e-5 and schedule.alpha_bars[500] < 0.1  # half way, little is left
assert cosine.alpha_bars[500] > schedule.alpha_bars[500]

# %% [markdown]
# ### Exercise 2 — how much is left?
# With the linear schedule, $\bar\alpha_{T} \approx 4 \cdot 10^{-5}$. By what factor is the original image scaled in
# $x_T$ (a number)?

# %%
my_answer = None  # a number
exercises.check("signal_left", my_answer)
# exercises.solution("signal_left")  # uncomment to see a reference answer

# %% [markdown]
# ## Training: Algorithm 1
#
# Repeat: take a training image $x_0$, a step $t \sim \mathrm{Uniform}\{1, \dots, T\}$ (in code: an index
# $0, \dots, T-1$) and noise $\epsilon \sim \mathcal{N}(0, I)$; take a gradient step on
#
# $$\big\| \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon,\ t\big) \big\|^2.$$
#
# The network $\epsilon_\theta(x_t, t)$ is a **U-Net**: an encoder-decoder with skip connections, so fine detail can
# go straight across. It is told $t$ through a sinusoidal embedding (as Transformers encode positions) added inside
# every block; one network serves all 1000 steps. It knows nothing about the schedule.
#
# One change from the paper: this lesson trains with **Min-SNR weighting** (Hang et al. 2023), which multiplies each
# image's error by $\min(\mathrm{SNR}(t), 5) / \mathrm{SNR}(t)$, where $\mathrm{SNR}(t) = \bar\alpha_t / (1 -
# \bar\alpha_t)$ is the signal-to-noise ratio plotted above (the section "Where the loss comes from" shows it is another
# weighting of the ELBO's own terms). Nearly clean images (large SNR, small $t$), whose noise is easy to spot but which
# teach little about the shape of a digit, count less; noisy ones count fully. On a CPU it gets to good digits much
# sooner: in the `cpu` profile, 224 s of training with it give the DDIM table below a Frechet distance of about 385 at
# 50 steps, against 1,099 after 419 s with the plain loss (the README has both). `min_snr_gamma=None` gives the paper's
# plain loss.
#
# On a CPU where it is faster (bfloat16 instructions, and a bfloat16 matrix product timed once to be sure), the
# arithmetic runs in bfloat16 (`fast_autocast`); the loss itself stays in float32.
# We also keep an exponential moving average of the weights (`EMA`), as DDPM does: the average over the last few
# hundred steps samples better than the last step's noisy weights. Sampling uses the averaged copy.

# %% [markdown]
# ### Exercise 3 — Algorithm 1's loss
# Write the loss of one training step: `my_ddpm_loss(eps_model, schedule, x0, gen, min_snr_gamma=None)` for a batch
# `x0` of images in $[-1, 1]$, shaped (B, 1, 28, 28). Draw one step per image, `t = torch.randint(0, schedule.T, (B,),
# generator=gen)` (the code's index: the paper's $t - 1$), *then* the noise `torch.randn(x0.shape, generator=gen)`:
# the library draws in this order, so the same seed gives the same numbers. Make $x_t$ with the closed form
# (`schedule.alpha_bars[t]`, reshaped to (B, 1, 1, 1)), call `eps_model(x_t, t)`, and return the mean squared error.
# With `min_snr_gamma`, weight each image's error by $\min(\mathrm{SNR}(t), \gamma) / \mathrm{SNR}(t)$ first
# (`schedule.snr(t)`). The checker compares your function with the library's `diffusion_loss` on a fixed seed and
# tells you about the usual slips: $t$ counted from 1, $\alpha_t$ where $\bar\alpha_t$ belongs, a loss that lost its
# gradient. Once it is right, the training cell below trains with your loss.

# %%
def my_ddpm_loss(eps_model, schedule, x0, gen, min_snr_gamma=None):
    # YOUR CODE HERE
    return None


exercises.check("ddpm_loss", my_ddpm_loss)
# exercises.solution("ddpm_loss")  # uncomment to see a reference answer

# %% [markdown]
# Train. The step function below uses your `my_ddpm_loss` when exercise 3 is right (it draws the same $t$ and
# $\epsilon$ as the library and computes the same loss, up to rounding), and the library's `diffusion_loss` otherwise.

# %%
torch.manual_seed(0)
model = prepare_model(R.build(S), device)  # moved to the device, in the memory layout that is fastest there
print(f"U-Net: {n_params(model):,} parameters. {describe_fast_path(device)}")
optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
step_noise = torch.Generator().manual_seed(0)
ema = EMA(model, decay=R.ema_decay)


def training_step(model, batch):
    def eps_of(x, t):  # the U-Net on its device, the prediction in float32
        return model(x.to(device), t.to(device)).float()

    with fast_autocast(device):
        if exercises.passed("ddpm_loss", my_ddpm_loss):  # your Algorithm 1, computed where the generator is (CPU)
            return my_ddpm_loss(lambda x, t: eps_of(x, t).cpu(), schedule, to_model_range(batch[0]).cpu(),
                                step_noise, R.min_snr_gamma)
        return diffusion_loss(eps_of, schedule, batch[0], step_noise, R.min_snr_gamma)


yours = exercises.passed("ddpm_loss", my_ddpm_loss)
print("training with", "your my_ddpm_loss" if yours else "the library's diffusion_loss")


live = LivePlot(logy=True, title="noise-prediction loss")
history = train_or_load(R.name, lambda: fit(model, make_loader(train, S.batch_size), training_step, optimizer, S.epochs,
                                            device=device, callbacks=[ema, live]), show=live, ema=ema.model)
losses = history.steps["loss"]
first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
print(f"{len(losses)} steps in {history.seconds:.0f} s; loss {first:.3f} -> {last:.3f}")
assert last < 0.5 * first


def eps_model(x, t):  # what the samplers call: the averaged weights, outputs in float32
    return ema.model(x, t).float()


# %% [markdown]
# ## Sampling: Algorithm 2
#
# Start from $x_T \sim \mathcal{N}(0, I)$; for $t = T, \dots, 1$ (in code: $t = T-1, \dots, 0$):
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\, \epsilon_\theta(x_t, t)\Big)
# + \sigma_t z, \qquad z \sim \mathcal{N}(0, I)\ (z = 0 \text{ at the last step}),\ \sigma_t^2 = \beta_t.$$
#
# The divisor is $\sqrt{\alpha_t}$, one step's shrinking, while the noise's scale uses $\bar\alpha_t$; the last step
# (the paper's $t = 1$, the code's `t = 0`) adds no noise, so $x_0$ is the mean.

# %% [markdown]
# ### Exercise 4 — one reverse step
# Write Algorithm 2's update: `my_reverse_step(x_t, eps, beta_t, abar_t, z)` returns $x_{t-1}$ with $\sigma_t^2 =
# \beta_t$ (numbers for `beta_t` and `abar_t`, tensors for the rest).

# %%
def my_reverse_step(x_t, eps, beta_t, abar_t, z):
    # YOUR CODE HERE
    return None


exercises.check("reverse_step", my_reverse_step)
# exercises.solution("reverse_step")  # uncomment to see a reference answer

# %% [markdown]
# ### Exercise 5 — Algorithm 2's loop
# Now the whole sampler: `my_ddpm_sample(eps_model, schedule, x_T, gen)` starts from the given $x_T$ and returns $x_0$
# (in $[-1, 1]$, not clipped). Loop over the code's `t = T-1, ..., 0` (`reversed(range(schedule.T))`), call
# `eps_model(x, torch.full((B,), t))`, take the step of exercise 4 with `schedule.betas[t]`, `schedule.alphas[t]` and
# `schedule.alpha_bars[t]`, and add $\sigma_t z$ with `z = torch.randn(x.shape, generator=gen)` at every step but the
# last. The checker runs your loop and the library's `ddpm_sample` from the same $x_T$ and seed. Once it is right, the
# sampling cell below uses your loop.

# %%
def my_ddpm_sample(eps_model, schedule, x_T, gen):
    # YOUR CODE HERE
    return None


exercises.check("ddpm_sample", my_ddpm_sample)
# exercises.solution("ddpm_sample")  # uncomment to see a reference answer

# %% [markdown]
# All 1000 steps, for 16 digits, with your sampler when exercise 5 is right (the library's `ddpm_sample` otherwise).
# The network is wrapped so that every 10th step's $x_t$, predicted noise and predicted $x_0$ are kept, to scrub
# through afterwards; the sampler itself does not know.

# %%
def library_sampler(eps_model, schedule, x_T, gen):
    return ddpm_sample(eps_model, schedule, noise=x_T, generator=gen, image_range=False)[0]


trajectory = Trajectory()


def watched_eps_model(x, t):  # the averaged U-Net on its device; keeps a frame every 10th step and at t = 0
    t = torch.as_tensor(t)
    eps = eps_model(x.to(device), t.to(device)).cpu()
    step = int(t.flatten()[0])
    if (R.T - 1 - step) % 10 == 0 or step == 0:
        trajectory.add(step, x, predict_x0(schedule, x, step, eps).clamp(-1, 1), eps)
    return eps


yours = exercises.passed("ddpm_sample", my_ddpm_sample)
sampler = my_ddpm_sample if yours else library_sampler
gen = torch.Generator().manual_seed(2)
x_T = torch.randn(16, 1, 28, 28, generator=gen)  # then gen gives the z of every step
start = time.perf_counter()
with torch.no_grad(), fast_autocast(device):
    samples = to_image_range(sampler(watched_eps_model, schedule, x_T, gen))
ddpm_seconds = time.perf_counter() - start
who = "your" if yours else "the library's"
show_images(samples, nrow=16, title=f"DDPM with {who} sampler, {R.T} steps ({ddpm_seconds:.1f} s for 16 digits)")
plt.show()
print(f"{len(trajectory)} frames kept, t = {trajectory.t[0]} .. {trajectory.t[-1]}")
assert trajectory.t[0] == R.T - 1 and trajectory.t[-1] == 0 and samples.shape == (16, 1, 28, 28)

# %% [markdown]
# ### Scrub backwards through your model's sampling
# Each frame shows, for 8 of the digits, three rows: $x_t$ (the sample so far), the model's current guess of the
# clean image $\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta) / \sqrt{\bar\alpha_t}$, and the noise it
# predicts (grey = 0). The slider shows the code's $t$ and opens at the first step, on pure noise; drag it right,
# towards $t = 0$. Watch at which $t$ the predicted $\hat x_0$ settles on one digit, and when its strokes sharpen. The
# frames were computed during sampling; the slider only swaps them.

# %%
frames = [torch.cat([x[:8], x0[:8], to_image_range(eps[:8] / 3)])
          for x, x0, eps in zip(trajectory.x_t, trajectory.x0_pred, trajectory.eps_pred)]
scrubber = FrameScrubber(frames, [f"t = {t}: x_t / predicted x_0 / predicted noise" for t in trajectory.t],
                         nrow=8, description="t", values=trajectory.t, start=0)
scrubber

# %% [markdown]
# ## Where the loss comes from
#
# Algorithm 1 looks like a guess: predict the noise, square the error. It comes from the same bound as the VAE's.
# The noisy images $x_1, \dots, x_T$ are the latent variables, the forward process $q$ is a fixed encoder, and the
# model's reverse chain $p_\theta(x_{0:T}) = p(x_T) \prod_{t=1}^{T} p_\theta(x_{t-1} \mid x_t)$ is the decoder:
#
# $$-\log p_\theta(x_0) \le \mathbb{E}_q\Big[-\log \frac{p_\theta(x_{0:T})}{q(x_{1:T} \mid x_0)}\Big] = L,
# \qquad q(x_{1:T} \mid x_0) = \prod_{t=1}^{T} q(x_t \mid x_{t-1}).$$
#
# **The key step.** The forward chain can be written backwards once $x_0$ is known. For $t \ge 2$ the Markov property
# and Bayes' rule give $q(x_t \mid x_{t-1}) = q(x_t \mid x_{t-1}, x_0) = q(x_{t-1} \mid x_t, x_0)\, q(x_t \mid x_0) /
# q(x_{t-1} \mid x_0)$; in the product the ratios telescope to $q(x_T \mid x_0) / q(x_1 \mid x_0)$, so
#
# $$q(x_{1:T} \mid x_0) = q(x_T \mid x_0) \prod_{t=2}^{T} q(x_{t-1} \mid x_t, x_0).$$
#
# Put this into $L$ and pair each factor of $q$ with the factor of $p_\theta$ for the same variable:
#
# $$L = \mathbb{E}_q\Big[\underbrace{D_\mathrm{KL}\big(q(x_T \mid x_0)\,\|\,p(x_T)\big)}_{L_T}
#   + \sum_{t=2}^{T} \underbrace{D_\mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,
#   p_\theta(x_{t-1} \mid x_t)\big)}_{L_{t-1}} \underbrace{-\log p_\theta(x_0 \mid x_1)}_{L_0}\Big].$$
#
# $L_T$ has no parameter: $q$ is fixed and $p(x_T) = \mathcal{N}(0, I)$. Below, the backward form of $q$ is checked on
# one real noising path of a digit (both sides are sums of 1000 Gaussian log-densities, computed in float64), and
# $L_T$ is computed for that digit.

# %%
x0_one = to_model_range(x_train[:1]).double()
path = [x0_one]  # path[k] is the paper's x_k: the clean digit, then the code's steps 0 .. T-1
for s in range(R.T):
    path.append(q_step(schedule, path[-1], s, torch.randn(x0_one.shape, generator=gen, dtype=torch.float64)))
betas, abars = schedule.betas.double(), schedule.alpha_bars.double()
forwards = sum(Normal((1 - betas[s]).sqrt() * path[s], betas[s].sqrt()).log_prob(path[s + 1]).sum() for s in range(R.T))
backwards = Normal(abars[-1].sqrt() * x0_one, (1 - abars[-1]).sqrt()).log_prob(path[-1]).sum()
for k in range(2, R.T + 1):  # q(x_{k-1} | x_k, x_0): the posterior at the code's t = k - 1
    mean, var = posterior(schedule, x0_one, path[k], k - 1)
    backwards = backwards + Normal(mean, var.double().sqrt()).log_prob(path[k - 1]).sum()
L_T = kl_divergence(Normal(abars[-1].sqrt() * x0_one, (1 - abars[-1]).sqrt()), Normal(0.0, 1.0)).sum().item()
print(f"log q(x_1:T | x_0) forwards {forwards:.2f}, backwards {backwards:.2f} (relative gap "
      f"{abs(forwards - backwards) / abs(forwards):.1e}); L_T = {L_T:.4f} nats for this digit")
assert abs(forwards - backwards) < 1e-6 * abs(forwards) and L_T < 0.05

# %% [markdown]
# ### The posterior $q(x_{t-1} \mid x_t, x_0)$ and the noise parameterisation
# $q(x_{t-1} \mid x_t, x_0) \propto q(x_t \mid x_{t-1})\, q(x_{t-1} \mid x_0)$ is a product of two Gaussians in
# $x_{t-1}$; completing the square gives a Gaussian $\mathcal{N}(\tilde\mu_t, \tilde\beta_t I)$ with
#
# $$\tilde\mu_t(x_t, x_0) = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1 - \bar\alpha_t}\, x_0
#   + \frac{\sqrt{\alpha_t}\,(1 - \bar\alpha_{t-1})}{1 - \bar\alpha_t}\, x_t, \qquad
#   \tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\, \beta_t.$$
#
# The model does not know $x_0$, but $x_t$ and the noise determine it: $x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,
# \epsilon) / \sqrt{\bar\alpha_t}$. Substituted, the mean becomes
#
# $$\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,\epsilon\Big),$$
#
# which is Algorithm 2's mean with the true noise in place of $\epsilon_\theta$. So the model's step is given this
# form, $\mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\,
# \epsilon_\theta(x_t, t)\big)$, and only the noise is learned. Check it on 8 digits at the paper's $t = 300$:

# %%
x0_8, t = to_model_range(x_train[:8]), 299  # the code's t = 299 is the paper's t = 300
eps_true = torch.randn(x0_8.shape, generator=gen)
x_t = q_sample(schedule, x0_8, t, eps_true)
mu_tilde, beta_tilde = posterior(schedule, x0_8, x_t, t)  # from x_0
no_z = torch.zeros_like(x_t)
mean_gap = (mu_tilde - ddpm_update(schedule, x_t, t, eps_true, no_z)).abs().max().item()  # Algorithm 2, true noise
print(f"posterior mean from x_0 vs Algorithm 2's mean with the true noise: largest gap {mean_gap:.1e}; "
      f"beta~_t = {beta_tilde:.5f}, beta_t = {schedule.betas[t]:.5f}")
assert mean_gap < 1e-4 and beta_tilde < schedule.betas[t]

# %% [markdown]
# ### Each KL term is a weighted noise error
# Give the model's step the same variance as the posterior, $p_\theta(x_{t-1} \mid x_t) = \mathcal{N}(\mu_\theta,
# \sigma_t^2 I)$ with $q$ taken as $\mathcal{N}(\tilde\mu_t, \sigma_t^2 I)$. Between two Gaussians of one variance,
# $D_\mathrm{KL} = \|\tilde\mu_t - \mu_\theta\|^2 / (2\sigma_t^2)$, and the two means differ only in the noise:
#
# $$L_{t-1} = \frac{\beta_t^2}{2\sigma_t^2\, \alpha_t\, (1 - \bar\alpha_t)}\,
#   \big\|\epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon,\ t\big)\big\|^2
#   = \lambda_t\, \|\epsilon - \epsilon_\theta\|^2 .$$
#
# With the posterior's own variance $\tilde\beta_t$ on $q$'s side and $\sigma_t^2 = \beta_t$ on the model's, the KL
# grows by a constant that does not depend on $\epsilon_\theta$, so the gradient is the same. Both checked with your
# trained network (`kl_divergence` of torch.distributions, summed over the pixels of each image):

# %%
sigma = schedule.betas[t].sqrt()  # sigma_t^2 = beta_t, as in Algorithm 2
with torch.no_grad():
    eps_pred = eps_model(x_t.to(device), torch.full((8,), t, device=device)).cpu()
mu_theta = ddpm_update(schedule, x_t, t, eps_pred, no_z)
kl = kl_divergence(Normal(mu_tilde, sigma), Normal(mu_theta, sigma)).flatten(1).sum(1)
weighted = elbo_weight(schedule, t) * (eps_true - eps_pred).pow(2).flatten(1).sum(1)
print(f"lambda_t = {elbo_weight(schedule, t):.5f} at the paper's t = {t + 1}")
print("KL per image:            ", [round(v, 4) for v in kl.tolist()[:4]])
print("lambda_t ||eps - eps_th||^2:", [round(v, 4) for v in weighted.tolist()[:4]])
assert torch.allclose(kl, weighted, rtol=1e-3)
mu_zero = ddpm_update(schedule, x_t, t, torch.zeros_like(x_t), no_z)  # another prediction: eps_theta = 0
extra = [(kl_divergence(Normal(mu_tilde, beta_tilde.sqrt()), Normal(mu, sigma))
          - kl_divergence(Normal(mu_tilde, sigma), Normal(mu, sigma))).flatten(1).sum(1) for mu in (mu_theta, mu_zero)]
print(f"with q's own variance beta~_t the KL grows by {extra[0][0]:.4f} nats per image, for your network's "
      f"prediction and for eps_theta = 0 alike ({extra[1][0]:.4f})")
assert torch.allclose(extra[0], extra[1], atol=1e-3)

# %% [markdown]
# ### The simple loss and Min-SNR: weights on the same terms
# So the ELBO is, up to constants, $\sum_t \lambda_t\, \mathbb{E}\|\epsilon - \epsilon_\theta(x_t, t)\|^2$: one noise
# error per step, with weight $\lambda_t$ (here $\sigma_t^2 = \beta_t$). Ho et al. drop the weights: $L_\text{simple}$
# gives every step weight 1 (and samples $t$ uniformly). Their samples were better for it: the ELBO's $\lambda_t$ is
# largest for nearly clean images, whose noise is easy to find, and $L_\text{simple}$ moves the effort to the noisier
# steps. **Min-SNR**, which this lesson trains with, is a third choice of the same weights,
# $\min(\mathrm{SNR}(t), 5) / \mathrm{SNR}(t)$: 1 for the noisy steps, less than 1 wherever $\mathrm{SNR}(t) > 5$.
# All three are functions of the SNR alone: with $\sigma_t^2 = \tilde\beta_t$, for instance, $\lambda_t =
# \tfrac12\big(\mathrm{SNR}(t-1)/\mathrm{SNR}(t) - 1\big)$.

# %%
steps = torch.arange(R.T)
weights = {r"ELBO, $\sigma_t^2 = \beta_t$": elbo_weight(schedule, steps), "simple loss": torch.ones(R.T),
           f"Min-SNR, gamma = {R.min_snr_gamma:g} (this lesson)": min_snr_weight(schedule, steps, R.min_snr_gamma)}
fig, ax = plt.subplots(figsize=(8, 3.5))
for name, w in weights.items():
    ax.semilogy(steps, w, label=name)
ax.set_xlabel("t (code index)"), ax.set_ylabel("weight of the noise error"), ax.legend()
plt.show()
elbo_w, snr_w = elbo_weight(schedule, steps), min_snr_weight(schedule, steps, R.min_snr_gamma)
below = int((snr_w < 1).sum())
print(f"ELBO weight: {elbo_w[0]:.3f} at the paper's t = 1, at most {elbo_w[100:].max():.4f} from t = 101 on")
print(f"Min-SNR weight: {snr_w[0]:.1e} at t = 1, below 1 for the first {below} steps (SNR > {R.min_snr_gamma:g}), "
      f"1 after")
snr = schedule.snr(steps)
vdm_gap = (elbo_weight(schedule, steps[1:], "posterior") / (0.5 * (snr[:-1] / snr[1:] - 1)) - 1).abs().max().item()
assert elbo_w[0] > 10 * elbo_w[100:].max() and bool((snr_w[below:] == 1).all()) and vdm_gap < 1e-3
assert torch.allclose(snr_w[:below], R.min_snr_gamma / snr[:below])

# %% [markdown]
# ### $\sigma_t^2 = \beta_t$ or $\tilde\beta_t$?
# Algorithm 2 adds $\sigma_t z$ at each step, and the derivation above leaves $\sigma_t$ open. Ho et al. tried two:
# $\sigma_t^2 = \beta_t$ (what Algorithm 2 prints, the right choice if $x_0$ were $\mathcal{N}(0, I)$) and
# $\sigma_t^2 = \tilde\beta_t$ (the posterior's variance, right if $x_0$ were one fixed image), and found their samples
# about equally good. The 16 digits above used $\beta_t$; here are the same 16 starting noises and the same $z$ with
# $\tilde\beta_t$, both scored with the course's quality report. Sixteen digits make rough scores: read them against
# the reference points printed beside them, which are computed for 16 images too.

# %%
gen_again = torch.Generator().manual_seed(2)
noise_again = torch.randn(16, 1, 28, 28, generator=gen_again)  # the same x_T; gen_again now gives the same z
start = time.perf_counter()
with fast_autocast(device):
    samples_tilde, _ = ddpm_sample(eps_model, schedule, noise=noise_again.to(device), generator=gen_again,
                                   variance="posterior")
print(f"{time.perf_counter() - start:.1f} s for 16 digits with sigma_t^2 = beta~_t")
show_rows({"beta_t": samples, "beta~_t": samples_tilde.cpu()})
plt.show()
reports = {"beta": quality_report(samples, name="sigma^2 = beta_t  "),
           "posterior": quality_report(samples_tilde.cpu(), name="sigma^2 = beta~_t ")}
assert torch.equal(noise_again, x_T)
if PROFILE != "smoke":  # a few smoke steps train too little to draw digits
    assert all(r["fd"] < r["fd_noise"] for r in reports.values())

# %% [markdown]
# ## The score view
# For Gaussian noise, predicting the noise and estimating the **score** $\nabla_x \log q(x)$ are the same task. Given
# $x_0$, $\nabla_{x_t} \log q(x_t \mid x_0) = -(x_t - \sqrt{\bar\alpha_t}\, x_0) / (1 - \bar\alpha_t) =
# -\epsilon / \sqrt{1 - \bar\alpha_t}$. The best prediction of the noise from $x_t$ alone is the average over the
# $x_0$ that could have made $x_t$, and it is the score of the noisy data, scaled (Tweedie's formula):
#
# $$\mathbb{E}[\epsilon \mid x_t] = -\sqrt{1 - \bar\alpha_t}\; \nabla_{x_t} \log q(x_t), \qquad
#   \text{so}\qquad s_\theta(x_t, t) = -\frac{\epsilon_\theta(x_t, t)}{\sqrt{1 - \bar\alpha_t}}.$$
#
# A trained noise predictor is a score model, and Algorithm 2 moves each sample a little way up the score, plus noise.
# For digits the true score is unknown; for a mixture of Gaussians in the plane it is known at every $t$, because
# noising a mixture of Gaussians gives another one. First Tweedie's formula itself: the best noise prediction, computed
# from the best denoiser $\mathbb{E}[x_0 \mid x_t]$, against autograd's gradient of the exact $\log q(x_t)$.

# %%
toy = GaussianMixture2D.ring()
toy_x0, _ = toy.sample(20000, torch.Generator().manual_seed(3))
for t in (100, 300, 500):
    abar = schedule.alpha_bars[t].item()
    x_t = q_sample(schedule, toy_x0[:2000], t, torch.randn(2000, 2, generator=gen)).requires_grad_()
    score = torch.autograd.grad(toy.log_prob(x_t, abar).sum(), x_t)[0]
    gap = (toy.best_eps(x_t.detach(), abar) + (1 - abar) ** 0.5 * score).abs().max().item()
    print(f"t = {t}: largest gap between E[eps | x_t] and -sqrt(1 - abar_t) grad log q(x_t): {gap:.1e}")
    assert gap < 1e-4

# %% [markdown]
# Now a tiny noise predictor (`TimeMLP`: three layers, the step $t$ as a sinusoidal embedding) trained on the mixture
# with the library's Algorithm 1 loss, for a few seconds, then read as a score: $-\epsilon_\theta / \sqrt{1 -
# \bar\alpha_t}$ against the true score of $q(x_t)$, on points drawn from $q(x_t)$.

# %%
torch.manual_seed(0)
mlp = TimeMLP()
toy_noise = torch.Generator().manual_seed(1)


def toy_step(model, batch):  # Algorithm 1 on the points, used as they are (no pixel range)
    return diffusion_loss(model, schedule, batch[0], toy_noise, image_range=False)


toy_history = fit(mlp, make_loader(TensorDataset(toy_x0), 1000), toy_step, torch.optim.Adam(mlp.parameters(), lr=1e-2),
                  20, progress=False)
print(f"{len(toy_history.steps['loss'])} steps in {toy_history.seconds:.1f} s")
errors = {}
with torch.no_grad():
    for t in (100, 200, 300, 500):
        abar = schedule.alpha_bars[t].item()
        x_t = q_sample(schedule, toy_x0[:2000], t, torch.randn(2000, 2, generator=gen))
        true, learned = toy.score(x_t, abar), -mlp(x_t, torch.full((2000,), t)) / (1 - abar) ** 0.5
        errors[t] = ((learned - true).pow(2).sum(1).mean() / true.pow(2).sum(1).mean()).item()
        print(f"t = {t} (abar_t = {abar:.2f}): relative squared error of the learned score {errors[t]:.3f}")
assert all(errors[t] < 0.1 for t in (200, 300, 500))

# %% [markdown]
# The two fields at $t = 300$, on a grid: the true score (left) and the network's (right), over points of $q(x_t)$.
# Both point towards the ring, which at this noise level has shrunk to radius $1.5\sqrt{\bar\alpha_t}$. Nearer
# the data (small $t$) the score is sharper; the table above shows a few seconds of training do not get it right
# there, which is one reason Min-SNR and the simple loss care about how much each step is weighted.

# %%
t, abar = 300, schedule.alpha_bars[300].item()
ticks = torch.linspace(-2.2, 2.2, 17)
grid = torch.cartesian_prod(ticks, ticks)
with torch.no_grad():
    fields = {"true score": toy.score(grid, abar),
              "-eps_theta / sqrt(1 - abar_t)": -mlp(grid, torch.full((len(grid),), t)) / (1 - abar) ** 0.5}
points = q_sample(schedule, toy_x0[:1500], t, torch.randn(1500, 2, generator=gen))
fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
for ax, (name, field) in zip(axes, fields.items()):
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.3, color="grey")
    ax.quiver(grid[:, 0], grid[:, 1], field[:, 0], field[:, 1], color="C0")
    ax.set_title(f"{name}, t = {t}"), ax.set_aspect("equal")
plt.show()

# %% [markdown]
# ## DDIM: fewer steps
#
# 1000 network calls per image is why diffusion samples slowly compared with a GAN's single call. **DDIM** (Song et
# al. 2021) uses the same trained network but jumps over many steps: from $x_t$ it predicts $\hat x_0$ and moves
# directly to the $x_{t'}$ consistent with it, for an evenly spaced subsequence of steps. With $\eta = 0$ it adds no
# fresh noise, so one starting noise always gives the same image. Here is the cost and the quality against the
# number of steps (Frechet distance on the digit classifier's features, lower is better):

# %%
n_table = S.n_sampled
table = []
for n_steps in S.ddim_steps:
    start = time.perf_counter()
    with fast_autocast(device):
        images, _ = ddim_sample(eps_model, schedule, n=n_table, steps=n_steps, device=device,
                                generator=torch.Generator().manual_seed(3))
    seconds = time.perf_counter() - start
    table.append((n_steps, seconds, fd_to_training_digits(images)))
    print(f"DDIM {n_steps:4d} steps: {seconds:6.1f} s for {n_table} digits, Frechet distance {table[-1][2]:8.1f}")
assert table[0][1] < table[-1][1]  # fewer steps, less time
ddim_seconds = {n_steps: seconds for n_steps, seconds, _ in table}
if PROFILE == "cpu":  # Min-SNR's gain (see "Training"): the plain loss reached 1,099 at 50 steps here, in 419 s
    assert {n_steps: fd for n_steps, _, fd in table}[50] < 1099 / 2

# %% [markdown]
# ### Interpolating between two noises
# DDIM with $\eta = 0$ is a deterministic map from noise to image, so a path between two starting noises gives a
# path between two digits. The noises are 784-dimensional Gaussians, so we walk along the great circle (slerp).

# %%
gen = torch.Generator().manual_seed(5)
noise0, noise1 = torch.randn(2, 784, generator=gen)
path = slerp(noise0, noise1, torch.linspace(0, 1, 10)).view(10, 1, 28, 28)
with fast_autocast(device):
    walk, _ = ddim_sample(eps_model, schedule, noise=path.to(device), steps=50)
show_images(walk, nrow=10, title="DDIM (50 steps) along a slerp path between two noises")
plt.show()
again, _ = ddim_sample(eps_model, schedule, noise=path[:1].to(device), steps=50)
assert torch.allclose(again, ddim_sample(eps_model, schedule, noise=path[:1].to(device), steps=50)[0])

# %% [markdown]
# ## VAE, GAN and diffusion side by side
# How long does one image take? A VAE's decoder and a GAN's generator make an image in one network call; DDPM needs
# 1000, DDIM 50. Sampling time depends only on the architecture, not on the training, so we time lesson 2's and
# lesson 3's networks fresh here, on the same machine, against the U-Net you trained. (Their quality, measured
# by `python -m course_lib.tools.benchmark`, is in the README's results table.)

# %%
def seconds_per_image(make_batch, n=100):
    make_batch(10)  # warm-up
    start = time.perf_counter()
    with torch.no_grad():
        make_batch(n)
    return (time.perf_counter() - start) / n


# the course's own lesson 2 and lesson 3 networks, as their recipes build them (untrained: weights do not change the
# time a call takes)
vae, generator = recipes.VAE8.build(S).to(device).eval(), recipes.DCGAN.build(S).generator.to(device).eval()
print(f"lesson 3's DCGAN generator (recipes.DCGAN): width {generator.upsample[0].out_channels}, "
      f"{n_params(generator):,} parameters")
per_image = {
    "VAE decoder (1 call)": seconds_per_image(lambda n: vae.sample(n)),
    "DCGAN generator (1 call)": seconds_per_image(lambda n: generator(torch.randn(n, generator.z_dim, device=device))),
    "DDIM, 50 steps": ddim_seconds[50] / n_table if 50 in ddim_seconds else None,
    f"DDPM, {R.T} steps (batch of 16)": ddpm_seconds / 16,
}
for name, seconds in per_image.items():
    if seconds is not None:
        print(f"{name:32s} {1000 * seconds:9.2f} ms per image")
assert per_image[f"DDPM, {R.T} steps (batch of 16)"] > 20 * per_image["DCGAN generator (1 call)"]

# %% [markdown]
# ## Summary
# - The forward process adds Gaussian noise step by step; its closed form jumps to any step at once. The paper counts
#   $t = 1, \dots, T$, the code $0, \dots, T-1$.
# - The network predicts the added noise, trained on its squared error (Algorithm 1), here weighted per timestep
#   by Min-SNR, $\min(\mathrm{SNR}(t), 5) / \mathrm{SNR}(t)$, so nearly clean images count less; sampling undoes the
#   steps one by one (Algorithm 2), with fresh noise at every step but the last.
# - The loss comes from the ELBO: $L_T + \sum_t L_{t-1} + L_0$, each $L_{t-1}$ a KL between the posterior
#   $q(x_{t-1} \mid x_t, x_0)$ and the model's step, which is a weighted noise error $\lambda_t \|\epsilon -
#   \epsilon_\theta\|^2$. The simple loss sets every weight to 1, Min-SNR to $\min(\mathrm{SNR}, 5)/\mathrm{SNR}$;
#   $\sigma_t^2 = \beta_t$ and $\tilde\beta_t$ sample about equally well.
# - The noise predictor is a scaled score, $s_\theta = -\epsilon_\theta / \sqrt{1 - \bar\alpha_t}$.
# - DDIM reuses the same network with far fewer steps; the table above shows the price in quality.
# - **Next (lesson 5, conditional models):** tell the generator *which* digit to draw.
