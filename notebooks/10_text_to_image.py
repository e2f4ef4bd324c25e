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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/image-generation-course/image-generation-course/blob/main/notebooks/10_text_to_image.ipynb)

# %% [markdown]
# # Lesson 10 — Text-to-image in miniature
#
# The lectures end with the models everyone has heard of: DALL·E, Imagen, Stable Diffusion. Each turns a sentence
# into a picture with the same few parts: a way to make images small (an autoencoder), a way to read the sentence (a
# text encoder), and a generator that sees both. This lesson builds every part from scratch, at digit scale, on a
# laptop CPU:
#
# 1. **captioned colour digits**: pictures whose content is known, so every caption is true and every sample can be
#    checked; some (digit, ink) pairs, such as green sevens, are never shown in training;
# 2. a **VQ-VAE** that turns a picture into 196 whole numbers (codes), with its codebook, the straight-through
#    estimator and the commitment loss;
# 3. a **transformer prior** over those codes that reads the caption first: text -> codes -> image, DALL·E 1's recipe;
# 4. a **miniature CLIP**, an image encoder and a text encoder trained so that matching pairs agree;
# 5. **latent diffusion with cross-attention**: a U-Net on the VQ-VAE's latents whose pixels look up the caption's
#    words, caption dropout and classifier-free guidance, and the attention maps that show which word looks where;
# 6. a **prompt box**, and a measured answer to the question that matters: does the picture show what was asked,
#    also for combinations the models never saw?

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
from course_lib.captions import (HELD_OUT, VOCABULARY, caption, captioned_digits, is_held_out, prompts_for, tokenize,
                                 words)
from course_lib.data import describe_attributes, make_loader
from course_lib.diffusion import DiffusionSchedule
from course_lib.latent_diffusion import encode_dataset
from course_lib.lesson import start_lesson
from course_lib.liveplot import LivePlot
from course_lib.nets import evaluating, n_params
from course_lib.plotting import markdown_table, show_images, show_rows
from course_lib.pretrained import train_or_load
from course_lib.prompt_following import prompt_following, read_attributes
from course_lib.text2image import clip_loss, clip_step, draw_from_text, t2i_step
from course_lib.training import EMA, fit
from course_lib.vqvae import dead_codes, draw_from_codes, encode_codes, perplexity, prior_step, vq_step
from course_lib.widgets import PromptBox

USE_PRETRAINED = False  # True (or COURSE_PRETRAINED=1 in the environment): load bundled weights instead of training
PRESENTER = False  # True: larger fonts, figures and widgets, for a projector
PROFILE, S, device = start_lesson("text_to_image", pretrained=USE_PRETRAINED, presenter=PRESENTER)
train, train_captions = captioned_digits("train", n=S.n_train, copies=S.copies)
test, test_captions = captioned_digits("test", n=S.n_test)
images, labels, attributes, tokens = train.tensors


