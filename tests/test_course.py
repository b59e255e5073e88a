"""personalab.course: lessons run in order, the run stops at the first failing cell, the report is written."""

from __future__ import annotations

import nbformat
import pytest

from personalab import course
from personalab.cli import main

pytestmark = pytest.mark.slow


def notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def course_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # no server is started for these notebooks
    monkeypatch.setenv("PERSONALAB_RESULTS", str(tmp_path / "results"))
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    notebook(lessons / "00_ok.ipynb", "from personalab import results\n"
             "results.save('02', 'tokens', {'persona_added_tokens': 174, 'model': 'gpt-4o-mini'}, model='gpt-4o-mini')")
    notebook(lessons / "01_fails.ipynb", "x = 1", "raise ValueError('lesson cell broke')", "y = 2")
    notebook(lessons / "02_never.ipynb", "open('ran', 'w').write('yes')")
    return tmp_path


def test_stops_at_the_first_failing_cell_and_writes_the_report(course_dir):
    runs = course.run_course(lessons_dir=course_dir / "lessons", out_dir=course_dir / "build" / "lessons")
    assert [r.path.name for r in runs] == ["00_ok.ipynb", "01_fails.ipynb"]
    assert runs[0].error is None and "lesson cell broke" in runs[1].error
    assert (course_dir / "build" / "lessons" / "01_fails.ipynb").exists()  # written even though it failed
    assert not (course_dir / "lessons" / "ran").exists()
    md, html = runs.report_paths
    assert md == course_dir / "build" / "report.md" and html.exists()
    text = md.read_text()
    assert "`02/tokens`" in text and "run lesson 05 first" in text


def test_each_lesson_kernel_is_shut_down_when_its_lesson_ends(course_dir, monkeypatch):
    managers = []
    make = course.local_kernel_manager
    monkeypatch.setattr(course, "local_kernel_manager", lambda d: managers.append(make(d)) or managers[-1])
    runs = course.run_course(["00", "01"], lessons_dir=course_dir / "lessons", out_dir=course_dir / "b",
                             report=False)
    assert len(runs) == len(managers) == 2 and "lesson cell broke" in runs[1].error
    assert not any(km.has_kernel for km in managers)  # the failed lesson's kernel too


def test_selected_lessons_and_no_report(course_dir):
    runs = course.run_course(["00"], lessons_dir=course_dir / "lessons", out_dir=course_dir / "b" / "lessons",
                             report=False)
    assert [r.path.name for r in runs] == ["00_ok.ipynb"] and runs.report_paths == ()
    assert not (course_dir / "b" / "report.md").exists()


def test_report_command(course_dir, capsys):
    assert main(["report", "--out", str(course_dir / "out")]) == 0
    out = capsys.readouterr().out
    assert "missing results: run lesson(s) 02, 04, 05, 06" in out
    assert (course_dir / "out" / "report.md").exists() and (course_dir / "out" / "report.html").exists()


@pytest.mark.parametrize("exc, says", [
    ("CellTimeoutError", "00_ok.ipynb: a cell ran longer than 7 s"),
    ("DeadKernelError", "00_ok.ipynb: the kernel died"),
])
def test_every_way_a_run_ends_early_is_named_and_the_report_still_written(course_dir, monkeypatch, exc, says):
    import nbclient.exceptions as nbe

    def fail(self, *a, **k):
        raise getattr(nbe, exc)("stopped")

    monkeypatch.setattr(course.NotebookClient, "execute", fail)
    runs = course.run_course(["00"], lessons_dir=course_dir / "lessons", out_dir=course_dir / "build" / "lessons",
                             timeout=7)
    assert says in runs[0].error
    assert runs.report_paths and runs.report_paths[0].exists()


def test_cell_limits_come_from_the_profile():
    assert course.cell_timeout("cpu") < course.cell_timeout("colab-gpu")
