"""Persona drift: does the persona fade as a conversation grows long?

Drift scripts (``data/drift/*.yaml``) are long conversations — at least 20 user turns that wander between
topics — with **probes** every few turns: messages to which the persona should clearly show (the user
reports progress, asks for a plan). Each reply is scored; adherence per turn is averaged over several
conversations with a bootstrap confidence interval. The runner's context policy decides what happens when
the conversation outgrows the model's context window (see :func:`personalab.evaluate.runner.fit_context`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import DATA_DIR
from ..errors import InputError
from ..io import read_yaml, validate_with_lines
from . import metrics
from .fluency import default_gate
from .runner import Conversation, Job, Runner, Target
from .scorers import Scorer

DRIFT_DIR = DATA_DIR / "drift"
MIN_TURNS = 20
MAX_PROBE_GAP = 5
MIN_TOPICS = 3
DRIFT_FIX = "compare with data/drift/busy_week.yaml: at least 20 turns, a probe at least every 5 turns, 3+ topics"


class ScriptTurn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    user: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    probe: bool = False


class DriftScript(BaseModel):
    """A long scripted conversation: the user's turns, each with a topic and whether it is a persona probe."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = Field(min_length=1)
    turns: list[ScriptTurn] = Field(min_length=MIN_TURNS)

    @model_validator(mode="after")
    def _shape(self) -> DriftScript:
        topics = {t.topic for t in self.turns}
        if len(topics) < MIN_TOPICS:
            raise ValueError(f"the conversation should shift between at least {MIN_TOPICS} topics, it has "
                             f"{len(topics)} ({', '.join(sorted(topics))})")
        return self

    @property
    def users(self) -> list[str]:
        return [t.user for t in self.turns]

    @property
    def probes(self) -> list[int]:
        return [i for i, t in enumerate(self.turns) if t.probe]


def _probe_gaps(script: DriftScript) -> int | None:
    """Index of the first turn that ends a stretch of more than MAX_PROBE_GAP turns without a probe."""
    since = 0
    for i, t in enumerate(script.turns):
        since = 0 if t.probe else since + 1
        if since > MAX_PROBE_GAP:
            return i
    return None


def load_script(path: str | Path) -> DriftScript:
    """One drift script; problems (too few turns, too few probes or topics) name the file, line and field."""
    data, node = read_yaml(path)
    script = validate_with_lines(data, node, DriftScript, path=path, fix=DRIFT_FIX)
    gap = _probe_gaps(script)
    if gap is not None:
        line = None
        try:
            line = node.value[[k.value for k, _ in node.value].index("turns")][1].value[gap].start_mark.line + 1
        except (AttributeError, ValueError, IndexError, TypeError):
            pass
        raise InputError(f"{MAX_PROBE_GAP + 1} turns in a row without a persona probe (up to turn {gap + 1})",
                         path=path, line=line, field=f"turns.{gap}.probe", fix=DRIFT_FIX)
    return script


def load_scripts(paths: Sequence[str | Path] | None = None) -> list[DriftScript]:
    paths = list(paths) if paths is not None else sorted(DRIFT_DIR.glob("*.yaml"))
    if not paths:
        raise InputError("no drift scripts found", path=DRIFT_DIR, fix=DRIFT_FIX)
    scripts = [load_script(p) for p in paths]
    ids = [s.id for s in scripts]
    if len(set(ids)) != len(ids):
        raise InputError("two drift scripts share an id", field="id", fix="give every script its own id")
    return scripts


# ------------------------------------------------------------------------------------------- results
@dataclass
class TurnScore:
    target: str
    script: str
    seed: int
    turn: int  # 1-based
    topic: str
    probe: bool
    scores: dict[str, float]
    prompt_tokens: int
    dropped: int
    system_kept: bool
    has_system: bool
    reply: str
    usable: bool = True  # the fluency gate's verdict: False = not well-formed text (scored 0 by every scorer)


