"""Small helpers that every network of the course shares.

    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Dropout(0.5))
    >>> n_params(net)
    9
    >>> with evaluating(net):
    ...     net.training
    False
    >>> net.training  # back to the mode it was in
    True
"""

from contextlib import contextmanager

import torch
from torch import nn


def n_params(module: nn.Module) -> int:
    """How many numbers the module learns."""
    return sum(p.numel() for p in module.parameters())


@contextmanager
def evaluating(module):
    """Put `module` in eval mode (dropout off, BatchNorm on its running statistics) inside the block, then back in
    the mode it was in: sampling in the middle of training must not switch training off."""
    if not isinstance(module, nn.Module):  # e.g. a sampler's eps_model given as a plain function
        yield module
        return
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def device_of(module: nn.Module) -> torch.device:
    """The device of the module's first parameter or buffer (the CPU for a module with neither)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def _name(what: str) -> str:
    """How a message calls the tensor `what` describes: its last word ("the code z" -> z, "batch[0]"), else x."""
    word = what.split()[-1] if what.split() else "x"
    return word if word.replace("[", "").replace("]", "").replace("_", "").isalnum() else "x"


def _where(mask: torch.Tensor) -> str:
    """The index of the first True in `mask`, written as a student would index the tensor: [0, 0, 5, 7]."""
    return "[" + ", ".join(str(int(i)) for i in mask.nonzero()[0]) + "]"


def check_finite(x: torch.Tensor, what: str = "the input") -> torch.Tensor:
    """Raise a clear error if `x` holds NaN or inf, saying how many and where the first one is; return x unchanged.
    A NaN that goes into a network comes out everywhere, so it is stopped where it enters.

    >>> check_finite(torch.tensor([1.0, float("nan")]), "z")
    Traceback (most recent call last):
    ...
    ValueError: Found 1 NaN value (the first at z[1]) in z. It came from earlier: find them with (~torch.isfinite(z)).nonzero() and fix or drop what made them (a division by zero, a NaN loss, a NaN in the data).
    """
    found = nonfinite(x, _name(what))
    if found:
        name = _name(what)
        raise ValueError(f"Found {found} in {what}. It came from earlier: find them with (~torch.isfinite({name}))"
                         f".nonzero() and fix or drop what made them (a division by zero, a NaN loss, a NaN in the data).")
    return x


def nonfinite(x: torch.Tensor, name: str = "x") -> str | None:
    """How many NaN and inf values `x` holds and where the first is, in words ("2 NaN values (the first at
    x[0, 3])"); None when there are none (or `x` is not a float tensor)."""
    if not x.is_floating_point() or x.is_meta or bool(torch.isfinite(x).all()):
        return None
    nan, inf = torch.isnan(x), torch.isinf(x)
    parts = [f"{int(m.sum())} {kind} value{'s' if int(m.sum()) > 1 else ''}" for m, kind in ((nan, "NaN"), (inf, "inf"))
             if m.any()]
    return f"{' and '.join(parts)} (the first at {name}{_where(nan | inf)})"


def check_float32(x: torch.Tensor, what: str = "the input") -> torch.Tensor:
    """Raise a clear error unless `x` is a float32 tensor (the type of every network here); return it unchanged.

    >>> check_float32(torch.zeros(2, dtype=torch.float64), "x")
    Traceback (most recent call last):
    ...
    TypeError: Got x of dtype torch.float64, but the course's networks compute in float32. Use x.float().
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"Expected {what} as a torch.Tensor, got {type(x).__name__}. Convert with torch.as_tensor(...).")
    if x.dtype != torch.float32:
        name = _name(what)
        fix = f"{name}.float() / 255 for 0-255 pixels" if not x.is_floating_point() else f"{name}.float()"
        raise TypeError(f"Got {what} of dtype {x.dtype}, but the course's networks compute in float32. Use {fix}.")
    return x