def early_late(values):
    """Mean of the first and of the last tenth of a training curve."""
    k = max(1, len(values) // 10)
    return sum(values[:k]) / k, sum(values[-k:]) / k


print(f"{len(train):,} captioned training pictures ({len(train) // S.copies:,} digits painted {S.copies} times), "
      f"{len(test):,} test pictures")

# %% [markdown]
# ## 1. Captioned colour digits
#
# Each picture is a bundled MNIST digit painted with one of 8 inks on one of 4 backgrounds, large or small, and
# small ones in one of 5 places. Its caption names some of these in one of four phrasings, so "a small red seven on
# the left" and "7, red ink, small, left" can describe the same picture, and a caption may leave things out (then the
# model may choose).

# %%
show_images(images[:16], nrow=8, title="training pictures")
plt.show()
for text, row, digit in zip(train_captions[:8], attributes[:8], labels[:8]):
    print(f"{text!r:60}  truth: {int(digit)}, {describe_attributes(row)}")

# %% [markdown]
# A model reads a caption as **tokens**: each known word becomes a number, and the caption is padded with 0 to 16
# words. The vocabulary is small, so a misspelt word is refused with the nearest known word.

# %%
print(f"{len(VOCABULARY)} tokens: {', '.join(VOCABULARY)}")
print(f"{train_captions[0]!r} -> {tokens[0].tolist()}")
try:
    words("a purpel seven")
except ValueError as error:
    print(str(error)[:90], "...")

# %% [markdown]
# **Held out.** These (digit, ink) pairs never appear in the training pictures (their digits were painted with
# another ink). Asking for them later tests whether a model *composes* "green" and "seven" from the greens and the
# sevens it has seen.

# %%
print("held out:", ", ".join(f"{ink} {digit}" for digit, ink in HELD_OUT))
assert not is_held_out(labels, attributes[:, 0]).any()
print(f"training pictures showing a held-out pair: 0 of {len(train):,}; test pictures: "
      f"{int(is_held_out(test.tensors[1], test.tensors[2][:, 0]).sum())} of {len(test):,}")

# %% [markdown]
# **Reading a picture back.** To measure whether a sample shows what its caption asked for, `read_attributes` reads
# the background (the border's colour), the ink (the colour furthest from it), the size and place (the ink's box),
# and the digit (the course's digit classifier, after the ink is turned back into a grey MNIST-style digit). On real
# test pictures it should be nearly always right; otherwise it could not judge a model.

# %%
read = read_attributes(test.tensors[0])
reader = {"digit": (read["digit"] == test.tensors[1]).float().mean().item()}
for i, name in enumerate(["ink", "background", "size", "position"]):
    reader[name] = (read[name] == test.tensors[2][:, i]).float().mean().item()
print("the reader on real test pictures:", ", ".join(f"{k} {v:.1%}" for k, v in reader.items()))
assert reader["digit"] > 0.93 and reader["ink"] > 0.97 and reader["background"] > 0.97

# %% [markdown]
# ## 2. VQ-VAE: a picture as 196 codes
#
# A VQ-VAE (van den Oord et al. 2017) is an autoencoder whose code is a grid of **whole numbers**. The encoder makes a
# 14 x 14 grid of 4-number vectors $z_e$; each is replaced by its nearest entry of a learned **codebook** of 256
# vectors, $z_q = e_k$ with $k = \arg\min_j \lVert z_e - e_j \rVert$, and the decoder rebuilds the picture from
# $z_q$. The loss has three parts:
#
# $$\mathcal{L} = \lVert x - D(z_q) \rVert^2 + \lVert \mathrm{sg}[z_e] - e \rVert^2 + \beta \lVert z_e - \mathrm{sg}[e]
# \rVert^2$$
#
# reconstruction, **codebook** (move the chosen entries towards what the encoder makes) and **commitment** (keep the
# encoder near its entries), with sg = stop-gradient and $\beta$ = 0.25. Choosing the nearest entry has no gradient,
# so the decoder's gradient is copied to the encoder unchanged: the **straight-through estimator**,
# $z_q \leftarrow z_e + \mathrm{sg}[z_q - z_e]$.
#
# ### Exercise 1 — quantise, with a gradient
# Write `my_quantize(z_e, codebook)`: for z_e (B, D, H, W) and a codebook (K, D), return (z_q with the
# straight-through gradient, codes (B, H, W)). The checker compares with the library and checks that a gradient
# reaches z_e.

# %%
def my_quantize(z_e, codebook):
    # YOUR CODE HERE
    return None


exercises.check("vq_quantize", my_quantize)
# exercises.solution("vq_quantize")  # uncomment to see a reference answer

# %% [markdown]
# Training: the live plot shows the reconstruction error, and the **perplexity** of the codes used in each batch,
# $\exp(-\sum_k p_k \log p_k)$: the number of codes the batch uses, counted as if equally often. Codes that nobody
# picks (**dead codes**) waste the codebook; every 100 steps the library moves them onto vectors the encoder made.

# %%
R = recipes.VQ_T2I
epochs, batch_size = S.for_model("vqvae")
torch.manual_seed(0)
vqvae = R.build(S).to(device)
shown = test.tensors[0][:16]
print(f"VQ-VAE: {n_params(vqvae):,} parameters, {vqvae.num_codes} codes of {vqvae.code_dim} numbers, "
      f"{vqvae.grid} x {vqvae.grid} grid")
live = LivePlot(keys=["recon", "perplexity"], title="VQ-VAE", images=lambda m: m(shown.to(device)).image.cpu())
history = train_or_load(R.name, lambda: fit(vqvae, make_loader(train, batch_size), vq_step(recipes.VQ_BETA),
                                            torch.optim.Adam(vqvae.parameters(), lr=R.lr), epochs, device=device,
                                            callbacks=[live]), show=live, model=vqvae)
first, last = early_late(history.steps["recon"])
print(f"{history.epoch} epochs in {history.seconds:.0f} s; reconstruction error {first:.4f} -> {last:.4f}")
assert last < 0.5 * first

# %% [markdown]
# Reconstructions of test pictures, the codes in use and, for a few pictures, the code grid itself (each colour is one
# code). If the reader cannot read a reconstruction, no generator that draws these codes can do better: this is the
# ceiling of both routes below.

# %%
with evaluating(vqvae):
    out = vqvae(test.tensors[0].to(device))
test_codes = out.codes.cpu()
recon_read = read_attributes(out.image.cpu())
ceiling = {"digit": (recon_read["digit"] == test.tensors[1]).float().mean().item(),
           "ink": (recon_read["ink"] == test.tensors[2][:, 0]).float().mean().item()}
show_rows({"test pictures": shown, "reconstructions": out.image[:16].cpu()})
plt.show()
fig, axes = plt.subplots(1, 4, figsize=(8, 2))
for ax, grid in zip(axes, test_codes[:4]):
    ax.imshow(grid, cmap="tab20", interpolation="nearest")
    ax.set_axis_off()
plt.suptitle("code grids (14 x 14, one colour per code)")
plt.show()
print(f"codes in use on the test pictures: perplexity {perplexity(test_codes, vqvae.num_codes):.0f} of "
      f"{vqvae.num_codes}, dead codes {dead_codes(test_codes, vqvae.num_codes)}; the reader on the reconstructions: "
      f"digit {ceiling['digit']:.1%}, ink {ceiling['ink']:.1%}")
if PROFILE != "smoke":
    assert ceiling["digit"] > 0.85 and ceiling["ink"] > 0.95

# %% [markdown]
# ## 3. Text -> codes -> image: a transformer prior
#
# With pictures as 196 codes, generating a picture is writing a sentence of 196 words. DALL·E 1 trains a transformer
# on the caption's tokens followed by the picture's codes, each position predicting the next code from everything
# before it (a **causal mask**). Drawing a picture is then 196 passes of the transformer, one code at a time:
#
# $$p(c_1, \dots, c_{196} \mid \text{caption}) = \prod_i p(c_i \mid \text{caption}, c_1, \dots, c_{i-1})$$

# %%
R = recipes.CODE_PRIOR
epochs, batch_size = S.for_model("prior")
torch.manual_seed(0)
prior = R.build(S).to(device)
code_data = TensorDataset(tokens, encode_codes(vqvae, images))
print(f"code prior: {n_params(prior):,} parameters; sequences of {prior.length} tokens (16 words + 196 codes)")
live = LivePlot(keys=["loss"], title="code prior: cross-entropy per code")
history = train_or_load(R.name, lambda: fit(prior, make_loader(code_data, batch_size), prior_step(),
                                            torch.optim.AdamW(prior.parameters(), lr=R.lr), epochs, device=device,
                                            callbacks=[live]), show=live, model=prior)
first, last = early_late(history.steps["loss"])
print(f"{history.epoch} epochs in {history.seconds:.0f} s; cross-entropy {first:.2f} -> {last:.2f} nats per code "
      f"(uniform guessing: {torch.log(torch.tensor(256.0)):.2f})")
assert last < first

# %% [markdown]
# Four captions, six drawings each (a row per caption).

# %%
asked = ["a red seven", "a small yellow three on the left", "the digit zero written in cyan on navy",
         "a white 4, with a maroon background"]
start = time.perf_counter()
drawn = draw_from_codes(prior, vqvae, [c for c in asked for _ in range(6)], seed=0)
per_image = (time.perf_counter() - start) / len(drawn)
show_rows({c: drawn[6 * i:6 * i + 6] for i, c in enumerate(asked)})
plt.show()
print(f"{per_image:.3f} s per image (196 passes of the transformer)")

# %% [markdown]
# ## 4. A miniature CLIP
#
# CLIP (Radford et al. 2021) learns a text encoder and an image encoder together, from pairs only: in a batch of B
# pictures and their B captions, picture i should be most similar to caption i and to no other. With unit vectors
# $I_i$, $T_j$ and a learned temperature, the loss is the cross-entropy of the B x B similarity table, read by rows and
# by columns:
#
# $$\mathcal{L} = \tfrac12 \left[\mathrm{CE}(s\, I T^\top, \mathrm{diag}) + \mathrm{CE}(s\, T I^\top,
# \mathrm{diag})\right]$$
#
# ### Exercise 2 — the CLIP loss
# Write `my_clip_loss(image_vectors, text_vectors, logit_scale)` (vectors already unit length, `logit_scale` the log of
# s). The checker compares with the library's `clip_loss`.

# %%
def my_clip_loss(image_vectors, text_vectors, logit_scale):
    # YOUR CODE HERE
    return None


exercises.check("clip_loss", my_clip_loss)
# exercises.solution("clip_loss")  # uncomment to see a reference answer

# %%
loss_fn = my_clip_loss if exercises.passed("clip_loss", my_clip_loss) else clip_loss  # yours, once it is right
print("training with", "your my_clip_loss" if loss_fn is my_clip_loss else "the library's clip_loss")
R = recipes.MINI_CLIP
epochs, batch_size = S.for_model("clip")
torch.manual_seed(0)
clip = R.build(S).to(device)
live = LivePlot(keys=["loss", "top1"], title="miniature CLIP")
history = train_or_load(R.name, lambda: fit(clip, make_loader(train, batch_size), clip_step(loss_fn),
                                            torch.optim.Adam(clip.parameters(), lr=R.lr), epochs, device=device,
                                            callbacks=[live]), show=live, model=clip)
first, last = early_late(history.steps["loss"])
top1 = early_late(history.steps["top1"])
print(f"{history.epoch} epochs in {history.seconds:.0f} s; loss {first:.2f} -> {last:.2f}; the own caption is the most "
      f"similar in a batch of {batch_size}: {top1[0]:.1%} -> {top1[1]:.1%} of the pictures")
assert last < first

# %% [markdown]
# **Retrieval.** For each of 200 test pictures, the most similar of 200 full captions (each naming the digit and every
# attribute of one of those pictures). Two pictures can share a full caption, so a retrieval counts as right when the
# chosen caption describes the picture exactly; chance is the share of such captions in the pool.

# %%
pool_digits, pool_attributes = test.tensors[1][:200], test.tensors[2][:200]
full_captions = [caption(int(d), a, template=0) for d, a in zip(pool_digits, pool_attributes)]
key = torch.cat([pool_digits[:, None], pool_attributes], 1)  # what a full caption says
same = (key[:, None] == key[None]).all(2)  # (picture, caption): the caption describes the picture exactly
with evaluating(clip):
    similarity = clip.embed_images(test.tensors[0][:200]) @ clip.embed_text(tokenize(full_captions)).T
retrieval = same[torch.arange(200), similarity.argmax(1)].float().mean().item()
chance = same.float().mean().item()
print(f"retrieval: {retrieval:.1%} of the chosen captions describe their picture exactly (chance {chance:.1%})")
if PROFILE != "smoke":
    assert retrieval > 5 * chance
for i in range(3):
    print(f"picture {i}, truly {full_captions[i]!r}: nearest captions",
          [full_captions[j] for j in similarity[i].topk(3).indices.tolist()])

# %% [markdown]
# ## 5. Latent diffusion with cross-attention
#
# Stable Diffusion's generator is lesson 6's latent diffusion with a new way in for the text: **cross-attention**.
# At each position of a feature map the U-Net forms a query $Q$; each word of the caption, read by a text encoder,
# gives a key $K$ and a value $V$; the position takes the mix of values
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt d}\right) V,$$
#
# so every place in the picture reads the words it finds relevant. Here the latents are the VQ-VAE's encoder vectors
# before quantisation (4 x 14 x 14, scaled to unit spread), and the decoder snaps the sampled latents to their nearest
# codes: latent diffusion with a **VQ-regularised** autoencoder, one of the two kinds in the latent diffusion paper.
# One autoencoder then serves both routes, so their comparison is about the generators. The U-Net has its own small
# text encoder, trained with it; captions are dropped one time in ten so that the same network also learns the
# caption-free prediction for **classifier-free guidance** (lesson 5, with captions instead of labels). Like lesson
# 8's SR3 it predicts $v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\, z_0$.
#
# ### Exercise 3 — one cross-attention
# Write `my_cross_attention(q, k, v, pad)` for q (B, N, d), k and v (B, L, d) and a padding mask pad (B, L) (True =
# padding, gets no weight): return (B, N, d). The checker compares with the library's layer.

