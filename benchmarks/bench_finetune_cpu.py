"""CPU fine-tuning benchmark (not a test): Unsloth vs plain PEFT + TRL, side by side in one run.

    python benchmarks/bench_finetune_cpu.py [--threads 1] [--steps N] [--backends unsloth,peft] [--record]

Both backends train lesson 04's CPU preset (SmolLM2-135M-Instruct, float32, LoRA on every linear layer) on the same
offline lesson-03 dataset, with the same steps, batch, seed and torch threads. Each trains in its own Python
process, because importing Unsloth patches transformers and TRL for the whole process: the PEFT + TRL baseline
must never see it. Measured per backend: setup and training time, seconds per step, tokens per second, peak RSS
of the process, first and final loss, eval loss, and the persona-marker rate on the held-out requests without a
system prompt after training (the base model's rate is measured once, before). The hardware and the load from
other processes are recorded with the numbers (timings on a busy machine are not comparable).

``--record`` writes ``benchmarks/results/finetune_cpu.json`` (read by lesson 04) and adds the rows to the table
in ``benchmarks/RESULTS.md``.
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
from _machine import busy_processes  # noqa: E402

SECTION = "## Fine-tuning on CPU: Unsloth vs PEFT + TRL (`bench_finetune_cpu.py`)"
HEADER = ("| date | hardware | backend | threads | steps | setup s | train s | s/step | tokens/s | peak RSS MB "
          "| loss first → final | eval loss after | marker rate before → after | load avg | other busy processes |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")


# ------------------------------------------------------------------------------------------- one backend
def worker(backend: str, steps: int | None, threads: int, out_dir: str) -> dict:
    """Train one backend and measure it; runs in a fresh process (see the module docstring)."""
    from personalab import finetune  # imports no ML library: prepare() imports Unsloth first when asked
    from personalab.dataset import generate

    changes = {"backend": backend, "threads": threads, "output_dir": out_dir}
    if steps:
        changes["max_steps"] = steps
    cfg = finetune.default_config("cpu", **changes)
    finetune.prepare(cfg)
    train = generate("train", injection_ratio=0.1, progress=False)
    evals = generate("eval", injection_ratio=0.1, progress=False)
    result = finetune.train(cfg, train, eval_dataset=evals, progress=False)
    t = time.perf_counter()
    after = finetune.persona_eval(*result.load(), progress=False)
    m = result.metrics
    keep = ("steps", "setup_s", "train_s", "wall_s", "time_per_step_s", "tokens_per_second", "peak_memory_mb",
            "final_loss", "trainable_params", "tokens_seen", "dtype", "load_in_4bit", "torch_threads",
            "labels_checked", "labels_compared", "merged_by", "merged_dtype")
    return {"backend": backend, "metrics": {k: m.get(k) for k in keep}, "first_loss": result.first_loss,
            "losses": result.losses, "eval": result.eval, "marker_rate_after": after["rate"],
            "eval_s": round(time.perf_counter() - t, 2), "heldout": after["n"], "config": result.config | {
                "output_dir": None}, "versions": m["versions"]}


def run_worker(backend: str, args: argparse.Namespace, out_dir: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", backend, "--threads", str(args.threads), "--out", str(out_dir)]
    if args.steps:
        cmd += ["--steps", str(args.steps)]
    return _machine.run_worker(cmd, backend)


# ------------------------------------------------------------------------------------------- recording
def table_rows(record: dict) -> list[str]:
    rows = []
    load = f"{record['load_before']:.1f}–{record['load_after']:.1f}"
    busy = "; ".join(record["busy"]) or "none"
    for r in record["runs"]:
        if "error" in r:
            rows.append(f"| {record['date']} | {record['hardware']} | {r['backend']} | failed: {r['error']} "
                        "| | | | | | | | | | | |\n")
            continue
        m = r["metrics"]
        rows.append(f"| {record['date']} | {record['hardware']} | {r['backend']} | {m['torch_threads']} | "
                    f"{m['steps']} | {m['setup_s']:.1f} | {m['train_s']:.1f} | {m['time_per_step_s']:.3f} | "
                    f"{m['tokens_per_second']:.0f} | {m['peak_memory_mb']:.0f} | "
                    f"{r['first_loss']:.3f} → {m['final_loss']:.3f} | {r['eval']['loss_after']:.3f} | "
                    f"{record['marker_rate_before']:.2f} → {r['marker_rate_after']:.2f} | {load} | {busy} |\n")
    return rows


def append_results(path: Path, record: dict) -> None:
    """Add the run's rows at the end of the side-by-side table (created after the older sections if missing)."""
    _machine.append_table_rows(path, SECTION, HEADER, table_rows(record), new_section_first=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both backends (default 1: on a shared 2-core machine two threads "
                        "wait on each other; the same number for both is what makes the rows comparable)")
    parser.add_argument("--steps", type=int, default=None, help="max_steps (default: the CPU preset's)")
    parser.add_argument("--backends", default="unsloth,peft")
    parser.add_argument("--record", action="store_true", help="write the JSON and add the rows to RESULTS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        _machine.print_result(worker(args.worker, args.steps, args.threads, args.out))
        return 0

    from personalab import config, finetune, models
    from personalab.results import hardware

    busy = busy_processes()
    load_before = os.getloadavg()[0]
    base = str(finetune.infer.resolve_model_path(config.base_model("cpu")))
    before = finetune.persona_eval(base, progress=False, quality=False)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_worker(b.strip(), args, Path(tmp) / b.strip()) for b in args.backends.split(",")]
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "hardware": hardware(),
        "threads": args.threads,
        "base_model": {k: models.describe(config.base_model("cpu")).get(k) for k in ("model", "parameters")},
        "marker_rate_before": before["rate"],
        "heldout": before["n"],
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "busy": busy,
        "runs": runs,
    }
    print(json.dumps(record, indent=1))
    ok = {r["backend"]: r for r in runs if "error" not in r}
    if {"unsloth", "peft"} <= set(ok):
        u, p = ok["unsloth"]["metrics"], ok["peft"]["metrics"]
        print(f"\nUnsloth vs PEFT + TRL on {record['hardware']}, {args.threads} thread(s): "
              f"{u['time_per_step_s']:.3f} vs {p['time_per_step_s']:.3f} s/step, "
              f"{u['peak_memory_mb']:.0f} vs {p['peak_memory_mb']:.0f} MB peak RSS, final loss "
              f"{u['final_loss']:.3f} vs {p['final_loss']:.3f}, marker rate after "
              f"{ok['unsloth']['marker_rate_after']:.2f} vs {ok['peft']['marker_rate_after']:.2f}; "
              f"other busy processes: {', '.join(busy) or 'none'}")
    if args.record:
        out = HERE / "results" / "finetune_cpu.json"
        out.parent.mkdir(exist_ok=True)
        tmp_out = out.with_suffix(".json.tmp")
        tmp_out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp_out, out)
        append_results(HERE / "RESULTS.md", record)
        print("recorded in", out, "and benchmarks/RESULTS.md")
    return 0 if len(ok) == len(runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
