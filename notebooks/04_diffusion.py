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
# 3. train a small time-conditioned U-Net with Algorithm 1 and sample with Algorithm 2;
# 4. scrub backwards through a sampling run of *your* model: $x_t$, the predicted $x_0$ and the predicted noise;
# 5. sample faster with DDIM, and measure what the speed costs.

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
import course_lib  # first, before torch: it lets torch's threads sleep while they wait (faster on a busy CPU)
import time

import matplotlib.pyplot as plt
import torch

from course_lib import exercises, recipes
from course_lib.data import load_dataset, make_loader
from course_lib.diffusion import (DiffusionSchedule, ddim_sample, ddpm_sample, diffusion_loss, forward_trajectory,
                                  q_sample, q_step, to_image_range, to_model_range)
from course_lib.fastpath import describe_fast_path, fast_autocast
from course_lib.lesson import start_lesson
from course_lib.liveplot import LivePlot
from course_lib.metrics import fd_to_training_digits
from course_lib.nets import n_params
from course_lib.plotting import show_images
from course_lib.pretrained import train_or_load
from course_lib.training import EMA, fit
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
# Check that both routes give the same distribution: take one image, run 300 single steps 2,000 times, and compare
# the mean and variance of every pixel with the closed form.

# %%
schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
x0 = to_model_range(x_train[:1]).repeat(2000, 1, 1, 1)  # the same digit 2,000 times
gen = torch.Generator().manual_seed(0)
t = 300
x = x0
for s in range(t + 1):  # timesteps 0..t (the course counts from 0)
    x = q_step(schedule, x, s, torch.randn(x.shape, generator=gen))
mean_gap = (x.mean(0) - schedule.sqrt_alpha_bars[t] * x0[0]).abs().max().item()
var_gap = (x.var(0) - (1 - schedule.alpha_bars[t])).abs().max().item()
print(f"t = {t}: abar_t = {schedule.alpha_bars[t]:.4f}; largest gap to the closed form: mean {mean_gap:.3f}, "
      f"variance {var_gap:.3f}")
assert mean_gap < 0.1 and var_gap < 0.15

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
# ## Training: Algorithm 1
#
# Repeat: take a training image $x_0$, a step $t \sim \mathrm{Uniform}\{1, \dots, T\}$ and noise
# $\epsilon \sim \mathcal{N}(0, I)$; take a gradient step on
#
# $$\big\| \epsilon - \epsilon_\theta\big(\sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \epsilon,\ t\big) \big\|^2.$$
#
# The network $\epsilon_\theta(x_t, t)$ is a **U-Net**: an encoder-decoder with skip connections, so fine detail can
# go straight across. It is told $t$ through a sinusoidal embedding (as Transformers encode positions) added inside
# every block; one network serves all 1000 steps. It knows nothing about the schedule.
#
# One change from the paper: **Min-SNR weighting** (Hang et al. 2023) multiplies each image's error by
# $\min(\mathrm{SNR}(t), 5) / \mathrm{SNR}(t)$, where $\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)$ is the
# signal-to-noise ratio plotted above. Nearly clean images (large SNR, small $t$), whose noise is easy to spot but which
# teach little about the shape of a digit, count less; noisy ones count fully. On a CPU it gets to good digits much
# sooner: in the `cpu` profile, 224 s of training with it give the DDIM table below a Frechet distance of about 385 at
# 50 steps, against 1,099 after 419 s with the plain loss (the README has both). `min_snr_gamma=None` gives the
# paper's plain loss.
#
# On a CPU that supports it, the arithmetic runs in bfloat16 (`fast_autocast`); the loss itself stays in float32.
# We also keep an exponential moving average of the weights (`EMA`), as DDPM does: the average over the last few
# hundred steps samples better than the last step's noisy weights. Sampling uses the averaged copy.

