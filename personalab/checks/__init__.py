"""In-notebook checks for the graded exercises, learntools style: ``q1.check()``, ``q1.hint()``, ``q1.solution()``.

A question names the notebook variables it reads (``names``) and a check function that gets their values.
The check raises :class:`Incorrect` with a message that says what is wrong, returns :class:`Credit` for
partial credit, or returns nothing (or a message) for full marks.

Checking has two halves so that instructor grading never trusts the learner's kernel:

1. :meth:`Question.export` runs *in the kernel* and only copies the named variables out as JSON data
   (plus, for questions that must call a learner's function, the outputs of a ``probe``).
2. :meth:`Question.grade` runs *anywhere* and turns that data into a :class:`Result`.

``q1.check()`` does both in the notebook, through a JSON round trip, so the learner sees exactly the verdict
the gradebook will give. ``personalab grade`` runs only step 1 in the learner's kernel and step 2 in its own
process: redefining ``q1.check``, printing a fake "Correct" or patching this module inside the notebook
changes nothing in the gradebook.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Credit",
    "Exercise",
    "Hidden",
    "Incorrect",
    "Missing",
    "Opaque",
    "Question",
    "Result",
    "close",
    "describe",
    "expect_close",
    "expect_keys",
    "expect_type",
    "from_jsonable",
    "load_exercise",
    "to_jsonable",
]

#: Statuses of a result, from best to worst.
#: "not-attempted": the learner left the placeholder; "timed-out" (grading only): a cell hit its time limit.
STATUSES = ("correct", "partial", "incorrect", "not-attempted", "timed-out", "error")
MAX_EXPORT_CHARS = 200_000  # one variable larger than this is not exported (reported as too large)


# --------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Missing:
    """A variable the notebook never defined (or whose cell raised before defining it)."""

    name: str

    def __repr__(self) -> str:
        return f"<{self.name} is not defined>"


@dataclass(frozen=True)
class Opaque:
    """A value that is not plain data (a function, a module, an object): only its type and repr travel."""

    type: str
    repr: str

    def __repr__(self) -> str:
        return f"<{self.type}: {self.repr}>"


def _to_plain(value: Any, depth: int = 0) -> Any:
    if depth > 50:
        raise ValueError("nested too deeply")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_to_plain(v, depth + 1) for v in value), key=repr)
    if hasattr(value, "model_dump") and callable(value.model_dump) and not isinstance(value, type):
        return _to_plain(value.model_dump(mode="json"), depth + 1)  # pydantic models travel as their data
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _to_plain(dataclasses.asdict(value), depth + 1)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return _to_plain(value.item(), depth + 1)  # numpy / torch scalars
    raise TypeError(type(value).__name__)


def to_jsonable(value: Any) -> Any:
    """JSON data for a notebook value; what is not plain data becomes an ``__opaque__`` marker."""
    if isinstance(value, Missing):
        return {"__missing__": value.name}
    try:
        plain = _to_plain(value)
        if len(json.dumps(plain)) > MAX_EXPORT_CHARS:
            return {"__opaque__": type(value).__name__, "repr": f"too large (over {MAX_EXPORT_CHARS} characters)"}
        return plain
    except Exception:  # noqa: BLE001 - any learner object must export without raising
        try:
            text = repr(value)
        except Exception:  # noqa: BLE001
            text = "?"
        return {"__opaque__": type(value).__name__, "repr": text[:200]}


def from_jsonable(data: Any) -> Any:
    """Inverse of :func:`to_jsonable`: markers become :class:`Missing` / :class:`Opaque` again."""
    if isinstance(data, dict):
        if set(data) == {"__missing__"}:
            return Missing(str(data["__missing__"]))
        if set(data) == {"__opaque__", "repr"}:
            return Opaque(str(data["__opaque__"]), str(data["repr"]))
        if set(data) == {"__float__"}:
            return float(data["__float__"])
        return {k: from_jsonable(v) for k, v in data.items()}
    if isinstance(data, list):
        return [from_jsonable(v) for v in data]
    return data


# ------------------------------------------------------------------------------------ friendly checks


class Incorrect(Exception):
    """Raised by a check function: the answer is wrong; ``credit`` (0..1) gives partial credit."""

    def __init__(self, message: str, *, credit: float = 0.0) -> None:
        super().__init__(message)
        self.message = message
        self.credit = credit


@dataclass(frozen=True)
class Credit:
    """Returned by a check function for partial credit: ``fraction`` of the points, with a reason."""

    fraction: float
    message: str


_ARTICLE = {"dict": "a dict", "list": "a list", "str": "a string", "int": "an int", "float": "a float",
            "bool": "a bool", "NoneType": "None", "tuple": "a tuple"}


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return " or ".join(_type_name(x) for x in t)
    return _ARTICLE.get(t.__name__, f"a {t.__name__}")


def describe(value: Any) -> str:
    """A short description of a value for messages: 'a list of 3 items', 'a string of 12 characters'."""
    if isinstance(value, Missing):
        return "nothing (the variable is not defined)"
    if isinstance(value, Opaque):
        return f"a {value.type} ({value.repr[:60]})"
    if value is None:
        return "None"
    if isinstance(value, bool):
        return f"the bool {value}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"a string of {len(value)} characters" if len(value) > 40 else f"the string {value!r}"
    if isinstance(value, Mapping):
        keys = ", ".join(repr(k) for k in list(value)[:8]) + (", …" if len(value) > 8 else "")
        return f"a dict with keys {keys}" if value else "an empty dict"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' * (len(value) != 1)}"
    return f"a {type(value).__name__}"


def expect_type(value: Any, types: type | tuple[type, ...], name: str) -> Any:
    """Raise :class:`Incorrect` unless ``value`` is one of ``types`` (bool is not accepted as a number)."""
    wanted = types if isinstance(types, tuple) else (types,)
    ok = isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted)
    if not ok:
        raise Incorrect(f"expected `{name}` to be {_type_name(types)}, got {describe(value)}")
    return value


def expect_keys(value: Any, keys: Iterable[str], name: str, *, allow_extra: bool = True) -> Mapping[str, Any]:
    """Raise :class:`Incorrect` unless ``value`` is a dict holding all ``keys`` (and, if asked, no others)."""
    keys = list(keys)
    wanted = ", ".join(repr(k) for k in keys)
    if not isinstance(value, Mapping):
        raise Incorrect(f"expected `{name}` to be a dict with keys {wanted}, got {describe(value)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise Incorrect(
            f"expected `{name}` to be a dict with keys {wanted}; "
            f"missing {', '.join(repr(k) for k in missing)} (got {describe(value)})"
        )
    extra = [k for k in value if k not in keys]
    if extra and not allow_extra:
        raise Incorrect(f"`{name}` has unexpected keys {', '.join(repr(k) for k in extra)}; expected only {wanted}")
    return value


def close(actual: float, expected: float, *, rel: float = 1e-6, abs: float = 1e-9) -> bool:  # noqa: A002
    """Whether two numbers agree within a relative or an absolute tolerance (like :func:`math.isclose`)."""
    return math.isclose(float(actual), float(expected), rel_tol=rel, abs_tol=abs)


def expect_close(value: Any, expected: float, name: str, *, rel: float = 1e-6, abs: float = 1e-9) -> float:  # noqa: A002
    """Raise :class:`Incorrect` unless ``value`` is a number within tolerance of ``expected``."""
    expect_type(value, (int, float), name)
    if not math.isfinite(float(value)) or not close(value, expected, rel=rel, abs=abs):
        tol = max(abs, rel * math.fabs(expected))
        raise Incorrect(f"expected `{name}` ≈ {expected:.6g} (± {tol:.3g}), got {float(value):.6g}")
    return float(value)


# ------------------------------------------------------------------------------------------- results


@dataclass
class Result:
    """One question's verdict: what goes into the gradebook and the feedback file."""

    question: str
    points: float
    max_points: float
    status: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def ok(self) -> bool:
        return self.status == "correct"

    def label(self) -> str:
        """'Correct (2/2 points)', 'Partly correct (1.2/3 points)', ..."""
        word = {"correct": "Correct", "partial": "Partly correct", "incorrect": "Incorrect",
                "not-attempted": "Not attempted yet", "timed-out": "Timed out",
                "error": "Check failed"}.get(self.status, self.status)
        return f"{word} ({_fmt(self.points)}/{_fmt(self.max_points)} points)"

    def text(self) -> str:
        return f"{self.label()}: {self.reason}"


