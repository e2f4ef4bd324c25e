"""Build, measure and check the bundled pretrained weights (`course_lib/assets/pretrained/`).

    python -m course_lib.tools.bundle build            # every lesson, or name some: build autoencoders gan
    python -m course_lib.tools.bundle verify           # hashes and sizes against the manifest
    python -m course_lib.tools.bundle measure          # measure every bundled model again, next to the manifest's
    python -m course_lib.tools.bundle runall           # time each lesson's Run-All with USE_PRETRAINED on

`build` runs each lesson's notebook in the build profile with build mode on: every `train_or_load` of the lesson
writes what it trained into the bundle (8 bits), a float32 copy under runs/pretrained/float32/, and its manifest entry
(see `course_lib.pretrained`). Then, with the notebook finished, this tool measures each model the lesson bundled:
`metrics` on the bundled file as a lesson loads it (8-bit round trip included), `metrics_before_8bit` on the float32
copy. Rebuilding everything takes about 35 minutes on 2 CPU cores.

The catalogue below says, for each bundled model, how to build its parts (the architecture comes from its recipe in
`course_lib.recipes`, at the build profile's sizes) and what to measure on it.
"""

import argparse
import functools
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import pretrained, recipes
from ..autoencoders import ae_loss
from ..conditional import GuidedModel, class_grid_labels, cvae_loss
from ..data import load_dataset, to_grey
from ..diffusion import DiffusionSchedule, diffusion_loss
from ..diffusion_theory import GaussianMixture2D
from ..editing import sketch, stamp
from ..flow import sample_flow
from ..latent_diffusion import encode_dataset
from ..metrics import class_accuracy, frechet_distance
from ..pix2pix import hide_lower_half
from ..progressive import Grow
from ..scores import annealed_langevin, learned_score, mode_shares, weighted_pair
from ..patches import sample_report as singan_sample_report
from ..singan import sample as singan_sample
from ..superres import downscale, psnr, sr3_upscale
from ..toy2d import CoverageLog, mode_coverage
from ..training import Snapshots
from ..vae import negative_elbo
from . import bundle_text_to_image as t2i

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = {"autoencoders": "01_autoencoders", "vae": "02_variational_autoencoders", "gan": "03_gans",
             "diffusion": "04_diffusion", "conditional": "05_conditional_models",
             "latent_diffusion": "06_latent_diffusion", "gan_architectures": "07_gan_architectures",
             "restoration": "08_restoration_and_editing", "score_and_flow": "09_score_and_flow",
             "text_to_image": "10_text_to_image"}
OUT = Path("runs") / "pretrained"  # the executed notebooks (and, by default, the float32 copies) go here

# ------------------------------------------------------------------ how each bundled model is measured


def _test_digits(n: int = 500):
    x, y = load_dataset("mnist", "test", n=n, source="bundled").tensors
    return x, y


@torch.no_grad()
def _reconstruction(parts: dict) -> dict:
    x, _ = _test_digits()
    model = parts["model"].eval()
    return {"test_reconstruction_error": round(ae_loss(x, model(x)).item(), 4)}


def _vae(parts: dict) -> dict:
    x, _ = _test_digits()
    return {"test_negative_elbo": round(negative_elbo(parts["model"], x), 2)}


@torch.no_grad()
def _cvae(parts: dict) -> dict:
    x, y = _test_digits()
    model = parts["model"].eval()
    torch.manual_seed(0)
    return {"test_negative_elbo": round(cvae_loss(model, x, y)["loss"].item(), 2)}


@torch.no_grad()
def _generator(parts: dict) -> dict:
    x, _ = _test_digits()
    gan = parts["gan"].eval()
    return {"frechet_distance_500": round(frechet_distance(gan.sample(500, torch.Generator().manual_seed(0)), x), 1)}


