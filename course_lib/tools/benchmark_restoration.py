"""The benchmark's lesson 8 entries (`python -m course_lib.tools.benchmark --only sr_mse srgan sr3 cascade`), trained
as lesson 8 trains them (recipes `SR_MSE`, `SRGAN_FT`, `SR3`, `BASE_7`):

- `sr_mse`, `srgan`, `sr3`: the held-out test digits in their split order, shrunk to 7 x 7 (`downscale`) and
  super-resolved back to 28 x 28; `NAME.npz` also holds `inputs` (N, 1, 7, 7), `targets` (the true digits) and
  `labels` (their classes, so the class accuracy says whether the digit survived). SRGAN's training seconds count the
  MSE network it starts from.
- `cascade`: class-conditional samples from the 7 x 7 base model (guidance w = 3), enlarged by SR3; `labels` are the
  classes asked for. Its training seconds count both models.

SR3 and the base model sample with the lesson's DDIM steps (`ddim_steps[0]` of its settings: 50 in `cpu`).
"""

import torch
from torch.utils.data import TensorDataset

from .. import recipes
from ..conditional import GuidedModel, cfg_step
from ..data import load_dataset, make_loader
from ..diffusion import DiffusionSchedule, ddim_sample
from ..config import N_SCORED
from ..metrics import digit_classifier
from ..nets import n_params
from ..superres import PerceptualFeatures, SRGANStep, downscale, psnr, sr3_step, sr3_upscale, sr_mse_step, ssim
from ..training import EMA, fit
from .setups import Trained, finished

W = 3.0  # the cascade's guidance scale


def _data(profile: str):
    s = recipes.SR_MSE.settings(profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    test_x, test_y = load_dataset("mnist", "test", source="bundled").tensors  # the held-out digits, in split order
    return s, train, test_x, test_y


def _fit(model, train, step, optimizer, s, name: str, device, callbacks=()):
    epochs, batch_size = s.for_model(name)
    return finished(fit(model, make_loader(train, batch_size), step, optimizer, epochs, device=device,
                        callbacks=list(callbacks), progress=False), f"{name}'s training")


def _upscaler(upscale, test_x, test_y, n_params_: int, seconds: float, n_scored: int) -> Trained:
    """A super-resolver's entry: sample(n) upscales the first n test digits; PSNR and SSIM over the first
    `n_scored`."""
    @torch.no_grad()
    def sample(n, generator):
        return upscale(downscale(test_x[:n]), generator).cpu().clamp(0, 1), test_y[:n]

    def arrays(n):
        return {"inputs": downscale(test_x[:n]), "targets": test_x[:n]}

    out, _ = sample(n_scored, torch.Generator().manual_seed(2))
    extra = {"psnr_db": psnr(out, test_x[:n_scored]), "ssim": ssim(out, test_x[:n_scored])}
    return Trained(sample, n_params_, seconds, extra=extra, arrays=arrays)


def _trained_sr_mse(profile: str, device: torch.device):
    s, train, test_x, test_y = _data(profile)
    R = recipes.SR_MSE
    model = R.build(s).to(device)
    history = _fit(model, train, sr_mse_step, torch.optim.Adam(model.parameters(), lr=R.lr), s, "sr_mse", device)
    return model.eval(), history, (s, train, test_x, test_y)


def train_sr_mse(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    model, history, (_, _, test_x, test_y) = _trained_sr_mse(profile, device)
    return _upscaler(lambda x, g: model(x.to(device)), test_x, test_y, n_params(model), history.seconds,
                     n_scored or N_SCORED[profile])


def train_srgan(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    mse, mse_history, (s, train, test_x, test_y) = _trained_sr_mse(profile, device)
    R = recipes.SRGAN_FT
    srgan = R.build(s)
    srgan.generator.load_state_dict(mse.state_dict())  # from the MSE network, as lesson 8 and the paper do
    srgan = srgan.to(device)
    step = SRGANStep(srgan, PerceptualFeatures(digit_classifier()), adv_weight=R.adv_weight, lr=R.lr, betas=R.betas)
    history = _fit(srgan, train, step, None, s, "srgan", device)
    return _upscaler(lambda x, g: srgan.upscale(x.to(device)), test_x, test_y, n_params(srgan.generator),
                     mse_history.seconds + history.seconds, n_scored or N_SCORED[profile])


def _trained_sr3(profile: str, device: torch.device):
    s, train, test_x, test_y = _data(profile)
    R = recipes.SR3
    model = R.build(s).to(device)
    schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
    ema = EMA(model, decay=R.ema_decay)
    history = _fit(model, train, sr3_step(schedule, torch.Generator().manual_seed(0)),
                   torch.optim.Adam(model.parameters(), lr=R.lr), s, "sr3", device, [ema])
    return ema.model.eval(), schedule, history, (s, train, test_x, test_y)


def train_sr3(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    sr3, schedule, history, (s, _, test_x, test_y) = _trained_sr3(profile, device)
    return _upscaler(lambda x, g: sr3_upscale(sr3, schedule, x, steps=s.ddim_steps[0], generator=g), test_x, test_y,
                     n_params(sr3), history.seconds, n_scored or N_SCORED[profile])


def train_cascade(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    sr3, schedule, sr3_history, (s, train, _, _) = _trained_sr3(profile, device)
    R = recipes.BASE_7
    base = R.build(s).to(device)
    base_schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
    ema = EMA(base, decay=R.ema_decay)
    small_train = TensorDataset(downscale(train.tensors[0]), train.tensors[1])
    step = cfg_step(base_schedule, p_uncond=R.p_uncond, generator=torch.Generator().manual_seed(0),
                    min_snr_gamma=R.min_snr_gamma)
    history = _fit(base, small_train, step, torch.optim.Adam(base.parameters(), lr=R.lr), s, "base", device, [ema])

    def sample(n, generator):
        labels = (torch.arange(n) % 10)[torch.randperm(n, generator=generator)]
        small, _ = ddim_sample(GuidedModel(ema.model, labels, W), base_schedule, n=n, steps=s.ddim_steps[0],
                               shape=(1, 7, 7), generator=generator, device=device)
        return sr3_upscale(sr3, schedule, small, steps=s.ddim_steps[0], generator=generator).cpu(), labels

    return Trained(sample, n_params(base) + n_params(sr3), sr3_history.seconds + history.seconds,
                   extra={"base_train_seconds": history.seconds, "guidance_w": W})
