"""Is a picture made of another picture's patches? The measures of lesson 7's SinGAN: new pictures (pixel distance
to the training picture, diversity between samples, both 0 for copies), made of the picture's own patches (patch
distance, both ways) with its amount of fine detail (`detail`: a blurred copy has far less, noise far more).

    >>> x = torch.rand(1, 3, 16, 16)
    >>> sorted(sample_report(torch.cat([x, x.flip(-1)]), x))
    ['detail', 'diversity', 'patch distance', 'pixel distance to the image']
"""

import math

import torch
import torch.nn.functional as F

from .singan import resize


def _nearest_patch(queries: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """For each row of queries (Q, D), the Euclidean distance to its nearest row of bank (P, D), as an RMS per number.
    In float64, so that a patch that is in the bank gives 0 (up to 1e-8)."""
    return torch.cdist(queries.double(), bank.double()).min(dim=1).values.float() / math.sqrt(bank.shape[1])


def patches(image: torch.Tensor, size: int = 7, stride: int = 1) -> torch.Tensor:
    """Every size x size patch of one image (1 or no batch dim, 3, H, W), `stride` pixels apart: (P, 3 * size^2)."""
    return F.unfold(image.reshape(1, *image.shape[-3:]).float().cpu(), size, stride=stride).squeeze(0).T


def patch_distance(images: torch.Tensor, reference: torch.Tensor, size: int = 7, stride: int = 2) -> torch.Tensor:
    """How far the images' patches are from the reference's, both ways (a Chamfer distance between sets of patches):
    the mean distance from each size x size patch of an image to its nearest patch of `reference` (1, 3, H, W)
    (are its patches real?) and from each patch of the reference to its nearest patch of the image (are the real
    patches there?), averaged; distances are RMS over a patch's numbers, patches taken every `stride` pixels.
    Returns (B,). Small for a rearrangement of the reference's own pieces, whatever the layout; large for noise (no
    real patch), and for a blurred image (real patches too, but none of the sharp ones).

    >>> x = torch.rand(1, 3, 16, 16)
    >>> round(patch_distance(x.flip(-1), x.flip(-1)).item(), 6), round(patch_distance(x, x.flip(-1)).item(), 2) > 0
    (0.0, True)
    """
    bank_all, bank_strided = patches(reference, size), patches(reference, size, stride)
    out = []
    for image in images:
        to_reference = _nearest_patch(patches(image, size, stride), bank_all).mean()
        from_reference = _nearest_patch(bank_strided, patches(image, size)).mean()
        out.append((to_reference + from_reference) / 2)
    return torch.stack(out)


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """RMS difference per image between images a (B, C, H, W) and b (B or 1, C, H, W): (B,)."""
    return (a - b).pow(2).flatten(1).mean(dim=1).sqrt()


def diversity(samples: torch.Tensor) -> float:
    """The mean pixel_distance between all pairs of samples: 0 when they are all the same picture."""
    pairs = [(i, j) for i in range(len(samples)) for j in range(i + 1, len(samples))]
    if not pairs:
        raise ValueError("Diversity needs at least two samples.")
    return float(torch.stack([pixel_distance(samples[i:i + 1], samples[j:j + 1]) for i, j in pairs]).mean())


def blurred(image: torch.Tensor, factor: float = 0.25) -> torch.Tensor:
    """The image shrunk by `factor` and enlarged back: the same layout without its detail (a baseline)."""
    small = [max(1, round(s * factor)) for s in image.shape[-2:]]
    return resize(resize(image, small), image.shape[-2:]).clamp(0, 1)


def detail(images: torch.Tensor) -> torch.Tensor:
    """How much fine detail each image (B, 3, H, W) has: the RMS of what blurring removes, x - blurred(x, 0.5).
    (B,). A good sample has about as much as the training image; a blurred copy far less, noise far more."""
    return pixel_distance(images, blurred(images, 0.5))


def sample_report(samples: torch.Tensor, image: torch.Tensor) -> dict[str, float]:
    """What the lesson measures on SinGAN's samples (n, 3, H, W) of `image` (1, 3, H, W). New pictures? "pixel
    distance to the image" and "diversity" between them, both well above 0 (a copy has 0). Made of the image's own
    patches? "patch distance" (both ways; far below noise's), and "detail" near the image's own (a blurred copy has a
    tenth of it, noise three times).

        sample_report(sample(singan, 8), singan.image)
    """
    image = image.cpu()
    return {"pixel distance to the image": float(pixel_distance(samples, image).mean()),
            "diversity": diversity(samples) if len(samples) > 1 else 0.0,
            "patch distance": float(patch_distance(samples, image).mean()),
            "detail": float(detail(samples).mean())}
