"""CPU fine-tuning benchmark (not a test): the lesson-04 preset on the embedded model, offline.

    python benchmarks/bench_finetune_cpu.py [--threads N] [--steps N] [--record]

Trains the CPU preset (PEFT + TRL, LoRA) on lesson 03's offline dataset, measures the persona-marker rate
on the held-out requests without a system prompt before and after, and prints the numbers with the
hardware and the load from other processes (timings on a busy machine are not comparable). ``--record``
writes ``benchmarks/results/finetune_cpu.json`` and appends a row to ``benchmarks/RESULTS.md``.
The course's target: the whole run (setup + training + saving) in at most 60 s on 2 idle cores.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _machine import busy_processes  # noqa: E402  (benchmarks/ is the script's folder)

from personalab import finetune  # noqa: E402
from personalab.embedded import read_build_info  # noqa: E402
from personalab.results import hardware  # noqa: E402

BUDGET_S = 60.0


def append_results(path: Path, row: dict) -> None:
    header = ("\n## Fine-tuning on CPU (`bench_finetune_cpu.py`)\n\n"
              "| date | hardware | threads | steps | setup s | train s | wall s | s/step | tokens/s | peak RSS MB "
              "| loss first → final | marker rate before → after | load avg | other busy processes |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if "## Fine-tuning on CPU" not in text:
        text += header
    m = row["metrics"]
    line = (f"| {row['date']} | {row['hardware']} | {row['threads']} | {m['steps']} | {m['setup_s']:.1f} | "
            f"{m['train_s']:.1f} | {m['wall_s']:.1f} | {m['time_per_step_s']:.3f} | {m['tokens_per_second']:.0f} | "
            f"{m['peak_memory_mb']:.0f} | {row['first_loss']:.2f} → {m['final_loss']:.2f} | "
            f"{row['rate_before']:.2f} → {row['rate_after']:.2f} | {row['load_before']:.1f} | "
            f"{'; '.join(row['busy']) or 'none'} |\n")
    # insert the row after the last row of the CPU table (notes below the table stay below it)
    lines = text.splitlines(keepends=True)
    start = next(i for i, ln in enumerate(lines) if ln.startswith("## Fine-tuning on CPU"))
    last = max(i for i in range(start, len(lines)) if lines[i].startswith("|")
               and all(not lines[j].startswith("## ") for j in range(start + 1, i + 1)))
    lines.insert(last + 1, line)
    path.write_text("".join(lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: the library's choice: all cores when idle, 1 when busy)")
    parser.add_argument("--steps", type=int, default=None, help="max_steps (default: the CPU preset)")
    parser.add_argument("--base", default="embedded", help="base model folder (default: the embedded model)")
    parser.add_argument("--record", action="store_true", help="write the JSON and append to RESULTS.md")
    args = parser.parse_args()

    from personalab.dataset import generate

    busy = busy_processes()
    load_before = os.getloadavg()[0]
    base = finetune.infer.resolve_model_path(args.base)
    train = generate("train", injection_ratio=0.1, progress=False)
    evals = generate("eval", injection_ratio=0.1, progress=False)
    changes: dict = {"base_model": base}
    if args.threads:
        changes["threads"] = args.threads
    if args.steps:
        changes["max_steps"] = args.steps

    with tempfile.TemporaryDirectory() as tmp:
        cfg = finetune.default_config("cpu", output_dir=tmp, **changes)
        before = finetune.persona_eval(base, progress=False)
        result = finetune.train(cfg, train, eval_dataset=evals)
        after = finetune.persona_eval(*result.load(), progress=False)
    m = result.metrics
    row = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "hardware": hardware(),
        "threads": m["torch_threads"],
        "base_model": {k: (read_build_info(base) or {}).get(k) for k in ("builder", "seed", "steps", "params")},
        "metrics": {k: m[k] for k in ("steps", "setup_s", "train_s", "wall_s", "time_per_step_s", "tokens_per_second",
                                      "peak_memory_mb", "final_loss", "trainable_params", "tokens_seen")},
        "first_loss": result.first_loss,
        "eval_loss": result.eval,
        "rate_before": before["rate"],
        "rate_after": after["rate"],
        "heldout": before["n"],
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "busy": busy,
        "config": cfg.to_dict() | {"output_dir": None},
        "versions": m["versions"],
    }
    print(json.dumps(row, indent=1))
    verdict = "within" if m["wall_s"] <= BUDGET_S else "OVER"
    print(f"\nwall {m['wall_s']:.1f} s: {verdict} the {BUDGET_S:.0f} s budget; marker rate {before['rate']:.2f} → "
          f"{after['rate']:.2f}; other busy processes: {', '.join(busy) or 'none'}")
    if args.record:
        out = HERE / "results" / "finetune_cpu.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(row, indent=1) + "\n", encoding="utf-8")
        append_results(HERE / "RESULTS.md", row)
        print("recorded in", out, "and benchmarks/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
