"""Lesson 10 exercises: the vector-quantisation step, the CLIP loss, the core of cross-attention, what a code grid
holds, the perplexity of a code usage, what caption dropout is for, why the code prior draws one code at a time, and
what the held-out (digit, ink) pairs test.

The graders take their expected values from the library: a `VectorQuantizer` holding the student's codebook (its
`nearest` codes and its straight-through z_q, whose gradient must reach z_e), `clip_loss` at two temperatures, a
one-head `CrossAttention` layer whose output is compared after the student's attention is put in its place, and
`perplexity` of the usage in the question. Each typical slip gives numbers of its own, so the grader can name it.

    >>> z_q, codes = vector_quantize_solution(torch.tensor([0.9, 0.2, 0.0]).view(1, 3, 1, 1), torch.eye(3))
    >>> codes.flatten().tolist(), z_q.flatten().tolist()
    ([0], [1.0, 0.0, 0.0])
"""

import inspect
import math

import torch
import torch.nn.functional as F

from ..captions import MAX_WORDS, tokenize
from ..text2image import CrossAttention, clip_loss
from ..vqvae import VQVAE, VectorQuantizer, perplexity
from ._base import Exercise, choice, number, register, whole_number


def _close(got, want, atol=1e-5):
    return got.shape == want.shape and torch.allclose(got, want, atol=atol)


# ---------------------------------------------------------------- vector quantisation


def vector_quantize_solution(z_e, codebook):
    # each D-vector of z_e (B, D, H, W) becomes its nearest codebook row e_k (codebook: K, D): argmin_k ||z - e_k||^2
    B, D, H, W = z_e.shape
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, D)  # (B H W, D): one vector per position, channels last
    distance = (flat[:, None, :] - codebook[None]).pow(2).sum(-1)  # (B H W, K)
    codes = distance.argmin(dim=1).view(B, H, W)  # the nearest entry: argmin over the K codes
    z_q = codebook[codes].permute(0, 3, 1, 2)  # (B, H, W, D) -> (B, D, H, W)
    return z_e + (z_q - z_e).detach(), codes  # straight-through: z_q forwards, the gradient copied to z_e backwards


def _vq_case():
    """z_e (2, 4, 3, 5) (H != W, so a swapped axis shows) and a codebook of 10 codes of very different lengths (so
    the largest dot product is not the nearest code)."""
    gen = torch.Generator().manual_seed(101)
    codebook = torch.randn(10, 4, generator=gen) * torch.linspace(0.3, 2.5, 10)[:, None]
    return torch.randn(2, 4, 3, 5, generator=gen), codebook


def _library_vq(z_e, codebook):
    """(z_q, codes) from the library's VectorQuantizer holding `codebook`."""
    with torch.random.fork_rng(devices=[]):  # building it draws its own codebook: leave the student's generator alone
        vq = VectorQuantizer(*codebook.shape).eval()
    with torch.no_grad():
        vq.codebook.weight.copy_(codebook)
    z_q, codes, _, _ = vq(z_e)
    return z_q.detach(), codes


