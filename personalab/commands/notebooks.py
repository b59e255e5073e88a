"""``personalab notebooks build|check`` (lessons/, solutions/, then exercises/, from notebooks_src/) and
``personalab exercises build|check`` (exercises/ from solutions/): write the generated notebooks, or exit
with status 1 when one is stale."""

from __future__ import annotations

import argparse

#: command -> its help
COMMANDS = {
    "notebooks": "regenerate the course notebooks from notebooks_src/ (lessons, solutions, then exercises)",
    "exercises": "generate exercises/ from solutions/ (solution regions removed)",
}


def register(sub: argparse._SubParsersAction) -> None:
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("action", choices=["build", "check"], help="build: write them; check: fail if any is stale")
        p.set_defaults(func=run, generated=name)


def run(args: argparse.Namespace) -> int:
    from .. import authoring
    from ..authoring import exercises

    generator = {"notebooks": authoring, "exercises": exercises}[args.generated]
    if args.action == "check":
        stale = generator.stale()
        for path in stale:
            print(f"stale: {path} (run `personalab {args.generated} build`)")
        return 1 if stale else 0
    for path in generator.build():
        print(f"wrote {path}")
    return 0
