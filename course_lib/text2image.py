"""Text-to-image in miniature (lesson 10): a text encoder, a miniature CLIP, and latent diffusion with cross-attention.

- `TextEncoder`: word ids (B, 16) -> one vector per word (B, 16, dim), a small transformer (no causal mask: each
  word sees the whole caption), and a pooled vector for the caption.
- `MiniCLIP` (Radford et al. 2021): an image encoder and a text encoder trained so that a picture and its own
  caption get the most similar unit vectors in a batch (`clip_loss`, InfoNCE in both directions).
- `CrossAttention`: the image asks, the words answer. Each pixel of a feature map makes a query, each word a key and
  a value: out = softmax(Q K^T / sqrt(d)) V, so every pixel mixes the words it finds relevant (Stable Diffusion's
  way in for the prompt). The weights are kept, to show which word looks where.
- `TextUNet`: a U-Net on the VQ-VAE's 4 x 14 x 14 latents with cross-attention at 7 x 7 and 4 x 4; trained with lesson 5's
  classifier-free guidance, captions dropped instead of labels, predicting v as lesson 8's SR3 does (`t2i_step`,
  `TextGuidedModel`).

    >>> unet = TextUNet(channels=(8, 16, 16), text_dim=16)
    >>> from course_lib.captions import tokenize
    >>> unet(torch.randn(2, 4, 14, 14), torch.tensor([5, 900]), tokenize(["a red 7", ""])).shape
    torch.Size([2, 4, 14, 14])
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .captions import EMPTY, MAX_WORDS, VOCABULARY, WORD_ID, drop_captions, tokenize
from .diffusion import DiffusionSchedule, ddim_sample, q_sample
from .fastpath import fast_autocast
from .nets import device_of, evaluating
from .superres import eps_from_v, v_target
from .unet import ResBlock, Upsample, downsample, group_norm, sinusoidal_embedding


class TextEncoder(nn.Module):
    """Word ids (B, L) -> (word vectors (B, L, dim), caption vector (B, dim): the mean over the real words)."""

    def __init__(self, dim: int = 64, layers: int = 2, heads: int = 4):
        super().__init__()
        self.dim = dim
        self.words = nn.Embedding(len(VOCABULARY), dim)
        self.position = nn.Parameter(torch.randn(1, MAX_WORDS, dim) * 0.02)
        block = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = tokens.to(device_of(self))
        pad = tokens == 0  # (B, L): padding is no word
        h = self.norm(self.blocks(self.words(tokens) + self.position[:, :tokens.shape[1]], src_key_padding_mask=pad))
        keep = (~pad).float()[..., None]
        return h, (h * keep).sum(1) / keep.sum(1).clamp(min=1)


class ImageEncoder(nn.Module):
    """Colour digits (B, 3, 28, 28) -> one vector (B, dim)."""

    def __init__(self, dim: int = 64, width: int = 32):
        super().__init__()
        c = width
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.SiLU(), nn.Conv2d(c, c, 3, stride=2, padding=1), nn.SiLU(),  # 14 x 14
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.SiLU(), nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1), nn.SiLU(),
            nn.Flatten(), nn.Linear(2 * c * 7 * 7, dim),  # the layout is kept: "on the left" is where the ink is
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.to(device_of(self)))


class MiniCLIP(nn.Module):
    """Images and captions in one space of unit vectors; `similarity` is the cosine between them.

        clip = MiniCLIP()
        logits = clip.logit_scale.exp() * clip.embed_images(x) @ clip.embed_text(tokens).T   # (B, B)
    """

    def __init__(self, dim: int = 64):
        super().__init__()
        self.image_encoder, self.text_encoder = ImageEncoder(dim), TextEncoder(dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's starting temperature, 0.07

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_encoder(images), dim=1)

    def embed_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_encoder(tokens)[1], dim=1)

    @torch.no_grad()
    def similarity(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each image with its own caption (B,): the CLIP score's analogue."""
        return (self.embed_images(images) * self.embed_text(tokens)).sum(1)


