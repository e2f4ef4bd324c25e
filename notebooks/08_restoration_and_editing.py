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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/image-generation-course/image-generation-course/blob/main/notebooks/08_restoration_and_editing.ipynb)

# %% [markdown]
# # Lesson 8 — Restoration, super-resolution and editing
#
# The models of lessons 1-7 make images from nothing. The lectures then show what generative models do to images that
# already exist: upsampling, colouring, removing a watermark, filling a hole, turning a sketch into a photo. Each of
# these is *ill-posed*: many clean images fit one damaged input, and how a model picks among them decides what it
# produces. In this lesson you will:
#
# 1. shrink digits to 7 x 7 and measure how well bicubic interpolation brings them back (PSNR, SSIM);
# 2. train **SRResNet** with the mean squared error and **SRGAN** with a perceptual and an adversarial loss, and
#    reproduce the lecture's paradox with numbers: the GAN loses on PSNR and wins on realism;
# 3. train **SR3**, a diffusion model that sees the low-resolution digit, and draw several answers for one input;
# 4. build a **cascade**: a class-conditional diffusion model at 7 x 7, then SR3 to 28 x 28, against lesson 5's
#    one-stage guided model;
# 5. edit with lesson 4's diffusion model, never trained for editing: **SDEdit** (sketch or scribble -> digit) and
#    **RePaint** (fill a hole), against lesson 5's pix2pix;
# 6. translate **sketches into digits** with pix2pix, **colour** grey digits and **remove a watermark**, L1 against
#    pix2pix.

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
import copy
import time

import matplotlib.pyplot as plt
import torch
from torch.utils.data import TensorDataset

from course_lib import exercises, recipes
from course_lib.conditional import GuidedModel, cfg_step
from course_lib.data import describe_attributes, load_dataset, make_loader, to_grey
from course_lib.diffusion import DiffusionSchedule, ddim_sample
from course_lib.editing import repaint, sdedit, sketch, stamp
from course_lib.fastpath import describe_fast_path, fast_autocast
from course_lib.lesson import start_lesson
from course_lib.liveplot import LivePlot
from course_lib.metrics import class_accuracy, digit_classifier, fd_to_training_digits
from course_lib.nets import n_params
from course_lib.pix2pix import Pix2PixStep, hide_lower_half, sharpness
from course_lib.plotting import markdown_table, show_images, show_rows
from course_lib.pretrained import load_into, train_or_load
from course_lib.superres import (PerceptualFeatures, SRGANStep, downscale, psnr, sr3_step, sr3_upscale, sr_mse_step,
                                ssim, upscale_bicubic)
from course_lib.training import EMA, fit
from course_lib.widgets import FrameScrubber, MaskPainter

USE_PRETRAINED = False  # True (or COURSE_PRETRAINED=1 in the environment): load bundled weights instead of training
PRESENTER = False  # True: larger fonts, figures and widgets, for a projector
PROFILE, S, device = start_lesson("restoration", pretrained=USE_PRETRAINED, presenter=PRESENTER)
train = load_dataset("mnist", "train", n=S.n_train)
test_digits, test_labels = load_dataset("mnist", "test", n=S.n_test).tensors
n_table = S.n_sampled  # images per row of the tables below
truth, truth_labels = test_digits[:n_table], test_labels[:n_table]
shown = test_digits[:8]

# %% [markdown]
# ## 1. The task: 28 x 28 -> 7 x 7 -> 28 x 28
#
# `downscale` averages each 4 x 4 block of pixels into one: a digit becomes 7 x 7, and 16 pixels become one number.
# Going back is a guess. **Bicubic interpolation** guesses smoothly: a cubic curve through the neighbouring pixels in
# each direction. Below: the 7 x 7 input (shown with big pixels), bicubic's answer, and the truth.

# %%
small = downscale(shown)
print(f"{tuple(shown.shape)} -> {tuple(small.shape)}: {shown[0].numel()} numbers -> {small[0].numel()}")
show_rows({"input (7 x 7)": torch.nn.functional.interpolate(small, scale_factor=4, mode="nearest"),
           "bicubic": upscale_bicubic(small), "truth": shown})
plt.show()

# %% [markdown]
# How close is a guess? The oldest answer compares pixels: the **peak signal-to-noise ratio**
#
# $$\mathrm{PSNR} = 10 \log_{10} \frac{\mathrm{MAX}^2}{\mathrm{MSE}}, \qquad \mathrm{MSE} = \frac{1}{HW}\sum_{i}
# (\hat y_i - y_i)^2,$$
#
# in decibels, with MAX = 1 for pixels in [0, 1]. Higher is better; +6 dB means the error's amplitude halved. SSIM
# (structural similarity) compares local means, contrasts and correlations instead of single pixels; 1 is identical.
#
# ### Exercise 1 — PSNR
# Write `my_psnr(prediction, target)` for batches of images in [0, 1]: the PSNR of each image, averaged over the
# batch. The checker compares with the library's `psnr`.

