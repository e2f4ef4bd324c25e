"""Pretrained weights bundled with the course, so a lesson can skip its training (instructor mode).

A lesson's parameters cell has `USE_PRETRAINED = False`. Set it to True (or `export COURSE_PRETRAINED=1`) and every
training cell loads the bundled weights instead of training: the whole lesson runs in about a minute on a laptop.
Each training cell goes through one function:

    history = train_or_load("autoencoders/ae2", lambda: fit(model, ..., callbacks=[live]), show=live, model=model)

It trains as usual, or, with pretrained weights on, loads the bundled state of `model` (and of any other part given:
an EMA copy, snapshots, ...), has `show` (the cell's live plot) draw the History recorded when the weights were made
and the loaded model, as at the end of a real run, and returns that History.

The weights live in `course_lib/assets/pretrained/`, listed in `manifest.json` with their sha256, size, the command
that made them, the data, and metrics measured on the loaded model. A file that does not match its sha256 is refused.

Matrices and convolution kernels are stored in 8 bits with one scale per output row (w ~ s_r q, q an integer in
-127..127, s_r = max_j |w_rj| / 127), 4 times smaller than float32; the metrics in the manifest are measured after
that round trip. (The tiny 2-D toy GANs are kept in float32: their modes are narrower than 8 bits' rounding.)

This module is what a lesson needs at run time, plus the writing of a bundled file: in build mode
(`COURSE_BUILD_PRETRAINED=1`) `train_or_load` writes what it trained and records it in the manifest. Building,
measuring and checking the whole bundle is a tool, `course_lib/tools/bundle.py`:

    python -m course_lib.tools.bundle build            # every lesson, or name some: build autoencoders gan
    python -m course_lib.tools.bundle verify           # hashes and sizes against the manifest
    python -m course_lib.tools.bundle runall           # time each lesson's Run-All with USE_PRETRAINED on
"""

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Callable

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .training import Callback, History, TrainState

BUNDLE_DIR = Path(__file__).parent / "assets" / "pretrained"
MANIFEST = BUNDLE_DIR / "manifest.json"
BUILD_PROFILE = "cpu"  # the bundled weights are trained in this profile; lessons that load them use its sizes
BUILD_ENV = "COURSE_BUILD_PRETRAINED"  # "1" (set by the bundle tool): every train_or_load saves what it trained
# The bundle tool measures each model before and after 8 bits, so the build also keeps a float32 copy of every
# file. It is not part of the bundle (not shipped, not in the manifest); the tool says where, or this default.
FLOAT32_ENV = "COURSE_BUILD_FLOAT32_DIR"
FLOAT32_DIR = Path("runs") / "pretrained" / "float32"
NOTEBOOK_ENV = "COURSE_BUILD_NOTEBOOK"  # the notebook the bundle tool is running, recorded in the manifest
_QUANTIZE_FROM = 4096  # float tensors with at least this many numbers and 2+ dimensions are stored in 8 bits

# Which switch turned instructor mode on, and how to turn it off: the messages name the switch that is in force.
SWITCHES = {
    "argument": ("USE_PRETRAINED = True", "set USE_PRETRAINED = False in the setup cell and run the lesson again"),
    "environment": ("COURSE_PRETRAINED=1 in the environment",
                    "run `%env COURSE_PRETRAINED=0` in a cell, then run the lesson again from its setup cell"),
    "both": ("USE_PRETRAINED = True and COURSE_PRETRAINED=1 in the environment",
             "set USE_PRETRAINED = False, run `%env COURSE_PRETRAINED=0`, then run the lesson again from its setup "
             "cell"),
}
_state = {"enabled": False, "switch": "argument"}


