"""Lesson 3 exercises: the discriminator's loss, the non-saturating generator loss, the optimal discriminator, the
value of the game, the JSD of distributions that do not overlap, and one whole training step.

In the first two the students work with D's probabilities; the library's losses take D's logits (exact where D is 0
or 1), so the graders hand the library torch.logit of the same numbers. The training step is checked against the
library's `GANStep` on a small 2-D GAN: same initial weights, same real batches, same noise, same Adam settings.
"""

import math

import torch

from ..gans import (GAN, GANStep, MLPDiscriminator, MLPGenerator, d_loss, g_loss_minimax, g_loss_non_saturating,
                    jensen_shannon, optimal_discriminator, value_function)
from ._base import Exercise, number, register


def gan_d_loss_solution(d_real, d_fake):
    # -V(D, G) = -[mean log D(x) + mean log(1 - D(G(z)))]: D maximizes V, so it minimizes -V
    return -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())


def _grade_gan_d_loss(fn):
    gen = torch.Generator().manual_seed(5)
    d_real, d_fake = 0.05 + 0.9 * torch.rand(64, generator=gen), 0.05 + 0.9 * torch.rand(64, generator=gen)
    got, want = fn(d_real, d_fake), d_loss(torch.logit(d_real), torch.logit(d_fake))
    if got is None:
        return False, "your function returned None; return one number, the loss averaged over the batch."
    got = torch.as_tensor(got, dtype=torch.float32)
    if got.numel() != 1:
        return False, f"return a single number (average over the batch), got shape {tuple(got.shape)}."
    if torch.isclose(got, -want, atol=1e-4):
        return False, "the sign is flipped: D maximizes V, so its loss (to minimize) is -V."
    if torch.isclose(got, d_loss(torch.logit(d_fake), torch.logit(d_real)), atol=1e-4):
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
    logits = torch.logit(d_fake.detach())
    minimax = g_loss_minimax(logits)
    if got.numel() == 1 and torch.isclose(got.detach().float(), minimax, atol=1e-4):
        return False, "that is the minimax loss log(1 - D(G(z))), which saturates; the trick uses log D(G(z))."
    if got.numel() == 1 and torch.isclose(got.detach().float(), -minimax, atol=1e-4):
        return False, "that is -log(1 - D(G(z))): the trick flips the target, use -log D(G(z)) instead."
    want = g_loss_non_saturating(logits)
    if got.numel() != 1 or not torch.isclose(got.detach().float(), want, atol=1e-4):
        return False, "the non-saturating loss is -mean log D(G(z)) (one number for the batch)."
    if got.requires_grad:
        (grad,) = torch.autograd.grad(got, d_fake)
        if grad[0].abs() < grad[-1].abs():
            return False, "the gradient should be largest where D(G(z)) is smallest."
    return True, "-log D(G(z)) has its steepest slope where D rejects the fake, so G learns fastest when it is worst."


def _grade_optimal_d(answer):
    value = number(answer)
    if value is None:
        return False, f"give a number (e.g. 0.5); {answer!r} is not one."
    want = optimal_discriminator(torch.tensor(0.3), torch.tensor(0.1)).item()
    if abs(value - want) < 1e-3:
        return True, f"D*(x) = p_data / (p_data + p_g) = 0.3 / 0.4 = {want:.2f}."
    if abs(value - 0.25) < 1e-3:
        return False, "that is p_g / (p_data + p_g): D* is the probability that x is real."
    if abs(value - 3.0) < 1e-3:
        return False, "that is the ratio p_data / p_g; D* divides by the sum p_data + p_g."
    return False, "use D*(x) = p_data(x) / (p_data(x) + p_g(x))."


