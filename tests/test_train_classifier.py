"""The recipe behind the metrics' feature networks (and the benchmark's upper-half classifier)."""

import hashlib
import json

import pytest
import torch

from course_lib.classifiers import DigitClassifier
from course_lib.config import one_thread
from course_lib.data import load_dataset
from course_lib.metrics import MANIFEST
from course_lib.pix2pix import hide_lower_half
from course_lib.tools import train_classifier
from course_lib.tools.train_classifier import test_accuracy as accuracy_on_test_split
from course_lib.tools.train_classifier import train_digit_classifier

SMALL = load_dataset("mnist", "train", n=256, source="bundled")


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.is_floating_point()])


def test_the_same_seed_gives_the_same_classifier_and_another_seed_another():
    with one_thread():
        a, history = train_digit_classifier(SMALL, "resnet", epochs=1, seed=1, progress=False)
        b, _ = train_digit_classifier(SMALL, "resnet", epochs=1, seed=1, progress=False)
        c, _ = train_digit_classifier(SMALL, "resnet", epochs=1, seed=2, progress=False)
    assert torch.equal(weights(a), weights(b)) and not torch.equal(weights(a), weights(c))
    assert history.stopped is None and len(history.epochs["loss"]) == 1


def test_the_transform_is_what_the_classifier_sees_in_training_and_test(monkeypatch):
    seen = []

    def watched():  # a DigitClassifier that keeps every batch it is given
        model = DigitClassifier()
        model.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        return model

    monkeypatch.setitem(train_classifier.ARCHITECTURES, "cnn", watched)
    with one_thread():
        model, _ = train_digit_classifier(SMALL, "cnn", epochs=1, seed=0, transform=hide_lower_half, progress=False)
        accuracy = accuracy_on_test_split(model, "cpu", transform=hide_lower_half)
    # the lower half is hidden exactly as pix2pix's input is, in training (4 batches) as on the 1,000 test digits
    # (2 batches); the upper half still holds ink
    assert [len(x) for x in seen] == [64] * 4 + [500] * 2
    assert all(torch.all(x[:, :, 14:] == 0.5) and x[:, :, :14].amax() > 0.9 for x in seen)
    assert 0 <= accuracy <= 1


def test_the_loss_goes_down():
    with one_thread():
        _, history = train_digit_classifier(SMALL, "resnet", epochs=3, seed=0, progress=False)
    losses = history.epochs["loss"]  # 3 epochs of 4 steps: from chance (log 10 = 2.3) on down
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.8 * losses[0], losses


def test_an_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ValueError, match="cnn, resnet"):
        train_digit_classifier(SMALL, "transformer", epochs=1)


def test_main_writes_weights_and_a_manifest_like_the_first_networks(tmp_path):
    out = tmp_path / "second.safetensors"
    with one_thread():
        manifest = train_classifier.main(["--arch", "resnet", "--seed", "1", "--epochs", "1", "--out", str(out)])
    assert json.loads(out.with_suffix(".json").read_text()) == manifest
    assert set(manifest) == set(json.loads(MANIFEST.read_text()))  # the same fields as the first network's
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() and manifest["bytes"] < 2_000_000
    assert manifest["command"].endswith("--arch resnet --seed 1 --epochs 1 --out " + str(out))
    assert manifest["epochs"] == 1 and 0 <= manifest["bundled_test_accuracy"] <= 1
