"""VQ-VAE (van den Oord et al. 2017) and an autoregressive prior over its codes: DALL-E 1's recipe in miniature.

A VQ-VAE's encoder turns a colour digit (3, 28, 28) into a 14 x 14 grid of vectors z_e; each vector is replaced by
its nearest entry of a learned codebook (K vectors), and the decoder rebuilds the image from those entries z_q.
The picture is then 196 whole numbers (code indices), like the words of a sentence:

    loss = ||x - D(z_q)||^2  +  ||sg[z_e] - e||^2  +  beta ||z_e - sg[e]||^2
           reconstruction     codebook: e moves      commitment: the encoder
                              towards the encoder    stays near its codes

The nearest-neighbour choice has no gradient, so the decoder's gradient is copied straight through to the encoder
(`straight_through`). A transformer then learns p(code_i | caption, code_<i) over the 196 codes, and drawing codes one
by one and decoding them turns a caption into an image (`CodePrior`, `sample_codes`).

    >>> vq = VQVAE(num_codes=32, width=16)
    >>> out = vq(torch.rand(2, 3, 28, 28))
    >>> out.image.shape, out.codes.shape
    (torch.Size([2, 3, 28, 28]), torch.Size([2, 14, 14]))
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .captions import EMPTY, MAX_WORDS, VOCABULARY, WORD_ID, drop_captions, tokenize
from .data import check_batch
from .fastpath import fast_autocast
from .nets import device_of, evaluating
from .unet import group_norm


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z_q in the forward pass, with the gradient of z_e in the backward pass: z_e + sg[z_q - z_e].

    >>> z_e = torch.tensor([1.0], requires_grad=True)
    >>> out = straight_through(z_e, torch.tensor([3.0]))
    >>> out.backward(); out.item(), z_e.grad.item()
    (3.0, 1.0)
    """
    return z_e + (z_q - z_e).detach()


class Quantized(NamedTuple):
    z_q: torch.Tensor  # (B, D, 14, 14), straight-through
    codes: torch.Tensor  # (B, 14, 14) indices into the codebook
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor


class VectorQuantizer(nn.Module):
    """Replace each D-vector of a (B, D, H, W) map by its nearest of `num_codes` codebook vectors.

    `usage` keeps a running share of how often each code is picked while training; `restart_dead_codes` moves
    the codes nobody picks onto vectors the encoder actually makes (a common fix for dead codes)."""

    def __init__(self, num_codes: int = 128, code_dim: int = 16):
        super().__init__()
        self.codebook = nn.Embedding(num_codes, code_dim)
        nn.init.uniform_(self.codebook.weight, -1 / num_codes, 1 / num_codes)
        self.register_buffer("usage", torch.full((num_codes,), 1 / num_codes))

    @property
    def num_codes(self) -> int:
        return self.codebook.num_embeddings

    def nearest(self, z_e: torch.Tensor) -> torch.Tensor:
        """Code indices (B, H, W): argmin_k ||z_e - e_k||^2, expanded as ||z||^2 - 2 z.e_k + ||e_k||^2."""
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)  # (B H W, D)
        e = self.codebook.weight
        distance = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(1)  # (B H W, K)
        return distance.argmin(1).view(b, h, w)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook vectors for code indices: (B, H, W) -> (B, D, H, W)."""
        return self.codebook(codes).permute(0, 3, 1, 2)

    def forward(self, z_e: torch.Tensor) -> Quantized:
        codes = self.nearest(z_e)
        z_q = self.lookup(codes)
        if self.training:
            counts = torch.bincount(codes.flatten(), minlength=self.num_codes).float()
            self.usage.mul_(0.99).add_(0.01 * counts / counts.sum())
        return Quantized(straight_through(z_e, z_q), codes, F.mse_loss(z_q, z_e.detach()),
                         F.mse_loss(z_e, z_q.detach()))

    @torch.no_grad()
    def restart_dead_codes(self, z_e: torch.Tensor, below: float = 0.1) -> int:
        """Move codes used less than `below` / K of the time onto random encoder vectors of this batch; return how
        many moved."""
        dead = (self.usage < below / self.num_codes).nonzero().flatten()
        if len(dead):
            flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
            pick = torch.randint(len(flat), (len(dead),), device=flat.device)
            self.codebook.weight[dead] = flat[pick].to(self.codebook.weight.dtype)  # z_e may be bfloat16
            self.usage[dead] = 1 / self.num_codes
        return len(dead)


def perplexity(codes: torch.Tensor, num_codes: int) -> float:
    """exp(entropy) of how often each code is used: K when all K are used equally, 1 when one code does all.

    >>> perplexity(torch.tensor([0, 1, 2, 3]), 8)
    4.0
    """
    p = torch.bincount(codes.flatten(), minlength=num_codes).float()
    p = p / p.sum()
    return float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))


def dead_codes(codes: torch.Tensor, num_codes: int) -> int:
    """How many of the codebook's codes no image in `codes` uses."""
    return int((torch.bincount(codes.flatten(), minlength=num_codes) == 0).sum())