@torch.no_grad()
def _conditional_generator(parts: dict) -> dict:
    x, _ = _test_digits()
    labels = class_grid_labels(50)
    samples = parts["gan"].eval().sample(500, torch.Generator().manual_seed(0), labels=labels)
    return {"class_accuracy_500": round(class_accuracy(samples, labels), 3),
            "frechet_distance_500": round(frechet_distance(samples, x), 1)}


@torch.no_grad()
def _toy(parts: dict) -> dict:
    report = mode_coverage(parts["gan"].eval().sample(2000, torch.Generator().manual_seed(1)), "ring")
    return {"modes_covered": report["modes_covered"], "high_quality": round(report["high_quality"], 3)}


@torch.no_grad()
def _pix2pix(parts: dict, task: Callable = hide_lower_half, colour: bool = False) -> dict:
    x = load_dataset("colour_digits", "test", n=500, source="bundled").tensors[0] if colour else _test_digits()[0]
    model = parts["model"].eval()
    return {"test_l1_error": round((model(task(x)) - x).abs().mean().item(), 4)}


@torch.no_grad()
def _upscaler(parts: dict) -> dict:
    """PSNR and Frechet distance of the upscaled 7 x 7 test digits (lesson 8)."""
    x, _ = _test_digits()
    model = parts["model"].eval()
    out = (model.generator if hasattr(model, "generator") else model)(downscale(x))
    return {"test_psnr_db": round(psnr(out, x), 2), "frechet_distance_500": round(frechet_distance(out, x), 1)}


def _sr3(parts: dict) -> dict:
    x, y = _test_digits(100)
    out = sr3_upscale(parts["ema"].eval(), DiffusionSchedule(), downscale(x), generator=torch.Generator().manual_seed(0))
    return {"test_psnr_db_100": round(psnr(out, x), 2), "class_accuracy_100": round(class_accuracy(out, y), 3)}


@torch.no_grad()
def _denoising(parts: dict, conditional: bool = False, latents: bool = False, small: bool = False) -> dict:
    """Algorithm 1's loss of the averaged (EMA) weights on test digits (shrunk to 7 x 7 when `small`), with fixed t
    and noise."""
    x, y = _test_digits()
    x = downscale(x) if small else x
    if latents:  # lesson 6 scales latents by 1 / their std over the training digits
        autoencoder = load(recipes.LATENT_AE.name)["model"]
        _, scale = encode_dataset(autoencoder, load_dataset("mnist", "train", source="bundled"))
        x = autoencoder.encode(x) * scale
    model = parts["ema"].eval()
    eps_model = (lambda x_t, t: model(x_t, t, y)) if conditional else model
    loss = diffusion_loss(eps_model, DiffusionSchedule(), x, torch.Generator().manual_seed(0), image_range=not latents)
    return {"test_denoising_loss": round(loss.item(), 4)}


@torch.no_grad()
def _singan(parts: dict) -> dict:
    """New pictures made of the training picture's patches: the lesson's measures on 8 samples."""
    singan = parts["singan"].eval()
    report = singan_sample_report(singan_sample(singan, 8, generator=torch.Generator().manual_seed(1)), singan.image)
    return {key.replace(" ", "_") + "_8": round(value, 4) for key, value in report.items()}


@torch.no_grad()
def _toy_score(parts: dict) -> dict:
    """Annealed Langevin with the learned scores: the share of points at the weight-0.2 Gaussian."""
    R, toy = recipes.TOY_SCORE, weighted_pair()
    generator = torch.Generator().manual_seed(0)
    start = 6 * torch.rand(2000, 2, generator=generator) - 3
    x, _ = annealed_langevin(learned_score(parts["model"].eval(), R.sigmas()), R.sigmas(), start, R.langevin_steps,
                             R.langevin_eps, generator)
    return {"annealed_langevin_share_of_weight_0.2": round(mode_shares(x, toy)[0].item(), 3)}


