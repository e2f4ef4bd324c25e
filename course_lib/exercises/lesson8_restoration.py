"""Lesson 8 exercises: PSNR, the sub-pixel rearrangement of PixelShuffle, why the MSE network wins on PSNR and loses
on looks, where SDEdit starts, RePaint's merge, and what RePaint's resampling costs.

The graders take their expected values from the library: `superres.psnr` on pairs whose images have errors of very
different sizes (so averaging the PSNRs and taking the PSNR of the averaged error differ), `F.pixel_shuffle` on a
non-square input for two factors r, `editing.sdedit_start` and `editing.repaint_merge` with the same schedule, images
and noise, and the number of calls a stand-in network receives inside `editing.repaint`. Each typical slip gives
numbers of its own, so the grader can name it.

    >>> import torch.nn.functional as F
    >>> h = torch.arange(2 * 8 * 3 * 5.0).view(2, 8, 3, 5)
    >>> torch.equal(pixel_shuffle_solution(h, 2), F.pixel_shuffle(h, 2))
    True
"""

import inspect
import math

import torch
import torch.nn.functional as F

from ..diffusion import DiffusionSchedule
from ..editing import repaint, repaint_merge, sdedit_start
from ..superres import psnr
from ._base import Exercise, choice, number, register, whole_number

_SCHEDULE = DiffusionSchedule(T=1000)  # lesson 4's linear schedule, the one the lesson's U-Net was trained with


def _close(got, want, atol=1e-5):
    return got.shape == want.shape and torch.allclose(got, want, atol=atol)


# ---------------------------------------------------------------- PSNR


def psnr_solution(prediction, target):
    # PSNR = 10 log10(peak^2 / MSE), peak 1 for pixels in [0, 1]: the MSE of each image, then the mean of the dBs
    mse = (prediction - target).pow(2).flatten(1).mean(dim=1)  # (B,): one error per image
    return (10 * torch.log10(1 / mse)).mean().item()  # one number, a float, as the library's psnr returns


def _psnr_pairs():
    """(prediction, target) batches in [0, 1]: four digits-sized images with errors from small to large (their mean
    PSNR and the PSNR of their mean error are far apart), three 7 x 7 ones, and a batch of one."""
    gen = torch.Generator().manual_seed(81)
    pairs = []
    for shape, levels in (((4, 1, 28, 28), (0.02, 0.06, 0.15, 0.35)), ((3, 1, 7, 7), (0.1, 0.05, 0.2)),
                          ((1, 1, 28, 28), (0.08,))):
        target = torch.rand(shape, generator=gen)
        noise = torch.randn(shape, generator=gen) * torch.tensor(levels).view(-1, 1, 1, 1)
        pairs.append(((target + noise).clamp(0, 1), target))
    return pairs


# a PSNR computed from one MSE (a number or one per image) with a typical slip, and the slip's hint
_PSNR_SLIPS = [
    (lambda mse: 20 * torch.log10(1 / mse), "PSNR is 10 log10(1 / MSE): 10 for the squared error (20 log10 goes with "
                                            "the root of it, 20 log10(1 / RMSE)). Yours is twice the dB."),
    (lambda mse: 10 * torch.log(1 / mse), "decibels use the base-10 logarithm, torch.log10; torch.log is the natural "
                                          "one, which gives 2.3 times the dB."),
    (lambda mse: 10 * torch.log10(255**2 / mse), "the pixels here are in [0, 1], so the peak is 1: PSNR = 10 log10(1 / "
                                                 "MSE). 255 is the peak of 8-bit pixels 0 .. 255; it adds 48 dB."),
    (lambda mse: 10 * torch.log10(255 / mse), "the pixels here are in [0, 1], so the peak is 1: PSNR = 10 log10(1 / "
                                              "MSE), with no 255 in it."),
    (lambda mse: 10 * torch.log10(mse), "the sign is flipped: PSNR is 10 log10(1 / MSE), positive, and higher is "
                                        "better (a smaller error)."),
    (lambda mse: 10 * torch.log10(1 / mse.sqrt()), "use the MSE itself, the mean of the squared differences, not its "
                                                   "root: 10 log10(1 / MSE)."),
]


