"""The slide decks (slides/<lang>/NN_topic.md, Marp) keep up with the lessons: one deck per notebook in every language,
the figures they show exist, each deck says which notebook sections it follows, and a lesson's English and Japanese
decks are the same slides. Pure text checks: no node, no Marp."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SLIDES = ROOT / "slides"
FIGS = SLIDES / "figs"
LANGS = ("en", "ja")
LESSONS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
DECKS = [(lang, lesson) for lesson in LESSONS for lang in LANGS]

IMAGE = re.compile(r"!\[[^\]]*\]\(\s*([^)\s]+)")  # ![w:700](../figs/x.png), ![bg right](../figs/x.png)
# `Notebook: 01_autoencoders — "The gap problem"` (Japanese decks may write ノートブック and 「...」); several
# quoted headings may follow, e.g. a section › its subsection
SECTION_LINE = re.compile(r"(?:Notebook|ノートブック)\s*[:：]\s*(\d\d_\w+)\s*[—–-]+\s*(.+)$", re.M)
QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|「([^」]+)」')


def deck_path(lang: str, lesson: str) -> Path:
    return SLIDES / lang / f"{lesson}.md"


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter, body) of a Marp deck: the YAML block between the first two `---` lines."""
    lines = text.splitlines()
    assert lines and lines[0].strip() == "---", "a Marp deck starts with a `---` line that opens its front matter"
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    assert end is not None, "the front matter is never closed by a second `---` line"
    return "\n".join(lines[1:end]), "\n".join(lines[end + 1:])


def slide_separators(body: str) -> list[int]:
    """Line numbers (in the body) of the `---` lines that start a new slide, outside fenced code blocks."""
    separators, fenced = [], False
    for i, line in enumerate(body.splitlines()):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.strip() == "---":
            separators.append(i)
    return separators


def figures(text: str) -> set[str]:
    return set(IMAGE.findall(text))


def notebook_headings(lesson: str) -> set[str]:
    """The markdown headings of a lesson's py:percent notebook, e.g. 'The gap problem'."""
    source = (ROOT / "notebooks" / f"{lesson}.py").read_text(encoding="utf-8")
    return {m[1].strip() for m in re.finditer(r"^# #{1,6} (.+)$", source, flags=re.M)}


def read(lang: str, lesson: str) -> str:
    path = deck_path(lang, lesson)
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: every lesson has a deck in {', '.join(LANGS)}")
    return path.read_text(encoding="utf-8")


def test_the_lessons_are_found():
    assert [lesson[:2] for lesson in LESSONS][:6] == ["01", "02", "03", "04", "05", "06"], LESSONS


@pytest.mark.parametrize("lang,lesson", DECKS)
def test_every_lesson_has_a_deck_in_every_language(lang, lesson):
    assert deck_path(lang, lesson).exists(), (
        f"slides/{lang}/{lesson}.md is missing: each notebook in notebooks/ has a deck in slides/en and slides/ja")


@pytest.mark.parametrize("lang,lesson", DECKS)
def test_deck_is_a_marp_deck(lang, lesson):
    front, _ = split_front_matter(read(lang, lesson))
    assert re.search(r"^marp:\s*true\s*$", front, flags=re.M), f"{lang}/{lesson}.md: front matter lacks `marp: true`"


@pytest.mark.parametrize("lang,lesson", DECKS)
def test_deck_names_its_notebook_and_real_sections(lang, lesson):
    text = read(lang, lesson)
    lines = SECTION_LINE.findall(text)
    assert lines, f"{lang}/{lesson}.md: start each section with a line like `Notebook: {lesson} — \"<heading>\"`"
    headings = notebook_headings(lesson)
    for named, rest in lines:
        assert named == lesson, f"{lang}/{lesson}.md names notebook {named}, not {lesson}"
        quoted = [next(g for g in m if g) for m in QUOTED.findall(rest)]
        assert quoted, f"{lang}/{lesson}.md: put the section's heading in quotes after `{named} —`: {rest!r}"
        for heading in quoted:
            assert heading in headings, (
                f"{lang}/{lesson}.md refers to section {heading!r}, which is no heading of notebooks/{lesson}.py")


@pytest.mark.parametrize("lang,lesson", DECKS)
def test_separators_start_slides(lang, lesson):
    """A `---` right under a line of text turns that line into a heading instead of starting a new slide."""
    _, body = split_front_matter(read(lang, lesson))
    lines = body.splitlines()
    for i in slide_separators(body):
        assert i == 0 or not lines[i - 1].strip(), (
            f"{lang}/{lesson}.md: put a blank line between {lines[i - 1]!r} and the `---` under it")


@pytest.mark.parametrize("lang,lesson", DECKS)
def test_every_figure_a_deck_shows_exists(lang, lesson):
    path = deck_path(lang, lesson)
    refs = sorted(figures(read(lang, lesson)))
    elsewhere = [ref for ref in refs if (path.parent / ref).resolve().parent != FIGS.resolve()]
    assert not elsewhere, f"{lang}/{lesson}.md: figures live in slides/figs/, write ../figs/NAME, not {elsewhere}"
    missing = [ref for ref in refs if not (path.parent / ref).exists()]
    assert not missing, f"{lang}/{lesson}.md shows missing figures {missing}: run `python -m course_lib.tools.figures`"


@pytest.mark.parametrize("lesson", LESSONS)
def test_english_and_japanese_decks_are_the_same_slides(lesson):
    en, ja = read("en", lesson), read("ja", lesson)
    assert figures(en) == figures(ja), f"{lesson}: the en and ja decks show different figures"
    n_en, n_ja = (len(slide_separators(split_front_matter(t)[1])) + 1 for t in (en, ja))
    assert n_en == n_ja, f"{lesson}: {n_en} slides in English, {n_ja} in Japanese"
    sections_en = [rest for _, rest in SECTION_LINE.findall(en)]
    sections_ja = [rest for _, rest in SECTION_LINE.findall(ja)]
    quoted = lambda parts: [[next(g for g in m if g) for m in QUOTED.findall(p)] for p in parts]  # noqa: E731
    assert quoted(sections_en) == quoted(sections_ja), f"{lesson}: the en and ja decks follow different sections"


def test_the_slide_build_is_pinned_and_its_output_ignored():
    import json

    package = json.loads((SLIDES / "package.json").read_text())
    version = package["devDependencies"]["@marp-team/marp-cli"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"pin marp-cli exactly, not {version!r}"
    assert (SLIDES / "package-lock.json").exists(), "run `npm install` in slides/ to write package-lock.json"
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "slides/node_modules/" in ignored and "slides/html/" in ignored
