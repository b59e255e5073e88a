"""Exercise notebooks are generated from the solutions: markers, removed cells, cleared outputs, staleness."""

from __future__ import annotations

import nbformat
import pytest

from personalab.authoring import exercises
from personalab.authoring.layout import SOLUTIONS_DIR, colab_badge, exercise_number
from personalab.authoring.regions import question_regions
from personalab.errors import InputError


def test_strip_keeps_indentation_and_code_around_regions():
    src = (
        "x = 1\ndef f(a):\n    ### BEGIN SOLUTION\n    b = a * 2\n    return b\n    ### END SOLUTION\n\n"
        "### BEGIN SOLUTION\ny = 3\n### END SOLUTION\nprint(x)"
    )
    out, replaced = exercises.strip_solutions(src)
    assert replaced
    assert out == (
        'x = 1\ndef f(a):\n    raise NotImplementedError("your code here")\n\n'
        'raise NotImplementedError("your code here")\nprint(x)'
    )
    compile(out, "<exercise>", "exec")  # still valid Python
    assert exercises.strip_solutions("a = 1") == ("a = 1", False)
    md, _ = exercises.strip_solutions("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION", markdown=True)
    assert md == "Why?\n*Write your answer here.*"


@pytest.mark.parametrize(
    ("src", "line", "what"),
    [
        ("### BEGIN SOLUTION\nx = 1", None, "never closed"),
        ("x = 1\n### END SOLUTION", 2, "without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", 2, "nested"),
    ],
)
def test_unbalanced_markers_name_the_line(src, line, what):
    with pytest.raises(InputError, match=what) as err:
        exercises.strip_solutions(src, where="solutions/01_x.ipynb, cell 3")
    assert err.value.line == line
    assert "cell 3" in str(err.value)


def test_each_region_belongs_to_the_next_check_call():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\nq1.check()"),
        nbformat.v4.new_markdown_cell("### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        nbformat.v4.new_code_cell("# q2.check()\n### BEGIN SOLUTION\nx = 2\n### END SOLUTION"),
        nbformat.v4.new_code_cell("q2.check()\nq3.check()"),
        nbformat.v4.new_code_cell("### BEGIN SOLUTION\nafter = 'the last check'\n### END SOLUTION"),
    ]
    assert question_regions(nb) == {"q1": ["    return 1"], "q2": ["Because.", "x = 2"], "q3": []}


def solution_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(colab_badge("solutions", "07_demo.ipynb")),
        nbformat.v4.new_code_cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", outputs=[], execution_count=3),
        nbformat.v4.new_code_cell("print('instructor only')", metadata={"tags": ["instructor"]}),
        nbformat.v4.new_markdown_cell("hidden note", metadata={"tags": ["hidden"]}),
        nbformat.v4.new_code_cell("q1.check()", metadata={"tags": ["llm"]}),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="secret output")]
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i:02d}"
    return nb


def test_render_removes_solutions_and_instructor_cells():
    sol = solution_notebook()
    ex = exercises.render(sol, "07_demo.ipynb")
    assert [c.source for c in ex.cells] == [
        colab_badge("exercises", "07_demo.ipynb"),
        'raise NotImplementedError("your code here")',
        "q1.check()",
    ]
    assert ex.cells[1].outputs == [] and ex.cells[1].execution_count is None
    assert ex.cells[1].metadata["tags"] == ["exercise"]
    assert ex.cells[2].metadata["tags"] == ["llm"]
    assert ex.metadata["personalab"] == {"exercise": "07", "generated_from": "solutions/07_demo.ipynb"}
    assert "answer = 42" in sol.cells[1].source  # the input is untouched


def test_build_is_deterministic_and_stale_detects_edits(tmp_path):
    sol_dir, ex_dir = tmp_path / "solutions", tmp_path / "exercises"
    sol_dir.mkdir()
    nbformat.write(solution_notebook(), sol_dir / "07_demo.ipynb")
    assert exercises.stale(sol_dir, ex_dir) == [ex_dir / "07_demo.ipynb"]
    assert exercises.build(sol_dir, ex_dir) == [ex_dir / "07_demo.ipynb"]
    first = (ex_dir / "07_demo.ipynb").read_text()
    assert exercises.build(sol_dir, ex_dir) == []  # nothing changed
    assert exercises.stale(sol_dir, ex_dir) == []
    assert (ex_dir / "07_demo.ipynb").read_text() == first
    nb = solution_notebook()
    nb.cells[4].source = "q1.check()\nq1.hint()"
    nbformat.write(nb, sol_dir / "07_demo.ipynb")
    assert exercises.stale(sol_dir, ex_dir) == [ex_dir / "07_demo.ipynb"]
    (ex_dir / "08_orphan.ipynb").write_text("{}")
    assert ex_dir / "08_orphan.ipynb" in exercises.stale(sol_dir, ex_dir)
    exercises.build(sol_dir, ex_dir)
    assert exercises.stale(sol_dir, ex_dir) == []
    assert not (ex_dir / "08_orphan.ipynb").exists()


def test_repository_exercises_are_up_to_date():
    assert exercises.stale() == [], "run `personalab notebooks build` (or `personalab exercises build`)"


@pytest.mark.parametrize("path", sorted(SOLUTIONS_DIR.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_every_solution_defines_what_its_checks_read(path):
    """Each numbered solution has a checks module, and every variable a question reads is assigned in it."""
    from personalab.checks import load_exercise
    from personalab.grading import defined_names

    ex = load_exercise(exercise_number(path))
    assert ex.questions and len({q.id for q in ex.questions}) == len(ex.questions)
    nb = nbformat.read(path, as_version=4)
    bound = set().union(*(defined_names(c.source) for c in nb.cells if c.cell_type == "code"))
    for q in ex.questions:
        assert set(q.names) <= bound, f"{q.id} reads {set(q.names) - bound}, which {path.name} never assigns"
        assert q.points > 0 and q.title