def _grade_psnr(fn):
    for prediction, target in _psnr_pairs():
        got = fn(prediction.clone(), target.clone())
        if got is None:
            return False, "your function returned None; return the PSNR in dB, one number for the batch."
        per_image = (prediction - target).pow(2).flatten(1).mean(dim=1)  # (B,)
        if isinstance(got, torch.Tensor) and got.numel() > 1:
            if got.numel() == len(target) and torch.allclose(got.detach().flatten().float(),
                                                             10 * torch.log10(1 / per_image), atol=1e-3):
                return False, (f"right for each image, but that is {got.numel()} numbers, one per image: return their "
                               f"mean over the batch, .mean(), one number as psnr does.")
            return False, f"return one number for the batch, a float or a 0-d tensor; got shape {tuple(got.shape)}."
        value = number(got.detach() if isinstance(got, torch.Tensor) else got)
        if value is None:
            return False, f"return the PSNR as one number, a float or a 0-d tensor; got a {type(got).__name__}."
        want = psnr(prediction, target)
        if abs(value - want) <= 1e-3 + 1e-5 * abs(want):
            continue
        pooled = per_image.mean()  # the MSE of the whole batch at once

        def matches(db):
            return abs(value - db) <= 1e-3 + 1e-5 * abs(db)

        if matches((10 * torch.log10(1 / pooled)).item()):
            return False, ("that is the PSNR of the batch's pooled MSE. Take the MSE of each image, .flatten(1).mean("
                           "dim=1), its PSNR, then the mean of the PSNRs: one bad image should not drown the rest, as "
                           "it does in the pooled error.")
        summed = (prediction - target).pow(2).flatten(1).sum(dim=1)  # the squared errors added up, not averaged
        if matches((10 * torch.log10(1 / summed)).mean().item()):
            return False, ("the MSE is the mean of the squared differences over the image's pixels, not their sum: "
                           ".flatten(1).mean(dim=1).")
        for slip, hint in _PSNR_SLIPS:
            if matches(slip(per_image).mean().item()):
                return False, hint
            if matches(slip(pooled).item()):
                return False, hint + " Also: take one MSE per image, not one for the whole batch."
        return False, (f"expected {want:.3f} dB, got {value:.3f}. mse = ((prediction - target)^2).flatten(1).mean("
                       f"dim=1), one per image; return (10 * torch.log10(1 / mse)).mean().")
    return True, ("the same dB as the library's psnr. +6 dB is half the error's amplitude; keep in mind that it "
                  "counts pixel errors, not whether the digit looks real.")


# ---------------------------------------------------------------- PixelShuffle: depth to space


def pixel_shuffle_solution(h, r):
    # (B, C r^2, H, W) -> (B, C, H r, W r): channel c r^2 + i r + j becomes pixel (i, j) of the pixel's r x r block
    B, channels, H, W = h.shape
    C = channels // (r * r)
    h = h.reshape(B, C, r, r, H, W)  # each group of r^2 channels split into the block's rows i and columns j
    h = h.permute(0, 1, 4, 2, 5, 3)  # (B, C, H, i, W, j): a block's rows next to the image's rows, columns likewise
    return h.reshape(B, C, H * r, W * r)


def _shuffle_cases():
    """(h, r): numbered channels (2, 8, 3, 5) with r = 2, then random ones (1, 18, 2, 4) with r = 3; H != W, so a
    swapped height and width shows."""
    return [(torch.arange(2 * 8 * 3 * 5, dtype=torch.float32).view(2, 8, 3, 5), 2),
            (torch.randn(1, 18, 2, 4, generator=torch.Generator().manual_seed(82)), 3)]


