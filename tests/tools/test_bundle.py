"""The bundle tool: its catalogue is exactly the manifest and builds the recipes' architectures, every bundled model
loads and measures as recorded, and a build writes in the notebook and measures afterwards, in the tool."""

import math
import shutil

import pytest
import torch

from course_lib import pretrained, recipes
from course_lib.autoencoders import ae_loss
from course_lib.data import load_dataset, make_loader
from course_lib.tools import bundle
from course_lib.training import fit

MANIFEST = pretrained.read_manifest()["models"]


def test_every_model_a_lesson_trains_is_bundled():
    assert set(MANIFEST) == set(bundle.catalogue())


def test_the_catalogue_builds_each_recipes_architecture():
    every = recipes.every_recipe()
    named = set()
    for name, entry in bundle.catalogue().items():
        recipe = every[name.split("_seed")[0]]  # the toy GANs are bundled once per seed
        named.add(recipe.name)
        built = next(part for part in entry.build().values() if isinstance(part, torch.nn.Module))
        expected = recipe.build(recipe.settings(pretrained.BUILD_PROFILE))
        assert type(built) is type(expected), name
        assert {k: v.shape for k, v in built.state_dict().items()} == \
               {k: v.shape for k, v in expected.state_dict().items()}, name
    bundled_lessons = set(bundle.NOTEBOOKS)  # lesson 7 is not bundled yet
    assert named == {name for name, r in every.items() if r.lesson in bundled_lessons}, "every recipe's model is bundled"
    toys = [name for name in bundle.catalogue() if "_seed" in name]
    assert len(toys) == 2 * len(recipes.TOY_SEEDS)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_loaded_model_gives_the_recorded_metrics(name):
    recorded = MANIFEST[name]["metrics"]
    measured = bundle.measure(name)
    assert set(measured) == set(recorded)
    for key, value in recorded.items():
        assert math.isclose(measured[key], value, rel_tol=0.02, abs_tol=0.02), (key, measured[key], value)


def test_eight_bit_storage_costs_little():
    """The metrics on the loaded (8-bit) model are within a few percent of the float32 model's. A share counted over
    n samples (a key ending in n, e.g. `prompt_following_ink_100`) moves in steps of 1 / n: one sample may differ."""
    for name, entry in MANIFEST.items():
        for key, value in entry["metrics"].items():
            before = entry["metrics_before_8bit"][key]
            count = key.rsplit("_", 1)[-1]
            step = 1 / int(count) if count.isdigit() else 0.0
            assert math.isclose(value, before, rel_tol=0.01, abs_tol=max(0.005, step + 1e-9)), (name, key, before, value)


def test_the_command_line_names_the_lessons_when_one_is_unknown(capsys):
    with pytest.raises(SystemExit) as stop:
        bundle.main(["build", "autoencoders", "gans"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "unknown lesson(s) gans" in err and ", ".join(bundle.NOTEBOOKS) in err


def test_every_lesson_has_a_notebook_and_the_build_runs_it_in_the_build_profile():
    for lesson, notebook in bundle.NOTEBOOKS.items():
        assert (bundle.ROOT / "notebooks" / f"{notebook}.ipynb").exists(), lesson
        assert lesson in recipes.LESSONS and bundle.lesson_models(lesson), lesson
        env = bundle.build_env(lesson)
        assert env["COURSE_PROFILE"] == pretrained.BUILD_PROFILE and env[pretrained.BUILD_ENV] == "1"


@pytest.fixture
def bundle_copy(tmp_path, monkeypatch):
    """A copy of the bundle that a test may rebuild; a build's float32 copies go to tmp_path too."""
    shutil.copytree(pretrained.BUNDLE_DIR, tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "BUNDLE_DIR", tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "MANIFEST", tmp_path / "pretrained" / "manifest.json")
    monkeypatch.setenv(pretrained.FLOAT32_ENV, str(tmp_path / "float32"))
    return tmp_path / "pretrained"


def test_a_build_writes_in_the_lesson_and_measures_afterwards(bundle_copy, monkeypatch):
    name, recipe = "autoencoders/conv16", recipes.AE16
    for key, value in bundle.build_env("autoencoders").items():  # as the notebook's kernel sees it
        monkeypatch.setenv(key, value)
    torch.manual_seed(0)
    model = bundle.built(recipe)
    loader = make_loader(load_dataset("mnist", "train", n=128, source="bundled"), 64)

    def train():
        return fit(model, loader, lambda m, b: ae_loss(b[0], m(b[0])),
                   torch.optim.Adam(model.parameters(), lr=recipe.lr), 1, progress=False)

    def no_measuring(*args, **kwargs):
        raise AssertionError("train_or_load measured (or loaded back) what it had just written")

    with monkeypatch.context() as m:
        m.setattr(bundle, "measure", no_measuring)
        m.setattr(bundle, "load", no_measuring)
        for entry in bundle.catalogue().values():
            m.setattr(entry, "measure", no_measuring)
        pretrained.train_or_load(name, train, model=model)

    entry = pretrained.read_manifest()["models"][name]
    path = bundle_copy / entry["file"]
    assert entry["sha256"] == pretrained.sha256(path) and entry["bytes"] == path.stat().st_size
    assert entry["command"] == "python -m course_lib.tools.bundle build autoencoders"
    assert entry["notebook"] == "notebooks/01_autoencoders.ipynb" and entry["profile"] == pretrained.BUILD_PROFILE
    assert entry["epochs"] == 1 and "metrics" not in entry and "metrics_before_8bit" not in entry
    assert pretrained.float32_copy(name).exists()

    bundle.record_metrics([name])
    entry = pretrained.read_manifest()["models"][name]
    as_trained = bundle.catalogue()[name].measure({"model": model})
    assert entry["metrics_before_8bit"] == as_trained, "the float32 copy is the model as it was trained"
    for key, value in entry["metrics"].items():
        assert math.isclose(value, as_trained[key], rel_tol=0.01, abs_tol=0.005), (key, value, as_trained[key])
    assert pretrained.verify() == []


def test_measuring_refuses_a_model_the_build_did_not_bundle(bundle_copy):
    with pytest.raises(RuntimeError, match="did not bundle 'autoencoders/dae'"):
        bundle.record_metrics(["autoencoders/dae"])  # in the manifest, but this build left no float32 copy