def _grade_v_at_optimum(answer):
    value = number(answer)
    if value is None:
        return False, f"give a number (e.g. 0.5); {answer!r} is not one."
    want = value_function(torch.zeros(1), torch.zeros(1)).item()  # D* = 1/2 everywhere: logit 0
    if abs(value - want) < 1e-3:
        return True, f"with p_g = p_data, D* = 1/2 everywhere and V = log(1/2) + log(1/2) = -log 4 (about {want:.3f})."
    if abs(value) < 1e-3:
        return False, "JSD is 0 there, but V = 2 JSD - log 4: the constant remains."
    if abs(value - math.log(0.5)) < 1e-3:
        return False, "V has two terms, one for real and one for generated samples; both are log(1/2)."
    return False, "what is D* when p_data = p_g? Put it into V = E log D(x) + E log(1 - D(G(z)))."


def _grade_jsd_disjoint(answer):
    value = number(answer)
    if value is None:
        return False, f"give a number (e.g. 0.5); {answer!r} is not one."
    x = torch.linspace(-20, 20, 40001, dtype=torch.float64)
    p, q = ((x > -11) & (x < -9)).double(), ((x > 9) & (x < 11)).double()  # two boxes, far apart
    want = jensen_shannon(p, q, float(x[1] - x[0]))
    if abs(value - want) < 5e-3:  # 0.69 is right too
        return True, (f"JSD = log 2 = {want:.4f}: where one density is positive the other is 0, so each KL term is "
                      f"log 2 whatever the distance, and moving p_g closer changes nothing until they overlap.")
    if abs(value) < 1e-3:
        return False, "0 is the JSD of two equal distributions; these two have nothing in common."
    if abs(value - 2 * want) < 1e-3:
        return False, "log 4 is 2 JSD (the term in V); the JSD itself is half of it."
    if abs(value - 1) < 1e-3:
        return False, "1 is log 2 in bits; the course uses natural logarithms."
    return False, "on p_data's support the mixture m = (p_data + p_g) / 2 equals p_data / 2: what is KL(p_data || m)?"


def gan_step_solution(G, D, opt_d, opt_g, real, z_d, z_g):
    # step B: D learns to tell real (1) from generated (0); detach() keeps D's loss away from G's weights
    fake = G(z_d).detach()
    loss_d = d_loss(D(real), D(fake))  # -V, with D's logits
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    # step A: G learns to fool the updated D, with fresh noise and the non-saturating loss -log D(G(z))
    loss_g = g_loss_non_saturating(D(G(z_g)))
    opt_g.zero_grad()  # also clears what D's loss could have left in G's gradients
    loss_g.backward()
    opt_g.step()
    return loss_d, loss_g


_LR, _BETAS, _N, _STEPS, _NOISE_SEED = 1e-2, (0.5, 0.999), 32, 3, 4


def _toy_gan_and_batches() -> tuple[GAN, list[torch.Tensor]]:
    """A small 2-D GAN and a few real batches, the same at every call, without moving the student's generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(13)
        gan = GAN(MLPGenerator(z_dim=2, hidden=16, depth=2), MLPDiscriminator(hidden=16, depth=2))
        batches = [torch.randn(_N, 2) * 0.3 + torch.tensor([1.5, -0.5]) for _ in range(_STEPS)]
    return gan, batches


def _weights(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()]).clone()


def _library_run() -> list[dict]:
    """After each of the steps: G's and D's weights and the two losses, from the library's GANStep."""
    gan, batches = _toy_gan_and_batches()
    step = GANStep(gan, lr_d=_LR, lr_g=_LR, betas=_BETAS, generator=torch.Generator().manual_seed(_NOISE_SEED))
    after = []
    for real in batches:
        logs = step(gan, (real,))
        after.append({"G": _weights(gan.generator), "D": _weights(gan.discriminator),
                      "losses": (logs["d_loss"], logs["g_loss"])})
    return after