def _grade_pixel_shuffle(fn):
    for n, (h, r) in enumerate(_shuffle_cases()):
        B, channels, H, W = h.shape
        C = channels // (r * r)
        try:
            got = fn(h.clone(), r)
        except Exception as err:
            if not n:
                raise
            return False, (f"right for r = 2, but for h shaped {tuple(h.shape)} and r = {r} your function raised "
                           f"{type(err).__name__}: {err}. Use r, and C = channels // (r * r), not fixed numbers.")
        if got is None:
            return False, "your function returned None; return the rearranged tensor, shaped (B, C, H r, W r)."
        got, want = torch.as_tensor(got).float(), F.pixel_shuffle(h, r)
        if got.shape != want.shape:
            if n:
                return False, (f"right for r = 2, but for h shaped {tuple(h.shape)} and r = {r} the result should be "
                               f"{tuple(want.shape)}, got {tuple(got.shape)}: use r, and C = channels // (r * r), "
                               f"not fixed numbers.")
            return False, (f"h shaped (B, C r^2, H, W) = {tuple(h.shape)} with r = {r} becomes (B, C, H r, W r) = "
                           f"{tuple(want.shape)}, got {tuple(got.shape)}.")
        if torch.equal(got, want):
            continue
        blocks = h.reshape(B, C, r, r, H, W)
        if torch.equal(got, h.reshape(B, C, H * r, W * r)):
            return False, ("a reshape alone keeps the numbers in memory order, so each channel becomes a strip of "
                           "rows. Split the channels, h.reshape(B, C, r, r, H, W), permute so that each block's rows "
                           "sit next to the image's rows, (B, C, H, r, W, r), then reshape.")
        if torch.equal(got, blocks.permute(0, 1, 4, 3, 5, 2).reshape(want.shape)):
            return False, ("every r x r block comes out transposed: of the two r axes after reshape(B, C, r, r, H, W), "
                           "the first is the row i in the block, the second the column j. permute(0, 1, 4, 2, 5, 3).")
        tf_order = h.reshape(B, r, r, C, H, W)
        if torch.equal(got, tf_order.permute(0, 3, 4, 1, 5, 2).reshape(want.shape)) or \
                torch.equal(got, tf_order.permute(0, 3, 4, 2, 5, 1).reshape(want.shape)):
            return False, ("the channels are grouped the other way: PixelShuffle takes channel c r^2 + i r + j to "
                           "output channel c, so each output channel's r^2 channels lie next to each other: "
                           "reshape(B, C, r, r, H, W), not (B, r, r, C, H, W) (TensorFlow's depth_to_space order).")
        if n:
            return False, "right for r = 2 but not for r = 3: use r, and C = channels // (r * r), not fixed numbers."
        return False, ("not F.pixel_shuffle's order: h.reshape(B, C, r, r, H, W).permute(0, 1, 4, 2, 5, 3) gives "
                       "(B, C, H, i, W, j); then reshape to (B, C, H r, W r).")
    return True, ("the same rearrangement as F.pixel_shuffle. SRResNet's convolution makes 4 x the channels at 7 x 7 "
                  "and this turns them into 2 x the size: every new pixel is computed, none interpolated.")


# ---------------------------------------------------------------- the paradox: PSNR against realism


def _grade_psnr_paradox(answer):
    picked = choice(answer, "abcd")
    if picked == "b":
        return True, ("many 28 x 28 digits shrink to the same 7 x 7 input, and the prediction with the least mean "
                      "squared error is their average: a blur, never far from any of them. SRGAN draws one sharp "
                      "digit; where its stroke is a pixel off, it is wrong twice. Fidelity and realism pull apart.")
    if picked == "a":
        return False, ("sharper is not closer: a sharp stroke drawn a pixel away from the true one is wrong where it "
                       "is and where it should have been. Which network was trained to make the squared error small?")
    if picked == "c":
        return False, ("bicubic knows nothing about digits; the MSE network learned from thousands of them the "
                       "average digit that fits the input, and that average is exactly what minimises the squared "
                       "error, which PSNR measures. Compare the three PSNRs the lesson measures.")
    if picked == "d":
        return False, ("the least squared error is the average of all the digits that fit the input, and an average "
                       "of sharp strokes is a blurred stroke, which no real digit has. Realism needs one sample, not "
                       "the average.")
    return False, "answer with one letter: 'a', 'b', 'c' or 'd'."


