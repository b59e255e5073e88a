"""``personalab run-course``: execute every lesson headless into build/ and say how to open JupyterLab."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run-course", help="execute the lessons headless, in order, into build/lessons/")
    p.add_argument("lessons", nargs="*", help="lesson number prefixes to run (default: all), e.g. 00 01")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..course import run_course

    runs = run_course(args.lessons or None)
    for r in runs:
        status = "FAILED" if r.error else "ok"
        print(f"{status:6} {r.path.name:40} {r.seconds:6.1f}s  -> {r.out}")
    failed = [r for r in runs if r.error]
    if failed:
        print(f"\nStopped at {failed[0].path.name}; the failing cell and its error:\n{failed[0].error}")
        return 1
    print("\nAll lessons ran. Open them interactively with:\n  .venv/bin/jupyter lab lessons/")
    return 0
