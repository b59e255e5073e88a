"""Two local servers side by side (lesson 05's base and fine-tuned models), with 1 thread each against 2 each.

Lesson 05 plays its drift conversations against the prompted base (one server) and the fine-tuned and hybrid
targets (a second server) at the same time. This plays the first ``--turns`` turns of the first drift script
against the three targets, uncached, once with every server on 1 thread and once on 2, in one run, and prints the
ratio. The replies are the same both times (seeded sampling), so only the time differs. Needs lesson 04's
fine-tuned model in ``PERSONALAB_HOME``. Results go to ``benchmarks/results/server_threads.json``.

    python benchmarks/bench_server_threads.py [--turns 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import busy_processes  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "server_threads.json"


def measure(threads: int, turns: int) -> dict:
    from personalab import backends, evaluate, persona

    os.environ["PERSONALAB_SERVER_THREADS"] = str(threads)
    try:
        targets = evaluate.course_targets(persona.taskmaster(), overlay="marketing")[:3]
        script = evaluate.load_scripts()[0]
        jobs = [evaluate.Job(t, script.users[:turns], script=script.id, seed=0) for t in targets]
        runner = evaluate.suite_settings(quick=True).runner(cache=None, progress=False)
        t0 = time.perf_counter()
        convs = runner.run(jobs)
        seconds = time.perf_counter() - t0
    finally:
        backends.stop_local_servers()
    words = sum(len(r.split()) for c in convs for r in c.replies)
    return {"threads_per_server": threads, "conversations": len(jobs), "turns": turns, "requests": runner.requests,
            "reply_words": words, "seconds": round(seconds, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--turns", type=int, default=8)
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    busy = busy_processes()
    rows = [measure(threads, a.turns) for threads in (1, 2)]
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0],
              "busy": busy, "rows": rows, "ratio_2_over_1": round(rows[1]["seconds"] / rows[0]["seconds"], 2)}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
