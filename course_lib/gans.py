"""Generative adversarial networks (lesson 3): Goodfellow et al. 2014, DCGAN (Radford et al. 2015), WGAN-GP
(Gulrajani et al. 2017).

A generator G turns noise z ~ N(0, I) into a sample; a discriminator D says how likely its input is real. They play

    min_G max_D V(D, G) = E_{x ~ p_data} [log D(x)] + E_{z ~ p(z)} [log(1 - D(G(z)))]

Every discriminator here outputs a *logit* l with D(x) = sigmoid(l): log D = -softplus(-l) and
log(1 - D) = -softplus(l) are then exact even where D is 0 or 1.

    >>> gan = GAN(MLPGenerator(), MLPDiscriminator())
    >>> step = GANStep(gan, loss="non_saturating")
    >>> logs = step(gan, (torch.randn(64, 2),))
    >>> sorted(logs)
    ['d_fake', 'd_loss', 'd_real', 'g_loss']
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import check_images, random_affine
from .fastpath import bf16_call
from .nets import check_finite, check_float32, evaluating
from .training import Callback, StopTraining, TrainState

# ---------------------------------------------------------------- losses (one function per equation)


def value_function(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """V(D, G) = mean log D(x) + mean log(1 - D(G(z))), estimated on a batch. D maximizes it, G minimizes it.

    >>> value_function(torch.zeros(4), torch.zeros(4))  # D = 1/2 everywhere: V = 2 log(1/2) = -log 4
    tensor(-1.3863)
    """
    return -F.softplus(-real_logits).mean() - F.softplus(fake_logits).mean()


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss: -V(D, G), i.e. binary cross-entropy with label 1 for real and 0 for generated."""
    return -value_function(real_logits, fake_logits)


def g_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's part of V: mean log(1 - D(G(z))), which G minimizes. Its gradient vanishes when D(G(z)) is near 0,
    which is exactly where G starts: D rejects early fakes easily, and G learns almost nothing."""
    return -F.softplus(fake_logits).mean()


def g_loss_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss: -mean log D(G(z)). Same fixed point as the minimax loss, but its gradient
    is largest where D(G(z)) is near 0, so G learns fastest when it is worst."""
    return F.softplus(-fake_logits).mean()