@torch.no_grad()
def _toy_flow(parts: dict) -> dict:
    """The share of 2,000 points within 3 std of a ring mode after 50 Euler steps, and after one."""
    ring, noise = GaussianMixture2D.ring(), torch.randn(2000, 2, generator=torch.Generator().manual_seed(0))
    near = {}
    for steps in (50, 1):
        x, _ = sample_flow(parts["model"].eval(), noise=noise, steps=steps, image_range=False)
        near[f"near_a_mode_{steps}_steps"] = round(
            (torch.cdist(x, ring.centres).min(dim=1).values < 3 * ring.std).float().mean().item(), 3)
    return near


@torch.no_grad()
def _flow(parts: dict, steps: int, method: str, conditional: bool = False) -> dict:
    """Frechet distance of 500 samples (`steps` steps of `method`) to test digits; guided with w = 3 when
    conditional, and then the class accuracy too."""
    x, _ = _test_digits()
    model = parts["ema"].eval()
    labels = class_grid_labels(50)
    v_model = GuidedModel(model, labels, 3.0) if conditional else model
    samples, _ = sample_flow(v_model, n=500, steps=steps, method=method, generator=torch.Generator().manual_seed(0))
    metrics = {f"frechet_distance_500_{method}{steps}": round(frechet_distance(samples, x), 1)}
    if conditional:
        metrics["class_accuracy_500_w3"] = round(class_accuracy(samples, labels), 3)
    return metrics


# ------------------------------------------------------------------ the catalogue: how to build and measure each


@dataclass
class Entry:
    build: Callable[[], dict]  # -> the parts, built as the lesson builds them
    measure: Callable[[dict], dict]  # parts with the bundled state loaded -> metrics


def built(recipe: recipes.Recipe) -> torch.nn.Module:
    """The recipe's network at the sizes of the profile the bundle is trained in."""
    return recipe.build(recipe.settings(pretrained.BUILD_PROFILE))


def _progressive_parts(gan: torch.nn.Module) -> dict:
    return {"gan": gan, "grow": Grow(gan, steps_per_stage=1, fade_steps=0), "snapshots": Snapshots(None, every=1)}


