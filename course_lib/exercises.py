"""Self-checking exercises: `check(name, answer)` says whether an answer is right and, if not, gives a hint.
`solution(name)` prints a reference answer for when you are stuck.

    >>> check("ae_params", 784 * 512 + 512 + 512 * 256 + 256 + 256 * 2 + 2)
    Correct! The encoder has 533,762 parameters; most of them sit in the first layer.
    True
"""

import inspect
import math
import textwrap
from dataclasses import dataclass
from typing import Any, Callable

import torch


@dataclass
class Exercise:
    question: str
    grade: Callable[[Any], tuple[bool, str]]  # answer -> (right?, message: praise or hint)
    solution: Callable | str


EXERCISES: dict[str, Exercise] = {}


def check(name: str, answer: Any) -> bool:
    """Grade `answer` to exercise `name`; prints "Correct!" or "Not yet" with a hint, and returns True/False."""
    exercise = _get(name)
    if answer is None or answer is ...:
        print(f"Not yet: the answer is empty. {exercise.question}")
        return False
    try:
        right, message = exercise.grade(_refusing_ellipsis(answer) if callable(answer) else answer)
    except _NotWrittenYet:
        right, message = False, "your function still returns `...`: write your code in its place."
    except Exception as err:  # the student's code raised: show it as a hint, not a traceback from the checker
        right, message = False, f"your answer raised {type(err).__name__}: {err}"
    print(("Correct! " if right else "Not yet: ") + message)
    return right


class _NotWrittenYet(Exception):
    """A student's function returned the `...` placeholder of the exercise cell."""


def _refusing_ellipsis(fn: Callable) -> Callable:
    def wrapped(*args, **kwargs):
        out = fn(*args, **kwargs)
        if out is ...:
            raise _NotWrittenYet
        return out

    return wrapped


def solution(name: str) -> None:
    """Print a reference answer to exercise `name`."""
    ref = _get(name).solution
    print(textwrap.dedent(inspect.getsource(ref)) if callable(ref) else ref)


def _get(name: str) -> Exercise:
    if name not in EXERCISES:
        raise KeyError(f"No exercise called {name!r}. Exercises: {', '.join(EXERCISES)}.")
    return EXERCISES[name]


# ---------------------------------------------------------------- lesson 1: autoencoders

def ae_loss_solution(x, x_hat):
    # L_AE = 1/n sum_i ||x_i - x_hat_i||^2: sum over the pixels of each image, mean over the n images
    return (x - x_hat).pow(2).flatten(1).sum(dim=1).mean()


def _grade_ae_loss(fn):
    gen = torch.Generator().manual_seed(1)
    x, x_hat = torch.rand(6, 1, 28, 28, generator=gen), torch.rand(6, 1, 28, 28, generator=gen)
    got, want = fn(x, x_hat), ae_loss_solution(x, x_hat)
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


def _grade_ae_params(answer):
    want = 784 * 512 + 512 + 512 * 256 + 256 + 256 * 2 + 2
    if int(answer) == want:
        return True, f"The encoder has {want:,} parameters; most of them sit in the first layer."
    if int(answer) == 784 * 512 + 512 * 256 + 256 * 2:
        return False, "you counted the weights; each Linear layer also has one bias per output."
    return False, "a Linear(n_in, n_out) layer has n_in * n_out weights plus n_out biases. Add up the three layers."


def _grade_linear_ae(answer):
    picked = str(answer).strip().lower()[:1]
    if picked == "b":
        return True, (
            "A linear autoencoder trained with squared error can do no better than PCA with the same k, and at its "
            "best it spans the same subspace. The nonlinearities are what let an AE beat PCA."
        )
    if picked in ("a", "c"):
        return False, "PCA gives the best k-dimensional *linear* reconstruction (Eckart-Young). What can a linear AE reach?"
    return False, "answer with one letter: 'a', 'b' or 'c'."


EXERCISES.update(
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
        _grade_ae_params, "784 * 512 + 512  +  512 * 256 + 256  +  256 * 2 + 2  =  533762",
    ),
    linear_ae=Exercise(
        "An autoencoder with no nonlinearities and a k-dimensional code, trained with L_AE, reaches a reconstruction "
        "error that is (a) lower than PCA's with k components, (b) the same as PCA's at best, (c) always higher?",
        _grade_linear_ae, "'b': PCA is the optimal linear encoder/decoder pair for squared error.",
    ),
)


