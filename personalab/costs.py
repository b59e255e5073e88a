"""What a persona costs: per request, per conversation, per month, and where fine-tuning breaks even.

Prices come from a user-editable table (``data/pricing.yaml``, US dollars per 1M tokens, each entry with
its date and source). The model:

* a **request** is one turn: input = system prompt + the history so far + the new user message,
  output = the reply. A conversation of ``turns`` requests re-sends the system prompt *every* turn and a
  history that grows by ``user + response`` tokens per turn.
* **prompt caching** (OpenAI's rule): a prompt of at least 1024 tokens has its previously seen prefix
  billed at the cached-input price, counted in 128-token steps.
* the **fine-tuned** model is called without the persona prompt (or with a short overlay: the hybrid),
  at the fine-tuned prices (from the table, or base price x a multiplier), after a one-time training cost
  of ``dataset tokens x epochs x training price``.
* **self-hosted** serving costs GPU time: ``prompt tokens / prefill tokens/s + output tokens / decode
  tokens/s`` per request at a $/GPU-hour, optionally with a monthly minimum (an always-on GPU).
* **distillation**: the self-hosted model is a *small* model fine-tuned on replies that the prompted large
  model wrote; its one-time cost is those replies plus the GPU hours of training (:class:`Distillation`).

Every plan is ``monthly(V) = max(minimum, fixed + per_request * V) + one_time / months`` for ``V``
requests a month, so the break-even volume between two plans has a closed form (:func:`break_even`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from .config import DATA_DIR
from .errors import InputError
from .io import load_yaml_model

PRICING_PATH = DATA_DIR / "pricing.yaml"
PER = 1_000_000  # prices are per 1M tokens
HOURS_PER_MONTH = 730.0  # 365 * 24 / 12
PRICING_FIX = "compare with data/pricing.yaml (US dollars per 1M tokens; every entry needs date and source)"


# --------------------------------------------------------------------------------------------- price table
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _check_date(v: object) -> str:
    v = str(v)
    if not re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", v):
        raise ValueError("date must be YYYY-MM or YYYY-MM-DD (quote it in YAML)")
    return v


class ModelPrice(_Strict):
    """One model's prices in US dollars per 1M tokens. A missing field means 'not offered / unknown'."""

    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)
    finetuned_input: float | None = Field(default=None, ge=0)
    finetuned_cached_input: float | None = Field(default=None, ge=0)
    finetuned_output: float | None = Field(default=None, ge=0)
    training: float | None = Field(default=None, ge=0)
    date: str
    source: str = Field(min_length=1)

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: object) -> str:
        return _check_date(v)


class GpuPrice(_Strict):
    gpu_hour: float = Field(gt=0, description="US dollars per GPU-hour")
    date: str
    source: str = Field(min_length=1)

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: object) -> str:
        return _check_date(v)