def _fmt(x: float) -> str:
    return f"{x:g}"


_COLORS = {"correct": "#2e7d32", "partial": "#b26a00", "incorrect": "#c62828", "not-attempted": "#1565c0",
           "timed-out": "#b26a00", "error": "#c62828", "hint": "#1565c0", "solution": "#444"}


def _show(kind: str, title: str, body: str, *, code: bool = False) -> None:
    """Display in Jupyter/Colab as coloured Markdown, else print plain text."""
    shell = None
    if "IPython" in sys.modules:
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except Exception:  # noqa: BLE001
            shell = None
    if shell is None or not hasattr(shell, "kernel"):
        print(f"{title}: {body}" if not code else f"{title}:\n{body}")
        return
    from IPython.display import Markdown, display

    text = f"```python\n{body}\n```" if code else body.replace("\n", "  \n")
    display(Markdown(f'<span style="color:{_COLORS.get(kind, "#000")}">**{title}:**</span> {text}'))


# ------------------------------------------------------------------------------------------ question


CheckFn = Callable[..., "Credit | str | None"]
#: ``probe(namespace)`` with the public cases; ``probe(namespace, cases)`` with the grader's hidden ones
ProbeFn = Callable[..., Mapping[str, Any]]


@dataclass(frozen=True)
class Hidden:
    """Grader-only cases of a probed question (in ``grader/exNN.py``, never in the student release).

    ``inputs`` (JSON data) go into the kernel and are passed to the question's probe as ``cases``; ``check``
    grades the probe's outputs like the public check function does, with expectations that never leave the
    grader."""

    inputs: Any
    check: CheckFn