def _run(fn) -> list[dict]:
    """The same steps with `fn(G, D, opt_d, opt_g, real, z_d, z_g)`; also counts the backward passes that reach G's
    weights (one per step when D's update leaves G alone) and keeps what `fn` returned."""
    gan, batches = _toy_gan_and_batches()
    G, D = gan.generator, gan.discriminator
    opt_d = torch.optim.Adam(D.parameters(), lr=_LR, betas=_BETAS)
    opt_g = torch.optim.Adam(G.parameters(), lr=_LR, betas=_BETAS)
    noise, reached_G = torch.Generator().manual_seed(_NOISE_SEED), [0]
    next(G.parameters()).register_hook(lambda grad: reached_G.__setitem__(0, reached_G[0] + 1))
    after = []
    with torch.random.fork_rng(devices=[]):  # whatever fn draws, the student's own random state stays as it was
        for real in batches:
            z_d, z_g = gan.sample_z(_N, noise), gan.sample_z(_N, noise)  # the order GANStep draws them in
            reached_G[0] = 0
            returned = fn(G, D, opt_d, opt_g, real, z_d, z_g)
            after.append({"G": _weights(G), "D": _weights(D), "returned": returned, "backward_into_G": reached_G[0]})
    return after


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def _matches(got: list[dict], want: list[dict]) -> bool:
    return all(_same(g["G"], w["G"]) and _same(g["D"], w["D"]) for g, w in zip(got, want))


def _wrong_steps():
    """Typical mistakes, each a whole step, with the hint for a student whose weights end up the same."""

    def saturating(G, D, opt_d, opt_g, real, z_d, z_g):
        loss_d = d_loss(D(real), D(G(z_d).detach()))
        opt_d.zero_grad(), loss_d.backward(), opt_d.step()
        loss_g = g_loss_minimax(D(G(z_g)))
        opt_g.zero_grad(), loss_g.backward(), opt_g.step()
        return loss_d, loss_g

    def d_ascends(G, D, opt_d, opt_g, real, z_d, z_g):
        loss_d = -d_loss(D(real), D(G(z_d).detach()))
        opt_d.zero_grad(), loss_d.backward(), opt_d.step()
        loss_g = g_loss_non_saturating(D(G(z_g)))
        opt_g.zero_grad(), loss_g.backward(), opt_g.step()
        return loss_d, loss_g

    def g_first(G, D, opt_d, opt_g, real, z_d, z_g):
        loss_g = g_loss_non_saturating(D(G(z_g)))
        opt_g.zero_grad(), loss_g.backward(), opt_g.step()
        loss_d = d_loss(D(real), D(G(z_d).detach()))
        opt_d.zero_grad(), loss_d.backward(), opt_d.step()
        return loss_d, loss_g

    def same_noise(G, D, opt_d, opt_g, real, z_d, z_g):
        fake = G(z_d)
        loss_d = d_loss(D(real), D(fake.detach()))
        opt_d.zero_grad(), loss_d.backward(), opt_d.step()
        loss_g = g_loss_non_saturating(D(fake))
        opt_g.zero_grad(), loss_g.backward(), opt_g.step()
        return loss_d, loss_g

    def noise_swapped(G, D, opt_d, opt_g, real, z_d, z_g):
        return gan_step_solution(G, D, opt_d, opt_g, real, z_g, z_d)

    def d_loss_halved(G, D, opt_d, opt_g, real, z_d, z_g):  # one BCE averaged over real and fake together
        loss_d = d_loss(D(real), D(G(z_d).detach())) / 2
        opt_d.zero_grad(), loss_d.backward(), opt_d.step()
        loss_g = g_loss_non_saturating(D(G(z_g)))
        opt_g.zero_grad(), loss_g.backward(), opt_g.step()
        return loss_d, loss_g

    return [
        (saturating, "G's update follows the minimax loss log(1 - D(G(z))), which saturates when D rejects the fakes. "
                     "Use the non-saturating loss -log D(G(z)): g_loss_non_saturating(D(G(z_g)))."),
        (d_ascends, "D's update goes the wrong way: D maximizes V, so it minimizes its loss d_loss(D(real), D(fake)) "
                    "= -V. Do not flip its sign."),
        (g_first, "update D first (step B), then G against the D you have just updated (step A), as GANStep does."),
        (same_noise, "G's update reuses the images of D's update; GANStep draws fresh noise for it: use z_g there "
                     "(z_d is for D's update)."),
        (noise_swapped, "z_d and z_g are swapped: D's update uses z_d, G's update z_g."),
        (d_loss_halved, "D's loss is half of -V: one cross-entropy averaged over the real and the generated images "
                        "together. -V is the mean over the real batch plus the mean over the generated one."),
    ]