# ---------------------------------------------------------------- SDEdit: where it starts


def sdedit_start_solution(schedule, x, strength, eps):
    # t0 = round(strength * (T - 1)): steps run 0 .. T-1, so strength 1 is the last step, pure noise
    t0 = round(strength * (schedule.T - 1))
    x0 = 2 * x - 1  # the input in [0, 1] taken to the model's range [-1, 1]
    abar = schedule.alpha_bars[t0]
    return abar.sqrt() * x0 + (1 - abar).sqrt() * eps, t0  # x_t0 = sqrt(abar) x0 + sqrt(1 - abar) eps


def _sdedit_case():
    gen = torch.Generator().manual_seed(83)
    return torch.rand(3, 1, 28, 28, generator=gen), torch.randn(3, 1, 28, 28, generator=gen)


def _noised(schedule, x0, t, eps, swapped=False, squared=False):
    abar = schedule.alpha_bars[t]
    a, b = (abar, 1 - abar) if squared else (abar.sqrt(), (1 - abar).sqrt())
    return b * x0 + a * eps if swapped else a * x0 + b * eps


def _grade_sdedit_start(fn):
    x, eps = _sdedit_case()
    T = _SCHEDULE.T
    for strength in (0.35, 0.75, 1.0):  # 0.35 * 999 = 349.65 rounds up; 0.75 * 1000 = 750 is one step too far
        want, want_t0 = sdedit_start(_SCHEDULE, x, strength, eps)
        try:
            got = fn(_SCHEDULE, x.clone(), strength, eps.clone())
        except IndexError as err:
            if "valid indices" in str(err):  # schedule.alpha_bars[349.65]
                return False, (f"at strength {strength} your function indexed the schedule with a fraction ({err}): "
                               f"t0 is a step, a whole number, round(strength * (T - 1)) = {want_t0}.")
            return False, (f"at strength {strength} your function indexed past the end of the schedule ({err}): the "
                           f"steps run 0 .. T-1 = {T - 1}, so t0 = round(strength * (T - 1)), and strength 1 is step "
                           f"{T - 1}.")
        if got is None:
            return False, "your function returned None; return the pair (x_t0, t0)."
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return False, "return the pair (x_t0, t0): the noised input and the step it was noised to."
        x_t0, t0 = got
        if whole_number(x_t0) is not None and isinstance(t0, torch.Tensor) and t0.numel() > 1:
            return False, "the other way round: return (x_t0, t0), the image first, the step second."
        t0 = whole_number(t0)
        if t0 is None:
            return False, (f"t0 is a step, a whole number: round(strength * (T - 1)), {want_t0} at strength "
                           f"{strength}; got {got[1]!r:.40}.")
        if t0 != want_t0:
            if t0 == round(strength * T):
                return False, (f"t0 = {t0} is strength * T; the steps run 0 .. T-1 = {T - 1}, so t0 = round(strength "
                               f"* (T - 1)) = {want_t0} (and strength 1 lands on the last step, not past it).")
            if t0 == int(strength * (T - 1)):
                return False, (f"t0 = {t0}: int() cuts {strength * (T - 1):.2f} down; round it, round(strength * (T - "
                               f"1)) = {want_t0}.")
            return False, f"at strength {strength}, t0 = round(strength * (T - 1)) = {want_t0}; got {t0}."
        if not isinstance(x_t0, torch.Tensor) or x_t0.shape != x.shape:
            shape = tuple(x_t0.shape) if isinstance(x_t0, torch.Tensor) else type(x_t0).__name__
            return False, f"x_t0 is shaped like x {tuple(x.shape)}, got {shape}."
        x_t0 = x_t0.detach().float()
        if _close(x_t0, want):
            continue
        x0 = 2 * x - 1
        if _close(x_t0, _noised(_SCHEDULE, x, t0, eps)):
            return False, ("x is in [0, 1], but the model was trained on images in [-1, 1]: take x to 2 * x - 1 before "
                           "noising it, or the noised input is brighter than anything the model has seen.")
        if _close(x_t0, _noised(_SCHEDULE, (x + 1) / 2, t0, eps)):
            return False, "(x + 1) / 2 goes from [-1, 1] to [0, 1]; the input needs the other way, 2 * x - 1."
        if _close(x_t0, _noised(_SCHEDULE, x0, t0, eps, swapped=True)):
            return False, ("the two square roots are swapped: sqrt(abar_t0) scales the image, sqrt(1 - abar_t0) the "
                           "noise, x_t0 = sqrt(abar_t0) x0 + sqrt(1 - abar_t0) eps.")
        if _close(x_t0, _noised(_SCHEDULE, x0, t0, eps, squared=True)):
            return False, ("the square roots are missing: abar_t0 and 1 - abar_t0 are variances; x_t0 = sqrt(abar_t0) "
                           "x0 + sqrt(1 - abar_t0) eps.")
        if _close(x_t0, (want + 1) / 2):
            return False, ("leave x_t0 in the model's range: the sampler goes on from x_t0 as it is; only the final "
                           "image is taken back to [0, 1].")
        return False, (f"at strength {strength}: x_t0 = sqrt(abar_t0) (2x - 1) + sqrt(1 - abar_t0) eps, with abar_t0 = "
                       f"schedule.alpha_bars[t0].")
    return True, (f"the same start as the library's sdedit_start. A small strength keeps the input's layout and fixes "
                  f"little; strength 1 keeps almost nothing of it (sqrt(abar_{T - 1}) is "
                  f"{_SCHEDULE.sqrt_alpha_bars[T - 1].item():.3f}).")


