"""``personalab run-course``: run every lesson headless into build/, write the report, say how to open JupyterLab."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run-course", help="execute the lessons headless, in order, into build/lessons/; "
                       "write the comparison report to build/report.md and build/report.html")
    p.add_argument("lessons", nargs="*", help="lesson number prefixes to run (default: all), e.g. 00 01")
    p.add_argument("--no-report", action="store_true", help="do not write build/report.md and build/report.html")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..course import run_course

    runs = run_course(args.lessons or None, report=not args.no_report)
    for r in runs:
        status = "FAILED" if r.error else "ok"
        print(f"{status:6} {r.path.name:40} {r.seconds:6.1f}s  -> {r.out}")
    if runs.report_paths:
        print("\nThe comparison report (from every result saved so far):")
        for path in runs.report_paths:
            print(f"  {path}")
    elif runs.report_error:
        print(f"\nThe report could not be written: {runs.report_error}")
    failed = [r for r in runs if r.error]
    if failed:
        print(f"\nStopped at {failed[0].path.name}; the failing cell and its error:\n{failed[0].error}")
        return 1
    print("\nAll lessons ran. Open them interactively with:\n  .venv/bin/jupyter lab lessons/")
    return 0
