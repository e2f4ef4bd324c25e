"""Saving and loading: model weights as safetensors (no code can hide in them), training state with
`torch.load(weights_only=True)` (which refuses pickled code).

    >>> import tempfile, os
    >>> model = torch.nn.Linear(2, 1)
    >>> path = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
    >>> save_weights(model, path)
    >>> load_weights(torch.nn.Linear(2, 1), path)
    Linear(in_features=2, out_features=1, bias=True)
"""

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .nets import device_of


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Write the model's weights (parameters and buffers) to a .safetensors file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(path))


def load_weights(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load weights saved by `save_weights` into `model` (built with the same architecture); returns the model."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the weights file in it, e.g. {path / 'model.safetensors'}.")
    if not path.exists():
        raise FileNotFoundError(f"No weights file at {path}. Train the model first, or check the path.")
    try:
        state = load_file(str(path), device=str(device_of(model)))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is not a readable .safetensors file ({err}). It may be corrupted: save it again.") from None
    _check_same_architecture(model, state, path)
    model.load_state_dict(state)
    return model


class GeneratorState:
    """A torch.Generator as a part of a training state: `state_dict()` / `load_state_dict()` save and restore where
    its random numbers are, so a resumed run draws the same numbers as an uninterrupted one.

    >>> g = torch.Generator().manual_seed(0); saved = GeneratorState(g).state_dict(); a = torch.rand(2, generator=g)
    >>> GeneratorState(g).load_state_dict(saved); torch.equal(a, torch.rand(2, generator=g))
    True
    """

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"])


def loader_generators(loader) -> list[torch.Generator]:
    """The torch.Generators that decide a loader's shuffling: `loader.generator`, its sampler's, and a batch
    sampler's sampler's (as in `toy2d.toy_loader`)."""
    found, todo = {}, [(loader, 0)]
    while todo:
        obj, depth = todo.pop()
        for name in ("generator", "sampler", "batch_sampler"):
            value = getattr(obj, name, None)
            if isinstance(value, torch.Generator):
                found.setdefault(id(value), value)
            elif value is not None and depth < 3:
                todo.append((value, depth + 1))
    return list(found.values())


def checkpoint_path(path: str | Path) -> Path:
    """`path` as a Path, refused with a clear message when it is a folder (a checkpoint is one file)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, but a checkpoint is one file. Name a file in it, e.g. "
                                f"checkpoint='{path / 'run.pt'}'.")
    return path


def save_training_state(path: str | Path, model: torch.nn.Module, optimizer, history, loader=None,
                        parts: dict | None = None) -> None:
    """Everything needed to resume training: weights, optimizer state, history, the state of `parts` (anything with
    `state_dict()`: the step, callbacks such as EMA, a step's torch.Generator as `GeneratorState`), and the random
    state (torch's, and the generators that shuffle `loader`), so a resumed run repeats an uninterrupted one.
    `history` is anything with a `state_dict()`: `fit`'s History."""
    path = checkpoint_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "history": history.state_dict(),
        "parts": {name: part.state_dict() for name, part in (parts or {}).items()},
        "rng": torch.get_rng_state(),
        "loader_rng": [g.get_state() for g in loader_generators(loader)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    tmp = Path(str(path) + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # an interrupt while saving never leaves a half-written checkpoint behind


# Parts that one machine has and another has not: the gradient scaler exists only where float16 needs one (a T4). A
# run saved on a T4 resumes on a CPU or a bfloat16 GPU without it, and one saved there resumes on a T4 with a fresh scale.
MACHINE_PARTS = {"gradient scaler"}


def load_training_state(path: str | Path, model: torch.nn.Module, optimizer=None, loader=None,
                        parts: dict | None = None) -> dict:
    """Restore what `save_training_state` wrote into `model` (and `optimizer`, `loader`, `parts`); returns the
    history's state, which `History.from_state_dict` turns back into a History."""
    path = checkpoint_path(path)
    if not path.exists():
        raise FileNotFoundError(f"There is no checkpoint at {path}. Check the path; fit(..., checkpoint='{path}') "
                                f"writes one there when it starts and after every epoch.")
    try:
        state = torch.load(path, map_location=device_of(model), weights_only=True)
    except Exception as err:  # pickle.UnpicklingError for code inside the file, RuntimeError for a damaged zip
        raise ValueError(
            f"Refusing to load {path}: it is not a clean course checkpoint ({type(err).__name__}). "
            f"Nothing from it was executed. If it is a damaged checkpoint of yours, delete it and train again."
        ) from None
    if not isinstance(state, dict) or not {"model", "history", "rng"} <= set(state):
        raise ValueError(f"{path} is not a training checkpoint made by fit(..., checkpoint=...) (weights saved by "
                         f"save_weights load with load_weights). Give fit another file name, or delete this one.")
    _check_same_architecture(model, state["model"], path)
    saved, wanted = state.get("parts", {}), parts or {}
    if set(saved) - MACHINE_PARTS != set(wanted) - MACHINE_PARTS:
        raise ValueError(f"{path} was saved by a run with {', '.join(sorted(saved)) or 'no step or callback state'}, "
                         f"but this run has {', '.join(sorted(wanted)) or 'none'}. Resume with the same step and "
                         f"callbacks as the run that saved it, or delete {path} to start over.")
    model.load_state_dict(state["model"])
    if optimizer is not None and state["optimizer"]:
        optimizer.load_state_dict(state["optimizer"])
    for name, part in wanted.items():
        if name in saved:  # a machine part saved elsewhere is not there: it starts afresh
            part.load_state_dict(saved[name])
    torch.set_rng_state(state["rng"].cpu())
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
    loader_rng = state.get("loader_rng", [])
    loader_rng = [loader_rng] if isinstance(loader_rng, torch.Tensor) else loader_rng  # an older checkpoint's one
    for generator, generator_state in zip(loader_generators(loader), loader_rng):
        generator.set_state(generator_state.cpu())
    return state["history"]


def _check_same_architecture(model: torch.nn.Module, state: dict, path) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))[:3]
        different = [k for k in expected if k in found and expected[k] != found[k]][:3]
        raise ValueError(
            f"{path} holds weights for a different architecture than {type(model).__name__} "
            f"(missing: {missing or 'none'}, different shapes: {different or 'none'}). "
            f"Build the model with the same settings it was saved with."
        )
