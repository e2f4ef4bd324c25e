"""How much data and training each lesson gets in each profile (`smoke`, `cpu`, `gpu`): training images, epochs,
batch size, the U-Nets' widths. `start_lesson` hands a lesson its row; the recipes (`course_lib.recipes`) say how each
model is built and trained.

    >>> lesson_settings("diffusion", "smoke").channels
    (8, 16, 16)
"""

from dataclasses import dataclass

from .config import PROFILES

# ---------------------------------------------------------------- how much data and training, per lesson and profile


@dataclass(frozen=True)
class LessonSettings:
    """How much data and training one lesson gets in one profile."""

    n_train: int  # training images (capped by what the data source holds)
    n_test: int  # held-out images
    epochs: int
    batch_size: int
    toy_steps: int = 0  # lesson 3: training steps of each 2-D toy GAN; lesson 7: of each progressive resolution
    channels: tuple[int, ...] = ()  # lessons 4-6: the U-Net's channels at its three resolutions
    ddim_steps: tuple[int, ...] = ()  # lessons 4 and 9: the sampling steps compared in a table
    n_sampled: int = 0  # lessons 4-6: digits sampled for each row of a comparison table
    per_model: tuple[tuple[str, int, int], ...] = ()  # lessons with several models: (name, epochs, batch size)
    copies: int = 1  # lesson 10: how many times each training digit is painted (new colours, size, place, caption)

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
    # lesson 2: the convolutional models train `epochs`; the small 2-D models learn faster and train "2d"'s epochs
    "vae": {
        "smoke": LessonSettings(n_train=2048, n_test=500, epochs=10, batch_size=64,
                                per_model=(("conv", 10, 64), ("2d", 10, 64))),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=60, batch_size=64,
                              per_model=(("conv", 60, 64), ("2d", 20, 64))),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=30, batch_size=128,
                              per_model=(("conv", 30, 128), ("2d", 10, 128))),
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
    # lesson 5: four models, each with its own epochs and batch size; `channels` is the guided U-Net's. pix2pix trains
    # 12 epochs in the `cpu` profile: at 16, the L1 error was 1-6% lower, but in two seeds of each model the class
    # accuracy was 1-3 points lower and the Frechet distance higher on both feature networks (pix2pix: 167 / 147
    # against 119 / 122; second network 4.9 / 4.3 against 2.8 / 3.1; L1 alone: 225 / 206 against 183 / 167)
    "conditional": {
        "smoke": LessonSettings(n_train=1024, n_test=500, epochs=2, batch_size=64, channels=(8, 16, 16), n_sampled=60,
                                per_model=(("cgan", 2, 64), ("pix2pix", 2, 64), ("cvae", 4, 64), ("cfg", 2, 64))),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=40, batch_size=64, channels=(16, 32, 64),
                              n_sampled=300,
                              per_model=(("cgan", 35, 64), ("pix2pix", 12, 64), ("cvae", 60, 64), ("cfg", 12, 32))),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=15, batch_size=128, channels=(32, 64, 128),
                              n_sampled=1000,
                              per_model=(("cgan", 15, 128), ("pix2pix", 5, 128), ("cvae", 30, 128), ("cfg", 20, 128))),
    },
    # lesson 7: four GANs, each with its own epochs; `toy_steps` is how many steps each progressive run spends per
    # resolution (two runs: with and without fade-in); `n_sampled` images score each model
    "gan_architectures": {
        "smoke": LessonSettings(n_train=1024, n_test=500, epochs=2, batch_size=64, toy_steps=12, n_sampled=200,
                                per_model=(("stylegan", 2, 64), ("ebgan", 2, 64), ("msgan", 2, 64))),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=30, batch_size=64, toy_steps=240, n_sampled=1000,
                              per_model=(("stylegan", 30, 64), ("ebgan", 12, 64), ("msgan", 20, 64))),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=15, batch_size=128, toy_steps=2000, n_sampled=5000,
                              per_model=(("stylegan", 15, 128), ("ebgan", 10, 128), ("msgan", 10, 128))),
    },
    # lesson 9: `toy_steps` steps for each 2-D toy network; `ddim_steps` the solver steps its table compares; the flow
    # (`channels`: lesson 4's U-Net) trains `epochs`, then reflow, its one-step distillation and the guided flow start
    # from it for their own epochs; `n_sampled` digits score each row of a table
    "score_and_flow": {
        "smoke": LessonSettings(n_train=1024, n_test=500, epochs=2, batch_size=32, toy_steps=800, channels=(8, 16, 16),
                                ddim_steps=(1, 2), n_sampled=60,
                                per_model=(("flow", 2, 32), ("reflow", 1, 32), ("distill", 1, 32), ("cfg_flow", 1, 32))),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=30, batch_size=32, toy_steps=3000, channels=(16, 32, 64),
                              ddim_steps=(1, 2, 4, 8, 16, 32), n_sampled=300,
                              per_model=(("flow", 30, 32), ("reflow", 8, 32), ("distill", 4, 32), ("cfg_flow", 12, 32))),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=20, batch_size=128, toy_steps=6000,
                              channels=(32, 64, 128), ddim_steps=(1, 2, 4, 8, 16, 32), n_sampled=1000,
                              per_model=(("flow", 20, 128), ("reflow", 4, 128), ("distill", 2, 128),
                                         ("cfg_flow", 5, 128))),
    },
    # lesson 8: SRResNet (MSE), SRGAN (fine-tuned from it), SR3 (`channels`: lesson 4's U-Net), the cascade's 7 x 7
    # base model, and pix2pix translations (sketch -> digit; grey -> colour and stamped -> clean, L1 only vs with the
    # GAN loss); `ddim_steps` are SR3's and SDEdit's sampling steps; `n_sampled` images score each row of a table
    "restoration": {
        "smoke": LessonSettings(n_train=1024, n_test=200, epochs=2, batch_size=32, channels=(8, 16, 16),
                                ddim_steps=(10,), n_sampled=60,
                                per_model=(("sr_mse", 2, 64), ("srgan", 1, 64), ("sr3", 1, 32), ("base", 2, 32),
                                           ("sketch", 1, 64), ("colour", 1, 64), ("watermark", 1, 64))),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=10, batch_size=32, channels=(16, 32, 64),
                              ddim_steps=(50,), n_sampled=300,
                              per_model=(("sr_mse", 10, 64), ("srgan", 4, 64), ("sr3", 10, 32), ("base", 25, 64),
                                         ("sketch", 8, 64), ("colour", 6, 64), ("watermark", 6, 64))),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=10, batch_size=128, channels=(32, 64, 128),
                              ddim_steps=(50,), n_sampled=1000,
                              per_model=(("sr_mse", 10, 128), ("srgan", 4, 128), ("sr3", 10, 128), ("base", 20, 128),
                                         ("sketch", 5, 128), ("colour", 5, 128), ("watermark", 5, 128))),
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
    # lesson 10: the VQ-VAE, the code prior (a transformer), the miniature CLIP and the text-conditioned latent U-Net
    # (`channels`); each digit painted `copies` times; `ddim_steps` are the U-Net's sampling steps; `n_sampled`
    # images per row of the prompt-following tables
    "text_to_image": {
        "smoke": LessonSettings(n_train=1024, n_test=200, epochs=1, batch_size=64, channels=(8, 16, 16),
                                ddim_steps=(5,), n_sampled=40, copies=2,
                                per_model=(("vqvae", 1, 64), ("prior", 1, 64), ("clip", 1, 128), ("unet", 1, 64))),
        "cpu": LessonSettings(n_train=6000, n_test=1000, epochs=10, batch_size=64, channels=(32, 64, 96),
                              ddim_steps=(30,), n_sampled=300, copies=3,
                              per_model=(("vqvae", 5, 64), ("prior", 3, 64), ("clip", 3, 128), ("unet", 10, 64))),
        "gpu": LessonSettings(n_train=60000, n_test=10000, epochs=20, batch_size=128, channels=(64, 128, 192),
                              ddim_steps=(50,), n_sampled=1000, copies=2,
                              per_model=(("vqvae", 5, 128), ("prior", 10, 128), ("clip", 5, 256), ("unet", 20, 128))),
    },
}
LESSONS = tuple(_SETTINGS)


def lesson_settings(lesson: str, profile: str) -> LessonSettings:
    """Dataset size, epochs and batch size for `lesson` in `profile` (one of `config.PROFILES`).

    >>> s = lesson_settings("autoencoders", "smoke")
    >>> s.epochs, s.batch_size
    (10, 64)
    """
    if lesson not in _SETTINGS:
        raise ValueError(f"Unknown lesson {lesson!r}. Known lessons: {', '.join(LESSONS)}.")
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}. Use one of {', '.join(PROFILES)}.")
    return _SETTINGS[lesson][profile]
