"""How good are generated digits? Scores computed offline with the bundled digit classifier.

- **Frechet distance** (FD): fit a Gaussian to the classifier's penultimate features of the generated images and
  another to those of real images; the distance between the two Gaussians,
  `||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 (S_g S_r)^(1/2))`. It is the FID recipe with a digit classifier in place of
  Inception (computed by torchmetrics' `FrechetInceptionDistance(feature=...)`). Lower is better; 0 means the two
  feature distributions match.
- **Class accuracy** of conditional samples: how often the classifier reads the digit that was asked for.
- **Precision / recall** in feature space (Kynkaanniemi et al. 2019, k = 3): the share of generated images that fall
  inside the real data's manifold (quality), and the share of real images inside the generated one (coverage).

A bare FD number means little, so `quality_report` prints it between two reference points: real vs real (held-out
digits against training digits: the best a model can hope for) and uniform noise vs real (the worst).

No claim rests on one metric alone: every FD can also be computed in the features of a **second network**
(`network="second"`: `ResidualDigitClassifier`, another architecture trained with another seed by the same script).
A model that is better on the first network's FD should be better on the second's too; `quality_report` prints both.
The two networks' numbers are on different scales: compare models within one network, never across. (In the second,
uniform noise is a reference point but not the worst score: flat grey images land a little above it.)

    >>> x, y = load_dataset("mnist", "test", source="bundled").tensors
    >>> class_accuracy(x[:500], y[:500]) > 0.95
    True
"""

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from .checkpoints import load_weights
from .classifiers import DigitClassifier, ResidualDigitClassifier
from .data import check_images, load_dataset

# The bundled feature networks behind the metrics, each with a manifest beside it (made by
# `python -m course_lib.tools.train_classifier`, the second with `--arch resnet --seed 1`)
WEIGHTS = Path(__file__).parent / "assets" / "digit_classifier.safetensors"
MANIFEST = WEIGHTS.with_suffix(".json")
WEIGHTS_B = Path(__file__).parent / "assets" / "digit_classifier_b.safetensors"
MANIFEST_B = WEIGHTS_B.with_suffix(".json")
NETWORKS = ("first", "second")


class _Features(torch.nn.Module):
    """The classifier's penultimate layer as a feature extractor, in the form torchmetrics expects."""

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.num_features

    def forward(self, x):
        return self.classifier.features(x)


def _sha256_problem(weights: Path, manifest: Path) -> str | None:
    """Why `weights` cannot be trusted (missing, or not the file its manifest describes), or None when it verifies."""
    if not weights.exists():
        return f"{weights.name}: missing"
    expected = json.loads(manifest.read_text())
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != expected["sha256"]:
        return f"{weights.name}: sha256 {digest}, {manifest.name} expects {expected['sha256']}"
    return None


def _load_verified(architecture: type, weights: Path, manifest: Path, command: str) -> torch.nn.Module:
    """An `architecture` with the weights in `weights` (CPU, eval mode), after checking their sha256; `command`
    is what makes the file again."""
    if not weights.exists():
        raise FileNotFoundError(f"{weights} is missing. Recreate it with: {command}")
    if _sha256_problem(weights, manifest) is not None:
        raise ValueError(
            f"{weights.name} does not match the sha256 in {manifest.name}: the file was changed or damaged. "
            f"Restore it from the repository, or retrain with: {command}"
        )
    return load_weights(architecture(), weights).eval()


@lru_cache(maxsize=1)
def digit_classifier() -> DigitClassifier:
    """The bundled classifier (CPU, eval mode), checked against the sha256 in its manifest: the first feature
    network, and the one that reads the class of a digit."""
    return _load_verified(DigitClassifier, WEIGHTS, MANIFEST, "python -m course_lib.tools.train_classifier")


@lru_cache(maxsize=1)
def second_digit_classifier() -> ResidualDigitClassifier:
    """The second feature network (CPU, eval mode), checked against the sha256 in its manifest: another
    architecture, trained with another seed, that cross-checks every Frechet distance of the first."""
    return _load_verified(ResidualDigitClassifier, WEIGHTS_B, MANIFEST_B,
                          "python -m course_lib.tools.train_classifier --arch resnet --seed 1")


