"""course_lib: the small library behind the image-generation course's notebooks.

One module per idea:

- `config`       profiles (`COURSE_PROFILE`), device choice, seeding
- `data`         MNIST / Fashion-MNIST, offline first (a real MNIST subset ships inside the package)
- `autoencoders` lesson 1: MLP and convolutional autoencoders, PCA, corruptions for denoising
- `training`     one `fit` loop with callbacks, history, checkpoints and clean interrupts
- `checkpoints`  safetensors weights and resumable training state
- `liveplot`     a live loss / image figure that updates in place
- `plotting`     image grids, latent scatter plots, PNG bytes
- `widgets`      the latent explorer
- `classifiers`  linear probes that measure what a representation knows
- `exercises`    self-checking exercises with hints and solutions
"""

__version__ = "0.1.0"
