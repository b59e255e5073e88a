"""The student release and the hidden cases: no solutions (unless asked for), no grader material, hints on."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat

from grader.ex03 import HIDDEN
from personalab import release
from personalab.checks import load_exercise
from personalab.config import REPO_ROOT
from personalab.dataset.exercise import FIX_CASES


def _show_in(release_dir, code: str) -> str:
    """What ``code`` prints when run from inside a release folder (its own copy of the package)."""
    shown = subprocess.run([sys.executable, "-c", "from personalab.checks import load_exercise; " + code],
                           cwd=release_dir, capture_output=True, text=True,
                           env={"PYTHONPATH": str(release_dir), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert shown.returncode == 0, shown.stderr[-500:]
    return shown.stdout


def test_release_leaves_out_solutions_and_grader(tmp_path):
    out = release.build(tmp_path / "class")
    assert {p.name for p in out.iterdir()} >= {"lessons", "exercises", "data", "personalab"}
    assert not any((out / d).exists() for d in ("solutions", "notebooks_src", "grader", "tests"))
    assert release.leaks(out) == []
    shown = _show_in(out, "q = load_exercise('01').questions[0]; q.hint(); q.solution()")
    assert "Hint:" in shown and "model solutions are not part of this release" in shown
    assert "Never use more than one exclamation mark" not in shown  # the model persona stays with the instructor
    (out / "solutions").mkdir()
    assert release.leaks(out) == ["solutions/ is in the release"]


def test_release_with_solutions_ships_them(tmp_path):
    out = release.build(tmp_path / "class", solutions=True)
    assert sorted(p.name for p in (out / "solutions").glob("*.ipynb")) == \
        sorted(p.name for p in (REPO_ROOT / "solutions").glob("*.ipynb"))
    assert not any((out / d).exists() for d in ("notebooks_src", "grader", "tests"))
    assert release.leaks(out, solutions=True) == []
    assert release.leaks(out)[0] == "solutions/ is in the release"  # (and the solution lines in it)
    shown = _show_in(out, "load_exercise('01').questions[2].solution()")
    assert shown == "Solution:\nmy_prompt = spec.render()\n"


def test_release_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    try:
        release.build(tmp_path / "x")
    except Exception as exc:  # noqa: BLE001
        assert "not empty" in str(exc)
    else:
        raise AssertionError("expected an error")


def _solution_fix_example():
    nb = nbformat.read(REPO_ROOT / "solutions" / "03_persona_dataset.ipynb", as_version=4)
    src = next(c.source for c in nb.cells if "def fix_example" in c.source).split("print(fix_example")[0]
    ns: dict = {}
    exec(src, ns)  # noqa: S102 - the course's own solution
    return ns


def test_hidden_cases_score_the_function_not_a_lookup_table():
    q = load_exercise("03").questions[0]
    hidden = HIDDEN["q1"]
    ns = _solution_fix_example()

    def grade(namespace):
        values = json.loads(json.dumps(q.export(namespace, hidden.inputs)))
        return q.grade(values, check_fn=hidden.check)

    assert grade(ns).status == "correct"
    table = {json.dumps(c, sort_keys=True): ns["fix_example"](c) for _, c, _ in FIX_CASES}
    lookup = {"fix_example": lambda c: table.get(json.dumps(c, sort_keys=True))}
    assert q.grade(json.loads(json.dumps(q.export(lookup)))).status == "correct"  # passes the public check
    assert grade(lookup).points == 0  # and earns nothing on the hidden cases
    assert not {json.dumps(c, sort_keys=True) for c in hidden.inputs} & set(table)
