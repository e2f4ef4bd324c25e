import hashlib
import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from course_lib import metrics
from course_lib.data import load_dataset
from course_lib.metrics import MANIFEST, MANIFEST_B, WEIGHTS, WEIGHTS_B

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
    assert set(report) == {"fd", "fd_real", "fd_noise", "fd2", "fd2_real", "fd2_noise", "precision", "recall",
                           "class_accuracy"}
    # the second network's distance, printed too, tells the same story
    assert f"second network {report['fd2']:.2f}" in out
    assert report["fd2_real"] < report["fd2"] < report["fd2_noise"]


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


# ---------------------------------------------------------------- the second feature network (the cross-check)

def test_second_network_matches_its_manifest_and_reaches_97_percent():
    manifest = json.loads(MANIFEST_B.read_text())
    assert manifest["file"] == WEIGHTS_B.name and manifest["bytes"] == WEIGHTS_B.stat().st_size < 2_000_000
    assert hashlib.sha256(WEIGHTS_B.read_bytes()).hexdigest() == manifest["sha256"]
    assert manifest["command"].startswith("python -m course_lib.tools.train_classifier --arch resnet")
    assert manifest["command"] != json.loads(MANIFEST.read_text())["command"]  # another seed than the first
    assert manifest["bundled_test_accuracy"] >= 0.97
    network = metrics.second_digit_classifier()
    assert type(network).__name__ != type(metrics.digit_classifier()).__name__
    with torch.no_grad():
        accuracy = (network(TEST_X).argmax(1) == TEST_Y).float().mean().item()
    assert accuracy == pytest.approx(manifest["bundled_test_accuracy"], abs=1e-3)  # the manifest's number is true


def test_second_network_puts_held_out_digits_far_below_noise():
    real = metrics.fd_to_training_digits(TEST_X[:500], network="second")
    noise = metrics.fd_to_training_digits(torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(1)),
                                          network="second")
    assert 0 <= real < noise / 100
    ref = metrics.reference_points(300, network="second")
    assert 0 <= ref["fd_real"] < ref["fd_noise"] / 100
    assert metrics.features(TEST_X[:7], network="second").shape == (7, 96)
    # the cached training-digit distance is the plain one
    assert real == pytest.approx(metrics.frechet_distance(TEST_X[:500], TRAIN_X, network="second"), rel=1e-4)


def test_both_networks_rank_real_blurred_and_noise_alike():
    x = TEST_X[:500]
    cases = [x, gaussian_blur(x, 7, 1.0), gaussian_blur(x, 7, 2.0), torch.rand(500, 1, 28, 28)]
    first = [metrics.fd_to_training_digits(images) for images in cases]
    second = [metrics.fd_to_training_digits(images, network="second") for images in cases]
    assert first == sorted(first) and second == sorted(second), (first, second)
    # the two networks' numbers are on different scales, but each separates the cases by a wide margin
    for fds in (first, second):
        assert fds[1] > 3 * fds[0] and fds[3] > 3 * fds[2]


def test_an_unknown_network_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match='network="first".*network="second"'):
        metrics.fd_to_training_digits(TEST_X[:10], network="third")


def test_a_tampered_second_network_file_is_refused_and_the_doctor_says_so(tmp_path, monkeypatch):
    from course_lib.tools import doctor

    weights, manifest = tmp_path / WEIGHTS_B.name, tmp_path / MANIFEST_B.name
    shutil.copy(MANIFEST_B, manifest)
    weights.write_bytes(WEIGHTS_B.read_bytes()[:-8] + b"\x00" * 8)
    monkeypatch.setattr(metrics, "WEIGHTS_B", weights)
    monkeypatch.setattr(metrics, "MANIFEST_B", manifest)
    metrics.second_digit_classifier.cache_clear()
    try:
        with pytest.raises(ValueError, match="sha256.*--arch resnet"):
            metrics.second_digit_classifier()
        assert metrics.verify_feature_networks() == [f"{WEIGHTS_B.name}: sha256 "
                                                     f"{hashlib.sha256(weights.read_bytes()).hexdigest()}, "
                                                     f"{MANIFEST_B.name} expects "
                                                     f"{json.loads(manifest.read_text())['sha256']}"]
        status, detail = doctor.check_weights()
        assert status == doctor.FAIL and WEIGHTS_B.name in detail
    finally:
        metrics.second_digit_classifier.cache_clear()
