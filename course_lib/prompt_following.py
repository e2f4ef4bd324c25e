"""Does a picture show what its caption asked for? Lesson 10's measure of prompt following.

Colour digits are simple enough to read without a second trained network: the background is the colour of the
border, the ink is the colour of the pixels furthest from it, the digit's box gives its size and position, and the
digit itself is read by the course's digit classifier after the ink is turned back into a grey MNIST-style digit
(white on black, scaled into a 20 x 20 box and centred, as MNIST's digits are).

    >>> from course_lib.data import load_dataset
    >>> x, y, a = load_dataset("colour_digits", "test", n=200, source="bundled").tensors
    >>> read = read_attributes(x)
    >>> bool((read["ink"] == a[:, 0]).float().mean() > 0.95)
    True
"""

import torch
import torch.nn.functional as F

from .data import BACKGROUNDS, INK_COLOURS, POSITIONS, SIZES, check_batch
from .metrics import digit_classifier

_INKS = torch.tensor(list(INK_COLOURS.values()))  # (8, 3)
_BACKS = torch.tensor(list(BACKGROUNDS.values()))  # (4, 3)
LARGE_HEIGHT = 14  # an ink box at least this tall is "large": large digits are about 20 pixels tall, small ones 11-13


def _nearest(colours: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    return torch.cdist(colours, palette).argmin(1)


def _nearest_ink(ink: torch.Tensor, back: torch.Tensor) -> torch.Tensor:
    """The palette ink whose line from the background passes closest to the measured ink colour: thin strokes mix
    ink and background (colour = back + a (ink - back), a < 1), so the colour itself may sit between two inks."""
    towards = _INKS[None] - back[:, None]  # (N, 8, 3)
    seen = (ink - back)[:, None]  # (N, 1, 3)
    a = ((seen * towards).sum(2) / towards.pow(2).sum(2).clamp(min=1e-6)).clamp(0.5, 1)[..., None]
    return (seen - a * towards).norm(dim=2).argmin(1)


@torch.no_grad()
def ink_alpha(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(alpha (N, 1, 28, 28) in [0, 1], ink RGB (N, 3), background RGB (N, 3)) read from colour images.

    The background is the median colour of the one-pixel border; the ink, the mean colour of the pixels at least 70%
    as far from it as the furthest one; alpha, how far each pixel lies from the background towards the ink.
    """
    if check_batch(images, "colour images").shape[1:] != (3, 28, 28):
        raise ValueError(f"Expected colour digits shaped (B, 3, 28, 28), got {tuple(images.shape)}.")
    x = images.float().cpu().clamp(0, 1)
    n = len(x)
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, 1:-1, 0], x[:, :, 1:-1, -1]], dim=2)  # (N, 3, 108)
    back = border.median(dim=2).values  # (N, 3)
    distance = (x - back[:, :, None, None]).norm(dim=1).view(n, -1)  # (N, 784)
    strong = distance >= 0.7 * distance.max(1, keepdim=True).values
    flat = x.view(n, 3, -1)
    ink = (flat * strong[:, None]).sum(2) / strong.sum(1, keepdim=True).clamp(min=1)  # (N, 3)
    direction = ink - back
    alpha = ((x - back[:, :, None, None]) * direction[:, :, None, None]).sum(1, keepdim=True)
    alpha = alpha / direction.pow(2).sum(1).clamp(min=1e-6)[:, None, None, None]
    return alpha.clamp(0, 1), ink, back


@torch.no_grad()
def mnist_style(alpha: torch.Tensor, threshold: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey digits laid out as MNIST's: the ink's box scaled to fit 20 x 20 (aspect kept), centred by its centre of
    mass in 28 x 28. Returns (digits (N, 1, 28, 28), boxes (N, 4) as top, left, bottom, right; an empty image has
    the whole frame as its box)."""
    digits, boxes = torch.zeros_like(alpha), []
    for i, a in enumerate(alpha[:, 0]):
        rows, cols = (a > threshold).any(1).nonzero(), (a > threshold).any(0).nonzero()
        if len(rows) == 0:
            boxes.append((0, 0, 27, 27))
            continue
        top, bottom, left, right = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
        boxes.append((top, left, bottom, right))
        crop = a[top:bottom + 1, left:right + 1]
        h, w = crop.shape
        scale = 20 / max(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        crop = F.interpolate(crop[None, None], size=size, mode="bilinear", align_corners=False, antialias=True)[0, 0]
        mass = crop.sum().clamp(min=1e-6)
        cy = (crop.sum(1) * torch.arange(size[0])).sum() / mass
        cx = (crop.sum(0) * torch.arange(size[1])).sum() / mass
        y0 = int(round(14 - float(cy))) if size[0] < 28 else 0
        x0 = int(round(14 - float(cx))) if size[1] < 28 else 0
        y0, x0 = min(max(y0, 0), 28 - size[0]), min(max(x0, 0), 28 - size[1])
        digits[i, 0, y0:y0 + size[0], x0:x0 + size[1]] = crop
    return digits.clamp(0, 1), torch.tensor(boxes)


@torch.no_grad()
def read_attributes(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """What colour-digit images show, as indices into the data's names: digit (0-9), ink (INK_COLOURS), background
    (BACKGROUNDS), size (SIZES) and position (POSITIONS; "centre" for large digits), each a tensor (N,)."""
    alpha, ink, back = ink_alpha(images)
    digits, boxes = mnist_style(alpha)
    classifier = digit_classifier()
    digit = torch.cat([classifier(b).argmax(1) for b in digits.split(1000)])
    top, left, bottom, right = boxes.T
    large = (bottom - top + 1) >= LARGE_HEIGHT
    cy, cx = (top + bottom) / 2, (left + right) / 2
    # a small digit sits in a 16-pixel square whose centre is at 14 (centre), 6 (left, top) or 22 (right, bottom)
    offset = torch.stack([cy - 13.5, cx - 13.5], 1)
    where = torch.tensor([[0.0, 0.0], [0.0, -8.0], [0.0, 8.0], [-8.0, 0.0], [8.0, 0.0]])  # POSITIONS order
    position = torch.where(large, POSITIONS.index("centre"), torch.cdist(offset, where).argmin(1))
    return {"digit": digit, "ink": _nearest_ink(ink, back), "background": _nearest(back, _BACKS),
            "size": torch.where(large, SIZES.index("large"), SIZES.index("small")), "position": position}


def prompt_following(images: torch.Tensor, asked: dict[str, torch.Tensor]) -> dict[str, float]:
    """The share of images that show each asked-for attribute, and of those that show all of them.

    `asked` maps an attribute ("digit", "ink", "background", "size", "position") to what each caption asked for,
    a tensor (N,) of indices, with -1 where that caption did not name it.

        prompt_following(samples, {"digit": labels, "ink": inks})  # {'digit': 0.93, 'ink': 0.98, 'all': 0.91}
    """
    read = read_attributes(images)
    unknown = set(asked) - set(read)
    if unknown:
        raise ValueError(f"Unknown attribute(s) {sorted(unknown)}; the reader knows {', '.join(read)}.")
    shares, every = {}, torch.ones(len(images), dtype=torch.bool)
    for name, wanted in asked.items():
        wanted = torch.as_tensor(wanted).long().cpu()
        if wanted.shape != (len(images),):
            raise ValueError(f"asked[{name!r}] needs one entry per image, shaped ({len(images)},), got "
                             f"{tuple(wanted.shape)}; use -1 where a caption does not name it.")
        named = wanted >= 0
        hit = read[name] == wanted
        every &= hit | ~named
        shares[name] = hit[named].float().mean().item() if named.any() else float("nan")
    shares["all"] = every.float().mean().item()
    return shares
