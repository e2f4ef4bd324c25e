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
