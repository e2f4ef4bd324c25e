"""The Colab badges and install cells agree with the one repository URL, and the install cell leaves Colab's own
torch, torchvision, numpy and ipywidgets alone."""

import importlib.util
import re
import subprocess
import sys
import types

from course_lib.tools import colab


def test_badges_and_install_cells_are_generated_from_the_repository_url():
    assert colab.outdated() == [], "run: python -m course_lib.tools.colab"


def test_each_notebook_has_its_own_badge_and_the_install_cell():
    repo = colab.repository_url()
    for path in colab.notebook_sources():
        text = path.read_text()
        assert colab.colab_url(repo, path.stem) in text
        assert text.index("colab-badge.svg") < text.index("# # Lesson"), "the badge is at the top"
        assert f"git+{repo}" in text and "# NBVAL_SKIP" in text


def run_install_cell(monkeypatch, have: set[str]) -> list[list[str]]:
    """Run the generated cell as if on Colab, where only the modules in `have` are installed; return pip's calls."""
    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: real_find_spec(name, *a) if name in have else None)
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(cmd))
    cell = colab.install_cell("https://github.com/me/course").split("\n", 1)[1]
    monkeypatch.setattr("course_lib.doctor", lambda: None, raising=False)
    exec(compile(cell, "install_cell", "exec"), {})
    return calls


def test_install_cell_installs_only_what_colab_lacks_and_the_course_without_deps(monkeypatch):
    calls = run_install_cell(monkeypatch, have={"safetensors", "tqdm", "course_lib"})
    assert calls == []  # the course is there already: nothing to do
    calls = run_install_cell(monkeypatch, have={"safetensors", "tqdm"})
    assert calls[0][-1] == "torchmetrics" and calls[0][3:5] == ["install", "-q"]
    assert calls[1][3:] == ["install", "-q", "--no-deps", "git+https://github.com/me/course"]
    for call in calls:
        assert not {"torch", "torchvision", "numpy", "ipywidgets"} & set(call)


def test_a_non_github_url_is_a_clear_error():
    try:
        colab.colab_url("https://gitlab.com/me/course", "01_autoencoders")
    except ValueError as err:
        assert "github.com" in str(err)
    else:
        raise AssertionError("expected a ValueError")


def test_readme_lists_a_badge_per_lesson():
    block = re.search(r"<!-- colab:start -->(.*?)<!-- colab:end -->", (colab.ROOT / "README.md").read_text(), re.S)
    assert block and block.group(1).count("colab-badge.svg") == len(colab.notebook_sources()) == 10
