"""Image data for the lessons: MNIST and Fashion-MNIST, offline first.

Every dataset comes back as a `TensorDataset(images, labels)` held in memory:

- `images`: float32, shape `(N, 1, 28, 28)`, values in **[0, 1]** (0 = black background, 1 = white ink);
- `labels`: int64, shape `(N,)`, the class 0-9.

Where the images come from (`source`):

- `"bundled"`: 5,000 real MNIST digits that ship inside this package (4,000 train / 1,000 test, 400 / 100 per
  class; see `assets/mnist_subset/PROVENANCE.md`). Works with no internet. Only for `"mnist"`.
- `"download"`: the full dataset through `torchvision.datasets`, downloaded once into the cache directory
  (`COURSE_DATA_DIR`, default `~/.cache/course_lib/data`).
- `"auto"` (default): the full dataset if it is cached or can be downloaded, else the bundled digits with a one-line
  notice. With `COURSE_OFFLINE=1` (the tests and CI set it) it never touches the network.

Downloads come from torchvision's mirrors, or only from `COURSE_DATA_MIRROR` when it is set: a classroom mirror, any
web server that holds the files in torchvision's layout (`MNIST/raw/train-images-idx3-ubyte.gz`, ...). A cache folder
is such a layout, so after one download a teacher can serve theirs with
`python -m http.server 8000 --directory ~/.cache/course_lib/data`, and students set
`COURSE_DATA_MIRROR=http://<teacher's address>:8000`. Every file is still checked against torchvision's md5.

    >>> train = load_dataset("mnist", split="train", n=100, source="bundled")
    >>> x, y = train.tensors
    >>> x.shape, x.dtype, float(x.min()) >= 0.0, float(x.max()) <= 1.0
    (torch.Size([100, 1, 28, 28]), torch.float32, True, True)
"""

import hashlib
import math
import os
import re
import socket
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets
from torchvision.datasets.utils import check_integrity

from .nets import check_finite, check_float32

DATASETS = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}
SOURCES = ("auto", "bundled", "download")
SPLITS = ("train", "test")
BUNDLED_ROOT = Path(__file__).parent / "assets" / "mnist_subset"
FASHION_CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")
DOWNLOAD_TIMEOUT_S = 10  # an unreachable mirror should fail in seconds, not hang a lesson
_download_failed = False  # after one failed download, "auto" goes straight to the bundled digits
_told: set[str] = set()  # one-line notices already printed this session
PIXEL_SLACK = 0.01  # how far outside [0, 1] an image may stray (round-off of a sigmoid, an interpolation) and pass
REINSTALL = ("Reinstall the course (in its folder: pip install --force-reinstall --no-deps -e .; on Colab run the "
             "install cell again), or restore the folder with `git checkout course_lib/assets`")


def offline_mode() -> bool:
    """True when `COURSE_OFFLINE` is set (to anything but 0): "auto" then never touches the network."""
    return os.environ.get("COURSE_OFFLINE", "") not in ("", "0")


def cache_dir() -> Path:
    """Where downloaded datasets live: `COURSE_DATA_DIR`, or `~/.cache/course_lib/data`. Created if missing; a path
    that is a file, or that cannot be created, is an error that names COURSE_DATA_DIR and the fix."""
    path = Path(os.environ.get("COURSE_DATA_DIR") or Path.home() / ".cache" / "course_lib" / "data").expanduser()
    fix = ("Point COURSE_DATA_DIR at a folder you can write to, e.g. `export COURSE_DATA_DIR=$HOME/course_data`, "
           "or use the bundled digits with load_dataset('mnist', source='bundled').")
    if path.exists() and not path.is_dir():
        raise DataDirError(f"COURSE_DATA_DIR={path} is a file, not a folder, so no dataset can be kept there. {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataDirError(f"The data cache directory {path} does not exist and cannot be created ({err.strerror}). "
                           f"{fix}") from None
    return path


class DataDirError(RuntimeError):
    """The data cache folder (COURSE_DATA_DIR) is unusable: a file, not creatable, or not writable for a download."""


def _writable(path: Path) -> None:
    """Raise DataDirError unless a download can write into `path`."""
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(f"The data cache directory {path} is read-only, so a dataset cannot be downloaded into it. "
                           f"Point COURSE_DATA_DIR at a folder you can write to, e.g. "
                           f"`export COURSE_DATA_DIR=$HOME/course_data`, or use the bundled digits with "
                           f"load_dataset('mnist', source='bundled').")


