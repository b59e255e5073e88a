"""Choosing lesson 04's CPU preset (not a test): variants of it trained one after another, time, memory and quality.

    python benchmarks/bench_cpu_preset.py [--variant '{"max_steps": 24}' ...] [--no-eval] [--record]

Each variant is the CPU preset (``finetune.default_config("cpu")``) with some fields changed, trained by Unsloth
on lesson 03's offline dataset in its own Python process (so the peak RSS is that run's alone), with the torch
threads the lesson would use. Measured per variant: seconds per step, training time, peak RSS while training
(sampled), eval loss before and after, and on the held-out requests without a system prompt the marker, fluent
and task-fact rates of ``finetune.persona_eval`` (48 requests on a CPU). Without ``--variant``: the preset and
the variants the preset was chosen from. ``--record`` adds the rows to ``benchmarks/RESULTS.md``. Run it while
nothing else is busy: the rows record the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["PERSONALAB_FORCE_CPU"] = "1"

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _machine  # noqa: E402  (benchmarks/ is the script's folder)

SECTION = "## Choosing lesson 04's CPU preset (`bench_cpu_preset.py`)"
HEADER = ("| date | hardware | changes to the preset | s/step | train s | peak RSS MB | eval loss | "
          "markers / fluent / task facts | load avg |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
DEFAULT_VARIANTS = ('{}', '{"batch_size": 4, "grad_accum": 2, "max_steps": 30}', '{"batch_size": 4, "grad_accum": 2, '
                    '"max_steps": 22}')


def worker(changes: dict, evaluate: bool) -> dict:
    """Train one variant and measure it (runs in a fresh process)."""
    import psutil

    from personalab import finetune
    from personalab.dataset import generate

    with tempfile.TemporaryDirectory() as out:
        cfg = finetune.default_config("cpu", output_dir=out, **changes)
        finetune.prepare(cfg)
        rss_import = psutil.Process().memory_info().rss / 2**20
        train = generate("train", injection_ratio=0.1, progress=False)
        evals = generate("eval", injection_ratio=0.1, progress=False)
        res = finetune.train(cfg, train, eval_dataset=evals, progress=False)
        m = res.metrics
        rec = {"changes": changes, "rss_after_import_mb": round(rss_import), "train_s": m["train_s"],
               "setup_s": m["setup_s"], "time_per_step_s": m["time_per_step_s"], "peak_memory_mb": m["peak_memory_mb"],
               "final_loss": m["final_loss"], "eval": res.eval, "threads": m.get("torch_threads"),
               "config": {k: v for k, v in cfg.to_dict().items() if k != "output_dir"}}
        if evaluate:
            t = time.perf_counter()
            after = finetune.persona_eval(*res.load(), progress=False, quality=True)
            rec["after"] = {k: after.get(k) for k in ("rate", "n", "fluent_rate", "task_fact_rate",
                                                       "median_perplexity")}
            rec["eval_s"] = round(time.perf_counter() - t, 1)
    return rec


def row(rec: dict, hardware: str, load: str) -> str:
    if "error" in rec:
        return f"| {time.strftime('%Y-%m-%d')} | {hardware} | {rec['backend']} | failed: {rec['error']} | | | | | |\n"
    a = rec.get("after") or {}
    quality = (f"{a['rate']:.0%} / {a['fluent_rate']:.0%} / {a['task_fact_rate']:.0%} ({a['n']} requests)" if a
               else "not measured")
    changes = json.dumps(rec["changes"]) if rec["changes"] else "the preset"
    return (f"| {time.strftime('%Y-%m-%d')} | {hardware} | `{changes}` | {rec['time_per_step_s']:.2f} | "
            f"{rec['train_s']:.0f} | {rec['peak_memory_mb']:.0f} | {rec['eval']['loss_before']:.2f} → "
            f"{rec['eval']['loss_after']:.2f} | {quality} | {load} |\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", help="JSON of the fields to change (repeatable)")
    parser.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation after training")
    parser.add_argument("--record", action="store_true", help="add the rows to benchmarks/RESULTS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _machine.print_result(worker(json.loads(args.worker), not args.no_eval))
        return 0

    from personalab.results import hardware

    hw, rows, failed = hardware(), [], 0
    for variant in args.variant or DEFAULT_VARIANTS:
        json.loads(variant)  # a typo fails here, before minutes of training
        load_before = os.getloadavg()[0]
        cmd = [sys.executable, __file__, "--worker", variant] + (["--no-eval"] if args.no_eval else [])
        rec = _machine.run_worker(cmd, variant)
        failed += "error" in rec
        print(json.dumps(rec, indent=1), flush=True)
        rows.append(row(rec, hw, f"{load_before:.1f}–{os.getloadavg()[0]:.1f}"))
    print("".join(rows))
    if args.record:
        _machine.append_table_rows(HERE / "RESULTS.md", SECTION, HEADER, rows, new_section_first=True)
        print("recorded in benchmarks/RESULTS.md")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
