"""Pretrained weights bundled with the course, so a lesson can skip its training (instructor mode).

A lesson's parameters cell has `USE_PRETRAINED = False`. Set it to True (or `export COURSE_PRETRAINED=1`) and every
training cell loads the bundled weights instead of training: the whole lesson runs in about a minute on a laptop.
Each training cell goes through one function:

    history = train_or_load("autoencoders/ae2", lambda: fit(model, ...), model=model)

It trains as usual, or, with pretrained weights on, loads the bundled state of `model` (and of any other part given:
an EMA copy, snapshots, ...) and returns the History recorded when the weights were made.

The weights live in `course_lib/assets/pretrained/`, listed in `manifest.json` with their sha256, size, the command
that made them, the data, and metrics measured on the loaded model. A file that does not match its sha256 is refused.

Matrices and convolution kernels are stored in 8 bits with one scale per output row (w ~ s_r q, q an integer in
-127..127, s_r = max_j |w_rj| / 127), 4 times smaller than float32; the metrics in the manifest are measured after
that round trip. (The tiny 2-D toy GANs are kept in float32: their modes are narrower than 8 bits' rounding.) Build them again (about 35 minutes on 2 CPU cores) with

    python -m course_lib.pretrained build            # every lesson, or name some: build autoencoders gan
    python -m course_lib.pretrained verify           # hashes and sizes against the manifest
    python -m course_lib.pretrained runall           # time each lesson's Run-All with USE_PRETRAINED on
"""

import argparse
import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .training import History

BUNDLE_DIR = Path(__file__).parent / "assets" / "pretrained"
MANIFEST = BUNDLE_DIR / "manifest.json"
BUILD_PROFILE = "cpu"  # the bundled weights are trained in this profile; lessons that load them use its sizes
BUILD_ENV = "COURSE_BUILD_PRETRAINED"  # set by `build`: every train_or_load saves what it trained into the bundle
NOTEBOOKS = {"autoencoders": "01_autoencoders", "vae": "02_variational_autoencoders", "gan": "03_gans",
             "diffusion": "04_diffusion", "conditional": "05_conditional_models",
             "latent_diffusion": "06_latent_diffusion"}
_QUANTIZE_FROM = 4096  # float tensors with at least this many numbers and 2+ dimensions are stored in 8 bits

_state = {"enabled": False}


def use_pretrained(on: bool = True) -> None:
    """Switch pretrained weights on or off for every later `train_or_load` (start_lesson does this)."""
    _state["enabled"] = bool(on)


def pretrained_enabled() -> bool:
    return _state["enabled"]


def train_or_load(name: str, train: Callable[[], History], eight_bit: bool = True, **parts) -> History:
    """Run `train()` and return its History; or, with pretrained weights on, load the bundled state of every part
    (models, an EMA copy, Snapshots: anything with state_dict / load_state_dict) and return the recorded History.
    `eight_bit=False` bundles the weights in float32 instead of 8 bits (for models whose outputs must be exact).

        history = train_or_load("vae/vae16", lambda: fit(vae16, loader, step, opt, 30), model=vae16)
    """
    if not parts:
        raise ValueError("Name at least one part whose state the training makes, e.g. train_or_load(name, train, "
                         "model=model).")
    if pretrained_enabled():
        history = load_into(name, **parts)
        print(f"Loaded the bundled weights '{name}' instead of training (they took {history.seconds:.0f} s to "
              f"train, {history.epoch} epochs). Set USE_PRETRAINED = False to train them yourself.")
        return history
    history = train()
    if os.environ.get(BUILD_ENV) == "1":
        if history.stopped is not None:
            raise RuntimeError(f"Training of '{name}' stopped early ({history.stopped}); nothing was bundled.")
        save_bundled(name, history, eight_bit, **parts)
    return history


# ------------------------------------------------------------------ 8-bit storage


