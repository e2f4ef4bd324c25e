"""The benchmark's lesson 10 entry (`python -m course_lib.tools.benchmark --only t2i`), trained as lesson 10 trains
it (recipes `VQ_T2I` and `T2I_UNET`): latent diffusion with cross-attention on the VQ-VAE's latents, guidance w = 3,
the lesson's DDIM steps.

`t2i.npz` holds `images` (N, 3, 28, 28) in [0, 1], `labels` (the digit asked for), `ink` (the ink asked for, RGB in
[0, 1], N x 3), `prompts` (the captions, "a red seven", cycling through the 10 digits and the 8 inks, so that every
pair comes back) and `held_out` (True where the pair was never shown in training). The Frechet distances and class
accuracy of results.json are computed on the samples turned back into grey MNIST-style digits
(`prompt_following.mnist_style`); `extra` adds the share of samples whose digit, ink and both match the caption, on the
seen and on the held-out pairs.
"""

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .. import recipes
from ..captions import INKS, caption, captioned_digits, is_held_out
from ..data import colour_of, make_loader
from ..diffusion import DiffusionSchedule
from ..latent_diffusion import encode_dataset
from ..nets import n_params
from ..prompt_following import ink_alpha, mnist_style, prompt_following
from ..text2image import draw_from_text, t2i_step
from ..training import EMA, fit
from ..vqvae import vq_step
from .setups import Trained, finished

W = 3.0  # the guidance scale of the entry's samples


def asked_for(n: int) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """`n` captions "a INK DIGIT" cycling through the digits and, shifted by one each round, the inks: (captions,
    digits, ink indices).

    >>> asked_for(3)[0]
    ['a red zero', 'an orange one', 'a yellow two']
    """
    digits = torch.arange(n) % 10
    inks = (torch.arange(n) + torch.arange(n) // (10 * len(INKS))) % len(INKS)
    return [caption(int(d), [int(i), 0, 0, 0], 0, ("digit", "ink")) for d, i in zip(digits, inks)], digits, inks


def train_t2i(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    s = recipes.T2I_UNET.settings(profile)
    train, _ = captioned_digits("train", n=s.n_train, copies=s.copies)
    images, _, _, tokens = train.tensors

    R = recipes.VQ_T2I
    vqvae = R.build(s).to(device)
    epochs, batch_size = s.for_model("vqvae")
    vq_history = finished(fit(vqvae, make_loader(train, batch_size), vq_step(recipes.VQ_BETA),
                              torch.optim.Adam(vqvae.parameters(), lr=R.lr), epochs, device=device, progress=False),
                          "the VQ-VAE's training")
    vqvae.eval()

    R = recipes.T2I_UNET
    latent_data, scale = encode_dataset(vqvae, TensorDataset(images, tokens))
    unet = R.build(s).to(device)
    schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
    ema = EMA(unet, decay=R.ema_decay)
    epochs, batch_size = s.for_model("unet")
    history = finished(fit(unet, make_loader(latent_data, batch_size),
                           t2i_step(schedule, R.p_uncond, torch.Generator().manual_seed(0)),
                           torch.optim.Adam(unet.parameters(), lr=R.lr), epochs, device=device, callbacks=[ema],
                           progress=False), "the text U-Net's training")

    def sample(n, generator):
        captions, digits, _ = asked_for(n)
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        return torch.cat([draw_from_text(ema.model, vqvae, schedule, scale, captions[i:i + 500], w=W,
                                         steps=s.ddim_steps[0], seed=seed + i) for i in range(0, n, 500)]), digits

    def arrays(n):
        captions, digits, inks = asked_for(n)
        return {"ink": torch.stack([colour_of(INKS[i]) for i in inks]), "prompts": np.array(captions),
                "held_out": is_held_out(digits, inks)}

    def following(images, digits):
        """Prompt following of samples drawn for `asked_for(len(images))`, on the seen and the held-out pairs."""
        _, _, inks = asked_for(len(images))
        held = is_held_out(digits, inks)
        extra = {}
        for kind, rows in (("seen", ~held), ("held_out", held)):
            if rows.any():
                shares = prompt_following(images[rows], {"digit": digits[rows], "ink": inks[rows]})
                extra.update({f"{kind}_{key}": value for key, value in shares.items()})
        return extra

    return Trained(sample, n_params(unet), vq_history.seconds + history.seconds, arrays=arrays,
                   extra={"vqvae_train_seconds": vq_history.seconds, "vqvae_params": n_params(vqvae),
                          "guidance_w": W}, grey=lambda images: mnist_style(ink_alpha(images)[0])[0],
                   scores=following)