class PriceTable(_Strict):
    currency: Literal["USD"] = "USD"
    models: dict[str, ModelPrice] = Field(min_length=1)
    self_hosted: dict[str, GpuPrice] = Field(default_factory=dict)
    _path: str = PrivateAttr(default="<price table>")

    @property
    def path(self) -> str:
        return self._path

    def price(self, model: str) -> ModelPrice:
        """Prices of ``model``; a fine-tuned name (``ft:gpt-4o-mini:org:x:id``) gives its base model's entry."""
        key = model.removeprefix("ft:").split(":")[0] if model.startswith("ft:") else model
        if key in self.models:
            return self.models[key]
        dated = next((m for m in sorted(self.models, key=len, reverse=True) if key.startswith(m + "-20")), None)
        if dated:  # gpt-4o-mini-2024-07-18 -> gpt-4o-mini
            return self.models[dated]
        raise InputError(
            f"unknown model {model!r}: it is not in the price table",
            path=self._path,
            field=f"models.{model}",
            fix=f"pick one of {', '.join(sorted(self.models))}, or add an entry for it (with date and source)",
        )

    def gpu(self, name: str) -> GpuPrice:
        if name not in self.self_hosted:
            raise InputError(
                f"unknown GPU {name!r}",
                path=self._path,
                field=f"self_hosted.{name}",
                fix=f"pick one of {', '.join(sorted(self.self_hosted)) or '(none listed)'} or add it",
            )
        return self.self_hosted[name]

    def rates(self, model: str, *, finetuned: bool = False, multiplier: float | None = None) -> Rates:
        """The per-1M-token rates of ``model``, base or fine-tuned.

        ``multiplier`` (fine-tuned only) replaces the table's fine-tuned prices by ``multiplier x`` the base
        prices, as in the seed article's "2x for fine-tuned". A price that is needed but missing is an
        :class:`InputError` naming the field and the file.
        """
        p = self.price(model)
        name = model
        if not finetuned:
            return Rates(input=p.input, output=p.output, cached_input=p.cached_input, label=name)
        if multiplier is not None:
            if multiplier <= 0:
                raise InputError("the fine-tuned price multiplier must be positive", field="multiplier")
            cached = None if p.cached_input is None else p.cached_input * multiplier
            return Rates(
                input=p.input * multiplier,
                output=p.output * multiplier,
                cached_input=cached,
                label=f"{name} fine-tuned ({multiplier:g}x)",
            )
        for f in ("finetuned_input", "finetuned_output"):
            if getattr(p, f) is None:
                raise InputError(
                    f"no fine-tuned price for {model!r}",
                    path=self._path,
                    field=f"models.{model}.{f}",
                    fix="add the price from the provider's pricing page, or pass a fine-tuned price multiplier",
                )
        return Rates(
            input=p.finetuned_input,
            output=p.finetuned_output,
            cached_input=p.finetuned_cached_input,
            label=f"{name} fine-tuned",
        )

    def training_price(self, model: str) -> float:
        p = self.price(model)
        if p.training is None:
            raise InputError(
                f"no training price for {model!r}",
                path=self._path,
                field=f"models.{model}.training",
                fix="add the fine-tuning training price per 1M tokens, or give the training cost directly",
            )
        return p.training


def load_prices(path: str | Path | None = None) -> PriceTable:
    """Load and validate the price table (default ``data/pricing.yaml``); errors name file, line and field."""
    path = Path(path) if path is not None else PRICING_PATH
    table = load_yaml_model(path, PriceTable, fix=PRICING_FIX)
    table._path = str(path)
    return table


# --------------------------------------------------------------------------------------------- workload
def _positive(value: float, name: str, *, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value):
        raise InputError(f"{name} must be a number, got {value!r}", field=name)
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}", field=name)
    return value


@dataclass(frozen=True)
class Rates:
    """US dollars per 1M tokens for one way of calling a model."""

    input: float
    output: float
    cached_input: float | None = None
    label: str = ""


@dataclass(frozen=True)
class Caching:
    """Prompt caching: a prompt of ``min_tokens`` or more has its known prefix billed at the cached price.

    OpenAI's documented rule: prompts of 1024+ tokens, cache hits counted in 128-token increments.
    ``hit_rate`` is the share of requests whose prefix is still in the cache.
    """

    enabled: bool = False
    min_tokens: int = 1024
    increment: int = 128
    hit_rate: float = 1.0

    def cached(self, prefix_tokens: float, prompt_tokens: float) -> float:
        if not self.enabled or prompt_tokens < self.min_tokens or prefix_tokens < self.min_tokens:
            return 0.0
        return self.hit_rate * (prefix_tokens // self.increment) * self.increment


NO_CACHE = Caching()


@dataclass(frozen=True)
class Workload:
    """Token sizes of one conversation. ``persona_tokens``: what the system prompt adds to each request
    (measure it with :func:`personalab.tokens.persona_overhead`); ``finetuned_prompt_tokens``: a prompt the
    fine-tuned model still gets (0, or an overlay in the hybrid approach)."""

    persona_tokens: float
    user_tokens: float
    response_tokens: float
    turns: int = 1
    finetuned_prompt_tokens: float = 0

    def __post_init__(self) -> None:
        for name in ("persona_tokens", "user_tokens", "response_tokens", "finetuned_prompt_tokens"):
            _positive(getattr(self, name), name)
        if isinstance(self.turns, bool) or not isinstance(self.turns, int) or self.turns < 1:
            raise InputError(f"turns must be a whole number >= 1, got {self.turns!r}", field="turns")

    def prompt(self, finetuned: bool) -> float:
        return self.finetuned_prompt_tokens if finetuned else self.persona_tokens


@dataclass(frozen=True)
class Tokens:
    """Billed tokens (summed over the turns of one conversation, or of one request)."""

    input: float = 0.0  # all prompt tokens, cached ones included
    cached: float = 0.0
    output: float = 0.0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.input + other.input, self.cached + other.cached, self.output + other.output)