def use_pretrained(on: bool = True, switch: str = "argument") -> None:
    """Switch pretrained weights on or off for every later `train_or_load` (start_lesson does this). `switch` says
    what turned them on: "argument" (`USE_PRETRAINED = True`), "environment" (`COURSE_PRETRAINED=1`) or "both".

        use_pretrained(True)   # what start_lesson(..., pretrained=True) does
    """
    if switch not in SWITCHES:
        raise ValueError(f"Unknown switch {switch!r}; use one of {', '.join(SWITCHES)}.")
    _state["enabled"], _state["switch"] = bool(on), switch


def pretrained_switch() -> tuple[str, str]:
    """(what turned pretrained weights on, how to turn them off), in words for a message.

    >>> use_pretrained(True, switch="environment"); pretrained_switch()[0]
    'COURSE_PRETRAINED=1 in the environment'
    >>> use_pretrained(False)
    """
    return SWITCHES[_state["switch"]]


def pretrained_enabled() -> bool:
    """Whether `train_or_load` loads bundled weights instead of training.

    >>> use_pretrained(False); pretrained_enabled()
    False
    """
    return _state["enabled"]


def train_or_load(name: str, train: Callable[[], History], eight_bit: bool = True, show: Callback | None = None,
                  **parts) -> History:
    """Run `train()` and return its History; or, with pretrained weights on, load the bundled state of every part
    (models, an EMA copy, Snapshots: anything with state_dict / load_state_dict) and return the recorded History.

    `show` is the cell's live plot (any Callback): with pretrained weights on, its `on_train_end` is called once,
    with the first part given as the model and the recorded History, so the figure the cell would have drawn at the
    end of training (loss curves, the model's images) is drawn from the bundle. `eight_bit=False` bundles the weights
    in float32 instead of 8 bits (for models whose outputs must be exact).

        live = LivePlot(keys=["recon", "kl"])
        history = train_or_load("vae/vae8", lambda: fit(vae8, loader, step, opt, 30, callbacks=[live]),
                                show=live, model=vae8)
    """
    if not parts:
        raise ValueError("Name at least one part whose state the training makes, e.g. train_or_load(name, train, "
                         "model=model).")
    if pretrained_enabled():
        history = load_into(name, **parts)
        switch, turn_off = pretrained_switch()
        figure = "; the figure shows the curves recorded then" if show is not None else ""
        print(f"Loaded the bundled weights '{name}' instead of training (they took {history.seconds:.0f} s, "
              f"{history.epoch} epochs){figure}. Instructor mode is on ({switch}); to train instead, {turn_off}.")
        if show is not None:
            model = next(iter(parts.values()))
            steps = len(next(iter(history.steps.values()), []))
            show.on_train_end(TrainState(model, history, epoch=max(history.epoch - 1, 0), step=steps))
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
    """The weights w ~ s_r q that `quantize` stored as (q, s)."""
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


# ------------------------------------------------------------------ one file: the parts' state and the History


def save_file_of_parts(path: Path, history: History, eight_bit: bool = True, **parts) -> Path:
    """Write the parts' state (8-bit matrices and kernels, or all float32) and the History into one file."""
    packed, meta = {}, {"history": history.state_dict(), "parts": {}}
    for part, obj in parts.items():
        tensors, rest = _split_state(obj.state_dict())
        packed.update({f"{part}.{k}": t for k, t in _pack(tensors, eight_bit).items()})
        meta["parts"][part] = rest
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(packed, str(path), metadata={"course": json.dumps(meta)})
    return path


def load_file_into(path: Path, name: str, /, **parts) -> History:
    """Load the file `path` (made by `save_file_of_parts` for model `name`) into the parts; return its History.
    It does not check a hash: `load_into` is the one a lesson uses."""
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


# ------------------------------------------------------------------ the bundle and its manifest


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_manifest() -> dict:
    """The manifest: {"models": {name: entry}}, each entry with file, sha256, bytes, command, metrics, ..."""
    if not MANIFEST.exists():
        return {"models": {}}
    return json.loads(MANIFEST.read_text())