# %%
def my_psnr(prediction, target):
    # YOUR CODE HERE
    return None


exercises.check("psnr", my_psnr)
# exercises.solution("psnr")  # uncomment to see a reference answer

# %% [markdown]
# Every method below is scored on the same held-out digits, with the numbers of the earlier lessons next to PSNR and
# SSIM: the **Frechet distance** to the training digits on the course's digit classifier and on a second feature
# network (how realistic, lower is better), the **class accuracy** (is it still the same digit?) and the
# **sharpness** (variance of the Laplacian; the true digits' value is in the first row).

# %%
psnr_of = my_psnr if exercises.passed("psnr", my_psnr) else psnr
low = downscale(truth)
results = {}


def score(name, outputs, seconds=None):
    results[name] = {"PSNR (dB)": float(psnr_of(outputs, truth)), "SSIM": ssim(outputs, truth),
                     "FD": fd_to_training_digits(outputs), "FD, 2nd net": fd_to_training_digits(outputs, "second"),
                     "class accuracy": class_accuracy(outputs, truth_labels), "sharpness": sharpness(outputs)}
    if seconds is not None:
        results[name]["s / 100 images"] = 100 * seconds / len(outputs)
    return results[name]


score("truth", truth)
score("bicubic", upscale_bicubic(low))
print(markdown_table(results))

# %% [markdown]
# ## 2. SRResNet: the network that minimises the MSE
#
# SRResNet (Ledig et al. 2017) does all its thinking at the small size: residual blocks at 7 x 7, then two
# **sub-pixel** upsamplings, each a convolution to 4 times the channels rearranged into twice the size
# (`nn.PixelShuffle(2)`: (B, 4C, 7, 7) -> (B, C, 14, 14)). It is trained to minimise the mean squared error to the
# true digit, which is the same as maximising PSNR.

# %%
R = recipes.SR_MSE
epochs, batch_size = S.for_model("sr_mse")
torch.manual_seed(0)
sr_mse = R.build(S).to(device)
print(f"{R}\nSRResNet: {n_params(sr_mse):,} parameters")
live = LivePlot(logy=True, title="SRResNet: MSE", images=lambda m: m(small.to(device)).cpu())
history = train_or_load(R.name, lambda: fit(sr_mse, make_loader(train, batch_size), sr_mse_step,
                                            torch.optim.Adam(sr_mse.parameters(), lr=R.lr), epochs, device=device,
                                            callbacks=[live]), show=live, model=sr_mse)
losses = history.steps["loss"]
print(f"{len(losses)} steps in {history.seconds:.0f} s; MSE {sum(losses[:20]) / 20:.4f} -> {sum(losses[-20:]) / 20:.4f}")
assert sum(losses[-20:]) < 0.7 * sum(losses[:20])
sr_mse.eval()
with torch.no_grad():
    start = time.perf_counter()
    mse_out = sr_mse(low.to(device)).cpu()
score("SRResNet (MSE)", mse_out, time.perf_counter() - start)
print(markdown_table(results))

# %% [markdown]
# ## 3. SRGAN: a perceptual loss and a discriminator
#
# Where a 7 x 7 input fits several digits (a stroke a pixel to the left or to the right), the MSE is smallest for
# their **average**: a blurred stroke, which no real digit has. SRGAN keeps SRResNet as its generator and changes the
# loss:
#
# $$\mathcal{L}_G = \underbrace{\lVert \phi(G(x)) - \phi(y) \rVert^2}_{\text{content: a classifier's feature maps}}
# + \lambda \underbrace{\left(-\log D(G(x))\right)}_{\text{adversarial}}$$
#
# $\phi$ is a classifier's feature maps (VGG's in the paper, the course's digit classifier here): a stroke one pixel
# off changes them little. $D$ is lesson 3's DCGAN discriminator, real digits against upscaled ones: a blur is easy to
# reject, so $G$ must commit to one sharp digit. As in the paper, $G$ starts from the trained MSE network.
#
# Because $\phi$ comes from the course's digit classifier, the Frechet distance on that classifier is not an
# independent judge of SRGAN; the **second feature network** (another architecture and seed) is.

# %%
R = recipes.SRGAN_FT
epochs, batch_size = S.for_model("srgan")
srgan = R.build(S)
srgan.generator.load_state_dict(sr_mse.state_dict())  # start from SRResNet, as the paper does
srgan = srgan.to(device)
step = SRGANStep(srgan, PerceptualFeatures(digit_classifier()), adv_weight=R.adv_weight, lr=R.lr, betas=R.betas)
live = LivePlot(keys=["content", "d_real", "d_fake", "mse"], title="SRGAN", images=lambda m: m.upscale(small))
history = train_or_load(R.name, lambda: fit(srgan, make_loader(train, batch_size), step, None, epochs, device=device,
                                            callbacks=[live]), show=live, model=srgan)
