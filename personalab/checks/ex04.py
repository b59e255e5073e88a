"""Checks for exercise 04: choose LoRA hyperparameters that move the persona into the weights.

The learner's run is graded from plain data only: the exported config, the exported :class:`TrainResult`
(losses and metrics) and the replies of two persona evaluations. The checks recompute the marker rates
from the replies and compare the requests with the held-out split themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ..persona import has_marker, taskmaster
from . import Credit, Exercise, Incorrect, expect_keys, expect_type

EXERCISE = Exercise("04", "Fine-tune the persona into the weights")

#: Training budget: conversations seen by the optimizer (steps x batch size x gradient accumulation).
MAX_EXAMPLES_SEEN = 2400
#: Sensible learning rates by base model: the CPU base trains for a few dozen steps, so it needs a larger one.
LR_RANGES = {"smollm2": (2e-4, 3e-3), "other": (2e-5, 2e-3)}
R_RANGE = (4, 64)
SCALE_RANGE = (0.5, 4.0)  # lora_alpha / r
#: The loss must fall by at least this share (start: mean of the first 10% of steps; end: last 10%).
MIN_LOSS_DROP = 0.25
#: Marker-rate gain (after - before, held-out requests, no system prompt) for full and partial credit.
FULL_GAIN, PARTIAL_GAIN = 0.5, 0.2
#: Still a working assistant: the share of fluent replies and of replies that keep the task's name and date must
#: stay at least this high (and no more than ``MAX_DROP`` below the base model's own rates).
MIN_FLUENT, MIN_FACTS, MAX_DROP = 0.8, 0.5, 0.15


def floor(base_rate: float, minimum: float) -> float:
    """What the fine-tuned rate must reach: ``minimum``, or ``MAX_DROP`` below the base model's own rate when the
    base itself is below it (a persona may not make the model worse than it was)."""
    return min(minimum, base_rate - MAX_DROP)


def _config(value: Any, name: str = "my_config") -> Mapping[str, Any]:
    return expect_keys(value, ["base_model", "r", "lora_alpha", "learning_rate", "max_steps", "batch_size",
                               "grad_accum"], name)


def examples_seen(cfg: Mapping[str, Any]) -> int:
    return int(cfg["max_steps"] or 0) * int(cfg["batch_size"]) * int(cfg["grad_accum"])


def config_problems(cfg: Mapping[str, Any]) -> list[str]:
    """What is wrong with a config for this exercise (empty: fine)."""
    out = []
    r, alpha, lr = cfg["r"], cfg["lora_alpha"], cfg["learning_rate"]
    if not isinstance(r, int) or not R_RANGE[0] <= r <= R_RANGE[1]:
        out.append(f"r={r!r}: pick a rank from {R_RANGE[0]} to {R_RANGE[1]} (a larger rank adds parameters, "
                   "not much quality, for a style like a persona)")
    elif not SCALE_RANGE[0] <= alpha / r <= SCALE_RANGE[1]:
        out.append(f"lora_alpha/r = {alpha / r:g}: the update is scaled by lora_alpha/r; keep it between "
                   f"{SCALE_RANGE[0]:g} and {SCALE_RANGE[1]:g} (lora_alpha = r or 2*r is usual)")
    kind = "smollm2" if cfg["base_model"] == "smollm2" else "other"
    lo, hi = LR_RANGES[kind]
    if not isinstance(lr, (int, float)) or not lo <= lr <= hi:
        model = "a short CPU run on SmolLM2-135M" if kind == "smollm2" else "a pretrained instruct model"
        out.append(f"learning_rate={lr!r}: for {model} use {lo:g} to {hi:g}")
    if not cfg["max_steps"]:
        out.append("set max_steps (a whole number): the run must fit the budget")
    elif examples_seen(cfg) > MAX_EXAMPLES_SEEN:
        out.append(f"max_steps x batch_size x grad_accum = {examples_seen(cfg)} conversations; the budget is "
                   f"{MAX_EXAMPLES_SEEN}")
    return out


@EXERCISE.question(
    "Choose LoRA hyperparameters",
    names=["my_config"],
    points=1,
    hints=[
        "Start from the preset: `finetune.default_config(r=..., lora_alpha=..., learning_rate=..., max_steps=...)`.",
        "r sets the size of the update, lora_alpha/r scales it; the learning rate matters most: a short CPU run on "
        "SmolLM2-135M needs about 1e-3 to 2e-3, a 0.5B model on a GPU about 1e-4 to 2e-4.",
    ],
)
def q1(my_config: Any) -> str:
    cfg = _config(my_config)
    problems = config_problems(cfg)
    if problems:
        raise Incorrect("; ".join(problems))
    return (f"r={cfg['r']}, scale {cfg['lora_alpha'] / cfg['r']:g}, learning rate {cfg['learning_rate']:g}, "
            f"{examples_seen(cfg)} conversations seen")


def _tenth_means(losses: list[float]) -> tuple[float, float]:
    k = max(1, len(losses) // 10)
    return sum(losses[:k]) / k, sum(losses[-k:]) / k


@EXERCISE.question(
    "It trains and the loss falls",
    names=["my_config", "my_result"],
    points=2,
    hints=[
        "Run `my_result = finetune.train(my_config, train_path)` after the config cell (re-run it after every "
        "change to `my_config`).",
        "A loss that hardly moves means the learning rate is too small or the run too short; one that turns NaN "
        "or jumps up means the learning rate is too large.",
    ],
)
def q2(my_config: Any, my_result: Any) -> str:
    cfg = _config(my_config)
    res = expect_keys(my_result, ["config", "metrics", "losses"], "my_result")
    used = res["config"]
    changed = [k for k in ("r", "lora_alpha", "learning_rate", "max_steps", "batch_size", "grad_accum")
               if used.get(k) != cfg[k]]
    if changed:
        raise Incorrect(f"`my_result` was trained with other settings than `my_config` ({', '.join(changed)}): "
                        "run the training cell again")
    losses = res["losses"]
    expect_type(losses, list, "my_result.losses")
    if not losses or any(not isinstance(x, (int, float)) or not math.isfinite(x) for x in losses):
        raise Incorrect("the training loss is missing or not finite (NaN/inf): lower the learning rate")
    steps = res["metrics"].get("steps")
    if steps != cfg["max_steps"]:
        raise Incorrect(f"the run stopped after {steps} of {cfg['max_steps']} steps")
    start, end = _tenth_means(losses)
    return loss_verdict(start, end, what=f"{steps} steps, loss")


def loss_verdict(start: float, end: float, *, what: str = "loss") -> str:
    """The loss must fall by :data:`MIN_LOSS_DROP` from ``start`` to ``end`` (half credit for any fall)."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise Incorrect(f"{what}: not finite (NaN/inf): lower the learning rate")
    drop = (start - end) / start if start > 0 else 0.0
    if drop < MIN_LOSS_DROP:
        raise Incorrect(f"{what} fell by {drop:.0%} (from {start:.3f} to {end:.3f}); it should fall by at least "
                        f"{MIN_LOSS_DROP:.0%}: raise the learning rate or train longer", credit=0.5 if drop > 0 else 0)
    return f"{what} {start:.3f} → {end:.3f} ({drop:.0%} lower)"


