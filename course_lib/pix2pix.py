"""Image-to-image translation (lesson 5): pix2pix, Isola et al. 2016, "Image-to-Image Translation with Conditional
Adversarial Networks" (arXiv:1611.07004), sized for 28 x 28 digits on a CPU.

The data come in pairs (x, y): an input picture x and the picture y it should become. Here the pairs are built from
the digits themselves: x = `hide_lower_half(y)` shows only the top half, and G must draw the bottom half. A
conditional discriminator D(x, y) judges *pairs*: is y a real completion of x, or G's? pix2pix trains

    G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G)
    L_cGAN(G, D) = E_{x,y} [log D(x, y)] + E_x [log(1 - D(x, G(x)))]
    L_L1(G)      = E_{x,y} || y - G(x) ||_1

L1 alone already finds the right digit, but where several bottom halves fit the top half it draws their blurry
median. The adversarial term rejects blur (no real digit is blurry), so G commits to one sharp answer; `sharpness`
puts a number on the difference.

    >>> from course_lib.data import load_dataset
    >>> digits, labels = load_dataset("mnist", n=8, source="bundled").tensors
    >>> model = Pix2Pix()
    >>> logs = Pix2PixStep(model)(model, (digits, labels))
    >>> sorted(logs)
    ['d_fake', 'd_loss', 'd_real', 'g_loss', 'l1']
    >>> model.translate(hide_lower_half(digits)).shape
    torch.Size([8, 1, 28, 28])
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import check_batch, check_images
from .fastpath import bf16_call
from .gans import _apply, d_loss, g_loss_non_saturating
from .nets import evaluating

HIDDEN = 0.5  # mid grey: in a picture of the input you can see which part is hidden

# ---------------------------------------------------------------- the paired task


def hide_lower_half(x: torch.Tensor) -> torch.Tensor:
    """The input of the completion task: a copy of the digits with rows 14..27 set to mid grey (0.5), the top half
    unchanged. The training pair is (hide_lower_half(y), y).

    >>> x = hide_lower_half(torch.ones(2, 1, 28, 28))
    >>> x[0, 0, 13, 0].item(), x[0, 0, 14, 0].item()  # last visible row, first hidden row
    (1.0, 0.5)
    """
    x = check_images(x).clone()
    x[:, :, 14:, :] = HIDDEN
    return x


# ---------------------------------------------------------------- networks


class Pix2PixGenerator(nn.Module):
    """G: input (B, 1, 28, 28) -> output (B, 1, 28, 28) in [0, 1], a small U-Net.

    An encoder halves the size twice (28 -> 14 -> 7, strided 4 x 4 convolutions, BatchNorm, LeakyReLU(0.2)), two
    3 x 3 convolutions at 7 x 7 let every hidden pixel see well into the visible half, and a decoder doubles it back
    (7 -> 14 -> 28, transposed convolutions, BatchNorm, ReLU). Each decoder layer also receives, concatenated on the
    channels, the encoder's features at its own size: these *skip connections* matter because input and output
    share their structure. The visible top half must come out unchanged; through the skips it passes almost
    straight through, instead of being squeezed through the 7 x 7 bottleneck and blurred.

    G gets no noise z: pix2pix found G learned to ignore it. The only randomness is dropout in the decoder during
    training; `Pix2Pix.translate` runs in eval mode, so a translation is deterministic.

    `in_channels` / `out_channels`: 1 for grey digits; lesson 8 colours grey digits with in 1, out 3.

    >>> Pix2PixGenerator()(torch.rand(4, 1, 28, 28)).shape
    torch.Size([4, 1, 28, 28])
    >>> Pix2PixGenerator(out_channels=3)(torch.rand(4, 1, 28, 28)).shape
    torch.Size([4, 3, 28, 28])
    """

    def __init__(self, width: int = 32, dropout: float = 0.5, in_channels: int = 1, out_channels: int = 1):
        super().__init__()
        w = width
        # no BatchNorm on the first layer, as in pix2pix: it would normalize away the input's own statistics
        self.down1 = nn.Sequential(nn.Conv2d(in_channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2))  # 28 -> 14
        self.down2 = nn.Sequential(
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2)
        )  # 14 -> 7
        self.middle = nn.Sequential(
            nn.Conv2d(2 * w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
        )  # 7 -> 7
        self.up1 = nn.Sequential(
            nn.ConvTranspose2d(4 * w, w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Dropout(dropout),
        )  # 7 -> 14
        self.up2 = nn.ConvTranspose2d(2 * w, out_channels, 4, stride=2, padding=1)  # 14 -> 28

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.down1[0].in_channels
        x = check_images(x) if c == 1 else check_batch(x)
        if x.shape[1:] != (c, 28, 28):
            raise ValueError(f"This generator takes inputs shaped (B, {c}, 28, 28), got {tuple(x.shape)}. Build it "
                             f"with Pix2PixGenerator(in_channels={x.shape[1]}) for inputs with {x.shape[1]} channels.")
        h0 = 2 * x - 1  # pixels in [-1, 1]: the hidden grey becomes 0
        h1 = self.down1(h0)  # (B, w, 14, 14)
        h2 = self.down2(h1)  # (B, 2w, 7, 7)
        m = self.middle(h2)  # (B, 2w, 7, 7)
        u1 = self.up1(torch.cat([m, h2], dim=1))  # skip: (B, 4w, 7, 7) -> (B, w, 14, 14)
        return torch.sigmoid(self.up2(torch.cat([u1, h1], dim=1)))  # skip: (B, 2w, 14, 14) -> (B, out, 28, 28)


class PatchDiscriminator(nn.Module):
    """D(x, y): a PatchGAN. (condition, image), each (B, 1, 28, 28) -> a map of logits (B, 1, 7, 7).

    The pair is concatenated on the channels (B, 2, 28, 28), so D judges whether the image fits *this* condition,
    not only whether it looks like a digit. Two strided 4 x 4 convolutions (28 -> 14 -> 7) and a 3 x 3 one give one
    logit per 18 x 18 patch, the patches 4 pixels apart and overlapping. D only says "real" or "fake" about
    local texture and stroke shape; L1 takes care of the large scale. (pix2pix's 70 x 70 PatchGAN, scaled down.)

    `in_channels`: the condition's and the image's channels together (2 for grey pairs; 4 for grey -> colour).

    >>> x = torch.rand(4, 1, 28, 28)
    >>> PatchDiscriminator()(hide_lower_half(x), x).shape
    torch.Size([4, 1, 7, 7])
    """

    def __init__(self, width: int = 32, in_channels: int = 2):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 28 -> 14, receptive field 4
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False),  # 14 -> 7, receptive field 10
            nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 1, 3, padding=1),  # 7 -> 7, receptive field 18
        )

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        if condition.shape[0] != image.shape[0] or condition.shape[2:] != image.shape[2:]:
            raise ValueError(
                f"The discriminator judges a pair: condition and image must have the same shape (their channels "
                f"aside), got "
                f"{tuple(condition.shape)} and {tuple(image.shape)}. Call it as D(x, y) for a real pair or "
                f"D(x, G(x)) for a generated one, with x = hide_lower_half(y)."
            )
        pair = torch.cat([check_batch(condition, "conditions"), check_batch(image)], dim=1)  # (B, 2, 28, 28) for digits
        if pair.shape[1] != self.net[0].in_channels:
            raise ValueError(f"This discriminator was built for {self.net[0].in_channels} channels (condition and image "
                             f"together), got {condition.shape[1]} + {image.shape[1]}. Build it with "
                             f"PatchDiscriminator(in_channels={pair.shape[1]}).")
        return self.net(2 * pair - 1)  # (B, 1, 7, 7): one logit per patch


class Pix2Pix(nn.Module):
    """A generator and a patch discriminator in one module, so `fit`, checkpoints and `.to(device)` handle both.
    `model(x)` is G(x) in the current mode; `translate(x)` is the one to show pictures with.

    >>> model = Pix2Pix()
    >>> model.translate(hide_lower_half(torch.rand(3, 1, 28, 28))).shape
    torch.Size([3, 1, 28, 28])
    """

    def __init__(self, generator: nn.Module | None = None, discriminator: nn.Module | None = None):
        super().__init__()
        self.generator = generator if generator is not None else Pix2PixGenerator()
        self.discriminator = discriminator if discriminator is not None else PatchDiscriminator()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x.to(self.device))

    @torch.no_grad()
    def translate(self, x: torch.Tensor) -> torch.Tensor:
        """G(x) in eval mode (no dropout, BatchNorm's running statistics), so the same x always gives the same
        output; the training mode is restored afterwards."""
        with evaluating(self):
            return self.generator(check_batch(x).to(self.device))


# ---------------------------------------------------------------- one training step


class Pix2PixStep:
    """One step of pix2pix training for `fit(model, loader, Pix2PixStep(model), optimizer=None, epochs)`.

    Batches are (digits, labels) as the course's loaders give them; the labels are not used. The target is
    y = digits and the input x = task(y). With `adversarial=True` (pix2pix):

    1. one D update on  -[mean log D(x, y) + mean log(1 - D(x, G(x)))]   (`gans.d_loss`, over all patches),
    2. one G update on  -mean log D(x, G(x)) + l1_weight * mean |G(x) - y|.

    With `adversarial=False`, G minimizes l1_weight * mean |G(x) - y| alone and D is never used: the blurry
    baseline. `fast` computes G and D in bfloat16 where the device has it (`fastpath.bf16_call`). It owns both
    Adam optimizers (pix2pix's lr and betas; `state_dict` saves them). A loss that is not finite is reported but
    not applied, and `fit` then puts back what the step changed and stops. Returns {"g_loss", "l1"} (the total G
    loss, and the mean absolute error), plus {"d_loss", "d_real", "d_fake"} (mean D(x, y) and D(x, G(x)) over
    patches) when adversarial.

    >>> from course_lib.data import load_dataset
    >>> digits = load_dataset("mnist", n=8, source="bundled").tensors[0]
    >>> model = Pix2Pix()
    >>> sorted(Pix2PixStep(model, adversarial=False)(model, (digits,)))
    ['g_loss', 'l1']
    """

    def __init__(self, model: Pix2Pix, l1_weight: float = 100.0, adversarial: bool = True, lr: float = 2e-4,
                 betas: tuple[float, float] = (0.5, 0.999),
                 task: Callable[[torch.Tensor], torch.Tensor] = hide_lower_half, fast: bool = False):
        if l1_weight < 0:
            raise ValueError(f"l1_weight weighs the L1 term and cannot be negative, got {l1_weight}. "
                             f"Use l1_weight=100.0 (pix2pix's value), or 0.0 for the adversarial loss alone.")
        if l1_weight == 0 and not adversarial:
            raise ValueError("With adversarial=False and l1_weight=0.0 the generator has no loss at all. "
                             "Use Pix2PixStep(model, adversarial=False) for the L1-only baseline.")
        self.l1_weight, self.adversarial, self.task, self.fast = l1_weight, adversarial, task, fast
        self.opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=betas)
        self.opt_g = torch.optim.Adam(model.generator.parameters(), lr=lr, betas=betas)

    def state_dict(self) -> dict:
        """Both optimizers: what a checkpoint needs to resume this step exactly."""
        return {"opt_d": self.opt_d.state_dict(), "opt_g": self.opt_g.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.opt_d.load_state_dict(state["opt_d"])
        self.opt_g.load_state_dict(state["opt_g"])

    def __call__(self, model: Pix2Pix, batch) -> dict[str, float]:
        y = batch[0] if isinstance(batch, (tuple, list)) else batch  # (B, 1, 28, 28) target digits
        x = self.task(y)  # (B, 1, 28, 28) input
        G, D = model.generator, model.discriminator
        if self.fast:  # both networks in bfloat16 where the device has it, as `GANStep(fast=True)`
            G, D = bf16_call(G, y.device), bf16_call(D, y.device)
        fake = G(x)
        l1 = (fake - y).abs().mean()
        if not self.adversarial:
            loss_g = self.l1_weight * l1
            _apply(self.opt_g, loss_g)
            return {"g_loss": loss_g.item(), "l1": l1.item()}
        real_out, fake_out = D(x, y), D(x, fake.detach())  # (B, 1, 7, 7) logits each
        loss_d = d_loss(real_out, fake_out)
        d_ok = _apply(self.opt_d, loss_d)
        loss_g = g_loss_non_saturating(D(x, fake)) + self.l1_weight * l1  # D just updated; G not yet
        if d_ok:  # after a non-finite D loss nothing more is applied: fit puts the step back and stops
            _apply(self.opt_g, loss_g)
        return {"g_loss": loss_g.item(), "l1": l1.item(), "d_loss": loss_d.item(),
                "d_real": torch.sigmoid(real_out).mean().item(), "d_fake": torch.sigmoid(fake_out).mean().item()}


# ---------------------------------------------------------------- measuring blur

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def sharpness(images: torch.Tensor) -> float:
    """A focus measure: Var(Laplacian(x)) per image, averaged over the batch, with the 3 x 3 Laplacian
    [[0, 1, 0], [1, -4, 1], [0, 1, 0]] (each pixel's difference from its four neighbours). Sharp strokes have
    strong second derivatives at their edges; blur flattens them, so blurry images score lower.

    >>> from course_lib.data import load_dataset
    >>> x = load_dataset("mnist", n=16, source="bundled").tensors[0]
    >>> blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)  # a 3 x 3 box blur
    >>> sharpness(blurred) < sharpness(x)
    True
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"Expected images shaped (B, C, H, W), got {shape}. For one image use x.unsqueeze(0).")
    c = images.shape[1]
    kernel = LAPLACIAN.to(images).expand(c, 1, 3, 3)  # the same kernel for each channel
    lap = F.conv2d(images, kernel, groups=c)  # (B, C, H - 2, W - 2): no padding, so no border artefacts
    return lap.flatten(1).var(dim=1, correction=0).mean().item()  # population variance, as OpenCV's