def quantize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w (rows, ...) -> (q int8, s float32 per row) with w ~ s_r q: q = round(w / s_r), s_r = max |w_r| / 127.

    >>> w = torch.tensor([[1.0, -0.25], [0.02, -0.005]])
    >>> q, s = quantize(w)
    >>> q.tolist()
    [[127, -32], [127, -32]]
    >>> bool(((dequantize(q, s) - w).abs() <= s[:, None] / 2).all())  # off by at most half a step
    True
    """
    rows = w.detach().float().flatten(1)
    scale = rows.abs().amax(dim=1).clamp(min=1e-12) / 127
    q = torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(w.shape), scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (q.float().flatten(1) * scale[:, None]).reshape(q.shape)


def _split_state(state: dict) -> tuple[dict, dict]:
    """A state dict -> (tensors to store, everything else as JSON)."""
    tensors, rest = {}, {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            tensors[key] = value.detach().cpu().contiguous()
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
            tensors[key] = torch.stack([v.detach().cpu() for v in value])  # e.g. snapshot frames
            rest[key] = "stacked"
        else:
            rest[key] = value
    return tensors, rest


def _pack(tensors: dict, eight_bit: bool = True) -> dict:
    packed = {}
    for key, t in tensors.items():
        if eight_bit and t.is_floating_point() and t.dim() >= 2 and t.numel() >= _QUANTIZE_FROM:
            packed[key + ":q8"], packed[key + ":scale"] = quantize(t)
        else:
            packed[key] = t
    return packed


def _unpack(packed: dict) -> dict:
    tensors = {}
    for key, t in packed.items():
        if key.endswith(":q8"):
            tensors[key[:-3]] = dequantize(t, packed[key[:-3] + ":scale"])
        elif not key.endswith(":scale"):
            tensors[key] = t
    return tensors


# ------------------------------------------------------------------ saving and loading


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest() -> dict:
    if not MANIFEST.exists():
        return {"models": {}}
    return json.loads(MANIFEST.read_text())


def _file(name: str) -> Path:
    return BUNDLE_DIR / f"{name}.safetensors"


def save_bundled(name: str, history: History, eight_bit: bool = True, **parts) -> dict:
    """Write the parts' state and the History into the bundle, measure the model as it loads back, and record
    everything in the manifest. Used by `build`; a lesson never calls it."""
    packed, meta = {}, {"history": history.state_dict(), "parts": {}}
    for part, obj in parts.items():
        tensors, rest = _split_state(obj.state_dict())
        packed.update({f"{part}.{k}": t for k, t in _pack(tensors, eight_bit).items()})
        meta["parts"][part] = rest
    path = _file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(packed, str(path), metadata={"course": json.dumps(meta)})
    lesson = name.split("/")[0]
    entry = {
        "file": path.relative_to(BUNDLE_DIR).as_posix(),
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
        "command": f"python -m course_lib.pretrained build {lesson}",
        "notebook": f"notebooks/{NOTEBOOKS.get(lesson, lesson)}.ipynb",
        "profile": os.environ.get("COURSE_PROFILE", BUILD_PROFILE),
        "storage": "matrices and kernels in 8 bits, one scale per row" if eight_bit else "float32",
        "data": _data_description(),
        "epochs": history.epoch,
        "train_seconds": round(history.seconds, 1),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                   f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
    }
    manifest = read_manifest()
    manifest["models"][name] = entry
    _write_manifest(manifest)
    if name in catalogue():
        entry["metrics"] = measure(name)  # on the model as a lesson loads it: 8-bit round trip included
        entry["metrics_before_8bit"] = _measure_in_place(name, parts)
        _write_manifest(manifest)
    return entry


def _measure_in_place(name: str, parts: dict) -> dict:
    """Measure the parts as they are (float32), leaving each module in the mode (train / eval) it was in."""
    modes = {m: m.training for part in parts.values() if isinstance(part, torch.nn.Module) for m in part.modules()}
    try:
        with torch.random.fork_rng():
            return catalogue()[name].measure(parts)
    finally:
        for module, training in modes.items():
            module.train(training)


def _write_manifest(manifest: dict) -> None:
    manifest["models"] = dict(sorted(manifest["models"].items()))
    manifest["note"] = ("Pretrained weights for the lessons; see course_lib/pretrained.py. `storage` says how each "
                        "file keeps its weights; `metrics` are measured on the model as it loads, "
                        "`metrics_before_8bit` on the model as it was trained.")
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")


def _data_description() -> str:
    offline = os.environ.get("COURSE_OFFLINE", "") not in ("", "0")
    return ("MNIST: the 4,000 training digits bundled with the course (offline), evaluated on its 1,000 test digits"
            if offline else "MNIST through torchvision (the full set when it could be downloaded)")


def _verified(name: str) -> Path:
    entry = read_manifest()["models"].get(name)
    if entry is None:
        raise KeyError(f"There are no bundled weights called '{name}'. Set USE_PRETRAINED = False to train this model "
                       f"yourself, or build the bundle: python -m course_lib.pretrained build {name.split('/')[0]}")
    path = BUNDLE_DIR / entry["file"]
    if not path.exists():
        raise FileNotFoundError(f"The bundled weights file {path} is missing. Reinstall the course "
                                f"(pip install --force-reinstall ...) or set USE_PRETRAINED = False.")
    found = sha256(path)
    if found != entry["sha256"]:
        raise ValueError(f"Refusing to load {path}: its sha256 is {found}, but the manifest expects "
                         f"{entry['sha256']}. The file was changed or damaged; reinstall the course or rebuild it "
                         f"with `{entry['command']}`.")
    return path


def load_into(name: str, **parts) -> History:
    """Verify the bundled file `name` against the manifest, load it into the parts, and return its History."""
    path = _verified(name)
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["course"])
        packed = {k: f.get_tensor(k) for k in f.keys()}
    tensors = _unpack(packed)
    for part, obj in parts.items():
        if part not in meta["parts"]:
            raise KeyError(f"The bundled '{name}' has no part '{part}'; it has: {', '.join(meta['parts'])}.")
        state = {k[len(part) + 1:]: t for k, t in tensors.items() if k.startswith(part + ".")}
        for key, value in meta["parts"][part].items():
            state[key] = list(state[key]) if value == "stacked" else value
        expected = obj.state_dict()
        if isinstance(obj, torch.nn.Module):
            found = {k: tuple(v.shape) for k, v in state.items()}
            wanted = {k: tuple(v.shape) for k, v in expected.items()}
            if found != wanted:
                raise ValueError(f"The bundled '{name}' ({part}) was made for a different architecture than the one "
                                 f"built here. Build the model exactly as the lesson does, with the '{BUILD_PROFILE}' "
                                 f"profile's sizes (start_lesson does this when USE_PRETRAINED is True).")
            state = {k: v.to(expected[k].dtype) for k, v in state.items()}
        obj.load_state_dict(state)
        if isinstance(obj, torch.nn.Module):
            obj.eval()  # as `fit` leaves a model when it ends
    return History.from_state_dict(meta["history"])


def verify() -> list[str]:
    """Problems found when checking every bundled file against the manifest (an empty list: all verify)."""
    problems = []
    for entry in read_manifest()["models"].values():
        path = BUNDLE_DIR / entry["file"]
        if not path.exists():
            problems.append(f"{entry['file']}: missing")
        elif path.stat().st_size != entry["bytes"]:
            problems.append(f"{entry['file']}: {path.stat().st_size} bytes, the manifest says {entry['bytes']}")
        elif sha256(path) != entry["sha256"]:
            problems.append(f"{entry['file']}: sha256 {sha256(path)}, the manifest expects {entry['sha256']}")
    return problems


def total_bytes() -> int:
    return sum(entry["bytes"] for entry in read_manifest()["models"].values())


# ------------------------------------------------------------------ the catalogue: how to build and measure each


@dataclass
class Entry:
    build: Callable[[], dict]  # -> the parts, built as the lesson builds them
    measure: Callable[[dict], dict]  # parts with the bundled state loaded -> metrics


def _test_digits(n: int = 500):
    from .data import load_dataset

    x, y = load_dataset("mnist", "test", n=n, source="bundled").tensors
    return x, y


@torch.no_grad()
def _reconstruction(parts: dict) -> dict:
    from .autoencoders import ae_loss

    x, _ = _test_digits()
    model = parts["model"].eval()
    return {"test_reconstruction_error": round(ae_loss(x, model(x)).item(), 4)}


def _vae(parts: dict) -> dict:
    from .vae import negative_elbo

    x, _ = _test_digits()
    return {"test_negative_elbo": round(negative_elbo(parts["model"], x), 2)}


@torch.no_grad()
def _cvae(parts: dict) -> dict:
    from .conditional import cvae_loss

    x, y = _test_digits()
    model = parts["model"].eval()
    torch.manual_seed(0)
    return {"test_negative_elbo": round(cvae_loss(model, x, y)["loss"].item(), 2)}


@torch.no_grad()
def _generator(parts: dict) -> dict:
    from .metrics import frechet_distance

    x, _ = _test_digits()
    gan = parts["gan"].eval()
    return {"frechet_distance_500": round(frechet_distance(gan.sample(500, torch.Generator().manual_seed(0)), x), 1)}


@torch.no_grad()
def _conditional_generator(parts: dict) -> dict:
    from .conditional import class_grid_labels
    from .metrics import class_accuracy, frechet_distance

    x, _ = _test_digits()
    labels = class_grid_labels(50)
    samples = parts["gan"].eval().sample(500, torch.Generator().manual_seed(0), labels=labels)
    return {"class_accuracy_500": round(class_accuracy(samples, labels), 3),
            "frechet_distance_500": round(frechet_distance(samples, x), 1)}


@torch.no_grad()
def _toy(parts: dict) -> dict:
    from .toy2d import mode_coverage

    report = mode_coverage(parts["gan"].eval().sample(2000, torch.Generator().manual_seed(1)), "ring")
    return {"modes_covered": report["modes_covered"], "high_quality": round(report["high_quality"], 3)}


@torch.no_grad()
def _pix2pix(parts: dict) -> dict:
    from .pix2pix import hide_lower_half

    x, _ = _test_digits()
    model = parts["model"].eval()
    return {"test_l1_error": round((model(hide_lower_half(x)) - x).abs().mean().item(), 4)}


@torch.no_grad()
def _denoising(parts: dict, conditional: bool = False, latents: bool = False) -> dict:
    """Algorithm 1's loss of the averaged (EMA) weights on test digits, with fixed t and noise."""
    from .diffusion import DiffusionSchedule, diffusion_loss

    x, y = _test_digits()
    if latents:  # lesson 6 scales latents by 1 / their std over the training digits
        from .data import load_dataset
        from .latent_diffusion import encode_dataset

        autoencoder = load("latent_diffusion/autoencoder")["model"]
        _, scale = encode_dataset(autoencoder, load_dataset("mnist", "train", source="bundled"))
        x = autoencoder.encode(x) * scale
    model = parts["ema"].eval()
    eps_model = (lambda x_t, t: model(x_t, t, y)) if conditional else model
    loss = diffusion_loss(eps_model, DiffusionSchedule(), x, torch.Generator().manual_seed(0), image_range=not latents)
    return {"test_denoising_loss": round(loss.item(), 4)}


