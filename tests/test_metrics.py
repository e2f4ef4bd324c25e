import hashlib
import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from course_lib import metrics
from course_lib.data import load_dataset
from course_lib.metrics import MANIFEST, WEIGHTS

TEST_X, TEST_Y = load_dataset("mnist", "test", source="bundled").tensors
TRAIN_X = load_dataset("mnist", "train", source="bundled").tensors[0]


def test_bundled_classifier_matches_its_manifest_and_reaches_97_percent():
    manifest = json.loads(MANIFEST.read_text())
    assert hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() == manifest["sha256"]
    assert manifest["command"].startswith("python -m course_lib.tools.train_classifier")
    assert manifest["bundled_test_accuracy"] >= 0.97
    # and the number in the manifest is true
    assert metrics.class_accuracy(TEST_X, TEST_Y) == pytest.approx(manifest["bundled_test_accuracy"], abs=1e-3)


def test_class_accuracy_is_high_for_true_labels_and_chance_for_shuffled_ones():
    assert metrics.class_accuracy(TEST_X, TEST_Y) >= 0.97
    shuffled = TEST_Y[torch.randperm(len(TEST_Y), generator=torch.Generator().manual_seed(0))]
    assert 0.05 < metrics.class_accuracy(TEST_X, shuffled) < 0.17


def test_class_accuracy_rejects_bad_labels():
    with pytest.raises(ValueError, match="0-9"):
        metrics.class_accuracy(TEST_X[:4], torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="one label per image"):
        metrics.class_accuracy(TEST_X[:4], torch.tensor([0, 1]))


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_blur_then_noise():
    x = TEST_X[:500]
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-3)
    blurred = [metrics.fd_to_training_digits(gaussian_blur(x, 7, sigma)) for sigma in (0.5, 1.0, 2.0)]
    noise = metrics.fd_to_training_digits(torch.rand(500, 1, 28, 28))
    real = metrics.fd_to_training_digits(x)
    assert real < blurred[0] < blurred[1] < blurred[2] < noise
    # the cached training-digit distance is the plain one
    assert real == pytest.approx(metrics.frechet_distance(x, TRAIN_X), rel=1e-4)


def test_frechet_distance_rejects_wrong_shapes_and_tiny_sets():
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        metrics.frechet_distance(TEST_X.view(-1, 784), TRAIN_X)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(TEST_X[:1], TRAIN_X)


def test_reference_points_bracket_real_and_noise():
    ref = metrics.reference_points(300)
    assert 0 <= ref["fd_real"] < ref["fd_noise"] / 10


def test_precision_recall_separate_real_digits_from_noise():
    precision, recall = metrics.precision_recall(TEST_X[:500], TRAIN_X[:1000])
    assert precision > 0.6 and recall > 0.6
    precision, _ = metrics.precision_recall(torch.rand(300, 1, 28, 28), TRAIN_X[:1000])
    assert precision < 0.05


def test_quality_report_prints_the_score_between_its_reference_points(capsys):
    report = metrics.quality_report(F.avg_pool2d(TEST_X[:300], 3, 1, 1), TEST_Y[:300], name="blurred")
    out = capsys.readouterr().out
    assert "blurred: Frechet distance" in out and "real digits" in out and "uniform noise" in out
    assert report["fd_real"] < report["fd"] < report["fd_noise"]
    assert set(report) == {"fd", "fd_real", "fd_noise", "precision", "recall", "class_accuracy"}


def test_a_tampered_classifier_file_is_refused(tmp_path, monkeypatch):
    weights, manifest = tmp_path / WEIGHTS.name, tmp_path / MANIFEST.name
    shutil.copy(MANIFEST, manifest)
    weights.write_bytes(WEIGHTS.read_bytes()[:-8] + b"\x00" * 8)
    monkeypatch.setattr(metrics, "WEIGHTS", weights)
    monkeypatch.setattr(metrics, "MANIFEST", manifest)
    metrics.digit_classifier.cache_clear()
    try:
        with pytest.raises(ValueError, match="sha256"):
            metrics.digit_classifier()
    finally:
        metrics.digit_classifier.cache_clear()
