"""The exercise framework: an `Exercise` is a question, a grader and a reference answer; the lesson files
`register` theirs, and `check` / `solution` look them up by name."""

import inspect
import textwrap
from dataclasses import dataclass
from typing import Any, Callable


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


def check(name: str, answer: Any) -> bool:
    """Grade `answer` to exercise `name`; prints "Correct!" or "Not yet" with a hint, and returns True/False."""
    exercise = _get(name)
    if answer is None or answer is ...:
        print(f"Not yet: the answer is empty. {exercise.question}")
        return False
    try:
        right, message = exercise.grade(_refusing_ellipsis(answer) if callable(answer) else answer)
    except _NotWrittenYet:
        right, message = False, "your function still returns `...`: write your code in its place."
    except Exception as err:  # the student's code raised: show it as a hint, not a traceback from the checker
        right, message = False, f"your answer raised {type(err).__name__}: {err}"
    print(("Correct! " if right else "Not yet: ") + message)
    return right


class _NotWrittenYet(Exception):
    """A student's function returned the `...` placeholder of the exercise cell."""


def _refusing_ellipsis(fn: Callable) -> Callable:
    def wrapped(*args, **kwargs):
        out = fn(*args, **kwargs)
        if out is ...:
            raise _NotWrittenYet
        return out

    return wrapped


def solution(name: str) -> None:
    """Print a reference answer to exercise `name`."""
    ref = _get(name).solution
    print(textwrap.dedent(inspect.getsource(ref)) if callable(ref) else ref)


def _get(name: str) -> Exercise:
    if name not in EXERCISES:
        raise KeyError(f"No exercise called {name!r}. Exercises: {', '.join(EXERCISES)}.")
    return EXERCISES[name]