def _grade_gan_step(fn):
    want = _library_run()
    got = _run(fn)
    first = got[0]["returned"]
    if first is None:
        return False, "your function returned None; do both updates and return loss_d, loss_g."
    if not (isinstance(first, (tuple, list)) and len(first) == 2):
        return False, "return the two losses as a pair: return loss_d, loss_g."
    if any(g["backward_into_G"] > 1 for g in got):
        return False, ("D's loss sent gradients into G's weights: detach the generated images in D's update, "
                       "fake = G(z_d).detach(). Without it, D's backward fills G's .grad too, and unless that is "
                       "cleared, G's next step follows D's loss: G would help D catch it.")
    start, _ = _toy_gan_and_batches()
    if _same(got[-1]["G"], _weights(start.generator)):
        return False, ("G's weights did not change: in G's update compute loss_g from D(G(z_g)) without detach "
                       "(G learns through D), then opt_g.zero_grad(), loss_g.backward(), opt_g.step().")
    if _same(got[-1]["D"], _weights(start.discriminator)):
        return False, "D's weights did not change: call opt_d.zero_grad(), loss_d.backward() and opt_d.step()."
    if not _matches(got, want):
        for wrong, hint in _wrong_steps():
            if _matches(got, _run(wrong)):
                return False, hint
        if _matches(got[:1], want[:1]):
            return False, ("your first step matches GANStep's, the later ones drift: gradients add up over backward() "
                           "calls. Call opt_d.zero_grad() right before loss_d.backward() and opt_g.zero_grad() right "
                           "before loss_g.backward() (G's backward also leaves gradients in D's weights).")
        part = "D's" if not _same(got[0]["D"], want[0]["D"]) else "G's"
        return False, (f"after one step {part} weights differ from GANStep's. D's update: d_loss(D(real), "
                       f"D(G(z_d).detach())); G's update: g_loss_non_saturating(D(G(z_g))); each with zero_grad, "
                       f"backward, step.")
    for g, w in zip(got, want):
        loss_d, loss_g = (float(torch.as_tensor(v).detach().float().mean()) for v in g["returned"])
        if not (math.isclose(loss_d, w["losses"][0], rel_tol=1e-4, abs_tol=1e-6)
                and math.isclose(loss_g, w["losses"][1], rel_tol=1e-4, abs_tol=1e-6)):
            return False, (f"the weights are right, but the losses returned are ({loss_d:.4f}, {loss_g:.4f}) where "
                           f"GANStep reports ({w['losses'][0]:.4f}, {w['losses'][1]:.4f}): return D's loss -V "
                           f"(the mean over the real batch plus the mean over the generated one) and G's loss.")
    return True, (f"{_STEPS} steps of your function give the same weights and losses as the library's GANStep: D "
                  f"learns on detached fakes, then G learns to fool the updated D. The DCGAN below trains with it.")


register(
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
    jsd_disjoint=Exercise(
        "p_data and p_g do not overlap at all (where one is positive, the other is 0). What is JSD(p_data || p_g)? "
        "(a number, natural logarithm)",
        _grade_jsd_disjoint, "log 2 = 0.693: on p_data's support m = p_data / 2, so KL(p_data || m) = log 2; the "
                             "same for p_g; JSD = (log 2 + log 2) / 2.",
    ),
    gan_step=Exercise(
        "Write gan_step(G, D, opt_d, opt_g, real, z_d, z_g): update D on the real batch and on G(z_d) (detached), "
        "then update G on G(z_g) with the non-saturating loss; D returns logits; return loss_d, loss_g.",
        _grade_gan_step, gan_step_solution,
    ),
)
