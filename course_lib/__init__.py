"""course_lib: the small library behind the image-generation course's notebooks.

One module per idea, in layers that only import downwards (tests/test_layers.py checks it):

tools/ (top)     `python -m course_lib.tools.NAME`, for whoever builds and checks the course; lessons never import it:
                 benchmark, peers (+ peer_models), bundle (pretrained weights), figures, colab, results_table,
                 train_classifier, speed, wait_policies, doctor, build_mnist_subset
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
bottom           `config` (profiles, device, seeding), `nets` (evaluating, n_params), `data` (offline-first MNIST),
                 `wait_policy` (how torch's CPU threads wait: chosen on import, before torch starts)

`course_lib.doctor()` checks whether this machine is ready for the course.
"""

# First of all: how torch's CPU threads will wait for each other, chosen before any course module imports torch.
from . import wait_policy

# Then: the CPU treats denormal numbers (below about 1e-38) as 0, set before torch starts its threads, since each
# thread keeps the setting it started with (set later, only the thread that set it flushes). Computing with them is
# many times slower: late in training, lesson 5's 2-D VAE went from 0.40 s to 0.73-0.82 s per epoch (2 cores, Intel
# Xeon); flushed, every epoch took 0.40 s and the last epoch's loss was the same (136.08).
import torch

torch.set_flush_denormal(True)

__all__ = ["doctor", "wait_policy"]

__version__ = "0.1.0"


def __getattr__(name):
    if name == "doctor":  # `course_lib.doctor()`: the module is imported on first use, and calling it runs the checks
        import importlib

        return importlib.import_module(".tools.doctor", __name__)
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
