"""Run settings: which profile (how big a run), which device, and one call that seeds everything.

The profile comes from the environment variable `COURSE_PROFILE`:

- `smoke`: every cell runs in seconds with tiny numbers (what CI runs);
- `cpu`:   recognizable results on a laptop CPU in a few minutes;
- `gpu`:   the full lesson (Colab with a GPU).

With no `COURSE_PROFILE`, it is `gpu` when CUDA is there and `cpu` otherwise.

    >>> from course_lib.config import lesson_settings
    >>> s = lesson_settings("autoencoders", profile="smoke")
    >>> s.epochs, s.batch_size
    (10, 64)
"""

import os
import random
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

PROFILES = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class LessonSettings:
    """How much data and training one lesson gets in one profile."""

    n_train: int  # training images (capped by what the data source holds)
    n_test: int  # held-out images
    epochs: int
    batch_size: int
    toy_steps: int = 0  # lesson 3 only: training steps of each 2-D toy GAN
    channels: tuple[int, ...] = ()  # lesson 4: the U-Net's channels at 28, 14 and 7 pixels
    ddim_steps: tuple[int, ...] = ()  # lesson 4: the sampling steps compared in the DDIM table
    n_sampled: int = 0  # lesson 4: digits sampled for each row of that table
    per_model: tuple[tuple[str, int, int], ...] = ()  # lessons with several models: (name, epochs, batch size)

    def for_model(self, name: str) -> tuple[int, int]:
        """(epochs, batch size) of model `name` in a lesson that trains several; the lesson's own otherwise.

        >>> lesson_settings("conditional", profile="cpu").for_model("cgan")
        (35, 64)
        """
        for model, epochs, batch_size in self.per_model:
            if model == name:
                return epochs, batch_size
        if self.per_model:
            known = ", ".join(model for model, _, _ in self.per_model)
            raise ValueError(f"No settings for a model called {name!r} here; this lesson trains: {known}.")
        return self.epochs, self.batch_size


# One row per lesson, one column per profile. Lessons look their numbers up here, never hard-code them.
_SETTINGS = {
    "autoencoders": {
        "smoke": LessonSettings(n_train=2048, n_test=500, epochs=10, batch_size=64),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=20, batch_size=64),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=20, batch_size=128),
    },
    "vae": {
        "smoke": LessonSettings(n_train=2048, n_test=500, epochs=10, batch_size=64),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=60, batch_size=64),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=30, batch_size=128),
    },
    # lesson 3: `epochs` and `batch_size` are DCGAN's; `toy_steps` is how long each 2-D toy GAN trains
    "gan": {
        "smoke": LessonSettings(n_train=2048, n_test=500, epochs=3, batch_size=64, toy_steps=200),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=40, batch_size=64, toy_steps=1500),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=15, batch_size=128, toy_steps=3000),
    },
    "diffusion": {
        "smoke": LessonSettings(n_train=1024, n_test=500, epochs=2, batch_size=32, channels=(8, 16, 16),
                                ddim_steps=(10, 20), n_sampled=50),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=30, batch_size=32, channels=(16, 32, 64),
                              ddim_steps=(10, 20, 50, 100, 200), n_sampled=100),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=20, batch_size=128, channels=(32, 64, 128),
                              ddim_steps=(10, 20, 50, 100, 1000), n_sampled=1000),
    },
    # lesson 5: four models, each with its own epochs and batch size; `channels` is the guided U-Net's
    "conditional": {
        "smoke": LessonSettings(n_train=1024, n_test=500, epochs=2, batch_size=64, channels=(8, 16, 16), n_sampled=60,
                                per_model=(("cgan", 2, 64), ("pix2pix", 2, 64), ("cvae", 4, 64), ("cfg", 2, 64))),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=40, batch_size=64, channels=(16, 32, 64),
                              n_sampled=300,
                              per_model=(("cgan", 35, 64), ("pix2pix", 16, 64), ("cvae", 60, 64), ("cfg", 30, 32))),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=15, batch_size=128, channels=(32, 64, 128),
                              n_sampled=1000,
                              per_model=(("cgan", 15, 128), ("pix2pix", 5, 128), ("cvae", 30, 128), ("cfg", 20, 128))),
    },
    # lesson 6: the autoencoder and the latent U-Net (`channels`); the pixel model it is compared with uses lesson 5's
    "latent_diffusion": {
        "smoke": LessonSettings(n_train=1024, n_test=500, epochs=2, batch_size=32, channels=(8, 16, 16), n_sampled=60,
                                per_model=(("autoencoder", 3, 64), ("latent", 4, 32))),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=40, batch_size=32, channels=(32, 64, 64),
                              n_sampled=300, per_model=(("autoencoder", 20, 64), ("latent", 40, 32))),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=20, batch_size=128, channels=(64, 128, 128),
                              n_sampled=1000, per_model=(("autoencoder", 10, 128), ("latent", 20, 128))),
    },
}
LESSONS = tuple(_SETTINGS)