def critic_loss_wasserstein(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss: mean f(G(z)) - mean f(x). Minimizing it makes the score gap, an estimate of the
    Wasserstein-1 distance when f is 1-Lipschitz, as large as possible."""
    return fake_scores.mean() - real_scores.mean()


def g_loss_wasserstein(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN generator loss: -mean f(G(z)): move the samples to where the critic scores them as real."""
    return -fake_scores.mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP's penalty: mean (||grad_x f(x_hat)|| - 1)^2 at points x_hat on lines between real and fake samples;
    it keeps the critic close to 1-Lipschitz, which the Wasserstein distance needs."""
    shape = (len(real),) + (1,) * (real.ndim - 1)
    t = torch.rand(shape, generator=generator).to(real.device)
    between = (t * real + (1 - t) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


LOSSES = ("minimax", "non_saturating", "wgan_gp")

# ---------------------------------------------------------------- the theory, made numeric


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)): the best discriminator against a fixed generator.

    >>> optimal_discriminator(torch.tensor([1.0, 3.0]), torch.tensor([1.0, 1.0]))
    tensor([0.5000, 0.7500])
    """
    return p_data / (p_data + p_g).clamp_min(1e-30)


def jensen_shannon(p: torch.Tensor, q: torch.Tensor, dx: float) -> float:
    """JSD(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m) with m = (p + q) / 2, for densities tabulated on a grid with
    spacing `dx` (a Riemann sum). It lies between 0 (p = q) and log 2 (no overlap).

    >>> x = torch.linspace(-10, 10, 20001); dx = float(x[1] - x[0])
    >>> round(jensen_shannon(torch.exp(-x**2 / 2), torch.exp(-x**2 / 2), dx), 6)
    0.0
    """
    p, q = p / (p.sum() * dx), q / (q.sum() * dx)  # make sure both integrate to 1 on the grid
    m = (p + q) / 2

    def kl(a, b):
        return float(torch.where(a > 0, a * torch.log(a / b.clamp_min(1e-300)), torch.zeros_like(a)).sum() * dx)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def move_generator_away(data_density: torch.Tensor, x: torch.Tensor, shifts: torch.Tensor) -> dict[str, torch.Tensor]:
    """What a 1-D generator G(z) = z + s, z ~ N(0, 1), feels as its shift s moves it away from the data; one value per
    shift, computed on the grid `x` (float64, evenly spaced) where `data_density` holds p_data:

    - "jsd": JSD(p_data || p_g), which stops at log 2 once the two no longer overlap;
    - "grad": dV(D*, G)/ds by autograd, with D* = p_data / (p_data + p_g) fitted to the current G and then held
      fixed while G moves: the gradient the minimax game gives G against the best discriminator (= 2 dJSD/ds);
    - "w1": the Wasserstein-1 distance, the integral of |F_data(x) - F_g(x)| dx over the distribution functions F.

    >>> x = torch.linspace(-10, 40, 20001, dtype=torch.float64)
    >>> far = move_generator_away(torch.exp(-x**2 / 2) / (2 * torch.pi) ** 0.5, x, torch.tensor([20.0, 21.0]))
    >>> [round(v, 4) for v in far["jsd"].tolist()], far["grad"].abs().max().item() < 1e-12, far["w1"].round().tolist()
    ([0.6931, 0.6931], True, [20.0, 21.0])
    """
    dx = float(x[1] - x[0])
    jsd, grad, w1 = [], [], []
    for shift in shifts.to(torch.float64):
        s = shift.clone().requires_grad_()
        g_density = torch.distributions.Normal(s, 1.0).log_prob(x).exp()  # p_g for G(z) = z + s
        d_star = optimal_discriminator(data_density, g_density.detach())  # fitted to this G, then held fixed
        v_g = (g_density * (1 - d_star).clamp_min(1e-300).log()).sum() * dx  # the part of V that G changes
        grad.append(torch.autograd.grad(v_g, s)[0].item())
        jsd.append(jensen_shannon(data_density, g_density.detach(), dx))
        w1.append(((data_density.cumsum(0) - g_density.detach().cumsum(0)) * dx).abs().sum().item() * dx)
    return {name: torch.tensor(values, dtype=torch.float64) for name, values in (("jsd", jsd), ("grad", grad),
                                                                                ("w1", w1))}


# ---------------------------------------------------------------- networks


def check_noise(z: torch.Tensor, z_dim: int) -> torch.Tensor:
    """Raise a clear error unless `z` is a batch of finite float32 noise vectors shaped (B, z_dim); return it."""
    check_float32(z, "the noise z")
    if z.dim() != 2 or z.shape[1] != z_dim:
        raise ValueError(f"This generator takes noise shaped (B, {z_dim}), got {tuple(z.shape)}. Make it with "
                         f"gan.sample_z(n) or torch.randn(n, {z_dim}); for one vector use z.view(1, {z_dim}).")
    return check_finite(z, "the noise z")


def check_points(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Raise a clear error unless `x` is a batch of finite float32 points shaped (B, dim); return it unchanged."""
    check_float32(x, "the points x")
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"This discriminator takes points shaped (B, {dim}), got {tuple(x.shape)}. For one point "
                         f"use x.view(1, {dim}).")
    return check_finite(x, "the points x")



class MLPGenerator(nn.Module):
    """G for the 2-D toys: z (B, z_dim) -> point (B, 2), a few ReLU layers."""

    def __init__(self, z_dim: int = 2, hidden: int = 128, depth: int = 3, out_dim: int = 2):
        super().__init__()
        self.z_dim = z_dim
        layers, width = [], z_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, out_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(check_noise(z, self.z_dim))


class MLPDiscriminator(nn.Module):
    """D for the 2-D toys: point (B, in_dim) -> logit (B,), a few LeakyReLU layers."""

    def __init__(self, hidden: int = 128, depth: int = 3, in_dim: int = 2):
        super().__init__()
        layers, width = [], in_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))
        self.in_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(check_points(x, self.in_dim)).squeeze(1)


class DCGANGenerator(nn.Module):
    """DCGAN's generator, sized for 28 x 28 digits: z (B, 100) -> image (B, 1, 28, 28) in [0, 1].

    Like a decoder: a linear layer projects z to a 7 x 7 map of 2 * width channels, and two fractionally-strided
    (transposed) convolutions double the size, 7 -> 14 -> 28. BatchNorm and ReLU inside, tanh at the end as in
    DCGAN; the tanh's [-1, 1] is mapped to the course's [0, 1] pixels.
    """

    def __init__(self, z_dim: int = 100, width: int = 64):
        super().__init__()
        self.z_dim = z_dim
        self.project = nn.Sequential(
            nn.Linear(z_dim, 2 * width * 7 * 7, bias=False), nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU()
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),  # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(check_noise(z, self.z_dim)).unflatten(1, (-1, 7, 7))  # (B, 2 * width, 7, 7)
        return (self.upsample(h) + 1) / 2


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator: image (B, 1, 28, 28) in [0, 1] -> logit (B,). Like an encoder with a one-number
    output: strided convolutions halve the size (28 -> 14 -> 7), LeakyReLU(0.2), BatchNorm after the second
    convolution (none on the first, which sees the images themselves, as in DCGAN). (`in_channels` > 1 is for
    lesson 5's conditional discriminator, which adds the label as extra channels.)"""

    def __init__(self, width: int = 64, in_channels: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 28 -> 14
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),  # 14 -> 7
            nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(2 * check_images(x) - 1).squeeze(1)  # DCGAN works with pixels in [-1, 1]


class GAN(nn.Module):
    """A generator and a discriminator in one module, so `fit`, checkpoints and `.to(device)` handle both.

    >>> gan = GAN(DCGANGenerator(), DCGANDiscriminator())
    >>> gan.sample(3, torch.Generator().manual_seed(0)).shape
    torch.Size([3, 1, 28, 28])
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.z_dim = generator.z_dim

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n noise vectors z ~ N(0, I), on the model's device."""
        return torch.randn(n, self.z_dim, generator=generator).to(self.device)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n generated samples G(z), made in eval mode (BatchNorm uses its running statistics)."""
        with evaluating(self):
            return self.generator(self.sample_z(n, generator))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) in eval mode, so the latent explorer and interpolations can treat G like a decoder."""
        with evaluating(self), torch.no_grad():
            return self.generator(z.to(self.device))


# ---------------------------------------------------------------- one training step


class GANStep:
    """One step of GAN training for `fit(gan, loader, GANStep(gan), optimizer=None, ...)`: `d_steps` updates of D
    (each with fresh noise), then one update of G. It owns both Adam optimizers.

    `loss` is "minimax", "non_saturating" or "wgan_gp" (critic loss + `gp_weight` * gradient penalty).
    `augment` > 0 (images only) shifts, rotates and zooms every image D sees, real and generated alike, by a
    random amount (differentiable, so G's gradient passes through). With only a few thousand real digits, D can
    otherwise memorize them and win; augmenting both sides keeps G's target the un-augmented digits
    (the idea of DiffAugment, Zhao et al. 2020). A loss that
    is not finite is reported but not applied, and after a non-finite D loss G is not updated either; `fit` then
    puts back everything the step changed (both networks, both optimizers: `state_dict`) and stops. Returns
    {"d_loss", "g_loss", "d_real", "d_fake"}: the mean D(x) and D(G(z)); for WGAN-GP "critic_real" and
    "critic_fake" (the critic's raw scores) replace the last two.

    `update` (non-saturating loss, one D step) replaces the built-in D and G updates by your own function
    `update(G, D, opt_d, opt_g, real, z_d, z_g) -> (loss_d, loss_g)`, lesson 3's exercise: it gets the noise for
    D's update (`z_d`) and fresh noise for G's (`z_g`), and D as it is trained (augmented, if `augment` > 0). Both
    noises are drawn before the update, so with `augment` the random numbers come in another order than in the
    built-in step: the same kind of run, not the same run.

    `fast` computes G and D in bfloat16 where the device has it (`fastpath.bf16_call`; the losses, weights and
    optimizers stay in float32), and in float32 elsewhere.

        step = GANStep(gan, update=my_gan_step)
    """

    def __init__(self, gan: GAN, loss: str = "non_saturating", lr_d: float = 2e-4, lr_g: float = 2e-4,
                 betas: tuple[float, float] = (0.5, 0.999), d_steps: int = 1, gp_weight: float = 10.0,
                 augment: float = 0.0, generator: torch.Generator | None = None, update: Callable | None = None,
                 fast: bool = False):
        if loss not in LOSSES:
            raise ValueError(f"Unknown GAN loss {loss!r}. Use one of {', '.join(LOSSES)}.")
        if d_steps < 1:
            raise ValueError(f"d_steps must be at least 1 (discriminator updates per generator update), got {d_steps}.")
        if update is not None and (loss != "non_saturating" or d_steps != 1):
            raise ValueError(f"Your own update does one D step with the non-saturating loss; this step was asked for "
                             f"loss={loss!r}, d_steps={d_steps}. Use GANStep(gan, update=...) with the defaults.")
        self.gan, self.loss, self.d_steps, self.gp_weight, self.generator = gan, loss, d_steps, gp_weight, generator
        self.augment, self.update, self.fast = augment, update, fast
        self.opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr_d, betas=betas)
        self.opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr_g, betas=betas)

    def state_dict(self) -> dict:
        """Both optimizers and the random generator: what a checkpoint needs to resume this step exactly."""
        state = {"opt_d": self.opt_d.state_dict(), "opt_g": self.opt_g.state_dict()}
        if self.generator is not None:
            state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"].cpu())

    def set_lr(self, lr_d: float | None = None, lr_g: float | None = None) -> None:
        """Change the learning rates between steps (the dashboard's sliders do this)."""
        for opt, lr in ((self.opt_d, lr_d), (self.opt_g, lr_g)):
            if lr is not None:
                for group in opt.param_groups:
                    group["lr"] = lr

    def __call__(self, gan: GAN, batch) -> dict[str, float]:
        """One step on `batch`: images, or (images, labels) whose labels a conditional GAN's G and D both get."""
        real = batch[0] if isinstance(batch, (tuple, list)) else batch
        G, D, n = gan.generator, gan.discriminator, len(real)
        if getattr(gan, "num_classes", None):  # a conditional GAN: G and D both get the batch's labels
            y = batch[1]
            G, D = (lambda z: gan.generator(z, y)), (lambda x: gan.discriminator(x, y))
        D = self._augmented(D) if self.augment > 0 else D
        if self.fast:  # G and D in bfloat16 where the device has it (steps 1.2-1.6x faster here; see recipes.CGAN)
            G, D = bf16_call(G, real.device), bf16_call(D, real.device)
        if self.update is not None:
            return self._own_update(gan, G, D, real)
        d_ok = True
        for _ in range(self.d_steps):
            fake = G(gan.sample_z(n, self.generator)).detach()
            real_out, fake_out = D(real), D(fake)
            if self.loss == "wgan_gp":
                loss_d = critic_loss_wasserstein(real_out, fake_out)
                loss_d = loss_d + self.gp_weight * gradient_penalty(D, real, fake, self.generator)
            else:
                loss_d = d_loss(real_out, fake_out)
            d_ok = _apply(self.opt_d, loss_d) and d_ok
        fake_out = D(G(gan.sample_z(n, self.generator)))
        loss_g = {"minimax": g_loss_minimax, "non_saturating": g_loss_non_saturating,
                  "wgan_gp": g_loss_wasserstein}[self.loss](fake_out)
        if d_ok:  # a D that could not be updated gives G no meaningful direction
            _apply(self.opt_g, loss_g)
        logs = {"d_loss": loss_d.item(), "g_loss": loss_g.item()}
        if self.loss == "wgan_gp":  # a critic's scores are not probabilities: log them under their own names
            logs.update(critic_real=real_out.mean().item(), critic_fake=fake_out.mean().item())
        else:
            logs.update(d_real=torch.sigmoid(real_out).mean().item(), d_fake=torch.sigmoid(fake_out).mean().item())
        return logs

    def _own_update(self, gan: GAN, G, D, real: torch.Tensor) -> dict[str, float]:
        """One step with `self.update`; D's outputs on the real batch and on the last generated one are kept for
        the logs, as the built-in step reports them."""
        n, seen = len(real), {}
        z_d, z_g = gan.sample_z(n, self.generator), gan.sample_z(n, self.generator)

        def watched_D(x):
            out = D(x)
            seen["real" if x is real else "fake"] = out.detach()
            return out

        returned = self.update(G, watched_D, self.opt_d, self.opt_g, real, z_d, z_g)
        if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
            raise TypeError("Your update function should return the two losses: return loss_d, loss_g.")
        with torch.no_grad():  # a D that never saw the batch on its own (e.g. one call on real and fake together)
            real_out = seen["real"] if "real" in seen else D(real)
            fake_out = seen["fake"] if "fake" in seen else D(G(z_g))
        loss_d, loss_g = (float(torch.as_tensor(loss).detach()) for loss in returned)
        return {"d_loss": loss_d, "g_loss": loss_g,
                "d_real": torch.sigmoid(real_out).mean().item(), "d_fake": torch.sigmoid(fake_out).mean().item()}

    def _augmented(self, discriminator: nn.Module):
        a = self.augment

        def D(x):
            return discriminator(random_affine(x, self.generator, degrees=8 * a, shift=0.08 * a, zoom=0.08 * a))

        return D