# ---------------------------------------------------------------- lesson 2: variational autoencoders

def kl_solution(mu, logvar):
    # KL(N(mu, sigma^2) || N(0, I)) = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2), one value per row
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


def _grade_kl(fn):
    gen = torch.Generator().manual_seed(3)
    mu, logvar = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    got, want = fn(mu, logvar), kl_solution(mu, logvar)
    if got is None:
        return False, "your function returned None; return one KL value per row of mu."
    got = torch.as_tensor(got)
    if got.shape != want.shape:
        if got.numel() == 1:
            return False, "return one KL value per image (shape (n,)): sum over the latent dimensions only."
        return False, f"expected shape {tuple(want.shape)} (one value per image), got {tuple(got.shape)}."
    if torch.allclose(got, -want):
        return False, "the sign is flipped: a KL divergence is never negative. Check the -1/2 in front."
    if torch.allclose(got, 2 * want):
        return False, "off by a factor 2: the formula has -1/2 in front of the sum."
    sigma_as_logvar = -0.5 * (1 + torch.log(logvar.abs() ** 2 + 1e-12) - mu.pow(2) - logvar.pow(2)).sum(1)
    if torch.allclose(got, sigma_as_logvar, atol=1e-4):
        return False, "logvar is log(sigma^2), not sigma: sigma^2 = logvar.exp(), and log sigma^2 is logvar itself."
    if not torch.allclose(got, want, atol=1e-4):
        return False, "not the closed form yet: -1/2 * sum(1 + logvar - mu^2 - exp(logvar)) over the latent dimensions."
    return True, "your KL matches the closed form."


def reparameterize_solution(mu, logvar):
    # z = mu + sigma * eps, eps ~ N(0, I): the randomness is an input, so gradients reach mu and logvar
    eps = torch.randn_like(mu)
    return mu + torch.exp(0.5 * logvar) * eps


def _grade_reparameterize(fn):
    mu = torch.tensor([1.0, -2.0]).repeat(20000, 1).requires_grad_()
    logvar = torch.log(torch.tensor([0.25, 4.0])).repeat(20000, 1).requires_grad_()
    z = fn(mu, logvar)
    if z is None:
        return False, "your function returned None; return z."
    if z.shape != mu.shape:
        return False, f"z should have the shape of mu {tuple(mu.shape)}, got {tuple(z.shape)}."
    if not z.requires_grad:
        return False, ("no gradient can flow back to mu and logvar. Sampling with torch.normal or .sample() is a "
                       "random node; write z = mu + sigma * eps with eps = torch.randn_like(mu) instead.")
    var = z.detach().var(dim=0)
    if var.max() < 1e-6:
        return False, "z has no randomness: add sigma * eps with eps ~ N(0, I) (torch.randn_like(mu))."
    if torch.allclose(var, torch.tensor([0.0625, 16.0]), rtol=0.15):
        return False, "you used exp(logvar) = sigma^2 as the spread; the standard deviation is exp(logvar / 2)."
    if not torch.allclose(z.detach().mean(dim=0), torch.tensor([1.0, -2.0]), atol=0.1):
        return False, "the mean of z should be mu."
    if not torch.allclose(var, torch.tensor([0.25, 4.0]), rtol=0.1):
        return False, f"the variance of z should be exp(logvar) = [0.25, 4.0], yours is {var.tolist()}."
    z.sum().backward()
    if mu.grad is None or logvar.grad is None or logvar.grad.abs().sum() == 0:
        return False, ("no gradient reaches logvar: a sampler such as torch.normal treats the spread as a fixed "
                       "number. Write z = mu + torch.exp(0.5 * logvar) * eps with eps = torch.randn_like(mu).")
    return True, "z = mu + sigma * eps has the right mean and variance, and gradients flow to mu and logvar."


