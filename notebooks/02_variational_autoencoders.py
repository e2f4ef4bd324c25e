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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/image-generation-course/image-generation-course/blob/main/notebooks/02_variational_autoencoders.ipynb)

# %% [markdown]
# # Lesson 2 — Variational autoencoders
#
# Lesson 1 ended with the **gap problem**: a plain autoencoder scatters its codes wherever it likes, so a code picked
# at random often falls between the clusters and decodes to a smudge. A **variational autoencoder** (VAE, Kingma &
# Welling 2013) fixes this with two changes:
#
# 1. the encoder outputs a *distribution* over codes, $q_\phi(z \mid x) = \mathcal{N}(\mu, \operatorname{diag}
#    \sigma^2)$, and the decoder sees a random code drawn from it (a "noise layer" after the encoder);
# 2. the loss pulls every $q_\phi(z \mid x)$ towards a fixed prior $p(z) = \mathcal{N}(0, I)$.
#
# Codes then fill a known region around the origin without gaps, and sampling $z \sim \mathcal{N}(0, I)$ and decoding
# it gives new digits. In this lesson you will:
# 1. derive the loss, the **evidence lower bound (ELBO)**, step by step, and check its **KL** term against a Monte
#    Carlo estimate;
# 2. see why sampling blocks gradients and how the **reparameterization trick** fixes it;
# 3. write the VAE's **training step** yourself and train with it;
# 4. compare **AE and VAE latent spaces** with the same architecture;
# 5. measure how far the ELBO lies below $\log p_\theta(x)$, by **importance sampling**;
# 6. sample new digits from both models;
# 7. decode the **2-D manifold**, **interpolate** between digits, do **latent arithmetic**, and steer a VAE with the
#    **latent explorer**;
# 8. see what the weight **beta** on the KL term does.

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
import time

import matplotlib.pyplot as plt
import torch

from course_lib import exercises, recipes
from course_lib.autoencoders import ae_loss, fit_code_gaussian
from course_lib.config import N_SCORED, seed_everything
from course_lib.data import load_dataset, make_loader
from course_lib.lesson import start_lesson
from course_lib.liveplot import LivePlot
from course_lib.metrics import digit_classifier, quality_report
from course_lib.plotting import latent_scatter, show_images, show_rows
from course_lib.pretrained import train_or_load
from course_lib.training import CosineSchedule, fit
from course_lib.vae import (bernoulli_nll, binarize, importance_sampled_log_px, kl_to_standard_normal, lerp,
                            log_importance_weights, negative_elbo, reparameterize, slerp, vae_step)
from course_lib.widgets import LatentExplorer

USE_PRETRAINED = False  # True (or COURSE_PRETRAINED=1 in the environment): load bundled weights instead of training
PRESENTER = False  # True: larger fonts, figures and widgets, for a projector
PROFILE, S, device = start_lesson("vae", pretrained=USE_PRETRAINED, presenter=PRESENTER)
EPOCHS_2D, _ = S.for_model("2d")  # the small 2-D models learn faster: fewer epochs keep the lesson within minutes
EPOCHS_CONV, _ = S.for_model("conv")

train = load_dataset("mnist", "train", n=S.n_train)
test = load_dataset("mnist", "test", n=S.n_test)
x_train, y_train = train.tensors
x_test, y_test = test.tensors
print(f"{len(train)} training and {len(test)} test images")