assert history.stopped is None
start = time.perf_counter()
gan_out = srgan.upscale(low.to(device)).cpu()
score("SRGAN", gan_out, time.perf_counter() - start)
print(markdown_table(results))

# %% [markdown]
# The lecture's table, measured: the network trained for PSNR has the best PSNR, and the GAN, with a worse PSNR, has
# sharper strokes and digits closer to real ones on both feature networks.

# %%
mse_row, gan_row = results["SRResNet (MSE)"], results["SRGAN"]
assert mse_row["PSNR (dB)"] > results["bicubic"]["PSNR (dB)"] and gan_row["PSNR (dB)"] > results["bicubic"]["PSNR (dB)"]
if PROFILE != "smoke":
    assert mse_row["PSNR (dB)"] > gan_row["PSNR (dB)"], "the MSE network should have the better PSNR"
    assert gan_row["FD, 2nd net"] < mse_row["FD, 2nd net"], "SRGAN should be more realistic on the independent network"
    assert abs(gan_row["sharpness"] - results["truth"]["sharpness"]) < abs(mse_row["sharpness"] - results["truth"]["sharpness"])
print(f"PSNR: MSE {mse_row['PSNR (dB)']:.2f} dB > SRGAN {gan_row['PSNR (dB)']:.2f} dB; Frechet distance on the second "
      f"network: SRGAN {gan_row['FD, 2nd net']:.2f} < MSE {mse_row['FD, 2nd net']:.2f}; sharpness: truth "
      f"{results['truth']['sharpness']:.3f}, SRGAN {gan_row['sharpness']:.3f}, MSE {mse_row['sharpness']:.3f}")

# %% [markdown]
# ### Exercise 2 — the sub-pixel shuffle
# SRResNet doubles the size with `nn.PixelShuffle(2)`: a (B, C r², H, W) tensor becomes (B, C, H r, W r), each group
# of r² channels spread over an r x r block of pixels. Write `my_pixel_shuffle(h, r)` with `reshape` and `permute`
# only. The checker compares with `torch.nn.functional.pixel_shuffle`.

# %%
def my_pixel_shuffle(h, r):
    # YOUR CODE HERE
    return None


exercises.check("pixel_shuffle", my_pixel_shuffle)
# exercises.solution("pixel_shuffle")  # uncomment to see a reference answer

# %% [markdown]
# ### Exercise 3 — the paradox in one sentence
# Which statement matches the table above? (a) bicubic has the best PSNR and SRGAN looks most realistic;
# (b) the MSE network has the best PSNR and SRGAN looks most realistic, because the MSE-optimal prediction is the
# average of all digits that fit the input; (c) SRGAN has the best PSNR and looks most realistic; (d) the MSE network
# has the best PSNR and looks most realistic, since PSNR measures realism.

# %%
my_answer = None  # one letter: "a", "b", "c" or "d"
exercises.check("psnr_paradox", my_answer)
# exercises.solution("psnr_paradox")  # uncomment to see a reference answer

# %% [markdown]
# ## 4. SR3: super-resolution by diffusion
#
# SR3 (Saharia et al. 2021) is lesson 4's DDPM with one change: the U-Net also sees the bicubic upscale of the input,
# as a second input channel. Training is Algorithm 1 on the true digits; sampling is DDIM from noise, with the same
# upscale at every step. Each sample is a digit that fits the input, drawn from a different noise: where the input
# leaves a choice, samples differ, and their average is the blur that the MSE network draws.
#
# One change from lesson 4: the network predicts $v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1 - \bar\alpha_t}\, x_0$
# (Salimans & Ho 2022) instead of $\epsilon$. The condition tells it the digit's layout even at $t = T$, but from a
# predicted noise the image is recovered as $\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon) /
# \sqrt{\bar\alpha_t}$, which multiplies the network's error by about 160 at $t = 999$. With $v$ no such factor
# appears; the samplers still get a noise prediction, $\epsilon = \sqrt{\bar\alpha_t}\, v + \sqrt{1 - \bar\alpha_t}\,
# x_t$ (`eps_from_v`).

# %%
R = recipes.SR3
epochs, batch_size = S.for_model("sr3")
torch.manual_seed(0)
sr3 = R.build(S).to(device)
schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
print(f"{R}\nSR3 U-Net: {n_params(sr3):,} parameters. {describe_fast_path(device)}")
optimizer = torch.optim.Adam(sr3.parameters(), lr=R.lr)
sr3_ema = EMA(sr3, decay=R.ema_decay)
step = sr3_step(schedule, torch.Generator().manual_seed(0))
live = LivePlot(logy=True, title="SR3: noise-prediction loss")
history = train_or_load(R.name, lambda: fit(sr3, make_loader(train, batch_size), step, optimizer, epochs, device=device,
                                            callbacks=[sr3_ema, live]), show=live, ema=sr3_ema.model)
