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


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Write the model's weights (parameters and buffers) to a .safetensors file."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(path))


def load_weights(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load weights saved by `save_weights` into `model` (built with the same architecture); returns the model."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No weights file at {path}. Train the model first, or check the path.")
    try:
        state = load_file(str(path), device=str(next(model.parameters()).device))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is not a readable .safetensors file ({err}). It may be corrupted: save it again.") from None
    _check_same_architecture(model, state, path)
    model.load_state_dict(state)
    return model


def save_training_state(path: str | Path, model: torch.nn.Module, optimizer, history, loader=None) -> None:
    """Everything needed to resume training: weights, optimizer state, history, and the random state (torch's, and
    the shuffling generator of `loader` if it has one), so a resumed run repeats an uninterrupted one. `history` is
    anything with a `state_dict()`: `fit`'s History."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "history": history.state_dict(),
        "rng": torch.get_rng_state(),
    }
    if getattr(loader, "generator", None) is not None:
        state["loader_rng"] = loader.generator.get_state()
    tmp = Path(str(path) + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # an interrupt while saving never leaves a half-written checkpoint behind


def load_training_state(path: str | Path, model: torch.nn.Module, optimizer=None, loader=None) -> dict:
    """Restore what `save_training_state` wrote into `model` (and `optimizer`, `loader`); returns the history's
    state, which `History.from_state_dict` turns back into a History."""
    try:
        state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
    except Exception as err:  # pickle.UnpicklingError for code inside the file, RuntimeError for a damaged zip
        raise ValueError(
            f"Refusing to load {path}: it is not a clean course checkpoint ({type(err).__name__}). "
            f"Nothing from it was executed. Delete it and train again."
        ) from None
    _check_same_architecture(model, state["model"], path)
    model.load_state_dict(state["model"])
    if optimizer is not None and state["optimizer"]:
        optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    if "loader_rng" in state and getattr(loader, "generator", None) is not None:
        loader.generator.set_state(state["loader_rng"])
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