def _eval(value: Any, name: str, prompts: list[str]) -> float:
    ev = expect_keys(value, ["requests", "replies", "system_prompt"], name)
    if ev["system_prompt"]:
        raise Incorrect(f"`{name}` was measured with a system prompt; the point is the persona WITHOUT one")
    if list(ev["requests"]) != prompts:
        raise Incorrect(f"`{name}` does not answer the held-out requests: use finetune.persona_eval(...) with its "
                        "default requests")
    replies = ev["replies"]
    if not isinstance(replies, list) or len(replies) != len(prompts):
        raise Incorrect(f"`{name}` should have one reply per held-out request ({len(prompts)})")
    spec = taskmaster()
    return sum(has_marker(str(r), spec) for r in replies) / len(replies)


@EXERCISE.question(
    "The persona moved into the weights",
    names=["before", "after"],
    points=3,
    needs_model=True,
    hints=[
        "`after = finetune.persona_eval(*my_result.load(), label='fine-tuned')` answers the held-out requests "
        "with your fine-tuned model and no system prompt.",
        f"The marker rate must rise by at least {FULL_GAIN:.0%} points. Too little? Train longer or with a larger "
        "learning rate (within the budget of q1).",
    ],
)
def q3(before: Any, after: Any) -> Credit | str:
    from ..finetune.infer import held_out_prompts

    prompts = held_out_prompts()
    _eval(before, "before", prompts)
    _eval(after, "after", prompts)
    return marker_verdict([str(r) for r in before["replies"]], [str(r) for r in after["replies"]])


