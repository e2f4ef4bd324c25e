"""Files and folders: bundled digits are verified, each data-folder problem gets its own message (and doctor says
so), a checkpoint path that is missing or a folder is named as such (issue 19, classes 5 and 6)."""

import os
import shutil

import pytest
import torch

from course_lib import data
from course_lib.checkpoints import load_training_state, load_weights
from course_lib.data import load_dataset
from course_lib.training import fit
from course_lib.tools import doctor as doctor_tool


@pytest.fixture
def bundled_copy(tmp_path, monkeypatch):
    """A copy of the bundled digits that a test may damage."""
    copy = tmp_path / "mnist_subset"
    shutil.copytree(data.BUNDLED_ROOT, copy)
    monkeypatch.setattr(data, "BUNDLED_ROOT", copy)
    return copy


def test_a_damaged_label_byte_is_refused_and_the_fix_is_to_reinstall(bundled_copy):
    labels = bundled_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = bytearray(labels.read_bytes())
    raw[100] = (raw[100] + 1) % 10  # one digit now carries the wrong label
    labels.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match its sha256 in PROVENANCE.md.*Reinstall the course"):
        load_dataset("mnist", "test", source="bundled")
    assert len(load_dataset("mnist", "train", source="bundled")) == 4000  # the other split is intact


def test_a_missing_bundled_file_says_to_reinstall_not_to_download(bundled_copy):
    (bundled_copy / "MNIST" / "raw" / "train-images-idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="incomplete. Reinstall the course") as err:
        load_dataset("mnist", "train", source="bundled")
    assert "download=True" not in str(err.value)


def test_doctor_fails_where_a_lesson_would_fail_on_the_bundled_digits(bundled_copy):
    (bundled_copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"broken")
    status, detail = doctor_tool.check_data(check_network=False)
    assert status == doctor_tool.FAIL and "Reinstall" in detail


def test_a_data_dir_that_is_a_file_is_named_as_such_and_does_not_blame_the_network(tmp_path, monkeypatch, capsys,
                                                                                   no_network):
    a_file = tmp_path / "data.txt"
    a_file.write_text("not a folder")
    monkeypatch.setenv("COURSE_DATA_DIR", str(a_file))
    assert len(load_dataset("mnist", "test")) == 1000  # the lesson goes on with the bundled digits
    out = capsys.readouterr().out
    assert "is a file, not a folder" in out and "COURSE_DATA_DIR" in out and "offline" not in out
    assert data._download_failed is False  # nothing sticks: fix the variable and the next load uses it
    with pytest.raises(RuntimeError, match="is a file, not a folder"):
        load_dataset("mnist", "test", source="download")
    status, detail = doctor_tool.check_data(check_network=False)
    assert status == doctor_tool.WARN and "is a file, not a folder" in detail


def test_a_read_only_data_dir_is_named_as_such(tmp_path, monkeypatch, capsys, no_network):
    folder = tmp_path / "shared"
    folder.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(folder))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(folder) else real_access(path, mode))
    assert len(load_dataset("mnist", "test")) == 1000
    out = capsys.readouterr().out
    assert "is read-only" in out and "offline" not in out and data._download_failed is False
    status, detail = doctor_tool.check_data(check_network=False)
    assert status == doctor_tool.WARN and "read-only" in detail


def test_a_missing_checkpoint_or_a_folder_is_named_as_such(tmp_path):
    model = torch.nn.Linear(2, 1)
    with pytest.raises(FileNotFoundError, match="no checkpoint at") as err:
        load_training_state(tmp_path / "nothing.pt", model)
    assert "delete" not in str(err.value).lower()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_training_state(tmp_path, model)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        fit(model, [(torch.ones(2, 2),)], lambda m, b: m(b[0]).sum(), None, 1, checkpoint=tmp_path, progress=False)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_weights(model, tmp_path)


def test_a_weights_file_given_as_a_checkpoint_says_what_it_is(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(1, 2), "bias": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"not a training checkpoint made by fit\(\.\.\., checkpoint=\.\.\.\)"):
        load_training_state(path, torch.nn.Linear(2, 1))