def _grade_beta(answer):
    picked = str(answer).strip().lower()[:1]
    if picked == "b":
        return True, ("A larger beta pays more for every nat of KL, so the codes carry less information about each "
                      "image: the KL falls, the codes crowd into N(0, I), and reconstructions get blurrier.")
    if picked == "a":
        return False, "beta multiplies the KL term only. What does a heavier price on KL do to the information in z?"
    if picked == "c":
        return False, "beta changes the balance between the two terms, not just the scale of the whole loss."
    return False, "answer with one letter: 'a', 'b' or 'c'."


EXERCISES.update(
    kl=Exercise(
        "Write kl(mu, logvar): KL(N(mu, exp(logvar)) || N(0, I)), one value per row, for tensors shaped (n, d).",
        _grade_kl, kl_solution,
    ),
    reparameterize=Exercise(
        "Write reparameterize(mu, logvar) -> z ~ N(mu, exp(logvar)) such that gradients flow to mu and logvar.",
        _grade_reparameterize, reparameterize_solution,
    ),
    beta=Exercise(
        "Training a VAE with beta = 4 instead of 1 gives: (a) sharper reconstructions and more spread-out codes, "
        "(b) a smaller KL, codes closer to N(0, I) and blurrier reconstructions, (c) no change, beta only rescales "
        "the loss?",
        _grade_beta, "'b': beta is the price of information in the code.",
    ),
)


# ---------------------------------------------------------------- lesson 3: GANs

def gan_d_loss_solution(d_real, d_fake):
    # -V(D, G) = -[mean log D(x) + mean log(1 - D(G(z)))]: D maximizes V, so it minimizes -V
    return -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())


def _grade_gan_d_loss(fn):
    gen = torch.Generator().manual_seed(5)
    d_real, d_fake = 0.05 + 0.9 * torch.rand(64, generator=gen), 0.05 + 0.9 * torch.rand(64, generator=gen)
    got, want = fn(d_real, d_fake), gan_d_loss_solution(d_real, d_fake)
    if got is None:
        return False, "your function returned None; return one number, the loss averaged over the batch."
    got = torch.as_tensor(got, dtype=torch.float32)
    if got.numel() != 1:
        return False, f"return a single number (average over the batch), got shape {tuple(got.shape)}."
    if torch.isclose(got, -want, atol=1e-4):
        return False, "the sign is flipped: D maximizes V, so its loss (to minimize) is -V."
    swapped = -(torch.log(d_fake).mean() + torch.log(1 - d_real).mean())
    if torch.isclose(got, swapped, atol=1e-4):
        return False, "real and fake are swapped: D should say 1 for real images (log D(x)) and 0 for fakes."
    if not torch.isclose(got, want, atol=1e-4):
        return False, "not -V yet: -(mean log D(x) + mean log(1 - D(G(z))))."
    return True, "that is the discriminator's loss -V(D, G), i.e. binary cross-entropy with real = 1, fake = 0."


def g_loss_non_saturating_solution(d_fake):
    # -mean log D(G(z)): large gradient where D(G(z)) is small, i.e. where the generator is losing
    return -torch.log(d_fake).mean()


def _grade_g_loss_ns(fn):
    d_fake = torch.tensor([0.01, 0.1, 0.5, 0.9], requires_grad=True)
    got = fn(d_fake)
    if got is None:
        return False, "your function returned None; return one number."
    got = torch.as_tensor(got)
    minimax = torch.log(1 - d_fake.detach()).mean()
    if got.numel() == 1 and torch.isclose(got.detach().float(), minimax, atol=1e-4):
        return False, "that is the minimax loss log(1 - D(G(z))), which saturates; the trick uses log D(G(z))."
    if got.numel() == 1 and torch.isclose(got.detach().float(), -minimax, atol=1e-4):
        return False, "that is -log(1 - D(G(z))): the trick flips the target, use -log D(G(z)) instead."
    want = g_loss_non_saturating_solution(d_fake.detach())
    if got.numel() != 1 or not torch.isclose(got.detach().float(), want, atol=1e-4):
        return False, "the non-saturating loss is -mean log D(G(z)) (one number for the batch)."
    if got.requires_grad:
        (grad,) = torch.autograd.grad(got, d_fake)
        if grad[0].abs() < grad[-1].abs():
            return False, "the gradient should be largest where D(G(z)) is smallest."
    return True, "-log D(G(z)) has its steepest slope where D rejects the fake, so G learns fastest when it is worst."


