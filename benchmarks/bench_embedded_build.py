"""Time a full build of the embedded model (not a test): ``python benchmarks/bench_embedded_build.py``."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from personalab.embedded.build import DEFAULT_STEPS, build, read_build_info  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = build(Path(tmp) / "embedded", seed=args.seed, steps=args.steps, progress=True)
        seconds = time.perf_counter() - t0
        info = read_build_info(path) or {}
    print(f"build: {seconds:.1f} s, steps: {args.steps}, params: {info.get('params'):,}")
    print(f"final loss: {info.get('final_loss')}")
    print(f"cpu cores visible: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
