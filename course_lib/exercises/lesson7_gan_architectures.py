"""Lesson 7 exercises: AdaIN, the fade-in blend, the mode-seeking term, truncation at psi = 0, where identity lives."""

import torch

from ..gan_variants import mode_seeking_term
from ..progressive import fade
from ..stylegan import adain
from ._base import Exercise, register


def adain_solution(h, scale, bias):
    # AdaIN(h) = (1 + scale) * (h - mu(h)) / sigma(h) + bias, mu and sigma over each feature map's pixels
    mu = h.mean(dim=(2, 3), keepdim=True)
    sigma = (h.var(dim=(2, 3), keepdim=True, unbiased=False) + 1e-5).sqrt()
    return (1 + scale[:, :, None, None]) * (h - mu) / sigma + bias[:, :, None, None]


def _features():
    with torch.random.fork_rng(devices=[]):  # fixed inputs, without moving the student's random generator
        torch.manual_seed(7)
        return torch.randn(2, 3, 5, 5) * 3 + 1, torch.randn(2, 3) * 0.5, torch.randn(2, 3)


def _grade_adain(fn):
    h, scale, bias = _features()
    got, want = fn(h, scale, bias), adain(h, scale, bias)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return False, f"return a tensor shaped like h, {tuple(want.shape)}; scale and bias are (B, C): add [:, :, None, None]."
    if torch.allclose(got, want, atol=1e-4):
        return True, "every feature map is first made mean 0 and spread 1, then the style sets its spread and mean."
    whole = (1 + scale[:, :, None, None]) * (h - h.mean()) / h.std() + bias[:, :, None, None]
    if torch.allclose(got, whole, atol=1e-3):
        return False, "normalise each feature map on its own: mean and std over its pixels, dim=(2, 3), keepdim=True."
    if torch.allclose(got, scale[:, :, None, None] * (h - h.mean((2, 3), True)) / h.std((2, 3), keepdim=True, unbiased=False)
                      + bias[:, :, None, None], atol=1e-3):
        return False, "the style's scale multiplies by (1 + scale), so a zero style leaves the normalised map as it is."
    return False, "(1 + scale) * (h - mean) / sqrt(var + 1e-5) + bias, with mean and var over dim=(2, 3)."


def fade_solution(old, new, alpha):
    # the new layers' output weighs alpha, the old (upsampled) output 1 - alpha
    return (1 - alpha) * old + alpha * new


def _grade_fade(fn):
    old, new = torch.zeros(3), torch.ones(3) * 2
    for alpha in (0.0, 0.3, 1.0):
        got = fn(old, new, alpha)
        if got is None:
            return False, "your function returned None; return the blend."
        if torch.allclose(torch.as_tensor(got).float(), fade(new, old, alpha)):
            return False, "the other way round: at alpha = 0 only the old network shows, at alpha = 1 only the new."
        if not torch.allclose(torch.as_tensor(got).float(), fade(old, new, alpha)):
            return False, f"at alpha = {alpha} expected {fade(old, new, alpha).tolist()}: (1 - alpha) old + alpha new."
    return True, "with alpha rising slowly, the untrained new layers start with no say and take over gradually."


def mode_seeking_solution(fake_1, fake_2, z_1, z_2):
    # 1 / (mean over the batch of  mean|G(z1) - G(z2)| / mean|z1 - z2|  + eps): small when images differ a lot
    ratio = (fake_1 - fake_2).abs().flatten(1).mean(1) / (z_1 - z_2).abs().flatten(1).mean(1)
    return 1 / (ratio.mean() + 1e-5)


def _grade_mode_seeking(fn):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        f1, f2, z1, z2 = torch.rand(4, 1, 6, 6), torch.rand(4, 1, 6, 6), torch.randn(4, 8), torch.randn(4, 8)
    got, want = fn(f1, f2, z1, z2), mode_seeking_term(f1, f2, z1, z2)
    if got is None:
        return False, "your function returned None; return one number."
    got = torch.as_tensor(got).float()
    if got.numel() != 1:
        return False, "return a single number for the batch (the mean over its pairs, inverted)."
    ratio = 1 / want - 1e-5
    if torch.isclose(got, ratio, rtol=1e-3):
        return False, "that is the ratio itself; G minimizes the loss, so the term is its inverse, 1 / (ratio + eps)."
    if not torch.isclose(got, want, rtol=1e-3):
        return False, "per pair: mean |fake_1 - fake_2| / mean |z_1 - z_2|; average over the batch; then 1 / (that + 1e-5)."
    return True, "minimizing it pushes G to turn distant noises into distant images, one cure for mode collapse."


def _grade_psi_zero(answer):
    choice = str(answer).strip().lower()
    if choice == "b":
        return True, "w' = w_avg + 0 (w - w_avg) = w_avg for every z: one image, the 'average' digit (noise aside)."
    if choice in ("a", "c"):
        return False, "put psi = 0 into w' = w_avg + psi (w - w_avg): what is left of z?"
    return False, "answer 'a', 'b' or 'c'."


def _grade_identity_level(answer):
    choice = str(answer).strip().lower()
    if choice == "a":
        return True, "the 7 x 7 and 14 x 14 layers lay out the strokes, hence which digit it is; the 28 x 28 " \
                     "layers only redraw them."
    if choice in ("b", "c"):
        return False, "look at the mixing grid with crossover 4: along a row the digit keeps its class, so the class " \
                      "comes from the source of the coarser styles."
    return False, "answer 'a', 'b' or 'c'."


register(
    adain=Exercise("Write adain(h, scale, bias): AdaIN of feature maps h (B, C, H, W) with a style's scale and bias "
                   "(B, C).", _grade_adain, adain_solution),
    fade_in=Exercise("Write fade(old, new, alpha): the fade-in blend of the old network's output and the new layers'.",
                     _grade_fade, fade_solution),
    mode_seeking=Exercise("Write mode_seeking(fake_1, fake_2, z_1, z_2): MSGAN's term, which G minimizes.",
                          _grade_mode_seeking, mode_seeking_solution),
    psi_zero=Exercise("With truncation psi = 0, what do 16 different z give? (a) 16 different digits, sharper than "
                      "usual; (b) 16 copies of one image, the average w; (c) pure noise.", _grade_psi_zero,
                      "b: w' = w_avg for every z."),
    identity_level=Exercise("Which styles decide which digit is drawn? (a) the coarser ones (7 x 7 and 14 x 14 "
                            "layers); (b) the fine ones (28 x 28 layers); (c) the per-layer noise.",
                            _grade_identity_level,
                            "a: the coarser styles; the class of a mixed image follows their source."),
)