# ---------------------------------------------------------------- RePaint: the merge


def repaint_merge_solution(schedule, x_generated, known, mask, t, eps):
    # m * (known noised to step t) + (1 - m) * x_generated, m = 1 on the known pixels; at t = -1 (the end), known as is
    if t < 0:
        known_t = known
    else:  # noised to the same level as the model's x_t, so the two parts fit together
        abar = schedule.alpha_bars[t]
        known_t = abar.sqrt() * known + (1 - abar).sqrt() * eps
    return mask * known_t + (1 - mask) * x_generated


def _merge_case():
    """x_generated, known (in [-1, 1]), a mask of scattered known pixels (1) and holes (0), and eps."""
    gen = torch.Generator().manual_seed(84)
    x_generated, known = torch.randn(2, 1, 28, 28, generator=gen), torch.rand(2, 1, 28, 28, generator=gen) * 2 - 1
    mask = (torch.rand(2, 1, 28, 28, generator=gen) < 0.6).float()
    mask[:, :, 14:, :] = 0  # and a hole, the lower half, as the lesson fills
    return x_generated, known, mask, torch.randn(2, 1, 28, 28, generator=gen)


def _grade_repaint_merge(fn):
    x_gen, known, mask, eps = _merge_case()
    for t in (300, 0, -1):
        try:
            got = fn(_SCHEDULE, x_gen.clone(), known.clone(), mask.clone(), t, eps.clone())
        except Exception as err:
            if t >= 0:
                raise
            return False, (f"at t = -1 your function raised {type(err).__name__}: {str(err).rstrip('.')}. t = -1 is "
                           f"the end of sampling, after the last step: there is no noise level to noise to; put the "
                           f"known pixels back as they are, mask * known + (1 - mask) * x_generated.")
        if got is None:
            return False, "your function returned None; return the merged x_t, shaped like x_generated."
        got = torch.as_tensor(got).detach().float()
        if got.shape != x_gen.shape:
            return False, f"the merged x_t is shaped like x_generated {tuple(x_gen.shape)}, got {tuple(got.shape)}."
        want = repaint_merge(_SCHEDULE, x_gen, known, mask, t, eps)
        if _close(got, want):
            continue
        known_t = known if t < 0 else _noised(_SCHEDULE, known, t, eps)
        if _close(got, (1 - mask) * known_t + mask * x_gen):
            return False, ("the mask is the other way round: m = 1 marks the known pixels, which come from the known "
                           "image; the model's x_generated fills where m = 0: m * known_t + (1 - m) * x_generated.")
        if t >= 0 and _close(got, mask * known + (1 - mask) * x_gen):
            return False, (f"at t = {t} the known pixels go in noised to step t, sqrt(abar_t) known + sqrt(1 - abar_t) "
                           f"eps: x_generated is a noisy x_t, and clean pixels next to noisy ones are a picture the "
                           f"model never saw.")
        if t < 0 and _close(got, mask * _noised(_SCHEDULE, known, _SCHEDULE.T - 1, eps) + (1 - mask) * x_gen):
            return False, ("at t = -1 you noised the known image, and alpha_bars[-1] is the last step, T - 1: pure "
                           "noise. t = -1 is the end of sampling: put the known pixels back as they are.")
        if t >= 0 and _close(got, mask * _noised(_SCHEDULE, 2 * known - 1, t, eps) + (1 - mask) * x_gen):
            return False, "known is already in [-1, 1] (the model's range): use it as it is, without 2 * known - 1."
        if t >= 0 and _close(got, mask * known_t + (1 - mask) * _noised(_SCHEDULE, x_gen, t, eps)):
            return False, ("x_generated is already the model's x_t, at step t: noise only the known image, and take "
                           "x_generated as it is.")
        holes = mask == 0
        if t >= 0 and _close(got[holes], x_gen[holes]):
            rest = (got - math.sqrt(_SCHEDULE.alpha_bars[t]) * known)[~holes] / math.sqrt(1 - _SCHEDULE.alpha_bars[t])
            if 0.8 < rest.std().item() < 1.2:
                return False, "use the eps you are given, not noise of your own (the checker compares with that eps)."
        return False, (f"at t = {t}: m * known_t + (1 - m) * x_generated, with known_t = sqrt(abar_t) known + sqrt(1 - "
                       f"abar_t) eps for t >= 0 and known_t = known at t = -1.")
    return True, ("the same merge as the library's repaint_merge: the model only ever completes a noisy picture whose "
                  "known part is at its own noise level, and at the end the known pixels are exactly the input's.")


