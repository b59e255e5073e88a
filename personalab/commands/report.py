"""``personalab report``: write the comparison report from the results saved so far (no lesson is run)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write build/report.md and build/report.html from the saved results")
    p.add_argument("--out", type=Path, default=None, help="folder to write into (default: build/)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..course import BUILD_DIR
    from ..report import build

    rep = build()
    paths = rep.write(args.out or BUILD_DIR)
    if rep.missing_lessons:
        print(f"missing results: run lesson(s) {', '.join(rep.missing_lessons)} to fill every cell")
    for path in paths:
        print(f"wrote {path}")
    return 0
