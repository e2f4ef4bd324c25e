"""Train each lesson's model in a profile, sample from it, and score the samples.

    python -m course_lib.tools.benchmark --profile cpu --out runs/cpu            # every model
    python -m course_lib.tools.benchmark --profile smoke --out /tmp/b --only ae  # one model, seconds

Writes `OUT/results.json` (per model: profile, device, training seconds, seconds to sample 100 images, parameters,
and the quality scores of `course_lib.metrics`; every Frechet distance `fd...` comes with `fd2...`, the same distance
in the second feature network, to cross-check it) and `OUT/NAME.npz` with `images` (N x 1 x 28 x 28, float32 in
[0, 1]; lesson 10's `t2i`: N x 3 x 28 x 28 colour) and, for conditional models, `labels` (the class asked for). Turn results.json into the README's table with
`python -m course_lib.tools.results_table OUT/results.json`.

Only a finished training is a result. A model whose training stopped early (a NaN loss, the GAN guard) is written as
`"status": "stopped (REASON)"` without scores, and the others still run; Ctrl-C writes the models finished so far
and marks the one it stopped as `"status": "interrupted"`. The exit code is 0 only when every model finished
(1: some stopped, 130: interrupted). results.json is rewritten after each model, so a run killed outright keeps
what it had finished.
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .. import recipes
from ..autoencoders import ae_loss, fit_code_gaussian
from ..conditional import GuidedModel, cfg_step, cvae_step
from ..config import N_SCORED, PROFILES, pick_device, seed_everything
from ..data import load_dataset, make_loader
from ..diffusion import DiffusionSchedule, ddim_sample, ddpm_sample
from ..fastpath import prepare_model
from ..gans import GANGuard, GANStep
from ..latent_diffusion import decode_latents, encode_dataset
from ..metrics import class_accuracy, fd_to_training_digits, quality_report
from ..nets import n_params
from ..pix2pix import Pix2PixStep, hide_lower_half, sharpness
from ..recipes import lesson_settings
from ..training import EMA, Callback, CosineSchedule, fit
from ..vae import negative_elbo
from .benchmark_flow import train_flow, train_flow_fast
from .benchmark_restoration import train_cascade, train_sr3, train_sr_mse, train_srgan
from .benchmark_text_to_image import train_t2i
from .setups import Trained, Unfinished, dcgan_setup, ddpm_setup, finished, vae_setup
from .train_classifier import UPPER_HALF_EPOCHS, upper_half_accuracy


class FDCurve(Callback):
    """The Frechet distance of 500 samples after every `every` epochs, against the seconds of training so far (the
    time spent scoring not counted): GANs trained for different times are compared at equal seconds with it.
    `points2` is the same curve in the second feature network."""

    def __init__(self, sample: Callable[[int, torch.Generator], torch.Tensor], every: int):
        self.sample, self.every, self.points, self.start, self.scoring = sample, every, [], time.perf_counter(), 0.0
        self.points2 = []

    def on_epoch_end(self, state) -> None:
        if (state.epoch + 1) % self.every == 0:
            start = time.perf_counter()
            images = self.sample(500, torch.Generator().manual_seed(9))
            seconds = round(start - self.start - self.scoring, 1)
            self.points.append([seconds, round(fd_to_training_digits(images), 2)])
            self.points2.append([seconds, round(fd_to_training_digits(images, network="second"), 2)])
            self.scoring += time.perf_counter() - start


def train_ae(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    """Lesson 1's convolutional autoencoder (16-number code); "sampling" decodes codes drawn from a Gaussian fitted
    to the training codes, since a plain autoencoder has no prior to sample from."""
    s = lesson_settings("autoencoders", profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    R = recipes.AE16
    model = R.build(s).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
    history = finished(fit(model, make_loader(train, s.batch_size), lambda m, b: ae_loss(b[0], m(b[0])), optimizer,
                           s.epochs, device=device, progress=False))
    with torch.no_grad():
        codes = torch.cat([model.encode(x.to(device)).cpu() for x in train.tensors[0].split(1000)])
    prior = fit_code_gaussian(codes)

    @torch.no_grad()
    def sample(n, generator):
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))  # MultivariateNormal has no generator
        return model.decode(prior.sample((n,)).to(device)).cpu(), None

    return Trained(sample, n_params(model), history.seconds)


def train_vae(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    """Lesson 2's convolutional VAE (16-number code), sampled from its prior N(0, I); also reports the negative
    ELBO on the bundled test split (nats per image)."""
    s = lesson_settings("vae", profile)
    epochs, batch_size = s.for_model("conv")
    train = load_dataset("mnist", "train", n=s.n_train)
    vae = vae_setup(profile, device)
    history = finished(fit(vae.model, make_loader(train, batch_size), vae.step, vae.optimizer, epochs, device=device,
                           callbacks=[CosineSchedule(vae.optimizer, epochs)], progress=False))
    test_x = load_dataset("mnist", "test", source="bundled").tensors[0]
    return Trained(lambda n, generator: (vae.sample(n, generator), None), n_params(vae.model), history.seconds,
                   extra={"nelbo_test": negative_elbo(vae.model, test_x)})


def train_dcgan(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    """Lesson 3's DCGAN (`recipes.DCGAN`), sampled from z ~ N(0, I)."""
    s = lesson_settings("gan", profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    dcgan = dcgan_setup(profile, device)
    curve = FDCurve(dcgan.sample, every=max(1, s.epochs // 20))
    history = finished(fit(dcgan.model, make_loader(train, s.batch_size), dcgan.step, dcgan.optimizer, s.epochs,
                           device=device, callbacks=[*dcgan.callbacks, curve], progress=False))
    return Trained(lambda n, generator: (dcgan.sample(n, generator), None), n_params(dcgan.model.generator),
                   history.seconds - curve.scoring, extra={"d_params": n_params(dcgan.model.discriminator),
                                                           "fd_500_over_seconds": curve.points,
                                                           "fd2_500_over_seconds": curve.points2})


def train_ddpm(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    """Lesson 4's DDPM (`recipes.DDPM`), sampled with DDIM in 50 steps (eta = 0). Also
    scores DDPM's own 1000-step sampler against DDIM-50 on the same, smaller number of images (1000 steps per image
    are slow on a CPU)."""
    s = lesson_settings("diffusion", profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    ddpm = ddpm_setup(profile, device)
    history = finished(fit(ddpm.model, make_loader(train, s.batch_size), ddpm.step, ddpm.optimizer, s.epochs,
                           device=device, callbacks=ddpm.callbacks, progress=False))
    n_both = (n_scored or N_SCORED[profile]) // 5
    start = time.perf_counter()
    ddpm_images = ddpm.sample(n_both, torch.Generator().manual_seed(4), sampler=ddpm_sample)
    ddpm_seconds = time.perf_counter() - start
    ddim_images = ddpm.sample(n_both, torch.Generator().manual_seed(4), steps=50)
    return Trained(lambda n, generator: (ddpm.sample(n, generator, steps=50), None), n_params(ddpm.model),
                   history.seconds, extra={f"fd_ddpm1000_{n_both}": fd_to_training_digits(ddpm_images),
                                           f"fd_ddim50_{n_both}": fd_to_training_digits(ddim_images),
                                           f"fd2_ddpm1000_{n_both}": fd_to_training_digits(ddpm_images, "second"),
                                           f"fd2_ddim50_{n_both}": fd_to_training_digits(ddim_images, "second"),
                                           "ddpm1000_seconds_100": ddpm_seconds * 100 / n_both})


def train_stylegan(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    """Lesson 7's style-based generator (`recipes.STYLEGAN`) with lesson 3's GAN step, the guard and the lesson's
    epochs; sampled with psi = 1 (no truncation) and fresh per-layer noise. Also scores psi = 0.7 on the same
    number of images (truncation: precision up, recall down)."""
    R = recipes.STYLEGAN
    s = R.settings(profile)
    epochs, batch_size = s.for_model("stylegan")
    gan = R.build(s).to(device)
    step = GANStep(gan, generator=torch.Generator().manual_seed(0), **R.step_args())

    def sample(n, generator, psi=1.0):
        with torch.no_grad():
            return gan.generator.generate(gan.sample_z(n, generator).to(device), psi, generator=generator).cpu()

    curve = FDCurve(sample, every=max(1, epochs // 20))
    history = finished(fit(gan, make_loader(load_dataset("mnist", "train", n=s.n_train), batch_size), step, None,
                           epochs, device=device, callbacks=[GANGuard(), curve], progress=False))
    truncated = quality_report(sample(n_scored or N_SCORED[profile], torch.Generator().manual_seed(4), psi=0.7))
    extra = {"d_params": n_params(gan.discriminator), "fd_500_over_seconds": curve.points,
             "fd2_500_over_seconds": curve.points2,
             **{f"psi0.7_{key}": truncated[key] for key in ("fd", "fd2", "precision", "recall")}}
    return Trained(lambda n, generator: (sample(n, generator), None), n_params(gan.generator),
                   history.seconds - curve.scoring, extra)


def cycled_labels(n: int, generator: torch.Generator) -> torch.Tensor:
    """n labels, each digit equally often (0-9 repeated), in a shuffled order."""
    return (torch.arange(n) % 10)[torch.randperm(n, generator=generator)]


def train_cgan(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    """Lesson 5's conditional DCGAN (`recipes.CGAN`: the one-hot label into G and D), sampled with every digit
    equally often; scored with the class accuracy of what was asked for."""
    s = lesson_settings("conditional", profile)
    epochs, batch_size = s.for_model("cgan")
    train = load_dataset("mnist", "train", n=s.n_train)
    R = recipes.CGAN
    cgan = prepare_model(R.build(s), device)  # as lesson 5 builds it
    step = GANStep(cgan, generator=torch.Generator().manual_seed(0), **R.step_args())
    history = finished(fit(cgan, make_loader(train, batch_size), step, None, epochs, device=device,
                           callbacks=[GANGuard()], progress=False))

    def sample(n, generator):
        labels = cycled_labels(n, generator)
        return cgan.sample(n, generator, labels=labels).cpu(), labels

    return Trained(sample, n_params(cgan.generator), history.seconds, extra={"d_params": n_params(cgan.discriminator)})


def train_cvae(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    """Lesson 5's conditional VAE (`recipes.CVAE`: MLP, 2-number code, the one-hot label into encoder and decoder),
    sampled from its prior with every digit equally often."""
    s = lesson_settings("conditional", profile)
    epochs, batch_size = s.for_model("cvae")
    train = load_dataset("mnist", "train", n=s.n_train)
    R = recipes.CVAE
    cvae = R.build(s).to(device)
    optimizer = torch.optim.Adam(cvae.parameters(), lr=R.lr)
    history = finished(fit(cvae, make_loader(train, batch_size), cvae_step(beta=R.beta, augment=R.augment), optimizer,
                           epochs, device=device, callbacks=[CosineSchedule(optimizer, epochs)], progress=False))

    def sample(n, generator):
        labels = cycled_labels(n, generator)
        return cvae.eval().sample(n, generator, labels=labels.to(device)).cpu(), labels

    return Trained(sample, n_params(cvae), history.seconds)


def train_pix2pix(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    """Lesson 5's pix2pix on the completion task (`recipes.PIX2PIX`: the lower half of a digit hidden; U-Net
    generator, patch discriminator, loss = cGAN + L1), and the same generator trained with L1 alone
    (`recipes.PIX2PIX_L1`) for comparison. "Samples"
    are completions of held-out digits; their labels are the true digits'. Also reports sharpness (variance of the
    Laplacian) and L1 error of both and of the real digits, and `upper_half_accuracy`, their class accuracy's ceiling."""
    s = lesson_settings("conditional", profile)
    epochs, batch_size = s.for_model("pix2pix")
    train = load_dataset("mnist", "train", n=s.n_train)
    test_x, test_y = load_dataset("mnist", "test", source="bundled").tensors
    models = {}
    for name, R in (("pix2pix", recipes.PIX2PIX), ("l1_only", recipes.PIX2PIX_L1)):
        torch.manual_seed(0)
        model = prepare_model(R.build(s), device)
        step = Pix2PixStep(model, **R.step_args())
        history = finished(fit(model, make_loader(train, batch_size), step, None, epochs, device=device,
                               progress=False), name)
        models[name] = (model, history.seconds)

    def complete(model, n, generator):
        index = torch.randint(len(test_x), (n,), generator=generator)
        return model.translate(hide_lower_half(test_x[index]).to(device)).cpu(), test_y[index]

    l1_only = models["l1_only"][0]
    extra = {"sharpness_real": sharpness(test_x)}
    for name, (model, seconds) in models.items():
        out = torch.cat([model.translate(hide_lower_half(x).to(device)).cpu() for x in test_x.split(500)])
        extra.update({f"sharpness_{name}": sharpness(out), f"l1_error_{name}": (out - test_x).abs().mean().item()})
    fake_l1, labels = complete(l1_only, len(test_x), torch.Generator().manual_seed(5))
    ceiling, ceiling_history = upper_half_accuracy(train, UPPER_HALF_EPOCHS[profile], device)
    finished(ceiling_history, "the upper-half classifier's training")
    extra.update(fd_l1_only=fd_to_training_digits(fake_l1), fd2_l1_only=fd_to_training_digits(fake_l1, "second"),
                 class_accuracy_l1_only=class_accuracy(fake_l1, labels), train_seconds_l1_only=models["l1_only"][1],
                 upper_half_accuracy=ceiling)
    model, seconds = models["pix2pix"]
    return Trained(lambda n, generator: complete(model, n, generator), n_params(model.generator), seconds, extra=extra)


def train_cfg(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    """Lesson 5's classifier-free guidance (`recipes.CFG`: lesson 4's U-Net with a class embedding, labels dropped
    at random), sampled with DDIM (50 steps) at guidance w = 3. Also reports the class accuracy and Frechet
    distance of 500 digits at w = 0, 1, 2, 3 and 5 (the same starting noise for every w)."""
    s = lesson_settings("conditional", profile)
    epochs, batch_size = s.for_model("cfg")
    train = load_dataset("mnist", "train", n=s.n_train)
    R = recipes.CFG
    schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
    model = prepare_model(R.build(s), device)
    optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
    ema = EMA(model, decay=R.ema_decay)
    step = cfg_step(schedule, p_uncond=R.p_uncond, generator=torch.Generator().manual_seed(0),
                    min_snr_gamma=R.min_snr_gamma)
    history = finished(fit(model, make_loader(train, batch_size), step, optimizer, epochs, device=device,
                           callbacks=[ema, CosineSchedule(optimizer, epochs)], progress=False))

    def sample(n, generator, w=3.0):
        labels = cycled_labels(n, generator)
        noise = torch.randn(n, 1, 28, 28, generator=generator)
        images, _ = ddim_sample(GuidedModel(ema.model, labels, w), schedule, noise=noise.to(device), steps=50)
        return images.cpu(), labels

    extra = {}
    for w in (0.0, 1.0, 2.0, 3.0, 5.0):
        images, labels = sample((n_scored or N_SCORED[profile]) // 2, torch.Generator().manual_seed(6), w)
        extra[f"class_accuracy_w{w:g}"] = class_accuracy(images, labels)
        extra[f"fd_w{w:g}"] = fd_to_training_digits(images)
        extra[f"fd2_w{w:g}"] = fd_to_training_digits(images, network="second")
    return Trained(sample, n_params(model), history.seconds, extra=extra)


def train_ldm(profile: str, device: torch.device, n_scored: int | None = None) -> Trained:
    """Lesson 6's latent diffusion: a convolutional autoencoder to 4 x 7 x 7 latents (lesson 1's loss), then lesson
    5's guided diffusion on the scaled latents with a U-Net for 4 x 7 x 7 inputs; sampled with DDIM (50 steps) at
    w = 3 and decoded. Also times a pixel-space U-Net of lesson 5's size sampling 100 digits the same way (timing
    does not depend on training), and reports the class accuracy of the autoencoder's rebuilt test digits."""
    s = lesson_settings("latent_diffusion", profile)
    train = load_dataset("mnist", "train", n=s.n_train)
    epochs, batch_size = s.for_model("autoencoder")
    autoencoder = recipes.LATENT_AE.build(s).to(device)
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=recipes.LATENT_AE.lr)
    ae_history = finished(fit(autoencoder, make_loader(train, batch_size), lambda m, b: ae_loss(b[0], m(b[0])),
                              optimizer, epochs, device=device, callbacks=[CosineSchedule(optimizer, epochs)],
                              progress=False), "the autoencoder's training")
    latents, scale = encode_dataset(autoencoder, train)
    epochs, batch_size = s.for_model("latent")
    R = recipes.LATENT_UNET
    schedule = DiffusionSchedule(T=R.T, kind=R.schedule)
    model = R.build(s).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=R.lr)
    ema = EMA(model, decay=R.ema_decay)
    step = cfg_step(schedule, p_uncond=R.p_uncond, generator=torch.Generator().manual_seed(0),
                    min_snr_gamma=R.min_snr_gamma, image_range=False)
    history = finished(fit(model, make_loader(latents, batch_size), step, optimizer, epochs, device=device,
                           callbacks=[ema], progress=False), "the latent U-Net's training")

    def sample(n, generator, w=3.0):
        labels = cycled_labels(n, generator)
        noise = torch.randn(n, 4, 7, 7, generator=generator).to(device)
        z, _ = ddim_sample(GuidedModel(ema.model, labels, w), schedule, noise=noise, steps=50, image_range=False,
                           clip=None)
        return decode_latents(autoencoder, z, scale), labels

    test_x, test_y = load_dataset("mnist", "test", source="bundled").tensors
    rebuilt = decode_latents(autoencoder, encode_dataset(autoencoder, TensorDataset(test_x, test_y), scale=scale)[0]
                             .tensors[0], scale)
    pixel_unet = recipes.CFG.build(recipes.CFG.settings(profile)).to(device)
    labels, noise = torch.arange(100) % 10, torch.randn(100, 1, 28, 28).to(device)
    ddim_sample(GuidedModel(pixel_unet, labels[:10], 3.0), schedule, noise=noise[:10], steps=50)  # warm-up
    start = time.perf_counter()
    ddim_sample(GuidedModel(pixel_unet, labels, 3.0), schedule, noise=noise, steps=50)
    pixel_seconds = time.perf_counter() - start
    return Trained(sample, n_params(model), ae_history.seconds + history.seconds,
                   extra={"latent_train_seconds": history.seconds, "autoencoder_train_seconds": ae_history.seconds,
                          "autoencoder_params": n_params(autoencoder),
                          "rebuilt_class_accuracy": class_accuracy(rebuilt, test_y),
                          "pixel_sample_seconds_100": pixel_seconds})


BUILT = {"ae": train_ae, "vae": train_vae, "dcgan": train_dcgan, "ddpm": train_ddpm, "cgan": train_cgan,
         "cvae": train_cvae, "pix2pix": train_pix2pix, "cfg": train_cfg, "ldm": train_ldm,
         "stylegan": train_stylegan, "flow": train_flow, "flow_fast": train_flow_fast, "sr_mse": train_sr_mse,
         "srgan": train_srgan, "sr3": train_sr3, "cascade": train_cascade, "t2i": train_t2i}
NAMES = list(BUILT)


def run(profile: str, out: Path, only: list[str] | None = None, n_scored: int | None = None,
        progress: Callable[[str], None] = print) -> dict:
    """Benchmark the models in `only` (default: all) and write results.json and NAME.npz into `out`. `n_scored`
    images are sampled and scored per model (default: `N_SCORED[profile]`); `progress` gets a line as each model
    starts and ends. A Ctrl-C stops the run after writing what finished: it raises `TrainingInterrupted`."""
    unknown = [name for name in only or [] if name not in NAMES]
    if unknown:
        raise SystemExit(f"Unknown model name(s) {', '.join(unknown)}. Valid names: {', '.join(NAMES)}.")
    if profile not in PROFILES:
        raise SystemExit(f"Unknown profile {profile!r}. Use one of {', '.join(PROFILES)}.")
    n_scored = n_scored or N_SCORED[profile]
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device()
    results = {}
    names = only or NAMES
    for i, name in enumerate(names):
        progress(f"[{i + 1}/{len(names)}] {name}: training ({profile} profile) ...")
        start = time.perf_counter()
        try:
            results[name] = _benchmark(name, profile, device, out, n_scored)
        except Unfinished as stop:
            results[name] = {"status": f"stopped ({stop.reason})", "profile": profile, "device": str(device)}
        except KeyboardInterrupt:
            results[name] = {"status": "interrupted", "profile": profile, "device": str(device)}
            _write(out, results)
            progress(f"{name}: interrupted; {out / 'results.json'} keeps the {len(results) - 1} models finished "
                     f"before it.")
            raise
        progress(f"[{i + 1}/{len(names)}] {name}: {results[name]['status']} ({time.perf_counter() - start:.0f} s)")
        _write(out, results)
    return results


def _benchmark(name: str, profile: str, device: torch.device, out: Path, n_scored: int) -> dict:
    """Train model `name`, time its sampling, write NAME.npz, and return its row of results.json."""
    seed_everything(0)
    trained = BUILT[name](profile, device, n_scored)
    generator = torch.Generator().manual_seed(1)
    trained.sample(10, generator)  # warm-up, so the timing below measures sampling, not first-call set-up
    start = time.perf_counter()
    trained.sample(100, generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    sample_seconds = time.perf_counter() - start
    images, labels = trained.sample(n_scored, generator)
    images = images.float().clamp(0, 1)
    arrays = {"images": images.numpy().astype(np.float32)}
    if labels is not None:
        arrays["labels"] = labels.numpy().astype(np.int64)
    if trained.arrays is not None:
        arrays.update({key: value if isinstance(value, np.ndarray) else value.numpy()
                       for key, value in trained.arrays(len(images)).items()})
    np.savez_compressed(out / f"{name}.npz", **arrays)
    scores = quality_report(trained.grey(images) if trained.grey else images, labels, name=name)
    if trained.scores is not None:
        scores.update(trained.scores(images, labels))
    return {
        "status": "ok",
        "profile": profile,
        "device": str(device),
        "train_seconds": round(trained.train_seconds, 2),
        "sample_seconds_100": round(sample_seconds, 4),
        "n_params": trained.n_params,
        "n_images": len(images),
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in {**scores, **trained.extra}.items()},
    }


def _write(out: Path, results: dict) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


def main(argv=None) -> int:
    """The command line; returns the exit code: 0 when every model finished, 1 when some stopped, 130 on Ctrl-C."""
    parser = argparse.ArgumentParser(description="Train, sample and score the course's generative models.")
    parser.add_argument("--profile", default="cpu", help=f"one of {', '.join(PROFILES)}")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json and NAME.npz")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"some of: {', '.join(NAMES)}")
    parser.add_argument("--n-scored", type=int, metavar="N", help="images sampled and scored per model (default: "
                        f"the profile's, {', '.join(f'{p} {n}' for p, n in N_SCORED.items())})")
    args = parser.parse_args(argv)
    if args.n_scored is not None and args.n_scored < 10:
        parser.error(f"--n-scored needs at least 10 images for a Frechet distance, got {args.n_scored}")
    try:
        results = run(args.profile, args.out, args.only, args.n_scored)
    except KeyboardInterrupt:
        print("benchmark interrupted: not every model was scored (exit code 130).", file=sys.stderr)
        return 130
    print(f"wrote {args.out / 'results.json'}")
    failed = [f"{name} ({row['status']})" for name, row in results.items() if row["status"] != "ok"]
    if failed:
        print(f"not results, their training did not finish: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