def feature_network(network: str = "first") -> torch.nn.Module:
    """The bundled classifier whose features a metric uses: "first" (`digit_classifier()`, what every score of the
    course reports) or "second" (`second_digit_classifier()`, the cross-check)."""
    if network == "first":
        return digit_classifier()
    if network == "second":
        return second_digit_classifier()
    raise ValueError(f"Unknown feature network {network!r}: use network=\"first\" (the course's scores) or "
                     f"network=\"second\" (the cross-check).")


def verify_feature_networks() -> list[str]:
    """Problems found when checking both feature networks against the sha256 in their manifests (empty: all well).

    >>> verify_feature_networks()
    []
    """
    problems = [_sha256_problem(WEIGHTS, MANIFEST), _sha256_problem(WEIGHTS_B, MANIFEST_B)]
    return [problem for problem in problems if problem is not None]


@torch.no_grad()
def features(images: torch.Tensor, network: str = "first") -> torch.Tensor:
    """Penultimate-layer features of images (N, 1, 28, 28) in [0, 1]: (N, 128) for the first network, (N, 96) for
    the second."""
    check_images(images)
    net = feature_network(network)
    return torch.cat([net.features(b.cpu()) for b in images.split(1000)])


def frechet_distance(generated: torch.Tensor, real: torch.Tensor, network: str = "first") -> float:
    """Frechet distance between two sets of images (N, 1, 28, 28) in [0, 1] in a classifier's feature space (the
    first network's unless `network="second"`).

    >>> x = load_dataset("mnist", "test", source="bundled").tensors[0]
    >>> round(frechet_distance(x[:500], x[:500]), 3), round(frechet_distance(x[:500], x[:500], network="second"), 3)
    (0.0, 0.0)
    """
    # torchmetrics accumulates the feature sums and covariances in float64: the matrix square root needs it
    check_images(generated, "generated images")
    check_images(real, "real images")
    if min(len(generated), len(real)) < 2:
        raise ValueError("The Frechet distance needs at least 2 images in each set (use hundreds for a stable number).")
    fid = FrechetInceptionDistance(feature=_Features(feature_network(network)), reset_real_features=True)
    with torch.no_grad():
        for batch in real.clamp(0, 1).split(1000):
            fid.update(batch.cpu(), real=True)
        for batch in generated.clamp(0, 1).split(1000):
            fid.update(batch.cpu(), real=False)
        return max(float(fid.compute()), 0.0)  # tiny negative values are round-off


@torch.no_grad()
def class_accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of `images` that the classifier reads as the digit in `labels` (the class that was asked for)."""
    check_images(images)
    labels = torch.as_tensor(labels)
    if labels.is_floating_point():
        raise TypeError(f"Labels are whole numbers 0-9, got dtype {labels.dtype}: use labels.long() (a float label "
                        f"would be cut to the digit below it).")
    labels = labels.long().cpu()
    if labels.shape != (len(images),):
        raise ValueError(f"Expected one label per image: {len(images)} labels shaped ({len(images)},), got {tuple(labels.shape)}.")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"Labels must be digits 0-9, got values from {int(labels.min())} to {int(labels.max())}.")
    predicted = torch.cat([digit_classifier()(b.cpu()).argmax(1) for b in images.split(1000)])
    return (predicted == labels).float().mean().item()


def precision_recall(generated: torch.Tensor, real: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-nearest-neighbour balls in feature space."""
    if min(len(generated), len(real)) < k + 1:
        raise ValueError(f"Precision and recall with k={k} need at least {k + 1} images in each set, got "
                         f"{len(generated)} and {len(real)} (use hundreds for a stable number).")
    real_f = features(real).double()
    return _precision_recall(features(generated).double(), real_f, _radii(real_f, k), k)


def _radii(support: torch.Tensor, k: int) -> torch.Tensor:
    """The radius of each support point: the distance to its k-th nearest neighbour within the support (itself
    excluded)."""
    return torch.cdist(support, support).kthvalue(k + 1, dim=1).values