class VQOutput(NamedTuple):
    image: torch.Tensor
    codes: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    z_e: torch.Tensor


class VQVAE(nn.Module):
    """Colour digits (B, 3, 28, 28) -> z_e (B, code_dim, 14, 14) -> codes (B, 14, 14) -> z_q -> images in [0, 1]."""

    def __init__(self, num_codes: int = 256, code_dim: int = 4, width: int = 32, grid: int = 14):
        super().__init__()
        if grid not in (7, 14):
            raise ValueError(f"grid is the code grid's side, 14 (2 x 2 pixels per code) or 7 (4 x 4), not {grid}.")
        c = width
        self.code_dim, self.grid = code_dim, grid
        halve = [nn.Conv2d(c, 2 * c, 4, stride=2, padding=1)] if grid == 7 else [nn.Conv2d(c, 2 * c, 3, padding=1)]
        double = [nn.ConvTranspose2d(2 * c, 2 * c, 4, stride=2, padding=1)] if grid == 7 else []
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c, 4, stride=2, padding=1), nn.SiLU(),  # (B, c, 14, 14)
            *halve, group_norm(2 * c), nn.SiLU(),  # (B, 2c, grid, grid)
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.SiLU(),
            nn.Conv2d(2 * c, code_dim, 1),  # (B, D, grid, grid)
        )
        self.quantizer = VectorQuantizer(num_codes, code_dim)
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, 2 * c, 3, padding=1), group_norm(2 * c), nn.SiLU(),  # (B, 2c, grid, grid)
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.SiLU(), *double,  # (B, 2c, 14, 14)
            nn.Conv2d(2 * c, c, 3, padding=1), group_norm(c), nn.SiLU(),
            nn.ConvTranspose2d(c, 3, 4, stride=2, padding=1), nn.Sigmoid(),  # (B, 3, 28, 28)
        )

    @property
    def num_codes(self) -> int:
        return self.quantizer.num_codes

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z_e: the encoder's vectors before quantising, (B, code_dim, 14, 14)."""
        if check_batch(x, "colour images").shape[1:] != (3, 28, 28):
            raise ValueError(f"The VQ-VAE takes colour digits shaped (B, 3, 28, 28), got {tuple(x.shape)}.")
        return self.encoder(x.to(device_of(self)))

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Images from code indices (B, 14, 14)."""
        return self.decoder(self.quantizer.lookup(codes.to(device_of(self))))

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Images from continuous latents (B, code_dim, 14, 14): each vector is snapped to its nearest code first (as
        latent diffusion does with a VQ-regularised autoencoder)."""
        return self.decode_codes(self.quantizer.nearest(z.to(device_of(self))))

    def forward(self, x: torch.Tensor) -> VQOutput:
        z_e = self.encode(x)
        with torch.autocast(z_e.device.type, enabled=False):  # under autocast too, the nearest code in float32
            z_q, codes, codebook_loss, commitment_loss = self.quantizer(z_e.float())
        return VQOutput(self.decoder(z_q), codes, codebook_loss, commitment_loss, z_e)


def vq_step(beta: float = 0.25, restart_every: int = 100, fast: bool = True):
    """A step function for `fit` on batches whose first tensor is colour images: the VQ-VAE loss (module docstring),
    with dead codes restarted every `restart_every` steps. `fast`: the encoder and decoder in the device's fast
    autocast (bfloat16 on CPUs that have it: 15-19 steps/s against 10-11 in float32 at batch 64 on this course's
    2-core machine); the quantizer stays in float32."""
    count = [0]

    def step(model: VQVAE, batch):
        with fast_autocast(device_of(model), enabled=fast):
            out = model(batch[0])
        recon = F.mse_loss(out.image.float(), batch[0])  # in float32: a bfloat16 image against float32 fails on CUDA
        count[0] += 1
        if restart_every and count[0] % restart_every == 0:
            model.quantizer.restart_dead_codes(out.z_e.detach())
        loss = recon + out.codebook_loss + beta * out.commitment_loss
        return {"loss": loss, "recon": recon, "commitment": out.commitment_loss,
                "perplexity": torch.tensor(perplexity(out.codes, model.num_codes))}

    return step


