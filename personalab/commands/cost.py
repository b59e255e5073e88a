"""``personalab cost``: price a persona as a system prompt against a fine-tuned model, and find the break-even."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cost",
        help="monthly cost of a persona: system prompt vs fine-tuned, with the break-even volume",
        description="Counts the persona's tokens exactly (tiktoken, offline) and prices it with data/pricing.yaml.",
    )
    p.add_argument("--persona", default=None, help="persona spec YAML (default: TaskMaster)")
    p.add_argument("--persona-tokens", type=float, default=None, help="use this many prompt tokens instead")
    p.add_argument("--model", default="gpt-4o-mini", help="model in the price table (default: gpt-4o-mini)")
    p.add_argument("--requests", type=float, default=500_000, help="requests per month (default: 500000)")
    p.add_argument("--turns", type=int, default=1, help="turns per conversation (default: 1)")
    p.add_argument("--user-tokens", type=float, default=50, help="tokens per user message (default: 50)")
    p.add_argument("--response-tokens", type=float, default=200, help="tokens per reply (default: 200)")
    p.add_argument("--cache", action="store_true", help="apply prompt caching (1024+ token prompts)")
    p.add_argument("--multiplier", type=float, default=None, help="fine-tuned price = this x base (default: table)")
    p.add_argument("--overlay", default=None, help="hybrid: the fine-tuned model still gets this overlay prompt")
    p.add_argument("--training-tokens", type=float, default=0, help="tokens in the training file (one-time cost)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (default: 3)")
    p.add_argument("--months", type=float, default=12, help="spread one-time costs over this many months")
    p.add_argument("--prices", default=None, help="price table YAML (default: data/pricing.yaml)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import costs, tokens
    from ..errors import InputError
    from ..persona import PERSONAS_DIR, load_overlay, load_persona, render_overlay

    checks = (
        ("--requests", args.requests, False),
        ("--turns", args.turns, False),
        ("--epochs", args.epochs, False),
        ("--months", args.months, False),
        ("--user-tokens", args.user_tokens, True),
        ("--response-tokens", args.response_tokens, True),
        ("--persona-tokens", args.persona_tokens, True),
        ("--training-tokens", args.training_tokens, True),
        ("--multiplier", args.multiplier, False),
    )
    for flag, value, zero_ok in checks:
        if value is None or (value >= 0 if zero_ok else value > 0):
            continue
        bound = ">= 0" if zero_ok else "> 0"
        raise InputError(f"{flag} must be {bound}, got {value:g}", path="command line", field=flag,
                         fix=f"pass a number {bound}, e.g. {flag} {0 if zero_ok else 1}")
    prices = costs.load_prices(args.prices)
    price = prices.price(args.model)  # unknown model: InputError naming the table
    if args.cache and price.cached_input is None:
        raise InputError(f"--cache: {args.model} has no cached-input price in the table", path=prices.path,
                         field=f"{args.model}.cached_input",
                         fix="drop --cache, pick a model with a cached_input price, or add one to the table")
    persona_path = args.persona or str(PERSONAS_DIR / "taskmaster.yaml")
    count_model, note = args.model, "exact"
    if not tokens.is_openai_model(args.model):
        count_model, note = "gpt-4o", "approximate: o200k_base, the model's own tokenizer is unknown"
    if args.persona_tokens is not None:
        persona_tokens, spec_name = args.persona_tokens, "given"
    else:
        spec = load_persona(persona_path)
        persona_tokens = tokens.persona_overhead(spec.render(), model=count_model)["added_prompt_tokens"]
        spec_name = f"{spec.name} ({persona_path})"
    ft_prompt = 0.0
    if args.overlay:
        ft_prompt = tokens.persona_overhead(render_overlay(load_overlay(args.overlay)), model=count_model)[
            "added_prompt_tokens"
        ]
    scenario = costs.Scenario(
        model=args.model,
        requests_per_month=args.requests,
        persona_tokens=persona_tokens,
        user_tokens=args.user_tokens,
        response_tokens=args.response_tokens,
        turns=args.turns,
        caching=args.cache,
        finetuned_multiplier=args.multiplier,
        finetuned_prompt_tokens=ft_prompt,
        training_tokens=args.training_tokens,
        epochs=args.epochs,
        months=args.months,
    )
    # Everything is computed (and validated) before the first line is printed.
    cmp = costs.compare(scenario, prices)
    base, ft = prices.rates(args.model), prices.rates(args.model, finetuned=True, multiplier=args.multiplier)
    p_star = costs.persona_break_even_tokens(scenario.workload, base, ft, caching=costs.Caching(enabled=args.cache))
    table = format_table(cmp)
    print(f"persona:  {spec_name}: {persona_tokens:g} tokens added to every request ({args.model}, {note})")
    if args.overlay:
        print(f"hybrid:   the fine-tuned model still gets overlay '{args.overlay}': {ft_prompt:g} tokens")
    print(f"prices:   {args.model} from {prices.path} ({price.source}; dated {price.date}) - check they are current")
    print(
        f"workload: {args.requests:,.0f} requests/month, {args.turns} turn(s) per conversation, "
        f"user {args.user_tokens:g} + reply {args.response_tokens:g} tokens, caching {'on' if args.cache else 'off'}"
    )
    print()
    print(table)
    print()
    for b in cmp.break_evens:
        print(f"break-even: {b.reason}")
    if p_star is None:
        print("per request, fine-tuning is never cheaper here, whatever the persona's length")
    else:
        print(f"per request, fine-tuning is cheaper once the persona exceeds {p_star:,.0f} tokens", end=" ")
        print(f"(yours: {persona_tokens:g})")
    return 0


def format_table(cmp) -> str:  # noqa: ANN001 - costs.Comparison, imported lazily
    from ..costs import fmt_usd

    months = cmp.scenario.months
    head = ("plan", "per request", "per month", "one-time", f"per month incl. one-time ({months:g} mo)")
    rows = [
        (
            r["plan"],
            f"${fmt_usd(r['per_request_usd'])}",
            f"${fmt_usd(r['running_monthly_usd'])}",
            f"${fmt_usd(r['one_time_usd'])}",
            f"${fmt_usd(r['monthly_incl_one_time_usd'])}",
        )
        for r in cmp.rows()
    ]
    widths = [max(len(str(x[i])) for x in (head, *rows)) for i in range(len(head))]

    def line(cells) -> str:  # noqa: ANN001
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)])