def _catalogue() -> dict[str, Entry]:
    R = recipes

    def model(recipe, measure):  # the common case: one part, "model"
        return recipe.name, Entry(lambda: {"model": built(recipe)}, measure)

    entries = dict([
        model(R.AE2, _reconstruction), model(R.AE16, _reconstruction), model(R.DAE, _reconstruction),
        model(R.VAE2, _vae), model(R.VAE2_BETA[0.2], _vae), model(R.VAE2_BETA[5.0], _vae),
        model(R.VAE_AE2, _reconstruction), model(R.VAE8, _vae), model(R.VAE_AE8, _reconstruction),
        model(R.PIX2PIX, _pix2pix), model(R.PIX2PIX_L1, _pix2pix), model(R.CVAE, _cvae),
        model(R.LATENT_AE, _reconstruction),
    ])
    entries[R.DCGAN.name] = Entry(lambda: {"gan": built(R.DCGAN), "snapshots": Snapshots(None, every=1)}, _generator)
    entries[R.CGAN.name] = Entry(lambda: {"gan": built(R.CGAN)}, _conditional_generator)
    # the diffusion lessons bundle only the averaged (EMA) weights: those are the ones that sample
    entries[R.DDPM.name] = Entry(lambda: {"ema": built(R.DDPM)}, _denoising)
    entries[R.CFG.name] = Entry(lambda: {"ema": built(R.CFG)}, lambda p: _denoising(p, conditional=True))
    entries[R.LATENT_UNET.name] = Entry(lambda: {"ema": built(R.LATENT_UNET)},
                                        lambda p: _denoising(p, conditional=True, latents=True))
    # lesson 7: the progressive GANs keep where `Grow` left them (fully grown, 28 x 28), and are measured there
    entries[R.STYLEGAN.name] = Entry(lambda: {"gan": built(R.STYLEGAN), "snapshots": Snapshots(None, every=1)},
                                     _generator)
    for recipe in (R.PROGRESSIVE, R.PROGRESSIVE_JUMP):
        entries[recipe.name] = Entry(lambda recipe=recipe: _progressive_parts(built(recipe)), _generator)
    entries[R.EBGAN.name] = Entry(lambda: {"gan": built(R.EBGAN)}, _generator)
    entries[R.SINGAN.name] = Entry(lambda: {"singan": built(R.SINGAN)}, _singan)
    for recipe in (R.MSGAN, R.MSGAN_OFF):
        entries[recipe.name] = Entry(lambda recipe=recipe: {"gan": built(recipe)}, _conditional_generator)
    # lesson 9: the toy networks in float32, the digit flows' averaged weights
    entries[R.TOY_SCORE.name] = Entry(lambda: {"model": built(R.TOY_SCORE)}, _toy_score)
    for recipe in (R.TOY_FLOW, R.TOY_REFLOW):
        entries[recipe.name] = Entry(lambda recipe=recipe: {"model": built(recipe)}, _toy_flow)
    for recipe, steps, method in ((R.FLOW, 8, "heun"), (R.REFLOW, 2, "euler"), (R.DISTILL, 1, "euler")):
        entries[recipe.name] = Entry(lambda recipe=recipe: {"ema": built(recipe)},
                                     functools.partial(_flow, steps=steps, method=method))
    # lesson 8
    for recipe in (R.SR_MSE, R.SRGAN_FT):
        entries[recipe.name] = Entry(lambda recipe=recipe: {"model": built(recipe)}, _upscaler)
    entries[R.SR3.name] = Entry(lambda: {"ema": built(R.SR3)}, _sr3)
    entries[R.BASE_7.name] = Entry(lambda: {"ema": built(R.BASE_7)},
                                   lambda p: _denoising(p, conditional=True, small=True))
    entries[R.SKETCH.name] = Entry(lambda: {"model": built(R.SKETCH)}, functools.partial(_pix2pix, task=sketch))
    for recipe in (R.COLOUR, R.COLOUR_L1):
        entries[recipe.name] = Entry(lambda recipe=recipe: {"model": built(recipe)},
                                     functools.partial(_pix2pix, task=to_grey, colour=True))
    for recipe in (R.WATERMARK, R.WATERMARK_L1):
        entries[recipe.name] = Entry(lambda recipe=recipe: {"model": built(recipe)}, functools.partial(
            _pix2pix, task=lambda y: stamp(y, torch.Generator().manual_seed(0)), colour=True))
    entries[R.CFG_FLOW.name] = Entry(lambda: {"ema": built(R.CFG_FLOW)},
                                     functools.partial(_flow, steps=8, method="heun", conditional=True))
    # lesson 10 (measured in bundle_text_to_image); the text U-Net bundles its averaged weights only
    for recipe, measure_ in ((R.VQ_T2I, t2i.vqvae), (R.CODE_PRIOR, t2i.prior), (R.MINI_CLIP, t2i.clip)):
        entries[recipe.name] = Entry(lambda recipe=recipe: {"model": built(recipe)}, measure_)
    entries[R.T2I_UNET.name] = Entry(lambda: {"ema": built(R.T2I_UNET)}, t2i.unet)
    for recipe in (R.TOY_GAN, R.TOY_WGAN_GP):
        for seed in R.TOY_SEEDS:  # `train_toy_gan` bundles one run per seed
            entries[f"{recipe.name}_seed{seed}"] = Entry(
                lambda recipe=recipe: {"gan": built(recipe), "coverage": CoverageLog(None, "ring", 1)}, _toy)
    return dict(sorted(entries.items()))


@functools.cache
def catalogue() -> dict[str, Entry]:
    """Every bundled model: how its lesson builds it, and what the manifest measures on it."""
    return _catalogue()