losses = history.steps["loss"]
print(f"{len(losses)} steps in {history.seconds:.0f} s; loss {sum(losses[:20]) / 20:.3f} -> {sum(losses[-20:]) / 20:.3f}")
assert sum(losses[-20:]) < 0.8 * sum(losses[:20])
steps = S.ddim_steps[0]
start = time.perf_counter()
sr3_out = sr3_upscale(sr3_ema.model, schedule, low, steps=steps, generator=torch.Generator().manual_seed(1)).cpu()
score(f"SR3 ({steps} DDIM steps)", sr3_out, time.perf_counter() - start)
print(markdown_table(results))

# %% [markdown]
# Six SR3 samples for each of six inputs (rows), next to the input, the MSE network's answer and the truth. The last
# column is the average of the six samples: compare it with the MSE network's.

# %%
several = sr3_upscale(sr3_ema.model, schedule, low[:6], steps=steps, samples=6,
                      generator=torch.Generator().manual_seed(2)).cpu()  # (6 inputs, 6 samples, 1, 28, 28)
grid = torch.cat([upscale_bicubic(low[:6])[:, None], mse_out[:6, None], several, several.mean(1, keepdim=True),
                  truth[:6, None]], dim=1)
show_images(grid.flatten(0, 1), nrow=grid.shape[1],
            title="bicubic | MSE | six SR3 samples | their average | truth")
plt.show()
spread = several.std(dim=1).mean().item()
one, average = several[:, 0], several.mean(1)
print(f"pixel spread across samples {spread:.3f}; PSNR one sample {psnr(one, truth[:6]):.2f} dB, their average "
      f"{psnr(average, truth[:6]):.2f} dB; sharpness {sharpness(one):.3f} vs {sharpness(average):.3f}")
assert spread > 0.01, "the samples should differ"
assert psnr(average, truth[:6]) > psnr(one, truth[:6]) and sharpness(average) < sharpness(one)

# %% [markdown]
# All the answers side by side: move the slider from method to method over the same eight inputs.

# %%
answers = {"input (7 x 7)": torch.nn.functional.interpolate(low[:8], scale_factor=4, mode="nearest"),
           "bicubic": upscale_bicubic(low[:8]), "SRResNet (MSE)": mse_out[:8], "SRGAN": gan_out[:8],
           "SR3": sr3_out[:8], "truth": truth[:8]}
FrameScrubber(list(answers.values()), values=list(answers), description="method",
              captions=[f"{name}: PSNR {psnr(images, truth[:8]):.1f} dB" for name, images in answers.items()], start=0)

# %% [markdown]
# ## 5. A cascade: a small model, then super-resolution
#
# Cascaded diffusion (lecture 004; Imagen, DALL·E 2) splits generation: a base model draws a small image, and
# super-resolution models enlarge it. Here the base is lesson 5's guided U-Net at **7 x 7** (trained on the shrunk
# digits, labels dropped 10% of the time), and the enlarger is the SR3 model above. It is compared with lesson 5's
# one-stage guided model at 28 x 28 (loaded from the bundle), both with classifier-free guidance at w = 3.

# %%
R = recipes.BASE_7
epochs, batch_size = S.for_model("base")
torch.manual_seed(0)
base = R.build(S).to(device)
base_schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
print(f"{R}\nbase U-Net at 7 x 7: {n_params(base):,} parameters")
small_train = TensorDataset(downscale(train.tensors[0]), train.tensors[1])
optimizer = torch.optim.Adam(base.parameters(), lr=R.lr)
base_ema = EMA(base, decay=R.ema_decay)
step = cfg_step(base_schedule, p_uncond=R.p_uncond, generator=torch.Generator().manual_seed(0),
                min_snr_gamma=R.min_snr_gamma)
live = LivePlot(logy=True, title="7 x 7 base model")
history = train_or_load(R.name, lambda: fit(base, make_loader(small_train, batch_size), step, optimizer, epochs,
                                            device=device, callbacks=[base_ema, live]), show=live, ema=base_ema.model)
losses = history.steps["loss"]
print(f"{len(losses)} steps in {history.seconds:.0f} s; loss {sum(losses[:20]) / 20:.3f} -> {sum(losses[-20:]) / 20:.3f}")

