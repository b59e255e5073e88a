"""``personalab data generate | validate | stats | requests``: build, check and analyse the SFT dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate, validate and analyse the persona fine-tuning dataset")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    g = actions.add_parser("generate", help="write chat fine-tuning JSONL from the user requests")
    g.add_argument("--split", choices=["train", "eval", "both"], default="both")
    g.add_argument("--out", type=Path, default=None,
                   help="output file (one split) or folder (both; default: PERSONALAB_HOME/data)")
    g.add_argument("--method", choices=["offline", "teacher"], default="offline",
                   help="offline: deterministic generator (default); teacher: a model through the backend")
    g.add_argument("--system", default="none", help="none (default) | persona | overlay:NAME (hybrid variant)")
    g.add_argument("--injection-ratio", type=float, default=0.1, help="share of prompt-injection examples (0.1)")
    g.add_argument("--persona", type=Path, default=None, help="persona YAML (default: TaskMaster)")
    g.add_argument("--model", default=None, help="teacher model (default: the backend's)")
    g.add_argument("--temperature", type=float, default=0.7)
    g.add_argument("--max-tokens", type=int, default=200)
    g.add_argument("--cache", type=Path, default=None, help="teacher response cache (JSONL)")
    g.add_argument("--on-off-persona", choices=["keep", "offline"], default="keep",
                   help="a teacher reply without any marker: keep it (default) or use the offline reply instead")
    g.add_argument("--no-progress", action="store_true")
    g.set_defaults(func=run_generate)

    v = actions.add_parser("validate", help="check a dataset; exit 1 when it has problems")
    v.add_argument("file", type=Path)
    _common(v)
    v.add_argument("--eval", type=Path, default=None, help="eval dataset that must not leak into FILE")
    v.add_argument("--near-threshold", type=float, default=0.8, help="Jaccard for near duplicates (0.8)")
    v.add_argument("--leak-threshold", type=float, default=0.8, help="Jaccard for train/eval leakage (0.8)")
    v.add_argument("--min-examples", type=int, default=1, help="fewest examples accepted (OpenAI requires 10)")
    v.add_argument("--limit", type=int, default=50, help="problems to print (0: all)")
    v.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    v.set_defaults(func=run_validate)

    s = actions.add_parser("stats", help="token statistics, persona coverage and training cost of a dataset")
    s.add_argument("file", type=Path)
    _common(s)
    s.add_argument("--plot", type=Path, default=None, help="save the token histogram (PNG)")
    s.add_argument("--price-per-1m", type=float, default=None,
                   help="OpenAI training price, USD per 1M tokens (default: from the price table)")
    s.add_argument("--train-model", default="gpt-4o-mini", help="OpenAI model whose training price to use")
    s.add_argument("--epochs", type=int, default=None, help="epochs (default: OpenAI's automatic choice)")
    s.add_argument("--tokens-per-second", type=float, default=None,
                   help="local LoRA training throughput, for the local estimate (lesson 04 measures it)")
    s.add_argument("--gpu-price-per-hour", type=float, default=0.0)
    s.add_argument("--json", type=Path, default=None, help="also write the statistics as JSON")
    s.set_defaults(func=run_stats)

    r = actions.add_parser("requests", help="regenerate data/requests/{train,eval}.jsonl (maintainers)")
    r.set_defaults(func=run_requests)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--persona", default=None, help="persona YAML for the persona checks (default: TaskMaster; 'none')")
    p.add_argument("--max-seq-length", type=int, default=None, help="token limit per example")
    p.add_argument("--tokenizer", default="gpt-4o-mini",
                   help="gpt-4o-mini (default) or another OpenAI model, a checkpoint folder, 'smollm2', a Hub id "
                   "or 'approx'")


def _spec(value: str | Path | None):
    from ..persona import load_persona, taskmaster

    if value is None:
        return taskmaster()
    if str(value).lower() == "none":
        return None
    return load_persona(value)


def run_generate(args: argparse.Namespace) -> int:
    from ..dataset.generation import ResponseCache, Teacher, default_dataset_paths, generate, write_examples

    spec = _spec(args.persona) or _spec(None)
    teacher = None
    if args.method == "teacher":
        teacher = Teacher(model=args.model, temperature=args.temperature, max_tokens=args.max_tokens,
                          **({"cache": ResponseCache(args.cache)} if args.cache else {}))
    splits = ["train", "eval"] if args.split == "both" else [args.split]
    if args.split == "both":
        root = args.out
        paths = default_dataset_paths() if root is None else [root / "train.jsonl", root / "eval.jsonl"]
    else:
        paths = [args.out or default_dataset_paths()._asdict()[args.split]]
    for split, path in zip(splits, paths, strict=True):
        examples = generate(split, spec, method=args.method, system=args.system, injection_ratio=args.injection_ratio,
                            teacher=teacher, on_off_persona=args.on_off_persona, progress=not args.no_progress)
        write_examples(path, examples)
        print(f"wrote {path} ({len(examples)} {split} examples, {args.method})")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from ..dataset.counting import token_counter
    from ..dataset.validate import validate_file
    from ..io import atomic_write_json

    counter = token_counter(args.tokenizer) if args.max_seq_length is not None else None
    report = validate_file(args.file, spec=_spec(args.persona), max_seq_length=args.max_seq_length, counter=counter,
                           eval_path=args.eval, near_threshold=args.near_threshold,
                           leak_threshold=args.leak_threshold, min_examples=args.min_examples)
    print(report.format(limit=args.limit or None))
    if args.json:
        atomic_write_json(args.json, report.to_dict())
    return 0 if report.ok else 1


def run_stats(args: argparse.Namespace) -> int:
    from ..dataset.counting import token_counter
    from ..dataset.stats import (
        lora_run_estimate,
        marker_coverage,
        openai_training_cost,
        plot_token_histogram,
        save_figure,
        token_stats,
        training_price,
    )
    from ..dataset.validate import validate_file
    from ..io import atomic_write_json

    report = validate_file(args.file)  # format checks only: statistics need well-formed examples
    if not report.examples:
        print(report.format(limit=10))
        return 1
    if report.problems:
        print(f"note: {len(report.problems)} problem(s) in the file; statistics cover the "
              f"{report.n_examples} well-formed examples (run `personalab data validate`)", file=sys.stderr)
    spec = _spec(args.persona)
    counter = token_counter(args.tokenizer)
    stats = token_stats(report.examples, counter)
    lengths = stats.pop("lengths")
    out: dict = {"tokens": stats}
    print(f"{stats['n_examples']} examples, tokens per example ({stats['tokenizer']}): min {stats['min']}, "
          f"median {stats['median']}, mean {stats['mean']}, p95 {stats['p95']}, max {stats['max']}; "
          f"total {stats['total_tokens']} ({stats['assistant_share']:.0%} in assistant replies)")
    if args.max_seq_length:
        over = sum(n > args.max_seq_length for n in lengths)
        print(f"{over} example(s) longer than max_seq_length {args.max_seq_length}")
    if spec is not None:
        cov = marker_coverage(report.examples, spec)
        out["persona"] = cov
        print(f"persona markers: {cov['coverage']:.0%} of {cov['assistant_messages']} replies, "
              f"{cov['example_coverage']:.0%} of examples; per marker {cov['per_marker']}; avoided {cov['avoided']}")
    price, source = args.price_per_1m, "--price-per-1m"
    if price is None:
        price, source = training_price(args.train_model) or (None, "")
    if price is not None:
        cost = openai_training_cost(lengths, price, epochs=args.epochs)
        out["openai_training"] = cost | {"model": args.train_model}
        print(f"OpenAI fine-tuning of {args.train_model}: {cost['tokens_per_epoch']} tokens x {cost['epochs']} epochs "
              f"at ${price}/1M = ${cost['cost_usd']:.4f} (price: {source}; tokens: {stats['tokenizer']})")
    else:
        print("OpenAI training cost: pass --price-per-1m (USD per 1M training tokens, from the pricing page)")
    if args.tokens_per_second:
        epochs = out.get("openai_training", {}).get("epochs") or args.epochs or 3
        local = lora_run_estimate(stats["total_tokens"], epochs, tokens_per_second=args.tokens_per_second,
                                  gpu_price_per_hour=args.gpu_price_per_hour)
        out["local_lora"] = local
        print(f"local LoRA run: {local['hours'] * 60:.1f} min at {args.tokens_per_second} tokens/s, "
              f"${local['cost_usd']:.4f} at ${args.gpu_price_per_hour}/h")
    if args.plot:
        fig = plot_token_histogram(lengths, max_seq_length=args.max_seq_length, tokenizer=counter.name)
        save_figure(fig, args.plot, dpi=120)
        print(f"wrote {args.plot}")
    if args.json:
        atomic_write_json(args.json, out)
    return 0


def run_requests(args: argparse.Namespace) -> int:
    from ..dataset.requests import write_requests

    for split, path in write_requests().items():
        n = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        print(f"wrote {path} ({n} {split} requests)")
    return 0
