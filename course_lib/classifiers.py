"""Small classifiers used to *measure* what a representation knows (e.g. an autoencoder's codes).

    >>> x = torch.randn(200, 5); y = (x[:, 0] > 0).long()
    >>> clf = fit_linear_classifier(x, y)
    >>> accuracy(clf, x, y) > 0.9
    True
"""

import torch
import torch.nn.functional as F
from torch import nn

from .nets import device_of


def fit_linear_classifier(features: torch.Tensor, labels: torch.Tensor, steps: int = 300, weight_decay: float = 1e-3,
                          seed: int = 0) -> nn.Module:
    """Multinomial logistic regression on standardized features, fitted with full-batch L-BFGS.

    The features are standardized with the training mean and spread (kept inside the returned model), so codes and
    raw pixels are compared on equal terms.
    """
    features, labels = features.detach().float().flatten(1), labels.long()
    torch.manual_seed(seed)
    mean, std = features.mean(0), features.std(0) + 1e-6
    model = nn.Sequential(Standardize(mean, std), nn.Linear(features.shape[1], int(labels.max()) + 1))
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        weights = model[1].weight
        loss = F.cross_entropy(model(features), labels) + weight_decay * weights.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of `labels` that `model` predicts correctly from `features`."""
    return (model(features.float().flatten(1)).argmax(1) == labels).float().mean().item()


class Standardize(nn.Module):
    """(x - mean) / std with fixed statistics."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):
        return (x - self.mean) / self.std


# ---------------------------------------------------------------- the digit classifier behind the quality metrics

class DigitClassifier(nn.Module):
    """A small CNN for 28 x 28 digits. `features(x)` (B, 128) is the penultimate layer the Frechet distance compares;
    `forward(x)` gives the 10 class logits.

    >>> DigitClassifier()(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    num_features = 128  # read by torchmetrics' FrechetInceptionDistance

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 64, 7, 7)
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(64 * 7 * 7, self.num_features), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.num_features, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.to(device_of(self)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ResidualBlock(nn.Module):
    """out = relu(shortcut(x) + F(x)), F = two 3 x 3 convolutions (He et al. 2016). A block with stride 2 halves the
    height and width; its shortcut is then a strided 1 x 1 convolution, so the two paths have the same shape."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.shortcut(x) + self.residual(x))


class ResidualDigitClassifier(nn.Module):
    """The second feature network: a small residual net for 28 x 28 digits, there to cross-check what the first
    (`DigitClassifier`) measures. `features(x)` (B, 96) is the global average of the last block's maps; `forward(x)`
    gives the 10 class logits.

    Its features differ from `DigitClassifier`'s in kind, not only in their numbers. `DigitClassifier` flattens a
    7 x 7 map into a fully connected layer, so each of its features knows *where* on the page a stroke is; here
    the last maps are averaged over all positions, so a feature says *how much* of a pattern the image holds,
    wherever it is. It also downsamples with strided convolutions instead of max pooling, adds shortcuts, has no
    dropout and other widths (16, 32, 64, 96); the bundled one was trained with another seed by the same recipe
    (`python -m course_lib.tools.train_classifier --arch resnet --seed 1`: 98.5% on the bundled test split, the first
    99.0%). A sample that fools one network by accident is unlikely to fool both.

    >>> ResidualDigitClassifier()(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> ResidualDigitClassifier().features(torch.rand(2, 1, 28, 28)).shape
    torch.Size([2, 96])
    """

    num_features = 96  # read by torchmetrics' FrechetInceptionDistance

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),  # (B, 16, 28, 28)
            ResidualBlock(16, 32, stride=2),  # (B, 32, 14, 14)
            ResidualBlock(32, 64, stride=2),  # (B, 64, 7, 7)
            ResidualBlock(64, self.num_features),  # (B, 96, 7, 7)
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 96): the average over all 7 x 7 positions
        )
        self.head = nn.Linear(self.num_features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.to(device_of(self)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# the architectures `python -m course_lib.tools.train_classifier --arch NAME` can train
ARCHITECTURES = {"cnn": DigitClassifier, "resnet": ResidualDigitClassifier}