# %% [markdown]
# ## A probabilistic autoencoder
#
# The VAE tells a story of how a digit is made: first draw a code $z \sim p(z) = \mathcal{N}(0, I)$, then draw the
# image from the decoder's distribution $p_\theta(x \mid z)$. For MNIST we take $p_\theta(x \mid z)$ to be Bernoulli:
# the decoder outputs, for each pixel, the probability that it is ink.
#
# **Which likelihood, exactly?** A Bernoulli is a distribution over *binary* digits, each pixel ink (1) or paper (0),
# and our digits are grey. Read each grey level as the probability of ink: the digit a grey image stands for is drawn
# pixel by pixel (**dynamic binarisation**, `binarize` in `course_lib.vae`). The binary cross-entropy with the grey
# levels as targets equals the average of $-\log p_\theta(b \mid z)$ over those binary digits $b$ (the cross-entropy
# is linear in its target; a cell below checks it on the trained model), so the loss is a true negative
# log-likelihood, of the digit binarised at random, and every "nats per image" in this lesson is one of that
# likelihood. (Read as a density over grey levels themselves, the same formula would not be normalised: the
# *continuous Bernoulli* adds the missing constant.) Published MNIST figures use this likelihood too, but with
# 60,000 training digits and larger codes: no setting here matches theirs, so the lesson compares its own numbers.
#
# ### The evidence lower bound, step by step
# Training should make the digits likely: maximize $\log p_\theta(x)$, where
#
# $$p_\theta(x) = \int p_\theta(x \mid z)\, p(z)\, dz .$$
#
# The decoder gives $p_\theta(x \mid z)$ for one code at a time, but the integral runs over *every* code: it has no
# closed form, and a sum over a grid of codes needs a number of points that grows exponentially with the dimension of
# $z$. It is **intractable**. Bayes' rule names the codes that explain an image, the posterior
#
# $$p_\theta(z \mid x) = \frac{p_\theta(x \mid z)\, p(z)}{p_\theta(x)},$$
#
# but its denominator is the same integral, so the posterior is intractable too. The encoder $q_\phi(z \mid x)$ is
# trained to stand in for it. Three steps turn this into a loss.
#
# **Step 1.** $\log p_\theta(x)$ does not depend on $z$, so it equals its own average over $z \sim q_\phi(z \mid x)$;
# inside, write $p_\theta(x)$ with Bayes' rule, which holds for every $z$:
#
# $$\log p_\theta(x) = \mathbb{E}_{z \sim q_\phi(z \mid x)}\Big[\log \frac{p_\theta(x \mid z)\, p(z)}{p_\theta(z \mid x)}\Big]$$
#
# **Step 2.** Multiply inside by $q_\phi(z \mid x) / q_\phi(z \mid x) = 1$ and split the logarithm into three terms:
#
# $$\log p_\theta(x) = \mathbb{E}_{q}\big[\log p_\theta(x \mid z)\big] -
# \mathbb{E}_{q}\Big[\log \frac{q_\phi(z \mid x)}{p(z)}\Big] +
# \mathbb{E}_{q}\Big[\log \frac{q_\phi(z \mid x)}{p_\theta(z \mid x)}\Big]$$
#
# **Step 3.** The last two terms are KL divergences:
#
# $$\log p_\theta(x) = \underbrace{\mathbb{E}_{q}\big[\log p_\theta(x \mid z)\big] -
# D_\text{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big)}_{\text{ELBO}} +
# \underbrace{D_\text{KL}\big(q_\phi(z \mid x)\,\|\,p_\theta(z \mid x)\big)}_{\ge 0}$$
#
# The first two terms can be computed: the decoder gives $\log p_\theta(x \mid z)$, and the KL between two Gaussians
# has a closed form (below). The third holds the intractable posterior, but a KL divergence is never negative. So
# the first two are a lower bound on $\log p_\theta(x)$, the **evidence lower bound**:
#
# $$\log p_\theta(x) \;\ge\; \underbrace{\mathbb{E}_{z \sim q_\phi(z \mid x)}\big[\log p_\theta(x \mid z)\big]}_
# {\text{reconstruction}} \;-\; \underbrace{D_\text{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big)}_{\text{regularization}}
# = \text{ELBO},$$
#
# and the gap is exactly $\log p_\theta(x) - \text{ELBO} = D_\text{KL}(q_\phi(z \mid x) \| p_\theta(z \mid x))$: the
# closer the encoder comes to the true posterior, the tighter the bound. The same bound in one line, from Jensen's
# inequality ($\log$ is concave, so $\log \mathbb{E}[w] \ge \mathbb{E}[\log w]$):
#
# $$\log p_\theta(x) = \log \mathbb{E}_{z \sim q_\phi(z \mid x)}\Big[\frac{p_\theta(x \mid z)\, p(z)}{q_\phi(z \mid x)}\Big]
# \;\ge\; \mathbb{E}_{z \sim q_\phi(z \mid x)}\Big[\log \frac{p_\theta(x \mid z)\, p(z)}{q_\phi(z \mid x)}\Big] = \text{ELBO}.$$
#
# Training maximizes the ELBO with both networks, i.e. minimizes $L_\text{VAE} = -\text{ELBO}$: rebuild $x$ well, and
# keep each $q_\phi(z \mid x)$ close to the prior. Once a VAE is trained, the section "How tight is the bound?"
# measures how far below $\log p_\theta(x)$ its ELBO lies.
#
# ### The KL term in closed form
# For a diagonal Gaussian against $\mathcal{N}(0, I)$ the KL needs no sampling:
#
# $$D_\text{KL}\big(\mathcal{N}(\mu, \sigma^2)\,\|\,\mathcal{N}(0, I)\big) =
# -\tfrac{1}{2}\sum_j \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)$$
#
# The encoder outputs $\log\sigma^2$ (`logvar`) rather than $\sigma$, so it can be any real number. Check the formula
# against a Monte Carlo estimate, $\mathbb{E}_q[\log q(z) - \log p(z)]$ averaged over many samples:

# %%
mu, logvar = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[-1.0, 0.3, 0.0]])
closed_form = kl_to_standard_normal(mu, logvar).item()
q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
p = torch.distributions.Normal(0.0, 1.0)
z = q.sample((200_000,))
monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean().item()
print(f"KL closed form {closed_form:.4f}, Monte Carlo estimate {monte_carlo:.4f}")
assert abs(closed_form - monte_carlo) < 0.02

# %% [markdown]
# ### Exercise 1 — the KL
# Write the closed form yourself: `my_kl(mu, logvar)` for tensors shaped `(n, d)`, one value per row.

# %%
def my_kl(mu, logvar):
    # YOUR CODE HERE
    return None


exercises.check("kl", my_kl)
# exercises.solution("kl")  # uncomment to see a reference answer