def load_dataset(name: str = "mnist", split: str = "train", n: int | None = None, source: str = "auto") -> TensorDataset:
    """Load `split` ("train" or "test") of dataset `name` as a TensorDataset(images in [0, 1], labels).

    `n` keeps a fixed random subset of that many images (the same subset every time), or all when None.

    >>> len(load_dataset("mnist", "test", source="bundled"))
    1000
    """
    name = name.strip().lower().replace("-", "_")
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Valid names: {', '.join(DATASETS)}.")
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Use 'train' or 'test'.")
    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}. Use one of {', '.join(SOURCES)}.")
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive whole number of images (or None for all), not {n!r}.")

    if source == "bundled":
        raw = _bundled(name, split)
    elif source == "download":
        raw = _download(name, split)
    else:
        raw = _auto(name, split)
    images = raw.data.unsqueeze(1).float() / 255.0  # (N, 28, 28) uint8 -> (N, 1, 28, 28) in [0, 1]
    labels = raw.targets.long()
    if n is not None and n < len(labels):
        keep = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:n]
        images, labels = images[keep], labels[keep]
    return TensorDataset(images, labels)


def make_loader(dataset: TensorDataset, batch_size: int, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """A DataLoader whose shuffling is seeded, so a training run can be repeated exactly.

    >>> loader = make_loader(load_dataset("mnist", n=64, source="bundled"), batch_size=32)
    >>> [x.shape[0] for x, y in loader]
    [32, 32]
    """
    if len(dataset) == 0:
        raise ValueError("make_loader got an empty dataset (0 images), so there is nothing to train on. Check how it "
                         "was made, e.g. load_dataset('mnist', n=1000).")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size is how many images go into one step, a whole number >= 1, e.g. 64; got "
                         f"{batch_size!r}.")
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed))


def _bundled(name: str, split: str) -> datasets.MNIST:
    if name != "mnist":
        raise ValueError(
            f"Only MNIST digits are bundled; {name!r} needs one download. Connect to the internet once and use "
            f"source='download' (it is cached in {cache_dir()}), or use load_dataset('mnist')."
        )
    prefix = "train" if split == "train" else "t10k"
    for kind in ("images-idx3", "labels-idx1"):
        verify_bundled(f"{prefix}-{kind}-ubyte")
    return datasets.MNIST(root=BUNDLED_ROOT, train=split == "train", download=False)


def bundled_hashes() -> dict[str, str]:
    """{file name: sha256} of the bundled MNIST files, as listed in `assets/mnist_subset/PROVENANCE.md`."""
    provenance = BUNDLED_ROOT / "PROVENANCE.md"
    if not provenance.exists():
        raise FileNotFoundError(f"{provenance} is missing, so the bundled digits cannot be checked. {REINSTALL}.")
    return dict(re.findall(r"^\| (\S+-ubyte) \| ([0-9a-f]{64}) \|$", provenance.read_text(), flags=re.M))


def verify_bundled(file: str) -> None:
    """Check one bundled MNIST file against its sha256 in PROVENANCE.md; raise an error that says to reinstall when
    it is missing or damaged (a changed byte would otherwise load as a wrong digit or label, without a word)."""
    path = BUNDLED_ROOT / "MNIST" / "raw" / file
    if not path.is_file():
        raise FileNotFoundError(f"The bundled MNIST file {path} is missing: this installation of the course is "
                                f"incomplete. {REINSTALL}.")
    stat = path.stat()
    if _sha256(path, stat.st_size, stat.st_mtime_ns) != bundled_hashes().get(file):
        raise ValueError(f"The bundled MNIST file {path} does not match its sha256 in PROVENANCE.md: it was changed "
                         f"or damaged, and would give wrong digits or labels. {REINSTALL}.")


@lru_cache(maxsize=16)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:  # size and time: a changed file is hashed again
    return hashlib.sha256(path.read_bytes()).hexdigest()


class DownloadError(RuntimeError):
    """A download failed; `summary` says so in one line: from where, and why (offline, the mirror's answer, or a
    damaged file)."""

    def __init__(self, summary: str, details: str):
        super().__init__(f"{summary}. {details}")
        self.summary = summary


def data_mirror() -> str | None:
    """The classroom mirror set in `COURSE_DATA_MIRROR` (a URL ending in "/"), or None for torchvision's mirrors."""
    url = os.environ.get("COURSE_DATA_MIRROR", "").strip()
    return url.rstrip("/") + "/" if url else None


def _download(name: str, split: str) -> datasets.VisionDataset:
    root = cache_dir()
    _writable(root)
    dataset, where = DATASETS[name], data_mirror()
    if where:  # same class name, so the same cache layout: root/MNIST/raw/, which is also the mirror's layout
        dataset = type(dataset.__name__, (dataset,), {"mirrors": [f"{where}{dataset.__name__}/raw/"]})
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return dataset(root=root, train=split == "train", download=True)
    except Exception as err:  # torchvision raises RuntimeError, URLError or socket errors depending on what failed
        for file, md5 in dataset.resources:  # keep only whole files: a damaged or cut-off one is fetched again
            archive = root / dataset.__name__ / "raw" / file
            if archive.exists() and not check_integrity(str(archive), md5):
                archive.unlink()
        said = " ".join(str(err).split()) or type(err).__name__
        if "corrupted" in said:  # torchvision's md5 check refused a file
            why = "a downloaded file failed its checksum and was deleted"
        elif where:
            why = (str(err).strip().splitlines() or [said])[-1]  # the mirror's answer, e.g. Connection refused
        else:
            why = "offline?"
        source = f"COURSE_DATA_MIRROR={where}" if where else "the internet"
        fix = "Check that the mirror is running and holds the files" if where else "Check the internet connection"
        raise DownloadError(f"Could not download {dataset.__name__} from {source} ({why})",
                            f"{fix}, or use the bundled digits: load_dataset('mnist', source='bundled'). "
                            f"(Downloading into {root}: {type(err).__name__}: {said})") from None
    finally:
        socket.setdefaulttimeout(old_timeout)


