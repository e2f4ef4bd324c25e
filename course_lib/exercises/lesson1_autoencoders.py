"""Lesson 1 exercises: the autoencoder loss, masking noise, counting parameters, AE vs PCA."""

import torch

from ..autoencoders import MLPAutoencoder, ae_loss
from ..nets import n_params
from ._base import Exercise, choice, register, whole_number


def ae_loss_solution(x, x_hat):
    # L_AE = 1/n sum_i ||x_i - x_hat_i||^2: sum over the pixels of each image, mean over the n images
    return (x - x_hat).pow(2).flatten(1).sum(dim=1).mean()


def _grade_ae_loss(fn):
    gen = torch.Generator().manual_seed(1)
    x, x_hat = torch.rand(6, 1, 28, 28, generator=gen), torch.rand(6, 1, 28, 28, generator=gen)
    got, want = fn(x, x_hat), ae_loss(x, x_hat)
    if got is None:
        return False, "your function returned None; return the loss as a tensor."
    got = torch.as_tensor(got)
    if got.numel() != 1:
        return False, f"the loss must be one number, but yours has shape {tuple(got.shape)}. Average over the images."
    if torch.isclose(got, (x - x_hat).pow(2).mean()):
        return False, "you averaged over the pixels too. L_AE sums the squared error over the pixels of each image."
    if torch.isclose(got, (x - x_hat).pow(2).sum()):
        return False, "you summed over the images too. L_AE averages over the n images (the 1/n)."
    if not torch.isclose(got, want, rtol=1e-4):
        return False, f"expected {want.item():.3f} on a test batch, got {got.item():.3f}. Square the difference."
    return True, "your L_AE matches the slide's formula."


def mask_pixels_solution(x, p):
    # masking noise M_D: each pixel is set to 0 with probability p, independently; x itself is left alone
    keep = torch.rand_like(x) >= p
    return x * keep


def _grade_mask(fn):
    x = torch.rand(64, 1, 28, 28) * 0.9 + 0.1  # no zeros to start with
    original = x.clone()
    out = fn(x, 0.3)
    if out is None:
        return False, "your function returned None; return the corrupted images."
    if not torch.equal(x, original):
        return False, "your function changed its input. Build a new tensor (e.g. x * keep) instead of editing x."
    if out.shape != x.shape:
        return False, f"the output should have the input's shape {tuple(x.shape)}, not {tuple(out.shape)}."
    zeroed = (out == 0).float().mean().item()
    kept_ok = torch.allclose(out[out != 0], x[out != 0])
    if not kept_ok:
        return False, "pixels you keep must stay exactly as they were; only the masked ones become 0."
    if abs(zeroed - 0.3) > 0.03:
        return False, f"with p=0.3 about 30% of pixels should be 0, yours zeroes {zeroed:.0%}. Compare torch.rand_like(x) with p."
    if torch.equal(fn(x, 0.3), out):
        return False, "two calls gave the same mask. Draw a fresh random mask on every call."
    return True, f"{zeroed:.1%} of pixels masked with p=0.3, input untouched."


def _encoder_counts() -> tuple[int, int]:
    """(all parameters, weights only) of lesson 1's encoder, counted on the model itself."""
    with torch.device("meta"):  # shapes only: no memory, and no draw from the student's random generator
        encoder = MLPAutoencoder(latent_dim=2).encoder
    return n_params(encoder), sum(p.numel() for p in encoder.parameters() if p.dim() > 1)


def _grade_ae_params(answer):
    want, weights_only = _encoder_counts()
    count = whole_number(answer)
    if count is None:
        return False, f"a count of parameters is a whole number, like 1234; {answer!r} is not one."
    if count == want:
        return True, f"The encoder has {want:,} parameters; most of them sit in the first layer."
    if count == weights_only:
        return False, "you counted the weights; each Linear layer also has one bias per output."
    return False, "a Linear(n_in, n_out) layer has n_in * n_out weights plus n_out biases. Add up the three layers."


def _grade_linear_ae(answer):
    picked = choice(answer)
    if picked == "b":
        return True, (
            "A linear autoencoder trained with squared error can do no better than PCA with the same k, and at its "
            "best it spans the same subspace. The nonlinearities are what let an AE beat PCA."
        )
    if picked in ("a", "c"):
        return False, "PCA gives the best k-dimensional linear reconstruction (Eckart-Young). What can a linear AE reach?"
    return False, "answer with one letter: 'a', 'b' or 'c'."


register(
    ae_loss=Exercise(
        "Write ae_loss(x, x_hat) = 1/n sum_i ||x_i - x_hat_i||^2 for image batches shaped (n, 1, 28, 28).",
        _grade_ae_loss, ae_loss_solution,
    ),
    mask_pixels=Exercise(
        "Write mask(x, p): a copy of x with each pixel set to 0 with probability p.",
        _grade_mask, mask_pixels_solution,
    ),
    ae_params=Exercise(
        "How many parameters (weights and biases) does the encoder Linear(784, 512), Linear(512, 256), Linear(256, 2) have?",
        _grade_ae_params, f"784 * 512 + 512  +  512 * 256 + 256  +  256 * 2 + 2  =  {_encoder_counts()[0]}",
    ),
    linear_ae=Exercise(
        "An autoencoder with no nonlinearities and a k-dimensional code, trained with L_AE, reaches a reconstruction "
        "error that is (a) lower than PCA's with k components, (b) the same as PCA's at best, (c) always higher?",
        _grade_linear_ae, "'b': PCA is the optimal linear encoder/decoder pair for squared error.",
    ),
)