def _catalogue() -> dict:
    from .autoencoders import ConvAutoencoder, MLPAutoencoder
    from .conditional import ConditionalDiscriminator, ConditionalGAN, ConditionalGenerator, ConditionalVAE
    from .config import lesson_settings
    from .gans import GAN, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
    from .latent_diffusion import LatentAutoencoder
    from .pix2pix import Pix2Pix
    from .training import Snapshots
    from .unet import UNet
    from .vae import ConvVAE, MLPVAE
    from .toy2d import CoverageLog

    def ch(lesson):
        return lesson_settings(lesson, BUILD_PROFILE).channels

    def unet(channels, **kw):
        return lambda: {"ema": UNet(channels=channels, **kw)}

    entries = {
        "autoencoders/ae2": Entry(lambda: {"model": MLPAutoencoder(latent_dim=2)}, _reconstruction),
        "autoencoders/conv16": Entry(lambda: {"model": ConvAutoencoder(latent_dim=16)}, _reconstruction),
        "autoencoders/dae": Entry(lambda: {"model": ConvAutoencoder(latent_dim=32)}, _reconstruction),
        "vae/vae2": Entry(lambda: {"model": MLPVAE(latent_dim=2)}, _vae),
        "vae/vae2_beta0.2": Entry(lambda: {"model": MLPVAE(latent_dim=2)}, _vae),
        "vae/vae2_beta5": Entry(lambda: {"model": MLPVAE(latent_dim=2)}, _vae),
        "vae/ae2": Entry(lambda: {"model": MLPAutoencoder(latent_dim=2)}, _reconstruction),
        "vae/vae16": Entry(lambda: {"model": ConvVAE(latent_dim=16)}, _vae),
        "vae/ae16": Entry(lambda: {"model": ConvAutoencoder(latent_dim=16)}, _reconstruction),
        "gan/dcgan": Entry(lambda: {"gan": GAN(DCGANGenerator(z_dim=100, width=32), DCGANDiscriminator(width=32)),
                                    "snapshots": Snapshots(None, every=1)}, _generator),
        "diffusion/unet": Entry(unet(ch("diffusion")), _denoising),
        "conditional/cgan": Entry(lambda: {"gan": ConditionalGAN(ConditionalGenerator(width=32),
                                                                 ConditionalDiscriminator(width=32))},
                                  _conditional_generator),
        "conditional/pix2pix": Entry(lambda: {"model": Pix2Pix()}, _pix2pix),
        "conditional/pix2pix_l1": Entry(lambda: {"model": Pix2Pix()}, _pix2pix),
        "conditional/vae": Entry(lambda: {"model": MLPVAE(latent_dim=2)}, _vae),
        "conditional/cvae": Entry(lambda: {"model": ConditionalVAE(latent_dim=2)}, _cvae),
        "conditional/cfg_unet": Entry(unet(ch("conditional"), num_classes=10),
                                      lambda p: _denoising(p, conditional=True)),
        "latent_diffusion/autoencoder": Entry(lambda: {"model": LatentAutoencoder(latent_channels=4)},
                                              _reconstruction),
        "latent_diffusion/latent_unet": Entry(
            lambda: {"ema": UNet(channels=ch("latent_diffusion"), num_classes=10, image_shape=(4, 7, 7))},
            lambda p: _denoising(p, conditional=True, latents=True)),
    }
    for loss in ("gan", "wgan_gp"):
        for seed in (0, 1, 2):
            entries[f"gan/toy_{loss}_seed{seed}"] = Entry(
                lambda: {"gan": GAN(MLPGenerator(), MLPDiscriminator()), "coverage": CoverageLog(None, "ring", 1)},
                _toy)
    return entries