def _grade_optimal_d(answer):
    value = float(answer)
    if abs(value - 0.75) < 1e-3:
        return True, "D*(x) = p_data / (p_data + p_g) = 0.3 / 0.4 = 0.75."
    if abs(value - 0.25) < 1e-3:
        return False, "that is p_g / (p_data + p_g): D* is the probability that x is *real*."
    if abs(value - 3.0) < 1e-3:
        return False, "that is the ratio p_data / p_g; D* divides by the sum p_data + p_g."
    return False, "use D*(x) = p_data(x) / (p_data(x) + p_g(x))."


def _grade_v_at_optimum(answer):
    value = float(answer)
    if abs(value + math.log(4)) < 1e-3:
        return True, "with p_g = p_data, D* = 1/2 everywhere and V = log(1/2) + log(1/2) = -log 4 (about -1.386)."
    if abs(value) < 1e-3:
        return False, "JSD is 0 there, but V = 2 JSD - log 4: the constant remains."
    if abs(value - math.log(0.5)) < 1e-3:
        return False, "V has two terms, one for real and one for generated samples; both are log(1/2)."
    return False, "what is D* when p_data = p_g? Put it into V = E log D(x) + E log(1 - D(G(z)))."


EXERCISES.update(
    gan_d_loss=Exercise(
        "Write gan_d_loss(d_real, d_fake): the discriminator's loss from its outputs (probabilities) on a batch of "
        "real images and a batch of generated ones.",
        _grade_gan_d_loss, gan_d_loss_solution,
    ),
    g_loss_ns=Exercise(
        "Write g_loss_ns(d_fake): the non-saturating generator loss, from D's outputs on generated images.",
        _grade_g_loss_ns, g_loss_non_saturating_solution,
    ),
    optimal_d=Exercise(
        "At a point x, p_data(x) = 0.3 and p_g(x) = 0.1. What does the optimal discriminator D*(x) say?",
        _grade_optimal_d, "D*(x) = 0.3 / (0.3 + 0.1) = 0.75",
    ),
    v_at_optimum=Exercise(
        "When the generator is perfect (p_g = p_data) and D is optimal, what is V(D, G)? (a number)",
        _grade_v_at_optimum, "-log 4 = -1.386: D* = 1/2 everywhere, so V = 2 log(1/2).",
    ),
)


# ---------------------------------------------------------------- lesson 4: diffusion

def q_sample_solution(x0, abar_t, eps):
    # x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
    return math.sqrt(abar_t) * x0 + math.sqrt(1 - abar_t) * eps


def _grade_q_sample(fn):
    gen = torch.Generator().manual_seed(7)
    x0, eps = torch.rand(4, 1, 28, 28, generator=gen) * 2 - 1, torch.randn(4, 1, 28, 28, generator=gen)
    abar = 0.3
    got = fn(x0, abar, eps)
    if got is None:
        return False, "your function returned None; return x_t."
    got = torch.as_tensor(got)
    if got.shape != x0.shape:
        return False, f"x_t should have the shape of x0 {tuple(x0.shape)}, got {tuple(got.shape)}."
    if torch.allclose(got, abar * x0 + (1 - abar) * eps, atol=1e-5):
        return False, "the coefficients are standard deviations: take square roots, sqrt(abar_t) and sqrt(1 - abar_t)."
    if torch.allclose(got, math.sqrt(1 - abar) * x0 + math.sqrt(abar) * eps, atol=1e-5):
        return False, "the two coefficients are swapped: the image gets sqrt(abar_t), the noise sqrt(1 - abar_t)."
    if not torch.allclose(got, q_sample_solution(x0, abar, eps), atol=1e-5):
        return False, "x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps."
    return True, "x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps: any step in one jump."


def reverse_step_solution(x_t, eps, beta_t, abar_t, z):
    # x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) + sigma_t z, sigma_t^2 = beta_t
    alpha_t = 1 - beta_t
    return (x_t - beta_t / math.sqrt(1 - abar_t) * eps) / math.sqrt(alpha_t) + math.sqrt(beta_t) * z