# %%
torch.manual_seed(0)
model = R.build(S).to(device)
print(f"U-Net: {n_params(model):,} parameters. {describe_fast_path(device)}")
optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
step_noise = torch.Generator().manual_seed(0)
ema = EMA(model, decay=R.ema_decay)


def training_step(model, batch):
    with fast_autocast(device):
        return diffusion_loss(lambda x, t: model(x, t).float(), schedule, batch[0], step_noise, R.min_snr_gamma)


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
# Start from $x_T \sim \mathcal{N}(0, I)$; for $t = T, \dots, 1$:
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1 - \bar\alpha_t}}\, \epsilon_\theta(x_t, t)\Big)
# + \sigma_t z, \qquad z \sim \mathcal{N}(0, I)\ (z = 0 \text{ at the last step}),\ \sigma_t^2 = \beta_t.$$
#
# All 1000 steps, for 16 digits, recording every 10th step so we can scrub through it afterwards:

# %%
start = time.perf_counter()
with fast_autocast(device):
    samples, trajectory = ddpm_sample(eps_model, schedule, n=16, generator=torch.Generator().manual_seed(2),
                                      record_every=10)
ddpm_seconds = time.perf_counter() - start
show_images(samples, nrow=16, title=f"DDPM, {R.T} steps ({ddpm_seconds:.1f} s for 16 digits)")
plt.show()

# %% [markdown]
# ### Scrub backwards through your model's sampling
# Each frame shows, for 8 of the digits, three rows: $x_t$ (the sample so far), the model's current guess of the
# clean image $\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\epsilon_\theta) / \sqrt{\bar\alpha_t}$, and the noise it
# predicts (grey = 0). The slider shows $t$ and opens at the first step, on pure noise; drag it right, towards
# $t = 0$. Watch at which $t$ the predicted $\hat x_0$ settles on one digit, and when its strokes sharpen. The frames
# were computed during sampling; the slider only swaps them.

# %%
frames = [torch.cat([x[:8], x0[:8], to_image_range(eps[:8] / 3)])
          for x, x0, eps in zip(trajectory.x_t, trajectory.x0_pred, trajectory.eps_pred)]
scrubber = FrameScrubber(frames, [f"t = {t}: x_t / predicted x_0 / predicted noise" for t in trajectory.t],
                         nrow=8, description="t", values=trajectory.t, start=0)
scrubber

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
        images, _ = ddim_sample(eps_model, schedule, n=n_table, steps=n_steps,
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


# the course's own lesson 2 and lesson 3 networks (untrained: weights do not change the time a call takes)
vae, generator = recipes.VAE16.build(S).to(device).eval(), recipes.DCGAN.build(S).generator.to(device).eval()
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
# ### Exercise 2 — one reverse step
# Write Algorithm 2's update: `my_reverse_step(x_t, eps, beta_t, abar_t, z)` returns $x_{t-1}$ with $\sigma_t^2 =
# \beta_t$ (numbers for `beta_t` and `abar_t`, tensors for the rest).

# %%
def my_reverse_step(x_t, eps, beta_t, abar_t, z):
    # YOUR CODE HERE
    return None


exercises.check("reverse_step", my_reverse_step)

# %% [markdown]
# ### Exercise 3 — how much is left?
# With the linear schedule, $\bar\alpha_{T} \approx 4 \cdot 10^{-5}$. By what factor is the original image scaled in
# $x_T$ (a number)?

# %%
my_answer = None  # a number
exercises.check("signal_left", my_answer)

# %% [markdown]
# ## Summary
# - The forward process adds Gaussian noise step by step; its closed form jumps to any step at once.
# - The network predicts the added noise, trained on its squared error (Algorithm 1), here weighted per timestep
#   by Min-SNR, $\min(\mathrm{SNR}(t), 5) / \mathrm{SNR}(t)$, so nearly clean images count less; sampling undoes the
#   steps one by one (Algorithm 2).
# - DDIM reuses the same network with far fewer steps; the table above shows the price in quality.
# - **Next (lesson 5, conditional models):** tell the generator *which* digit to draw.