def _auto(name: str, split: str) -> datasets.VisionDataset:
    global _download_failed
    offline = _download_failed or offline_mode()
    if offline and name == "mnist":
        return _bundled(name, split)
    try:
        root = cache_dir()
        try:
            return DATASETS[name](root=root, train=split == "train", download=False)
        except RuntimeError:
            pass  # not cached yet
        if offline:
            return _bundled(name, split)  # explains that only MNIST is bundled
        return _download(name, split)
    except DataDirError as err:  # the folder, not the network: say so, every session, and do not blame the network
        if name != "mnist":
            raise
        _tell(f"{err} Using the 5,000 bundled MNIST digits for now.")
        return _bundled(name, split)
    except DownloadError as err:
        if name != "mnist":
            raise
        _download_failed = True  # so this is said once: later loads go straight to the bundled digits
        print(f"{err.summary}; using the 5,000 bundled MNIST digits instead.")
        return _bundled(name, split)


def _tell(message: str) -> None:
    """Print a notice once per session (a lesson loads two splits: one notice is enough)."""
    if message not in _told:
        _told.add(message)
        print(message)


def check_images(x: torch.Tensor, what: str = "images") -> torch.Tensor:
    """Raise a clear error unless `x` is a batch of digit images shaped (B, 1, 28, 28) with float32 pixels in [0, 1]
    (see `check_pixels`); return it unchanged.

    >>> check_images(torch.zeros(28, 28))
    Traceback (most recent call last):
    ...
    ValueError: Expected images shaped (B, 1, 28, 28), got (28, 28). For one image use x.view(1, 1, 28, 28); for a batch of flat vectors use x.view(-1, 1, 28, 28).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"Expected {what} as a torch.Tensor, got {type(x).__name__}. Convert with torch.as_tensor(x).")
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(
            f"Expected {what} shaped (B, 1, 28, 28), got {tuple(x.shape)}. For one image use x.view(1, 1, 28, 28); "
            f"for a batch of flat vectors use x.view(-1, 1, 28, 28)."
        )
    return check_pixels(x, what)


def check_pixels(x: torch.Tensor, what: str = "images") -> torch.Tensor:
    """Raise a clear error unless `x` holds float32 pixels in [0, 1], of any shape; return it unchanged. 0-255 pixels,
    images in [-1, 1], float64 or integer tensors, NaN and inf are each refused with the fix.

    >>> check_pixels(torch.full((2, 1, 28, 28), 255.0))
    Traceback (most recent call last):
    ...
    ValueError: Expected images with pixels in [0, 1], got values from 255 to 255. These look like 0-255 pixels: divide by 255 (x / 255).
    """
    check_float32(x, what)
    check_finite(x, what)
    if x.is_meta or x.numel() == 0:
        return x
    low, high = (float(v) for v in torch.aminmax(x.detach()))
    if low < -PIXEL_SLACK or high > 1 + PIXEL_SLACK:
        if high > 2:
            hint = "These look like 0-255 pixels: divide by 255 (x / 255)."
        elif low >= -1 - PIXEL_SLACK and high <= 1 + PIXEL_SLACK:
            hint = "These look like images in [-1, 1]: map them to [0, 1] with (x + 1) / 2."
        else:
            hint = "Keep pixels in [0, 1], e.g. with x.clamp(0, 1) after adding noise."
        raise ValueError(f"Expected {what} with pixels in [0, 1], got values from {low:.3g} to {high:.3g}. {hint}")
    return x


def random_affine(x: torch.Tensor, generator: torch.Generator | None = None, degrees: float = 12,
                  shift: float = 0.12, zoom: float = 0.1) -> torch.Tensor:
    """Data augmentation: each image gets its own small random rotation, shift and zoom (so a classifier trained on
    4,000 digits generalizes as if it had seen many more)."""
    b = x.shape[0]
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(degrees)
    scale = 1 + (torch.rand(b, generator=generator) * 2 - 1) * zoom
    tx, ty = ((torch.rand(2, b, generator=generator) * 2 - 1) * shift * 2)  # in [-1, 1] grid units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1).to(x)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
