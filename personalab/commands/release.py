"""``personalab release OUT_DIR``: write the student release (no solutions, no hidden grader cases)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "release",
        help="write what a class receives: lessons, exercises, data and the package, without solutions/ or "
        "the grader's hidden cases",
        description="The release leaves out solutions/, notebooks_src/, grader/, tests/, benchmarks/ and docs/. "
        "Without solutions/, q1.solution() says that model solutions are not part of the release (hints stay); "
        "--with-solutions ships solutions/.",
    )
    p.add_argument("out", help="folder to write (must not exist yet, or be empty; outside the repository)")
    p.add_argument("--with-solutions", action="store_true",
                   help="ship solutions/ too (the model solutions that q1.solution() shows)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import release

    out = release.build(args.out, solutions=args.with_solutions)
    print(f"wrote the student release to {out} "
          f"({'with' if args.with_solutions else 'without'} solutions/, which q.solution() shows; no grader/)")
    return 0