# %% [markdown]
# ## The reparameterization trick
# The reconstruction term needs a code *sampled* from $q_\phi(z \mid x)$. But sampling is a random node: nothing
# tells autograd how the sample would move if $\mu$ or $\sigma$ moved, so no gradient reaches the encoder.
# The trick moves the randomness into an input $\epsilon$:
#
# $$z = \mu + \sigma \odot \epsilon, \qquad \epsilon \sim \mathcal{N}(0, I), \qquad \sigma = \exp(\tfrac{1}{2}\log\sigma^2)$$
#
# Now $z$ is a deterministic, differentiable function of $\mu$ and $\log\sigma^2$. See the difference:

# %%
mu = torch.tensor([0.5, -1.0], requires_grad=True)
logvar = torch.tensor([0.0, 1.0], requires_grad=True)

z_sampled = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).sample()  # a random node
print("sampled directly:      requires_grad =", z_sampled.requires_grad)
assert not z_sampled.requires_grad  # the chain of gradients is cut here

z = reparameterize(mu, logvar)  # mu + sigma * eps
z.pow(2).sum().backward()  # any loss of z
print("reparameterized:       dL/dmu =", mu.grad, " dL/dlogvar =", logvar.grad)
assert mu.grad is not None and logvar.grad is not None and logvar.grad.abs().sum() > 0

# %% [markdown]
# ### Exercise 2 — the trick
# Write `my_reparameterize(mu, logvar)`: a sample of $\mathcal{N}(\mu, \exp(\text{logvar}))$ through which gradients
# flow. The checker draws many samples and checks their mean, variance and gradients.

# %%
def my_reparameterize(mu, logvar):
    # YOUR CODE HERE
    return None


exercises.check("reparameterize", my_reparameterize)
# exercises.solution("reparameterize")

# %% [markdown]
# ## Training a VAE with a 2-D code
# The loss for one batch is the Bernoulli reconstruction term (binary cross-entropy, summed over the pixels) plus the
# KL, averaged over images: `vae_loss` in `course_lib.vae`, which the library's step function `vae_step()` hands to
# `fit`.
#
# ### Exercise 3 — the training step
# Write that step yourself. `my_vae_step(model, batch)` gets a batch `(x, labels)` and returns the batch's negative
# ELBO as a dict `{"loss": recon + kl, "recon": recon, "kl": kl}`, each term averaged over the images: encode `x`
# into `mu, logvar` (`model.encode`), sample `z` with the reparameterization trick (exercise 2, or `reparameterize`),
# take the decoder's logits `model.decoder(z)`, and use `bernoulli_nll` and `kl_to_standard_normal`. Draw the noise
# with `torch.randn_like(mu)`: the checker compares your numbers and gradients with the library's `vae_step()` on the
# same seed.

# %%
def my_vae_step(model, batch):
    # YOUR CODE HERE
    return None


exercises.check("vae_step", my_vae_step)
# exercises.solution("vae_step")

# %% [markdown]
# Now train. Once exercise 3 passes, the VAE below trains with **your** step (the title of the live plot says
# which), until then with the library's `vae_step()`; a right answer computes the same numbers and gradients. Watch
# both terms: the reconstruction falls as the decoder learns; the KL rises at first (the codes start to carry
# information about each image) and then settles. The cell checks the KL's rise and settling on the recorded curve.
# Their sum is the negative ELBO, in nats per image.

