"""Record the learning curve lesson 04 shows: one LoRA run per training-set size, evaluated without a prompt.

Each run uses the profile's preset (on a CPU: SmolLM2-135M-Instruct, 24 steps of 8 conversations at 1.5e-3) on the
first N conversations of a fixed shuffle of lesson 03's training split, then answers the held-out requests with no
system prompt; the marker, fluent and task-fact counts go to ``benchmarks/results/learning_curve.json`` with the
hardware and date. Needs lesson 03's dataset in ``PERSONALAB_HOME``. About 3-4 minutes a run on 2 cores.

    python benchmarks/bench_learning_curve.py [--sizes 25 50 100 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None)
    p.add_argument("--out", default=None, help="where to write the curve (default: the recorded one lesson 04 reads)")
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from personalab import finetune, learning_curve

    finetune.prepare()  # Unsloth first
    t0 = time.perf_counter()
    curve = learning_curve.measure(a.sizes or learning_curve.DEFAULT_SIZES)
    path = curve.save(a.out or learning_curve.RECORDED)
    print(curve.summary())
    print(f"{len(curve.points)} runs in {time.perf_counter() - t0:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