# %%
def my_cross_attention(q, k, v, pad):
    # YOUR CODE HERE
    return None


exercises.check("cross_attention", my_cross_attention)
# exercises.solution("cross_attention")  # uncomment to see a reference answer

# %%
R = recipes.T2I_UNET
epochs, batch_size = S.for_model("unet")
schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
latent_data, scale = encode_dataset(vqvae, TensorDataset(images, tokens))  # lesson 6's: latents at unit spread
torch.manual_seed(0)
unet = R.build(S).to(device)
ema = EMA(unet, decay=R.ema_decay)
latent_shape = tuple(latent_data.tensors[0].shape[1:])
print(f"text U-Net: {n_params(unet):,} parameters; latents {latent_shape} scaled by {scale:.2f}")
watch = ["a red seven", "a blue two", "a yellow 0", "a small white 5 on the left"] * 2
live = LivePlot(keys=["loss"], title="latent diffusion with text",
                images=lambda m: draw_from_text(ema.model, vqvae, schedule, scale, watch, w=3.0, steps=10))
history = train_or_load(R.name, lambda: fit(unet, make_loader(latent_data, batch_size),
                                            t2i_step(schedule, R.p_uncond), torch.optim.Adam(unet.parameters(), lr=R.lr),
                                            epochs, device=device, callbacks=[ema, live]),
                        show=live, ema=ema.model)  # as in lessons 4-9, the averaged weights are the ones bundled
