"""Exercise 01 — your own persona in a system prompt.

The learner writes a persona spec for a domain of their choice (``my_persona``: YAML text or a dict),
renders it (``my_prompt``), keeps it within a token budget, asks a few requests of their own
(``my_requests``) with and without the prompt, and reports what that comparison shows: on how many requests
the prompt made the difference (``prompt_changed``) and the marker rates (``rates``). The checks grade the
reading against the comparison they redo themselves, never whether the model obeys: a small base model may
follow the prompt on none of the requests, and saying so is a correct answer.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from ..persona import PersonaSpec, has_marker, render_system_prompt
from . import Credit, Exercise, Incorrect, close, describe, expect_keys, expect_type

EXERCISE = Exercise("01", "Your own persona in a system prompt")

#: most tokens the rendered system prompt may have (TaskMaster's prompt has about 140)
TOKEN_BUDGET = 250
#: the reference tokenizer for the budget: the same count in the notebook and in the gradebook, whatever backend
TOKENIZER_MODEL = "gpt-4o-mini"
#: how the checks ask the model: greedy, short, seeded, so that the notebook and the gradebook agree
REQUEST_PARAMS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 60, "seed": 0}
MAX_REQUESTS = 5
#: how far a learner's count may be from the gradebook's: greedy decoding on another machine's CPU kernels
#: can flip a near-tie in one reply
TOLERANCE = 1
REQUIRED = ("name", "role", "traits", "response_pattern", "vocabulary")


# ------------------------------------------------------------------------------------------ helpers


def spec_from(value: Any, name: str = "my_persona") -> PersonaSpec:
    """A validated :class:`PersonaSpec` from YAML text, a dict or a spec; errors name the line and field."""
    from ..errors import InputError
    from ..io import parse_yaml, validate_with_lines

    if isinstance(value, PersonaSpec):
        return value
    node = None
    if isinstance(value, str):
        value, node = parse_yaml(value, path=name, fix="check indentation and quoting near that line")
    if not isinstance(value, Mapping):
        raise InputError(f"expected a persona spec (YAML text or a dict), got {describe(value)}", path=name)
    return validate_with_lines(dict(value), node, PersonaSpec, path=name,
                               fix="compare with data/personas/taskmaster.yaml")


def count_tokens(text: str) -> tuple[int, str]:
    """Tokens of ``text`` with the reference tokenizer, and how they were counted.

    Uses :func:`personalab.tokens.count_text` (the exact OpenAI tokenizer, offline); where that is not
    installed, counts words and punctuation marks, which is close for English text.
    """
    try:
        from ..tokens import count_text

        return count_text(text, TOKENIZER_MODEL), f"{TOKENIZER_MODEL} tokenizer"
    except Exception:  # noqa: BLE001 - module missing or its encoding files unavailable: use the estimate
        return len(re.findall(r"\w+|[^\w\s]", text)), "estimate: words + punctuation"


_cache: dict[tuple[str, str, str | None, str], str] = {}
_cache_lock = threading.Lock()


def ask(request: str, system: str | None) -> str:
    """The model's reply to one request, with or without a system prompt (memoised per backend and model)."""
    import os

    from .. import backends

    key = (os.environ.get("OPENAI_BASE_URL", ""), os.environ.get("PERSONALAB_MODEL", ""), system, request)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": request}]
    side = backends.prompted_side()  # the base model, as steering.compare asks it, whether or not a key is set
    reply = backends.chat(messages, model=side.model, client_=side.client, **REQUEST_PARAMS)
    with _cache_lock:
        _cache[key] = reply
    return reply


def _spec_or_fail(my_persona: Any) -> PersonaSpec:
    from ..errors import InputError

    try:
        return spec_from(my_persona)
    except InputError as err:
        where = str(err).split("\n")[0]
        fix = f" (how to fix: {err.fix})" if err.fix else ""
        raise Incorrect(f"`my_persona` does not validate yet: {where}{fix}") from None


def _requests(my_requests: Any) -> list[str]:
    expect_type(my_requests, (list, tuple), "my_requests")
    reqs = [r.strip() for r in my_requests if isinstance(r, str) and r.strip()]
    if len(reqs) != len(my_requests):
        raise Incorrect("every item of `my_requests` must be a non-empty string")
    unique = list(dict.fromkeys(reqs))
    if not 3 <= len(unique) <= MAX_REQUESTS:
        raise Incorrect(f"`my_requests` needs 3 to {MAX_REQUESTS} different requests, got {len(unique)}")
    return unique