def turn_tokens(w: Workload, turn: int, *, finetuned: bool = False, caching: Caching = NO_CACHE) -> Tokens:
    """Tokens of request number ``turn`` (1-based) of a conversation."""
    if not 1 <= turn <= w.turns:
        raise InputError(f"turn must be between 1 and {w.turns}, got {turn}", field="turn")
    prefix = w.prompt(finetuned) + (turn - 1) * (w.user_tokens + w.response_tokens)
    prompt = prefix + w.user_tokens
    return Tokens(input=prompt, cached=caching.cached(prefix, prompt), output=w.response_tokens)


def conversation_tokens(w: Workload, *, finetuned: bool = False, caching: Caching = NO_CACHE) -> Tokens:
    total = Tokens()
    for turn in range(1, w.turns + 1):
        total = total + turn_tokens(w, turn, finetuned=finetuned, caching=caching)
    return total


def tokens_cost(t: Tokens, rates: Rates) -> float:
    """US dollars for ``t`` at ``rates``; cached tokens at the cached price (InputError if there is none)."""
    if t.cached and rates.cached_input is None:
        raise InputError(
            f"prompt caching is on but {rates.label or 'this model'} has no cached-input price",
            field="cached_input",
            fix="add cached_input to the price table, or turn caching off",
        )
    cached_rate = rates.cached_input or 0.0
    return ((t.input - t.cached) * rates.input + t.cached * cached_rate + t.output * rates.output) / PER


def request_cost(input_tokens: float, output_tokens: float, rates: Rates, cached_tokens: float = 0) -> float:
    """US dollars for one request."""
    _positive(input_tokens, "input_tokens")
    _positive(output_tokens, "output_tokens")
    return tokens_cost(Tokens(input_tokens, cached_tokens, output_tokens), rates)


def conversation_cost(w: Workload, rates: Rates, *, finetuned: bool = False, caching: Caching = NO_CACHE) -> float:
    return tokens_cost(conversation_tokens(w, finetuned=finetuned, caching=caching), rates)


def per_request_cost(w: Workload, rates: Rates, *, finetuned: bool = False, caching: Caching = NO_CACHE) -> float:
    """Average US dollars per request (a conversation's cost divided by its turns)."""
    return conversation_cost(w, rates, finetuned=finetuned, caching=caching) / w.turns


def turn_table(w: Workload, base: Rates, finetuned: Rates, *, caching: Caching = NO_CACHE) -> list[dict[str, float]]:
    """Per turn of one conversation: tokens sent and US dollars, system-prompt approach vs fine-tuned."""
    rows = []
    for turn in range(1, w.turns + 1):
        p = turn_tokens(w, turn, caching=caching)
        f = turn_tokens(w, turn, finetuned=True, caching=caching)
        rows.append(
            {
                "turn": turn,
                "prompt_input_tokens": p.input,
                "prompt_cached_tokens": p.cached,
                "finetuned_input_tokens": f.input,
                "output_tokens": p.output,
                "prompt_usd": tokens_cost(p, base),
                "finetuned_usd": tokens_cost(f, finetuned),
            }
        )
    return rows


def check_volume(requests_per_month: float) -> float:
    return _positive(requests_per_month, "requests_per_month", allow_zero=False)


def monthly_cost(
    w: Workload, rates: Rates, requests_per_month: float, *, finetuned: bool = False, caching: Caching = NO_CACHE
) -> float:
    """US dollars a month for ``requests_per_month`` requests (``requests / turns`` conversations)."""
    check_volume(requests_per_month)
    return per_request_cost(w, rates, finetuned=finetuned, caching=caching) * requests_per_month


def training_cost(dataset_tokens: float, epochs: float, training_price_per_1m: float) -> float:
    """One-time fine-tuning cost: tokens in the training file x epochs x price per 1M training tokens."""
    _positive(dataset_tokens, "dataset_tokens")
    _positive(epochs, "epochs", allow_zero=False)
    _positive(training_price_per_1m, "training")
    return dataset_tokens * epochs * training_price_per_1m / PER


def gpu_training_cost(hours: float, gpu_hour: float) -> float:
    """One-time cost of fine-tuning on your own GPU: measured training hours x $/GPU-hour."""
    return _positive(hours, "hours") * _positive(gpu_hour, "gpu_hour")


