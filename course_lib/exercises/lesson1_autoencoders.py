"""Lesson 1 exercises: the autoencoder loss, masking noise, counting parameters, AE vs PCA, one training step."""

import copy

import torch

from ..autoencoders import MLPAutoencoder, ae_loss
from ..nets import n_params
from ..training import fit
from ._base import Exercise, choice, number, register, whole_number


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
    with torch.random.fork_rng():  # the student's draws leave the lesson's random numbers (e.g. the next model's) alone
        out = fn(x, 0.3)
        again = fn(x.clone(), 0.3) if out is not None else None
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
    if torch.equal(again, out):
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


def ae_train_step_solution(model, optimizer, x_in, x):
    # one step of gradient descent on L_AE: forward, loss, then zero_grad / backward / step
    loss = ae_loss(x, model(x_in))  # the model sees x_in (x itself, or a corrupted x~) and is scored against x
    optimizer.zero_grad()  # forget the previous step's gradients (backward adds to them)
    loss.backward()  # dL/dw for every weight w
    optimizer.step()  # w <- w - lr * dL/dw (for SGD; Adam scales each step)
    return loss.item()


def _train_step_setup():
    """A small autoencoder with fixed weights, its SGD optimizer, and two batches (x_in, x) with x_in a masked x."""
    with torch.random.fork_rng():  # the student's random generator is left as it was
        torch.manual_seed(0)
        model = MLPAutoencoder(latent_dim=2, hidden=(32, 16))
        x = torch.rand(2, 8, 1, 28, 28)
        x_in = x * (torch.rand_like(x) > 0.3)
    batches = [(x_in[i], x[i]) for i in range(2)]
    return model, (lambda m: torch.optim.SGD(m.parameters(), lr=1e-3)), batches


def _weights_after(model, make_optimizer, batches, loss_of, accumulate=False):
    """A copy of `model` after one SGD step per batch on `loss_of(model, x_in, x)`: through the library's `fit`
    (zero_grad, backward, step), or, with `accumulate`, a loop that never zeroes the gradients."""
    model = copy.deepcopy(model)
    optimizer = make_optimizer(model)
    if accumulate:
        for x_in, x in batches:
            loss_of(model, x_in, x).backward()
            optimizer.step()
    else:
        fit(model, batches, lambda m, batch: loss_of(m, *batch), optimizer, epochs=1, progress=False)
    return [p.detach().clone() for p in model.parameters()]


def _close(a, b) -> bool:
    return all(torch.allclose(p, q, rtol=1e-4, atol=1e-7) for p, q in zip(a, b))


def _grade_ae_train_step(fn):
    model, make_optimizer, batches = _train_step_setup()
    start = [p.detach().clone() for p in model.parameters()]
    right = lambda m, x_in, x: ae_loss(x, m(x_in))  # noqa: E731
    want_1 = _weights_after(model, make_optimizer, batches[:1], right)
    want_2 = _weights_after(model, make_optimizer, batches, right)
    with torch.no_grad():
        want_loss = ae_loss(batches[0][1], model(batches[0][0])).item()
    mine = copy.deepcopy(model)
    optimizer = make_optimizer(mine)
    returned = fn(mine, optimizer, *batches[0])
    got_1 = [p.detach().clone() for p in mine.parameters()]
    if all(torch.equal(p, q) for p, q in zip(got_1, start)):
        if returned is None:
            return False, ("your function returned None and changed no weight. Write the step: loss = ae_loss(x, "
                           "model(x_in)), then optimizer.zero_grad(), loss.backward(), optimizer.step(); return "
                           "loss.item().")
        if all(p.grad is None or p.grad.abs().sum() == 0 for p in mine.parameters()):
            return False, ("the weights did not move and there are no gradients: compute the loss, then "
                           "optimizer.zero_grad(), loss.backward(), optimizer.step(), in that order.")
        return False, ("the gradients are there but the weights did not move: call optimizer.step() after "
                       "loss.backward().")
    if not _close(got_1, want_1):
        wrong = {
            "the model should see x_in (x itself, or the corrupted x~) and be scored against the clean x: "
            "ae_loss(x, model(x_in)).": [lambda m, x_in, x: ae_loss(x_in, m(x_in)),
                                         lambda m, x_in, x: ae_loss(x, m(x))],
            "your loss averages over the pixels too. L_AE sums the squared error over the pixels of each image and "
            "averages over the images (exercise 1).": [lambda m, x_in, x: (m(x_in) - x).pow(2).mean()],
            "your loss sums over the images too. L_AE averages over the images.": [
                lambda m, x_in, x: (m(x_in) - x).pow(2).sum()],
            "your loss has the wrong sign: gradient descent lowers the loss, so minimize +L_AE.": [
                lambda m, x_in, x: -ae_loss(x, m(x_in))],
        }
        for hint, losses in wrong.items():
            if any(_close(got_1, _weights_after(model, make_optimizer, batches[:1], loss)) for loss in losses):
                return False, hint
        return False, ("after one step your weights differ from those of the library's training loop (fit) from the "
                       "same start: use the optimizer you are given, and ae_loss(x, model(x_in)).")
    fn(mine, optimizer, *batches[1])
    got_2 = [p.detach().clone() for p in mine.parameters()]
    if not _close(got_2, want_2):
        if _close(got_2, _weights_after(model, make_optimizer, batches, right, accumulate=True)):
            return False, ("the first step is right, the second is not: backward() adds to the gradients already "
                           "there. Call optimizer.zero_grad() before loss.backward() in every step.")
        return False, "the first step is right, the second differs from fit's: does your step keep state between calls?"
    value = number(returned.detach() if isinstance(returned, torch.Tensor) else returned)
    if value is None:
        return False, "the weights are right; now return the batch's loss as a number: loss.item()."
    if abs(value - want_loss) > 1e-3 * abs(want_loss):
        return False, (f"the weights are right, but you returned {value:.3f} instead of the batch's loss "
                       f"{want_loss:.3f} (computed before the update): return loss.item().")
    return True, "two steps give exactly the weights of the library's training loop (fit) from the same start."


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
    ae_train_step=Exercise(
        "Write train_step(model, optimizer, x_in, x): one step of gradient descent on L_AE (the model sees x_in and is "
        "scored against x: forward, loss, zero_grad, backward, step), returning the batch's loss as a number.",
        _grade_ae_train_step, ae_train_step_solution,
    ),
)