first, last = early_late(history.steps["loss"])
print(f"{history.epoch} epochs in {history.seconds:.0f} s; loss {first:.3f} -> {last:.3f}")
assert last < first
model = ema.model

# %% [markdown]
# The same captions as the code prior's, drawn by latent diffusion with guidance w = 3.

# %%
start = time.perf_counter()
drawn = draw_from_text(model, vqvae, schedule, scale, [c for c in asked for _ in range(6)], w=3.0,
                       steps=S.ddim_steps[0])
per_image_diffusion = (time.perf_counter() - start) / len(drawn)
show_rows({c: drawn[6 * i:6 * i + 6] for i, c in enumerate(asked)})
plt.show()
print(f"{per_image_diffusion:.3f} s per image ({S.ddim_steps[0]} DDIM steps, each one pass over a doubled batch)")

# %% [markdown]
# **Which word looks where.** Each cross-attention layer keeps its weights: for every position of its 7 x 7 map, how
# much it took from each word. Below, for one caption, the weights on each word at the last sampling step (averaged
# over heads and over the 7 x 7 layers).

# %%
prompt = "a small red seven on the left"
layers = [layer for name, layer in model.attention_layers().items() if name.startswith("7x7")]
for layer in layers:
    layer.keep_attention = True
draw_from_text(model, vqvae, schedule, scale, [prompt], w=3.0, steps=S.ddim_steps[0])
maps = sum(layer.attention[:1] for layer in layers) / len(layers)  # (1 cond (+1 empty), 49, 16) -> first caption
for layer in layers:
    layer.keep_attention = False