# --------------------------------------------------------------------------------------------- self-hosted
@dataclass(frozen=True)
class SelfHosted:
    """Serving on your own GPU. Throughputs are what the server sustains (measure them; batching raises them).

    ``prompt_tokens_per_second`` is the prefill rate; ``None`` leaves prompt processing out (optimistic).
    ``min_hours_per_month``: hours paid regardless of load (``HOURS_PER_MONTH`` for an always-on GPU).
    """

    gpu_hour: float
    output_tokens_per_second: float
    prompt_tokens_per_second: float | None = None
    min_hours_per_month: float = 0.0
    label: str = "self-hosted"

    def __post_init__(self) -> None:
        _positive(self.gpu_hour, "gpu_hour", allow_zero=False)
        _positive(self.output_tokens_per_second, "output_tokens_per_second", allow_zero=False)
        if self.prompt_tokens_per_second is not None:
            _positive(self.prompt_tokens_per_second, "prompt_tokens_per_second", allow_zero=False)
        _positive(self.min_hours_per_month, "min_hours_per_month")

    def seconds(self, t: Tokens) -> float:
        prefill = 0.0 if self.prompt_tokens_per_second is None else (t.input - t.cached) / self.prompt_tokens_per_second
        return prefill + t.output / self.output_tokens_per_second


# --------------------------------------------------------------------------------------------- distillation
@dataclass(frozen=True)
class Distillation:
    """Replacing a prompted large API model with a fine-tuned small self-hosted one (distillation).

    The large model (the *teacher*), called with the persona prompt, writes the replies of ``examples``
    training requests; a small model (the *student*) is fine-tuned on them for ``training_gpu_hours`` on the
    self-hosted GPU, and then serves without a prompt. The one-time cost is the teacher's replies plus the
    training hours (:func:`distillation_cost`); both numbers are assumptions until you measure them.
    """

    examples: int = 2000
    training_gpu_hours: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.examples, bool) or not isinstance(self.examples, int) or self.examples < 0:
            raise InputError(f"examples must be a whole number >= 0, got {self.examples!r}", field="examples")
        _positive(self.training_gpu_hours, "training_gpu_hours")


def distillation_cost(
    d: Distillation, w: Workload, teacher: Rates, gpu_hour: float, *, caching: Caching = NO_CACHE
) -> float:
    """One-time US dollars to distil the persona: the teacher answers ``d.examples`` requests of workload ``w``
    with the persona prompt (each priced as an average prompted request), plus ``d.training_gpu_hours`` x
    ``gpu_hour`` of fine-tuning."""
    data = d.examples * per_request_cost(w, teacher, caching=caching)
    return data + gpu_training_cost(d.training_gpu_hours, gpu_hour)


# --------------------------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class Plan:
    """A way to serve the persona: ``monthly(V) = max(min_monthly, fixed + per_request*V) + one_time/months``."""

    name: str
    per_request: float
    fixed_monthly: float = 0.0
    min_monthly: float = 0.0
    one_time: float = 0.0
    notes: tuple[str, ...] = field(default=())

    def monthly(self, requests_per_month: float, months: float = 12) -> float:
        """Cost per month, the one-time cost spread over ``months``."""
        _positive(requests_per_month, "requests_per_month")
        running = max(self.min_monthly, self.fixed_monthly + self.per_request * requests_per_month)
        return running + self.one_time / months

    def running(self, requests_per_month: float) -> float:
        """Cost per month without the one-time cost."""
        return self.monthly(requests_per_month, months=math.inf)

    def pieces(self, months: float) -> list[tuple[float, float]]:
        """(slope, intercept) of the linear pieces whose maximum is :meth:`monthly`."""
        spread = self.one_time / months
        out = [(self.per_request, self.fixed_monthly + spread)]
        if self.min_monthly > 0:
            out.append((0.0, self.min_monthly + spread))
        return out


def api_plan(
    name: str, w: Workload, rates: Rates, *, finetuned: bool = False, caching: Caching = NO_CACHE, one_time: float = 0.0
) -> Plan:
    return Plan(name, per_request_cost(w, rates, finetuned=finetuned, caching=caching), one_time=one_time)


def self_hosted_plan(
    name: str,
    w: Workload,
    sh: SelfHosted,
    *,
    finetuned: bool = True,
    caching: Caching = NO_CACHE,
    one_time: float = 0.0,
) -> Plan:
    seconds = sh.seconds(conversation_tokens(w, finetuned=finetuned, caching=caching)) / w.turns
    return Plan(
        name,
        per_request=seconds * sh.gpu_hour / 3600,
        min_monthly=sh.min_hours_per_month * sh.gpu_hour,
        one_time=one_time,
    )