@dataclass
class DriftResult:
    """Scores of every reply of every conversation, with per-turn statistics and plots."""

    rows: list[TurnScore]
    targets: list[str]
    scorers: list[str]
    thresholds: dict[str, float] = field(default_factory=dict)
    context_windows: dict[str, int | None] = field(default_factory=dict)

    def _rows(self, target: str, probes_only: bool = False) -> list[TurnScore]:
        return [r for r in self.rows if r.target == target and (r.probe or not probes_only)]

    @property
    def n_turns(self) -> int:
        return max((r.turn for r in self.rows), default=0)

    def per_turn(self, target: str, scorer: str | None = None, *, probes_only: bool = False) -> list[metrics.Estimate]:
        """Mean score at each turn (1..n) over the conversations, with a bootstrap CI."""
        scorer = scorer or self.scorers[0]
        rows = self._rows(target, probes_only)
        turns = range(1, self.n_turns + 1)
        return [metrics.bootstrap_ci([r.scores[scorer] for r in rows if r.turn == t]) for t in turns]

    def first_overflow(self, target: str) -> int | None:
        """First turn (median over conversations) at which old messages had to be dropped, or None."""
        firsts = []
        for key in {(r.script, r.seed) for r in self._rows(target)}:
            turns = [r.turn for r in self._rows(target) if (r.script, r.seed) == key and r.dropped > 0]
            if turns:
                firsts.append(min(turns))
        return sorted(firsts)[len(firsts) // 2] if firsts else None

    def system_lost_share(self, target: str) -> float:
        """Share of replies of a target *with* a system prompt that were generated after it was dropped."""
        rows = [r for r in self._rows(target) if r.has_system]
        return sum(not r.system_kept for r in rows) / len(rows) if rows else 0.0

    def summary(self, scorer: str | None = None) -> dict[str, dict[str, Any]]:
        """Per target: adherence (mean score and on-persona share) early vs late, on probes, overflow turn, and
        how many replies the fluency gate rejected as unusable (they score 0)."""
        scorer = scorer or self.scorers[0]
        thr = self.thresholds.get(scorer, 0.5)
        out: dict[str, dict[str, Any]] = {}
        for t in self.targets:
            rows = self._rows(t)
            early = [r.scores[scorer] for r in rows if r.turn <= 5]
            late = [r.scores[scorer] for r in rows if r.turn > self.n_turns - 5]
            probes = [r.scores[scorer] >= thr for r in rows if r.probe]
            unusable = sum(not r.usable for r in rows)
            out[t] = {
                "replies": len(rows),
                "unusable_replies": unusable,
                "unusable_share": unusable / len(rows) if rows else 0.0,
                "mean_score": metrics.bootstrap_ci([r.scores[scorer] for r in rows]).as_dict(),
                "early_mean_score": metrics.bootstrap_ci(early).as_dict(),
                "late_mean_score": metrics.bootstrap_ci(late).as_dict(),
                "probe_on_persona_rate": metrics.rate(probes).as_dict(),
                "first_overflow_turn": self.first_overflow(t),
                "system_prompt_lost_share": self.system_lost_share(t),
                "conversations": len({(r.script, r.seed) for r in rows}),
            }
        return out

    def plot(self, scorer: str | None = None, *, probes_only: bool = False, tokens: bool = True) -> Any:
        """Adherence per turn (mean and 95 % CI band) for each target; below, prompt tokens per turn against
        the context window, with a mark where each target first had to drop messages."""
        import matplotlib.pyplot as plt

        scorer = scorer or self.scorers[0]
        fig, axes = plt.subplots(2 if tokens else 1, 1, figsize=(8, 6 if tokens else 3.4), sharex=True,
                                 squeeze=False, gridspec_kw={"height_ratios": [2, 1] if tokens else [1]})
        ax = axes[0][0]
        xs = list(range(1, self.n_turns + 1))
        for t in self.targets:
            est = self.per_turn(t, scorer, probes_only=probes_only)
            pts = [(x, e) for x, e in zip(xs, est, strict=True) if e.n]
            line = ax.plot([x for x, _ in pts], [e.value for _, e in pts], marker="o", ms=3, label=t)[0]
            ax.fill_between([x for x, _ in pts], [e.low for _, e in pts], [e.high for _, e in pts],
                            color=line.get_color(), alpha=0.15)
            first = self.first_overflow(t)
            if first:
                ax.axvline(first, color=line.get_color(), ls=":", lw=1)
        ax.axhline(self.thresholds.get(scorer, 0.5), color="grey", lw=0.8, ls="--")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"adherence ({scorer})")
        ax.set_title("persona adherence per turn" + (" (probe turns)" if probes_only else "") +
                     "; dotted: first turn that overflowed the context")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        if tokens:
            ax2 = axes[1][0]
            for t in self.targets:
                rows = self._rows(t)
                mean_tokens = [metrics.mean([r.prompt_tokens for r in rows if r.turn == x]) for x in xs]
                ax2.plot(xs, mean_tokens, label=t)
            windows = {w for w in self.context_windows.values() if w}
            for w in windows:
                ax2.axhline(w, color="red", lw=1, ls="--")
                ax2.text(1, w, " context window", color="red", va="bottom", fontsize=8)
            ax2.set_ylabel("prompt tokens sent")
            ax2.grid(alpha=0.3)
            ax2.set_xlabel("user turn")
        else:
            ax.set_xlabel("user turn")
        fig.tight_layout()
        return fig

    def to_json(self, scorer: str | None = None) -> dict[str, Any]:
        scorer = scorer or self.scorers[0]
        return {
            "scorer": scorer,
            "scorers": self.scorers,
            "targets": self.targets,
            "n_turns": self.n_turns,
            "context_windows": self.context_windows,
            "summary": {s: self.summary(s) for s in self.scorers},
            "per_turn": {t: [e.as_dict() for e in self.per_turn(t, scorer)] for t in self.targets},
        }


