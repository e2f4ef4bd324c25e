"""The real download path, offline: MNIST files in torchvision's layout (made from the bundled digits, in reverse
order so that they differ from them) are served on 127.0.0.1 and `COURSE_DATA_MIRROR` points the course at them.
Downloading, torchvision's md5 check, the cache, and the fallback to the bundled digits all run for real."""

import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading
from pathlib import Path

import pytest
import torch
from torchvision import datasets

from course_lib import data
from course_lib.data import load_dataset

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_files(images: torch.Tensor, labels: torch.Tensor) -> tuple[bytes, bytes]:
    """IDX, the format of MNIST's files: a magic number (2051 images, 2049 labels), the sizes, then uint8 values."""
    n, h, w = images.shape
    return (struct.pack(">IIII", 2051, n, h, w) + images.numpy().tobytes(),
            struct.pack(">II", 2049, n) + labels.to(torch.uint8).numpy().tobytes())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder laid out like a download cache (MNIST/raw/*.gz), and {file.gz: md5} of what it holds."""
    root = tmp_path_factory.mktemp("mirror")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        bundled = datasets.MNIST(data.BUNDLED_ROOT, train=split == "train")
        images, labels = idx_files(bundled.data.flip(0), bundled.targets.flip(0))
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images, mtime=0))
        (raw / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels, mtime=0))
    return root, {f"{file}.gz": hashlib.md5((raw / f"{file}.gz").read_bytes()).hexdigest() for file in FILES}


class Mirror:
    """`python -m http.server` on 127.0.0.1, in a thread; `requests` lists the paths asked for."""

    def __init__(self, folder: Path):
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      functools.partial(Handler, directory=str(folder)))
        self.server.handle_error = lambda request, address: None  # a client that hangs up early is no error here
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        """Shut the server down: from now on a connection to its port is refused."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()


@pytest.fixture
def mirror(site, tmp_path, monkeypatch):
    """A fresh session that downloads from a running local mirror into an empty cache; nothing else is reachable."""
    folder, md5s = site
    real_connect = socket.socket.connect

    def loopback_only(sock, address):
        if address[0] not in ("127.0.0.1", "::1"):
            raise OSError(f"only 127.0.0.1 may be reached in this test, not {address[0]}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    # The real MNIST's md5s cannot match these files; the check itself runs as usual against the served files' own.
    monkeypatch.setattr(datasets.MNIST, "resources", [(file, md5s[file]) for file in md5s])
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "_download_failed", False)
    monkeypatch.setattr(data, "_told", set())
    server = Mirror(folder)
    monkeypatch.setenv("COURSE_DATA_MIRROR", server.url)  # no trailing "/": the course adds it
    yield server
    server.stop()


def served(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """What the mirror holds for `split`: the bundled digits in reverse order, as load_dataset returns them."""
    x, y = load_dataset("mnist", split, source="bundled").tensors
    return x.flip(0), y.flip(0)


def notices(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_a_download_from_the_mirror_is_checked_cached_and_loaded(mirror, capsys):
    x, y = load_dataset("mnist", "train", source="download").tensors
    sx, sy = served("train")
    assert x.shape == (4000, 1, 28, 28) and x.dtype == torch.float32
    assert torch.equal(x, sx) and torch.equal(y, sy)  # the served digits, not the bundled ones (another order)
    assert not torch.equal(y, load_dataset("mnist", "train", source="bundled").tensors[1])
    asked = {path.rsplit("/", 1)[-1] for path in mirror.requests}
    assert asked == {f"{file}.gz" for file in FILES}  # one download fetches both splits
    assert all(path.startswith("/MNIST/raw/") for path in mirror.requests)
    cached = data.cache_dir() / "MNIST" / "raw"
    assert all((cached / file).is_file() for file in FILES)
    assert notices(capsys) == []


def test_the_next_load_uses_the_cache_without_asking_the_mirror(mirror, capsys, monkeypatch):
    load_dataset("mnist", "train", source="download")
    n = len(mirror.requests)
    assert n >= 4
    for split in ("train", "test"):
        x, y = load_dataset("mnist", split).tensors  # "auto", as a lesson calls it
        assert torch.equal(x, served(split)[0]) and torch.equal(y, served(split)[1])
    assert len(load_dataset("mnist", "test", source="download")) == 1000
    assert len(mirror.requests) == n  # not one request more
    mirror.stop()  # next day, in class, with no mirror: the cache is enough, and nothing is said
    monkeypatch.setattr(data, "_download_failed", False)
    assert torch.equal(load_dataset("mnist", "test").tensors[1], served("test")[1])
    assert notices(capsys) == []


def test_a_mirror_that_is_down_gives_the_bundled_digits_and_one_notice(mirror, capsys):
    mirror.stop()
    x, y = load_dataset("mnist", "train").tensors
    bx, by = load_dataset("mnist", "train", source="bundled").tensors
    assert torch.equal(x, bx) and torch.equal(y, by)
    [notice] = notices(capsys)
    assert notice.startswith(f"Could not download MNIST from COURSE_DATA_MIRROR={mirror.url}/ (")
    assert "refused" in notice and notice.endswith("using the 5,000 bundled MNIST digits instead.")
    assert len(load_dataset("mnist", "test")) == 1000  # said once: the next load does not try (and wait) again
    assert notices(capsys) == []
    assert not any(data.cache_dir().rglob("*-ubyte"))
    with pytest.raises(RuntimeError, match="Check that the mirror is running.*source='bundled'"):
        load_dataset("mnist", "test", source="download")


@pytest.mark.parametrize("damage", ["truncated", "one byte changed"])
def test_a_damaged_file_is_refused_by_its_checksum_and_never_used(mirror, site, tmp_path, capsys, monkeypatch,
                                                                    damage):
    folder, _ = site
    broken = tmp_path / "broken"  # the same site with its last file damaged
    for file in FILES:
        gz = (folder / "MNIST" / "raw" / f"{file}.gz").read_bytes()
        if file == FILES[-1]:
            gz = gz[: len(gz) // 2] if damage == "truncated" else gz[:100] + bytes([gz[100] ^ 1]) + gz[101:]
        (broken / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
        (broken / "MNIST" / "raw" / f"{file}.gz").write_bytes(gz)
    bad = Mirror(broken)
    monkeypatch.setenv("COURSE_DATA_MIRROR", bad.url)
    try:
        x, _ = load_dataset("mnist", "test").tensors
    finally:
        bad.stop()
    assert torch.equal(x, load_dataset("mnist", "test", source="bundled").tensors[0])  # the bundled digits
    [notice] = notices(capsys)
    assert "failed its checksum" in notice and notice.endswith("using the 5,000 bundled MNIST digits instead.")
    cached = data.cache_dir() / "MNIST" / "raw"
    assert not (cached / FILES[-1]).exists()  # the damaged archive was never unpacked, and is gone
    assert sorted(path.name for path in cached.glob("*.gz")) == [f"{file}.gz" for file in sorted(FILES[:-1])]
    with pytest.raises(RuntimeError, match="Dataset not found"):
        datasets.MNIST(data.cache_dir(), train=False)  # so the cache is not taken as complete

    # Next session, the good mirror: only the damaged file is fetched again, and the served labels load.
    monkeypatch.setattr(data, "_download_failed", False)
    monkeypatch.setenv("COURSE_DATA_MIRROR", mirror.url)
    _, y = load_dataset("mnist", "test").tensors
    assert torch.equal(y, served("test")[1])
    assert {path.rsplit("/", 1)[-1] for path in mirror.requests} == {f"{FILES[-1]}.gz"}
    assert notices(capsys) == []


def test_fashion_mnist_is_asked_for_in_its_own_folder_of_the_mirror(mirror):
    with pytest.raises(RuntimeError, match="Could not download FashionMNIST from COURSE_DATA_MIRROR.*404"):
        load_dataset("fashion_mnist", "test")  # not on this mirror, and not bundled: a clear error
    assert mirror.requests and all(path.startswith("/FashionMNIST/raw/") for path in mirror.requests)