# %%
def train_model(model, R, step, title, epochs, keys=None):
    """Train `model` with recipe R (course_lib/recipes.py): Adam at R.lr, lowered along a cosine over the run."""
    seed_everything(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
    fixed = x_test[:8]
    live = LivePlot(keys=keys, images=lambda m: torch.cat([fixed, m(fixed).cpu()]), title=title)
    callbacks = [live, CosineSchedule(optimizer, epochs)] if R.cosine_lr else [live]
    history = train_or_load(R.name, lambda: fit(model, make_loader(train, S.batch_size), step, optimizer, epochs,
                                                device=device, callbacks=callbacks), show=live, model=model)
    if history.stopped is None:  # a run you interrupted keeps its model; there is nothing to check yet
        first, last = history.steps["loss"][:5], history.steps["loss"][-5:]
        assert sum(last) < sum(first), "the loss should go down while training"
    return history


vae2 = recipes.VAE2.build(S)
if exercises.passed("vae_step", my_vae_step):
    history_vae2 = train_model(vae2, recipes.VAE2, my_vae_step, "VAE, 2-D code (your training step)", EPOCHS_2D,
                               keys=["recon", "kl"])
else:
    history_vae2 = train_model(vae2, recipes.VAE2, vae_step(), "VAE, 2-D code", EPOCHS_2D, keys=["recon", "kl"])
if history_vae2.stopped is None:
    kl_curve, tenth = history_vae2.steps["kl"], len(history_vae2.steps["kl"]) // 10
    average = lambda values: sum(values) / len(values)  # noqa: E731
    early = average(kl_curve[tenth:2 * tenth]) - average(kl_curve[:tenth])  # from the 1st to the 2nd tenth of steps
    late = average(kl_curve[-tenth:]) - average(kl_curve[-2 * tenth:-tenth])  # from the 9th to the last tenth
    print(f"KL per image: {early:+.2f} nats from the first tenth of the steps to the second, {late:+.2f} from the "
          f"ninth to the last")
    assert early > 0 and abs(late) < early, "the KL should rise at first, then settle"

# %% [markdown]
# The likelihood claimed above, checked on the trained VAE: for 64 test digits, the reconstruction term with the grey
# levels as targets, against its average over 200 binary digits drawn from each (`binarize`), decoded from the same
# codes. They agree within the Monte Carlo error (3 standard errors of the average).

# %%
x_grey = x_test[:64].to(device)
with torch.no_grad():
    logits = vae2.decoder(vae2.encode(x_grey)[0])  # the mean codes: one decoder output per digit
    grey_term = bernoulli_nll(x_grey, logits).mean().item()
    draws = torch.tensor([bernoulli_nll(binarize(x_grey, torch.Generator().manual_seed(k)), logits).mean().item()
                          for k in range(200)])
error = 3 * draws.std().item() / len(draws) ** 0.5
print(f"-log p(x | z), grey levels as targets: {grey_term:.2f} nats per image; averaged over 200 binarisations: "
      f"{draws.mean():.2f} (one binarisation: {draws.min():.1f} to {draws.max():.1f}; Monte Carlo error {error:.2f})")
assert abs(draws.mean().item() - grey_term) < error, "the grey-level loss is the average over binarisations"

# %% [markdown]
# For the comparisons below, the plain autoencoder of lesson 1 with *exactly the same* layers (784-512-256-2 and
# back), trained with $L_\text{AE}$:

# %%
def ae_step(model, batch):
    x, _ = batch
    return ae_loss(x, model(x))


ae2 = recipes.VAE_AE2.build(S)
history_ae2 = train_model(ae2, recipes.VAE_AE2, ae_step, "autoencoder, 2-D code", EPOCHS_2D)

# %% [markdown]
# ## AE vs VAE: the latent distributions
# The codes of the test digits (for the VAE, the mean $\mu$ of each $q_\phi(z \mid x)$), same architecture, same
# data. Look at the axes: the autoencoder's codes spread over a wide, uneven region with empty stretches; the VAE's
# gather around the origin in a roughly round cloud, the shape of $\mathcal{N}(0, I)$, with the digits side by side.

# %%
with torch.no_grad():
    codes_ae = ae2.encode(x_test).cpu()
    codes_vae = vae2.encode(x_test)[0].cpu()
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6))
latent_scatter(codes_ae, y_test, ax=ax1, title="autoencoder codes")
latent_scatter(codes_vae, y_test, ax=ax2, title="VAE codes (means of q(z|x))")
fig.tight_layout()
plt.show()

# %% [markdown]
# How close is each cloud to $\mathcal{N}(0, I)$, the distribution we will sample codes from? Fit a Gaussian
# $\mathcal{N}(m, C)$ to the codes and compute its KL divergence from $\mathcal{N}(0, I)$ (the full-covariance version of
# the formula above): $\tfrac{1}{2}\big(\operatorname{tr} C + m^\top m - d - \log\det C\big)$.

# %%
def kl_of_fitted_gaussian(codes):
    m, c = codes.mean(0), torch.cov(codes.T)
    return 0.5 * (c.trace() + m @ m - codes.shape[1] - torch.logdet(c)).item()


kl_ae, kl_vae = kl_of_fitted_gaussian(codes_ae), kl_of_fitted_gaussian(codes_vae)
print(f"KL(fitted Gaussian || N(0, I)): autoencoder {kl_ae:.2f}, VAE {kl_vae:.2f} nats")
print(f"spread of the codes (std per dimension, averaged): autoencoder {codes_ae.std(0).mean():.2f}, "
      f"VAE {codes_vae.std(0).mean():.2f}")
assert kl_vae < kl_ae and codes_vae.std(0).mean() < codes_ae.std(0).mean()

# %% [markdown]
# ## How tight is the bound? log p(x) by importance sampling
# How far below $\log p_\theta(x)$ does the ELBO of the 2-D VAE trained above lie? The gap
# $D_\text{KL}(q_\phi(z \mid x) \| p_\theta(z \mid x))$ holds the intractable posterior, so it cannot be computed
# directly. But $p_\theta(x)$ itself can be *estimated*: the one-line derivation wrote it as an average over codes
# from the encoder,
#
# $$p_\theta(x) = \mathbb{E}_{z \sim q_\phi(z \mid x)}\big[w\big], \qquad w = \frac{p_\theta(x \mid z)\, p(z)}{q_\phi(z \mid x)},$$
#
# so draw $K$ codes $z_k \sim q_\phi(z \mid x)$ and average their weights (**importance sampling**):
#
# $$\log p_\theta(x) \approx \log \frac{1}{K} \sum_{k=1}^{K} \frac{p_\theta(x \mid z_k)\, p(z_k)}{q_\phi(z_k \mid x)} .$$
#
# By Jensen's inequality again, the expectation of this estimate is at most $\log p_\theta(x)$. For $K = 1$ it is
# $\mathbb{E}_q[\log w]$, exactly the ELBO; with more samples it rises towards $\log p_\theta(x)$ (Burda et al. 2016).
# `log_importance_weights` in `course_lib.vae` computes the $\log w_k$ (the same Bernoulli $p_\theta(x \mid z)$ as the
# loss), here of binary test digits (`binarize`, one draw each): for them $p_\theta(x)$ is a probability, and the
# estimate a log-likelihood in nats. Most weights themselves are too small for float32: `exp` turns them into 0 (the
# cell below prints the range of the $\log w_k$ and the share that becomes 0), so the average is taken in logs.
#
# ### Exercise 4 — the estimate of $\log p_\theta(x)$
# Write `my_log_px(log_w)`: $\log \frac{1}{K}\sum_k e^{\log w_k}$ over the **last** dimension of `log_w` (its $K$
# samples), one value for each of the other entries. Watch out: `log_w.exp()` turns most of them into 0.