@functools.cache
def catalogue() -> dict[str, Entry]:
    """Every bundled model: how its lesson builds it, and what the manifest measures on it."""
    return _catalogue()


def load(name: str) -> dict:
    """The parts of bundled model `name`, built as its lesson builds them and loaded (eval mode), e.g.

        gan = load("gan/dcgan")["gan"]
    """
    if name not in catalogue():
        raise KeyError(f"Unknown bundled model '{name}'. Known: {', '.join(catalogue())}.")
    parts = catalogue()[name].build()
    load_into(name, **parts)
    for part in parts.values():
        if isinstance(part, torch.nn.Module):
            part.eval()
    return parts


def measure(name: str) -> dict:
    """Load bundled model `name` and measure it (the numbers the manifest records)."""
    with torch.random.fork_rng():
        return catalogue()[name].measure(load(name))


# ------------------------------------------------------------------ command line


def build(lessons: list[str]) -> None:
    """Run each lesson's notebook in the build profile with saving switched on."""
    root = Path(__file__).resolve().parent.parent
    for lesson in lessons:
        notebook = root / "notebooks" / f"{NOTEBOOKS[lesson]}.ipynb"
        env = dict(os.environ, COURSE_PROFILE=BUILD_PROFILE, COURSE_PRETRAINED="0", COURSE_OFFLINE="1",
                   COURSE_HEADLESS="1", MPLBACKEND="Agg", **{BUILD_ENV: "1"})
        start = time.perf_counter()
        print(f"building {lesson}: running {notebook.name} in the '{BUILD_PROFILE}' profile ...", flush=True)
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                        "--ExecutePreprocessor.timeout=3600", "--output-dir", str(Path("runs") / "pretrained"),
                        str(notebook)], env=env, check=True)
        print(f"built {lesson} in {time.perf_counter() - start:.0f} s", flush=True)
    print(f"bundle: {total_bytes() / 1e6:.1f} MB in {len(read_manifest()['models'])} files")