def load(name: str, file: Path | None = None) -> dict:
    """The parts of bundled model `name`, built as its lesson builds them and loaded (eval mode); from `file` (e.g.
    a build's float32 copy) instead of the verified bundled file when given.

    >>> sorted(load("gan/dcgan"))
    ['gan', 'snapshots']
    """
    if name not in catalogue():
        raise KeyError(f"Unknown bundled model '{name}'. Known: {', '.join(catalogue())}.")
    parts = catalogue()[name].build()
    if file is None:
        pretrained.load_into(name, **parts)
    else:
        pretrained.load_file_into(file, name, **parts)
    return parts


def measure(name: str, file: Path | None = None) -> dict:
    """Load bundled model `name` (or `file`, see `load`) and measure it: the numbers the manifest records."""
    with torch.random.fork_rng():  # measuring draws noise; the caller's random state is left as it was
        return catalogue()[name].measure(load(name, file))


def lesson_models(lesson: str) -> list[str]:
    """The bundled models that `lesson`'s notebook trains."""
    return [name for name in catalogue() if name.split("/")[0] == lesson]


def record_metrics(names: list[str]) -> None:
    """Measure each freshly built model and write the numbers into its manifest entry: `metrics` on the bundled
    file (as a lesson loads it), `metrics_before_8bit` on the build's float32 copy."""
    manifest = pretrained.read_manifest()
    for name in names:
        copy = pretrained.float32_copy(name)
        if name not in manifest["models"] or not copy.exists():
            raise RuntimeError(f"The build did not bundle '{name}' (no manifest entry or no float32 copy {copy}); "
                               f"does its notebook still train it through train_or_load('{name}', ...)?")
        entry = manifest["models"][name]
        entry["metrics"] = measure(name)
        entry["metrics_before_8bit"] = measure(name, copy)
        print(f"  {name}: {entry['metrics']} (before 8 bits: {entry['metrics_before_8bit']})", flush=True)
    pretrained.write_manifest(manifest)


# ------------------------------------------------------------------ running the lessons


def build_env(lesson: str) -> dict[str, str]:
    """The variables a lesson's notebook runs with when it is built: the build profile, bundled digits, no display,
    and build mode on (with where the float32 copies go and which notebook is recorded)."""
    return {"COURSE_PROFILE": pretrained.BUILD_PROFILE, "COURSE_PRETRAINED": "0", "COURSE_OFFLINE": "1",
            "COURSE_HEADLESS": "1", "MPLBACKEND": "Agg", pretrained.BUILD_ENV: "1",
            # absolute: the notebook's kernel runs in notebooks/, this process in the directory it was started in
            pretrained.FLOAT32_ENV: str(pretrained.float32_dir().resolve()),
            pretrained.NOTEBOOK_ENV: f"notebooks/{NOTEBOOKS[lesson]}.ipynb"}


def build(lessons: list[str], run: Callable = subprocess.run) -> int:
    """Run each lesson's notebook in the build profile with saving switched on, then measure what it bundled.
    Returns the exit code: 0 when every lesson was built; 1 when a lesson's notebook failed (e.g. a training stopped
    on a NaN: train_or_load then bundles nothing of it), after measuring the models of it that did finish and going
    on with the other lessons; 130 on Ctrl-C, after saying what was finished. `run` is `subprocess.run`."""
    failed = []
    for lesson in lessons:
        names = lesson_models(lesson)
        for name in names:  # a copy left from an earlier build must not be measured as this one's
            pretrained.float32_copy(name).unlink(missing_ok=True)
        notebook = ROOT / "notebooks" / f"{NOTEBOOKS[lesson]}.ipynb"
        start = time.perf_counter()
        print(f"building {lesson}: running {notebook.name} in the '{pretrained.BUILD_PROFILE}' profile ...", flush=True)
        try:
            done = run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                        "--ExecutePreprocessor.timeout=3600", "--output-dir", str(OUT), str(notebook)],
                       env=dict(os.environ, **build_env(lesson)))
        except KeyboardInterrupt:
            finished = [name for name in names if pretrained.float32_copy(name).exists()]
            built = [other for other in lessons[:lessons.index(lesson)] if other not in failed]
            print(f"\nInterrupted while building {lesson}. Built and measured: {', '.join(built) or 'none'}. "
                  f"Rebuilt in {lesson} but not measured (their manifest entries have no metrics): "
                  f"{', '.join(finished) or 'none'}. Run `python -m course_lib.tools.bundle build {lesson}` again.",
                  flush=True)
            return 130
        if done.returncode != 0:
            finished = [name for name in names if pretrained.float32_copy(name).exists()]
            print(f"{notebook.name} failed (exit code {done.returncode}; its error is above): {lesson} is not "
                  f"built. Its models that finished training were bundled and are measured now: "
                  f"{', '.join(finished) or 'none'}; the others keep their previous files.", flush=True)
            record_metrics(finished)
            failed.append(lesson)
            continue
        print(f"measuring {lesson}'s {len(names)} bundled models ...", flush=True)
        record_metrics(names)
        print(f"built {lesson} in {time.perf_counter() - start:.0f} s", flush=True)
    print(f"bundle: {pretrained.total_bytes() / 1e6:.1f} MB in {len(pretrained.read_manifest()['models'])} files")
    if failed:
        print(f"NOT built: {', '.join(failed)}. Fix the failure and run `python -m course_lib.tools.bundle build "
              f"{' '.join(failed)}`.", flush=True)
    return 1 if failed else 0