def _precision_recall(fake_f: torch.Tensor, real_f: torch.Tensor, real_radii: torch.Tensor, k: int):
    def inside(points, support, radii):
        return (torch.cdist(points, support) <= radii).any(dim=1).float().mean().item()

    return inside(fake_f, real_f, real_radii), inside(real_f, fake_f, _radii(fake_f, k))


@lru_cache(maxsize=1)
def _training_support(n: int = 2000, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The features of the first `n` bundled training digits and their k-NN radii, computed once (quality_report)."""
    real_f = features(_training_digits()[:n]).double()
    return real_f, _radii(real_f, k)


@lru_cache(maxsize=1)
def _training_digits() -> torch.Tensor:
    return load_dataset("mnist", "train", source="bundled").tensors[0]


@lru_cache(maxsize=len(NETWORKS))
def _training_digits_fid(network: str) -> FrechetInceptionDistance:
    """A Frechet distance whose real side (the 4,000 bundled training digits) is computed once and kept."""
    fid = FrechetInceptionDistance(feature=_Features(feature_network(network)), reset_real_features=False)
    with torch.no_grad():
        for batch in _training_digits().split(1000):
            fid.update(batch, real=True)
    return fid


def fd_to_training_digits(generated: torch.Tensor, network: str = "first") -> float:
    """Frechet distance of `generated` to the bundled training digits (what every score in the course uses), in the
    first network's features, or with `network="second"` in the second's (to cross-check a claim)."""
    check_images(generated, "generated images")
    fid = _training_digits_fid(network)
    fid.reset()  # forgets the generated side only (reset_real_features=False)
    with torch.no_grad():
        for batch in generated.clamp(0, 1).split(1000):
            fid.update(batch.cpu(), real=False)
        return max(float(fid.compute()), 0.0)


@lru_cache(maxsize=16)
def reference_points(n: int, network: str = "first") -> dict[str, float]:
    """FD of `n` held-out real digits (the floor) and of `n` uniform-noise images (the ceiling) against the
    bundled training digits, in the features of `network`, so a score can be read between them. (n is capped at
    the 1,000 held-out digits; computed once per n and network.)"""
    return dict(_reference_points(min(n, 1000), network))


@lru_cache(maxsize=32)
def _reference_points(n: int, network: str) -> dict[str, float]:
    held_out = load_dataset("mnist", "test", source="bundled", n=n).tensors[0]
    noise = torch.rand(len(held_out), 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return {"fd_real": fd_to_training_digits(held_out, network), "fd_noise": fd_to_training_digits(noise, network)}


def quality_report(generated: torch.Tensor, labels: torch.Tensor | None = None, name: str = "model") -> dict:
    """All scores of `generated` against the bundled training digits, printed beside the reference points.

    `fd`, `fd_real`, `fd_noise` are in the first network's features; `fd2`, `fd2_real`, `fd2_noise` the same in the
    second network's (printed after "second network" as: FD  (real digits, uniform noise)). `labels` (the class asked
    for, one per image) adds the class accuracy for conditional models.
    """
    report = {"fd": fd_to_training_digits(generated), **reference_points(len(generated))}
    report["fd2"] = fd_to_training_digits(generated, network="second")
    report.update({f"fd2_{key[3:]}": value for key, value in reference_points(len(generated), "second").items()})
    fake = generated[:2000]
    if len(fake) < 4:  # the same clear error as precision_recall's
        precision_recall(fake, _training_digits()[:2000])
    report["precision"], report["recall"] = _precision_recall(features(fake).double(), *_training_support(), k=3)
    if labels is not None:
        report["class_accuracy"] = class_accuracy(generated, labels)
    line = (f"{name}: Frechet distance {report['fd']:.2f}  (real digits {report['fd_real']:.2f}, "
            f"uniform noise {report['fd_noise']:.2f})  second network {report['fd2']:.2f}  ({report['fd2_real']:.2f}, "
            f"{report['fd2_noise']:.2f})  precision {report['precision']:.2f}  recall {report['recall']:.2f}")
    if labels is not None:
        line += f"  class accuracy {report['class_accuracy']:.1%}"
    print(line)
    return report