said = words(prompt)
fig, axes = plt.subplots(1, len(said), figsize=(1.6 * len(said), 1.9))
for i, (ax, word) in enumerate(zip(axes, said)):
    ax.imshow(maps[0, :, i].view(7, 7), cmap="magma", vmin=0)
    ax.set_title(word)
    ax.set_axis_off()
plt.show()
print("share of the attention each word gets:", ", ".join(f"{w} {maps[0, :, i].mean():.2f}" for i, w in enumerate(said)))
assert torch.allclose(maps[0].sum(1), torch.ones(49), atol=1e-2)  # each position's weights sum to 1 (bfloat16)

# %% [markdown]
# ## 6. The prompt box
#
# Type a caption and press Enter; move the guidance and the seed. A word the models do not know is answered with the
# words they do know. (Each drawing runs the sampler: about a second on a CPU.)

# %%
PromptBox(lambda caption, w, seed: draw_from_text(model, vqvae, schedule, scale, [caption] * 8, w=w,
                                                  steps=S.ddim_steps[0], seed=seed),
          caption="a small green four at the bottom", w=3.0)

# %% [markdown]
# ## 7. Does the picture show what was asked?
#
# Captions naming a digit and an ink, cycling through the (digit, ink) pairs seen in training, and then through the
# held-out pairs; each sample read back. "all" is the share showing both. (The code prior draws a quarter as many:
# its 196 passes per picture are slow.) The CLIP score analogue is the cosine
# similarity between the sample and its caption in the miniature CLIP (its own test pictures, for scale, in the
# first row).

