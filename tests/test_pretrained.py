"""The bundled pretrained weights as a lesson uses them: the manifest matches the files, a changed file or another
architecture is refused, the 8-bit format round-trips, and train_or_load trains, saves (build mode) or loads.
Building and measuring the bundle is a tool: tests/tools/test_bundle.py."""

import shutil

import matplotlib.pyplot as plt
import pytest
import torch

from course_lib import pretrained
from course_lib.autoencoders import ConvAutoencoder, ae_loss
from course_lib.data import load_dataset, make_loader
from course_lib.lesson import start_lesson
from course_lib.plotting import presenter_mode, zoom
from course_lib.training import Snapshots, fit
from course_lib.widgets import LatentExplorer

MANIFEST = pretrained.read_manifest()["models"]
ASSETS = pretrained.BUNDLE_DIR.parent


def test_manifest_matches_the_files():
    assert MANIFEST, "no bundled weights: python -m course_lib.tools.bundle build"
    assert pretrained.verify() == []
    on_disk = {p.relative_to(pretrained.BUNDLE_DIR).as_posix() for p in pretrained.BUNDLE_DIR.rglob("*.safetensors")}
    assert on_disk == {entry["file"] for entry in MANIFEST.values()}, "every file is in the manifest, and only those"
    for name, entry in MANIFEST.items():
        assert {"sha256", "bytes", "command", "data", "notebook", "metrics", "train_seconds"} <= set(entry), name
        assert entry["command"].startswith("python -m course_lib.tools.bundle build"), name
        assert entry["profile"] == pretrained.BUILD_PROFILE, name
        assert (pretrained.BUNDLE_DIR.parent.parent.parent / entry["notebook"]).exists(), name


def test_everything_bundled_stays_under_40_mb():
    """The package's rule for `course_lib/assets` (weights, the classifier, the digits): under 40 MB in all."""
    total = sum(path.stat().st_size for path in ASSETS.rglob("*") if path.is_file())
    assert total < 40e6, f"course_lib/assets holds {total / 1e6:.1f} MB"


@pytest.fixture
def bundle_copy(tmp_path, monkeypatch):
    """A copy of the bundle that a test may damage or rebuild; a build's float32 copies go to tmp_path too."""
    shutil.copytree(pretrained.BUNDLE_DIR, tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "BUNDLE_DIR", tmp_path / "pretrained")
    monkeypatch.setattr(pretrained, "MANIFEST", tmp_path / "pretrained" / "manifest.json")
    monkeypatch.setenv(pretrained.FLOAT32_ENV, str(tmp_path / "float32"))
    return tmp_path / "pretrained"


def test_a_changed_weight_file_is_refused_naming_file_and_hash(bundle_copy):
    entry = MANIFEST["autoencoders/conv16"]
    path = bundle_copy / entry["file"]
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # one byte of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError) as err:
        pretrained.load_into("autoencoders/conv16", model=ConvAutoencoder(latent_dim=16))
    assert str(path) in str(err.value) and entry["sha256"] in str(err.value)
    assert any(entry["file"] in problem for problem in pretrained.verify())


def test_a_missing_name_says_how_to_train_instead(bundle_copy):
    pretrained.use_pretrained(True)
    try:
        with pytest.raises(KeyError, match="USE_PRETRAINED = False"):
            pretrained.train_or_load("autoencoders/nothing", lambda: None, model=ConvAutoencoder())
    finally:
        pretrained.use_pretrained(False)


class Recorder:
    """A callback that remembers what its on_train_end saw (as a LivePlot would draw it)."""

    def __init__(self):
        self.seen = []

    def on_train_end(self, state):
        self.seen.append(state)


def test_loading_draws_the_recorded_curves_and_the_loaded_model_on_the_cells_live_plot(capsys):
    from course_lib.liveplot import LivePlot

    pretrained.use_pretrained(True)
    try:
        model, shown = ConvAutoencoder(latent_dim=16), Recorder()
        history = pretrained.train_or_load("autoencoders/conv16", lambda: None, show=shown, model=model)
        live = LivePlot(title="conv AE")
        pretrained.train_or_load("autoencoders/conv16", lambda: None, show=live, model=ConvAutoencoder(latent_dim=16))
    finally:
        pretrained.use_pretrained(False)
    (state,) = shown.seen
    assert state.model is model and state.history.steps["loss"] == history.steps["loss"]
    assert state.step == len(history.steps["loss"]) > 0
    assert live.frames == 1, "the live plot draws the recorded run once"
    out = capsys.readouterr().out
    assert "Instructor mode is on (USE_PRETRAINED = True)" in out and "set USE_PRETRAINED = False" in out


