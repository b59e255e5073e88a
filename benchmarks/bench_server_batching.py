"""The local server with and without continuous batching, side by side in one run, on the course's base model.

The same N chat requests (TaskMaster's prompt, distinct user messages, greedy, ``--max-tokens`` each) go to
``transformers serve`` twice: once started plain and asked one request at a time (what a plain server can do),
once with ``--continuous-batching`` (the course's default) and asked ``--concurrency`` at a time. Each server is
started fresh; its start-up is not timed. Results go to ``benchmarks/results/server_batching.json``.

    python benchmarks/bench_server_batching.py [--requests 16] [--concurrency 8] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import busy_processes  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "server_batching.json"


def measure(batching: bool, n: int, concurrency: int, max_tokens: int) -> dict:
    import openai

    from personalab import persona
    from personalab.server import LocalServer

    system = persona.taskmaster().render()
    chats = [[{"role": "system", "content": system}, {"role": "user", "content": f"Add a task: call supplier {i} "
                                                                                   f"about order {100 + i}"}]
             for i in range(n)]
    with LocalServer(batching=batching) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", timeout=600)

        def ask(messages: list[dict]) -> int:
            r = client.chat.completions.create(model=server.model, messages=messages, max_tokens=max_tokens,
                                               temperature=0)
            return r.usage.completion_tokens

        ask(chats[0])  # warm-up, not timed
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency if batching else 1) as pool:
            tokens = sum(pool.map(ask, chats))
        seconds = time.perf_counter() - t0
    return {"continuous_batching": batching, "concurrency": concurrency if batching else 1, "requests": n,
            "completion_tokens": tokens, "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=16)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=64)
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from personalab import config
    from personalab.results import hardware

    busy = busy_processes()
    runs = [measure(b, a.requests, a.concurrency, a.max_tokens) for b in (False, True)]
    plain, batched = runs
    result = {"model": config.model_title(config.base_model()), "machine": hardware(),
              "load_average": round(os.getloadavg()[0], 2), "busy_before": busy, "runs": runs,
              "speedup": round(batched["tokens_per_s"] / plain["tokens_per_s"], 2),
              "date": time.strftime("%Y-%m-%d")}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    for r in runs:
        print(f"batching={r['continuous_batching']!s:5} concurrency={r['concurrency']}: {r['requests']} requests, "
              f"{r['completion_tokens']} tokens in {r['seconds']} s = {r['tokens_per_s']} tokens/s")
    print(f"continuous batching: {result['speedup']}x the tokens/s; busy before: {busy or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