def _grade_vector_quantize(fn):
    z, codebook = _vq_case()
    z_e = z.clone().requires_grad_(True)
    try:
        got = fn(z_e, codebook.clone())
    except IndexError as err:
        if f"with size {len(codebook)}" not in str(err):
            raise
        return False, (f"your function indexed past the codebook's {len(codebook)} rows ({err}): take the argmin over "
                       f"the K codes, dim=1 of the distance (B H W, K), not over the positions.")
    except RuntimeError as err:
        if "must match the size" not in str(err):
            raise
        return False, (f"shapes do not match ({err}). z_e is (B, D, H, W), channels second, and codebook[codes] is "
                       f"(B, H, W, D): permute it with .permute(0, 3, 1, 2) before mixing it with z_e.")
    if got is None:
        return False, "your function returned None; return the pair (z_q, codes)."
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return False, "return the pair (z_q, codes): the quantised vectors (B, D, H, W), then the indices (B, H, W)."
    z_q, codes = got
    if isinstance(codes, torch.Tensor) and codes.dim() == 4 and isinstance(z_q, torch.Tensor) and z_q.dim() == 3:
        return False, "the other way round: return (z_q, codes), as the library's VectorQuantizer does."
    want_q, want_codes = _library_vq(z, codebook)
    B, D, H, W = z.shape
    codes = torch.as_tensor(codes).detach()
    flat = z.permute(0, 2, 3, 1).reshape(-1, D)
    distance = torch.cdist(flat, codebook)
    if codes.numel() == B * H * W and codes.shape != want_codes.shape:
        if torch.equal(codes.flatten().long(), want_codes.flatten()):
            return False, f"the right codes, but give them the grid's shape (B, H, W) = {(B, H, W)}: .view(B, H, W)."
        return False, f"codes is shaped (B, H, W) = {(B, H, W)}, got {tuple(codes.shape)}."
    if codes.shape != want_codes.shape:
        return False, (f"codes is shaped (B, H, W) = {(B, H, W)}, one code per position, got {tuple(codes.shape)}: "
                       f"flatten z_e to (B H W, D), compare with the K codes, and take the argmin over the codes.")
    if not torch.equal(codes.long(), want_codes):
        if torch.equal(codes.long(), distance.argmax(1).view(B, H, W)):
            return False, "that is the farthest code: take the argmin of the distance, not the argmax."
        if torch.equal(codes.long(), (flat @ codebook.T).argmax(1).view(B, H, W)):
            return False, ("the largest dot product z . e_k is the nearest code only when all codes have the same "
                           "length; here they do not. Take the argmin of the squared distance ||z - e_k||^2.")
        if torch.equal(codes.long(), torch.cdist(z.reshape(-1, D), codebook).argmin(1).view(B, H, W)):
            return False, ("z_e.reshape(-1, D) mixes the axes: z_e is (B, D, H, W), channels second. Move them last "
                           "first, z_e.permute(0, 2, 3, 1).reshape(-1, D), so each row is one position's vector.")
        return False, ("not the library's nearest codes: distance (B H W, K) between the flattened vectors "
                       "z_e.permute(0, 2, 3, 1).reshape(-1, D) and the codebook rows, then argmin over the K codes.")
    if not isinstance(z_q, torch.Tensor) or z_q.shape != want_q.shape:
        shape = tuple(z_q.shape) if isinstance(z_q, torch.Tensor) else type(z_q).__name__
        hint = " (codebook[codes] is (B, H, W, D): permute(0, 3, 1, 2))" if shape == (B, H, W, D) else ""
        return False, f"the codes are right; z_q is shaped like z_e {(B, D, H, W)}, got {shape}{hint}."
    if not _close(z_q.detach().float(), want_q):
        if _close(z_q.detach().float(), z):
            return False, "z_q is z_e itself; in the forward pass it is the codebook entries codebook[codes]."
        return False, "the codes are right, but z_q is not their codebook entries codebook[codes], in (B, D, H, W)."
    if not z_q.requires_grad:
        return False, ("the values are right, but no gradient reaches the encoder: the nearest code has none. Copy it "
                       "straight through: return z_e + (z_q - z_e).detach(), which is z_q forwards and z_e backwards.")
    w = torch.randn(z.shape, generator=torch.Generator().manual_seed(102))
    (z_q * w).sum().backward()
    if z_e.grad is None or not z_e.grad.abs().gt(0).any():
        return False, ("the gradient that reaches z_e is zero: in z_e + (z_q - z_e) the two z_e cancel. Detach the "
                       "difference: z_e + (z_q - z_e).detach().")
    if not _close(z_e.grad, w):
        return False, "the decoder's gradient should reach z_e unchanged: z_e + (z_q - z_e).detach()."
    return True, ("the library's codes and z_q, and the decoder's gradient reaches the encoder unchanged. The "
                  "codebook gets no gradient this way: the codebook loss ||sg[z_e] - e||^2 moves it.")


# ---------------------------------------------------------------- CLIP's loss


