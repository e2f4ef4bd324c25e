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
