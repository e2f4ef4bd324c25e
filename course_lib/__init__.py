"""course_lib: the small library behind the image-generation course's notebooks.

One module per idea, in layers that only import downwards (tests/test_layers.py checks it):

tools/ (top)     `python -m course_lib.tools.NAME`, for whoever builds and checks the course; lessons never import it:
                 benchmark, peers (+ peer_models), bundle (pretrained weights), figures, colab, results_table,
                 train_classifier, speed, doctor, build_mnist_subset
lesson support   `lesson` (start_lesson: the lessons' one setup call), `exercises/` (one file per lesson)
ui               `plotting`, `liveplot`, `widgets`, `gan_dashboard`
recipes          `recipes`: every model's architecture and training numbers, and each lesson's sizes per profile
measures         `metrics`: Frechet distance, class accuracy, precision / recall, with reference points;
                 `patches`: whether a picture is made of another's patches (lesson 7's SinGAN)
models           `autoencoders`, `vae`, `gans`, `toy2d`, `diffusion`, `unet`, `conditional`, `pix2pix`,
                 `latent_diffusion`, `classifiers`, `stylegan`, `progressive`, `gan_variants`, `singan`,
                 `diffusion_theory`
training         `training` (fit + callbacks), `checkpoints`, `fastpath` (16-bit where it is faster),
                 `pretrained` (instructor mode: bundled weights instead of training)
bottom           `config` (profiles, device, seeding), `nets` (evaluating, n_params), `data` (offline-first MNIST)

`course_lib.doctor()` checks whether this machine is ready for the course.
"""

import os
import sys

__version__ = "0.1.0"

# While torch's CPU threads wait for each other they spin by default (OpenMP's active wait policy). When the cores are
# also busy (a browser, a second kernel, a 2-core cloud VM) the spinning threads take turns with the working ones, and a
# training step became 10-15 times slower; sleeping while waiting costs some speed on an idle machine (measured in the
# README, "On a busy machine"; OMP_WAIT_POLICY=ACTIVE brings the spinning back). OpenMP reads the setting once, when
# torch is first imported, so it is set here, before any course module imports torch; a value set in the environment
# is kept. `config.WAIT_POLICY` says what is in force.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name):
    if name == "doctor":  # `course_lib.doctor()`: the module is imported on first use, and calling it runs the checks
        import importlib

        return importlib.import_module(".tools.doctor", __name__)
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
