"""Lesson 10's exercises: every right answer passes, each typical mistake gets its own hint and never passes, an empty
answer is "not yet", and the graders expect the library's numbers (`VectorQuantizer`, `straight_through`,
`perplexity`, `clip_loss`, `CrossAttention`), so the lesson can use the students' functions once they pass."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import exercises
from course_lib.captions import tokenize
from course_lib.exercises.lesson10_text_to_image import (_attention_case, _vq_case, clip_loss_solution,
                                                         cross_attention_solution, vector_quantize_solution)
from course_lib.text2image import CrossAttention, clip_loss
from course_lib.vqvae import VQVAE, VectorQuantizer, perplexity, straight_through

RIGHT = {  # in the notebook's order
    "vq_quantize": vector_quantize_solution,
    "clip_loss": clip_loss_solution,
    "cross_attention": cross_attention_solution,
    "code_bits": 14 * 14 * 8,  # 196 codes of 8 bits each
    "perplexity": 2**1.5,  # usage (1/2, 1/4, 1/4): entropy 1.5 bits
    "caption_dropout": "b",
    "prior_passes": "b",
    "held_out": "b",
}
CODE = {"vq_quantize", "clip_loss", "cross_attention"}


def test_lesson_10_registers_its_exercises_in_the_notebooks_order():
    names = list(exercises.EXERCISES)
    assert names[names.index("vq_quantize"):names.index("held_out") + 1] == list(RIGHT)
    assert names.index("one_step_nfe") < names.index("vq_quantize")  # lesson 9 before lesson 10
    assert {name for name in RIGHT if callable(exercises.EXERCISES[name].solution)} == CODE


@pytest.mark.parametrize("name", list(RIGHT))
def test_the_right_answer_passes(name, capsys):
    assert exercises.check(name, RIGHT[name]).right
    assert capsys.readouterr().out.startswith("Correct!")


@pytest.mark.parametrize("name", list(RIGHT))
def test_an_empty_answer_is_not_yet(name, capsys):
    assert not exercises.check(name, None).right
    assert capsys.readouterr().out.startswith("Not yet: the answer is empty.")


def library_quantize(z_e, codebook):
    vq = VectorQuantizer(*codebook.shape).eval()
    with torch.no_grad():
        vq.codebook.weight.copy_(codebook)
    out = vq(z_e)
    return out.z_q, out.codes


def cdist_quantize(z_e, codebook):
    B, D, H, W = z_e.shape
    codes = torch.cdist(z_e.permute(0, 2, 3, 1).reshape(-1, D), codebook).argmin(1).view(B, H, W)
    return straight_through(z_e, codebook[codes].permute(0, 3, 1, 2)), codes


def sdpa_attention(q, k, v, pad):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=~pad[:, None, :])


def test_the_library_and_other_right_ways_pass(capsys):
    answers = [
        ("vq_quantize", library_quantize),
        ("vq_quantize", cdist_quantize),
        ("clip_loss", clip_loss),
        ("clip_loss", lambda i, t, s: clip_loss_solution(i, t, s.clamp(max=math.log(100)))),  # CLIP's cap on s
        ("cross_attention", sdpa_attention),
        ("cross_attention", lambda q, k, v, pad: ((q @ k.mT / q.shape[-1] ** 0.5).masked_fill(pad[:, None], -1e9))
         .softmax(-1) @ v),
        ("perplexity", "2.83"), ("perplexity", torch.tensor(2.8284)), ("code_bits", "1,568"),
        ("prior_passes", "(B)"), ("held_out", "b)"),
    ]
    for name, answer in answers:
        assert exercises.check(name, answer).right, capsys.readouterr().out


# ---------------------------------------------------------------- the graders' cases and the library


def test_the_vq_case_has_one_clearly_nearest_code_everywhere():
    """Any exact way of computing the distance (cdist, the expansion the library uses, a difference) picks the same
    codes: the nearest code is ahead of the second by a clear margin at every position; and the largest dot product
    picks other codes, so that slip shows."""
    z_e, codebook = _vq_case()
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
    two = torch.cdist(flat, codebook).topk(2, dim=1, largest=False).values
    assert (two[:, 1] - two[:, 0]).min() > 1e-3
    assert not torch.equal((flat @ codebook.T).argmax(1), torch.cdist(flat, codebook).argmin(1))


def test_the_vq_solution_is_the_quantizer_of_a_vqvae():
    torch.manual_seed(0)
    vq = VQVAE(num_codes=32, width=16).eval()
    z_e = vq.encode(torch.rand(3, 3, 28, 28))
    mine, codes = vector_quantize_solution(z_e, vq.quantizer.codebook.weight.detach())
    library = vq.quantizer(z_e)
    assert torch.equal(codes, library.codes) and torch.allclose(mine, library.z_q, atol=1e-6)
    torch.autograd.grad(mine.sum(), vq.encoder[0].weight)  # the gradient reaches the encoder's first layer


def test_the_attention_solution_is_the_core_of_the_librarys_layer_with_several_heads():
    torch.manual_seed(0)
    layer, heads = CrossAttention(channels=16, text_dim=6, heads=4).eval(), 4
    h, words = torch.randn(2, 16, 4, 4), torch.randn(2, 16, 6)
    pad = tokenize(["a red 7", "the digit two written in blue on navy"]) == 0
    with torch.no_grad():
        q = layer.q(layer.norm(h).flatten(2).transpose(1, 2))
        q, k, v = (x.view(2, -1, heads, 4).transpose(1, 2).reshape(2 * heads, -1, 4)
                   for x in (q, layer.k(words), layer.v(words)))  # the heads folded into the batch
        mixed = cross_attention_solution(q, k, v, pad.repeat_interleave(heads, 0))
        mixed = mixed.view(2, heads, 16, 4).transpose(1, 2).reshape(2, 16, 16)
        assert torch.allclose(h + layer.out(mixed).transpose(1, 2).view(h.shape), layer(h, words, pad), atol=1e-5)


def test_the_clip_solution_is_the_librarys_loss_and_its_gradient():
    gen = torch.Generator().manual_seed(0)
    i, t = F.normalize(torch.randn(5, 8, generator=gen), dim=1), F.normalize(torch.randn(5, 8, generator=gen), dim=1)
    s = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    mine, library = clip_loss_solution(i, t, s), clip_loss(i, t, s)
    assert torch.isclose(mine, library)
    assert torch.isclose(*(torch.autograd.grad(loss, s)[0] for loss in (mine, library)))


def test_the_perplexity_answer_is_the_librarys_perplexity():
    codes = torch.tensor([3, 3, 8, 9])  # code 3 half of the time, codes 8 and 9 a quarter each
    assert perplexity(codes, 256) == pytest.approx(RIGHT["perplexity"], abs=1e-4)


# ---------------------------------------------------------------- typical mistakes


def quantize_with(pick="argmin", axes="permuted", straight="through", out="pair", codes_shape="grid", permute=True):
    """The vector-quantisation step put together from parts, as a student might write it."""

    def quantize(z_e, codebook):
        B, D, H, W = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, D) if axes == "permuted" else z_e.reshape(-1, D)
        distance = torch.cdist(flat, codebook)
        codes = {"argmin": distance.argmin(1), "argmax": distance.argmax(1), "dot": (flat @ codebook.T).argmax(1),
                 "dim0": distance.argmin(0)}[pick]
        codes = codes.view(B, H, W) if codes_shape == "grid" and pick != "dim0" else codes
        z_q = codebook[codes.view(B, H, W) if pick != "dim0" else codes]
        z_q = z_q.permute(0, 3, 1, 2) if permute else z_q
        z_q = {"through": lambda: z_e + (z_q - z_e).detach(), "none": lambda: z_q, "cancel": lambda: z_e + (z_q - z_e),
               "doubled": lambda: 2 * z_e + (z_q - 2 * z_e).detach(), "z_e": lambda: z_e}[straight]()
        return {"pair": (z_q, codes), "swapped": (codes, z_q), "z_q": z_q}[out]

    return quantize


ATTENTION = cross_attention_solution


def attention_with(scale="sqrt", mask="-inf", dim=-1, out="mixed"):
    """softmax(q k^T / sqrt(d)) v put together from parts, as a student might write it."""

    def attention(q, k, v, pad):
        d = q.shape[-1]
        scores = q @ k.transpose(-2, -1) / {"sqrt": math.sqrt(d), "none": 1, "d": d}[scale]
        if mask in ("-inf", "0", "inverted"):
            hide = ~pad if mask == "inverted" else pad
            scores = scores.masked_fill(hide[:, None, :], 0.0 if mask == "0" else -float("inf"))
        weights = scores.softmax(dim)
        if mask == "after":
            weights = weights * ~pad[:, None, :]
        return weights if out == "weights" else weights @ v

    return attention


def clip_with(direction="both", s="exp", reduce=None, keep="tensor"):
    """CLIP's loss put together from parts, as a student might write it."""

    def loss(i, t, logit_scale):
        scale = {"exp": logit_scale.exp(), "none": 1.0, "raw": logit_scale, "divided": 1 / logit_scale.exp(),
                 "fixed": 1 / 0.07, "math": math.exp(logit_scale.item())}[s]
        logits = scale * i @ t.T
        target = torch.arange(len(i))
        ways = {"image": [logits], "text": [logits.T], "both": [logits, logits.T]}[direction]
        value = sum(F.cross_entropy(x, target) for x in ways) / (reduce or len(ways))
        return value.item() if keep == "item" else value.detach() if keep == "detach" else value

    return loss


