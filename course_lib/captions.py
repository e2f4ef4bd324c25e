"""Captioned colour digits (lesson 10): words for what the colour digits show, and a word-level tokenizer.

Every colour digit (`data.load_dataset("colour_digits")`) has known attributes: its digit, ink, background, size and,
for small ones, position. A caption names some of them in one of several phrasings, so the same picture can be asked
for in different words:

    >>> caption(7, [0, 0, 1, 1], template=0)
    'a small red seven on black on the left'
    >>> caption(7, [0, 0, 1, 1], template=1, mention=("digit", "ink"))
    '7, red ink'

A model reads a caption as token ids (`tokenize`): one id per known word, padded with 0 to `MAX_WORDS`. Some
(digit, ink) pairs never appear in training (`HELD_OUT`), so that a lesson can ask whether a model composes a
"green seven" from the greens and the sevens it has seen.

    >>> tokenize(["a red seven"]).shape
    torch.Size([1, 16])
"""

import difflib
import re

import torch
from torch.utils.data import TensorDataset

from .data import BACKGROUNDS, INK_COLOURS, POSITIONS, SIZES, draw_colour_attributes, load_dataset, paint_digits

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
INKS, BACKS = tuple(INK_COLOURS), tuple(BACKGROUNDS)
HELD_OUT = ((7, "green"), (2, "red"), (4, "blue"), (9, "yellow"))  # (digit, ink) pairs no training caption shows
MAX_WORDS = 16  # captions are padded (id 0) or refused beyond this
PAD, EMPTY = "<pad>", "<empty>"  # EMPTY is the caption of "no caption" (classifier-free guidance drops to it)
MENTIONS = ("digit", "ink", "background", "size", "position")
MENTION_P = {"digit": 0.9, "ink": 0.9, "background": 0.5, "size": 0.5, "position": 0.7}  # how often a caption names it
_POSITION_WORDS = {"centre": "in the centre", "left": "on the left", "right": "on the right", "top": "at the top",
                   "bottom": "at the bottom"}

# Phrasings: pieces joined in order, a piece left out when the attribute it names is not mentioned
TEMPLATES = (
    (("a", None), (" {size}", "size"), (" {ink}", "ink"), (" {digit}", None), (" on {background}", "background"),
     (" {position}", "position")),
    (("{numeral}", None), (", {ink} ink", "ink"), (", {size}", "size"), (", {background} background", "background"),
     (", {position_short}", "position")),
    (("the digit", None), (" {digit}", "digit"), (" written in {ink}", "ink"), (" on {background}", "background"),
     (", {size}", "size"), (" {position}", "position")),
    (("a", None), (" {ink}", "ink"), (" {numeral}", None), (" {position}", "position"), (", {size}", "size"),
     (", with a {background} background", "background")),
)
_WORDS_USED = " ".join(text for template in TEMPLATES for text, _ in template) + " " + " ".join(
    [*DIGIT_WORDS, *INKS, *BACKS, *SIZES, *POSITIONS, *_POSITION_WORDS.values(), "digit number center middle big tiny an"])
SYNONYMS = {"center": "centre", "middle": "centre", "big": "large", "tiny": "small", "an": "a", "number": "digit"}
VOCABULARY = (PAD, EMPTY, *sorted(set(re.findall(r"[a-z]+", re.sub(r"\{\w+\}", " ", _WORDS_USED)))
                                   - set(SYNONYMS) | set(map(str, range(10)))))  # a synonym reads as its word
WORD_ID = {w: i for i, w in enumerate(VOCABULARY)}


def caption(digit: int, attributes, template: int = 0, mention=MENTIONS) -> str:
    """One caption for a digit with `attributes` (a row: ink, background, size, position indices), naming only the
    attributes in `mention`, in phrasing number `template` (of TEMPLATES). The position is only named for small
    digits (large ones fill the picture).

    >>> caption(3, [5, 1, 0, 0], template=2, mention=("digit", "ink", "background"))
    'the digit three written in blue on navy'
    >>> caption(3, [1, 0, 0, 0], template=3, mention=("ink",))
    'an orange digit'
    """
    ink, back, size, position = (int(a) for a in attributes)
    named = set(mention) - ({"position"} if SIZES[size] != "small" else set())
    known = "digit" in named
    fill = dict(digit=DIGIT_WORDS[digit] if known else "digit", numeral=str(digit) if known else "digit",
                ink=INKS[ink], background=BACKS[back], size=SIZES[size],
                position=_POSITION_WORDS[POSITIONS[position]], position_short=POSITIONS[position])
    text = "".join(piece.format(**fill) for piece, needs in TEMPLATES[template] if needs is None or needs in named)
    return re.sub(r"\ba (?=[aeiou])", "an ", text)


def random_captions(labels: torch.Tensor, attributes: torch.Tensor, generator: torch.Generator) -> list[str]:
    """A caption per image: each attribute named with probability MENTION_P, in a random phrasing."""
    n = len(labels)
    named = {m: torch.rand(n, generator=generator) < p for m, p in MENTION_P.items()}
    templates = torch.randint(len(TEMPLATES), (n,), generator=generator)
    return [caption(int(labels[i]), attributes[i], int(templates[i]), [m for m in MENTIONS if named[m][i]])
            for i in range(n)]


