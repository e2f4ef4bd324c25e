"""The library's layers (DESIGN.md): each module imports only from its own layer or the layers below, there are no
import circles, lessons never import a tool, and only tools are commands."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "course_lib"

# Bottom to top. A module may import from its own layer and every layer below it, never from one above.
LAYERS = [
    ("bottom", {"config", "nets", "data", "captions", "wait_policy"}),
    ("training", {"training", "checkpoints", "fastpath", "pretrained"}),
    ("models", {"autoencoders", "vae", "gans", "toy2d", "diffusion", "unet", "conditional", "pix2pix",
                "latent_diffusion", "classifiers", "stylegan", "progressive", "gan_variants", "singan",
                "diffusion_theory", "flow", "scores", "superres", "editing", "vqvae", "text2image"}),
    ("measures", {"metrics", "patches", "prompt_following"}),
    ("recipes", {"settings", "recipes"}),
    ("ui", {"plotting", "liveplot", "widgets", "gan_dashboard"}),
    ("lesson support", {"lesson", "exercises"}),
    ("tools", {"tools"}),
]
LAYER_OF = {module: i for i, (_, modules) in enumerate(LAYERS) for module in modules}
MAX_LINES = 450


def modules() -> dict[str, Path]:
    """Every module of course_lib by its dotted name below the package ('vae', 'tools.benchmark', ...)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and parts[0] != "assets":
            found[".".join(parts)] = path
    return found


def course_imports(name: str, path: Path) -> set[str]:
    """The course_lib modules that `path` imports anywhere in it (inside functions too), as dotted names."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "course_lib":
                base = node.module.split(".")[1:]
            else:
                continue
            targets = [base + [alias.name] for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == "course_lib"]
        else:
            continue
        for target in targets:  # `from . import plotting` names a module; `from .data import load` names a function
            while target and ".".join(target) not in MODULES:
                target = target[:-1]
            if target and ".".join(target) != name:
                found.add(".".join(target))
    return found


MODULES = modules()
GRAPH = {name: course_imports(name, path) for name, path in MODULES.items() if name}


def layer(name: str) -> int:
    top = name.split(".")[0]
    if top not in LAYER_OF:
        raise AssertionError(f"course_lib/{name.replace('.', '/')}.py belongs to no layer: add it to LAYERS here "
                             f"and to the layout in the README")
    return LAYER_OF[top]


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_imports_only_run_downwards(name):
    upward = [f"{other} ({LAYERS[layer(other)][0]})" for other in GRAPH[name] if layer(other) > layer(name)]
    assert not upward, f"{name} ({LAYERS[layer(name)][0]}) imports upwards: {', '.join(upward)}"


def test_no_import_circles():
    done, on_path = set(), []

    def visit(name):
        if name in on_path:
            raise AssertionError("import circle: " + " -> ".join(on_path[on_path.index(name):] + [name]))
        if name in done:
            return
        on_path.append(name)
        for other in sorted(GRAPH.get(name, ())):
            visit(other)
        on_path.pop()
        done.add(name)

    for name in sorted(GRAPH):
        visit(name)


def test_the_check_sees_imports_inside_functions_and_from_subpackages(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text("import torch\nfrom .. import recipes\n\ndef f():\n    from ..data import load_dataset\n"
                      "    from course_lib.tools import benchmark\n")
    assert course_imports("tools.probe", source) == {"recipes", "data", "tools.benchmark"}


def test_only_tools_are_commands():
    commands = [name for name, path in MODULES.items() if '__name__ == "__main__"' in path.read_text()]
    assert commands and all(name.startswith("tools.") for name in commands), commands


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.py")), ids=lambda p: p.stem)
def test_lessons_import_the_library_never_a_tool(notebook):
    imported = course_imports("notebook", notebook)
    assert not [name for name in imported if name.startswith("tools")], imported


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_short_enough_to_read(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"course_lib/{name.replace('.', '/')} has {lines} lines; split it by idea (at most {MAX_LINES})"
