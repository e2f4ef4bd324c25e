"""The one setup call of every lesson.

    PROFILE, S, device = start_lesson("autoencoders")

It decides the profile (once: everything after it is handed `PROFILE` or `S`), looks up the lesson's sizes in
`course_lib.recipes`, picks the device, seeds everything, switches instructor mode (bundled weights) and presenter
mode (large figures) on or off, and says what it chose.
"""

import torch

from . import plotting
from .config import env_flag, pick_device, profile_name, seed_everything
from .pretrained import BUILD_PROFILE, use_pretrained
from .recipes import LessonSettings, lesson_settings


def start_lesson(lesson: str, seed: int = 0, pretrained: bool = False,
                 presenter: bool = False) -> tuple[str, LessonSettings, torch.device]:
    """Read the profile, look up the lesson's sizes, pick the device, seed everything, and size the figures.

    `pretrained=True` (or `COURSE_PRETRAINED=1`) makes every training cell load the bundled weights instead of
    training; the sizes are then those of the profile the weights were trained in (`cpu`). `presenter=True` (or
    `COURSE_PRESENTER=1`) makes fonts, figures and widget images larger, for a projector.

    >>> PROFILE, S, device = start_lesson("vae")  # doctest: +ELLIPSIS
    profile=smoke  device=...
    >>> S.batch_size
    64
    """
    pretrained = pretrained or env_flag("COURSE_PRETRAINED")
    presenter = presenter or env_flag("COURSE_PRESENTER")
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
