"""The one setup call of every lesson.

    PROFILE, S, device = start_lesson("autoencoders")

It decides the profile (once: everything after it is handed `PROFILE` or `S`), looks up the lesson's sizes in
`course_lib.recipes`, picks the device, seeds everything, switches instructor mode (bundled weights) and presenter
mode (large figures) on or off, and says what it chose.
"""

from dataclasses import asdict

import torch

from . import plotting
from .config import WAIT_POLICY, WAIT_POLICY_WHY, env_flag, pick_device, profile_name, seed_everything
from .data import BUNDLED_ROOT, FULL_MNIST_TRAIN, has_full_mnist
from .pretrained import BUILD_PROFILE, pretrained_switch, use_pretrained
from .recipes import LessonSettings, lesson_settings
from .wait_policy import TORCH_FIRST


def start_lesson(lesson: str, seed: int = 0, pretrained: bool = False,
                 presenter: bool = False) -> tuple[str, LessonSettings, torch.device]:
    """Read the profile, look up the lesson's sizes, pick the device, seed everything, and size the figures.

    `pretrained=True` (or `COURSE_PRETRAINED=1`) makes every training cell load the bundled weights instead of
    training; the sizes are then those of the profile the weights were trained in (`cpu`). `presenter=True` (or
    `COURSE_PRESENTER=1`) makes fonts, figures and widget images larger, for a projector. The `gpu` profile is
    sized for the full MNIST: where it cannot be had (offline, a failed download), the `cpu` profile is used, and
    the lesson says so.

    >>> PROFILE, S, device = start_lesson("vae")  # doctest: +ELLIPSIS
    profile=smoke  device=...
    >>> S.batch_size
    64
    """
    from_environment = env_flag("COURSE_PRETRAINED")  # on even when the cell says False: the messages say which
    switch = ("both" if pretrained else "environment") if from_environment else "argument"
    pretrained = pretrained or from_environment
    presenter = presenter or env_flag("COURSE_PRESENTER")
    profile = BUILD_PROFILE if pretrained else profile_name()
    device = pick_device()
    if profile == "gpu" and not has_full_mnist():  # the gpu profile's epochs on 4,000 digits: too few steps
        print(f"The gpu profile is sized for the full MNIST ({FULL_MNIST_TRAIN:,} training digits), which could not "
              f"be loaded here, and its epochs over the {bundled_digits('train'):,} bundled digits are too few steps "
              f"to train the lessons' models. Using the cpu profile's sizes, made for the bundled digits, on the "
              f"{device.type.upper()} instead. For the gpu profile: connect to the internet (or set "
              f"COURSE_DATA_MIRROR) and restart the kernel.")
        profile = "cpu"
    settings = lesson_settings(lesson, profile)
    seed_everything(seed)
    use_pretrained(pretrained, switch)
    plotting.presenter_mode(presenter)
    sizes = "  ".join(f"{k}={v}" for k, v in asdict(settings).items() if v not in (0, ()))  # what this lesson uses
    print(f"profile={profile}  device={device}  {sizes}")
    if device.type == "cpu" and WAIT_POLICY_WHY == TORCH_FIRST:
        print("torch was imported before course_lib, so its threads spin while they wait: training can be 10x slower "
              "while other programs use the CPU. Restart the kernel and run the setup cell first.")
    elif device.type == "cpu":
        print(f"torch's CPU threads: {torch.get_num_threads()}, wait policy: {WAIT_POLICY}; {WAIT_POLICY_WHY}")
    bundled = bundled_digits("train")
    if settings.n_train > bundled:
        print(f"n_train={settings.n_train} is an upper bound: without the full MNIST (offline) the lesson trains on "
              f"the {bundled:,} training digits bundled with the course; the data cell prints how many it loaded.")
    if pretrained:
        on, off = pretrained_switch()
        overrides = "; it wins over USE_PRETRAINED = False" if switch == "environment" else ""
        print(f"Instructor mode is on ({on}{overrides}): every training cell loads the bundled weights (trained in "
              f"the '{BUILD_PROFILE}' profile) instead of training. To train instead, {off}.")
    return profile, settings, device


def bundled_digits(split: str) -> int:
    """How many digits the MNIST subset bundled with the course holds in `split` (read from its IDX file's header).

    >>> bundled_digits("train"), bundled_digits("test")
    (4000, 1000)
    """
    path = BUNDLED_ROOT / "MNIST" / "raw" / f"{'train' if split == 'train' else 't10k'}-labels-idx1-ubyte"
    with open(path, "rb") as f:
        return int.from_bytes(f.read(8)[4:], "big")  # magic number, then the count