def test_the_messages_name_the_switch_in_force(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PRETRAINED", "1")
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    try:
        start_lesson("autoencoders", pretrained=False)  # the cell says False, the environment says 1
        setup = capsys.readouterr().out
        pretrained.train_or_load("autoencoders/conv16", lambda: None, model=ConvAutoencoder(latent_dim=16))
        loading = capsys.readouterr().out
    finally:
        pretrained.use_pretrained(False)
    for out in (setup, loading):
        assert "(COURSE_PRETRAINED=1 in the environment" in out and "%env COURSE_PRETRAINED=0" in out
        assert "set USE_PRETRAINED = False" not in out, "that switch is not the one in force"
    monkeypatch.delenv("COURSE_PRETRAINED")
    start_lesson("autoencoders", pretrained=True)
    pretrained.use_pretrained(False)
    assert "Instructor mode is on (USE_PRETRAINED = True)" in capsys.readouterr().out


def test_start_lesson_says_when_n_train_asks_for_more_than_the_bundled_digits(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    start_lesson("autoencoders")
    out = capsys.readouterr().out
    assert "n_train=6000" in out and "the 4,000 training digits bundled" in out
    monkeypatch.setenv("COURSE_PROFILE", "smoke")  # 2,048 of 4,000: nothing to explain
    start_lesson("autoencoders")
    assert "bundled" not in capsys.readouterr().out


def test_a_model_of_another_architecture_is_refused():
    with pytest.raises(ValueError, match="different architecture"):
        pretrained.load_into("autoencoders/conv16", model=ConvAutoencoder(latent_dim=8))


def test_train_or_load_saves_when_building_and_loads_it_back(bundle_copy, monkeypatch):
    monkeypatch.setenv(pretrained.BUILD_ENV, "1")
    torch.manual_seed(0)
    model = ConvAutoencoder(latent_dim=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = make_loader(load_dataset("mnist", "train", n=128, source="bundled"), 64)
    snapshots = Snapshots(lambda m: m(torch.zeros(2, 1, 28, 28)), every=1)
    history = pretrained.train_or_load(
        "autoencoders/conv16", lambda: fit(model, loader, lambda m, b: ae_loss(b[0], m(b[0])), optimizer, 1,
                                           callbacks=[snapshots], progress=False), model=model, snapshots=snapshots)
    entry = pretrained.read_manifest()["models"]["autoencoders/conv16"]
    assert entry["epochs"] == 1 and entry["sha256"] == pretrained.sha256(bundle_copy / entry["file"])
    assert entry["profile"] == pretrained.BUILD_PROFILE
    assert "metrics" not in entry, "the old weights' metrics are dropped; the bundle tool measures the new ones"
    exact = ConvAutoencoder(latent_dim=16)
    pretrained.load_file_into(pretrained.float32_copy("autoencoders/conv16"), "autoencoders/conv16", model=exact)
    for a, b in zip(model.state_dict().values(), exact.state_dict().values()):
        assert torch.equal(a, b), "the build's float32 copy keeps the trained weights exactly"

    pretrained.use_pretrained(True)
    try:
        loaded, loaded_snapshots = ConvAutoencoder(latent_dim=16), Snapshots(None, every=1)
        called = []
        loaded_history = pretrained.train_or_load("autoencoders/conv16", lambda: called.append(1), model=loaded,
                                                  snapshots=loaded_snapshots)
    finally:
        pretrained.use_pretrained(False)
    assert not called, "with pretrained weights on, nothing trains"
    assert loaded_history.steps["loss"] == pytest.approx(history.steps["loss"])
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.allclose(a, b, atol=a.abs().max().item() / 127 + 1e-6)  # within one 8-bit step
    assert loaded_snapshots.at_step == snapshots.at_step
    assert torch.allclose(loaded_snapshots.frames[-1], snapshots.frames[-1], atol=0.01)


def test_train_or_load_only_trains_outside_build_mode(bundle_copy, monkeypatch):
    monkeypatch.delenv(pretrained.BUILD_ENV, raising=False)
    before = pretrained.MANIFEST.read_text()
    model = ConvAutoencoder(latent_dim=16)
    history = pretrained.train_or_load("autoencoders/conv16", lambda: fit(
        model, make_loader(load_dataset("mnist", "train", n=64, source="bundled"), 64),
        lambda m, b: ae_loss(b[0], m(b[0])), torch.optim.Adam(model.parameters()), 1, progress=False), model=model)
    assert history.epoch == 1
    assert pretrained.MANIFEST.read_text() == before and not pretrained.float32_dir().exists()


def test_quantize_round_trip_error_is_below_half_a_step():
    w = torch.randn(64, 3, 3, 3)
    q, scale = pretrained.quantize(w)
    assert q.dtype == torch.int8 and scale.shape == (64,)
    error = (pretrained.dequantize(q, scale) - w).abs().flatten(1).amax(1)
    assert torch.all(error <= scale / 2 + 1e-7)


def test_start_lesson_with_pretrained_uses_the_build_profile(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    try:
        profile, settings, _ = start_lesson("diffusion", pretrained=True)
        assert profile == pretrained.BUILD_PROFILE and pretrained.pretrained_enabled()
        assert settings.channels == (16, 32, 64)  # the sizes the bundled U-Net was trained with
        profile, _, _ = start_lesson("diffusion")
        assert profile == "smoke" and not pretrained.pretrained_enabled()
    finally:
        pretrained.use_pretrained(False)


def test_presenter_mode_makes_fonts_figures_and_widgets_larger():
    normal_font = plt.rcParams["font.size"]
    normal = LatentExplorer(lambda z: torch.zeros(len(z), 1, 28, 28), latent_dim=2)
    try:
        presenter_mode(True)
        assert plt.rcParams["font.size"] > normal_font and zoom() > 1
        big = LatentExplorer(lambda z: torch.zeros(len(z), 1, 28, 28), latent_dim=2)
        assert int(big.image.layout.width[:-2]) > int(normal.image.layout.width[:-2])
    finally:
        presenter_mode(False)
    assert plt.rcParams["font.size"] == normal_font and zoom() == 1


def test_float32_storage_keeps_the_weights_exactly(bundle_copy, monkeypatch):
    monkeypatch.setenv(pretrained.BUILD_ENV, "1")
    model = ConvAutoencoder(latent_dim=16)
    history = fit(model, make_loader(load_dataset("mnist", "train", n=64, source="bundled"), 64),
                  lambda m, b: ae_loss(b[0], m(b[0])), torch.optim.Adam(model.parameters()), 1, progress=False)
    pretrained.save_bundled("autoencoders/conv16", history, eight_bit=False, model=model)
    assert pretrained.read_manifest()["models"]["autoencoders/conv16"]["storage"] == "float32"
    loaded = ConvAutoencoder(latent_dim=16)
    pretrained.load_into("autoencoders/conv16", model=loaded)
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