# %%
def my_log_px(log_w):
    # YOUR CODE HERE
    return None


exercises.check("log_px", my_log_px)
# exercises.solution("log_px")

# %% [markdown]
# Now the measurement, on 64 test digits with 1,000 codes each. The 1,000 codes form 1,000 / K groups of K, and the
# estimate is averaged over the groups and the digits (your `my_log_px` once exercise 4 passes, else the library's
# `importance_sampled_log_px`). Next to it, the ELBO as the loss computes it (closed-form KL). The cell checks that
# K = 1 gives the ELBO, and that larger K gives a higher estimate, above the ELBO, by less at each step, as it
# approaches $\log p_\theta(x)$. (Each group of 10 holds 10 groups of 1, and so on, so on these very samples Jensen's inequality
# already orders the rows; the size of the steps is what the measurement adds.)

# %%
x_check = binarize(x_test[:64], torch.Generator().manual_seed(0))  # 64 binary test digits
log_w = log_importance_weights(vae2, x_check, samples=1000, generator=torch.Generator().manual_seed(0))  # (64, 1000)
log_px = my_log_px if exercises.passed("log_px", my_log_px) else importance_sampled_log_px
elbo = -negative_elbo(vae2, x_check, samples=100)  # the loss's own ELBO: closed-form KL, 100 codes per digit
print(f"log w_k from {log_w.min():.0f} to {log_w.max():.0f} nats; in float32, exp(log w_k) is 0 for "
      f"{(log_w.exp() == 0).float().mean():.0%} of them")
estimates = {}
for K in (1, 10, 100, 1000):
    estimates[K] = log_px(log_w.view(len(x_check), -1, K)).mean().item()  # (64, 1000 / K) estimates, averaged
    print(f"K = {K:4d}: estimate of log p(x) {estimates[K]:8.2f} nats per image, {estimates[K] - elbo:+5.2f} above "
          f"the ELBO")
print(f"ELBO {elbo:.2f} nats per image; the bound's gap, KL(q(z|x) || p(z|x)), is at least about "
      f"{estimates[1000] - elbo:.2f} nats")
rises = [estimates[b] - estimates[a] for a, b in [(1, 10), (10, 100), (100, 1000)]]
assert (log_w.exp() == 0).float().mean() > 0.5, "most weights are too small for float32"
assert abs(estimates[1] - elbo) < 0.5, "K = 1 should give the ELBO"
assert all(r > 0 for r in rises) and rises == sorted(rises, reverse=True), "higher with K, by less at each step"
assert all(estimates[K] > elbo for K in (10, 100, 1000)), "with more than one sample, above the ELBO"

# %% [markdown]
# ## Sampling from the prior: VAE vs AE
# The real test of a generator. Draw $z \sim \mathcal{N}(0, I)$ and decode it, with a VAE and with a plain
# autoencoder of the same (convolutional, 8-number code) architecture, trained for the same epochs on the same digits.

# %%
R = recipes.VAE8
vae8 = R.build(S)
history_vae8 = train_model(vae8, R, vae_step(augment=R.augment, generator=torch.Generator().manual_seed(0)),
                            "convolutional VAE, 8-D code", EPOCHS_CONV, keys=["recon", "kl"])
nelbo = negative_elbo(vae8, x_test)
print(f"test negative ELBO: {nelbo:.1f} nats per image (a coin flip per pixel would be {784 * math.log(2):.0f})")
assert nelbo < 784 * math.log(2)

# %%
ae8 = recipes.VAE_AE8.build(S)
history_ae8 = train_model(ae8, recipes.VAE_AE8, ae_step, "convolutional autoencoder, 8-D code", EPOCHS_CONV)

# %%
generator = torch.Generator().manual_seed(1)
z = torch.randn(N_SCORED[PROFILE], vae8.latent_dim, generator=generator)
with torch.no_grad():
    samples_vae, samples_ae = vae8.decode(z).cpu(), ae8.decode(z).cpu()