# ---------------------------------------------------------------- RePaint: what resampling costs


_REPAINT_DEFAULTS = inspect.signature(repaint).parameters
_STEPS, _RESAMPLE = _REPAINT_DEFAULTS["steps"].default, _REPAINT_DEFAULTS["resample"].default


def _repaint_calls(steps: int = _STEPS, resample: int = _RESAMPLE) -> int:
    """How many times `editing.repaint` calls the network, counted on a stand-in that predicts no noise."""
    calls = []
    repaint(lambda x, t: calls.append(1) or torch.zeros_like(x), _SCHEDULE, torch.zeros(1, 1, 28, 28),
            torch.ones(1, 1, 28, 28), steps=steps, resample=resample, generator=torch.Generator().manual_seed(0))
    return len(calls)


def _repaint_calls_solution() -> str:
    calls = _repaint_calls()
    if calls == (_STEPS - 1) * _RESAMPLE + 1:
        why = (f"each of the first {_STEPS - 1} steps is done {_RESAMPLE} times, the last step, to the clean image, "
               f"once: ({_STEPS} - 1) x {_RESAMPLE} + 1 = {calls}")
    else:
        why = "counted on a stand-in network through editing.repaint"
    return f"{calls} network calls ({why}); going back up between tries is closed-form noise, no call."