@dataclass(frozen=True)
class BreakEven:
    """Where ``challenger`` becomes cheaper than ``base`` (requests per month), or why it never does."""

    base: str
    challenger: str
    volume: float | None  # challenger cheaper for every volume above this; None: never; 0.0: always
    crossovers: tuple[float, ...]
    reason: str
    months: float

    @property
    def never(self) -> bool:
        return self.volume is None


def break_even(base: Plan, challenger: Plan, *, months: float = 12) -> BreakEven:
    """Closed-form crossover of two plans' monthly cost (one-time costs spread over ``months``).

    Each plan is the maximum of at most two lines, so every crossing is the intersection of one line of
    each plan at which both lines are the active ones; those points are computed exactly.
    """
    _positive(months, "months", allow_zero=False)

    def cost(p: Plan, v: float) -> float:
        return max(a * v + b for a, b in p.pieces(months))

    roots: set[float] = set()
    for a1, b1 in base.pieces(months):
        for a2, b2 in challenger.pieces(months):
            if a1 == a2:
                continue
            v = (b2 - b1) / (a1 - a2)
            if (
                v > 0
                and math.isclose(cost(base, v), a1 * v + b1, rel_tol=1e-9, abs_tol=1e-12)
                and math.isclose(cost(challenger, v), a2 * v + b2, rel_tol=1e-9, abs_tol=1e-12)
            ):
                roots.add(v)
    crossings = tuple(sorted(roots))

    def cheaper(v: float) -> bool:
        return cost(challenger, v) < cost(base, v) - 1e-15

    a_base, a_ch = max(a for a, _ in base.pieces(months)), max(a for a, _ in challenger.pieces(months))
    big = (crossings[-1] if crossings else 1.0) * 10 + 1e9
    at_large = cheaper(big) if a_ch == a_base else a_ch < a_base
    if not at_large:
        why = (
            f"never: {challenger.name} costs ${fmt_usd(challenger.per_request)} per request, not less than "
            f"{base.name} at ${fmt_usd(base.per_request)}, so no volume makes it cheaper"
        )
        if crossings:
            why += f" (it is cheaper only between {fmt_volume(crossings[0])} and {fmt_volume(crossings[-1])} requests)"
        return BreakEven(base.name, challenger.name, None, crossings, why, months)
    volume = max((v for v in crossings if cheaper(v * 1.000001 + 1e-9)), default=0.0)
    if volume == 0.0:
        reason = f"always: {challenger.name} is cheaper than {base.name} at every volume"
    else:
        reason = (
            f"{challenger.name} is cheaper above {fmt_volume(volume)} requests/month "
            f"(one-time costs spread over {months:g} months)"
        )
    return BreakEven(base.name, challenger.name, volume, crossings, reason, months)


def persona_break_even_tokens(
    w: Workload, base: Rates, finetuned: Rates, *, caching: Caching = NO_CACHE, limit: int = 10_000_000
) -> float | None:
    """The persona size (tokens) above which a fine-tuned request is cheaper than a system-prompted one.

    Without caching the cost is linear in the persona size ``P``, so ``P* = (ft - base(P=0)) / slope``.
    For one turn with fine-tuned prices ``m`` x base and no prompt, this is
    ``P* = (m - 1) * (user + response * output/input)``: with ``m = 2``, fine-tuning saves money per request
    only when the persona is longer than the user message plus the reply weighted by the price ratio.
    Returns ``None`` when no persona size up to ``limit`` makes fine-tuning cheaper (e.g. caching makes
    long prompts cheap).
    """

    def gap(p: float) -> float:
        wp = replace(w, persona_tokens=p)
        return per_request_cost(wp, finetuned, finetuned=True, caching=caching) - per_request_cost(
            wp, base, caching=caching
        )

    if not caching.enabled:
        # each persona token is billed once per request at the base input price
        if base.input <= 0:
            return None
        return max(0.0, round(gap(0.0) * PER / base.input, 6))
    if gap(limit) >= 0:
        return None
    lo, hi = 0, limit
    if gap(0) < 0:
        return 0.0
    while hi - lo > 1:  # the system-prompted cost never falls as the persona grows: bisect
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if gap(mid) >= 0 else (lo, mid)
    return float(hi)


