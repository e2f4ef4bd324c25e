"""The "Open in Colab" badges and the Colab install cell, generated from one place: the repository URL in
pyproject.toml (`[project.urls] Repository`).

    python -m course_lib.tools.colab            # rewrite the badges and install cells (notebooks and README)
    python -m course_lib.tools.colab --check    # exit 1 if any of them is out of date

The install cell runs only on Colab. It installs what Colab lacks (`torchmetrics`, which accepts the torch that is
there) and then the course itself with `pip install --no-deps`, so Colab's torch, torchvision, numpy and ipywidgets
stay exactly as they are.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
# Imported under these names; the install cell adds only those of them that Colab lacks (it has the rest).
NEEDED_ON_COLAB = ("torchmetrics", "safetensors", "tqdm")
README_START, README_END = "<!-- colab:start -->", "<!-- colab:end -->"


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The repository URL from pyproject.toml, without a trailing slash or .git."""
    match = re.search(r'^Repository\s*=\s*"([^"]+)"', pyproject.read_text(), flags=re.MULTILINE)
    if not match:
        raise ValueError(f'{pyproject} has no `Repository = "https://github.com/OWNER/NAME"` under [project.urls]; '
                         f"add it: the badges and install cells are generated from it.")
    return match.group(1).removesuffix("/").removesuffix(".git")


def colab_url(repo: str, notebook: str, branch: str = "main") -> str:
    """https://github.com/OWNER/NAME -> the Colab address that opens notebooks/<notebook>.ipynb from GitHub.

    >>> colab_url("https://github.com/me/course", "01_autoencoders")
    'https://colab.research.google.com/github/me/course/blob/main/notebooks/01_autoencoders.ipynb'
    """
    if not repo.startswith("https://github.com/"):
        raise ValueError(f"Colab opens notebooks from GitHub; the repository URL must start with https://github.com/, "
                         f"got {repo!r}.")
    return f"https://colab.research.google.com/github/{repo.removeprefix('https://github.com/')}/blob/{branch}/notebooks/{notebook}.ipynb"


def badge_cell(repo: str, notebook: str) -> str:
    return (f'# %% [markdown] tags=["colab"]\n'
            f"# [![Open In Colab]({BADGE})]({colab_url(repo, notebook)})\n")


def install_cell(repo: str) -> str:
    return f'''# %% tags=["colab"]
# NBVAL_SKIP
# On Colab only: install the course without replacing Colab's own torch, torchvision, numpy or ipywidgets.
# (Made by `python -m course_lib.tools.colab` from the repository URL in pyproject.toml.)
import importlib.util
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("course_lib") is None:
    missing = [name for name in {NEEDED_ON_COLAB!r} if importlib.util.find_spec(name) is None]
    if missing:  # they accept the torch that is there, so nothing of Colab's is replaced
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "git+{repo}"], check=True)
if "google.colab" in sys.modules:
    import course_lib

    course_lib.doctor()  # the GPU runtime, the data, the bundled weights: what to fix, if anything
'''


def notebook_sources() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def with_colab_cells(source: str, repo: str, notebook: str) -> str:
    """The py:percent `source` with its Colab cells (tagged "colab") replaced by freshly generated ones: the badge
    first, the install cell right after the lesson's title."""
    cells = re.split(r"(?m)^(?=# %%)", source)
    header, cells = cells[0], [c for c in cells[1:] if not c.startswith(('# %% [markdown] tags=["colab"]',
                                                                         '# %% tags=["colab"]'))]
    return header + "".join([badge_cell(repo, notebook) + "\n"] + cells[:1] + [install_cell(repo) + "\n"] + cells[1:])


def readme_block(repo: str) -> str:
    sources = notebook_sources()
    badges = " ".join(f"[![{p.stem[:2]}: Open In Colab]({BADGE})]({colab_url(repo, p.stem)})" for p in sources)
    numbers = ", ".join(str(int(p.stem[:2])) for p in sources)
    return f"{README_START}\nOpen a lesson on Colab, lessons {numbers}: {badges}\n{README_END}"


def with_readme_block(readme: str, repo: str) -> str:
    if README_START not in readme or README_END not in readme:
        raise ValueError(f"README.md needs the two lines {README_START} and {README_END} where the badges go.")
    start, end = readme.index(README_START), readme.index(README_END) + len(README_END)
    return readme[:start] + readme_block(repo) + readme[end:]


def outdated() -> list[Path]:
    """Files whose Colab badges or install cell differ from what the repository URL gives."""
    repo = repository_url()
    stale = [p for p in notebook_sources() if with_colab_cells(p.read_text(), repo, p.stem) != p.read_text()]
    readme = ROOT / "README.md"
    if with_readme_block(readme.read_text(), repo) != readme.read_text():
        stale.append(readme)
    return stale


def write() -> list[Path]:
    """Regenerate every badge and install cell; re-pair the changed notebooks (.py -> .ipynb, outputs kept)."""
    repo, changed = repository_url(), []
    for path in notebook_sources():
        new = with_colab_cells(path.read_text(), repo, path.stem)
        if new != path.read_text():
            path.write_text(new)
            subprocess.run([sys.executable, "-m", "jupytext", "--quiet", "--update", "--to", "ipynb", str(path),
                            "-o", str(path.with_suffix(".ipynb"))], check=True)
            changed.append(path)
    readme = ROOT / "README.md"
    new = with_readme_block(readme.read_text(), repo)
    if new != readme.read_text():
        readme.write_text(new)
        changed.append(readme)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.tools.colab", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = outdated()
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)} (run python -m course_lib.tools.colab)")
        return 1 if stale else 0
    for path in write():
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