def measure(spec: PersonaSpec, requests: list[str]) -> dict[str, Any]:
    """Ask every request with and without the rendered prompt; which replies carry a persona marker."""
    from concurrent.futures import ThreadPoolExecutor

    prompt = render_system_prompt(spec)
    jobs = [(r, prompt) for r in requests] + [(r, None) for r in requests]
    # all at once, as the comparison cell asks them: a local server batches them (one round instead of 2n)
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        replies = list(pool.map(lambda job: ask(*job), jobs))
    with_prompt, without = replies[: len(requests)], replies[len(requests):]
    return {
        "with": [has_marker(r, spec) for r in with_prompt],
        "without": [has_marker(r, spec) for r in without],
        "replies_with": with_prompt,
        "replies_without": without,
    }


# ----------------------------------------------------------------------------------------- questions


@EXERCISE.question(
    "Your persona spec validates",
    names=["my_persona"],
    points=2,
    hints=[
        "Copy the layout of data/personas/taskmaster.yaml (printed in lesson 01) and change every value.",
        "Required sections: name, role, traits (each with name and description), response_pattern (a list), "
        "vocabulary (with a `use` list). YAML lists start with '- '; indent nested keys by two spaces.",
    ],
)
def q1(my_persona: Any) -> str:
    expect_type(my_persona, (dict, str), "my_persona")
    if isinstance(my_persona, dict):
        expect_keys(my_persona, REQUIRED, "my_persona")
    spec = _spec_or_fail(my_persona)
    if spec.name.strip().lower().replace(" ", "") == "taskmaster":
        raise Incorrect("that is TaskMaster from the lesson: design your own persona for a domain you choose",
                        credit=0.5)
    return f"{spec.name} is a valid persona spec"


@EXERCISE.question(
    "All the sections a persona needs",
    names=["my_persona"],
    points=3,
    hints=[
        "Each missing item listed above costs part of the points; add them one at a time and check again.",
        "Markers work best as short, distinctive phrases (two to five words) that a plain assistant would not say.",
    ],
)
def q2(my_persona: Any) -> Credit:
    spec = _spec_or_fail(my_persona)
    long_markers = [p for p in spec.vocabulary.use if len(p.split()) > 6]
    needs = [
        (len(spec.traits) >= 3, f"at least 3 traits (you have {len(spec.traits)})"),
        (len(spec.response_pattern) >= 3, f"a response pattern of at least 3 steps (you have "
                                          f"{len(spec.response_pattern)})"),
        (len(spec.vocabulary.use) >= 2 and not long_markers,
         f"at least 2 short 'use' phrases of at most 6 words (you have {len(spec.vocabulary.use)}"
         + (f"; too long: {long_markers[0]!r}" if long_markers else "") + ")"),
        (len(spec.vocabulary.avoid) >= 1, "at least 1 phrase to avoid"),
        (len(spec.rules) >= 2, f"at least 2 rules (you have {len(spec.rules)})"),
    ]
    missing = [text for ok, text in needs if not ok]
    if not missing:
        return Credit(1.0, "traits, response pattern, vocabulary and rules are all there")
    return Credit((len(needs) - len(missing)) / len(needs), "still missing: " + "; ".join(missing))


@EXERCISE.question(
    "Rendered prompt within the token budget",
    names=["my_persona", "my_prompt"],
    points=2,
    hints=[
        "Render the validated spec: `my_prompt = spec.render()` (or `persona.render_system_prompt(spec)`).",
        f"Over {TOKEN_BUDGET} tokens? Shorten descriptions and rules: every token is sent with every request.",
    ],
)
def q3(my_persona: Any, my_prompt: Any) -> Credit | str:
    spec = _spec_or_fail(my_persona)
    expect_type(my_prompt, str, "my_prompt")
    if my_prompt.strip() != render_system_prompt(spec).strip():
        raise Incorrect("`my_prompt` is not the rendering of `my_persona`: set `my_prompt = spec.render()` after "
                        "validating the spec (and re-run that cell after every change to the spec)")
    n, how = count_tokens(my_prompt)
    if n > TOKEN_BUDGET:
        return Credit(0.5, f"rendered correctly, but {n} tokens ({how}) is over the budget of {TOKEN_BUDGET}")
    return f"{n} tokens ({how}), within the budget of {TOKEN_BUDGET}"


