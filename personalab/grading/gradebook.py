"""The outcome of grading: one notebook's report, the CSV gradebook, each student's feedback file and the class
summary (per question: mean, full marks, the most common reason for lost points; runs that ended early)."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checks import Exercise, Result
from ..io import atomic_write_text
from .submissions import Submission

CSV_FIELDS = ("student", "notebook", "exercise", "question", "points", "max", "status", "reason", "run")
#: Words in a report's notes that mean the notebook did not run to its end.
_EARLY = ("time limit", "timed out", "did not stop", "kernel died", "memory", "worker failed", "could not be run",
          "grading step failed")


@dataclass
class Report:
    """Everything known about one graded notebook."""

    submission: Submission
    results: list[Result]
    cell_errors: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    exercise_title: str = ""
    #: the submission cell that ran longest, {"label", "seconds"} (None when the notebook did not run)
    slowest_cell: dict[str, Any] | None = None
    #: how long each submission cell ran, [{"label", "seconds"}] (where the notebook's time went)
    cell_seconds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.results)

    @property
    def ended_early(self) -> str:
        """Why the run did not go through every cell ("" when it did): the time limit, a crash, memory."""
        for note in self.notes:
            if any(word in note for word in _EARLY):
                return note
        timeouts = [e for e in self.cell_errors if e.get("ename") == "Timeout"]
        if timeouts:
            e = timeouts[0]
            label = e.get("label") or f"cell {e['cell'] + 1}"
            limit = e.get("limit_s")
            return f"{label} timed out" + (f" after {limit:g} s" if isinstance(limit, (int, float)) else "")
        return ""

    def rows(self, root: Path | None = None) -> list[dict[str, Any]]:
        nb = str(self.submission.path.relative_to(root) if root else self.submission.path)
        return [
            {"student": self.submission.student, "notebook": nb, "exercise": self.submission.exercise or "",
             "question": r.question, "points": f"{r.points:g}", "max": f"{r.max_points:g}", "status": r.status,
             "reason": r.reason, "run": self.ended_early or "complete"}
            for r in self.results
        ]


def all_zero(exercise: Exercise, status: str, reason: str) -> list[Result]:
    return [Result(q.id, 0.0, float(q.points), status, reason) for q in exercise.questions]


def gradebook_csv(reports: Sequence[Report], root: Path | None = None) -> str:
    return rows_csv([row for rep in reports for row in rep.rows(root)])


def rows_csv(rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def read_gradebook(path: Path) -> list[dict[str, str]]:
    """The rows of a gradebook CSV written by :func:`write_outputs` (older files without ``run``: "complete")."""
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    missing = {"student", "question", "points", "max", "status"} - set(rows[0] if rows else CSV_FIELDS)
    if missing:
        from ..errors import InputError

        raise InputError(f"not a gradebook: no column {', '.join(sorted(missing))}", path=path,
                         fix="pass the CSV that `personalab grade` wrote (--out)")
    for row in rows:
        row.setdefault("run", "complete")
    return rows


def _reason_kind(reason: str) -> str:
    """A reason with the learner's own values blanked, so that the same mistake counts once across the class."""
    return re.sub(r"`[^`]*`|\b\d+(\.\d+)?\b", "…", reason).strip()[:160]


def class_summary(rows: Sequence[dict[str, str]]) -> dict[str, Any]:
    """Per question across the class: graded notebooks, mean and full marks, the statuses, and the most common
    reason for lost points (with an example); plus every notebook whose run ended early."""
    questions: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        questions.setdefault((row.get("exercise", ""), row["question"]), []).append(row)
    per_question = []
    for (exercise, question), rs in sorted(questions.items()):
        top = max(float(r["max"]) for r in rs)
        points = [float(r["points"]) for r in rs]
        lost = [r for r in rs if float(r["points"]) < float(r["max"])]
        kinds = Counter(f"{r['status']}: {_reason_kind(r['reason'])}" for r in lost)
        common, count = kinds.most_common(1)[0] if kinds else ("", 0)
        example = next((f"{r['status']}: {r['reason']}" for r in lost
                        if f"{r['status']}: {_reason_kind(r['reason'])}" == common), "")
        per_question.append({
            "exercise": exercise, "question": question, "n": len(rs), "max": top,
            "mean": sum(points) / len(points), "full_marks": sum(p >= top for p in points),
            "statuses": dict(Counter(r["status"] for r in rs)),
            "common_loss": example, "common_loss_count": count,
        })
    early: dict[tuple[str, str], str] = {}
    for row in rows:
        if row.get("run", "complete") != "complete":
            early.setdefault((row["student"], row.get("notebook", "")), row["run"])
    flagged = [{"student": s, "notebook": nb, "why": why} for (s, nb), why in early.items()]
    return {"questions": per_question, "ended_early": flagged,
            "students": len({r["student"] for r in rows}), "notebooks": len({(r["student"], r.get("notebook"))
                                                                              for r in rows})}


def summary_markdown(summary: dict[str, Any]) -> str:
    """The class summary as Markdown: one row per question, then the runs that ended early."""
    lines = ["# Class summary", "", f"{summary['notebooks']} notebooks from {summary['students']} students.", "",
             "| exercise | question | graded | mean | full marks | most common reason for lost points |",
             "| --- | --- | --- | --- | --- | --- |"]
    for q in summary["questions"]:
        loss = q["common_loss"].replace("|", "\\|").replace("\n", " ")[:200]
        loss = f"{q['common_loss_count']}×: {loss}" if loss else "none lost"
        lines.append(f"| {q['exercise']} | {q['question']} | {q['n']} | {q['mean']:.2f} / {q['max']:g} | "
                     f"{q['full_marks']} of {q['n']} | {loss} |")
    lines += ["", "## Runs that ended early", ""]
    if summary["ended_early"]:
        lines += ["Their lost points may be the clock's or the machine's, not the learner's: look at these first "
                  "(`personalab grade ... --rerun STUDENT` grades one learner again).", ""]
        lines += [f"- {e['student']} ({e['notebook']}): {e['why']}" for e in summary["ended_early"]]
    else:
        lines.append("None: every notebook ran to its end.")
    return "\n".join(lines) + "\n"


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
                  feedback_dir: str | Path | None = None, merge: bool = False) -> tuple[Path, Path]:
    """Write the CSV gradebook, one Markdown feedback file per student and the class summary
    (``OUT_summary.md``), each atomically. ``merge``: keep the rows of the students not in ``reports`` from the
    existing gradebook (a regrade of some students). Returns the gradebook and feedback paths."""
    out = Path(out)
    rows = [row for rep in reports for row in rep.rows(root)]
    if merge and out.exists():
        regraded = {rep.submission.student for rep in reports}
        kept = [r for r in read_gradebook(out) if r["student"] not in regraded]
        rows = sorted(kept + rows, key=lambda r: r["student"])  # find_submissions' order: by student
    atomic_write_text(out, rows_csv(rows))
    atomic_write_text(summary_path(out), summary_markdown(class_summary(rows)))
    fb = Path(feedback_dir) if feedback_dir else out.parent / f"{out.stem}_feedback"
    by_student: dict[str, list[Report]] = {}
    for rep in reports:
        by_student.setdefault(rep.submission.student, []).append(rep)
    for student, reps in by_student.items():
        atomic_write_text(fb / f"{_slug(student)}.md", feedback_markdown(student, reps))
    return out, fb


def summary_path(out: str | Path) -> Path:
    """Where the class summary of gradebook ``out`` goes: ``OUT_summary.md`` next to it."""
    out = Path(out)
    return out.parent / f"{out.stem}_summary.md"