def run_drift(
    targets: Sequence[Target],
    scripts: Sequence[DriftScript] | None = None,
    runner: Runner | None = None,
    *,
    scorers: Sequence[Scorer] = (),
    seeds: Sequence[int] = (0,),
    max_turns: int | None = None,
) -> DriftResult:
    """Play every script against every target (once per seed) and score every reply with every scorer."""
    from .scorers import RuleScorer

    scripts = list(scripts) if scripts is not None else load_scripts()
    runner = runner or Runner()
    scorers = list(scorers) or [RuleScorer()]
    jobs, convs = _play(targets, scripts, runner, seeds, max_turns)
    return _result(targets, scripts, scorers, jobs, convs)


def _play(targets: Sequence[Target], scripts: Sequence[DriftScript], runner: Runner, seeds: Sequence[int],
          max_turns: int | None) -> tuple[list[Job], list[Conversation]]:
    jobs = [Job(t, s.users[:max_turns], script=s.id, seed=seed) for t in targets for s in scripts for seed in seeds]
    return jobs, runner.run(jobs, desc="drift")


def _result(targets: Sequence[Target], scripts: Sequence[DriftScript], scorers: Sequence[Scorer], jobs: list[Job],
            convs: list[Conversation]) -> DriftResult:
    by_id = {s.id: s for s in scripts}
    rows: list[TurnScore] = []
    for job, conv in zip(jobs, convs, strict=True):
        rows += _score(conv, by_id[job.script], scorers, has_system=job.target.system() is not None)
    return DriftResult(rows, [t.name for t in targets], [s.name for s in scorers],
                       {s.name: s.threshold for s in scorers}, {t.name: t.context_window for t in targets})


def _score(conv: Conversation, script: DriftScript, scorers: Sequence[Scorer], *, has_system: bool) -> list[TurnScore]:
    replies = conv.replies
    users = [t.user for t in conv.turns]
    by_scorer = {s.name: s.score_many(replies, users) for s in scorers}
    gate = next((s.gate for s in scorers if s.gate is not None), None) or default_gate()
    usable = [v.ok for v in gate.check_many(replies)]
    return [
        TurnScore(conv.target, conv.script, conv.seed, i + 1, script.turns[i].topic, script.turns[i].probe,
                  {name: vals[i] for name, vals in by_scorer.items()}, t.prompt_tokens, t.dropped, t.system_kept,
                  has_system, t.reply, usable[i])
        for i, t in enumerate(conv.turns)
    ]


def compare_policies(
    target: Target,
    scripts: Sequence[DriftScript] | None = None,
    runner: Runner | None = None,
    *,
    policies: Sequence[str] = ("drop_oldest", "keep_system"),
    scorers: Sequence[Scorer] = (),
    seeds: Sequence[int] = (0,),
    max_turns: int | None = None,
    context_window: int | None = None,
) -> DriftResult:
    """The same target under several context policies: one curve per policy (named 'target · policy').

    ``context_window`` (tokens) caps what the target may read, below its model's own window: a deployment that
    limits context to save cost, or a way to see overflow with scripts shorter than the model's window."""
    from concurrent.futures import ThreadPoolExecutor

    from .scorers import RuleScorer

    scripts = list(scripts) if scripts is not None else load_scripts()
    runner = runner or Runner()
    scorers = list(scorers) or [RuleScorer()]
    window = {"context_window": context_window} if context_window else {}
    named = [dataclasses.replace(target, name=f"{target.name} · {policy}", **window) for policy in policies]
    runners = [dataclasses.replace(runner, policy=policy) for policy in policies]
    # The policies' conversations are independent: played at the same time (the server batches them), then scored
    # one policy after another (the scorers' models are not shared between threads).
    with ThreadPoolExecutor(max_workers=len(policies)) as pool:
        played = list(pool.map(lambda i: _play([named[i]], scripts, runners[i], seeds, max_turns), range(len(named))))
    results = [_result([t], scripts, scorers, jobs, convs) for t, (jobs, convs) in zip(named, played, strict=True)]
    first = results[0]
    return DriftResult([row for res in results for row in res.rows], [n for res in results for n in res.targets],
                       first.scorers, first.thresholds,
                       {k: v for res in results for k, v in res.context_windows.items()})
