"""course_lib: the small library behind the image-generation course's notebooks.

One module per idea:

- `config`           profiles (`COURSE_PROFILE`), device choice, seeding, `start_lesson`
- `data`             MNIST / Fashion-MNIST, offline first (a real MNIST subset ships inside the package), augmentation
- `autoencoders`     lesson 1: MLP and convolutional autoencoders, PCA, corruptions for denoising
- `vae`              lesson 2: reparameterization, closed-form KL, ELBO, MLP and convolutional VAEs, lerp / slerp
- `gans`             lesson 3: GAN losses (minimax, non-saturating, WGAN-GP), optimal D and JSD, MLP and DCGAN
                     networks, one alternating training step, a guard that stops failed runs
- `toy2d`            lesson 3: 2-D toy distributions (ring, grid, moons, ...) and mode coverage
- `gan_dashboard`    lesson 3: a live GAN lab for the 2-D toys (heatmap of D, gradient arrows, controls)
- `diffusion`        lesson 4: noise schedules, the forward process, the simple loss, DDPM and DDIM samplers
- `unet`             lesson 4: the time-conditioned U-Net that predicts the noise (any input shape: lesson 6's latents)
- `conditional`      lesson 5: one-hot labels, conditional GAN and VAE, label dropout, classifier-free guidance
- `pix2pix`          lesson 5: image-to-image translation (U-Net generator, patch discriminator, cGAN + L1)
- `latent_diffusion` lesson 6: the autoencoder to small spatial latents, scaled latents, decoding
- `fastpath`         bfloat16 / mixed precision where the hardware supports it; `python -m course_lib.fastpath`
- `training`         one `fit` loop with callbacks (live plots, snapshots, EMA), history, checkpoints and clean
                     interrupts
- `checkpoints`      safetensors weights and resumable training state
- `liveplot`         a live loss / image figure that updates in place
- `plotting`         image grids, latent scatter plots, PNG bytes
- `widgets`          the latent explorer and the frame scrubber
- `classifiers`      linear probes, and the digit classifier behind the metrics
- `metrics`          Frechet distance, class accuracy, precision / recall, with reference points
- `benchmark`        `python -m course_lib.benchmark`: train, sample and score every lesson's model
- `results_table`    the README's results table, made from a benchmark's results.json
- `train_classifier` `python -m course_lib.train_classifier`: retrains the bundled digit classifier
- `exercises`        self-checking exercises with hints and solutions
- `pretrained`       the bundled pretrained weights (USE_PRETRAINED), their manifest and how they are built
- `doctor`           `course_lib.doctor()` / `python -m course_lib.doctor`: is this machine ready for the course?
- `colab`            `python -m course_lib.colab`: the Colab badges and install cell, from the repository URL
- `figures`          `python -m course_lib.figures`: the slides' figures, from the bundled data and weights
"""

__version__ = "0.1.0"


def __getattr__(name):
    if name == "doctor":  # `course_lib.doctor()`: the module is imported on first use, and calling it runs the checks
        import importlib

        return importlib.import_module(".doctor", __name__)
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