MISTAKES = [
    ("vq_quantize", quantize_with(straight="none"), "no gradient reaches the encoder"),
    ("vq_quantize", quantize_with(straight="cancel"), "the two z_e cancel"),
    ("vq_quantize", quantize_with(straight="doubled"), "unchanged"),
    ("vq_quantize", quantize_with(straight="z_e"), "z_q is z_e itself"),
    ("vq_quantize", quantize_with(pick="argmax"), "not the argmax"),
    ("vq_quantize", quantize_with(pick="dot"), "the same length"),
    ("vq_quantize", quantize_with(axes="flat"), "mixes the axes"),
    ("vq_quantize", quantize_with(pick="dim0"), "not over the positions"),
    ("vq_quantize", lambda z_e, codebook: (vector_quantize_solution(z_e, codebook)[0],
                                               vector_quantize_solution(z_e, codebook)[1][0]), "one code per position"),
    ("vq_quantize", quantize_with(codes_shape="flat"), "give them the grid's shape"),
    ("vq_quantize", quantize_with(permute=False), "permute(0, 3, 1, 2)"),
    ("vq_quantize", quantize_with(permute=False, straight="none"), "permute(0, 3, 1, 2)"),
    ("vq_quantize", quantize_with(out="swapped"), "the other way round"),
    ("vq_quantize", quantize_with(out="z_q"), "return the pair (z_q, codes)"),
    ("code_bits", 196, "that counts the codes"),
    ("code_bits", 196 * 256, "not 256"),
    ("code_bits", 8, "that is one code"),
    ("code_bits", 28 * 28 * 3 * 8, "the picture itself"),
    ("code_bits", 28 * 28 * 3, "the picture itself"),
    ("code_bits", 1568.5, "whole number"),
    ("code_bits", 1000, "count the codes"),
    ("perplexity", 3, "not equally often"),
    ("perplexity", 1.5, "its exponential"),
    ("perplexity", 1.0397, "its exponential"),
    ("perplexity", 256, "unused ones"),
    ("perplexity", 2.0, "exp(-sum p log p)"),
    ("perplexity", 2.8, "exp(-sum p log p)"),  # 2.83, not rounded to one decimal
    ("perplexity", "three", "give a number"),
    ("prior_passes", "a", "size is not what stops it"),
    ("prior_passes", "c", "count what each pass needs"),
    ("prior_passes", "d", "not repeats"),
    ("prior_passes", "both", "one letter"),
    ("clip_loss", clip_with(direction="image"), "only one direction, images to captions"),
    ("clip_loss", clip_with(direction="text"), "only one direction, captions to images"),
    ("clip_loss", clip_with(reduce=1), "divide by 2"),
    ("clip_loss", clip_with(s="none"), "the temperature is missing"),
    ("clip_loss", clip_with(s="raw"), "the log of the scale"),
    ("clip_loss", clip_with(s="divided"), "do not divide"),
    ("clip_loss", clip_with(s="fixed"), "the temperature gets no gradient"),
    ("clip_loss", clip_with(s="math"), "the temperature gets no gradient"),
    ("clip_loss", clip_with(keep="item"), "carries no gradient"),
    ("clip_loss", clip_with(keep="detach"), "carries no gradient"),
    ("clip_loss", lambda i, t, s: F.cross_entropy(s.exp() * i @ t.T, torch.arange(len(i)), reduction="none"),
     "one number"),
    ("cross_attention", attention_with(scale="none"), "not scaled"),
    ("cross_attention", attention_with(scale="d"), "not d"),
    ("cross_attention", attention_with(mask="none"), "the padding is not masked"),
    ("cross_attention", attention_with(mask="0"), "a score of 0 is not no weight"),
    ("cross_attention", attention_with(mask="after"), "no longer sum to 1"),
    ("cross_attention", attention_with(mask="inverted"), "the mask is the other way round"),
    ("cross_attention", attention_with(dim=1), "NaN"),
    ("cross_attention", attention_with(mask="none", dim=1), "the softmax is over the pixels"),
    ("cross_attention", attention_with(out="weights"), "multiply them by v"),
    ("cross_attention", lambda q, k, v, pad: ATTENTION(q, k, v, pad).mean(1), "shaped like q"),
    ("cross_attention", lambda q, k, v, pad: ATTENTION(q, k, v, pad) + 0.01, "then weights @ v"),
    ("caption_dropout", "a", "not thinned"),
    ("caption_dropout", "c", "nothing is saved"),
    ("caption_dropout", "d", "captioned_digits repaints them"),
    ("caption_dropout", "bogus", "one letter"),
    ("held_out", "a", "memorising cannot"),
    ("held_out", "c", "training split only"),
    ("held_out", "d", "another measure"),
    ("held_out", 2, "one letter"),
]