def marker_verdict(before: list[str], after: list[str]) -> Credit | str:
    """q3 on two lists of replies to the same held-out requests (base model, fine-tuned), no system prompt."""
    spec = taskmaster()
    rb, ra = (sum(has_marker(r, spec) for r in x) / max(1, len(x)) for x in (before, after))
    gain = ra - rb
    summary = f"marker rate without a system prompt {rb:.0%} → {ra:.0%} on {len(after)} held-out requests"
    if gain >= FULL_GAIN:
        return summary
    if gain >= PARTIAL_GAIN:
        return Credit(0.5, f"{summary}: it rose, but by less than {FULL_GAIN:.0%} points")
    raise Incorrect(f"{summary}: the persona did not move into the weights (it must rise by at least "
                    f"{FULL_GAIN:.0%} points)")


@EXERCISE.question(
    "It is still a working assistant",
    names=["before", "after"],
    points=2,
    needs_model=True,
    hints=[
        "Look at `finetune.quality_table([before, after])`: the fine-tuned replies must stay fluent and keep the "
        "task's name and date, not only use TaskMaster's phrases.",
        "Fluency collapses (word salad, loops) when the learning rate is too high or the run too long: the model "
        "copies fragments of the training replies. Lower the learning rate or train fewer steps.",
    ],
)
def q4(before: Any, after: Any) -> Credit | str:
    """Recomputes fluency (perplexity under the base model) and task facts from the replies themselves."""
    from ..finetune.infer import held_out_prompts

    prompts = held_out_prompts()
    _eval(before, "before", prompts)
    _eval(after, "after", prompts)
    return quality_verdict([str(r) for r in before["replies"]], [str(r) for r in after["replies"]])


def quality_verdict(before: list[str], after: list[str], score: Callable[[list[str]], Mapping[str, Any]] | None = None
                    ) -> str:
    """q4 on two lists of replies to the first held-out requests, in order (base model, fine-tuned); ``score``:
    how replies are scored (default :func:`personalab.finetune.infer.reply_quality`)."""
    if score is None:
        from ..finetune.infer import reply_quality as score
    b, a = score(before), score(after)
    summary = (f"fluent {b['fluent_rate']:.0%} → {a['fluent_rate']:.0%}, task facts kept {b['task_fact_rate']:.0%} "
               f"→ {a['task_fact_rate']:.0%} on {len(after)} held-out requests")
    problems = []
    if a["fluent_rate"] < floor(b["fluent_rate"], MIN_FLUENT):
        problems.append("too many replies are not fluent text (word salad or loops)")
    if a["task_fact_rate"] < floor(b["task_fact_rate"], MIN_FACTS):
        problems.append("the replies lose the task's name or date")
    if not problems:
        return summary
    raise Incorrect(f"{summary}: {'; '.join(problems)}", credit=0.5 if len(problems) == 1 else 0)