# --------------------------------------------------------------------------------------------- scenario
@dataclass(frozen=True)
class Scenario:
    """Everything the cost explorer and ``personalab cost`` need to compare the approaches."""

    model: str = "gpt-4o-mini"
    requests_per_month: float = 500_000
    persona_tokens: float = 500
    user_tokens: float = 50
    response_tokens: float = 200
    turns: int = 1
    caching: bool = False
    finetuned_multiplier: float | None = None  # None: the table's fine-tuned prices
    finetuned_prompt_tokens: float = 0
    training_tokens: float = 0  # tokens in the training file
    epochs: int = 3
    training_cost: float | None = None  # overrides training_tokens x epochs x price when given
    months: float = 12  # horizon over which one-time costs are spread
    self_hosted: SelfHosted | None = None
    # set with self_hosted: the self-hosted model is a small one distilled from ``model`` (teacher data + GPU
    # hours as its one-time cost) instead of a copy of ``model`` trained at the API's training price
    distillation: Distillation | None = None

    @property
    def workload(self) -> Workload:
        return Workload(
            self.persona_tokens, self.user_tokens, self.response_tokens, self.turns, self.finetuned_prompt_tokens
        )


@dataclass(frozen=True)
class Comparison:
    scenario: Scenario
    plans: tuple[Plan, ...]
    break_evens: tuple[BreakEven, ...]
    tokens: dict[str, Tokens]

    def rows(self) -> list[dict[str, object]]:
        """One row per plan: per request, per month at the scenario's volume, one-time cost."""
        s = self.scenario
        return [
            {
                "plan": p.name,
                "per_request_usd": p.per_request,
                "running_monthly_usd": p.running(s.requests_per_month),
                "one_time_usd": p.one_time,
                "monthly_incl_one_time_usd": p.monthly(s.requests_per_month, s.months),
            }
            for p in self.plans
        ]


def compare(s: Scenario, prices: PriceTable | None = None) -> Comparison:
    """Price the system-prompt approach against fine-tuning (API, and self-hosted if configured)."""
    prices = prices or load_prices()
    check_volume(s.requests_per_month)
    w = s.workload
    caching = Caching(enabled=s.caching)
    base_rates = prices.rates(s.model)
    ft_rates = prices.rates(s.model, finetuned=True, multiplier=s.finetuned_multiplier)
    if s.training_cost is not None:
        one_time = _positive(s.training_cost, "training_cost")
    elif s.training_tokens:
        one_time = training_cost(s.training_tokens, s.epochs, prices.training_price(s.model))
    else:
        one_time = 0.0
    prompt = api_plan("system prompt", w, base_rates, caching=caching)
    ft = api_plan("fine-tuned (API)", w, ft_rates, finetuned=True, caching=caching, one_time=one_time)
    plans = [prompt, ft]
    tokens = {
        "system prompt": conversation_tokens(w, caching=caching),
        "fine-tuned": conversation_tokens(w, finetuned=True, caching=caching),
    }
    evens = [break_even(prompt, ft, months=s.months)]
    if s.distillation is not None and s.self_hosted is None:
        raise InputError(
            "distillation needs a self-hosted model to distil into",
            field="self_hosted",
            fix="give the small model's GPU price and throughput (SelfHosted), or leave distillation out",
        )
    if s.self_hosted is not None:
        name, sh_one_time = f"fine-tuned ({s.self_hosted.label})", one_time
        if s.distillation is not None:
            name = f"distilled small model ({s.self_hosted.label})"
            sh_one_time = distillation_cost(s.distillation, w, base_rates, s.self_hosted.gpu_hour, caching=caching)
        sh = self_hosted_plan(name, w, s.self_hosted, caching=caching, one_time=sh_one_time)
        plans.append(sh)
        evens.append(break_even(prompt, sh, months=s.months))
    return Comparison(s, tuple(plans), tuple(evens), tokens)


# --------------------------------------------------------------------------------------------- formatting
def fmt_usd(x: float) -> str:
    """Dollars as a person reads them: to the cent (half up) from $1, else every significant digit (up to 10).

    ``185.625`` prints ``185.63`` and ``0.00037125`` prints ``0.00037125``; float noise such as
    ``0.00037125000000000003`` is dropped by reading the value at 12 significant digits first.
    """
    d = Decimal(f"{x:.12g}")
    if abs(d) >= 1:
        return f"{d.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    if d == 0:
        return "0"
    return format(Decimal(f"{d:.10g}").normalize(), "f")


def fmt_volume(v: float) -> str:
    return f"{v:,.0f}"