def _grade_repaint_calls(answer):
    value = whole_number(answer)
    if value is None:
        return False, f"give a whole number, the count of network calls; {answer!r} is not one."
    want, steps, resample = _repaint_calls(), _STEPS, _RESAMPLE
    if value == want:
        return True, (f"{_repaint_calls_solution()} That is about {resample} times plain sampling's {steps}: the "
                      f"price of letting the known and the generated parts agree.")
    if value == steps:
        return False, f"that counts the steps; RePaint does each step up to {resample} times (resample={resample})."
    if value == steps * resample:
        return False, ("nearly: read repaint's loop. The last step goes to t = -1, the clean image, where the known "
                       "pixels are put back; there is nothing to resample after it, so it is done once.")
    if value in ((steps - 1) * resample, (steps - 1) * resample - 1):
        return False, "the last step, to the clean image, also calls the network, once."
    if value in ((steps - 1) * (2 * resample - 1) + 1, steps * (2 * resample - 1), 2 * steps * resample):
        return False, ("going back up a step between tries is no network call: it is noise added in closed form, "
                       "q(x_t | x_t-1), as in the forward process.")
    return False, (f"count it: call repaint with a stand-in network that counts its calls, e.g. calls = []; "
                   f"repaint(lambda x, t: calls.append(1) or torch.zeros_like(x), schedule, known, mask, "
                   f"steps={steps}, resample={resample}); len(calls).")


register(
    psnr=Exercise(
        "Write psnr(prediction, target): the peak signal-to-noise ratio in dB of images in [0, 1], shaped (B, C, H, "
        "W): per image, then averaged over the batch (one number).", _grade_psnr, psnr_solution,
    ),
    pixel_shuffle=Exercise(
        "Write pixel_shuffle(h, r) with reshape and permute: h (B, C r^2, H, W) -> (B, C, H r, W r), the same "
        "rearrangement as torch.nn.functional.pixel_shuffle (nn.PixelShuffle).", _grade_pixel_shuffle,
        pixel_shuffle_solution,
    ),
    psnr_paradox=Exercise(
        "Three upscalers of the same 7 x 7 digits: bicubic, SRResNet trained with the MSE, and SRGAN (the same "
        "generator, trained with a perceptual and an adversarial loss). Which is true? (a) SRGAN has both the highest "
        "PSNR and the most realistic digits: it is the sharpest, so the closest to the truth. (b) The MSE network has "
        "the highest PSNR, SRGAN the most realistic digits: the prediction with the least squared error is the "
        "average of all the digits that fit the input, a blur. (c) Bicubic has the highest PSNR: it invents nothing, "
        "so it cannot be wrong. (d) The MSE network has both: the smallest error is the most realistic digit.",
        _grade_psnr_paradox,
        "b: the MSE-optimal prediction is the average of all the high-resolution digits that fit the input. It has "
        "the best PSNR and looks blurred; SRGAN commits to one sharp digit: a worse PSNR, a more realistic look.",
    ),
    sdedit_start=Exercise(
        "Write sdedit_start(schedule, x, strength, eps): SDEdit's starting point for images x in [0, 1], the pair "
        "(x_t0, t0) with t0 = round(strength * (T - 1)) and x_t0 the input, in the model's range, noised to step t0 "
        "with eps.", _grade_sdedit_start, sdedit_start_solution,
    ),
    repaint_merge=Exercise(
        "Write repaint_merge(schedule, x_generated, known, mask, t, eps): RePaint's merge at step t, the known "
        "image (in [-1, 1]) noised to step t with eps where mask is 1, the model's x_generated where it is 0; at "
        "t = -1, the end, the known pixels exactly.", _grade_repaint_merge, repaint_merge_solution,
    ),
    repaint_calls=Exercise(
        f"repaint(unet, schedule, known, mask, steps={_STEPS}, resample={_RESAMPLE}) fills the holes of a batch of "
        f"digits. How many times does it call unet?", _grade_repaint_calls, _repaint_calls_solution(),
    ),
)