@pytest.mark.parametrize("name, answer, hint", MISTAKES)
def test_a_typical_mistake_gets_its_hint_and_never_passes(name, answer, hint, capsys):
    assert not exercises.check(name, answer).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet") and hint in out, out


def test_every_exercise_has_its_mistakes_here():
    assert {name for name, _, _ in MISTAKES} == set(RIGHT)


def test_passed_follows_the_latest_check(capsys):
    assert exercises.check("cross_attention", cross_attention_solution).right
    assert exercises.passed("cross_attention", cross_attention_solution)
    assert not exercises.check("cross_attention", attention_with(scale="none")).right
    assert not exercises.passed("cross_attention")


@pytest.mark.parametrize("name", list(RIGHT))
def test_grading_leaves_the_students_random_generator_alone(name, capsys):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    exercises.check(name, RIGHT[name])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", sorted(CODE))
def test_the_notebooks_placeholder_is_told_to_return_something(name, capsys):
    def placeholder(*args):
        # YOUR CODE HERE
        return None

    assert not exercises.check(name, placeholder).right
    out = capsys.readouterr().out
    assert out.startswith("Not yet: your function returned None; return "), out


@pytest.mark.parametrize("name", sorted(CODE))
def test_a_printed_solution_shows_the_code(name, capsys):
    exercises.solution(name)
    out = capsys.readouterr().out
    assert out.startswith("def ") and "#" in out
