"""The outcome of grading: one notebook's report, the CSV gradebook and each student's feedback file."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import Exercise, Result
from ..io import atomic_write_text
from .submissions import Submission

CSV_FIELDS = ("student", "notebook", "exercise", "question", "points", "max", "status", "reason")


@dataclass
class Report:
    """Everything known about one graded notebook."""

    submission: Submission
    results: list[Result]
    cell_errors: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    exercise_title: str = ""

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.results)

    def rows(self, root: Path | None = None) -> list[dict[str, Any]]:
        nb = str(self.submission.path.relative_to(root) if root else self.submission.path)
        return [
            {"student": self.submission.student, "notebook": nb, "exercise": self.submission.exercise or "",
             "question": r.question, "points": f"{r.points:g}", "max": f"{r.max_points:g}", "status": r.status,
             "reason": r.reason}
            for r in self.results
        ]


def all_zero(exercise: Exercise, status: str, reason: str) -> list[Result]:
    return [Result(q.id, 0.0, float(q.points), status, reason) for q in exercise.questions]


def gradebook_csv(reports: Sequence[Report], root: Path | None = None) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for rep in reports:
        writer.writerows(rep.rows(root))
    return buf.getvalue()


def feedback_markdown(student: str, reports: Sequence[Report]) -> str:
    """The feedback file of one student: score, each question's verdict, and the cells that raised."""
    pts, top = sum(r.points for r in reports), sum(r.max_points for r in reports)
    lines = [f"# Feedback for {student}", "", f"**Total: {pts:g} / {top:g} points**", ""]
    for rep in reports:
        title = f"Exercise {rep.submission.exercise}" + (f": {rep.exercise_title}" if rep.exercise_title else "")
        lines += [f"## {title} ({rep.submission.path.name})", "", f"{rep.points:g} / {rep.max_points:g} points", "",
                  "| question | points | verdict |", "| --- | --- | --- |"]
        for r in rep.results:
            reason = r.reason.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r.question} | {r.points:g} / {r.max_points:g} | {r.status}: {reason} |")
        lines.append("")
        lines += [f"- Note: {n}" for n in rep.notes]
        if rep.cell_errors:
            lines += ["Cells that raised an error when the notebook was run top to bottom:", ""]
            for e in rep.cell_errors:
                label = e.get("label") or f"cell {e['cell'] + 1}"
                lines.append(f"- {label}: `{e['ename']}: {e['evalue'][:150]}`")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "student"


def write_outputs(reports: Sequence[Report], out: str | Path, *, root: Path | None = None,
                  feedback_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write the CSV gradebook and one Markdown feedback file per student (atomically). Returns both paths."""
    out = Path(out)
    atomic_write_text(out, gradebook_csv(reports, root))
    fb = Path(feedback_dir) if feedback_dir else out.parent / f"{out.stem}_feedback"
    by_student: dict[str, list[Report]] = {}
    for rep in reports:
        by_student.setdefault(rep.submission.student, []).append(rep)
    for student, reps in by_student.items():
        atomic_write_text(fb / f"{_slug(student)}.md", feedback_markdown(student, reps))
    return out, fb
