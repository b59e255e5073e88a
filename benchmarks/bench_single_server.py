"""One local server alone (lessons 01-03 and 06 serve only the base model): 1 thread against all cores.

``server.default_threads`` gives each local server half the cores, because lesson 05 runs two servers at once
(``bench_server_threads.py``). This measures whether a server that runs alone gains from the other half, on
lesson 01's own requests: the held-out requests with and without TaskMaster's prompt, then with the few-shot
prompt (long prompts: prefill-heavy), uncached, once per thread count, in one run. The replies are the same both
times (seeded, temperature 0.2 as lesson 01), so only the time differs. Results go to
``benchmarks/results/single_server.json``.

    python benchmarks/bench_single_server.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import busy_processes  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "single_server.json"


def measure(threads: int) -> dict:
    from personalab import backends, fewshot, persona
    from personalab.steering import compare, heldout_requests

    os.environ["PERSONALAB_SERVER_THREADS"] = str(threads)
    spec = persona.taskmaster()
    requests = heldout_requests()
    row: dict = {"threads": threads, "requests": len(requests)}
    try:
        client, model = backends.client(), backends.default_model()
        compare(requests[:1], {"warm-up": None}, client=client, model=model, progress=False, max_tokens=4)
        for name, prompts in (("plain", {"none": None, "prompt": spec.render()}),
                              ("few-shot", {"few-shot": fewshot.with_examples(spec, 3).render()})):
            t0 = time.perf_counter()
            got = compare(requests, prompts, client=client, model=model, progress=False)
            row[f"{name}_s"] = round(time.perf_counter() - t0, 1)
            row[f"{name}_words"] = sum(len(r.split()) for rs in got.replies.values() for r in rs)
    finally:
        backends.stop_local_servers()
    return row


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    busy = busy_processes()
    cpus = os.cpu_count() or 1
    rows = [measure(t) for t in (1, cpus)]
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": cpus, "load_avg": os.getloadavg()[0], "busy": busy,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "PASSIVE (server_env)"), "rows": rows,
              "ratio_all_over_1": {k: round(rows[1][k] / rows[0][k], 2) for k in ("plain_s", "few-shot_s")}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    tmp.replace(OUT)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
