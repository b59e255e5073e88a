"""The express notebook: generated from its source, the course's header, one section per lesson in order, and
the Colab simulation runs it, then lessons 01-06; run-course and the nbval suite leave it out."""

from __future__ import annotations

import json
import re
import sys

from personalab.authoring import notebooks
from personalab.config import REPO_ROOT
from personalab.course import LESSONS_DIR

EXPRESS = REPO_ROOT / "express" / "express.ipynb"
SOURCE = REPO_ROOT / "notebooks_src" / "express" / "express.py"
#: What each lesson's section must call: the lesson's own measuring calls.
CALLS = {
    "01": ("compare(", 'results.save("01", "steering"'),
    "02": ("tokens.persona_overhead(", "latency.measure(", 'results.save("02", "costs"'),
    "03": ("generate(", "validate_examples(", 'results.save("03", "dataset"'),
    "04": ("finetune.persona_eval(", "finetune.train(", 'results.save("04", "training"'),
    "05": ("evaluate.suite_settings()", "evaluate.run_drift(", "evaluate.run_attacks(", "evaluate.save_results("),
    "06": ("report.measure_prompt_change(", "hybrid.evaluate_hybrid(", "report.build(", "matrix.write("),
}


def _cells() -> list[dict]:
    return json.loads(EXPRESS.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_express_notebook_is_built_from_its_source():
    assert SOURCE.exists() and EXPRESS.exists()
    assert notebooks.targets()[EXPRESS] == EXPRESS.read_text(encoding="utf-8"), "run `personalab notebooks build`"


def test_express_notebook_has_its_own_badge_and_the_setup_cell():
    badge, setup = _cells()[:2]
    assert "colab-badge.svg" in _source(badge)
    assert "/blob/main/express/express.ipynb" in _source(badge)
    assert "setup" in setup["metadata"]["tags"]
    assert _source(setup) == notebooks.SETUP_CELL.format(slug=notebooks.REPO_SLUG)


def test_express_notebook_has_every_lesson_section_in_order_with_its_calls():
    cells = _cells()
    heads = [(i, m.group(1)) for i, c in enumerate(cells) if c["cell_type"] == "markdown"
             for m in [re.search(r"^## \d\. .*\(lesson (\d\d)\)", _source(c), re.M)] if m]
    assert [lesson for _, lesson in heads] == list(CALLS)
    bounds = [i for i, _ in heads] + [len(cells)]
    for (start, lesson), end in zip(heads, bounds[1:], strict=True):
        code = "\n".join(_source(c) for c in cells[start:end] if c["cell_type"] == "code")
        for call in CALLS[lesson]:
            assert call in code, f"lesson {lesson}'s section does not call {call}"
    before = "\n".join(_source(c) for c in cells[: heads[0][0]])
    assert 'request_budget("colab-gpu")' in before, "the T4 estimate comes first, from the request budget"
    report_cells = "\n".join(_source(c) for c in cells[heads[-1][0]:])
    assert "to_html()" in report_cells and "plot_vs_article(" in report_cells


def test_express_notebook_is_not_a_lesson_of_run_course():
    assert EXPRESS.name not in {p.name for p in LESSONS_DIR.glob("*.ipynb")}
    assert EXPRESS.parent != LESSONS_DIR


def test_colab_simulation_runs_the_express_notebook_and_builds_the_cost_explorer(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tools"))
    sys.modules.pop("colab_sim", None)
    import colab_sim

    assert colab_sim.EXPRESS in colab_sim.NOTEBOOKS and (REPO_ROOT / colab_sim.EXPRESS).exists()
    (tmp_path / "express").mkdir()
    (tmp_path / colab_sim.EXPRESS).write_text(EXPRESS.read_text(encoding="utf-8"), encoding="utf-8")
    colab_sim.write_widget_check(tmp_path)
    check = json.loads((tmp_path / colab_sim.WIDGET_CHECK).read_text(encoding="utf-8"))
    assert [_source(c) for c in check["cells"][:2]] == [_source(c) for c in _cells()[:2]]
    assert "widgets.explorer(" in _source(check["cells"][2])
    check["cells"][2]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["trainer: ", "unsloth\n"]},
                                    {"output_type": "execute_result", "data": {"text/plain": "wrote report.html"}}]
    (tmp_path / "run.ipynb").write_text(json.dumps(check), encoding="utf-8")
    assert colab_sim.notebook_text(tmp_path / "run.ipynb") == "trainer: unsloth\nwrote report.html"


def test_colab_simulation_runs_every_lesson_in_order_after_the_express_notebook(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tools"))
    sys.modules.pop("colab_sim", None)
    import colab_sim

    lessons = sorted(p.relative_to(REPO_ROOT).as_posix() for p in LESSONS_DIR.glob("*.ipynb"))
    assert lessons[0].startswith("lessons/00_"), "lesson 00 runs first, on its own: its setup cell installs"
    assert colab_sim.LESSONS == lessons[1:]
    order = colab_sim.NOTEBOOKS
    assert order[0] == colab_sim.EXPRESS, "the express notebook runs where nothing has been measured yet"
    assert order[-len(lessons[1:]):] == lessons[1:], "then lessons 01-06, in order"
    assert set(colab_sim.EXPECTED) <= set(order), "every notebook whose output is checked runs"