def _apply(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> bool:
    """zero_grad, backward, step; skipped for a non-finite loss so the weights stay usable. True when applied."""
    optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(loss):
        return False
    loss.backward()
    optimizer.step()
    return True


class GANGuard(Callback):
    """Stops GAN training that has failed, with a message saying what happened and what to try.

    NaN losses are caught by `fit` itself; this guard watches for the discriminator *winning completely*: D(G(z))
    below `floor` for `patience` steps in a row. Then the generator's gradient has vanished (minimax loss) or
    points nowhere useful, and more steps only waste time.
    """

    def __init__(self, floor: float = 0.01, patience: int = 300):
        self.floor, self.patience, self.run = floor, patience, 0

    def state_dict(self) -> dict:
        return {"run": self.run}

    def load_state_dict(self, state: dict) -> None:
        self.run = state["run"]

    def on_step_end(self, state: TrainState) -> None:
        d_fake = state.logs.get("d_fake")
        if d_fake is None:  # WGAN-GP logs critic scores, which are not probabilities
            return
        self.run = self.run + 1 if d_fake < self.floor else 0
        if self.run >= self.patience:
            raise StopTraining(
                "d_wins",
                f"Training stopped at step {state.step}: the discriminator has won. For {self.patience} steps in a row "
                f"it gave generated samples D(G(z)) < {self.floor}, so the generator gets (almost) no gradient. Try "
                f"the non-saturating loss, a lower discriminator learning rate, one D step per G step, or WGAN-GP.",
            )
