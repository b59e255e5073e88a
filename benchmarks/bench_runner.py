"""Throughput of the evaluation runner against the local server, sequential versus concurrent (not a test).

    python benchmarks/bench_runner.py [--conversations 12] [--turns 2] [--concurrency 1 2 4]

Every run uses a fresh in-memory cache (nothing is answered from disk) and distinct seeds per run, so each
request really reaches the server. Prints requests per second for each concurrency level; report the
numbers only from a machine nothing else is using (the load average is printed for that reason).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import openai  # noqa: E402

from personalab.cache import ResponseCache  # noqa: E402
from personalab.evaluate import Job, Runner, Target, load_scripts  # noqa: E402
from personalab.persona import taskmaster  # noqa: E402
from personalab.results import hardware  # noqa: E402
from personalab.server import LocalServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=12)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    users = [u for s in load_scripts() for u in s.users]
    with LocalServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local")
        target = Target("prompted", client, server.model, taskmaster().render())
        Runner(cache=None, progress=False, max_tokens=4).run([Job(target, ["warm up"])])
        for run, c in enumerate(args.concurrency):
            jobs = [Job(target, users[i * args.turns:(i + 1) * args.turns], seed=1000 * (run + 1) + i)
                    for i in range(args.conversations)]
            runner = Runner(cache=ResponseCache(None), concurrency=c, max_tokens=args.max_tokens, progress=False)
            t0 = time.perf_counter()
            runner.run(jobs)
            seconds = time.perf_counter() - t0
            print(f"concurrency {c}: {runner.requests} requests in {seconds:.1f} s = "
                  f"{runner.requests / seconds:.2f} requests/s")
    print(f"{hardware()}, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
