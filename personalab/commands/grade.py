"""``personalab grade SUBMISSIONS_DIR --out grades.csv``: grade a folder of submitted exercise notebooks."""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grade",
        help="run submitted exercise notebooks headless and write a CSV gradebook plus feedback files",
        description="Layout: SUBMISSIONS_DIR/STUDENT.ipynb, or SUBMISSIONS_DIR/STUDENT/NN_name.ipynb (one folder "
        "per student; the folder is the notebook's working directory). The exercise comes from the NN_ prefix "
        "of the file name, the notebook's metadata, or --exercise.",
    )
    p.add_argument("submissions", help="folder of submitted notebooks")
    p.add_argument("--out", default="grades.csv", help="CSV gradebook to write (default: grades.csv)")
    p.add_argument("--feedback", default=None, help="folder for one Markdown file per student "
                   "(default: OUT's name + _feedback, next to it)")
    p.add_argument("--exercise", default=None, help="exercise number (01) when file names do not start with it")
    p.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="notebooks run in parallel (default: half the CPU cores)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds one cell may run (default: 160; 1200 for exercise 04)")
    p.add_argument("--notebook-timeout", type=float, default=None,
                   help="seconds one whole notebook may run (default: from the cell limit and the cell count)")
    p.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                   help="run each submission in a bubblewrap sandbox: own HOME, no network, memory and process "
                   "limits, every process killed at the end (auto: when bwrap works here, else warn and run without)")
    p.add_argument("--memory", type=int, default=None, metavar="MB",
                   help="memory limit of one submission in the sandbox (default: 8192)")
    p.add_argument("--max-processes", type=int, default=None, metavar="N",
                   help="processes and threads one submission may run in the sandbox (default: 256)")
    p.add_argument("--rerun", action="append", default=None, metavar="STUDENT",
                   help="grade only this student again (repeatable); the other rows of --out are kept")
    p.add_argument("--no-server", action="store_true",
                   help="do not start the local model server (use OPENAI_BASE_URL, or grade without a model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import grading, sandbox

    limits = sandbox.Limits(memory_mb=args.memory or sandbox.DEFAULT_MEMORY_MB,
                            processes=args.max_processes or sandbox.DEFAULT_PROCESSES)
    isolation = grading.resolve_isolation(args.sandbox, limits=limits)
    reports = grading.grade_folder(
        args.submissions,
        args.out,
        exercise=args.exercise,
        jobs=args.jobs,
        cell_timeout=args.timeout,
        notebook_timeout=args.notebook_timeout,
        server=not args.no_server,
        feedback_dir=args.feedback,
        isolation=isolation,
        rerun=args.rerun,
    )
    by_student: dict[str, list[float]] = {}
    for rep in reports:
        pts = by_student.setdefault(rep.submission.student, [0.0, 0.0])
        pts[0] += rep.points
        pts[1] += rep.max_points
    width = max(len(s) for s in by_student)
    for student, (got, top) in by_student.items():
        print(f"{student:<{width}}  {got:g} / {top:g}")
    summary = grading.summary_path(args.out)
    print(summary.read_text(encoding="utf-8"))
    what = (f"regraded {', '.join(args.rerun)}" if args.rerun
            else f"{len(reports)} notebooks, {len(by_student)} students")
    print(f"wrote {args.out} ({what}) and {summary}")
    return 0