def write_manifest(manifest: dict) -> None:
    manifest["models"] = dict(sorted(manifest["models"].items()))
    manifest["note"] = ("Pretrained weights for the lessons; see course_lib/pretrained.py. `storage` says how each "
                        "file keeps its weights; `metrics` are measured on the model as it loads, "
                        "`metrics_before_8bit` on the model as it was trained.")
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")


def bundled_file(name: str) -> Path:
    return BUNDLE_DIR / f"{name}.safetensors"


def float32_dir() -> Path:
    """Where a build keeps its float32 copies: $COURSE_BUILD_FLOAT32_DIR (set by the bundle tool), or FLOAT32_DIR."""
    return Path(os.environ.get(FLOAT32_ENV) or FLOAT32_DIR)


def float32_copy(name: str) -> Path:
    """The float32 copy of bundled model `name` that a build keeps (for measuring it before 8 bits)."""
    return float32_dir() / f"{name}.safetensors"


def save_bundled(name: str, history: History, eight_bit: bool = True, **parts) -> dict:
    """Write the parts' state and the History into the bundle, a float32 copy next to the build's outputs, and the
    manifest entry. Nothing is measured here (the bundle tool measures after the lesson has run). Called by
    `train_or_load` in build mode; a lesson never calls it."""
    path = save_file_of_parts(bundled_file(name), history, eight_bit, **parts)
    save_file_of_parts(float32_copy(name), history, False, **parts)
    lesson = name.split("/")[0]
    entry = {
        "file": path.relative_to(BUNDLE_DIR).as_posix(),
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
        "command": f"python -m course_lib.tools.bundle build {lesson}",
        "notebook": os.environ.get(NOTEBOOK_ENV),
        # the bundle tool runs every lesson with COURSE_PROFILE=BUILD_PROFILE, so that is what was trained
        "profile": BUILD_PROFILE,
        "storage": "matrices and kernels in 8 bits, one scale per row" if eight_bit else "float32",
        "data": _data_description(),
        "epochs": history.epoch,
        "train_seconds": round(history.seconds, 1),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                   f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
    }
    manifest = read_manifest()
    manifest["models"][name] = entry  # replaces the old entry, its metrics included: they were of the old weights
    write_manifest(manifest)
    return entry


def _data_description() -> str:
    offline = os.environ.get("COURSE_OFFLINE", "") not in ("", "0")
    return ("MNIST: the 4,000 training digits bundled with the course (offline), evaluated on its 1,000 test digits"
            if offline else "MNIST through torchvision (the full set when it could be downloaded)")


def _verified(name: str) -> Path:
    entry = read_manifest()["models"].get(name)
    if entry is None:
        build = f"python -m course_lib.tools.bundle build {name.split('/')[0]}"
        if pretrained_enabled():
            switch, turn_off = pretrained_switch()
            raise KeyError(f"There are no bundled weights called '{name}'. Instructor mode is on ({switch}); to "
                           f"train this model yourself, {turn_off}. Or build the bundle: {build}")
        raise KeyError(f"There are no bundled weights called '{name}'. Build the bundle: {build}")
    path = BUNDLE_DIR / entry["file"]
    if not path.exists():
        raise FileNotFoundError(f"The bundled weights file {path} is missing. Reinstall the course "
                                f"(pip install --force-reinstall ...), or train instead: {pretrained_switch()[1]}.")
    found = sha256(path)
    if found != entry["sha256"]:
        raise ValueError(f"Refusing to load {path}: its sha256 is {found}, but the manifest expects "
                         f"{entry['sha256']}. The file was changed or damaged; reinstall the course or rebuild it "
                         f"with `{entry['command']}`.")
    return path


def load_into(name: str, **parts) -> History:
    """Verify the bundled file `name` against the manifest, load it into the parts, and return its History.

        history = load_into("autoencoders/ae2", model=MLPAutoencoder(latent_dim=2))
    """
    return load_file_into(_verified(name), name, **parts)


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
    """Bytes of every bundled file together, as the manifest records them."""
    return sum(entry["bytes"] for entry in read_manifest()["models"].values())
