"""GPU fine-tuning benchmark (not a test): Unsloth vs plain PEFT + TRL, same GPU, data, model and steps.

The GPU twin of ``bench_finetune_cpu.py`` (which compares the same two trainers on a CPU); lesson 04 shows both
records side by side (``personalab.finetune.recorded_comparison``) and marks a machine without one "not yet
measured".

Runs offline (``HF_HUB_OFFLINE=1``) on a local model folder — by default the embedded model, which this
script builds on the spot when it is missing — and the offline lesson-03 dataset. Each backend trains in
its own Python process, because importing Unsloth patches transformers and TRL for the whole process: the
PEFT + TRL baseline must never see it. Both load the base model in 4 bit (QLoRA) with the same optimizer.

    python benchmarks/bench_finetune_gpu.py --check                 # what is installed, is there a GPU?
    python benchmarks/bench_finetune_gpu.py [--model DIR] [--steps 60] [--record]

Measured per backend: setup time, time per step, tokens per second, peak CUDA memory (max allocated),
final loss, eval loss, and the persona-marker rate on the held-out requests without a system prompt.
``--record`` writes ``benchmarks/results/finetune_gpu.json`` and appends a table to ``benchmarks/RESULTS.md``.

A GPU machine without internet needs the wheels brought along. On a machine with internet and the same
Python and CUDA, ``pip download -d wheelhouse 'personalab[colab]' --extra-index-url <torch CUDA index>``
collects them; on the GPU machine ``pip install --no-index --find-links wheelhouse -e '.[colab]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("PERSONALAB_FORCE_CPU", None)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import _machine  # noqa: E402  (benchmarks/ holds the shared helpers)

PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth", "unsloth_zoo",
            "bitsandbytes", "triton", "xformers")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def check() -> int:
    import torch

    v = versions()
    for name, ver in v.items():
        print(f"{name:>14}: {ver or 'MISSING'}")
    cuda = torch.cuda.is_available()
    print("CUDA:", torch.cuda.get_device_name(0) if cuda else "not available",
          "| bf16:", cuda and torch.cuda.is_bf16_supported())
    missing = [n for n in ("unsloth", "unsloth_zoo", "bitsandbytes", "triton") if v[n] is None]
    if missing or not cuda:
        print("not ready:", ", ".join(missing) or "no CUDA GPU")
        return 1
    print("ready")
    return 0


# ------------------------------------------------------------------------------------------- one backend
def worker(backend: str, model: str, steps: int, batch: int, optim: str, lr: float, out_dir: str) -> dict:
    """Train one backend and measure it; runs in a fresh process (see the module docstring)."""
    from personalab import finetune  # imports no ML library: finetune.prepare imports Unsloth first when asked
    from personalab.dataset import generate

    cfg = finetune.default_config("gpu", base_model=model, backend=backend, max_steps=steps, batch_size=batch,
                                  optim=optim, output_dir=out_dir, learning_rate=lr)
    finetune.prepare(cfg)
    train = generate("train", injection_ratio=0.1, progress=False)
    evals = generate("eval", injection_ratio=0.1, progress=False)
    result = finetune.train(cfg, train, eval_dataset=evals)
    t = time.perf_counter()
    after = finetune.persona_eval(*result.load(), progress=False)
    return {"backend": backend, "summary": result.summary(), "losses": result.losses, "eval": result.eval,
            "marker_rate_after": after["rate"], "eval_s": round(time.perf_counter() - t, 2),
            "heldout": after["n"], "config": result.config, "versions": versions()}


def run_worker(backend: str, args: argparse.Namespace, out_dir: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", backend, "--model", args.model, "--steps", str(args.steps),
           "--batch", str(args.batch), "--optim", args.optim, "--lr", str(args.lr), "--out", str(out_dir / backend)]
    return _machine.run_worker(cmd, backend)


def append_results(path: Path, record: dict) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    rows = []
    for r in record["runs"]:
        if "error" in r:
            rows.append(f"| {r['backend']} | failed: {r['error']} | | | | | | | |")
            continue
        s = r["summary"]
        rows.append(f"| {r['backend']} | {s['setup_s']:.1f} | {s['time_per_step_s']:.3f} | {s['tokens_per_second']:.0f}"
                    f" | {s['peak_memory_mb']:.0f} | {s['final_loss']:.3f} | {s['eval_loss_after']:.3f} | "
                    f"{r['marker_rate_after']:.2f} | {s['steps']} |")
    v = record["versions"]
    text += (f"\n## Fine-tuning on GPU: Unsloth vs PEFT + TRL ({record['date']})\n\n"
             f"{record['gpu']}; model `{record['model']}`; {record['steps']} steps, batch {record['batch']}, "
             f"optimizer {record['optim']}, 4-bit base; torch {v['torch']}, transformers {v['transformers']}, "
             f"trl {v['trl']}, peft {v['peft']}, unsloth {v['unsloth']}, bitsandbytes {v['bitsandbytes']}.\n"
             f"Base model marker rate without a system prompt: {record['marker_rate_before']:.2f} "
             f"({record['heldout']} held-out requests).\n\n"
             "| backend | setup s | s/step | tokens/s | peak CUDA MB | final loss | eval loss | marker rate after | "
             "steps |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="list the installed stack and the GPU, then exit")
    parser.add_argument("--model", default="embedded", help="local model folder, or 'embedded' (default)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--optim", default="adamw_8bit", help="the same optimizer for both backends")
    parser.add_argument("--lr", type=float, default=None, help="default: 2e-3 for the embedded model, else 2e-4")
    parser.add_argument("--backends", default="unsloth,peft")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.check:
        return check()
    if args.worker:
        res = worker(args.worker, args.model, args.steps, args.batch, args.optim, args.lr, args.out)
        _machine.print_result(res)
        return 0

    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU: this benchmark needs one (run --check)")
        return 1
    from personalab import finetune

    if args.lr is None:
        args.lr = 2e-3 if args.model == "embedded" else 2e-4
    model = str(finetune.infer.resolve_model_path(args.model))  # builds the embedded model when missing
    before = finetune.persona_eval(model, progress=False)
    torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_worker(b.strip(), argparse.Namespace(**{**vars(args), "model": model}), Path(tmp))
                for b in args.backends.split(",")]
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "gpu": torch.cuda.get_device_name(0),
              "hardware": f"GPU {torch.cuda.get_device_name(0)}", "model": args.model,
              "steps": args.steps, "batch": args.batch, "optim": args.optim, "marker_rate_before": before["rate"],
              "heldout": before["n"], "versions": versions(), "runs": runs}
    print(json.dumps(record, indent=1))
    ok = [r for r in runs if "error" not in r]
    if len(ok) == 2:
        u, p = (next(r for r in ok if r["backend"] == b)["summary"] for b in ("unsloth", "peft"))
        print(f"\nUnsloth vs PEFT + TRL: {p['time_per_step_s'] / u['time_per_step_s']:.2f}x time per step, "
              f"{p['peak_memory_mb'] / u['peak_memory_mb']:.2f}x peak memory (PEFT / Unsloth)")
    if args.record:
        out = HERE / "results" / "finetune_gpu.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        append_results(HERE / "RESULTS.md", record)
        print("recorded in", out, "and benchmarks/RESULTS.md")
    return 0 if len(ok) == len(runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
