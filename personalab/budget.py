"""What the course asks of the machine, per profile: completions, training steps, tokens and an estimated time.

:func:`request_budget` plays the course on paper. It builds every conversation each lesson sends from the same
settings the lessons use (``evaluate.suite_settings``, the hybrid's quick mode, ``finetune.default_config``, the
held-out requests, the drift scripts, attacks and overlays on disk, the defaults of ``steering.compare`` and
``latency.measure``), so the budget follows any change to them. A request whose exact messages an earlier lesson
already sent is answered by the response cache and costs no time (lessons run in order in one home).

Time comes from :class:`Rates`: tokens per second of the local server (one request at a time, and with
continuous batching at ``batch`` concurrent requests), prompt tokens per second, seconds per training step and a
fixed start-up per lesson. Every rate is a named assumption with its source: the CPU rates were measured on this
project's 2-core machine (``benchmarks/RESULTS.md``); the T4 rates are guesses until a T4 measures them.

    from personalab import budget
    b = budget.request_budget("cpu")
    print(b.table())          # per lesson: completions, cached, training steps, tokens, estimated minutes
    b.total_s, b.within_goal  # against the profile's goal (cold course on a CPU, express on a free T4)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

from .errors import InputError
from .rates import CPU_RATES, RATES, T4_RATES, Rates, fmt_minutes

__all__ = ["CPU_RATES", "RATES", "T4_RATES", "Budget", "Phase", "Rates", "fallback_seconds", "fmt_minutes",
           "request_budget"]

#: Prompt-token overhead of one chat message (role and template tokens), an estimate for any ChatML model.
MESSAGE_OVERHEAD = 4
#: Small requests each lesson writes out in its own cells (``max_tokens`` of each): too few to matter as settings,
#: listed here so they are counted. Lesson 00's first request, lesson 01's first reply, its edited-persona reply
#: and one reply per overlay, lesson 02's one-token usage check, lesson 03's teacher demo, lesson 04's served reply.
LESSON00_FIRST_REQUEST = 60
LESSON01_FIRST_REPLY, LESSON01_SHORT_REPLY = 80, 60
LESSON02_USAGE_CHECK = 1
LESSON03_TEACHER_REQUESTS, LESSON03_TEACHER_TOKENS = 6, 80
LESSON01_FEW_SHOT_EXAMPLES = 3  # fewshot.with_examples(spec, 3) in lesson 01
LESSON04_SERVED_REPLY = 40
LESSON06_LOGGED_REQUESTS = 2  # prompted requests of lesson 06's request-log demo (1 token each), + 1 fine-tuned


# ------------------------------------------------------------------------------------------- the paper run
@dataclass(frozen=True)
class Phase:
    """One step of a lesson that makes requests or trains: its row in the budget."""

    lesson: str
    what: str
    completions: int = 0
    cached: int = 0
    training_steps: int = 0
    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        """Prompt tokens plus the most reply tokens the requests may generate (``max_tokens``), uncached only."""
        return self.prompt_tokens + self.new_tokens


@dataclass(frozen=True)
class Budget:
    """The course on one profile: every phase, totals and the estimate against the profile's goal."""

    profile: str
    rates: Rates
    phases: list[Phase]

    def lesson(self, key: str) -> list[Phase]:
        return [p for p in self.phases if p.lesson == key]

    @property
    def lessons(self) -> list[str]:
        return list(dict.fromkeys(p.lesson for p in self.phases))

    def lesson_seconds(self, key: str) -> float:
        """Estimated seconds of one lesson, its fixed start-up included."""
        return self.rates.lesson_s + sum(p.seconds for p in self.lesson(key))

    def total(self, attr: str) -> int:
        return sum(getattr(p, attr) for p in self.phases)

    @property
    def total_s(self) -> float:
        """Estimated seconds of the whole course (or express run) on this profile, the install included."""
        return self.rates.install_s + sum(self.lesson_seconds(k) for k in self.lessons)

    @property
    def within_goal(self) -> bool:
        return self.total_s <= self.rates.goal_s

    def rows(self) -> list[dict[str, object]]:
        """One row per lesson: completions sent and answered from the cache, training steps, tokens, minutes."""
        return [{"lesson": k, "completions": sum(p.completions for p in self.lesson(k)),
                 "cached": sum(p.cached for p in self.lesson(k)),
                 "training_steps": sum(p.training_steps for p in self.lesson(k)),
                 "tokens": sum(p.tokens for p in self.lesson(k)),
                 "minutes": round(self.lesson_seconds(k) / 60, 1)} for k in self.lessons]

    def table(self) -> str:
        """The budget as plain text: per lesson, the totals, the goal and the assumptions behind the rates."""
        head = ("lesson", "completions", "cached", "training steps", "tokens", "est. minutes")
        body = [(str(r["lesson"]), f"{r['completions']:,}", f"{r['cached']:,}", f"{r['training_steps']:,}",
                 f"{r['tokens']:,}", f"{r['minutes']:.1f}") for r in self.rows()]
        if self.rates.install_s:
            body.insert(0, ("install", "", "", "", "", f"{self.rates.install_s / 60:.1f}"))
        body.append(("total", f"{self.total('completions'):,}", f"{self.total('cached'):,}",
                     f"{self.total('training_steps'):,}", f"{self.total('prompt_tokens') + self.total('new_tokens'):,}",
                     f"{self.total_s / 60:.1f}"))
        widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                               strict=True)))
                 for r in (head, *body)]
        verdict = "within" if self.within_goal else "OVER"
        lines += ["", f"profile {self.profile} ({self.rates.hardware}): estimated {self.total_s / 60:.1f} min, "
                      f"{verdict} the goal of {self.rates.goal_s / 60:.0f} min ({self.rates.goal})",
                  "tokens: prompt tokens plus max_tokens of every request not answered from the cache"]
        for kind, notes in (("measured", self.rates.measured), ("assumed", self.rates.assumed)):
            lines += [f"  {kind}: {name} = {text}" for name, text in notes.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


@cache
def _count(text: str) -> int:
    """Tokens of ``text`` (o200k_base: an estimate close to any modern tokenizer's count for English)."""
    from . import tokens

    return len(tokens.encoding("o200k_base").encode(text, disallowed_special=()))


def _default(fn: object, name: str) -> object:
    return inspect.signature(fn).parameters[name].default  # type: ignore[arg-type]


@dataclass
class _Paper:
    """Plays conversations on paper: prompt tokens per request (replies assumed ``max_tokens`` long), the
    context policy, and the response cache shared by every lesson."""

    rates: Rates
    seen: set[int] = field(default_factory=set)
    phases: list[Phase] = field(default_factory=list)

    def conversation(self, model: str, system: str | None, users: Sequence[str], *, seed: int, max_tokens: int,
                     temperature: float, window: int | None = None, policy: str = "keep_system",
                     ) -> list[tuple[int, int, bool]]:
        """(cache key, prompt tokens, cached) of each request of one conversation."""
        msgs: list[tuple[object, int]] = [(("system", system), _count(system) + MESSAGE_OVERHEAD)] if system else []
        out = []
        for user in users:
            msgs.append((("user", user), _count(user) + MESSAGE_OVERHEAD))
            fitted = list(msgs)
            if window is not None:
                budget = window - max_tokens
                while sum(n for _, n in fitted) > budget and len(fitted) > 1:
                    if fitted[0][0][0] == "system" and policy == "drop_oldest":  # type: ignore[index]
                        del fitted[0]
                        continue
                    start = 1 if fitted[0][0][0] == "system" else 0  # type: ignore[index]
                    if len(fitted) - start <= 1:
                        break
                    del fitted[start:start + 2]  # one exchange: a user message and its reply
            key = hash((model, tuple(m for m, _ in fitted), seed, max_tokens, temperature))
            cached = key in self.seen
            self.seen.add(key)
            out.append((key, sum(n for _, n in fitted) + 1, cached))
            msgs.append((("assistant", key), max_tokens + MESSAGE_OVERHEAD))
        return out

    def requests(self, lesson: str, what: str, convs: Sequence[list[tuple[int, int, bool]]], *, max_tokens: int,
                 concurrency: int) -> None:
        """Add a phase of server requests: ``concurrency`` conversations at a time, each one's turns in order."""
        new = [[r for r in c if not r[2]] for c in convs]
        sent = sum(len(c) for c in new)
        prompt = sum(r[1] for c in new for r in c)
        decode = sent * max_tokens
        in_flight = min(concurrency, sum(1 for c in new if c)) or 1
        seconds = decode / self.rates.decode(in_flight) + prompt / self.rates.prefill
        self.phases.append(Phase(lesson, what, sent, sum(len(c) for c in convs) - sent, 0, prompt, decode, seconds))

    def single(self, lesson: str, what: str, model: str, system: str | None, users: Sequence[str], *,
               max_tokens: int, temperature: float = 0.0, seed: int = 0, concurrency: int = 1) -> None:
        """Independent one-turn requests."""
        convs = [self.conversation(model, system, [u], seed=seed, max_tokens=max_tokens, temperature=temperature)
                 for u in users]
        self.requests(lesson, what, convs, max_tokens=max_tokens, concurrency=concurrency)


def _persona_texts() -> tuple[str, list[tuple[str, str]]]:
    from .persona import available_overlays, load_overlay, render_overlay, taskmaster

    spec = taskmaster()
    return spec.render(), [(name, render_overlay(load_overlay(name))) for name in available_overlays()]


def request_budget(profile: str | None = None, rates: Rates | None = None) -> Budget:
    """The course on ``profile`` ('cpu', 'gpu', 'colab-gpu'; default: the active one), lesson by lesson.

    Assumes the local backend (no OpenAI key: every request is the machine's) and the lessons run in order in one
    ``PERSONALAB_HOME`` (later lessons find earlier replies in the cache and lesson 04's model on disk)."""
    from . import config, evaluate, finetune, general, hybrid, latency, report, steering
    from .dataset import Teacher, load_requests
    from .finetune import infer

    profile = profile or config.detect().name
    if profile not in config.PROFILES:
        raise InputError(f"unknown profile {profile!r}", field="profile",
                         fix=f"use one of {', '.join(config.PROFILES)}")
    rates = rates or RATES[profile]
    cpu = profile == "cpu"
    paper = _Paper(rates)
    system, overlays = _persona_texts()
    base, tuned = "base", "fine-tuned"

    # 00: the server starts, one request
    paper.single("00", "first request", base, None, ["Add a task: water the plants on Sunday"],
                 max_tokens=LESSON00_FIRST_REQUEST)
    # 01: one reply, the steering comparison (no prompt vs TaskMaster), the edited persona, one reply per overlay
    requests = steering.heldout_requests()
    paper.single("01", "first reply", base, system, ["I just finished the report for my manager."],
                 max_tokens=LESSON01_FIRST_REPLY)
    cmp_kw = {"max_tokens": _default(steering.compare, "max_tokens"), "temperature": _default(steering.compare,
                                                                                              "temperature")}
    convs = [paper.conversation(base, s, [q], seed=0, **cmp_kw) for s in (None, system) for q in requests]  # type: ignore[arg-type]
    paper.requests("01", f"steering: {len(requests)} requests x 2 prompts", convs,
                   max_tokens=int(cmp_kw["max_tokens"]), concurrency=int(_default(steering.compare, "concurrency")))
    from .fewshot import with_examples
    from .persona import taskmaster

    few_shot = with_examples(taskmaster(), LESSON01_FEW_SHOT_EXAMPLES).render()
    convs = [paper.conversation(base, few_shot, [q], seed=0, **cmp_kw) for q in requests]  # type: ignore[arg-type]
    paper.requests("01", f"few-shot: {len(requests)} requests x 1 prompt", convs,
                   max_tokens=int(cmp_kw["max_tokens"]), concurrency=int(_default(steering.compare, "concurrency")))
    paper.single("01", "edited persona and overlays", base, system,
                 ["edited", *(name for name, _ in overlays)], max_tokens=LESSON01_SHORT_REPLY)
    # 02: the usage check, then the latency sweep (streamed, one at a time)
    paper.single("02", "usage check", base, system, ["Add a task: finish the quarterly report."],
                 max_tokens=LESSON02_USAGE_CHECK)
    sizes, repeats = _default(latency.measure, "sizes"), int(_default(latency.measure, "repeats"))
    lat_tokens = int(_default(latency.measure, "max_tokens"))
    lat_convs = [[(0, size + _count(latency.USER_MESSAGE) + 2 * MESSAGE_OVERHEAD, False)]
                 for size in [*sizes[:1], *(s for _ in range(repeats) for s in sizes)]]  # type: ignore[union-attr]
    paper.requests("02", f"latency: {len(sizes)} prompt sizes x {repeats} + warm-up", lat_convs,  # type: ignore[arg-type]
                   max_tokens=lat_tokens, concurrency=1)
    # 03: the teacher demo on the first train requests, one turn at a time
    demo = load_requests("train")[:LESSON03_TEACHER_REQUESTS]
    convs = [paper.conversation(base, system, r.texts, seed=0, max_tokens=LESSON03_TEACHER_TOKENS,
                                temperature=float(_default(Teacher, "temperature")))
             for r in demo]
    paper.requests("03", "teacher demo", convs, max_tokens=LESSON03_TEACHER_TOKENS, concurrency=1)
    # 04: evaluations before (no prompt, prompt), training, evaluation after, one served reply
    cfg = finetune.default_config("cpu" if cpu else "gpu")
    n_heldout = infer.CPU_HELDOUT if cpu else len(load_requests("eval"))
    eval_tokens = infer.eval_tokens(cpu)
    heldout = sum(_count(p) + 2 * MESSAGE_OVERHEAD for p in infer.held_out_prompts(n_heldout))
    prompt = 3 * heldout + n_heldout * (_count(system) + MESSAGE_OVERHEAD)  # before, prompted, after
    gen = 3 * n_heldout * eval_tokens
    paper.phases.append(Phase("04", f"3 evaluations of {n_heldout} held-out replies (in-process)", 3 * n_heldout,
                              0, 0, prompt, gen, gen / rates.inprocess + prompt / rates.prefill))
    paper.phases.append(training_phase("04", cfg.max_steps or 0, rates))
    paper.single("04", "served reply", tuned, None, ["Add a task: call the bank on Friday"],
                 max_tokens=LESSON04_SERVED_REPLY)
    questions = general.load_questions()
    q_prompt = 2 * sum(_count(q.question) + 2 * MESSAGE_OVERHEAD for q in questions)
    q_gen = 2 * len(questions) * int(_default(general.ask, "max_new_tokens"))
    paper.phases.append(Phase("04", f"general questions: {len(questions)} x base and fine-tuned (in-process)",
                              2 * len(questions), 0, 0, q_prompt, q_gen,
                              q_gen / rates.inprocess + q_prompt / rates.prefill))
    # 05: drift, context policies and attacks on [prompted, fine-tuned, hybrid (marketing)]
    settings = evaluate.suite_settings(quick=cpu, cpu=cpu)  # the profile's reply cap, not this machine's
    marketing = dict(overlays)["marketing"]
    targets = [(base, system), (tuned, None), (tuned, marketing)]
    scripts = evaluate.load_scripts()[: settings.n_scripts]
    sample = {"max_tokens": settings.max_tokens, "temperature": settings.temperature}

    def drift(model_systems: Sequence[tuple[str, str | None]], turns: int | None, **kw: object) -> list:
        return [paper.conversation(m, s, sc.users[:turns], seed=seed, **sample, **kw)  # type: ignore[arg-type]
                for m, s in model_systems for sc in scripts for seed in settings.seeds]

    def attacks(model_systems: Sequence[tuple[str, str | None]], per_category: int | None) -> list:
        chosen = evaluate.sample_attacks(evaluate.load_attacks(), per_category)
        seeds = _default(evaluate.run_attacks, "seeds")
        canary = evaluate.canary_line(evaluate.DEFAULT_CANARY)
        return [paper.conversation(m, f"{s}\n\n{canary}" if s else None, a.turns, seed=seed, **sample)  # type: ignore[arg-type]
                for m, s in model_systems for a in chosen for seed in seeds]  # type: ignore[union-attr]

    kw = {"max_tokens": settings.max_tokens, "concurrency": settings.concurrency}
    paper.requests("05", f"drift: {len(scripts)} script(s) x {len(settings.seeds)} seed(s) x 3 targets",
                   drift(targets, settings.max_turns), **kw)
    paper.requests("05", "context policies (prompted row, 2 policies)",
                   [c for policy in ("drop_oldest", "keep_system")
                    for c in drift(targets[:1], settings.max_turns, window=settings.context_budget, policy=policy)],
                   **kw)
    paper.requests("05", "attacks x 3 targets", attacks(targets, settings.per_category), **kw)
    # 06: the prompt change, then the hybrid: the core and every overlay through drift and attacks
    change = report.measure_prompt_change
    paper.single("06", "prompt change", base, f"{system}\n{_default(change, 'new_phrase')}",
                 [str(_default(change, "user"))], max_tokens=int(_default(change, "max_tokens")))
    paper.single("06", "request log: prompted", base, system, [f"logged {i}" for i in range(LESSON06_LOGGED_REQUESTS)],
                 max_tokens=1)
    paper.single("06", "request log: fine-tuned", tuned, None, ["logged 0"], max_tokens=1)
    hyb_targets = [(tuned, None), *((tuned, text) for _, text in overlays)]
    quick_hybrid = cpu  # evaluate_hybrid's quick mode: on a CPU
    scripts = scripts[:1] if quick_hybrid else scripts  # drift() plays these
    paper.requests("06", f"hybrid drift: core + {len(overlays)} overlays",
                   drift(hyb_targets, hybrid.QUICK_TURNS if quick_hybrid else None), **kw)
    paper.requests("06", "hybrid attacks", attacks(hyb_targets, 1 if quick_hybrid else settings.per_category), **kw)
    return Budget(profile, rates, paper.phases)


def training_phase(lesson: str, steps: int, rates: Rates) -> Phase:
    """Fine-tuning ``steps`` steps: set-up and merge plus ``steps`` x the profile's seconds per step."""
    return Phase(lesson, f"fine-tuning: {steps} steps", training_steps=steps, seconds=rates.training_seconds(steps))


def fallback_seconds(profile: str | None = None) -> float:
    """Estimated seconds to fine-tune with lesson 04's settings when a lesson finds no model (a fresh runtime)."""
    from . import config, finetune

    profile = profile or config.detect().name
    cfg = finetune.default_config("cpu" if profile == "cpu" else "gpu")
    return RATES[profile].training_seconds(cfg.max_steps or 0)