def run_all(lessons: list[str], out: Path = Path("runs") / "pretrained_runall") -> dict[str, float]:
    """Run each lesson top to bottom with USE_PRETRAINED on (as an instructor would, `cpu` profile, no display) and
    return the seconds each took: the instructor-mode target is under a minute per lesson."""
    env = dict(os.environ, COURSE_PRETRAINED="1", COURSE_OFFLINE="1", COURSE_HEADLESS="1", MPLBACKEND="Agg")
    env.pop(pretrained.BUILD_ENV, None)
    seconds = {}
    for lesson in lessons:
        notebook = ROOT / "notebooks" / f"{NOTEBOOKS[lesson]}.ipynb"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                               "--ExecutePreprocessor.timeout=600", "--output-dir", str(out), str(notebook)],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{notebook.name} failed with USE_PRETRAINED on:\n{done.stderr[-3000:]}")
        seconds[lesson] = time.perf_counter() - start
        print(f"{notebook.name:36s} Run-All with USE_PRETRAINED: {seconds[lesson]:5.1f} s", flush=True)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.tools.bundle", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="train every lesson's models, bundle and measure them")
    p_build.add_argument("lessons", nargs="*", help=f"some of: {', '.join(NOTEBOOKS)} (default: all)")
    sub.add_parser("verify", help="check every bundled file against the manifest")
    sub.add_parser("measure", help="measure every bundled model again and compare with the manifest")
    p_run = sub.add_parser("runall", help="time each lesson's Run-All with USE_PRETRAINED on")
    p_run.add_argument("lessons", nargs="*", help=f"some of: {', '.join(NOTEBOOKS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [lesson for lesson in getattr(args, "lessons", []) if lesson not in NOTEBOOKS]
    if unknown:
        parser.error(f"unknown lesson(s) {', '.join(unknown)}; the lessons are: {', '.join(NOTEBOOKS)}")
    if args.command == "build":
        return build(args.lessons or list(NOTEBOOKS))
    if args.command == "runall":
        seconds = run_all(args.lessons or list(NOTEBOOKS))
        print(f"slowest: {max(seconds.values()):.1f} s (target: under 60 s each)")
        return 0
    models = pretrained.read_manifest()["models"]
    if args.command == "verify":
        problems = pretrained.verify()
        for problem in problems:
            print("FAILED", problem)
        print(f"{len(models) - len(problems)} of {len(models)} bundled files verify "
              f"({pretrained.total_bytes() / 1e6:.1f} MB)")
        return 1 if problems else 0
    for name, entry in models.items():
        print(name, "recorded", entry.get("metrics"), "now", measure(name) if name in catalogue() else "-")
    return 0


if __name__ == "__main__":
    sys.exit(main())
