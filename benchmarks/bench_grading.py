"""Grading a class on the real base model (not a test): how long, and does every model solution get full marks?

    python benchmarks/bench_grading.py [--exercises 05] [--copies 2] [--jobs 2] [--timeout S] [--record]

Builds a class folder of ``--copies`` learners, each handing in the model solution of every exercise in
``--exercises`` with the instructor-only cells removed (as a learner's notebook would be), and grades it with
``personalab grade``'s own code: the sandbox where bubblewrap works, the local server on the CPU base, the
default per-exercise cell limits unless ``--timeout``. What some exercises need once for the whole class
(exercise 05: lesson 04's fine-tuned model and the suites' replies, :mod:`personalab.grading.assets`) is prepared
first and timed on its own. Measured: the preparation, the grading wall time, each notebook's seconds, and which
questions lost points (a model solution must lose none). ``--record`` adds a row to ``benchmarks/RESULTS.md``.
Run it while nothing else is busy: the row records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _machine  # noqa: E402  (benchmarks/ is the script's folder)

SECTION = "## Grading a class on the real base (`bench_grading.py`)"
HEADER = ("| date | hardware | class | jobs | sandbox | prepare s | grading s | s per notebook (max) | full marks "
          "| load avg |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")


def learner_copy(solution: Path) -> str:
    """The model solution as a learner would hand it in: instructor-only and hidden cells removed."""
    import nbformat

    nb = nbformat.read(solution, as_version=4)
    nb.cells = [c for c in nb.cells if not {"instructor", "hidden"} & set(c.metadata.get("tags", []))]
    return nbformat.writes(nb)


def own_requests(text: str, exercise: str, learner: int) -> str:
    """Learner ``learner``'s copy of ``text``. In exercise 01 every learner asks requests of their own (the model
    solution's, each tagged with the learner's table number) with a persona of their own name, as in a real class:
    the grader's reply cache (:mod:`personalab.grading.replycache`) cannot answer one learner from another's
    replies."""
    import nbformat

    if exercise != "01":
        return text
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        if "my_requests = [" in cell.source and "### END SOLUTION" in cell.source:
            cell.source = cell.source.replace(
                "### END SOLUTION", f"my_requests = [f\"{{r}} (table {learner + 1})\" for r in my_requests]\n"
                "### END SOLUTION")
        if "my_persona = \"\"\"" in cell.source:
            cell.source = cell.source.replace("name: Sous", f"name: Sous {learner + 1}")
    return nbformat.writes(nb)


def build_class(root: Path, exercises: list[str], copies: int, adapter: Path | None = None) -> int:
    """``copies`` learner folders; exercise 04's learners also hand in ``adapter`` as ``adapter/``."""
    import shutil

    from personalab.config import REPO_ROOT

    n = 0
    for number in exercises:
        [solution] = sorted((REPO_ROOT / "solutions").glob(f"{number}_*.ipynb"))
        text = learner_copy(solution)
        for i in range(copies):
            folder = root / f"learner{i + 1:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / solution.name).write_text(own_requests(text, number, i), encoding="utf-8")
            if number == "04" and adapter is not None:
                shutil.copytree(adapter, folder / "adapter", dirs_exist_ok=True)
            n += 1
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exercises", default="05", help="comma-separated exercise numbers (default 05)")
    parser.add_argument("--copies", type=int, default=2, help="learners, each handing in every exercise")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=None, help="cell limit (default: per exercise)")
    parser.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "none"))
    parser.add_argument("--adapter", type=Path, default=None,
                        help="exercise 04: the LoRA adapter every learner hands in (default: lesson 04's, "
                             "PERSONALAB_HOME/runs/finetune/adapter)")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()

    from personalab import grading
    from personalab.grading import assets
    from personalab.results import hardware

    exercises = [e.strip() for e in args.exercises.split(",") if e.strip()]
    isolation = grading.resolve_isolation(args.sandbox)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        root = Path(tmp) / "class"
        adapter = args.adapter
        if "04" in exercises and adapter is None:
            from personalab.finetune.config import default_output_dir

            adapter = default_output_dir() / "adapter"
        if adapter is not None and not (adapter / "adapter_model.safetensors").exists():
            parser.error(f"no adapter in {adapter}: run lesson 04 first or pass --adapter")
        n = build_class(root, exercises, args.copies, adapter)
        t = time.monotonic()
        prepared = assets.prepare(set(exercises))
        prepare_s = time.monotonic() - t
        t = time.monotonic()
        reports = grading.grade_folder(root, Path(tmp) / "grades.csv", jobs=args.jobs, cell_timeout=args.timeout,
                                       isolation=isolation, assets=prepared)
        grading_s = time.monotonic() - t
    lost = [(r.submission.student, r.submission.exercise, q.question, q.status, q.reason[:160])
            for r in reports for q in r.results if q.points < q.max_points]
    per = [r.seconds for r in reports]
    by_exercise: dict[str, list[float]] = {}
    slowest: dict[str, dict] = {}
    for r in reports:
        ex = r.submission.exercise or "?"
        by_exercise.setdefault(ex, []).append(r.seconds)
        if r.slowest_cell and r.slowest_cell["seconds"] > slowest.get(ex, {}).get("seconds", -1):
            slowest[ex] = r.slowest_cell
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "hardware": hardware(), "exercises": exercises,
              "copies": args.copies, "notebooks": n, "jobs": args.jobs, "sandbox": isolation.mode,
              "prepare_s": round(prepare_s, 1), "grading_s": round(grading_s, 1),
              "per_notebook_s": [round(s, 1) for s in per], "lost": lost, "load_before": load,
              "load_after": os.getloadavg()[0],
              "notes": sorted({note for r in reports for note in r.notes}),
              "per_exercise_s": {ex: [round(min(v)), round(max(v))] for ex, v in sorted(by_exercise.items())},
              # what the per-exercise cell limits are calibrated on (personalab.grading.run.EXERCISE_CELL_TIMEOUT)
              "slowest_cell": slowest,
              # where each notebook's time went, cell by cell (cells over 1 s)
              "cells": {f"{r.submission.student}/{r.submission.exercise}": [c for c in r.cell_seconds
                                                                            if c["seconds"] >= 1]
                        for r in reports}}
    print(json.dumps(record, indent=1))
    full = sum(1 for r in reports if r.points == r.max_points)
    adapted = f", 04 with the adapter {adapter}" if adapter is not None else ""
    row = (f"| {time.strftime('%Y-%m-%d')} | {record['hardware']} | {args.copies} learners × exercise(s) "
           f"{', '.join(exercises)} ({n} notebooks, model solutions{adapted}) | {args.jobs} | {isolation.mode} | "
           f"{prepare_s:.0f} | {grading_s:.0f} | {sum(per) / len(per):.0f} ({max(per):.0f}); by exercise, min–max: "
           + ", ".join(f"{ex} {lo}–{hi}" for ex, (lo, hi) in record["per_exercise_s"].items())
           + "; slowest cell: " + ", ".join(f"{ex} {c['seconds']:g} s" for ex, c in sorted(slowest.items()))
           + f" | {full} of {n} | "
           f"{load:.1f}–{record['load_after']:.1f} |\n")
    print(row)
    if args.record:
        _machine.append_table_rows(HERE / "RESULTS.md", SECTION, HEADER, [row], new_section_first=True)
        print("recorded in benchmarks/RESULTS.md")
    return 0 if not lost else 1


if __name__ == "__main__":
    raise SystemExit(main())
