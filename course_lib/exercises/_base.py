"""The exercise framework: an `Exercise` is a question, a grader and a reference answer; the lesson files
`register` theirs, and `check` / `solution` look them up by name."""

import inspect
import math
import textwrap
from dataclasses import dataclass
from typing import Any, Callable

import torch


@dataclass
class Exercise:
    question: str
    grade: Callable[[Any], tuple[bool, str]]  # answer -> (right?, message: praise or hint)
    solution: Callable | str


EXERCISES: dict[str, Exercise] = {}


def register(**exercises: Exercise) -> None:
    """Add a lesson's exercises to EXERCISES, in the order given."""
    taken = sorted(set(exercises) & set(EXERCISES))
    if taken:  # two lessons with one name: the second would silently replace the first one's grader
        raise ValueError(f"Exercise names already taken: {', '.join(taken)}. Give each exercise its own name.")
    EXERCISES.update(exercises)


class Verdict:
    """What `check` returns: true when the answer is right (`.right`), with the message it printed (`.message`).
    It shows nothing of its own in a notebook, so the cell shows the verdict once, not also `Out[n]: False`."""

    def __init__(self, right: bool, message: str):
        self.right, self.message = right, message

    def __bool__(self) -> bool:
        return self.right

    def __repr__(self) -> str:
        return f"Verdict(right={self.right})"

    def _ipython_display_(self) -> None:  # Jupyter: the printed message is the whole output
        pass


def _verdict(right: bool, message: str) -> Verdict:
    print(message)
    return Verdict(right, message)


def check(name: str, answer: Any) -> Verdict:
    """Grade `answer` to exercise `name`: prints "Correct!" or "Not yet" with a hint, and returns a `Verdict`,
    true when the answer is right. The verdict is remembered for `passed`.

    >>> verdict = check("ae_params", 2.5)  # doctest: +ELLIPSIS
    Not yet: ...
    >>> bool(verdict)
    False
    """
    verdict = _check(name, answer)
    _LAST_CHECKED[name] = (verdict.right, answer)
    return verdict


_LAST_CHECKED: dict[str, tuple[bool, Any]] = {}  # exercise name -> (right?, the answer last checked)


def passed(name: str, answer: Any = None) -> bool:
    """True when the last `check` of exercise `name` said "Correct!" (and, if `answer` is given, it was this very
    answer that was checked). A lesson uses it to run the student's own function once it is right:

        step = my_step if exercises.passed("ae_train_step", my_step) else library_step
    """
    _get(name)  # a misspelt name is an error, not a silent False
    right, checked = _LAST_CHECKED.get(name, (False, None))
    return right and (answer is None or checked is answer)


def _check(name: str, answer: Any) -> Verdict:
    exercise = _get(name)
    if answer is None or answer is ...:
        return _verdict(False, f"Not yet: the answer is empty. {exercise.question}")
    wants_function = callable(exercise.solution)  # a function's exercise has a function as its reference answer
    if wants_function and not callable(answer):
        return _verdict(False, f"Not yet: this exercise wants your function itself, not {type(answer).__name__} "
                               f"{answer!r:.40}. Pass its name without quotes or parentheses, e.g. "
                               f"exercises.check({name!r}, my_function).")
    if not wants_function and callable(answer):
        return _verdict(False, f"Not yet: this exercise wants a value, not a function: {exercise.question}")
    try:
        right, message = exercise.grade(_refusing_ellipsis(answer) if callable(answer) else answer)
    except _NotWrittenYet:
        right, message = False, "your function still returns `...`: write your code in its place."
    except Exception as err:  # the student's code raised: show it as a hint, not a traceback from the checker
        right, message = False, f"your answer raised {type(err).__name__}: {err}"
    return _verdict(right, ("Correct! " if right else "Not yet: ") + message)


class _NotWrittenYet(Exception):
    """A student's function returned the `...` placeholder of the exercise cell."""


def _refusing_ellipsis(fn: Callable) -> Callable:
    def wrapped(*args, **kwargs):
        out = fn(*args, **kwargs)
        if out is ...:
            raise _NotWrittenYet
        return out

    return wrapped


def whole_number(answer: Any) -> int | None:
    """`answer` as an int when it is a whole number (5, 5.0, "5", "5,000", a one-number tensor), else None: a count
    off by a fraction is not the count.

    >>> whole_number("533,762"), whole_number(533762.0), whole_number(533762.9), whole_number(True)
    (533762, 533762, None, None)
    """
    value = number(answer.replace(",", "").replace("_", "") if isinstance(answer, str) else answer)
    return int(value) if value is not None and value.is_integer() else None


def number(answer: Any) -> float | None:
    """`answer` as a finite float (a number, a numeric string, a one-number tensor), else None (words, True, NaN).

    >>> number("0.75"), number(torch.tensor(3)), number("b"), number(float("nan"))
    (0.75, 3.0, None, None)
    """
    if isinstance(answer, bool):
        return None
    if isinstance(answer, torch.Tensor):
        answer = answer.item() if answer.numel() == 1 else None
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def choice(answer: Any, letters: str = "abc") -> str | None:
    """The one letter a multiple-choice `answer` picks ('b', 'B', '(b)', 'b)'), else None: a word that starts with
    a letter ('bogus') or several letters ('both a and c') pick nothing.

    >>> choice("(B)"), choice("bogus"), choice("both a and c")
    ('b', None, None)
    """
    picked = str(answer).strip().lower().strip("()'\". ")
    return picked if len(picked) == 1 and picked in letters else None


def solution(name: str) -> None:
    """Print a reference answer to exercise `name`."""
    ref = _get(name).solution
    print(textwrap.dedent(inspect.getsource(ref)) if callable(ref) else ref)


def _get(name: str) -> Exercise:
    if name not in EXERCISES:
        raise KeyError(f"No exercise called {name!r}. Exercises: {', '.join(EXERCISES)}.")
    return EXERCISES[name]
