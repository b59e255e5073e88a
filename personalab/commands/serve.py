"""``personalab serve``: run the local OpenAI-compatible server in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a local model on 127.0.0.1 (OpenAI-compatible)")
    p.add_argument("model_dir", nargs="?", help="checkpoint folder (default: the profile's base model)")
    p.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for generation")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..server import LocalServer

    with LocalServer(args.model_dir, port=args.port, threads=args.threads) as server:
        print(f"serving {server.model}\n  OPENAI_BASE_URL={server.base_url}\n  PERSONALAB_MODEL={server.model}")
        print("Ctrl-C stops it.", flush=True)
        try:
            while server.running:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        if not server.running:
            print(server.log_tail())
            return 1
    return 0