# How many generated images are scored (Frechet distance etc.) in each profile; fewer make a noisier number.
N_SCORED = {"smoke": 200, "cpu": 1000, "gpu": 5000}


def profile_name() -> str:
    """The active profile: `COURSE_PROFILE` if set, else `gpu` with CUDA and `cpu` without."""
    name = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if not name:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(
            f"COURSE_PROFILE={name!r} is not a profile. Use one of {', '.join(PROFILES)}, "
            f"e.g. `export COURSE_PROFILE=cpu` (or unset it to choose automatically)."
        )
    return name


def lesson_settings(lesson: str, profile: str | None = None) -> LessonSettings:
    """Dataset size, epochs and batch size for `lesson` in `profile` (default: the active profile)."""
    if lesson not in _SETTINGS:
        raise ValueError(f"Unknown lesson {lesson!r}. Known lessons: {', '.join(LESSONS)}.")
    profile = profile or profile_name()
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}. Use one of {', '.join(PROFILES)}.")
    return _SETTINGS[lesson][profile]


def pick_device(prefer: str | None = None) -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU. `prefer` (or `COURSE_DEVICE`) overrides.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    prefer = prefer or os.environ.get("COURSE_DEVICE")
    if prefer:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("You asked for CUDA but this machine has no usable GPU. Use device 'cpu'.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError("You asked for MPS but it is not available here. Use device 'cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and GPU) so a run can be repeated; returns a seeded torch.Generator.

    >>> _ = seed_everything(0); a = torch.rand(2)
    >>> _ = seed_everything(0); torch.equal(a, torch.rand(2))
    True
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


@contextmanager
def one_thread():
    """Run torch on one CPU thread inside the block. These networks are tiny: a second thread gains nothing, and
    when another program shares the cores, threads waiting for each other made a step 100 times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "False")


def start_lesson(lesson: str, seed: int = 0, pretrained: bool = False,
                 presenter: bool = False) -> tuple[str, LessonSettings, torch.device]:
    """What every lesson's setup cell does: read the profile, look up the lesson's sizes, pick the device, seed
    everything, and size the figures.

        PROFILE, S, device = start_lesson("autoencoders")

    `pretrained=True` (or `COURSE_PRETRAINED=1`) makes every training cell load the bundled weights instead of
    training; the sizes are then those of the profile the weights were trained in (`cpu`). `presenter=True` (or
    `COURSE_PRESENTER=1`) makes fonts, figures and widget images larger, for a projector.
    """
    from . import plotting
    from .pretrained import BUILD_PROFILE, use_pretrained

    pretrained = pretrained or _env_flag("COURSE_PRETRAINED")
    presenter = presenter or _env_flag("COURSE_PRESENTER")
    profile = BUILD_PROFILE if pretrained else profile_name()
    settings = lesson_settings(lesson, profile)
    device = pick_device()
    seed_everything(seed)
    use_pretrained(pretrained)
    plotting.presenter_mode(presenter)
    print(f"profile={profile}  device={device}  {settings}")
    if pretrained:
        print(f"USE_PRETRAINED: every training cell loads the bundled weights (trained in the '{BUILD_PROFILE}' "
              f"profile) instead of training.")
    return profile, settings, device