def _grade_reverse_step(fn):
    gen = torch.Generator().manual_seed(8)
    x_t, eps, z = (torch.randn(3, 1, 28, 28, generator=gen) for _ in range(3))
    beta, abar = 0.02, 0.4
    got = fn(x_t, eps, beta, abar, z)
    if got is None:
        return False, "your function returned None; return x_{t-1}."
    got = torch.as_tensor(got)
    want = reverse_step_solution(x_t, eps, beta, abar, z)
    if got.shape != want.shape:
        return False, f"x_(t-1) should have the shape of x_t {tuple(x_t.shape)}, got {tuple(got.shape)}."
    if torch.allclose(got, want - math.sqrt(beta) * z, atol=1e-5):
        return False, "the fresh noise is missing: add sigma_t * z with sigma_t = sqrt(beta_t)."
    if torch.allclose(got, want - math.sqrt(beta) * z + beta * z, atol=1e-5):
        return False, "sigma_t is the standard deviation: sqrt(beta_t), not beta_t."
    if torch.allclose(got, (x_t - math.sqrt(1 - abar) * eps) / math.sqrt(abar), atol=1e-5):
        return False, "that is the predicted x_0 (one jump to the end); Algorithm 2 takes one small step."
    if not torch.allclose(got, want, atol=1e-5):
        return False, "x_(t-1) = (x_t - beta_t / sqrt(1 - abar_t) * eps) / sqrt(1 - beta_t) + sqrt(beta_t) * z."
    return True, "that is Algorithm 2's step: remove a little of the predicted noise, then add a little fresh noise."


def _grade_signal_left(answer):
    value = float(answer)
    if abs(value - math.sqrt(4e-5)) < 5e-4:
        return True, "sqrt(abar_T) = sqrt(4e-5), about 0.006: less than 1% of the image is left, well below the noise."
    if abs(value - 4e-5) < 1e-5:
        return False, "abar_T scales the *variance*; the image itself is multiplied by its square root."
    return False, "x_T = sqrt(abar_T) x_0 + sqrt(1 - abar_T) eps: what multiplies x_0?"


EXERCISES.update(
    q_sample=Exercise(
        "Write q_sample(x0, abar_t, eps): the forward process in closed form.", _grade_q_sample, q_sample_solution,
    ),
    reverse_step=Exercise(
        "Write reverse_step(x_t, eps, beta_t, abar_t, z): one step of Algorithm 2 with sigma_t^2 = beta_t.",
        _grade_reverse_step, reverse_step_solution,
    ),
    signal_left=Exercise(
        "With the linear schedule abar_T is about 4e-5. By what factor is x_0 scaled in x_T?",
        _grade_signal_left, "sqrt(4e-5) = 0.0063",
    ),
)


# ---------------------------------------------------------------- lesson 5: conditional models

def one_hot_solution(y, num_classes=10):
    # a row of zeros per label, with a 1 in the label's column
    code = torch.zeros(len(y), num_classes)
    code[torch.arange(len(y)), y] = 1.0
    return code


def _grade_one_hot(fn):
    y = torch.tensor([3, 0, 9, 3])
    got = fn(y)
    if got is None or got is ...:
        return False, "your function returned None; return the (B, 10) one-hot codes."
    got = torch.as_tensor(got)
    if got.shape != (4, 10):
        if got.shape == (10, 4):
            return False, "the codes come out transposed: one row per label, one column per class, (B, 10)."
        return False, f"4 labels should give 4 rows of 10 numbers, shape (4, 10); got {tuple(got.shape)}."
    if torch.equal(got.float(), 1 - one_hot_solution(y)):
        return False, "0s and 1s are swapped: the label's column holds the 1, every other column a 0."
    if not torch.equal(got.float(), one_hot_solution(y)):
        return False, "row i should be all zeros except a 1 in column y[i] (label 3 -> a 1 in column 3, counting from 0)."
    if not got.is_floating_point():
        return False, "right positions, but networks take float inputs: return floats (e.g. .float())."
    return True, "each label is a direction of its own: no class is 'between' two others, as the numbers 3 and 4 would suggest."


