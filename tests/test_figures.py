"""The slides' figures come from `python -m course_lib.tools.figures`: every figure a deck shows has a function that
draws it, and the drawing works from the bundled data and weights alone."""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_lib.pretrained import BUNDLE_DIR, read_manifest
from course_lib.tools import figures

SLIDES = Path(__file__).resolve().parent.parent / "slides"


def referenced_figures() -> set[str]:
    names = set()
    for deck in SLIDES.glob("*/*.md"):
        names |= set(re.findall(r"\.\./figs/([\w.-]+)\.png", deck.read_text()))
    return names


def test_every_figure_a_deck_shows_is_made_by_the_command():
    assert referenced_figures() <= set(figures.FIGURES)


def test_every_figure_the_command_makes_is_shown_in_a_deck():
    assert set(figures.FIGURES) <= referenced_figures()


def test_figures_are_drawn_from_the_bundled_weights(tmp_path):
    paths = figures.make(["01_ae_latent_map", "03_optimal_discriminator", "05_cgan_grid"], tmp_path)
    for path in paths:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), dtype=float)
        assert grey.shape[1] > 400 and grey.shape[0] > 200, (path.name, grey.shape)
        assert grey.std() > 10, f"{path.name} is (nearly) blank"


def test_command_line_rejects_an_unknown_prefix(capsys):
    assert figures.main(["--only", "99_", "--out", "/tmp/unused"]) == 1
    assert "01_ae_latent_map" in capsys.readouterr().out


def test_lesson_7_figures_draw_from_its_bundled_weights(tmp_path):
    for path in figures.make(["07_fade_vs_jump", "07_truncation", "07_ebgan"], tmp_path):
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), dtype=float)
        assert grey.shape[1] > 400 and grey.std() > 10, (path.name, grey.shape)


def test_lesson_8_figures_draw_from_its_bundled_weights(tmp_path):
    for path in figures.make(["08_sr_rows", "08_sr3_samples", "08_cascade"], tmp_path):
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), dtype=float)
        assert grey.shape[1] > 400 and grey.std() > 10, (path.name, grey.shape)


def test_lesson_9_figures_draw_from_exact_scores_and_its_bundled_weights(tmp_path):
    for path in figures.make(["09_sde_vs_ode", "09_toy_reflow", "09_flow_digits"], tmp_path):
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), dtype=float)
        assert grey.shape[1] > 400 and grey.std() > 10, (path.name, grey.shape)


def test_lesson_10_figures_without_trained_models(tmp_path):
    for path in figures.make(["10_captioned_digits", "10_vq_idea"], tmp_path):
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), dtype=float)
        assert grey.shape[1] > 400 and grey.std() > 10, (path.name, grey.shape)


LESSON_10_WEIGHTS = ("text_to_image/vqvae", "text_to_image/prior", "text_to_image/clip", "text_to_image/unet")


def _not_bundled(names: tuple[str, ...]) -> list[str]:
    """The names among `names` with no bundled file (not in the manifest, or the file not on disk)."""
    models = read_manifest()["models"]
    return [name for name in names if name not in models or not (BUNDLE_DIR / models[name]["file"]).exists()]


@pytest.mark.skipif(bool(_not_bundled(LESSON_10_WEIGHTS)),
                    reason=f"lesson 10's bundled weights are not built yet (missing: "
                           f"{', '.join(_not_bundled(LESSON_10_WEIGHTS))}); python -m course_lib.tools.bundle build "
                           f"text_to_image makes them")
def test_lesson_10_figures_draw_from_its_bundled_weights(tmp_path):
    for path in figures.make(["10_vq_reconstructions", "10_code_grid", "10_cross_attention"], tmp_path):
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"), dtype=float)
        assert grey.shape[1] > 400 and grey.std() > 10, (path.name, grey.shape)


def test_the_figures_imports_inside_functions_name_modules_that_exist():
    """Each figure imports what it needs when it is drawn: a wrong relative import fails only then (05_pix2pix and
    03_toy_gan once looked for course_lib.tools.pix2pix / .toy2d), so check every one of them here."""
    here = Path(figures.__file__).parent
    source = Path(figures.__file__).read_text()
    found = re.findall(r"^\s+from (\.+)(\w+) import", source, flags=re.M)
    assert found
    for dots, module in found:
        folder = here if dots == "." else here.parent
        assert (folder / f"{module}.py").exists(), f"figures.py: `from {dots}{module} import ...` names no module"