# %%
n = S.n_sampled
real = {"digit": test.tensors[1][:n], "ink": test.tensors[2][:n, 0]}
table = {"real test pictures": {**prompt_following(test.tensors[0][:n], real),
                                "CLIP score": clip.similarity(test.tensors[0][:n], test.tensors[3][:n]).mean().item()}}


def follow(name, draw, seconds_per_image, n):
    for kind, held_out in (("seen", False), ("held out", True)):
        captions, digits, inks = prompts_for(n if not held_out else max(n // 3, 8), held_out=held_out)
        samples = draw(captions)
        row = prompt_following(samples, {"digit": digits, "ink": inks})
        row["CLIP score"] = clip.similarity(samples, tokenize(captions)).mean().item()
        row["s / image"] = seconds_per_image
        table[f"{name}, {kind}"] = row


follow("code prior", lambda c: draw_from_codes(prior, vqvae, c, seed=1), per_image, n // 4)  # 196 passes: fewer
for w in (1.0, 3.0):
    follow(f"latent diffusion w={w:g}", lambda c: draw_from_text(model, vqvae, schedule, scale, c, w=w,
                                                                 steps=S.ddim_steps[0], seed=1), per_image_diffusion, n)
print(markdown_table(table))
best = table["latent diffusion w=3, seen"]
if PROFILE != "smoke":
    assert best["digit"] > 0.75 and best["ink"] > 0.9, best
    assert best["all"] > table["code prior, seen"]["all"], "guided latent diffusion should follow prompts best"
    assert best["all"] > table["latent diffusion w=1, seen"]["all"], "guidance should help"

# %% [markdown]
# What to read in the table: guidance trades variety for faithfulness, as in lesson 5; the held-out rows show how
# much each model composes what it saw apart, and the last column what each picture costs.
#
# Why is the code prior so far behind? It must get 196 codes right one after the other, and a code drawn wrong stays:
# no later pass repairs it. A colour is settled by the first few codes, a digit's shape by many. The prior here is
# small and trained for a few minutes; DALL·E 1's had orders of magnitude more parameters and pictures, and still
# reranked its samples with CLIP. Diffusion refines the whole picture at every step, which is one reason it took over.

# %%
ar, ldm = table["code prior, seen"], table["latent diffusion w=3, seen"]
print(f"code prior: ink right in {ar['ink']:.0%} of its pictures, digit in {ar['digit']:.0%} (chance 10%), "
      f"{ar['s / image']:.3f} s per picture; latent diffusion at w = 3: ink {ldm['ink']:.0%}, digit {ldm['digit']:.0%}, "
      f"{ldm['s / image']:.3f} s per picture; held out: digit {table['latent diffusion w=3, held out']['digit']:.0%}")

# %% [markdown]
# ## 8. Check yourself
#
# ### Exercise 4 — how much a code says
# A picture is a 14 x 14 grid of codes from a codebook of 256. How many bits does one picture's code grid hold? (The
# picture itself has 3 x 28 x 28 numbers.)

# %%
my_answer = None  # YOUR ANSWER HERE: a number of bits
exercises.check("code_bits", my_answer)
# exercises.solution("code_bits")  # uncomment to see a reference answer

# %% [markdown]
# ### Exercise 5 — perplexity
# A batch uses code 3 half of the time and codes 8 and 9 a quarter of the time each. What is the perplexity of its
# codes?

# %%
my_answer = None  # YOUR ANSWER HERE: a number
exercises.check("perplexity", my_answer)
# exercises.solution("perplexity")  # uncomment to see a reference answer

# %% [markdown]
# ### Exercise 6 — what caption dropout is for
# Why are one in ten captions replaced by the empty caption while the U-Net trains? Answer with a letter:
# (a) it regularises the text encoder, (b) the same network then also predicts without a caption, which classifier-free
# guidance needs, (c) it makes training faster, (d) it hides the held-out pairs.

# %%
my_answer = None  # YOUR ANSWER HERE: "a", "b", "c" or "d"
exercises.check("caption_dropout", my_answer)
# exercises.solution("caption_dropout")  # uncomment to see a reference answer

# %% [markdown]
# ### Exercise 7 — why one code at a time
# `sample_codes` draws a picture's 196 codes in 196 passes of the transformer, one after the other; the diffusion
# sampler draws the latents in a number of steps you choose. Why can the prior not take fewer passes?
# (a) Its transformer is too small to predict several codes at once. (b) Each code is drawn given the codes before
# it, so they must be drawn first: one pass per code. (c) It must read the caption's 16 words again for each code.
# (d) It could; the passes average out the sampling noise.

# %%
my_answer = None  # YOUR ANSWER HERE: "a", "b", "c" or "d"
exercises.check("prior_passes", my_answer)
# exercises.solution("prior_passes")  # uncomment to see a reference answer

# %% [markdown]
# ### Exercise 8 — what the held-out pairs test
# No training caption pairs a seven with green ink (`captions.HELD_OUT`), yet the table above asks for "a green
# seven" and reads the ink and digit of the results. What does a high score on these pairs show? (a) That the model
# memorised its training pictures well. (b) That it composes: "green" learned on other digits and "seven" in other
# inks, combined into a picture it never saw. (c) Nothing new: the test split has green sevens, so it has seen them.
# (d) That the CLIP score is high.

# %%
my_answer = None  # YOUR ANSWER HERE: "a", "b", "c" or "d"
exercises.check("held_out", my_answer)
# exercises.solution("held_out")  # uncomment to see a reference answer

# %% [markdown]
# ## What you have built
#
# Every part of a text-to-image system, small enough to open: captions and a tokenizer; a VQ-VAE whose codes turn
# pictures into sentences; a transformer that writes those sentences from a caption (DALL·E 1); a miniature CLIP that
# scores how well a picture fits a caption; and latent diffusion whose U-Net reads the caption through
# cross-attention and is steered by classifier-free guidance (Stable Diffusion). The real systems differ in scale, not
# in kind: billions of captioned photographs instead of colour digits, a text encoder trained on the web (CLIP's in
# Stable Diffusion, T5 in Imagen), and a cascade of super-resolution models (lesson 8) after the base model.
