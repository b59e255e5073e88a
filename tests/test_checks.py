"""The question framework: values travel as JSON, verdicts and messages, partial credit, tolerance."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import nbformat
import pytest

from personalab.authoring import regions
from personalab.checks import (
    Credit,
    Exercise,
    Incorrect,
    Missing,
    Opaque,
    close,
    describe,
    expect_close,
    expect_keys,
    expect_type,
    from_jsonable,
    load_exercise,
    module_name,
    to_jsonable,
)
from personalab.persona import taskmaster

PL_ANSWER = 7


def roundtrip(value):
    return from_jsonable(json.loads(json.dumps(to_jsonable(value))))


def test_values_roundtrip_as_data():
    assert roundtrip({"a": [1, 2.5, "x", None, True], "b": (1, 2)}) == {"a": [1, 2.5, "x", None, True], "b": [1, 2]}
    assert roundtrip(Missing("x")) == Missing("x")
    assert math.isnan(roundtrip(float("nan")))
    assert roundtrip(float("inf")) == float("inf")
    assert roundtrip(taskmaster())["name"] == "TaskMaster"  # pydantic models travel as their data
    f = roundtrip(lambda x: x)
    assert isinstance(f, Opaque) and f.type == "function"
    assert isinstance(roundtrip(object()), Opaque)
    big = roundtrip("x" * 300_000)
    assert isinstance(big, Opaque) and "too large" in big.repr


def test_numpy_scalars_export_as_numbers():
    np = pytest.importorskip("numpy")
    assert roundtrip(np.float64(0.25)) == 0.25
    assert roundtrip({"n": np.int64(3)}) == {"n": 3}


def test_friendly_messages():
    with pytest.raises(Incorrect, match=r"expected `spec` to be a dict, got a list of 2 items"):
        expect_type([1, 2], dict, "spec")
    with pytest.raises(Incorrect, match="got the bool True"):
        expect_type(True, (int, float), "n")  # a bool is not a number here
    with pytest.raises(Incorrect, match=r"keys 'name', 'role'; missing 'role' \(got a dict with keys 'name'\)"):
        expect_keys({"name": "x"}, ["name", "role"], "spec")
    with pytest.raises(Incorrect, match="unexpected keys 'z'"):
        expect_keys({"name": 1, "z": 2}, ["name"], "spec", allow_extra=False)
    with pytest.raises(Incorrect, match="nothing"):
        expect_keys(Missing("spec"), ["name"], "spec")
    assert describe("short") == "the string 'short'"
    assert describe("x" * 50) == "a string of 50 characters"
    assert describe(Opaque("function", "<function f>")).startswith("a function")


def test_numeric_tolerance():
    assert close(1.0, 1.0 + 1e-9) and not close(1.0, 1.1)
    assert close(100, 101, rel=0.02) and close(0.0, 0.01, abs=0.05)
    assert expect_close(3.1416, math.pi, "pi", abs=1e-3) == 3.1416
    with pytest.raises(Incorrect, match=r"expected `pi` ≈ 3.14159 \(± 0.001\), got 3.2"):
        expect_close(3.2, math.pi, "pi", abs=1e-3)
    with pytest.raises(Incorrect):
        expect_close(float("nan"), 1.0, "x", rel=1)


def make_exercise():
    ex = Exercise("98", "unit")

    @ex.question("Answer", names=["answer"], points=2, hints=["first", "second"])
    def q1(answer):
        expect_type(answer, int, "answer")
        if answer == 41:
            raise Incorrect("off by one", credit=0.5)
        if answer != 42:
            raise Incorrect("wrong")
        return "exactly"

    @ex.question("Share", names=["parts"], points=3)
    def q2(parts):
        return Credit(len(parts) / 3, f"{len(parts)} of 3")

    @ex.question("Broken check", names=["x"])
    def q3(x):
        return 1 / 0

    @ex.question("Function", names=["f"], probe=lambda ns: {"out": ns["f"](2)})
    def q4(f, out):
        if out != 4:
            raise Incorrect(f"f(2) gave {out}")

    return ex


def grade(q, **ns):
    return q.grade(json.loads(json.dumps(q.export(ns))))


def test_verdicts_and_partial_credit():
    q1, q2, q3, q4 = make_exercise().questions
    assert [q.id for q in (q1, q2, q3, q4)] == ["q1", "q2", "q3", "q4"]
    r = grade(q1, answer=42)
    assert (r.points, r.max_points, r.status, r.reason) == (2, 2, "correct", "exactly")
    assert (grade(q1, answer=41).points, grade(q1, answer=41).status) == (1, "partial")
    assert (grade(q1, answer=7).points, grade(q1, answer=7).status) == (0, "incorrect")
    assert grade(q1, answer="42").reason == "expected `answer` to be an int, got the string '42'"
    r = grade(q1)
    assert r.status == "not-attempted" and "`answer` is not defined" in r.reason
    assert grade(q2, parts=[1, 2]).points == 2 and grade(q2, parts=[1, 2]).status == "partial"
    assert grade(q2, parts=[1, 2, 3, 4]).points == 3  # credit is capped at 1
    r = grade(q3, x=1)
    assert r.status == "error" and "ZeroDivisionError" in r.reason  # a crashing check is reported, not raised
    assert grade(q4, f=lambda x: 2 * x).status == "correct"
    assert grade(q4, f=lambda x: x + 3).reason == "f(2) gave 5"


def test_probe_failures_are_graded_not_raised():
    q4 = make_exercise().questions[3]

    def todo(x):
        raise NotImplementedError("your code here")

    assert grade(q4, f=todo).status == "not-attempted"
    r = grade(q4, f=lambda x: x / 0)
    assert r.status == "incorrect" and "ZeroDivisionError" in r.reason
    assert q4.grade(None).status == "error"  # the grading step never reached it


def test_check_reads_the_callers_variables_and_prints(capsys):
    q1 = make_exercise().questions[0]
    q1.check({"answer": 41})
    assert q1.result.status == "partial"
    out = capsys.readouterr().out
    assert "Partly correct (1/2 points)" in out and "off by one" in out
    ex = Exercise("97", "globals")
    q = ex.question("Module variable", names=["PL_ANSWER"])(lambda PL_ANSWER: f"got {PL_ANSWER}")
    q.check()  # no namespace given: the caller's globals (a notebook's variables)
    assert q.result.reason == "got 7"


def test_hints(capsys):
    q1 = make_exercise().questions[0]
    q1.hint()
    q1.hint(5)
    out = capsys.readouterr().out
    assert "first" in out and "hint 1 of 2" in out and "second" in out


def test_solution_shows_the_regions_of_the_solution_notebook(capsys, tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"),
                nbformat.v4.new_code_cell("q1.check()"), nbformat.v4.new_code_cell("q2.check()")]
    nbformat.write(nb, tmp_path / "98_unit.ipynb")
    monkeypatch.setattr(regions, "SOLUTIONS_DIR", tmp_path)
    q1, q2 = make_exercise().questions[:2]
    q1.solution()
    assert capsys.readouterr().out == "Solution:\nanswer = 42\n"
    q2.solution()
    assert "q2 has no code to write" in capsys.readouterr().out
    monkeypatch.setattr(regions, "SOLUTIONS_DIR", tmp_path / "absent")  # a student release: no solutions/
    q1.solution()
    assert "model solutions are not part of this release" in capsys.readouterr().out


def _regions_by_question(path: Path) -> dict[str, list[str]]:
    """Line by line, independently of the package: each region goes to the next ``qN.check()`` line."""
    out: dict[str, list[str]] = {}
    pending: list[str] = []
    inside: list[str] | None = None
    for cell in nbformat.read(path, as_version=4).cells:
        for line in cell.source.splitlines():
            if line.strip() == regions.BEGIN:
                inside = []
            elif line.strip() == regions.END:
                pending.append("\n".join(inside or []))
                inside = None
            elif inside is not None:
                inside.append(line)
            elif cell.cell_type == "code" and (m := re.match(r"(q\d+)\.check\(", line)):
                out[m.group(1)], pending = pending, []
    assert not pending, f"{path.name}: a solution region after the last check belongs to no question"
    return out


@pytest.mark.parametrize("number", ["01", "02", "03", "04", "05", "06"])
def test_each_solution_is_its_region_in_solutions(number, capsys):
    path = regions.solution_notebook(number)
    expected = _regions_by_question(path)
    without = set()
    for q in load_exercise(number).questions:
        q.solution()
        shown = capsys.readouterr().out
        if expected.get(q.id):
            text = "\n\n".join(expected[q.id])
            assert shown == f"Solution:\n{text}\n", q.id
        else:
            assert "has no code to write" in shown
            without.add(q.id)
    assert without == {"01": {"q2"}, "04": {"q2", "q4"}}.get(number, set())  # graded from earlier answers


def test_progress_summarises_checked_questions(capsys):
    ex = make_exercise()
    ex.questions[0].check({"answer": 42})
    ex.progress()
    out = capsys.readouterr().out
    assert "2/7 points" in out and "not checked yet" in out


def test_module_names():
    assert module_name("01") == "personalab.checks.ex01"
    assert module_name("ex01") == "personalab.checks.ex01"
    assert module_name("pkg.mod") == "pkg.mod"
    with pytest.raises(ModuleNotFoundError):
        load_exercise("97")