def guidance_solution(eps_uncond, eps_cond, w):
    # eps = eps(x_t, t, empty) + w * (eps(x_t, t, y) - eps(x_t, t, empty))
    return eps_uncond + w * (eps_cond - eps_uncond)


def _grade_guidance(fn):
    gen = torch.Generator().manual_seed(9)
    eps_u, eps_c = torch.randn(2, 1, 28, 28, generator=gen), torch.randn(2, 1, 28, 28, generator=gen)
    got = {w: fn(eps_u, eps_c, w) for w in (0.0, 1.0, 3.0)}
    if any(v is None or v is ... for v in got.values()):
        return False, "your function returned nothing yet; return the guided noise prediction."
    got = {w: torch.as_tensor(v) for w, v in got.items()}
    if torch.allclose(got[3.0], eps_c + 3.0 * (eps_c - eps_u), atol=1e-5):
        return False, "you start from the conditional prediction; start from the unconditional one, eps(x_t, t, empty)."
    if torch.allclose(got[3.0], 3.0 * eps_c, atol=1e-5):
        return False, "scaling eps(x_t, t, y) is not guidance: move along the difference eps(x, y) - eps(x, empty)."
    if not torch.allclose(got[0.0], eps_u, atol=1e-5):
        return False, "at w = 0 the result should be the unconditional prediction eps_uncond."
    if not torch.allclose(got[1.0], eps_c, atol=1e-5):
        return False, "at w = 1 the result should be the conditional prediction eps_cond."
    if not torch.allclose(got[3.0], guidance_solution(eps_u, eps_c, 3.0), atol=1e-5):
        return False, "right at w = 0 and w = 1; for other w: eps_uncond + w * (eps_cond - eps_uncond)."
    return True, "w = 0 ignores the label, w = 1 follows it, w > 1 goes further in the direction the label points."


def pix2pix_g_loss_solution(d_fake, fake, target, l1_weight=100.0):
    # -mean log D(x, G(x))  +  lambda * mean |G(x) - y|
    return -torch.log(d_fake).mean() + l1_weight * (fake - target).abs().mean()


def _grade_pix2pix_g_loss(fn):
    gen = torch.Generator().manual_seed(10)
    d_fake = torch.rand(4, 1, 7, 7, generator=gen) * 0.9 + 0.05
    fake, target = torch.rand(4, 1, 28, 28, generator=gen), torch.rand(4, 1, 28, 28, generator=gen)
    got = fn(d_fake, fake, target, 100.0)
    if got is None or got is ...:
        return False, "your function returned None; return one number (a 0-d tensor)."
    got = torch.as_tensor(got, dtype=torch.float32)
    if got.numel() != 1:
        return False, f"return one number for the whole batch (take the means), got shape {tuple(got.shape)}."
    adversarial, l1 = -torch.log(d_fake).mean(), (fake - target).abs().mean()
    want = adversarial + 100.0 * l1
    if torch.isclose(got, adversarial + 100.0 * (fake - target).pow(2).mean(), atol=1e-4):
        return False, "that is a squared error (L2); pix2pix uses the absolute error |G(x) - y| (L1), which blurs less."
    if torch.isclose(got, torch.log(1 - d_fake).mean() + 100.0 * l1, atol=1e-4):
        return False, "that is the minimax term log(1 - D); use the non-saturating -log D(x, G(x)) as in lesson 3."
    if torch.isclose(got, adversarial + l1, atol=1e-4):
        return False, "the L1 term is missing its weight lambda = l1_weight (100 in pix2pix)."
    if torch.isclose(got, 100.0 * l1, atol=1e-4) or torch.isclose(got, adversarial, atol=1e-4):
        return False, "the loss has two terms: the adversarial -mean log D(x, G(x)) plus lambda times the mean L1."
    if not torch.isclose(got, want, atol=1e-4):
        return False, "L_G = -mean log D(x, G(x)) + lambda * mean |G(x) - y|."
    return True, "D pushes towards 'looks real', L1 towards 'is the right digit': together, sharp and correct."


