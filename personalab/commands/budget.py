"""``personalab budget``: the course's completions, training steps, tokens and estimated time on a profile."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from ..config import PROFILES

    p = sub.add_parser(
        "budget",
        help="requests, training steps, tokens and estimated minutes of every lesson on a profile",
        description="Counts what each lesson sends under the profile's settings and converts it to time with the "
                    "profile's stated rates (measured on a CPU; assumptions on a T4 until one is measured).",
    )
    p.add_argument("--profile", choices=PROFILES, default=None, help="profile to budget (default: the active one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..budget import request_budget

    print(request_budget(args.profile).table())
    return 0