def clip_loss_solution(image_vectors, text_vectors, logit_scale):
    # logits[i, j] = s cos(image i, caption j) with s = exp(logit_scale) = 1 / temperature (the library caps s at 100)
    logits = logit_scale.exp() * image_vectors @ text_vectors.T  # (B, B): unit vectors, so dot products are cosines
    target = torch.arange(len(logits))  # image i's caption is column i, caption i's image is row i
    # InfoNCE both ways: each image picks its caption among the batch's, and each caption its image
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def _clip_case(batch, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    images = F.normalize(torch.randn(batch, 8, generator=gen), dim=1)
    texts = F.normalize(images + 0.8 * torch.randn(batch, 8, generator=gen), dim=1)  # each near its own image
    return images.requires_grad_(), texts.requires_grad_(), torch.tensor(math.log(scale), requires_grad=True)


def _clip_variant(images, texts, s, direction="both", reduce=None):
    logits = s * images @ texts.T
    target = torch.arange(len(logits))
    ways = {"image": [logits], "text": [logits.T], "both": [logits, logits.T]}[direction]
    return sum(F.cross_entropy(x, target) for x in ways) / (reduce or len(ways))  # one direction: its own mean


def _grade_clip_loss(fn):
    for batch, scale, seed in ((6, 1 / 0.07, 103), (4, 30.0, 104)):
        images, texts, logit_scale = _clip_case(batch, scale, seed)
        got = fn(images, texts, logit_scale)
        if got is None:
            return False, "your function returned None; return the loss, one number."
        got = torch.as_tensor(got)
        if got.numel() != 1:
            return False, f"return one number for the batch, got shape {tuple(got.shape)}."
        want = clip_loss(images, texts, logit_scale).detach()
        if torch.isclose(got.detach().float(), want, rtol=1e-4):
            if not got.requires_grad:
                return False, ("the value is right but it carries no gradient: return the loss tensor itself (no "
                               ".item(), no .detach()), so that it can train both encoders.")
            got.backward()
            if logit_scale.grad is None:
                return False, ("the value is right, but the temperature gets no gradient: CLIP learns it. Use the "
                               "logit_scale you are given, logit_scale.exp() (a tensor), not a fixed 1 / 0.07 or "
                               "math.exp(logit_scale).")
            continue
        with torch.no_grad():
            variants = [
                (_clip_variant(images, texts, scale, "image"), "only one direction, images to captions: add the "
                 "captions to images, cross_entropy(logits.T, target), and average the two."),
                (_clip_variant(images, texts, scale, "text"), "only one direction, captions to images: add the "
                 "images to captions, cross_entropy(logits, target), and average the two."),
                (_clip_variant(images, texts, scale, reduce=1), "the sum of the two directions; CLIP averages them: "
                 "divide by 2."),
                (_clip_variant(images, texts, 1.0), "the temperature is missing: cosines lie in [-1, 1], too close for "
                 "a softmax to pick one. Multiply the logits by logit_scale.exp()."),
                (_clip_variant(images, texts, math.log(scale)), "logit_scale is the log of the scale (so that it "
                 "stays positive while learned): multiply by logit_scale.exp()."),
                (_clip_variant(images, texts, 1 / scale), "logit_scale.exp() is 1 / temperature: multiply the "
                 "logits by it, do not divide."),
            ]
        for variant, hint in variants:
            if torch.isclose(got.detach().float(), variant, rtol=1e-4):
                return False, hint
        return False, ("logits = logit_scale.exp() * image_vectors @ text_vectors.T; target = torch.arange(B); loss "
                       "= (cross_entropy(logits, target) + cross_entropy(logits.T, target)) / 2.")
    return True, ("the library's clip_loss at two temperatures: B - 1 wrong captions for each image, B - 1 wrong "
                  "images for each caption, in one matrix.")


# ---------------------------------------------------------------- cross-attention


def cross_attention_solution(q, k, v, pad):
    # softmax(Q K^T / sqrt(d)) V: the pixels' queries q (B, N, d) against the words' keys k and values v (B, L, d)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, N, L): how well each word answers each pixel
    scores = scores.masked_fill(pad[:, None, :], -float("inf"))  # padding (True in pad, (B, L)) gets weight 0
    weights = scores.softmax(dim=-1)  # over the words: each pixel's weights sum to 1
    return weights @ v  # (B, N, d): each pixel's mix of the words' values


def _attention_case():
    """A one-head CrossAttention layer (so its q, k, v are this exercise's), a 3 x 4 feature map, 16 word vectors and
    the padding of two real captions; and the q, k, v the layer makes of them."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(105)
        layer = CrossAttention(channels=8, text_dim=6, heads=1)
    gen = torch.Generator().manual_seed(106)
    h, words = torch.randn(2, 8, 3, 4, generator=gen), 2 * torch.randn(2, MAX_WORDS, 6, generator=gen)
    pad = tokenize(["a red seven", "a small blue 4 on the left"]) == 0
    with torch.no_grad():
        q = layer.q(layer.norm(h).flatten(2).transpose(1, 2))  # (B, 12, 8)
        k, v = layer.k(words), layer.v(words)  # (B, 16, 8)
    return layer, h, words, pad, q, k, v


def _attention_variant(q, k, v, pad, scale=None, fill=-float("inf"), dim=-1, after=False, inverted=False):
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale is None else scale)
    masked = ~pad if inverted else pad
    if fill is not None and not after:
        scores = scores.masked_fill(masked[:, None, :], fill)
    weights = scores.softmax(dim)
    return (weights * ~pad[:, None, :] if after else weights) @ v


def _grade_cross_attention(fn):
    layer, h, words, pad, q, k, v = _attention_case()
    got = fn(q.clone(), k.clone(), v.clone(), pad.clone())
    if got is None:
        return False, "your function returned None; return the attention's output, shaped like q (B, N, d)."
    got = torch.as_tensor(got).detach().float()
    B, N, d = q.shape
    if got.shape == (B, N, k.shape[1]):
        return False, f"that is shaped (B, N, L) = {(B, N, k.shape[1])}, the weights: multiply them by v."
    if got.shape != q.shape:
        return False, f"the output has one d-vector per pixel, shaped like q {tuple(q.shape)}; got {tuple(got.shape)}."
    if got.isnan().any():
        return False, ("NaN: a softmax over entries that are all -inf. Take the softmax over the words (dim=-1): "
                       "every caption has a real word, but a padding position is padding for every pixel.")
    with torch.no_grad():  # the layer with the student's attention in place of its own
        mine = h + layer.out(got).transpose(1, 2).view(h.shape)
        if _close(mine, layer(h, words, pad)):
            return True, ("the library's CrossAttention with your attention inside. With several heads it splits "
                          "the channels and does this in each; keep_attention keeps the weights for the maps.")
    for hint, options in [
        ("the scores are not scaled: divide q k^T by sqrt(d), d = q.shape[-1], so that the softmax does not "
         "saturate as d grows.", dict(scale=1.0)),
        ("divide by sqrt(d), not d: q . k sums d products, so its spread grows like sqrt(d).", dict(scale=d)),
        ("the padding is not masked: the empty positions after the caption get weight too. masked_fill(pad[:, None, "
         ":], -inf) before the softmax.", dict(fill=None)),
        ("a score of 0 is not no weight (e^0 = 1): fill the padding with -inf before the softmax.", dict(fill=0.0)),
        ("masking after the softmax leaves weights that no longer sum to 1: fill the scores with -inf before it.",
         dict(after=True)),
        ("the mask is the other way round: pad is True at the padding, the positions to hide.", dict(inverted=True)),
        ("the softmax is over the pixels (dim=1); each pixel shares its attention among the words: dim=-1.",
         dict(fill=None, dim=1)),
    ]:
        if _close(got, _attention_variant(q, k, v, pad, **options)):
            return False, hint
    return False, ("scores = q @ k.transpose(-2, -1) / sqrt(d); fill the padding, pad[:, None, :], with -inf; "
                   "softmax over the words (dim=-1); then weights @ v.")


# ---------------------------------------------------------------- what a code grid carries


_VQ_DEFAULTS = inspect.signature(VQVAE).parameters  # the lesson's VQ-VAE: a 14 x 14 grid of 256 codes
_GRID, _K = _VQ_DEFAULTS["grid"].default, _VQ_DEFAULTS["num_codes"].default
_BITS = _GRID**2 * math.log2(_K)


def _grade_code_bits(answer):
    value = whole_number(answer)
    if value is None:
        return False, f"give a whole number of bits; {answer!r} is not one."
    if value == _BITS:
        return True, (f"{_GRID * _GRID} codes x log2({_K}) = {math.log2(_K):.0f} bits each = {_BITS:.0f} bits, against "
                      f"28 x 28 x 3 x 8 = {28 * 28 * 3 * 8} bits of raw pixels: {28 * 28 * 3 * 8 / _BITS:.0f} times "
                      f"fewer, and the prior predicts them like words.")
    if value == _GRID**2:
        return False, f"that counts the codes; each one picks one of {_K}, which takes log2({_K}) bits."
    if value == _GRID**2 * _K:
        return False, f"a code picks one of {_K}: that is log2({_K}) = {math.log2(_K):.0f} bits, not {_K}."
    if value == math.log2(_K):
        return False, f"that is one code; the grid has {_GRID} x {_GRID} of them."
    if value in (28 * 28 * 3, 28 * 28 * 3 * 8):
        return False, "that is the picture itself, 3 x 28 x 28 bytes; the question asks about its code grid."
    return False, f"count the codes in the {_GRID} x {_GRID} grid, and the bits one code needs to pick 1 of {_K}."


_USAGE = {3: 2, 8: 1, 9: 1}  # code -> how many of every 4 positions picked it: 1/2, 1/4, 1/4
_USED = torch.tensor([code for code, n in _USAGE.items() for _ in range(n)])
_PERPLEXITY = perplexity(_USED, _K)  # 2^1.5 = 2.83


def _grade_perplexity(answer):
    value = number(answer)
    if value is None:
        return False, f"give a number (e.g. 2.5); {answer!r} is not one."
    p = torch.tensor(list(_USAGE.values()), dtype=torch.float64) / len(_USED)
    nats = float(-(p * p.log()).sum())
    if abs(value - _PERPLEXITY) < 0.01:
        return True, (f"exp(entropy) = 2^{nats / math.log(2):g} = {_PERPLEXITY:.2f}: the batch uses its codes as "
                      f"evenly as {_PERPLEXITY:.2f} equally used codes would. The other {_K - len(_USAGE)} are dead "
                      f"here; training restarts such codes on vectors the encoder makes.")
    if round(value) == len(_USAGE):
        return False, (f"{len(_USAGE)} codes are used, but not equally often: the perplexity is their number only "
                       f"when each is used as often as the others. exp(-sum p log p).")
    if abs(value - nats / math.log(2)) < 0.01 or abs(value - nats) < 0.01:
        return False, "that is the entropy; the perplexity is its exponential: exp(nats), or 2^bits."
    if round(value) in (_K, _K - len(_USAGE)):
        return False, f"count only how the used codes share the picks; the {_K - len(_USAGE)} unused ones add nothing."
    return False, "p = (1/2, 1/4, 1/4); perplexity = exp(-sum p log p) (course_lib.vqvae.perplexity computes it)."


# ---------------------------------------------------------------- guidance, sampling and composition


def _grade_caption_dropout(answer):
    picked = choice(answer, "abcd")
    if picked == "b":
        return True, ("one network, two predictions: v(z_t, t, caption) and v(z_t, t, empty). Guidance needs both, "
                      "v = v_empty + w (v_caption - v_empty), as lesson 5's label dropout did for labels.")
    if picked == "a":
        return False, ("it looks like dropout, but the caption is not thinned, it is replaced by one caption, the "
                       "empty one. What does TextGuidedModel ask of the network with that empty caption?")
    if picked == "c":
        return False, ("the empty caption still goes through the text encoder and the whole U-Net; nothing is saved. "
                       "Look at what TextGuidedModel does with the empty caption.")
    if picked == "d":
        return False, ("the held-out pairs never reach training: captioned_digits repaints them in another ink. "
                       "Dropout replaces any caption; look at what TextGuidedModel does with the empty one.")
    return False, "answer with one letter: 'a', 'b', 'c' or 'd'."


def _grade_prior_passes(answer):
    picked = choice(answer, "abcd")
    if picked == "b":
        return True, (f"code i is drawn from p(code_i | caption, code_1 .. code_i-1), so it must wait for the codes "
                      f"before it: {_GRID * _GRID} passes in sequence for a {_GRID} x {_GRID} grid, four times as many "
                      f"for 28 x 28. A diffusion step updates every latent at once: its cost is the number of steps.")
    if picked == "a":
        return False, ("size is not what stops it: a bigger transformer still predicts code i from the codes before "
                       "it, so those must have been drawn first.")
    if picked == "c":
        return False, ("reading the caption is part of every pass, but it is not why there are 196 of them: count "
                       "what each pass needs that the previous pass made.")
    if picked == "d":
        return False, ("the passes are not repeats of one prediction: each pass draws a new code, one of the 196, "
                       "from a distribution that depends on the codes drawn so far.")
    return False, "answer with one letter: 'a', 'b', 'c' or 'd'."


def _grade_held_out(answer):
    picked = choice(answer, "abcd")
    if picked == "b":
        return True, ("no training picture is a green seven, so one cannot be recalled: the model has to put the "
                      "'green' it learned on other digits together with the 'seven' it learned in other inks.")
    if picked == "a":
        return False, ("memorising cannot give a green seven: no training picture shows one (captioned_digits "
                       "repaints them in another ink).")
    if picked == "c":
        return False, ("the models train on the training split only, where every green seven was repainted; the "
                       "test split's green sevens are never shown to them.")
    if picked == "d":
        return False, ("the lesson reads the ink and the digit from the pictures (prompt_following); the CLIP score "
                       "is another measure, and a high one does not need the pair to be new.")
    return False, "answer with one letter: 'a', 'b', 'c' or 'd'."


_CHOICES = "one letter: 'a', 'b', 'c' or 'd'"

register(
    vq_quantize=Exercise(
        "Write vq_quantize(z_e, codebook): each D-vector of z_e (B, D, H, W) replaced by its nearest row of codebook "
        "(K, D); return (z_q, codes), z_q (B, D, H, W) with the straight-through gradient, codes (B, H, W).",
        _grade_vector_quantize, vector_quantize_solution,
    ),
    clip_loss=Exercise(
        "Write clip_loss(image_vectors, text_vectors, logit_scale): CLIP's symmetric loss for a batch of B (image, "
        "caption) pairs given as unit vectors (B, D), with the learned logit_scale = log(1 / temperature).",
        _grade_clip_loss, clip_loss_solution,
    ),
    cross_attention=Exercise(
        "Write cross_attention(q, k, v, pad): softmax(q k^T / sqrt(d)) v for the pixels' queries q (B, N, d) and the "
        "words' keys and values k, v (B, L, d), with the padding words (pad (B, L), True at padding) given no weight.",
        _grade_cross_attention, cross_attention_solution,
    ),
    code_bits=Exercise(
        f"A picture is a {_GRID} x {_GRID} grid of codes from a codebook of {_K}. How many bits does one picture's "
        f"code grid hold?", _grade_code_bits,
        f"{_GRID} x {_GRID} = {_GRID**2} codes x log2({_K}) = {math.log2(_K):.0f} bits = {_BITS:.0f} bits.",
    ),
    perplexity=Exercise(
        "A batch uses code 3 half of the time and codes 8 and 9 a quarter of the time each. What is the perplexity "
        "of its codes?", _grade_perplexity,
        f"p = (1/2, 1/4, 1/4): entropy 1.5 bits, perplexity 2^1.5 = {_PERPLEXITY:.2f}.",
    ),
    caption_dropout=Exercise(
        "Why are one in ten captions replaced by the empty caption while the U-Net trains? (a) It regularises the "
        "text encoder. (b) The same network then also predicts without a caption, which classifier-free guidance "
        f"needs. (c) It makes training faster. (d) It hides the held-out pairs. Answer with {_CHOICES}.",
        _grade_caption_dropout,
        "b: guidance computes v = v(z_t, t, empty) + w (v(z_t, t, caption) - v(z_t, t, empty)); dropping captions "
        "teaches the one network both predictions.",
    ),
    prior_passes=Exercise(
        f"sample_codes draws a picture's {_GRID * _GRID} codes in {_GRID * _GRID} passes of the transformer, one "
        f"after the other; the diffusion sampler draws the latents in a number of steps you choose. Why can the prior "
        f"not take fewer passes? (a) Its transformer is too small to predict several codes at once. (b) Each code is "
        f"drawn given the codes before it, so they must be drawn first: one pass per code. (c) It must read the "
        f"caption's {MAX_WORDS} words again for each code. (d) It could; the passes average out the sampling noise. "
        f"Answer with {_CHOICES}.", _grade_prior_passes,
        "b: p(codes) = prod_i p(code_i | caption, code_<i); code i needs the codes before it, so 196 passes in a row. "
        "A diffusion step updates all the latents at once, so its cost is the number of steps, whatever the size.",
    ),
    held_out=Exercise(
        "No training caption pairs a seven with green ink (captions.HELD_OUT), yet the lesson asks for 'a green seven' "
        "and reads the ink and digit of the results. What does a high score on these pairs show? (a) That the model "
        "memorised its training pictures well. (b) That it composes: 'green' learned on other digits and 'seven' in "
        "other inks, combined into a picture it never saw. (c) Nothing new: the test split has green sevens, so it "
        f"has seen them. (d) That the CLIP score is high. Answer with {_CHOICES}.", _grade_held_out,
        "b: no training picture shows the pair, so it cannot be recalled; drawing it right means combining two "
        "attributes learned apart.",
    ),
)
