"""Progressive growing (lesson 7): Karras et al. 2018. Train at 7 x 7 first, then add layers for 14 x 14 and 28 x 28.

A GAN learns the coarse layout far more easily at a low resolution; each new resolution only adds detail. When a
resolution is added, its new layers are *faded in*: the output is a blend

    out = (1 - alpha) * upsample(old_to_image(h_old)) + alpha * new_to_image(new_block(h_old)),

with alpha rising from 0 to 1, so the network the GAN has learned so far is not suddenly replaced by untrained
layers. The discriminator grows in step, mirrored.

Here the generator always returns 28 x 28 images (its current resolution, enlarged by pixel repetition) and the
discriminator always takes 28 x 28 images (averaged down to its current resolution), so lesson 3's `GANStep` and
`fit` train it unchanged; the `Grow` callback moves both from stage to stage.

    >>> gan_g, gan_d = ProgressiveGenerator(), ProgressiveDiscriminator()
    >>> gan_g.stage, gan_g.resolution
    (0, 7)
    >>> gan_d(gan_g(torch.randn(2, gan_g.z_dim))).shape
    torch.Size([2])
"""

import torch
import torch.nn.functional as F
from torch import nn

from .gans import check_noise
from .training import Callback, TrainState

SIZES = (7, 14, 28)  # the resolution of each stage


def fade(old: torch.Tensor, new: torch.Tensor, alpha: float) -> torch.Tensor:
    """The fade-in blend (1 - alpha) * old + alpha * new: alpha = 0 is the old network alone, 1 the new one.

    >>> fade(torch.zeros(2), torch.ones(2), 0.25).tolist()
    [0.25, 0.25]
    """
    return (1 - alpha) * old + alpha * new


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.2))


class _Growing(nn.Module):
    """What both networks share: the current stage (0: 7 x 7, 1: 14 x 14, 2: 28 x 28) and the fade-in weight."""

    stage: int = 0
    alpha: float = 1.0

    def grow_to(self, stage: int, alpha: float = 1.0) -> None:
        if stage not in range(len(SIZES)) or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"stage is 0, 1 or 2 (7, 14 or 28 pixels) and alpha in [0, 1]; got {stage}, {alpha}.")
        self.stage, self.alpha = stage, float(alpha)

    @property
    def resolution(self) -> int:
        return SIZES[self.stage]


class ProgressiveGenerator(_Growing):
    """z (B, z_dim) -> images (B, 1, 28, 28) in [0, 1], drawn at the current stage's resolution; `channels`
    feature maps at 7, 14 and 28 pixels."""

    def __init__(self, z_dim: int = 64, channels: tuple[int, int, int] = (64, 32, 16)):
        super().__init__()
        self.z_dim = z_dim
        self.project = nn.Sequential(nn.Linear(z_dim, channels[0] * 7 * 7), nn.LeakyReLU(0.2))
        self.blocks = nn.ModuleList(_block(c_in, c_out) for c_in, c_out in zip(channels[:1] + channels[:-1], channels))
        self.to_image = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in channels)  # one per resolution

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks[0](self.project(check_noise(z, self.z_dim)).unflatten(1, (-1, 7, 7)))  # (B, C, 7, 7)
        out = self.to_image[0](h)
        for stage in range(1, self.stage + 1):
            h = self.blocks[stage](F.interpolate(h, scale_factor=2, mode="nearest"))
            old = F.interpolate(out, scale_factor=2, mode="nearest")
            out = fade(old, self.to_image[stage](h), self.alpha) if stage == self.stage else self.to_image[stage](h)
        image = torch.sigmoid(out)
        return F.interpolate(image, size=28, mode="nearest")  # shown (and judged) at 28 x 28


class ProgressiveDiscriminator(_Growing):
    """images (B, 1, 28, 28) -> logit (B,), looking at them at the current stage's resolution; the generator's
    `channels`, mirrored."""

    def __init__(self, channels: tuple[int, int, int] = (64, 32, 16)):
        super().__init__()
        self.from_image = nn.ModuleList(nn.Conv2d(1, c, 1) for c in channels)
        self.blocks = nn.ModuleList(_block(c_in, c_out) for c_in, c_out in zip(channels, channels[:1] + channels[:-1]))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels[0] * 7 * 7, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = 2 * F.adaptive_avg_pool2d(x, self.resolution) - 1  # what the current stage sees, in [-1, 1]
        h = F.leaky_relu(self.from_image[self.stage](x), 0.2)
        for stage in range(self.stage, 0, -1):
            h = F.avg_pool2d(self.blocks[stage](h), 2)
            if stage == self.stage:  # fading in: blend with the old path, which sees the image at half size
                old = F.leaky_relu(self.from_image[stage - 1](F.avg_pool2d(x, 2)), 0.2)
                h = fade(old, h, self.alpha)
        return self.head(self.blocks[0](h)).squeeze(1)


class Grow(Callback):
    """Moves a GAN with progressive networks through the stages as training goes: `steps_per_stage` steps at 7 x 7,
    then at each larger resolution a fade-in over `fade_steps` steps (alpha 0 -> 1; with fade_steps=0 the new layers
    take over at once) and stable training for the rest of the stage. Records (step, stage, alpha) in `log`.
    Its state (where the networks are) goes into checkpoints and the bundle, so a resumed run, or bundled weights
    loaded in instructor mode, continue at the right stage."""

    def __init__(self, gan: nn.Module, steps_per_stage: int, fade_steps: int):
        if fade_steps > steps_per_stage:
            raise ValueError(f"fade_steps ({fade_steps}) must fit in a stage ({steps_per_stage} steps).")
        self.gan, self.steps_per_stage, self.fade_steps = gan, steps_per_stage, fade_steps
        self.log: list[tuple[int, int, float]] = []
        self._set(0)

    def schedule(self, step: int) -> tuple[int, float]:
        """(stage, alpha) at training step `step`."""
        stage = min(step // self.steps_per_stage, len(SIZES) - 1)
        into = step - stage * self.steps_per_stage
        alpha = 1.0 if stage == 0 or self.fade_steps == 0 else min(1.0, into / self.fade_steps)
        return stage, alpha

    def _set(self, step: int) -> None:
        stage, alpha = self.schedule(step)
        self.gan.generator.grow_to(stage, alpha)
        self.gan.discriminator.grow_to(stage, alpha)
        self.log.append((step, stage, alpha))

    def on_step_end(self, state: TrainState) -> None:
        self._set(state.step)

    def state_dict(self) -> dict:
        step, stage, alpha = self.log[-1]
        return {"step": step, "stage": stage, "alpha": alpha}

    def load_state_dict(self, state: dict) -> None:
        self.gan.generator.grow_to(state["stage"], state["alpha"])
        self.gan.discriminator.grow_to(state["stage"], state["alpha"])
        self.log.append((state["step"], state["stage"], state["alpha"]))

    def finish(self) -> None:
        """Put both networks at the last stage, fully faded in (after training, or after loading bundled weights,
        which were saved there)."""
        self.gan.generator.grow_to(len(SIZES) - 1)
        self.gan.discriminator.grow_to(len(SIZES) - 1)

    def switches(self) -> list[int]:
        """The steps at which a new resolution starts."""
        return [stage * self.steps_per_stage for stage in range(1, len(SIZES))]