@dataclass
class Question:
    """A graded question. ``check_fn(**values)`` receives the exported values of ``names`` (and ``probe``)."""

    id: str
    title: str
    names: tuple[str, ...]
    check_fn: CheckFn
    points: float = 1.0
    hints: tuple[str, ...] = ()
    probe: ProbeFn | None = None
    needs_model: bool = False
    exercise: str = ""  # "01": whose solution notebook holds the model solution
    result: Result | None = field(default=None, repr=False)

    # ---- kernel side
    def export(self, ns: Mapping[str, Any], cases: Any = None) -> dict[str, Any]:
        """JSON data of this question's variables in namespace ``ns`` (never raises). With ``cases`` (hidden
        inputs from the grader) the probe runs on those instead of the public ones."""
        out: dict[str, Any] = {n: to_jsonable(ns[n] if n in ns else Missing(n)) for n in self.names}
        if self.probe is not None and not any(n not in ns for n in self.names):
            try:
                probed = self.probe(ns) if cases is None else self.probe(ns, cases)
                if cases is not None:
                    out["__hidden__"] = True
                out.update({k: to_jsonable(v) for k, v in dict(probed).items()})
            except Exception as exc:  # noqa: BLE001 - the learner's function failed: graded, not fatal
                out["__probe_error__"] = f"{type(exc).__name__}: {exc}"[:500]
        return out

    # ---- anywhere
    def grade(self, exported: Mapping[str, Any] | None, check_fn: CheckFn | None = None) -> Result:
        """The verdict for exported values (``None``: the grading cell never reached this question);
        ``check_fn`` replaces the public check (the grader's hidden one)."""
        if exported is None:
            return self._result(0, "error", "not graded: the notebook stopped before the grading step reached it")
        values = from_jsonable(dict(exported))
        missing = [n for n in self.names if isinstance(values.get(n), Missing)]
        if missing:
            names = ", ".join(f"`{n}`" for n in missing)
            return self._result(0, "not-attempted", f"{names} {'is' if len(missing) == 1 else 'are'} not defined: "
                                "fill in the code above and run its cell (and every cell before it)")
        if "__probe_error__" in values:
            err = values["__probe_error__"]
            if err.startswith("NotImplementedError"):
                return self._result(0, "not-attempted", "your code still raises NotImplementedError: fill it in")
            return self._result(0, "incorrect", f"calling your code raised {err}")
        try:
            verdict = (check_fn or self.check_fn)(**{k: v for k, v in values.items() if not k.startswith("__")})
        except Incorrect as exc:
            credit = min(max(exc.credit, 0.0), 1.0)
            return self._result(round(self.points * credit, 4), "partial" if credit > 0 else "incorrect", exc.message)
        except Exception as exc:  # noqa: BLE001 - a check must never crash the notebook or the grader
            why = f"{type(exc).__name__}: {exc}"
            return self._result(0, "error", f"the check itself failed ({why}); tell your instructor")
        if isinstance(verdict, Credit):
            frac = min(max(verdict.fraction, 0.0), 1.0)
            status = "correct" if frac >= 1 else "partial" if frac > 0 else "incorrect"
            return self._result(round(self.points * frac, 4), status, verdict.message)
        return self._result(self.points, "correct", verdict if isinstance(verdict, str) and verdict else "well done")

    def _result(self, points: float, status: str, reason: str) -> Result:
        return Result(self.id, float(points), float(self.points), status, reason)

    # ---- learner API
    def check(self, ns: Mapping[str, Any] | None = None) -> None:
        """Check your answer and show what is right or wrong (reads your notebook's variables)."""
        if ns is None:
            ns = sys._getframe(1).f_globals
        exported = json.loads(json.dumps(self.export(ns)))  # the same JSON round trip as the gradebook
        self.result = self.grade(exported)
        _show(self.result.status, f"{self.id} {self.title} — {self.result.label()}", self.result.reason)

    def hint(self, n: int = 1) -> None:
        """Show hint number ``n`` (1 is the gentlest)."""
        if not self.hints:
            _show("hint", "Hint", "no hint for this one: re-read the instructions above")
            return
        n = min(max(int(n), 1), len(self.hints))
        more = f" (hint {n} of {len(self.hints)}; `.hint({n + 1})` for the next)" if n < len(self.hints) else ""
        _show("hint", "Hint", self.hints[n - 1] + more)

    def solution(self) -> None:
        """Show the model solution: this question's code in the solution notebook (not part of a student release)."""
        from ..authoring.regions import model_solution

        text = model_solution(self.exercise, self.id)
        if text is None:
            _show("solution", "Solution", f"model solutions are not part of this release (no solutions/"
                  f"{self.exercise}_*.ipynb): try `{self.id}.hint()`, or ask your instructor")
        elif not text:
            _show("solution", "Solution", f"{self.id} has no code to write: it checks what the cells above it "
                  f"produce. Follow its instructions, run those cells from the top, then `{self.id}.check()` again "
                  f"(`{self.id}.hint()` helps)")
        else:
            _show("solution", "Solution", text, code=True)


