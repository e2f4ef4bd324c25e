"""Lesson 10: captions and their tokenizer, the attribute reader that measures prompt following, the VQ-VAE with its
code prior, and the miniature CLIP and cross-attention U-Net. Every model here is tiny: a few steps on CPU."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from course_lib.captions import (EMPTY, HELD_OUT, INKS, MAX_WORDS, MENTIONS, VOCABULARY, WORD_ID, caption,
                                 captioned_digits, drop_captions, is_held_out, random_captions, tokenize, words)
from course_lib.data import BACKGROUNDS, INK_COLOURS, SIZES, draw_colour_attributes, load_dataset, make_loader, \
    paint_digits
from course_lib.diffusion import DiffusionSchedule
from course_lib.prompt_following import ink_alpha, mnist_style, prompt_following, read_attributes
from course_lib.superres import eps_from_v
from course_lib.text2image import (CrossAttention, ImageEncoder, MiniCLIP, TextEncoder, TextGuidedModel, TextUNet,
                                   clip_loss, clip_step, t2i_step)
from course_lib.training import fit
from course_lib.vqvae import (CodePrior, VectorQuantizer, VQVAE, dead_codes, encode_codes, perplexity, prior_step,
                              sample_codes, straight_through, vq_step)


@pytest.fixture(scope="module")
def colour_test():
    """300 real colour digits of the test split and what the reader makes of them (read once for several tests)."""
    x, y, a = load_dataset("colour_digits", "test", n=300, source="bundled").tensors
    return x, y, a, read_attributes(x)


@pytest.fixture(scope="module")
def grey():
    return load_dataset("mnist", "test", n=16, source="bundled").tensors


# ---------------------------------------------------------------------------------------------------- captions


def test_a_caption_names_exactly_the_mentioned_attributes_in_every_phrasing():
    attributes = [INKS.index("blue"), list(BACKGROUNDS).index("maroon"), SIZES.index("small"), 2]  # small, right
    names = {"ink": {"blue"}, "background": {"maroon"}, "size": {"small"}, "position": {"right"},
             "digit": {"three", "3"}}
    for template in range(4):
        for k in range(len(MENTIONS) + 1):
            for mention in itertools.combinations(MENTIONS, k):
                text = caption(3, attributes, template, mention)
                found = set(words(text))
                for attribute, its_words in names.items():
                    assert bool(found & its_words) == (attribute in mention), (text, mention)
                assert "digit digit" not in text, text


def test_large_digits_never_name_a_position_and_an_comes_before_a_vowel():
    assert caption(7, [0, 0, 0, 0], template=0) == "a large red seven on black"  # no "in the centre": it fills it
    assert caption(8, [0, 0, 0, 0], template=0, mention=("digit",)) == "an eight"
    assert caption(3, [1, 0, 0, 0], template=3, mention=("ink",)) == "an orange digit"


def test_every_random_caption_tokenizes_and_round_trips():
    g = torch.Generator().manual_seed(0)
    attributes = draw_colour_attributes(400, g)
    labels = torch.randint(10, (400,), generator=g)
    texts = random_captions(labels, attributes, g)
    assert len(set(texts)) > 200  # phrasings and mentions vary
    tokens = tokenize(texts)
    assert tokens.shape == (400, MAX_WORDS) and tokens.dtype == torch.long
    for text, row in zip(texts, tokens):
        ids = row[row != 0].tolist()
        assert [VOCABULARY[i] for i in ids] == words(text)  # ids, then only padding
        assert (row[len(ids):] == 0).all()


def test_synonyms_map_to_their_word_and_case_and_punctuation_do_not_matter():
    assert words("A big Purple 3, in the middle") == ["a", "large", "purple", "3", "in", "the", "centre"]
    assert tokenize("an eight in the center").equal(tokenize("a eight in the centre"))
    assert tokenize("a tiny number 5").equal(tokenize("a small digit 5"))


def test_unknown_words_are_named_with_the_nearest_known_word():
    with pytest.raises(ValueError, match=r"'grean' \(did you mean 'green'\?\)"):
        tokenize(["a red 7", "a grean seven"])
    with pytest.raises(ValueError) as error:
        words("an empty caption")  # the markers <empty> and <pad> are no words to type, nor to suggest
    assert "<empty>" not in str(error.value) and "'empty'" in str(error.value)
    with pytest.raises(ValueError, match=f"at most {MAX_WORDS}"):
        tokenize(" ".join(["red"] * (MAX_WORDS + 1)))


def test_the_empty_caption_is_one_token_and_dropout_replaces_whole_captions():
    empty = tokenize([""])
    assert empty[0, 0] == WORD_ID[EMPTY] and (empty[0, 1:] == 0).all()
    tokens = tokenize(["a red 7", "a small blue 3 on the left"] * 200)
    assert drop_captions(tokens, 0.0).equal(tokens)
    assert drop_captions(tokens, 1.0).equal(empty.expand_as(tokens))
    dropped = drop_captions(tokens, 0.25, torch.Generator().manual_seed(0))
    gone = (dropped != tokens).any(1)
    assert dropped[gone].equal(empty.expand(int(gone.sum()), -1)) and dropped[~gone].equal(tokens[~gone])
    assert 0.15 < gone.float().mean() < 0.35
    with pytest.raises(ValueError, match="probability"):
        drop_captions(tokens, 1.5)


def test_held_out_pairs_are_missing_from_training_but_present_in_the_test_split():
    assert is_held_out(torch.tensor([7, 7, 2, 3]), torch.tensor([INKS.index("green"), INKS.index("red"),
                                                                 INKS.index("red"), INKS.index("red")])).tolist() == [
        True, False, True, False]
    train, texts = captioned_digits("train", n=200, copies=2, seed=0, source="bundled")
    images, labels, attributes, tokens = train.tensors
    assert images.shape == (400, 3, 28, 28) and len(texts) == 400 and tokens.equal(tokenize(texts))
    assert not is_held_out(labels, attributes[:, 0]).any()
    assert not set(zip(labels.tolist(), (INKS[i] for i in attributes[:, 0]))) & set(HELD_OUT)
    assert labels.eq(7).any() and attributes[:, 0].eq(INKS.index("green")).any()  # both halves of "green seven" seen
    assert images[:200].equal(paint_digits(load_dataset("mnist", "train", n=200, source="bundled").tensors[0],
                                           attributes[:200]))  # the pictures show their attributes
    test, _ = captioned_digits("test", n=200, copies=2, seed=0, source="bundled")
    assert is_held_out(test.tensors[1], test.tensors[2][:, 0]).sum() >= 5
    again, texts_again = captioned_digits("train", n=200, copies=2, seed=0, source="bundled")
    assert texts_again == texts and again.tensors[2].equal(attributes)  # a seed repeats the data


# ------------------------------------------------------------------------------------------- prompt following


def test_the_reader_reads_real_colour_digits(colour_test):
    x, y, a, read = colour_test
    assert (read["ink"] == a[:, 0]).float().mean() >= 0.98
    assert (read["background"] == a[:, 1]).float().mean() >= 0.98
    assert (read["digit"] == y).float().mean() >= 0.95
    assert (read["size"] == a[:, 2]).float().mean() >= 0.95
    assert (read["position"] == a[:, 3]).float().mean() >= 0.95


def test_ink_alpha_recovers_the_grey_digit_the_picture_was_painted_from(grey):
    x = grey[0]
    ink, back = INKS.index("white"), list(BACKGROUNDS).index("black")
    painted = paint_digits(x, torch.tensor([[ink, back, 0, 0]] * len(x)))
    alpha, ink_rgb, back_rgb = ink_alpha(painted)
    assert alpha.shape == x.shape and 0 <= alpha.min() and alpha.max() <= 1
    assert (alpha - x).abs().mean() < 0.03
    assert torch.allclose(back_rgb, torch.zeros(3).expand(len(x), 3))
    assert (ink_rgb - torch.tensor(INK_COLOURS["white"])).abs().max() < 0.15
    with pytest.raises(ValueError, match=r"\(B, 3, 28, 28\)"):
        ink_alpha(x)


def test_mnist_style_scales_a_small_digit_back_to_mnist_size(grey):
    x = grey[0][:4]
    small = paint_digits(x, torch.tensor([[7, 0, 1, p] for p in range(4)]))
    alpha, _, _ = ink_alpha(small)
    digits, boxes = mnist_style(alpha)
    top, left, bottom, right = boxes.T
    assert ((bottom - top + 1) < 14).all()  # the small digit's box
    rows = (digits[:, 0] > 0.3).any(2)
    heights = torch.tensor([int(r.nonzero()[-1] - r.nonzero()[0] + 1) for r in rows])
    assert ((heights >= 17) & (heights <= 21)).all()  # scaled to fit 20 x 20, as MNIST's digits are
    empty, box = mnist_style(torch.zeros(1, 1, 28, 28))
    assert empty.eq(0).all() and box.tolist() == [[0, 0, 27, 27]]


def test_prompt_following_counts_only_what_a_caption_named(colour_test):
    x, y, a, read = colour_test
    x, y, a = x[:40], y[:40], a[:40]
    wrong = (read["digit"][:40] + 1) % 10
    named = torch.arange(40) % 2 == 0
    asked = {"digit": torch.where(named, read["digit"][:40], -1), "ink": a[:, 0]}
    shares = prompt_following(x, asked)
    assert shares["digit"] == 1.0  # every named digit is what the reader sees
    assert shares["ink"] == pytest.approx((read["ink"][:40] == a[:, 0]).float().mean().item())
    # only named digits are judged; an image whose caption named nothing wrong counts towards "all"
    shares = prompt_following(x, {"digit": torch.where(named, wrong, -1)})
    assert shares["digit"] == 0.0 and shares["all"] == 0.5
    shares = prompt_following(x, {"digit": wrong, "ink": torch.full((40,), -1)})
    assert shares["digit"] == 0.0 and shares["all"] == 0.0 and math.isnan(shares["ink"])
    with pytest.raises(ValueError, match=r"shaped \(40,\)"):
        prompt_following(x, {"digit": y[:5]})
    with pytest.raises(ValueError, match="Unknown attribute"):
        prompt_following(x, {"colour": a[:, 0]})


# ---------------------------------------------------------------------------------------------------- VQ-VAE


def test_straight_through_is_z_q_forward_and_identity_backward():
    g = torch.Generator().manual_seed(0)
    z_e = torch.randn(2, 4, 3, 3, generator=g, requires_grad=True)
    z_q = torch.randn(2, 4, 3, 3, generator=g, requires_grad=True)
    out = straight_through(z_e, z_q)
    assert torch.allclose(out, z_q, atol=1e-6)  # z_e + (z_q - z_e): equal up to float rounding
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    assert torch.allclose(z_e.grad, weights) and z_q.grad is None  # the quantiser's choice gets no gradient


def test_the_quantizer_picks_the_nearest_code_and_splits_its_losses():
    torch.manual_seed(0)
    vq = VectorQuantizer(num_codes=16, code_dim=4)
    codebook = torch.randn(16, 4)
    with torch.no_grad():
        vq.codebook.weight.copy_(codebook)
    z_e = torch.randn(2, 4, 5, 5, requires_grad=True)
    out = vq(z_e)
    flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, 4)
    brute = torch.stack([torch.stack([(v - e).pow(2).sum() for e in codebook]).argmin() for v in flat]).view(2, 5, 5)
    assert out.codes.equal(brute)
    assert torch.allclose(out.z_q, codebook[brute].permute(0, 3, 1, 2))
    assert out.codebook_loss.item() == pytest.approx(out.commitment_loss.item())  # same value, different gradients
    vq.zero_grad()
    out.codebook_loss.backward(retain_graph=True)
    assert z_e.grad is None and vq.codebook.weight.grad.abs().sum() > 0  # the codebook moves towards the encoder
    vq.zero_grad()
    out.commitment_loss.backward()
    assert z_e.grad.abs().sum() > 0 and vq.codebook.weight.grad is None  # the encoder stays near its codes


def test_perplexity_and_dead_codes():
    assert perplexity(torch.arange(16).repeat(3), 16) == pytest.approx(16.0)
    assert perplexity(torch.full((50,), 5), 16) == pytest.approx(1.0)
    assert perplexity(torch.tensor([0, 0, 1, 1]), 16) == pytest.approx(2.0)
    assert dead_codes(torch.tensor([[0, 1], [1, 3]]), 8) == 5
    assert dead_codes(torch.arange(8), 8) == 0


def test_restarting_dead_codes_moves_them_onto_encoder_vectors():
    torch.manual_seed(0)
    vq = VectorQuantizer(num_codes=8, code_dim=4)
    before = vq.codebook.weight.detach().clone()
    vq.usage.copy_(torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    z_e = torch.randn(2, 4, 3, 3) * 5
    assert vq.restart_dead_codes(z_e) == 6
    after = vq.codebook.weight.detach()
    assert after[:2].equal(before[:2])  # used codes stay
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 4)
    for k in range(2, 8):
        assert (flat - after[k]).abs().sum(1).min() < 1e-6  # each dead code now sits on an encoder vector
    assert torch.allclose(vq.usage[2:], torch.full((6,), 1 / 8))
    assert vq.restart_dead_codes(z_e) == 0  # nothing left to restart
    assert dead_codes(vq.nearest(z_e), 8) < 8 - 1  # the moved codes get picked


def test_dead_codes_restart_from_the_bfloat16_vectors_a_fast_vq_step_makes():
    vq = VectorQuantizer(num_codes=8, code_dim=4)
    vq.usage.zero_()
    z_e = torch.randn(2, 4, 3, 3).to(torch.bfloat16)  # the encoder's output under the CPU's fast autocast
    assert vq.restart_dead_codes(z_e) == 8 and vq.codebook.weight.dtype == torch.float32


def test_usage_is_tracked_in_training_only():
    vq = VectorQuantizer(num_codes=4, code_dim=2)
    usage = vq.usage.clone()
    vq.eval()(torch.randn(1, 2, 3, 3))
    assert vq.usage.equal(usage)
    vq.train()(torch.randn(1, 2, 3, 3))
    assert not vq.usage.equal(usage) and vq.usage.sum().item() == pytest.approx(1.0)


def test_vqvae_shapes_and_clear_errors():
    vq = VQVAE(num_codes=16, width=8)
    x = torch.rand(3, 3, 28, 28)
    out = vq(x)
    assert out.image.shape == x.shape and out.codes.shape == (3, 14, 14) and out.z_e.shape == (3, 4, 14, 14)
    assert 0 <= out.image.min() and out.image.max() <= 1 and 0 <= out.codes.min() and out.codes.max() < 16
    assert VQVAE(num_codes=16, width=8, grid=7)(x).codes.shape == (3, 7, 7)
    with torch.no_grad():
        assert torch.allclose(vq.decode_latents(out.z_e), out.image, atol=1e-4)  # snapped to the same codes
        assert torch.allclose(vq.decode_codes(out.codes), out.image, atol=1e-4)
    with pytest.raises(ValueError, match="14"):
        VQVAE(grid=10)
    with pytest.raises(ValueError, match=r"\(B, 3, 28, 28\)"):
        vq(torch.rand(3, 1, 28, 28))


def test_a_few_vq_steps_lower_the_loss_and_codes_are_read_in_eval_mode():
    torch.manual_seed(0)
    data = load_dataset("colour_digits", "train", n=32, source="bundled")
    vq = VQVAE(num_codes=16, width=8)
    history = fit(vq, make_loader(data, 16), vq_step(restart_every=5), torch.optim.Adam(vq.parameters(), 3e-3),
                  epochs=10, progress=False)
    assert history.epochs["loss"][-1] < 0.6 * history.epochs["loss"][0]
    assert set(history.steps) >= {"loss", "recon", "commitment", "perplexity"}
    assert 1 <= history.steps["perplexity"][-1] <= 16
    vq.train()
    codes = encode_codes(vq, data.tensors[0], batch_size=10)
    assert vq.training and codes.shape == (32, 14, 14)
    with torch.no_grad():
        assert codes.equal(vq.eval()(data.tensors[0]).codes)


# ------------------------------------------------------------------------------------------------- code prior


def test_the_code_prior_is_causal():
    torch.manual_seed(0)
    prior = CodePrior(num_codes=16, grid=14, dim=32, layers=1, heads=2).eval()
    tokens = tokenize(["a red 7", "a small blue 3"])
    codes = torch.randint(16, (2, 196))
    with torch.no_grad():
        logits = prior(tokens, codes)
        assert logits.shape == (2, 196, 16)
        for j in (0, 50, 194):
            changed = codes.clone()
            changed[:, j] = (changed[:, j] + 1) % 16
            other = prior(tokens, changed)
            assert torch.allclose(other[:, :j + 1], logits[:, :j + 1], atol=1e-5)  # code j predicted without seeing it
            assert not torch.allclose(other[:, j + 1], logits[:, j + 1])  # the next one sees it
        assert not torch.allclose(prior(tokenize(["a green 2", "a small blue 3"]), codes)[0, 0], logits[0, 0])


def test_the_prior_learns_codes_for_a_caption_and_greedy_sampling_follows_it():
    torch.manual_seed(0)
    tokens = tokenize(["a red 7"] * 4 + ["a blue 3"] * 4)
    codes = torch.zeros(8, 14, 14, dtype=torch.long)
    codes[:4] = 3
    codes[4:] = torch.arange(196).view(14, 14) % 5 + 7
    prior = CodePrior(num_codes=16, grid=14, dim=32, layers=1, heads=2)
    history = fit(prior, make_loader(TensorDataset(tokens, codes), 8), prior_step(p_uncond=0.0),
                  torch.optim.Adam(prior.parameters(), 1e-2), epochs=60, progress=False)
    assert history.epochs["loss"][0] > 1.5 and history.epochs["loss"][-1] < 0.05  # from ~log 16 to almost sure
    drawn = sample_codes(prior, tokenize(["a red 7", "a blue 3"]), top_k=1)
    assert drawn[0].eq(3).all() and drawn[1].equal(codes[4])


def test_sampled_codes_are_valid_and_a_seed_reproduces_them():
    torch.manual_seed(0)
    prior = CodePrior(num_codes=16, grid=7, dim=32, layers=1, heads=2)
    tokens = tokenize(["a red 7", "a blue 3", ""])

    def draw(seed, **options):
        return sample_codes(prior, tokens, generator=torch.Generator().manual_seed(seed), **options)

    codes = draw(0)
    assert codes.shape == (3, 7, 7) and codes.dtype == torch.long and 0 <= codes.min() and codes.max() < 16
    assert codes.equal(draw(0)) and not codes.equal(draw(1))
    assert prior.training  # sampled in eval mode, then the mode was restored
    top2 = draw(2, top_k=2)
    with torch.no_grad():
        logits = prior.eval()(tokens, top2.flatten(1))  # teacher-forced: each drawn code was among the two likeliest
    assert (logits.topk(2, -1).indices == top2.flatten(1)[..., None]).any(-1).all()
    greedy = draw(3, top_k=1)
    assert greedy.equal(draw(4, top_k=1))  # top_k=1 leaves no choice to chance
    with torch.no_grad():  # one code at a time, the sampler reads what the whole-grid forward pass predicts
        assert prior(tokens, greedy.flatten(1)).argmax(-1).equal(greedy.flatten(1))
    # guidance 0 keeps only the caption-free logits: the same codes as asking with empty captions
    assert draw(5, top_k=1, guidance=0.0).equal(sample_codes(prior, tokenize(["", "", ""]), top_k=1))


# ---------------------------------------------------------------------------------------- CLIP and text encoder


def test_the_text_encoder_pools_real_words_only():
    torch.manual_seed(0)
    encoder = TextEncoder(dim=16, layers=1, heads=2).eval()
    tokens = tokenize(["a red 7", "the digit three written in blue"])
    with torch.no_grad():
        h, pooled = encoder(tokens)
        assert h.shape == (2, MAX_WORDS, 16) and pooled.shape == (2, 16)
        assert torch.allclose(pooled[0], h[0, :3].mean(0), atol=1e-6)
        encoder.words.weight[0] += 10.0  # the padding's embedding
        h2, pooled2 = encoder(tokens)
    assert torch.allclose(pooled2, pooled, atol=1e-5) and torch.allclose(h2[0, :3], h[0, :3], atol=1e-5)


def test_clip_loss_is_low_for_matching_pairs_and_high_for_shuffled_ones():
    torch.manual_seed(0)
    images = F.normalize(torch.randn(8, 16), dim=1)
    texts = F.normalize(images + 0.1 * torch.randn(8, 16), dim=1)
    scale = torch.tensor(math.log(1 / 0.07))
    matched = clip_loss(images, texts, scale)
    shuffled = clip_loss(images, texts[torch.roll(torch.arange(8), 1)], scale)
    assert matched < 0.1 and shuffled > math.log(8)  # worse than guessing among the 8 captions
    assert clip_loss(images, texts, scale).item() == pytest.approx(clip_loss(texts, images, scale).item())  # both ways
    assert clip_loss(images, texts, torch.tensor(10.0)).item() == pytest.approx(
        clip_loss(images, texts, torch.tensor(math.log(100.0))).item())  # the scale is capped at 100


def test_a_few_clip_steps_bring_pictures_and_their_captions_together():
    torch.manual_seed(0)
    data, _ = captioned_digits("train", n=16, seed=0, source="bundled")
    clip = MiniCLIP(dim=16)
    assert isinstance(clip.image_encoder, ImageEncoder)
    history = fit(clip, [data.tensors] * 25, clip_step(), torch.optim.Adam(clip.parameters(), 2e-3), epochs=1,
                  progress=False)
    assert history.steps["loss"][-1] < 0.5 * history.steps["loss"][0]
    assert history.steps["top1"][-1] > history.steps["top1"][0]
    similarity = clip.similarity(data.tensors[0], data.tensors[3])
    assert similarity.shape == (16,) and (similarity.abs() <= 1 + 1e-5).all()


# ------------------------------------------------------------------------------ cross-attention and the U-Net


def test_cross_attention_ignores_padding_and_keeps_maps_that_sum_to_one():
    torch.manual_seed(0)
    attention = CrossAttention(channels=8, text_dim=6, heads=2)
    h = torch.randn(2, 8, 4, 4)
    tokens = tokenize(["a red 7", "a small blue 3 on the left"])
    pad = tokens == 0
    words_ = torch.randn(2, MAX_WORDS, 6)
    attention.keep_attention = True
    out = attention(h, words_, pad)
    maps = attention.attention
    assert out.shape == h.shape and maps.shape == (2, 16, MAX_WORDS)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 16), atol=1e-5)
    assert maps[pad[:, None].expand_as(maps)].eq(0).all()  # padding words get no weight
    changed = words_.clone()
    changed[pad] = torch.randn(int(pad.sum()), 6) * 100
    assert torch.allclose(attention(h, changed, pad), out, atol=1e-5)
    changed[0, 1] += 1.0  # a real word does matter
    assert not torch.allclose(attention(h, changed, pad), out)
    with pytest.raises(ValueError, match="heads"):
        CrossAttention(channels=10, text_dim=6, heads=4)


def test_the_text_unet_keeps_the_latent_shape_and_ignores_padding():
    torch.manual_seed(0)
    unet = TextUNet(channels=(8, 16, 16), text_dim=16).eval()
    z, t = torch.randn(2, 4, 14, 14), torch.tensor([5, 900])
    tokens = tokenize(["a red 7", ""])
    with torch.no_grad():
        out = unet(z, t, tokens)
        assert out.shape == (2, 4, 14, 14)
        unet.text.words.weight[0] += 10.0  # what the padding would say, were it heard
        assert torch.allclose(unet(z, t, tokens), out, atol=1e-5)
        assert not torch.allclose(unet(z, t, tokenize(["a blue 3", ""]))[0], out[0])  # the caption is heard
        assert unet(z[:1], 7, tokens[:1]).shape == (1, 4, 14, 14)  # one time step for the batch
    with pytest.raises(ValueError, match=r"\(B, 4, 14, 14\).*tokenize"):
        unet(torch.randn(2, 4, 7, 7), t, tokens)
    with pytest.raises(ValueError, match=r"\(B, 16\)"):
        unet(z, t, tokens[:, :8])
    assert set(unet.attention_layers()) == {"7x7 down", "4x4 down", "4x4 middle", "7x7 up"}


def test_guided_model_is_the_conditional_noise_at_w_1_and_linear_in_w():
    torch.manual_seed(0)
    unet = TextUNet(channels=(8, 16, 16), text_dim=16).eval()
    schedule = DiffusionSchedule(T=1000)
    tokens = tokenize(["a red 7", "a small blue 3"])
    z, t = torch.randn(2, 4, 14, 14), torch.tensor([10, 700])
    with torch.no_grad():
        v_c, v_u = unet(z, t, tokens), unet(z, t, tokenize(["", ""]))
        guided = lambda w: TextGuidedModel(unet, schedule, tokens, w, fast=False)(z, t)  # noqa: E731
        assert torch.allclose(guided(1), eps_from_v(schedule, z, t, v_c), atol=1e-5)
        assert torch.allclose(guided(0.0), eps_from_v(schedule, z, t, v_u), atol=1e-5)
        assert torch.allclose(guided(3.0), eps_from_v(schedule, z, t, v_u + 3 * (v_c - v_u)), atol=1e-4)
    with pytest.raises(ValueError, match="w"):
        TextGuidedModel(unet, schedule, tokens, -1.0)
    with pytest.raises(ValueError, match="n=2"):
        TextGuidedModel(unet, schedule, tokens, 2.0, fast=False)(torch.randn(3, 4, 14, 14), torch.tensor([1, 2, 3]))


def test_t2i_step_gives_a_finite_loss_with_gradients_and_drops_captions():
    torch.manual_seed(0)
    unet = TextUNet(channels=(8, 16, 16), text_dim=16)
    schedule = DiffusionSchedule(T=1000)
    batch = (torch.randn(4, 4, 14, 14), tokenize(["a red 7", "a blue 3", "a small 5", "the digit two"]))
    loss = t2i_step(schedule, p_uncond=0.0, generator=torch.Generator().manual_seed(0), fast=False)(unet, batch)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in unet.parameters())
    assert unet.text.words.weight.grad.abs().sum() > 0  # the text encoder is trained with the U-Net

    seen = []

    class Listener(torch.nn.Module):
        def forward(self, z, t, tokens):
            seen.append(tokens)
            return torch.zeros_like(z)

    t2i_step(schedule, p_uncond=1.0, fast=False)(Listener(), batch)
    assert seen[0].equal(tokenize([""] * 4))  # every caption dropped: the network learns the caption-free v