def words(text: str) -> list[str]:
    """The known words of a caption, lower case, synonyms replaced; unknown words raise an error naming the
    vocabulary (and the nearest known word).

    >>> words("A big Purple 3, in the middle")
    ['a', 'large', 'purple', '3', 'in', 'the', 'centre']
    """
    found = [SYNONYMS.get(w, w) for w in re.findall(r"[a-z0-9]+", text.lower())]
    unknown = [w for w in found if w not in WORD_ID or w in (PAD, EMPTY)]  # the markers are no words to type
    if unknown:
        typeable = [w for w in [*VOCABULARY, *SYNONYMS] if w not in (PAD, EMPTY)]  # no hint to type a marker
        hints = [f"{w!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(w, typeable, 1))
                 else repr(w) for w in unknown]
        known = ", ".join(typeable)
        raise ValueError(f"Unknown word(s) {', '.join(hints)}. The models only know these words: {known}.")
    if len(found) > MAX_WORDS:
        raise ValueError(f"The caption has {len(found)} words; the models read at most {MAX_WORDS}. Say less, "
                         f"e.g. 'a small red seven on the left'.")
    return found


def tokenize(captions: list[str] | str) -> torch.Tensor:
    """Captions -> token ids (N, MAX_WORDS), padded with 0; an empty caption is the single EMPTY token.

    >>> tokenize("a red 7")[0, :4].tolist() == [WORD_ID["a"], WORD_ID["red"], WORD_ID["7"], 0]
    True
    """
    captions = [captions] if isinstance(captions, str) else list(captions)
    ids = torch.zeros(len(captions), MAX_WORDS, dtype=torch.long)
    for i, text in enumerate(captions):
        found = words(text) or [EMPTY]
        ids[i, :len(found)] = torch.tensor([WORD_ID[w] for w in found])
    return ids


def drop_captions(tokens: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each caption by the empty caption with probability p (caption dropout, for classifier-free guidance).

    >>> drop_captions(tokenize(["a red 7"]), 1.0).equal(tokenize([""]))
    True
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p is a probability (e.g. 0.1 drops one caption in ten), got {p}.")
    drop = (torch.rand(len(tokens), generator=generator) < p).to(tokens.device)
    empty = torch.zeros_like(tokens)
    empty[:, 0] = WORD_ID[EMPTY]
    return torch.where(drop[:, None], empty, tokens)


def is_held_out(labels: torch.Tensor, inks: torch.Tensor) -> torch.Tensor:
    """Which (digit, ink index) pairs are held out of training, as a boolean tensor."""
    held = torch.zeros(len(labels), dtype=torch.bool)
    for digit, ink in HELD_OUT:
        held |= (labels == digit) & (inks == INKS.index(ink))
    return held


def captioned_digits(split: str = "train", n: int | None = None, copies: int = 1, seed: int = 0,
                     source: str = "auto") -> tuple[TensorDataset, list[str]]:
    """Colour digits with a caption each: (TensorDataset(images, labels, attributes, tokens), captions).

    Each grey digit is painted `copies` times with fresh attributes (drawn as the colour digits' are), so a few
    thousand digits give many pictures. In the training split the HELD_OUT (digit, ink) pairs are repainted with
    another ink; the test split keeps them, so that they can be asked for.

        train, texts = captioned_digits("train", copies=3)
    """
    grey = load_dataset("mnist", split, n=n, source=source)
    g = torch.Generator().manual_seed(seed)
    images, labels, attributes = [], [], []
    for copy in range(copies):
        a = draw_colour_attributes(len(grey), g)
        y = grey.tensors[1]
        if split == "train":
            while (held := is_held_out(y, a[:, 0])).any():  # another ink (the background still allows it)
                a[held] = draw_colour_attributes(int(held.sum()), g)
        images.append(paint_digits(grey.tensors[0], a))
        labels.append(y)
        attributes.append(a)
    labels, attributes = torch.cat(labels), torch.cat(attributes)
    texts = random_captions(labels, attributes, g)
    return TensorDataset(torch.cat(images), labels, attributes, tokenize(texts)), texts


def prompts_for(n: int, held_out: bool = False, template: int = 0) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """`n` captions naming a digit and an ink, cycling through the (digit, ink) pairs seen in training (or only the
    HELD_OUT ones): (captions, digits asked for (n,), ink indices asked for (n,)).

    >>> prompts_for(3)[0]
    ['a red zero', 'an orange one', 'a yellow two']
    >>> prompts_for(2, held_out=True)[0]
    ['a green seven', 'a red two']
    """
    pairs = [(d, INKS.index(i)) for d, i in HELD_OUT] if held_out else [
        (d, i) for i in range(len(INKS)) for d in range(10) if (d, INKS[i]) not in HELD_OUT]
    if not held_out:  # digit and ink both change from one caption to the next
        pairs = sorted(pairs, key=lambda p: ((p[1] - p[0]) % len(INKS), p[0]))
    chosen = [pairs[k % len(pairs)] for k in range(n)]
    digits = torch.tensor([d for d, _ in chosen])
    inks = torch.tensor([i for _, i in chosen])
    texts = [caption(d, [i, 0, 0, 0], template, mention=("digit", "ink")) for d, i in chosen]
    return texts, digits, inks
