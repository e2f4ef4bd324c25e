"""The repository's promises that are not library code: packaging lists agree, notebooks and their .py twins agree,
CI runs the README's test command, the bundled data is the recorded data."""

import hashlib
import json
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name, where they differ


def _pyproject_requirements() -> dict[str, str]:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["course"]
    return {CONDA_NAMES.get(m[1], m[1]): m[2] for m in (re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", r) for r in reqs)}


def _environment_requirements() -> dict[str, str]:
    deps = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("dependencies:"):].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)\s*([<>=!~][^#]*)?", line)
        if m and m[1] not in ("python", "pip"):
            deps[m[1]] = (m[2] or "").strip()
    return deps


def test_environment_yml_lists_the_same_packages_as_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_no_upper_pins_that_would_replace_colabs_packages():
    for name, spec in _pyproject_requirements().items():
        assert "<" not in spec and "==" not in spec, f"{name}{spec}: use lower bounds only"


def test_every_notebook_has_a_py_percent_twin_in_sync():
    assert NOTEBOOKS, "no notebooks found"
    for ipynb in NOTEBOOKS:
        py = ipynb.with_suffix(".py")
        assert py.exists(), f"{py.name} is missing: run `jupytext --sync {ipynb.name}`"
        cells = [(c.cell_type, c.source) for c in jupytext.read(ipynb).cells]
        assert cells == [(c.cell_type, c.source) for c in jupytext.read(py).cells], (
            f"{ipynb.name} and {py.name} drifted apart: run `jupytext --sync notebooks/{ipynb.name}`"
        )
    for py in (ROOT / "notebooks").glob("*.py"):
        assert py.with_suffix(".ipynb").exists(), f"{py.name} has no .ipynb: run `jupytext --sync {py.name}`"


def test_notebooks_are_committed_without_outputs_except_pinned_cells():
    for ipynb in NOTEBOOKS:
        for cell in json.loads(ipynb.read_text())["cells"]:
            if cell["cell_type"] == "code" and "NBVAL_CHECK_OUTPUT" not in "".join(cell["source"]):
                assert not cell.get("outputs"), f"{ipynb.name}: strip outputs (cell starting {cell['source'][:1]})"


def test_colab_install_cells_are_skipped_by_nbval():
    for ipynb in NOTEBOOKS:
        for cell in json.loads(ipynb.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and "pip" in source and "install" in source:
                assert source.startswith("# NBVAL_SKIP"), f"{ipynb.name}: mark the install cell # NBVAL_SKIP"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```(?:bash|sh)\n(.*?)\n```", readme, flags=re.S)
    test_commands = [c.strip() for c in commands if "pytest" in c and "venv" in c]
    assert len(test_commands) == 1, "the README should give exactly one set-up-and-test command"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_commands[0] in ci_lines


def test_bundled_mnist_files_match_their_recorded_sha256():
    from course_lib.data import BUNDLED_ROOT

    table = (BUNDLED_ROOT / "PROVENANCE.md").read_text()
    recorded = dict(re.findall(r"\| (\S+-ubyte) \| ([0-9a-f]{64}) \|", table))
    assert len(recorded) == 4
    for name, digest in recorded.items():
        assert hashlib.sha256((BUNDLED_ROOT / "MNIST" / "raw" / name).read_bytes()).hexdigest() == digest


def test_a_built_wheel_carries_the_bundled_data_and_weights(tmp_path):
    """Colab installs the course as a wheel (pip install --no-deps git+...): the data must travel inside it."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True)
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]:
        assert f"course_lib/assets/mnist_subset/MNIST/raw/{name}" in names
    assert {"course_lib/assets/digit_classifier.safetensors", "course_lib/assets/digit_classifier.json",
            "course_lib/assets/mnist_subset/PROVENANCE.md"} <= names


def test_every_exercise_cell_uses_the_same_placeholder():
    """One convention in every lesson: `# YOUR CODE HERE` above `return None` (which the checker reads as "not yet")."""
    for py in sorted((ROOT / "notebooks").glob("*.py")):
        text = py.read_text()
        assert "your code here" not in text, f"{py.name}: write the placeholder as '# YOUR CODE HERE' / 'return None'"
        for match in re.finditer(r"# YOUR CODE HERE\n(.*)\n", text):
            assert match[1].strip() == "return None", f"{py.name}: '# YOUR CODE HERE' is followed by {match[1]!r}"