# %%
W = 3.0
labels = torch.arange(10).repeat_interleave(max(1, n_table // 10))
cascade = {}
start = time.perf_counter()
small_samples = ddim_sample(GuidedModel(base_ema.model, labels, W), base_schedule, n=len(labels), steps=steps,
                            shape=(1, 7, 7), generator=torch.Generator().manual_seed(3), device=device)[0]
cascade_out = sr3_upscale(sr3_ema.model, schedule, small_samples, steps=steps,
                          generator=torch.Generator().manual_seed(4)).cpu()
cascade["cascade: 7 x 7 base + SR3"] = (cascade_out, time.perf_counter() - start)

one_stage = recipes.CFG.build(recipes.lesson_settings("conditional", "cpu")).to(device)  # the bundled model's sizes
load_into(recipes.CFG.name, ema=one_stage)
cfg_schedule = DiffusionSchedule(T=recipes.CFG.T, kind=recipes.CFG.schedule)
start = time.perf_counter()
one_stage_out = ddim_sample(GuidedModel(one_stage, labels, W), cfg_schedule, n=len(labels), steps=steps,
                            generator=torch.Generator().manual_seed(3), device=device)[0].cpu()
cascade["lesson 5: one stage at 28 x 28"] = (one_stage_out, time.perf_counter() - start)
rows = {name: {"class accuracy": class_accuracy(images, labels), "FD": fd_to_training_digits(images),
               "FD, 2nd net": fd_to_training_digits(images, "second"), "s / 100 images": 100 * sec / len(images),
               "U-Net parameters": n} for (name, (images, sec)), n in
        zip(cascade.items(), (n_params(base) + n_params(sr3), n_params(one_stage)))}
print(f"w = {W}, {len(labels)} digits, {steps} DDIM steps per stage")
print(markdown_table(rows))
show_rows({"7 x 7 base": torch.nn.functional.interpolate(small_samples[::max(1, len(labels) // 10)].cpu(),
                                                         scale_factor=4, mode="nearest"),
           "+ SR3": cascade_out[::max(1, len(labels) // 10)],
           "one stage": one_stage_out[::max(1, len(labels) // 10)]})
plt.show()
if PROFILE != "smoke":
    assert rows["cascade: 7 x 7 base + SR3"]["class accuracy"] > 0.9

# %% [markdown]
# ## 6. SDEdit: editing with a model trained only to generate
#
# Lesson 4's DDPM never saw a sketch. SDEdit (Meng et al. 2021) uses it anyway: noise the input to a time $t_0$, then
# denoise from there. At small $t_0$ the input's strokes survive the noise and the model only tidies them; at large
# $t_0$ little of the input is left and the model draws a digit of its own. The **strength** $t_0 / (T - 1)$ trades
# faithfulness for realism.
#
# ### Exercise 4 — where SDEdit starts
# Write `my_sdedit_start(schedule, x, strength, eps)`: return `(x_t0, t0)` with $t_0$ = `round(strength * (T - 1))`
# and $x_{t_0} = \sqrt{\bar\alpha_{t_0}}\, x + \sqrt{1 - \bar\alpha_{t_0}}\, \epsilon$, where $x$ (in [0, 1]) is first
# taken to the model's range [-1, 1]. The checker compares with the library's `sdedit_start`.

# %%
def my_sdedit_start(schedule, x, strength, eps):
    # YOUR CODE HERE
    return None


exercises.check("sdedit_start", my_sdedit_start)
# exercises.solution("sdedit_start")  # uncomment to see a reference answer

# %% [markdown]
# The inputs are **sketches**: the outline of each test digit (`sketch`), the lecture's line drawing -> photo example.
# For each strength: realism (Frechet distance on both networks), faithfulness (is it still the digit that was
# sketched, by the classifier; and how much of the sketch's outline lies on the result's ink). Watch both move: a
# little noise fills the outline in, more noise lets the model draw its own digit.

# %%
ddpm = recipes.DDPM.build(recipes.lesson_settings("diffusion", "cpu")).to(device)  # lesson 4's model, from the bundle
load_into(recipes.DDPM.name, ema=ddpm)
ddpm_schedule = DiffusionSchedule(T=recipes.DDPM.T, kind=recipes.DDPM.schedule)


def ddpm_eps(x, t):
    with fast_autocast(device):
        return ddpm(x, t).float()


sketches = sketch(truth)
strengths = (0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 1.0)
edits, sdedit_rows = [], {}
for strength in strengths:
    out = sdedit(ddpm_eps, ddpm_schedule, sketches.to(device), strength, steps=steps,
                 generator=torch.Generator(device).manual_seed(5)).cpu()
    on_ink = ((out > 0.5) * sketches).sum() / sketches.sum()  # share of the outline that the result covers with ink
    edits.append(out[:16])
    sdedit_rows[f"strength {strength}"] = {"FD": fd_to_training_digits(out), "FD, 2nd net": fd_to_training_digits(out, "second"),
                                           "class accuracy": class_accuracy(out, truth_labels),
                                           "outline on ink": on_ink.item()}
print(markdown_table(sdedit_rows))
FrameScrubber(edits, values=list(strengths), description="strength",
              captions=[f"strength {s}: FD {r['FD']:.0f}, class accuracy {r['class accuracy']:.0%}"
                        for s, r in zip(strengths, sdedit_rows.values())], start=strengths.index(0.3))

# %%
best = min(strengths[1:], key=lambda s: sdedit_rows[f"strength {s}"]["FD"])  # the most realistic strength
first, middle, last = (sdedit_rows[f"strength {s}"] for s in (0.0, best, 1.0))
print(f"the most realistic strength: {best}: FD {middle['FD']:.0f} / {middle['FD, 2nd net']:.2f} (the sketches "
      f"themselves {first['FD']:.0f} / {first['FD, 2nd net']:.2f}), class accuracy {middle['class accuracy']:.0%} "
      f"(the sketches {first['class accuracy']:.0%}, from pure noise {last['class accuracy']:.0%})")
if PROFILE != "smoke":
    assert middle["FD"] < first["FD"] and middle["FD, 2nd net"] < first["FD, 2nd net"], "more realistic than the sketch"
    assert middle["class accuracy"] > last["class accuracy"] + 0.2, "and more faithful than starting from noise"

# %% [markdown]
# ## 7. Inpainting: RePaint against pix2pix
#
# Lesson 5's pix2pix learned one task, drawing the lower half of a digit from its upper half. RePaint (Lugmayr et al.
# 2022) fills *any* hole with the unconditional DDPM of lesson 4: at every reverse step, the known pixels are replaced
# by the known image noised to that step, so the model always denoises a picture whose known part is right,
#
# $$x_{t-1} = m \odot \underbrace{\left(\sqrt{\bar\alpha_{t-1}}\, x_0 + \sqrt{1 - \bar\alpha_{t-1}}\,\epsilon\right)}_{\text{known, noised}}
# + (1 - m) \odot \underbrace{x_{t-1}^{\text{model}}}_{\text{generated}},$$
#
# with $m = 1$ on known pixels. Each step is repeated a few times (noised back up one step in between), so the two
# parts have time to agree.
#
# ### Exercise 5 — the RePaint merge
# Write `my_repaint_merge(schedule, x_generated, known, mask, t, eps)`: `known` is in [-1, 1]; at $t \ge 0$ noise it to
# step $t$ with `eps`; at $t = -1$ (the end) put it back as it is. The checker compares with the library's
# `repaint_merge`.

# %%
def my_repaint_merge(schedule, x_generated, known, mask, t, eps):
    # YOUR CODE HERE
    return None


exercises.check("repaint_merge", my_repaint_merge)
# exercises.solution("repaint_merge")  # uncomment to see a reference answer

# %%
RESAMPLE = 5 if PROFILE != "smoke" else 2  # rounds per step
lower = torch.ones(1, 1, 28, 28)
lower[..., 14:, :] = 0  # the lower half is unknown
n_fill = max(10, n_table // 3)  # RePaint calls the network 246 times per batch: a third of the table's digits
start = time.perf_counter()
repainted = repaint(ddpm_eps, ddpm_schedule, truth[:n_fill].to(device), lower.to(device), steps=steps,
                    resample=RESAMPLE, generator=torch.Generator(device).manual_seed(6)).cpu()
repaint_s = time.perf_counter() - start
pix2pix = recipes.PIX2PIX.build(recipes.lesson_settings("conditional", "cpu"))
load_into(recipes.PIX2PIX.name, model=pix2pix)
pix2pix = pix2pix.to(device)
start = time.perf_counter()
completed = pix2pix.translate(hide_lower_half(truth[:n_fill]).to(device)).cpu()
pix2pix_s = time.perf_counter() - start
inpaint_rows = {name: {"class accuracy": class_accuracy(images, truth_labels[:n_fill]),
                       "FD": fd_to_training_digits(images), "FD, 2nd net": fd_to_training_digits(images, "second"),
                       "s / 100 images": 100 * sec / len(images),
                       "upper half changed": (images - truth[:n_fill])[..., :14, :].abs().max().item()}
                for name, images, sec in (("RePaint (lesson 4's DDPM)", repainted, repaint_s),
                                          ("pix2pix (lesson 5)", completed, pix2pix_s))}
print(f"the lower half filled in, {n_fill} test digits; RePaint: {steps} steps x {RESAMPLE} rounds")
print(markdown_table(inpaint_rows))
show_rows({"input": hide_lower_half(truth[:12]), "RePaint": repainted[:12], "pix2pix": completed[:12],
           "truth": truth[:12]})
plt.show()
assert inpaint_rows["RePaint (lesson 4's DDPM)"]["upper half changed"] < 1e-6  # the known pixels are kept exactly
assert inpaint_rows["pix2pix (lesson 5)"]["upper half changed"] > 0.05  # pix2pix redraws the known half too

# %% [markdown]
# Read the table across: which completion keeps the digit's class more often, which looks more like real digits, and
# what each costs per image. pix2pix was trained for exactly this hole and answers in one pass; RePaint was never
# trained for any hole and pays with hundreds of network calls. And pix2pix redraws the *known* half too (its largest
# change there is in the last column), while RePaint keeps every known pixel exactly.

# %% [markdown]
# RePaint needs no training for a new hole. Choose a mask: the same model fills each of them (pix2pix would need a new
# training for each).

# %%
masks = {"lower half": lower, "upper half": 1 - lower, "left half": torch.ones(1, 1, 28, 28),
         "centre square": torch.ones(1, 1, 28, 28), "every other row": torch.ones(1, 1, 28, 28)}
masks["left half"][..., :, :14] = 0
masks["centre square"][..., 8:20, 8:20] = 0
masks["every other row"][..., 1::2, :] = 0
fills = []
for name, mask in masks.items():
    filled = repaint(ddpm_eps, ddpm_schedule, truth[:8].to(device), mask.to(device), steps=steps, resample=RESAMPLE,
                     generator=torch.Generator(device).manual_seed(7)).cpu()
    fills.append(torch.cat([truth[:8] * mask + 0.5 * (1 - mask), filled]))
FrameScrubber(fills, values=list(masks), description="mask",
              captions=[f"top: the input (grey: unknown); bottom: RePaint's fill ({name})" for name in masks], start=0)

# %% [markdown]
# Or make your own hole: click cells of the grid to hide them (or start from a preset), then press the button. RePaint
# fills the hidden cells of eight test digits, with the same model and settings (a few seconds on a CPU).

# %%
MaskPainter(truth[:8], lambda mask: repaint(ddpm_eps, ddpm_schedule, truth[:8].to(device), mask.to(device),
                                            steps=steps, resample=RESAMPLE, generator=torch.Generator(device).manual_seed(8)),
            presets=masks)

# %% [markdown]
# ## 8. Sketch -> digit: pix2pix against SDEdit
#
# The lecture's pix2pix example turns line drawings into photos. The same machinery as lesson 5, trained on pairs
# (outline, digit), against SDEdit from the same outlines at its most realistic strength above (no training for the
# task at all).

# %%
R = recipes.SKETCH
epochs, batch_size = S.for_model("sketch")
torch.manual_seed(0)
sketcher = R.build(S).to(device)
step = Pix2PixStep(sketcher, **R.step_args(), task=sketch)
live = LivePlot(keys=["l1", "d_real", "d_fake"], title="pix2pix: sketch -> digit",
                images=lambda m: m.translate(sketch(shown)))
history = train_or_load(R.name, lambda: fit(sketcher, make_loader(train, batch_size), step, None, epochs, device=device,
                                            callbacks=[live]), show=live, model=sketcher)
assert history.stopped is None
drawn = sketcher.translate(sketches.to(device)).cpu()
sketch_rows = {"the sketches": sdedit_rows["strength 0.0"], f"SDEdit, strength {best}": middle}
sketch_rows["pix2pix"] = {"FD": fd_to_training_digits(drawn), "FD, 2nd net": fd_to_training_digits(drawn, "second"),
                          "class accuracy": class_accuracy(drawn, truth_labels),
                          "outline on ink": (((drawn > 0.5) * sketches).sum() / sketches.sum()).item()}
print(markdown_table(sketch_rows))
show_rows({"sketch": sketches[:12], "pix2pix": drawn[:12], f"SDEdit {best}": edits[strengths.index(best)][:12],
           "truth": truth[:12]})
plt.show()
if PROFILE != "smoke":  # both make the outlines into more realistic digits, on both feature networks
    for row in (sketch_rows["pix2pix"], middle):
        assert row["FD"] < first["FD"] and row["FD, 2nd net"] < first["FD, 2nd net"]

# %% [markdown]
# ## 9. Colouring grey digits
#
# The colour digits (`load_dataset("colour_digits")`) are the same digits painted with an ink and a background drawn
# at random from fixed palettes; their attributes are known. Taking them to grey keeps the luminance and loses the
# colour: an orange and a green ink can give the same grey, so colouring is ill-posed too. An L1-trained network
# answers with a blend of the inks that fit (the median of each channel), paler than any of them; pix2pix's
# discriminator pushes it to pick one. Measured: the colour error against the true colours (L1 wins it, by
# construction), and the ink's **saturation** (max - min of R, G, B on the ink; the true inks' value in the first
# row). Look at the pictures and the numbers: after this short training, does pix2pix commit to vivid inks yet?

# %%
colour_train = load_dataset("colour_digits", "train", n=S.n_train)
colour_test, _, colour_attrs = load_dataset("colour_digits", "test", n=S.n_test).tensors
colour_test = colour_test[:n_table]
print("first test digit:", describe_attributes(colour_attrs[0]))
colourers = {}
for name, R in (("L1 only", recipes.COLOUR_L1), ("pix2pix", recipes.COLOUR)):
    epochs, batch_size = S.for_model("colour")
    torch.manual_seed(0)
    model = R.build(S).to(device)
    step = Pix2PixStep(model, **R.step_args(), task=to_grey)
    keys = ["l1", "d_real", "d_fake"] if R.adversarial else ["l1"]
    live = LivePlot(keys=keys, title=f"colouring: {name}")
    history = train_or_load(R.name, lambda: fit(model, make_loader(colour_train, batch_size), step, None, epochs,
                                                device=device, callbacks=[live]), show=live, model=model)
    colourers[name] = model


def saturation(images):  # how colourful the ink is: max - min of R, G, B where the ink is (grey 0, a pure colour 1)
    ink = to_grey(images) > 0.5
    spread = images.max(dim=1, keepdim=True).values - images.min(dim=1, keepdim=True).values
    return (spread * ink).sum().item() / ink.sum().clamp(min=1).item()


grey = to_grey(colour_test)
colour_rows = {"truth": {"colour error (L1)": 0.0, "ink saturation": saturation(colour_test)}}
coloured = {}
for name, model in colourers.items():
    coloured[name] = model.translate(grey.to(device)).cpu()
    colour_rows[name] = {"colour error (L1)": (coloured[name] - colour_test).abs().mean().item(),
                         "ink saturation": saturation(coloured[name])}
print(markdown_table(colour_rows))
show_rows({"grey input": grey[:12].expand(-1, 3, -1, -1), **{k: v[:12] for k, v in coloured.items()},
           "truth": colour_test[:12]})
plt.show()
if PROFILE != "smoke":
    assert colour_rows["L1 only"]["colour error (L1)"] < colour_rows["pix2pix"]["colour error (L1)"]
    for name in colourers:  # both paler than the true inks: where the grey fits several inks, a blend of them
        assert colour_rows[name]["ink saturation"] < colour_rows["truth"]["ink saturation"] - 0.05

# %% [markdown]
# ## 10. Removing a watermark
#
# The same two networks, now from a stamped colour digit (`stamp`: a square with a cross, blended in at 60% opacity at
# a random place) to the clean one. Here the answer is *not* ambiguous where the stamp is thin: the digit shows
# through. Measured: PSNR against the clean digit, and the error left inside the stamp's square.

# %%
stamp_noise = torch.Generator().manual_seed(9)
cleaners = {}
for name, R in (("L1 only", recipes.WATERMARK_L1), ("pix2pix", recipes.WATERMARK)):
    epochs, batch_size = S.for_model("watermark")
    torch.manual_seed(0)
    model = R.build(S).to(device)
    step = Pix2PixStep(model, **R.step_args(),
                       task=lambda y: stamp(y, stamp_noise))
    keys = ["l1", "d_real", "d_fake"] if R.adversarial else ["l1"]
    live = LivePlot(keys=keys, title=f"watermark removal: {name}")
    history = train_or_load(R.name, lambda: fit(model, make_loader(colour_train, batch_size), step, None, epochs,
                                                device=device, callbacks=[live]), show=live, model=model)
    cleaners[name] = model

stamped = stamp(colour_test, torch.Generator().manual_seed(10))
marked = (stamped - colour_test).abs().sum(1, keepdim=True) > 1e-3  # where the stamp changed a pixel
watermark_rows = {"stamped input": {"PSNR (dB)": psnr(stamped, colour_test), "error under the stamp": (
    (stamped - colour_test).abs() * marked).sum().item() / (3 * marked.sum().item())}}
cleaned = {}
for name, model in cleaners.items():
    cleaned[name] = model.translate(stamped.to(device)).cpu()
    watermark_rows[name] = {"PSNR (dB)": psnr(cleaned[name], colour_test), "error under the stamp": (
        (cleaned[name] - colour_test).abs() * marked).sum().item() / (3 * marked.sum().item())}
print(markdown_table(watermark_rows))
show_rows({"stamped": stamped[:12], **{k: v[:12] for k, v in cleaned.items()}, "truth": colour_test[:12]})
plt.show()
for name in cleaners:
    assert watermark_rows[name]["error under the stamp"] < watermark_rows["stamped input"]["error under the stamp"]

# %% [markdown]
# ### Exercise 6 — what RePaint costs
# With `repaint(..., steps=50, resample=5)`, how many times is the network called for one batch? Count with the loop
# in `course_lib/editing.py`: each step but the last is done `resample` times.

# %%
my_answer = None  # a whole number
exercises.check("repaint_calls", my_answer)
# exercises.solution("repaint_calls")  # uncomment to see a reference answer

# %% [markdown]
# ## Summary
#
# - Restoration is ill-posed: many clean images fit one damaged input. A model trained with the **MSE** answers with
#   their average (best PSNR, blurred); a **GAN** loss makes it commit to one (worse PSNR, more realistic);
#   a **diffusion** model draws from all of them (SR3: one answer per noise).
# - Trust PSNR and SSIM for fidelity to *this* image, the Frechet distance (on more than one feature network) for
#   realism, and a classifier for whether the content survived; no single number says all three.
# - A **cascade** generates small and enlarges: the 7 x 7 base is cheap to train and to sample.
# - A diffusion model trained only to generate can **edit**: SDEdit starts its reverse process from the noised input,
#   RePaint keeps the known pixels at every step; neither needs training for the task.