show_rows({"VAE": samples_vae[:14], "autoencoder": samples_ae[:14]})
plt.show()
report_vae = quality_report(samples_vae, name="VAE, z ~ N(0, I)")
report_ae = quality_report(samples_ae, name="AE,  z ~ N(0, I)")
assert report_vae["fd"] < report_ae["fd"], "the VAE should generate far more realistic digits from the prior"
spread = {name: x.std(dim=0).mean().item() for name, x in [("VAE", samples_vae), ("AE", samples_ae)]}
print(f"how different the samples are from each other (each pixel's std across samples, averaged): "
      f"VAE {spread['VAE']:.3f}, AE {spread['AE']:.3f}")
grey = lambda images: ((images > 0.2) & (images < 0.8)).sum().item() / (images > 0.2).sum().item()  # noqa: E731
print(f"blur: share of the inked pixels (> 0.2) that are grey (< 0.8): VAE samples {grey(samples_vae):.0%}, "
      f"real test digits {grey(x_test):.0%}")
assert grey(samples_vae) > grey(x_test), "the VAE's samples should be blurrier than real digits"

# %% [markdown]
# Read precision and recall as a pair. **Precision** is the share of samples that land near *some* real digit (in
# the digit classifier's features); **recall** the share of real digits that have a sample near them. A model that
# draws nearly the same image for every code (a small spread above) can score a high precision if that one image
# lands near a few real digits, and a recall near 0: that pair means "one kind of image, over and over", not
# "realistic". The Frechet distance, which compares whole distributions, is the number to rank models by.
#
# The autoencoder was never asked to put its codes anywhere in particular, so $\mathcal{N}(0, I)$ means nothing to
# its decoder (the cell asserts the VAE's lower Frechet distance). The VAE's decoder was trained on codes drawn
# around $\mathcal{N}(0, I)$. Its samples are blurrier than real digits (the grey share printed above, asserted): the
# price of a likelihood that averages over every code $q_\phi(z \mid x)$ allows.
#
# A fairer chance for the autoencoder is lesson 1's trick: fit a Gaussian to its own training codes *after*
# training, and sample from that. Compare its score with the VAE's above: Ghosh et al. (2020) found such a
# fitted-afterwards sampler a strong baseline. What the VAE adds is a latent space *built* to be sampled: no fitting
# afterwards, and a likelihood bound (the ELBO) to compare models.

# %%
with torch.no_grad():
    codes_ae8 = torch.cat([ae8.encode(x).cpu() for x in x_train.split(1000)])
    torch.manual_seed(1)
    samples_fitted = ae8.decode(fit_code_gaussian(codes_ae8).sample((N_SCORED[PROFILE],))).cpu()
report_fitted = quality_report(samples_fitted, name="AE, z ~ Gaussian fitted to its codes")
assert report_fitted["fd"] < report_ae["fd"], "a Gaussian fitted to the codes should beat N(0, I) for the AE"
ahead = "the fitted autoencoder" if report_fitted["fd"] < report_vae["fd"] else "the VAE"
print(f"Frechet distance: VAE from N(0, I) {report_vae['fd']:.0f}, AE from its fitted Gaussian "
      f"{report_fitted['fd']:.0f}: {ahead} is ahead here")

# %% [markdown]
# ## The 2-D manifold
# Kingma & Welling's figure 4: with a 2-D code, lay a grid over the *probability* of each coordinate, map it through
# the inverse normal CDF $z_j = \Phi^{-1}(u_j)$, $u_j \in (0, 1)$, and decode every point. Because the codes follow
# $\mathcal{N}(0, I)$, this covers the prior evenly. Look for cells that are no digit at all, and at how each digit
# morphs into its neighbours.

# %%
n = 15
u = torch.linspace(0.03, 0.97, n)
z1 = torch.distributions.Normal(0.0, 1.0).icdf(u)
z2 = torch.distributions.Normal(0.0, 1.0).icdf(u.flip(0))  # top row = largest z_2, like a plot
grid = torch.stack(torch.meshgrid(z2, z1, indexing="ij")[::-1], dim=-1).reshape(-1, 2)  # (n*n, 2) as (z_1, z_2)
with torch.no_grad():
    manifold = vae2.decode(grid).cpu()
show_images(manifold, nrow=n, title="VAE: decoded grid over the 2-D prior", scale=1.0)
plt.show()

# %% [markdown]
# ## Interpolation: midpoints between two digits
# Walk from the code of one test digit to another's and decode along the way: linearly (**lerp**,
# $z_t = (1-t) z_a + t z_b$) and along the sphere (**slerp**, which keeps the norm typical of $\mathcal{N}(0, I)$
# samples instead of cutting through the rarely visited centre). Compare the autoencoder's path with the VAE's.

# %%
a, b = 0, int((y_test != y_test[0]).nonzero()[0])  # two test digits of different classes
t = torch.linspace(0, 1, 10)
with torch.no_grad():
    za, zb = ae8.encode(x_test[[a, b]]).cpu()
    va, vb = vae8.encode(x_test[[a, b]])[0].cpu()
    paths = {
        "AE, lerp": ae8.decode(lerp(za, zb, t)).cpu(),
        "VAE, lerp": vae8.decode(lerp(va, vb, t)).cpu(),
        "VAE, slerp": vae8.decode(slerp(va, vb, t)).cpu(),
    }
