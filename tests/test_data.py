"""Data loading: the bundled MNIST subset, argument checks, the cache folder, and the offline fallback (the
`no_network` fixture is in conftest.py)."""

import pytest
import torch

from course_lib import data
from course_lib.data import cache_dir, check_images, load_dataset


@pytest.mark.parametrize("split, size", [("train", 4000), ("test", 1000)])
def test_bundled_mnist_is_what_the_docs_promise(split, size):
    x, y = load_dataset("mnist", split=split, source="bundled").tensors
    assert x.shape == (size, 1, 28, 28)
    assert x.dtype == torch.float32
    assert x.min().item() == 0.0 and x.max().item() == 1.0  # scaled by 255, not by the batch maximum
    assert y.dtype == torch.int64 and y.shape == (size,)
    assert torch.bincount(y, minlength=10).tolist() == [size // 10] * 10


def test_n_gives_the_same_fixed_subset_every_time():
    a = load_dataset("mnist", "train", n=50, source="bundled").tensors
    b = load_dataset("mnist", "train", n=50, source="bundled").tensors
    assert len(a[0]) == 50
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ValueError, match="Unknown dataset") as err:
        load_dataset("cifar10", source="bundled")
    assert "mnist" in str(err.value) and "fashion_mnist" in str(err.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(split="validation"), "split"),
        (dict(source="internet"), "source"),
        (dict(n=0), "positive"),
        (dict(n=2.5), "positive"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("mnist", **{"source": "bundled", **kwargs})


def test_fashion_mnist_is_not_bundled(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))  # the message names the cache folder
    with pytest.raises(ValueError, match="Only MNIST digits are bundled"):
        load_dataset("fashion_mnist", source="bundled")


def test_cache_dir_creates_a_missing_folder(tmp_path, monkeypatch):
    target = tmp_path / "new" / "data"
    monkeypatch.setenv("COURSE_DATA_DIR", str(target))
    assert cache_dir() == target
    assert target.is_dir()


def test_cache_dir_that_cannot_be_created_names_the_variable(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("COURSE_DATA_DIR", str(blocker / "data"))
    with pytest.raises(RuntimeError, match="COURSE_DATA_DIR"):
        cache_dir()


def test_auto_falls_back_to_the_bundled_digits_with_one_notice(no_network, capsys):
    x, _ = load_dataset("mnist").tensors
    assert x.shape == (4000, 1, 28, 28)
    notice = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(notice) == 1 and "bundled" in notice[0]
    # After one failure it does not try (and wait for) the network again.
    assert len(load_dataset("mnist", "test")) == 1000
    assert capsys.readouterr().out == ""


def test_download_without_network_says_how_to_work_offline(no_network):
    with pytest.raises(RuntimeError, match="source='bundled'"):
        load_dataset("mnist", source="download")


def test_check_images_accepts_a_batch():
    x = torch.rand(3, 1, 28, 28)
    assert check_images(x) is x


@pytest.mark.parametrize("shape", [(28, 28), (8, 784), (8, 28, 28), (8, 3, 28, 28)])
def test_check_images_rejects_wrong_shapes(shape):
    with pytest.raises(ValueError, match="view"):
        check_images(torch.rand(shape))


def test_check_images_rejects_non_tensors_and_integer_pixels():
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_images([[0.0] * 28] * 28)
    with pytest.raises(TypeError, match="float"):
        check_images(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_the_profile_does_not_decide_whether_data_may_be_downloaded(no_network, monkeypatch, capsys):
    """Only COURSE_OFFLINE (or an explicit source) keeps "auto" off the network; the profile is not read again."""
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    load_dataset("mnist", "test")  # tries the (refused) network, then says so once
    assert "bundled" in capsys.readouterr().out
    monkeypatch.setattr(data, "_download_failed", False)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    load_dataset("mnist", "test")  # offline: straight to the bundled digits, without a word
    assert capsys.readouterr().out == ""