def clip_loss(image_vectors: torch.Tensor, text_vectors: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """InfoNCE both ways: logits = s * I T^T (B x B); image i's caption is column i, caption i's image is row i.

        loss = (cross_entropy(logits, arange(B)) + cross_entropy(logits^T, arange(B))) / 2

    >>> v = torch.eye(4)
    >>> round(clip_loss(v, v, torch.tensor(math.log(100.0))).item(), 4)  # each pair far more alike than the rest
    0.0
    """
    logits = logit_scale.exp().clamp(max=100) * image_vectors @ text_vectors.T
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def clip_step(loss_fn=clip_loss):
    """A step function for `fit` on batches (images, labels, attributes, tokens): `loss_fn` (`clip_loss`, or a
    student's own with its arguments), and the share of images in the batch whose most similar caption is their own."""

    def step(model: MiniCLIP, batch):
        images, tokens = batch[0], batch[3]
        i, t = model.embed_images(images), model.embed_text(tokens)
        loss = loss_fn(i, t, model.logit_scale)
        return {"loss": loss, "top1": ((i @ t.T).argmax(1) == torch.arange(len(i), device=i.device)).float().mean()}

    return step


class CrossAttention(nn.Module):
    """Pixels attend to words: h (B, C, H, W), words (B, L, D) -> h + W_o softmax(Q K^T / sqrt(d)) V.

    Q = W_q GroupNorm(h) (one query per pixel), K = W_k words, V = W_v words; padding words get no weight. With
    `keep_attention = True` the weights averaged over heads are kept in `attention` (B, H*W, L)."""

    def __init__(self, channels: int, text_dim: int, heads: int = 4):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} must split evenly into heads={heads}.")
        self.heads = heads
        self.norm = group_norm(channels)
        self.q = nn.Linear(channels, channels, bias=False)
        self.k = nn.Linear(text_dim, channels, bias=False)
        self.v = nn.Linear(text_dim, channels, bias=False)
        self.out = nn.Linear(channels, channels)
        self.keep_attention, self.attention = False, None

    def forward(self, h: torch.Tensor, words: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        b, c, height, width = h.shape
        d = c // self.heads
        q = self.q(self.norm(h).flatten(2).transpose(1, 2))  # (B, HW, C)
        k, v = self.k(words), self.v(words)  # (B, L, C)
        q, k, v = (x.view(b, -1, self.heads, d).transpose(1, 2) for x in (q, k, v))  # (B, heads, n, d)
        scores = q @ k.transpose(2, 3) / math.sqrt(d)  # (B, heads, HW, L)
        weights = scores.masked_fill(pad[:, None, None, :], -float("inf")).softmax(-1)
        if self.keep_attention:
            self.attention = weights.mean(1).detach().float().cpu()
        mixed = (weights @ v).transpose(1, 2).reshape(b, height * width, c)  # (B, HW, C)
        return h + self.out(mixed).transpose(1, 2).view(b, c, height, width)


class TextUNet(nn.Module):
    """v_theta(z_t, t, caption) on latents (B, latent_channels, 14, 14): ResBlocks that see the time and the
    caption's pooled vector, cross-attention to the caption's words at 7 x 7 and 4 x 4 (where each position sees
    most of the digit). Its own `TextEncoder` is trained with it (as latent diffusion's text-to-image model trains
    its transformer).

        14 x 14  stem -> Res c0 ---------------------- skip ----------------------> cat -> Res c0 -> conv = v
                          | stride 2                                                  ^ upsample
         7 x 7         Res+Attn c1 ----------- skip ------------> cat -> Res+Attn c1 -'
                          | stride 2                               ^ upsample
         4 x 4         Res+Attn c2 -> Res+Attn c2 (middle) --------'
    """

    def __init__(self, latent_channels: int = 4, channels: tuple[int, int, int] = (32, 64, 96), text_dim: int = 64,
                 time_dim: int = 128, latent_size: int = 14):
        super().__init__()
        c0, c1, c2 = channels
        self.latent_shape, self.time_dim = (latent_channels, latent_size, latent_size), time_dim
        self.text = TextEncoder(text_dim)
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.caption_proj = nn.Linear(text_dim, time_dim)
        self.stem = nn.Conv2d(latent_channels, c0, 3, padding=1)
        self.down0 = ResBlock(c0, c0, time_dim)
        self.pool0 = downsample(c0)  # 14 -> 7
        self.down1, self.attn1 = ResBlock(c0, c1, time_dim), CrossAttention(c1, text_dim)
        self.pool1 = downsample(c1)  # 7 -> 4
        self.down2, self.attn2 = ResBlock(c1, c2, time_dim), CrossAttention(c2, text_dim)
        self.mid, self.attn_mid = ResBlock(c2, c2, time_dim), CrossAttention(c2, text_dim)
        self.unpool1 = Upsample(c2, c1)  # 4 -> 7
        self.up1, self.attn_up = ResBlock(2 * c1, c1, time_dim), CrossAttention(c1, text_dim)
        self.unpool0 = Upsample(c1, c0)  # 7 -> 14
        self.up0 = ResBlock(2 * c0, c0, time_dim)
        self.out = nn.Sequential(group_norm(c0), nn.SiLU(), nn.Conv2d(c0, latent_channels, 3, padding=1))

    def attention_layers(self) -> dict[str, CrossAttention]:
        """The cross-attention layers by where they work (their maps are 7 x 7 or 4 x 4)."""
        return {"7x7 down": self.attn1, "4x4 down": self.attn2, "4x4 middle": self.attn_mid, "7x7 up": self.attn_up}

    def forward(self, z: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        device = device_of(self)
        z, tokens = z.to(device), tokens.to(device)
        if tuple(z.shape[1:]) != self.latent_shape or tokens.shape != (len(z), MAX_WORDS):
            c, h, w = self.latent_shape
            raise ValueError(f"TextUNet takes latents (B, {c}, {h}, {w}) and one caption (B, {MAX_WORDS}) per latent; "
                             f"got {tuple(z.shape)} and {tuple(tokens.shape)}. Tokenize with captions.tokenize.")
        t = torch.as_tensor(t, device=device).expand(len(z))
        words, pooled = self.text(tokens)
        pad = tokens == 0
        emb = self.time_mlp(sinusoidal_embedding(t, self.time_dim)) + self.caption_proj(pooled)
        h0 = self.down0(self.stem(z), emb)  # (B, c0, 14, 14)
        h1 = self.attn1(self.down1(self.pool0(h0), emb), words, pad)  # (B, c1, 7, 7)
        h2 = self.attn2(self.down2(self.pool1(h1), emb), words, pad)  # (B, c2, 4, 4)
        h = self.attn_mid(self.mid(h2, emb), words, pad)
        h = self.attn_up(self.up1(torch.cat([self.unpool1(h, h1.shape[-2:]), h1], 1), emb), words, pad)  # (B, c1, 7, 7)
        h = self.up0(torch.cat([self.unpool0(h, h0.shape[-2:]), h0], 1), emb)  # (B, c0, 14, 14)
        return self.out(h)


def t2i_step(schedule: DiffusionSchedule, p_uncond: float = 0.1, generator: torch.Generator | None = None,
             fast: bool = True):
    """A step function for `fit` on (latents, tokens) batches: each caption replaced by the empty one with
    probability `p_uncond` (lesson 5's label dropout, for captions), and the network trained to predict v (as lesson
    8's SR3: on these latents a noise-predicting network's x0 estimate went wrong at high noise), with the plain loss

        L = E_{t, eps} || v - v_theta(sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps, t, caption) ||^2
    """

    def step(model: TextUNet, batch):
        z0, tokens = batch[0], drop_captions(batch[1], p_uncond, generator)
        t = torch.randint(0, schedule.T, (len(z0),), generator=generator).to(z0.device)
        eps = torch.randn(z0.shape, generator=generator).to(z0.device)
        with fast_autocast(z0.device, enabled=fast):
            v = model(q_sample(schedule, z0, t, eps), t, tokens).float()
        return F.mse_loss(v, v_target(schedule, z0, t, eps))

    return step


class TextGuidedModel(nn.Module):
    """eps_model(z, t) for the samplers: `TextUNet` guided towards captions `tokens` with scale `w`:
    v = v(z, t, empty) + w (v(z, t, caption) - v(z, t, empty)), both halves in one doubled batch, returned as the
    noise it implies (`eps_from_v`).

        z, _ = ddim_sample(TextGuidedModel(unet, schedule, tokenize(prompts), w=3.0), schedule, n=len(prompts),
                           shape=unet.latent_shape, image_range=False, clip=None)
    """

    def __init__(self, model: TextUNet, schedule: DiffusionSchedule, tokens: torch.Tensor, w: float,
                 fast: bool = True):
        super().__init__()
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise ValueError(f"The guidance scale w is a number >= 0 (1: plain conditional, 3-5: stronger); got {w!r}.")
        self.model, self.schedule, self.tokens, self.w, self.fast = model, schedule, tokens, float(w), fast

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if len(z) != len(self.tokens):
            raise ValueError(f"TextGuidedModel holds {len(self.tokens)} captions but got {len(z)} latents: sample "
                             f"n={len(self.tokens)}, one per caption.")
        tokens = self.tokens.to(z.device)
        empty = torch.zeros_like(tokens)
        empty[:, 0] = WORD_ID[EMPTY]
        with fast_autocast(z.device, enabled=self.fast):
            if self.w == 1:
                v = self.model(z, t, tokens).float()
            else:
                v_c, v_u = self.model(torch.cat([z, z]), torch.cat([t, t]), torch.cat([tokens, empty])).float().chunk(2)
                v = v_u + self.w * (v_c - v_u)  # guidance is linear, so guiding v guides eps alike
        return eps_from_v(self.schedule, z, t, v)  # the samplers take eps


@torch.no_grad()
def draw_from_text(unet: TextUNet, vqvae, schedule: DiffusionSchedule, scale: float, captions: list[str],
                   w: float = 3.0, steps: int = 30, seed: int = 0) -> torch.Tensor:
    """Images (N, 3, 28, 28) for `captions`: guided DDIM on the latents from seeded noise, then the VQ-VAE's decoder.

        images = draw_from_text(ema.model, vqvae, schedule, scale, ["a red seven"] * 8, w=3.0)
    """
    tokens = tokenize(captions)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(tokens), *unet.latent_shape, generator=generator)
    z, _ = ddim_sample(TextGuidedModel(unet, schedule, tokens, w), schedule, noise=noise, steps=steps,
                       image_range=False, clip=None, shape=unet.latent_shape)
    with evaluating(vqvae):
        return vqvae.decode_latents(z / scale).cpu()