show_rows(paths)
plt.show()

# %% [markdown]
# Measured over many pairs: decode the *midpoint* between the codes of 200 random pairs of test digits of different
# classes, and ask the digit classifier how sure it is of what it sees (its highest class probability; a smudge or
# an overlay of two digits gets a low one).

# %%
pairs = torch.randint(len(x_test), (200, 2), generator=torch.Generator().manual_seed(5))
pairs = pairs[y_test[pairs[:, 0]] != y_test[pairs[:, 1]]]
with torch.no_grad():
    z_ae = ae8.encode(x_test).cpu()
    z_vae = vae8.encode(x_test)[0].cpu()
    mid_ae = ae8.decode((z_ae[pairs[:, 0]] + z_ae[pairs[:, 1]]) / 2).cpu()
    mid_vae = vae8.decode((z_vae[pairs[:, 0]] + z_vae[pairs[:, 1]]) / 2).cpu()
    confidence = lambda images: digit_classifier()(images).softmax(1).max(1).values.mean().item()  # noqa: E731
    sure_ae, sure_vae, sure_real = confidence(mid_ae), confidence(mid_vae), confidence(x_test)
print(f"classifier confidence on decoded midpoints: autoencoder {sure_ae:.1%}, VAE {sure_vae:.1%}"
      f" (on real test digits: {sure_real:.1%})")
assert sure_vae > 0.6, "the VAE's midpoints should read as digits"
assert max(sure_ae, sure_vae) < sure_real, "a midpoint between two different digits is less clear than a real digit"
assert sure_vae < sure_ae + 0.1, "here the VAE's midpoints are not clearly ahead of the autoencoder's"

# %% [markdown]
# Read the three numbers. The VAE's midpoints read as digits, less clearly than real ones; but the autoencoder's
# midpoints score about as well (the cell asserts that the VAE is not ahead by more than 10 points). So this
# measurement shows **no gap problem** for this autoencoder: with 8 dimensions and a convolutional decoder, the
# straight line between the codes of two *real* digits stays where the decoder was trained. Its gaps are elsewhere,
# away from the codes of real digits, where the codes drawn from $\mathcal{N}(0, I)$ fell in the sampling section
# (there the VAE's Frechet distance was lower, asserted). In 2-D (lesson 1), half of the codes crowded into a few
# cells of the plane.

# %% [markdown]
# ## Latent arithmetic
# Directions in the VAE's latent space carry meaning. Take an attribute, here **stroke thickness**: the mean code of
# the boldest quarter of training digits ($A'$) minus the mean code of the thinnest quarter ($A$) gives a "bolder"
# direction. Adding it to the code of any digit $B$, $z = B + (A' - A)$, should make that digit bolder. Does it keep
# its identity? The cell measures both: the ink, and whether the digit classifier still reads the same digit.

# %%
ink = x_train.flatten(1).sum(1)  # how much ink each training digit has
with torch.no_grad():
    codes_train = vae8.encode(x_train)[0].cpu()
bold, thin = ink >= ink.quantile(0.75), ink <= ink.quantile(0.25)
bolder = codes_train[bold].mean(0) - codes_train[thin].mean(0)  # A' - A
steps = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
rows = {}
with torch.no_grad():
    for i in range(5):
        rows[f"digit {int(y_test[i])}"] = vae8.decode(z_vae[i] + steps.unsqueeze(1) * bolder).cpu()
    thinner = vae8.decode(z_vae - bolder).cpu()
    same = vae8.decode(z_vae).cpu()
    thicker = vae8.decode(z_vae + bolder).cpu()
show_rows(rows)
plt.show()
ink_of = lambda images: images.flatten(1).sum(1).mean().item()  # noqa: E731
print(f"mean ink: B - (A' - A) {ink_of(thinner):.0f},  B {ink_of(same):.0f},  B + (A' - A) {ink_of(thicker):.0f}")
assert ink_of(thinner) < ink_of(same) < ink_of(thicker)
with torch.no_grad():
    read_as = lambda images: digit_classifier()(images).argmax(1)  # noqa: E731
    read_b = read_as(same)
    kept_thinner = (read_as(thinner) == read_b).float().mean().item()
    kept_thicker = (read_as(thicker) == read_b).float().mean().item()
print(f"the classifier reads the same digit as in B: after B - (A' - A) {kept_thinner:.0%}, after B + (A' - A) "
      f"{kept_thicker:.0%} of the test digits")
for name, group in [("boldest", bold), ("thinnest", thin)]:
    counts = torch.bincount(y_train[group], minlength=10)
    print(f"the {name} quarter: {counts[1] / counts.sum():.0%} ones, {counts[0] / counts.sum():.0%} zeros")

# %% [markdown]
# The columns go from $B - (A' - A)$ through $B$ to $B + (A' - A)$: the ink rises (asserted). The identity is another
# matter: read the printed shares. A direction made of mean codes carries *everything* that differs between the two
# groups, and the bold and thin quarters differ in more than stroke width: the last lines print how many ones and
# zeros each holds.
#
# ## The latent explorer
# Eight sliders, one per latent dimension of the convolutional VAE. Pick a test image with the `image` slider and
# press **start from this image** to jump to its code, then move single dimensions and watch which property each one
# controls (slant, width, thickness, the digit itself). Within about $\pm 2$ you stay where the codes of real digits
# lie (the cell prints the share of the test digits' code values in that range); push a slider to $\pm 3$: does the
# image keep its shape?

