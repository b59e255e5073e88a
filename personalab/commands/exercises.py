"""``personalab exercises build|check``: generate exercises/ from solutions/, or fail when it is stale."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exercises", help="generate exercises/ from solutions/ (solution regions removed)")
    p.add_argument("action", choices=["build", "check"], help="build: write them; check: fail if any is stale")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import exercises

    if args.action == "check":
        stale = exercises.stale()
        for path in stale:
            print(f"stale: {path} (run `personalab exercises build`)")
        return 1 if stale else 0
    for path in exercises.build():
        print(f"wrote {path}")
    return 0