@torch.no_grad()
def encode_codes(vqvae: VQVAE, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The code grid (N, 14, 14) of every image, in eval mode."""
    with evaluating(vqvae):
        return torch.cat([vqvae(x).codes.cpu() for x in images.split(batch_size)])


class CodePrior(nn.Module):
    """p(codes | caption) as a small GPT: the caption's words, then a start token, then the 196 codes in reading
    order; each position sees only those before it (a causal mask), and predicts the next code.

        sequence:  w_1 .. w_16  <start>  c_1  c_2 ...  c_48
        predicts:                 c_1    c_2  c_3 ...  c_196
    """

    def __init__(self, num_codes: int = 256, grid: int = 14, dim: int = 128, layers: int = 4, heads: int = 4):
        super().__init__()
        self.num_codes, self.grid, self.length = num_codes, grid, MAX_WORDS + grid * grid
        self.words = nn.Embedding(len(VOCABULARY), dim)
        self.codes = nn.Embedding(num_codes + 1, dim)  # index num_codes is the start token
        self.position = nn.Parameter(torch.zeros(1, self.length, dim))
        block = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_codes)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, tokens: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Logits (B, n, K) for codes 1..n given the caption `tokens` (B, 16) and the first n codes (B, n) (a
        flattened grid; n = 196 in training: each position predicts its own code from the ones before)."""
        device = device_of(self)
        tokens, codes = tokens.to(device), codes.to(device).flatten(1)
        start = torch.full((len(codes), 1), self.num_codes, dtype=torch.long, device=device)
        h = torch.cat([self.words(tokens), self.codes(torch.cat([start, codes[:, :-1]], 1))], 1)  # (B, 16 + n, dim)
        h = h + self.position[:, :h.shape[1]]
        mask = nn.Transformer.generate_square_subsequent_mask(h.shape[1], device=device)
        h = self.blocks(h, mask=mask, is_causal=True)
        return self.head(self.norm(h[:, MAX_WORDS:]))  # (B, n, K)


def on_gpu_only(fast: bool | None, device: torch.device) -> bool:
    """The prior's `fast` setting: None means autocast on a GPU only. On a CPU with bfloat16 this small transformer
    (width 64, batch 64) trained slower with it than in float32: 3.6-4.2 steps/s against 4.7-5.3."""
    return device.type == "cuda" if fast is None else fast


def prior_step(p_uncond: float = 0.1, generator: torch.Generator | None = None, fast: bool | None = None):
    """A step function for `fit` on (tokens, codes) batches: cross-entropy of each code given the caption and the
    codes before it; captions are dropped with probability `p_uncond` (for guidance when sampling). `fast`: the
    device's fast autocast (None: on a GPU only, see `on_gpu_only`)."""

    def step(model: CodePrior, batch):
        tokens, codes = batch[0], batch[1].flatten(1)
        with fast_autocast(codes.device, enabled=on_gpu_only(fast, codes.device)):
            logits = model(drop_captions(tokens, p_uncond, generator), codes).float()
        return {"loss": F.cross_entropy(logits.reshape(-1, model.num_codes), codes.reshape(-1).to(logits.device))}

    return step


@torch.no_grad()
def sample_codes(prior: CodePrior, tokens: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                 guidance: float = 1.0, generator: torch.Generator | None = None,
                 fast: bool | None = None) -> torch.Tensor:
    """Draw code grids (B, 14, 14) one code at a time for captions `tokens` (B, 16): 196 passes of the transformer.
    `guidance` > 1 pushes the logits away from the caption-free ones (classifier-free guidance on logits)."""
    device = device_of(prior)
    tokens = tokens.to(device)
    empty = torch.zeros_like(tokens)
    empty[:, 0] = WORD_ID[EMPTY]
    codes = torch.zeros(len(tokens), 0, dtype=torch.long, device=device)
    with evaluating(prior):
        for _ in range(prior.grid ** 2):
            # one placeholder code at the end: position n predicts code n from the codes before it
            grow = torch.cat([codes, torch.zeros(len(codes), 1, dtype=torch.long, device=device)], 1)
            with fast_autocast(device, enabled=on_gpu_only(fast, device)):
                if guidance == 1.0:
                    logits = prior(tokens, grow)[:, -1].float()
                else:
                    cond, uncond = prior(torch.cat([tokens, empty]), torch.cat([grow, grow]))[:, -1].float().chunk(2)
                    logits = uncond + guidance * (cond - uncond)
            logits = logits / max(temperature, 1e-6)
            if top_k:
                logits = logits.masked_fill(logits < logits.topk(top_k, 1).values[:, -1:], -float("inf"))
            probs = logits.softmax(1).cpu()
            codes = torch.cat([codes, torch.multinomial(probs, 1, generator=generator).to(device)], 1)
    return codes.view(-1, prior.grid, prior.grid)


@torch.no_grad()
def draw_from_codes(prior: CodePrior, vqvae: VQVAE, captions: list[str], guidance: float = 1.0,
                    temperature: float = 1.0, top_k: int | None = None, seed: int = 0) -> torch.Tensor:
    """Images (N, 3, 28, 28) for `captions`: codes drawn one by one by the prior (`sample_codes`), then decoded.

        images = draw_from_codes(prior, vqvae, ["a red seven"] * 8)
    """
    codes = sample_codes(prior, tokenize(captions), temperature, top_k, guidance, torch.Generator().manual_seed(seed))
    with evaluating(vqvae):
        return vqvae.decode_codes(codes).cpu()