# %%
explorer = LatentExplorer(vae8.decode, latent_dim=vae8.latent_dim, value_range=(-3, 3), images=x_test[:50],
                          encode=lambda x: vae8.encode(x)[0])
explorer.start_button.click()  # start from test image 0
assert torch.allclose(explorer.z, z_vae[:1], atol=explorer.sliders[0].step)
start = time.perf_counter()
for value in torch.linspace(-2, 2, 20).tolist():
    explorer.sliders[0].value = value
redraw_ms = (time.perf_counter() - start) / 20 * 1000
print(f"one slider move: decode + PNG in {redraw_ms:.1f} ms")
inside = (z_vae.abs() < 2).float().mean().item()
print(f"{inside:.1%} of the test digits' code values (means of q(z|x)) lie within +-2")
assert inside > 0.9
explorer

# %% [markdown]
# ## Beta: the price of information
# Put a weight $\beta$ on the KL term: $L = -\mathbb{E}_q[\log p_\theta(x \mid z)] + \beta\, D_\text{KL}(q_\phi(z \mid x)
# \| p(z))$. $\beta = 1$ is the true ELBO. Before running the next cells, predict what a larger $\beta$ does.
#
# ### Exercise 5 — predict the effect of beta

# %%
my_choice = None  # YOUR ANSWER HERE: "a", "b" or "c"
exercises.check("beta", my_choice)
# exercises.solution("beta")

# %% [markdown]
# Now train the 2-D VAE with a small and a large $\beta$ and compare, on the test set, the two terms (each measured
# the same way, whatever $\beta$ was used in training), the reconstructions, samples from the prior, and the latent
# maps.

# %%
vaes = {1.0: vae2}
for beta in (0.2, 5.0):
    R = recipes.VAE2_BETA[beta]
    vaes[beta] = R.build(S)
    train_model(vaes[beta], R, vae_step(beta=R.beta), f"VAE, 2-D code, beta = {beta}", EPOCHS_2D, keys=["recon", "kl"])
vaes = dict(sorted(vaes.items()))

# %%
terms = {}
with torch.no_grad():
    for beta, model in vaes.items():
        mu, logvar = model.encode(x_test)
        recon = bernoulli_nll(x_test.to(device), model.decoder(mu)).mean().item()
        kl = kl_to_standard_normal(mu, logvar).mean().item()
        terms[beta] = (recon, kl, mu.std(0).mean().item())
        print(f"beta = {beta:3.1f}: reconstruction {recon:6.1f} nats, KL {kl:5.2f} nats, spread of the codes "
              f"(std of mu) {terms[beta][2]:.2f}")
recons, kls, spreads = ([t[i] for t in terms.values()] for i in range(3))
assert recons == sorted(recons) and kls == sorted(kls, reverse=True), "larger beta: worse reconstruction, smaller KL"
assert spreads == sorted(spreads, reverse=True), "larger beta: codes squeezed closer together"

# %%
fig, axes = plt.subplots(2, 3, figsize=(16, 10))
with torch.no_grad():
    for col, (beta, model) in enumerate(vaes.items()):
        latent_scatter(model.encode(x_test)[0].cpu(), y_test, ax=axes[0, col], title=f"beta = {beta}")
        shown = torch.cat([x_test[:8], model(x_test[:8]).cpu(), model.sample(16, torch.Generator().manual_seed(0)).cpu()])
        show_images(shown, nrow=8, ax=axes[1, col], title="test digits / reconstructions / samples")
fig.tight_layout()
plt.show()

# %% [markdown]
# The numbers above: a larger $\beta$ gives a worse reconstruction term, a smaller KL, and codes squeezed closer
# together (all three asserted). In the figure, look at the axes of the latent maps and at the reconstructions:
# which $\beta$ gives the sharpest? $\beta$ trades faithful reconstructions against a latent space that matches the
# prior.
#
# ## Summary
# - A VAE's encoder outputs a Gaussian $q_\phi(z \mid x)$; the **reparameterization trick** $z = \mu + \sigma\epsilon$
#   lets gradients through the sampling.
# - The loss is the negative **ELBO**: reconstruction + KL to the prior $\mathcal{N}(0, I)$ (closed form). The ELBO
#   lies below $\log p_\theta(x)$ by $D_\text{KL}(q_\phi(z \mid x) \| p_\theta(z \mid x))$; importance sampling with
#   $K$ codes starts at the ELBO ($K = 1$) and rises towards $\log p_\theta(x)$.
# - The KL term pulls the codes into the prior, so codes drawn from $\mathcal{N}(0, I)$ decode to digits, where a
#   plain autoencoder's do not. The price is blur.
# - **Next (lesson 3, GANs):** a generator trained against a discriminator instead of a likelihood, which gives sharp
#   samples.
