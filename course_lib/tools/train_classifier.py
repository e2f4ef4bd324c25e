"""Train the digit classifier that the quality metrics use, and bundle it with a manifest.

    python -m course_lib.tools.train_classifier                 # offline: the 4,000 bundled training digits
    python -m course_lib.tools.train_classifier --source download   # full MNIST (60,000), when it can be downloaded

Writes `course_lib/assets/digit_classifier.safetensors` and `digit_classifier.json` (sha256, size, the command, the
data used, the accuracy on the bundled test split, the time it took).
"""

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoints import save_weights
from ..classifiers import DigitClassifier
from ..config import pick_device, seed_everything
from ..data import load_dataset, make_loader, random_affine
from ..metrics import MANIFEST, WEIGHTS
from ..training import CosineSchedule, fit



@torch.no_grad()
def test_accuracy(model: DigitClassifier, device) -> float:
    x, y = load_dataset("mnist", "test", source="bundled").tensors
    model.eval()
    predictions = torch.cat([model(batch.to(device)).argmax(1).cpu() for batch in x.split(500)])
    return (predictions == y).float().mean().item()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="bundled", choices=["bundled", "download", "auto"])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)

    generator = seed_everything(args.seed)
    device = pick_device()
    train = load_dataset("mnist", "train", source=args.source)
    model = DigitClassifier().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    def step(model, batch):
        x, y = batch
        return F.cross_entropy(model(random_affine(x, generator)), y)

    start = time.perf_counter()
    history = fit(model, make_loader(train, args.batch_size, seed=args.seed), step, optimizer, args.epochs,
                  device=device, callbacks=[CosineSchedule(optimizer, args.epochs)])
    seconds = time.perf_counter() - start
    accuracy = test_accuracy(model, device)

    save_weights(model, args.out)
    manifest = {
        "file": args.out.name,
        "sha256": hashlib.sha256(args.out.read_bytes()).hexdigest(),
        "bytes": args.out.stat().st_size,
        "command": " ".join(["python -m course_lib.tools.train_classifier", *(argv if argv is not None else sys.argv[1:])]),
        "data": f"MNIST train, source={args.source}, {len(train)} images, random rotation/shift/zoom augmentation",
        "bundled_test_accuracy": round(accuracy, 4),
        "final_train_loss": round(history.epochs["loss"][-1], 4),
        "epochs": args.epochs,
        "train_seconds": round(seconds, 1),
        "device": str(device),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
    }
    args.out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))
    return manifest


if __name__ == "__main__":
    main()
