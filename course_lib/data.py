"""Image data for the lessons: MNIST and Fashion-MNIST, offline first.

Every dataset comes back as a `TensorDataset(images, labels)` held in memory:

- `images`: float32, shape `(N, 1, 28, 28)`, values in **[0, 1]** (0 = black background, 1 = white ink);
- `labels`: int64, shape `(N,)`, the class 0-9.

Where the images come from (`source`):

- `"bundled"`: 5,000 real MNIST digits that ship inside this package (4,000 train / 1,000 test, 400 / 100 per
  class; see `assets/mnist_subset/PROVENANCE.md`). Works with no internet. Only for `"mnist"` (and the colour digits
  painted from it).
- `"download"`: the full dataset through `torchvision.datasets`, downloaded once into the cache directory
  (`COURSE_DATA_DIR`, default `~/.cache/course_lib/data`).
- `"auto"` (default): the full dataset if it is cached or can be downloaded, else the bundled digits with a one-line
  notice. With `COURSE_OFFLINE=1` (the tests and CI set it) it never touches the network.

`"colour_digits"` (or `"color_digits"`) are those MNIST digits (same split, order and `n` subset), painted: a
`TensorDataset(images, labels, attributes)` with images float32 `(N, 3, 28, 28)` and `attributes` int64 `(N, 4)`, one
index per column of `COLOUR_ATTRIBUTES` into `INK_COLOURS`, `BACKGROUNDS`, `SIZES` and `POSITIONS`
(`describe_attributes` names them). They are drawn from a seed per split, so image i is the same on every machine.
An ink is only drawn on a background it is at least `MIN_CONTRAST` brighter than (in `to_grey`'s luminance), so every
digit still reads light-on-dark in grey; this rules out red, green, blue and purple on dark green, and red on maroon.

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
DERIVED = {"colour_digits": "mnist"}  # dataset -> the one it is painted from
ALIASES = {"color_digits": "colour_digits"}
SOURCES = ("auto", "bundled", "download")
SPLITS = ("train", "test")
BUNDLED_ROOT = Path(__file__).parent / "assets" / "mnist_subset"
FASHION_CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")
DOWNLOAD_TIMEOUT_S = 10  # an unreachable mirror should fail in seconds, not hang a lesson
COLOUR_ATTRIBUTES = ("ink", "background", "size", "position")
INK_COLOURS = {"red": (1.0, 0.15, 0.15), "orange": (1.0, 0.55, 0.0), "yellow": (1.0, 0.9, 0.1),
               "green": (0.1, 0.8, 0.2), "cyan": (0.0, 0.85, 0.9), "blue": (0.25, 0.45, 1.0),
               "purple": (0.7, 0.3, 1.0), "white": (1.0, 1.0, 1.0)}  # RGB in [0, 1]
BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "navy": (0.0, 0.0, 0.4), "dark green": (0.0, 0.3, 0.1),
               "maroon": (0.4, 0.0, 0.05)}
SIZES = ("large", "small")
POSITIONS = ("centre", "left", "right", "top", "bottom")  # only small digits move; large ones are always "centre"
SMALL_SIZE = 16  # a small digit is shrunk from 28 to 16 pixels (x0.57), leaving a 12-pixel margin to move in
_CORNERS = ((6, 6), (6, 0), (6, 12), (0, 6), (12, 6))  # (top, left) of the small digit, for each of POSITIONS
COLOUR_SEEDS = {"train": 1, "test": 2}
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B in the luminance
MIN_CONTRAST = 0.35  # an ink is only drawn on backgrounds at least this much darker (in luminance)
_INK_RGB, _BACKGROUND_RGB = torch.tensor(list(INK_COLOURS.values())), torch.tensor(list(BACKGROUNDS.values()))
DRAWN_PAIRS = (_INK_RGB @ torch.tensor(LUMA))[:, None] - _BACKGROUND_RGB @ torch.tensor(LUMA) >= MIN_CONTRAST
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
    """Load `split` ("train" or "test") of dataset `name` as a TensorDataset(images in [0, 1], labels), plus
    attributes for "colour_digits" (see the module's docstring).

    `n` keeps a fixed random subset of that many images (the same subset every time), or all when None.

    >>> len(load_dataset("mnist", "test", source="bundled"))
    1000
    >>> [t.shape for t in load_dataset("colour_digits", "test", n=5, source="bundled").tensors]
    [torch.Size([5, 3, 28, 28]), torch.Size([5]), torch.Size([5, 4])]
    """
    name = name.strip().lower().replace("-", "_").replace(" ", "_")
    name = ALIASES.get(name, name)
    if name not in DATASETS and name not in DERIVED:
        raise ValueError(f"Unknown dataset {name!r}. Valid names: {', '.join([*DATASETS, *DERIVED])}.")
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Use 'train' or 'test'.")
    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}. Use one of {', '.join(SOURCES)}.")
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive whole number of images (or None for all), not {n!r}.")

    base = DERIVED.get(name, name)
    if source == "bundled":
        raw = _bundled(base, split)
    elif source == "download":
        raw = _download(base, split)
    else:
        raw = _auto(base, split)
    images = raw.data.unsqueeze(1).float() / 255.0  # (N, 28, 28) uint8 -> (N, 1, 28, 28) in [0, 1]
    labels = raw.targets.long()
    tensors = [images, labels] + ([_colour_attributes(len(labels), split)] if name in DERIVED else [])
    if n is not None and n < len(labels):  # attributes are drawn for the whole split, so a subset keeps its rows
        keep = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:n]
        tensors = [t[keep] for t in tensors]
    if name in DERIVED:
        tensors[0] = paint_digits(tensors[0], tensors[2])
    return TensorDataset(*tensors)


def _colour_attributes(n: int, split: str) -> torch.Tensor:
    """(n, 4) attribute indices of a split, the same on every machine (drawn from the split's fixed seed)."""
    return draw_colour_attributes(n, torch.Generator().manual_seed(COLOUR_SEEDS[split]))


def draw_colour_attributes(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 4) attribute indices drawn from `generator`: ink uniform, then a background among those it may be drawn
    on (DRAWN_PAIRS), size uniform, position uniform for small digits and "centre" for large ones."""
    g = generator
    ink = torch.randint(len(INK_COLOURS), (n,), generator=g)
    background = torch.multinomial(DRAWN_PAIRS[ink].float(), 1, generator=g).squeeze(1)
    size = torch.randint(len(SIZES), (n,), generator=g)
    position = torch.randint(len(POSITIONS), (n,), generator=g) * (size == SIZES.index("small"))
    return torch.stack([ink, background, size, position], 1)


def paint_digits(grey: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """Paint grey digits (N, 1, 28, 28) as colour images (N, 3, 28, 28): `image = background * (1 - a) + ink * a`,
    with `a` the grey digit (its alpha), first shrunk to SMALL_SIZE pixels and moved to its position if small.

    >>> paint_digits(torch.ones(1, 1, 28, 28), torch.tensor([[0, 0, 0, 0]]))[0, :, 14, 14]  # red ink, large
    tensor([1.0000, 0.1500, 0.1500])
    """
    ink, background, size, position = attributes.T
    a, small = grey.clone(), size == SIZES.index("small")
    shrunk = F.interpolate(grey[small], size=(SMALL_SIZE, SMALL_SIZE), mode="area")  # area: thin strokes survive
    moved = torch.zeros_like(grey[small])
    for p, (top, left) in enumerate(_CORNERS):
        here = position[small] == p
        moved[here, :, top:top + SMALL_SIZE, left:left + SMALL_SIZE] = shrunk[here]
    a[small] = moved
    return _BACKGROUND_RGB[background, :, None, None] * (1 - a) + _INK_RGB[ink, :, None, None] * a


def to_grey(images: torch.Tensor) -> torch.Tensor:
    """Luminance of colour images, (N, 3, H, W) -> (N, 1, H, W): `Y = 0.299 R + 0.587 G + 0.114 B` (LUMA).

    >>> to_grey(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))  # pure red is a dark grey
    tensor([[[[0.2990]]]])
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"to_grey expects colour images shaped (N, 3, H, W), got {tuple(images.shape)}. For one "
                         f"image use to_grey(x.unsqueeze(0)).")
    return (images * torch.tensor(LUMA, dtype=images.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)


def describe_attributes(row) -> dict[str, str]:
    """Name the attributes of one colour digit (a row of `attributes`); its digit is the label.

    >>> describe_attributes(torch.tensor([0, 0, 1, 1]))
    {'ink': 'red', 'background': 'black', 'size': 'small', 'position': 'left'}
    """
    names = (tuple(INK_COLOURS), tuple(BACKGROUNDS), SIZES, POSITIONS)
    row = torch.as_tensor(row).flatten().tolist()
    if len(row) != 4 or not all(0 <= i < len(n) for i, n in zip(row, names)):
        raise ValueError(f"Expected one row of attributes, 4 indices ({', '.join(COLOUR_ATTRIBUTES)}), got {row}. "
                         f"Pass one row, e.g. describe_attributes(attributes[0]).")
    return {column: n[i] for column, n, i in zip(COLOUR_ATTRIBUTES, names, row)}


def colour_of(name: str) -> torch.Tensor:
    """The RGB colour (in [0, 1]) of an ink or background, by name.

    >>> colour_of("orange")
    tensor([1.0000, 0.5500, 0.0000])
    """
    palette = {**INK_COLOURS, **BACKGROUNDS}
    if name not in palette:
        raise ValueError(f"Unknown colour {name!r}. Valid names: {', '.join(palette)}.")
    return torch.tensor(palette[name])


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


FULL_MNIST_TRAIN = 60_000  # training digits in the full MNIST, which the `gpu` profile is sized for


def has_full_mnist() -> bool:
    """Whether the full MNIST training set is here or can be downloaded now (it is then kept in the cache), as the
    `gpu` profile needs. False offline, or when the download fails (which is said once, as for any load)."""
    return len(_auto("mnist", "train")) >= FULL_MNIST_TRAIN


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


def check_batch(x: torch.Tensor, what: str = "images") -> torch.Tensor:
    """Raise a clear error unless x is a batch of images (B, C, H, W) with pixels in [0, 1]; return it unchanged.
    (`check_images` also insists on 1 x 28 x 28: digits; this one takes any size and channels: colour digits,
    7 x 7 inputs.)"""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"Expected {what} as a batch shaped (B, C, H, W), got {shape}. For one image use "
                         f"x.unsqueeze(0).")
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
