"""Train a digit classifier that the quality metrics use, and bundle it with a manifest.

    python -m course_lib.tools.train_classifier                           # the first network (offline: 4,000 digits)
    python -m course_lib.tools.train_classifier --arch resnet --seed 1    # the second network, which cross-checks it
    python -m course_lib.tools.train_classifier --source download         # full MNIST (60,000), when online

Writes the weights and a manifest beside them (sha256, size, the command, the data used, the accuracy on the bundled
test split, the time it took): `course_lib/assets/digit_classifier.safetensors` and `.json` for `--arch cnn` (the
default), `digit_classifier_b.safetensors` and `.json` for `--arch resnet`. `--out` writes elsewhere.

The recipe itself is `train_digit_classifier`, which the benchmark also uses (e.g. for a classifier that sees only
the upper half of each digit).
"""

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from ..checkpoints import save_weights
from ..classifiers import ARCHITECTURES
from ..config import pick_device, seed_everything
from ..data import load_dataset, make_loader, random_affine
from ..metrics import WEIGHTS, WEIGHTS_B
from ..pix2pix import hide_lower_half
from ..training import CosineSchedule, History, fit

# where each architecture's weights go unless --out says otherwise: the metrics' first and second network
DEFAULT_OUT = {"cnn": WEIGHTS, "resnet": WEIGHTS_B}
# epochs of the upper-half classifier (pix2pix's ceiling) in each profile: the recipe's 30 on the bundled digits, fewer
# on 60,000, and 2 in smoke, which only checks that it runs
UPPER_HALF_EPOCHS = {"smoke": 2, "cpu": 30, "gpu": 10}


def train_digit_classifier(train: TensorDataset, architecture: str = "cnn", epochs: int = 30, seed: int = 0,
                           device: torch.device | str = "cpu", transform: Callable | None = None, *,
                           batch_size: int = 64, lr: float = 2e-3, progress: bool = True) -> tuple[nn.Module, History]:
    """The course's recipe for a digit classifier: cross-entropy, Adam at `lr` with a cosine schedule, each batch
    randomly rotated, shifted and zoomed (`random_affine`), then passed through `transform` when one is given
    (e.g. `hide_lower_half`: a classifier of upper halves). Returns the trained model (in train mode) and its
    history; the same arguments give the same model.

        model, history = train_digit_classifier(load_dataset("mnist", "train", source="bundled"), "resnet", seed=1)
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {architecture!r}. Use one of: {', '.join(ARCHITECTURES)}.")
    transform = transform or (lambda x: x)
    generator = seed_everything(seed)
    model = ARCHITECTURES[architecture]().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def step(model, batch):
        x, y = batch
        return F.cross_entropy(model(transform(random_affine(x, generator))), y)

    history = fit(model, make_loader(train, batch_size, seed=seed), step, optimizer, epochs, device=device,
                  callbacks=[CosineSchedule(optimizer, epochs)], progress=progress)
    return model, history


@torch.no_grad()
def test_accuracy(model: nn.Module, device, transform: Callable | None = None) -> float:
    """Accuracy on the 1,000 digits of the bundled test split (each passed through `transform` first, if given)."""
    x, y = load_dataset("mnist", "test", source="bundled").tensors
    if transform is not None:
        x = transform(x)
    model.eval()
    predictions = torch.cat([model(batch.to(device)).argmax(1).cpu() for batch in x.split(500)])
    return (predictions == y).float().mean().item()


def upper_half_accuracy(train: TensorDataset, epochs: int, device: torch.device | str = "cpu",
                        seed: int = 0) -> tuple[float, History]:
    """How far the upper half of a digit determines its class at all: a `DigitClassifier` trained by this recipe on
    digits whose lower half is hidden exactly as pix2pix's input is (`hide_lower_half`, after the augmentation),
    and its accuracy on the hidden-lower-half test digits; with the training's history (one that stopped early is no
    result). A completion cannot be read as the right digit more often than its upper half allows: this is the
    ceiling against which pix2pix's class accuracy is read (the benchmark reports both)."""
    model, history = train_digit_classifier(train, "cnn", epochs, seed, device, transform=hide_lower_half,
                                            progress=False)
    return test_accuracy(model, device, transform=hide_lower_half), history


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="cnn", choices=list(ARCHITECTURES),
                        help="cnn: the metrics' first network (DigitClassifier); resnet: the second "
                             "(ResidualDigitClassifier)")
    parser.add_argument("--source", default="bundled", choices=["bundled", "download", "auto"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="where the weights go (default: the metrics' file for --arch)")
    args = parser.parse_args(argv)
    out = args.out or DEFAULT_OUT[args.arch]

    device = pick_device()
    train = load_dataset("mnist", "train", source=args.source)
    model, history = train_digit_classifier(train, args.arch, args.epochs, args.seed, device,
                                            batch_size=args.batch_size, lr=args.lr)
    accuracy = test_accuracy(model, device)

    save_weights(model, out)
    manifest = {
        "file": out.name,
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "bytes": out.stat().st_size,
        "command": " ".join(["python -m course_lib.tools.train_classifier", *(argv if argv is not None else sys.argv[1:])]),
        "data": f"MNIST train, source={args.source}, {len(train)} images, random rotation/shift/zoom augmentation",
        "bundled_test_accuracy": round(accuracy, 4),
        "final_train_loss": round(history.epochs["loss"][-1], 4),
        "epochs": args.epochs,
        "train_seconds": round(history.seconds, 1),
        "device": str(device),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
    }
    out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))
    return manifest


if __name__ == "__main__":
    main()