def _grade_guidance_cost(answer):
    value = int(answer)
    if value == 100:
        return True, "two predictions per step (with the label and with the empty label), so guidance doubles the cost."
    if value == 50:
        return False, "each step needs two noise predictions: eps(x_t, t, y) and eps(x_t, t, empty)."
    return False, "count the network evaluations in one step of guided sampling, then multiply by the 50 steps."


EXERCISES.update(
    one_hot=Exercise(
        "Write one_hot(y): labels (B,) -> a (B, 10) float tensor with a single 1 per row, in column y.",
        _grade_one_hot, one_hot_solution,
    ),
    guidance=Exercise(
        "Write guide(eps_uncond, eps_cond, w): classifier-free guidance's noise prediction.",
        _grade_guidance, guidance_solution,
    ),
    pix2pix_g_loss=Exercise(
        "Write pix2pix_g_loss(d_fake, fake, target, l1_weight): the generator's loss, with d_fake = D(x, G(x)) "
        "as probabilities.",
        _grade_pix2pix_g_loss, pix2pix_g_loss_solution,
    ),
    guidance_cost=Exercise(
        "How many U-Net evaluations does guided DDIM with 50 steps need for one image (w not 0 or 1)?",
        _grade_guidance_cost, "100: two noise predictions per step.",
    ),
)


# ---------------------------------------------------------------- lesson 6: latent diffusion

def _grade_latent_factor(answer):
    value = float(answer)
    if abs(value - 4) < 1e-6:
        return True, "784 pixels -> 4 x 7 x 7 = 196 numbers: a quarter of the size, yet the decoder rebuilds the digit."
    if abs(value - 16) < 1e-6:
        return False, "16 is 28 x 28 / (7 x 7), the positions; the latent has 4 numbers at each of its 49 positions."
    if abs(value - 0.25) < 1e-6:
        return False, "the other way round: how many times *smaller* is the latent (image size / latent size)?"
    return False, "count the numbers: the image has 1 x 28 x 28, the latent 4 x 7 x 7."


def latent_scale_solution(latents):
    # the factor that gives the latents a standard deviation of 1
    return 1.0 / latents.std()


def _grade_latent_scale(fn):
    gen = torch.Generator().manual_seed(11)
    z = 0.3 * torch.randn(50, 4, 7, 7, generator=gen) + 0.1
    got = fn(z)
    if got is None:
        return False, "your function returned None; return one number."
    got = float(torch.as_tensor(got).float().mean()) if torch.as_tensor(got).numel() == 1 else None
    if got is None:
        return False, "return a single number for all latents (one scale, not one per latent)."
    if abs(got - z.std().item()) < 1e-4:
        return False, "that is the spread itself; the scale is what to *multiply* by to make the spread 1: 1 / std."
    if abs(got - 1 / z.abs().max().item()) < 1e-4:
        return False, "dividing by the largest value squeezes into [-1, 1]; we want standard deviation 1: 1 / std."
    if abs(got - latent_scale_solution(z).item()) > 1e-3:
        return False, "scale = 1 / latents.std(); check: (latents * scale).std() should be 1."
    return True, "after multiplying by it the latents have spread 1, the size of the noise the forward process adds."


def _grade_decode_when(answer):
    choice = str(answer).strip().lower()
    if choice == "b":
        return True, "the reverse process runs entirely on latents; the decoder is called once, on z_0."
    if choice == "a":
        return False, "decoding at every step would cost a decoder pass per step and give the U-Net images, which it " \
                      "was not trained on; it only ever saw (noisy) latents."
    return False, "answer 'a' or 'b'."


EXERCISES.update(
    latent_factor=Exercise(
        "A digit has 1 x 28 x 28 numbers, its latent 4 x 7 x 7. By what factor is the latent smaller?",
        _grade_latent_factor, "784 / 196 = 4",
    ),
    latent_scale=Exercise(
        "Write latent_scale(latents): the number that gives the latents a standard deviation of 1 when multiplied.",
        _grade_latent_scale, latent_scale_solution,
    ),
    decode_when=Exercise(
        "When does latent diffusion call the decoder while sampling? (a) after every denoising step, to denoise the "
        "image; (b) once, on the final latent z_0.",
        _grade_decode_when, "b: the U-Net denoises latents; the decoder turns the final latent into an image.",
    ),
)
