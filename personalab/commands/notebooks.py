"""``personalab notebooks build``: regenerate lessons/, solutions/ and exercises/ from notebooks_src/."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notebooks", help="regenerate the course notebooks from notebooks_src/")
    p.add_argument("action", choices=["build", "check"], help="build: write them; check: fail if any is stale")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import notebooks

    if args.action == "check":
        stale = notebooks.stale()
        for path in stale:
            print(f"stale: {path} (run `personalab notebooks build`)")
        return 1 if stale else 0
    for path in notebooks.build():
        print(f"wrote {path}")
    return 0
