"""Weights as safetensors, resumable training state, and refusing files that are broken or unsafe."""

import random

import pytest
import torch
from safetensors.torch import load_file

from course_lib.checkpoints import load_training_state, load_weights, save_training_state, save_weights
from course_lib.training import History


def test_weights_round_trip(tmp_path):
    path = tmp_path / "model.safetensors"
    saved = torch.nn.Linear(3, 2)
    save_weights(saved, path)
    assert set(load_file(str(path))) == {"weight", "bias"}  # a plain safetensors file
    loaded = load_weights(torch.nn.Linear(3, 2), path)
    assert torch.equal(loaded.weight, saved.weight) and torch.equal(loaded.bias, saved.bias)


def test_weights_for_another_architecture_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    save_weights(torch.nn.Linear(3, 2), path)
    with pytest.raises(ValueError, match="different architecture"):
        load_weights(torch.nn.Linear(4, 2), path)


def test_corrupted_weights_file_is_a_clear_error(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(random.Random(0).randbytes(256))
    with pytest.raises(ValueError, match="corrupted"):
        load_weights(torch.nn.Linear(3, 2), path)


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "nothing.safetensors")


def test_training_state_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    history = History(epoch=2)
    history.steps["loss"] += [3.0, 2.0]
    save_training_state(tmp_path / "run.pt", model, optimizer, history)

    fresh = torch.nn.Linear(3, 2)
    fresh_optimizer = torch.optim.Adam(fresh.parameters())
    restored = History.from_state_dict(load_training_state(tmp_path / "run.pt", fresh, fresh_optimizer))
    assert torch.equal(fresh.weight, model.weight)
    assert fresh_optimizer.state_dict()["state"][0]["step"] == 1
    assert restored.epoch == 2 and restored.steps["loss"] == [3.0, 2.0]


class Malicious:
    """Unpickling this would run code: here, harmlessly, create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_training_state_with_code_inside_is_refused(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"model": Malicious(str(marker))}, path)
    with pytest.raises(ValueError, match="Refusing to load"):
        load_training_state(path, torch.nn.Linear(3, 2))
    assert not marker.exists()


def test_training_state_for_another_architecture_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    save_training_state(path, torch.nn.Linear(3, 2), None, History())
    with pytest.raises(ValueError, match="different architecture"):
        load_training_state(path, torch.nn.Linear(5, 2))