@EXERCISE.question(
    "Your finding: where the prompt made the difference",
    names=["my_persona", "my_requests", "prompt_changed"],
    points=3,
    needs_model=True,
    hints=[
        "Write 3 to 5 different requests a user of your persona would send, e.g. 'Add a task: order more flour'. "
        "Then read the comparison row by row: a request counts when the reply WITH your prompt carries one of "
        "your 'use' phrases and the reply WITHOUT it does not. `prompt_changed` is how many requests count; "
        "0 is a fine answer when that is what the table shows.",
        "The cell under the comparison prints, for each request, whether each reply carries a marker: count the "
        "rows that read `with: yes` and `without: no`, and write that number (an int). If your markers show up "
        "WITHOUT the prompt, any assistant says them: pick more distinctive 'use' phrases and run the cells again.",
    ],
)
def q4(my_persona: Any, my_requests: Any, prompt_changed: Any) -> str:
    spec = _spec_or_fail(my_persona)
    reqs = _requests(my_requests)
    m = measure(spec, reqs)
    n = len(reqs)
    changed = sum(w and not wo for w, wo in zip(m["with"], m["without"], strict=True))
    plain = sum(m["without"])
    if plain > TOLERANCE:
        example = reqs[m["without"].index(True)]
        raise Incorrect(f"{plain}/{n} replies WITHOUT your prompt already carry one of your markers (e.g. the "
                        f"reply to {example!r}): a phrase any assistant says cannot show what your prompt does. "
                        "Pick more distinctive 'use' phrases, re-run every cell from your spec down, and count again")
    expect_type(prompt_changed, int, "prompt_changed")
    if not 0 <= prompt_changed <= n:
        raise Incorrect(f"`prompt_changed` counts your requests: a whole number from 0 to {n}, got {prompt_changed}")
    if abs(prompt_changed - changed) > TOLERANCE:
        raise Incorrect(f"you wrote that the prompt made the difference on {prompt_changed} of your {n} requests, "
                        "but the comparison does not show that (one request either way is accepted). Count again: "
                        "a request counts when its reply with the prompt carries a marker and its reply without "
                        "the prompt does not")
    note = (f"; note: {plain} reply without the prompt already carries a marker" if plain else "")
    return (f"you counted {prompt_changed}; measured: with your prompt {sum(m['with'])}/{n} replies carry a "
            f"marker, without it {plain}/{n}, so the prompt made the difference on {changed} of {n} requests{note}")


@EXERCISE.question(
    "You measured the marker rates",
    names=["my_persona", "my_requests", "rates"],
    points=1,
    needs_model=True,
    hints=["`rates` is a dict {'with': share, 'without': share}: use persona.marker_rate(replies, spec) on the "
           "replies you got with and without the prompt."],
)
def q5(my_persona: Any, my_requests: Any, rates: Any) -> str:
    spec = _spec_or_fail(my_persona)
    reqs = _requests(my_requests)
    expect_keys(rates, ["with", "without"], "rates")
    m = measure(spec, reqs)
    n = len(reqs)
    for key in ("with", "without"):
        expect_type(rates[key], (int, float), f"rates['{key}']")
        if not 0 <= rates[key] <= 1:
            raise Incorrect(f"`rates['{key}']` is a share of replies: a number from 0 to 1, got {rates[key]!r}")
        # one reply either way is tolerated: another machine may flip a near-tie (or you changed the settings);
        # a miss does not say the gradebook's value, which would also give away q4's count
        if not close(rates[key], sum(m[key]) / n, abs=TOLERANCE / n + 1e-9):
            raise Incorrect(f"`rates['{key}']` = {rates[key]:.3g} is not the share of your replies {key} the prompt "
                            "that carry one of your markers (one reply either way is accepted): count them with "
                            f"persona.marker_rate(comparison.replies['{key}'], spec)")
    return (f"your measurement matches the gradebook's: with your prompt {sum(m['with'])}/{n} replies carry a "
            f"marker, without it {sum(m['without'])}/{n}")