def run_all(lessons: list[str], out: Path = Path("runs") / "pretrained_runall") -> dict[str, float]:
    """Run each lesson top to bottom with USE_PRETRAINED on (as an instructor would, `cpu` profile, no display) and
    return the seconds each took: the instructor-mode target is under a minute per lesson."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, COURSE_PRETRAINED="1", COURSE_OFFLINE="1", COURSE_HEADLESS="1", MPLBACKEND="Agg")
    env.pop(BUILD_ENV, None)
    seconds = {}
    for lesson in lessons:
        notebook = root / "notebooks" / f"{NOTEBOOKS[lesson]}.ipynb"
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
    parser = argparse.ArgumentParser(prog="python -m course_lib.pretrained", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="train every lesson's models and bundle them")
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
        build(args.lessons or list(NOTEBOOKS))
        return 0
    if args.command == "runall":
        seconds = run_all(args.lessons or list(NOTEBOOKS))
        print(f"slowest: {max(seconds.values()):.1f} s (target: under 60 s each)")
        return 0
    if args.command == "verify":
        problems = verify()
        for problem in problems:
            print("FAILED", problem)
        print(f"{len(read_manifest()['models']) - len(problems)} of {len(read_manifest()['models'])} bundled files "
              f"verify ({total_bytes() / 1e6:.1f} MB)")
        return 1 if problems else 0
    for name, entry in read_manifest()["models"].items():
        print(name, "recorded", entry.get("metrics"), "now", measure(name) if name in catalogue() else "-")
    return 0


if __name__ == "__main__":
    sys.exit(main())