# ------------------------------------------------------------------------------------------ exercise


@dataclass
class Exercise:
    """The questions of one exercise notebook, in order; ``exercise.question(...)`` registers one."""

    number: str
    title: str
    questions: list[Question] = field(default_factory=list)

    def question(
        self,
        title: str,
        *,
        names: Sequence[str],
        points: float = 1.0,
        hints: Sequence[str] = (),
        probe: ProbeFn | None = None,
        needs_model: bool = False,
    ) -> Callable[[CheckFn], Question]:
        def deco(fn: CheckFn) -> Question:
            q = Question(
                id=f"q{len(self.questions) + 1}",
                title=title,
                names=tuple(names),
                check_fn=fn,
                points=points,
                hints=tuple(hints),
                probe=probe,
                needs_model=needs_model,
                exercise=self.number,
            )
            self.questions.append(q)
            return q

        return deco

    @property
    def max_points(self) -> float:
        return sum(q.points for q in self.questions)

    @property
    def needs_model(self) -> bool:
        return any(q.needs_model for q in self.questions)

    def export_all(self, ns: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return {q.id: q.export(ns) for q in self.questions}

    def grade_all(self, exported: Mapping[str, Any]) -> list[Result]:
        return [q.grade(exported.get(q.id)) for q in self.questions]

    def progress(self) -> None:
        """Show your score so far (from the checks you ran in this notebook)."""
        done = [q.result for q in self.questions if q.result is not None]
        pts = sum(r.points for r in done)
        lines = [f"- {q.id} {q.title}: " + (q.result.text() if q.result else "not checked yet") for q in self.questions]
        _show("hint", f"Exercise {self.number} so far: {_fmt(pts)}/{_fmt(self.max_points)} points",
              "\n" + "\n".join(lines))


def module_name(exercise: str) -> str:
    """``"01"`` or ``"ex01"`` → ``personalab.checks.ex01``; a dotted name is taken as is."""
    if "." in exercise:
        return exercise
    digits = exercise.removeprefix("ex")
    return f"{__name__}.ex{int(digits):02d}" if digits.isdigit() else f"{__name__}.{exercise}"


def load_exercise(exercise: str) -> Exercise:
    """The :class:`Exercise` object (``EXERCISE``) of a checks module, e.g. ``load_exercise("01")``."""
    mod = importlib.import_module(module_name(exercise))
    ex = getattr(mod, "EXERCISE", None)
    if not isinstance(ex, Exercise):
        raise TypeError(f"{mod.__name__} defines no EXERCISE = Exercise(...)")
    return ex
