"""``personalab doctor``: print the active profile and what is missing, with the fix for each."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="show the active profile and what is missing")
    p.add_argument("--start-server", action="store_true", help="also start the local server and send one request")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..backends import stop_local_servers
    from ..doctor import report, run_checks

    try:
        checks = run_checks(start_server=args.start_server)
    finally:
        stop_local_servers()
    print(report(checks))
    return 0 if all(c.ok for c in checks) else 1
