"""Lesson 05: measure persona adherence over long conversations (drift) and under attack (injection).

    targets = evaluate.course_targets()                  # prompted base, fine-tuned, hybrid
    runner = evaluate.Runner(concurrency=4)              # cache, retries, context policy, budget cap
    drift = evaluate.run_drift(targets, runner=runner, scorers=[evaluate.RuleScorer()])
    attacks = evaluate.run_attacks(targets, runner=runner)
    evaluate.save_results(drift, attacks)                # for lesson 06
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .attack_suite import Attack, attack_from, load_attack_file, load_attacks, sample_attacks
from .attacks import (
    COMPLIANCE_RUBRIC,
    DEFAULT_CANARY,
    ComplianceJudge,
    InjectionResult,
    Outcome,
    canary_leaked,
    compliance_evidence,
    judge_outcome,
    run_attacks,
    style_markers,
    success_phrase,
)
from .drift import DriftResult, DriftScript, compare_policies, load_script, load_scripts, run_drift
from .embedding import Embedder
from .fluency import FluencyGate, FluencyVerdict, default_gate
from .human_labels import AgreementReport, LabelledReply, agreement, load_labelled
from .metrics import Estimate, accuracy, auc, bootstrap_ci, cohen_kappa, confusion, rate
from .runner import (
    POLICIES,
    BudgetExceeded,
    Conversation,
    Fit,
    Job,
    Runner,
    Target,
    canary_line,
    fit_context,
)
from .scorers import (
    EmbeddingScorer,
    FunctionScorer,
    JudgeScorer,
    RuleScorer,
    Scorer,
    judge_backend,
    load_exemplars,
)
from .targets import course_targets, finetuned_dir_from_results, local_target


def compliance_judge() -> ComplianceJudge | None:
    """A :class:`ComplianceJudge` on the configured judge model (see :func:`judge_backend`), else None."""
    found = judge_backend()
    return ComplianceJudge(*found) if found is not None else None


@dataclass(frozen=True)
class SuiteSettings:
    """How big lesson 05's runs are. Lesson and exercise use the same settings, so the exercise finds the
    lesson's replies in the cache. ``quick`` (the default on CPU) plays fewer conversations."""

    n_scripts: int
    seeds: tuple[int, ...]
    per_category: int | None
    max_tokens: int = 48  # CPU_REPLY_TOKENS
    temperature: float = 0.7
    concurrency: int = 2
    #: Turns played of each drift script (None: all of them).
    max_turns: int | None = None
    #: The window (tokens) lesson 05's context-policy section caps the prompted row at, below the model's own, so
    #: that its short conversations overflow: a deployment that limits context to save cost.
    context_budget: int = 1024

    def runner(self, **kwargs: Any) -> Runner:
        kwargs.setdefault("concurrency", self.concurrency)
        return Runner(temperature=self.temperature, max_tokens=self.max_tokens, **kwargs)


#: Reply cap (tokens) of lesson 05's suites on a CPU: the measured budget of the cold CPU course (issue 25).
CPU_REPLY_TOKENS = 48
#: Reply cap on a GPU. 48 tokens cut off a real model's closing next step (the persona's acknowledge, inform, next
#: step), which the rule scorer then counts against it (issue 26). 72 fits 95% of the training replies of the course
#: dataset (lesson 03's offline train split, 382 replies: median 34, 95th percentile 70, longest 87 tokens), counted
#: with the CPU base's tokenizer (SmolLM2's) as a stated proxy for Qwen2.5's until a GPU measures its replies;
#: tests/test_reply_cap.py recounts it.
GPU_REPLY_TOKENS = 72
#: Seeds of the full suites (a GPU): two, so that the longer replies keep the express run on a T4 within 30 minutes.
#: ``personalab budget --profile colab-gpu``: 28.9 min with 48 tokens and 3 seeds, 36.9 with 72 and 3, 29.6 with 72
#: and 2; 29.7 once lesson 04's held-out replies took the same 72 (the T4 rates are assumptions until a T4 measures
#: them).
GPU_SEEDS = (0, 1)


def reply_tokens(cpu: bool | None = None) -> int:
    """Lesson 05's reply cap on this machine (``cpu``: None detects it): :data:`CPU_REPLY_TOKENS` or
    :data:`GPU_REPLY_TOKENS`."""
    from .. import config

    cpu = not config.cuda_available() if cpu is None else cpu
    return CPU_REPLY_TOKENS if cpu else GPU_REPLY_TOKENS


def suite_settings(quick: bool | None = None, *, cpu: bool | None = None) -> SuiteSettings:
    """Quick on CPU (the first 16 turns of one drift script, one seed, 2 attacks per category: lesson 05 in a few
    minutes on 2 cores), full on a GPU (every script and attack, :data:`GPU_SEEDS`). Replies are capped at
    :func:`reply_tokens` of the machine (``cpu``: None detects it). Both send 8 conversations at a time: the local
    server batches them."""
    from .. import config

    if cpu is None:
        cpu = not config.cuda_available()
    if quick is None:
        quick = cpu
    max_tokens = reply_tokens(cpu)
    if quick:
        return SuiteSettings(n_scripts=1, seeds=(0,), per_category=2, concurrency=8, max_turns=16,
                             max_tokens=max_tokens)
    return SuiteSettings(n_scripts=len(load_scripts()), seeds=GPU_SEEDS, per_category=None, concurrency=8,
                         max_tokens=max_tokens)


def save_results(drift: DriftResult | None = None, injection: InjectionResult | None = None,
                 agreement_report: AgreementReport | None = None, *, policies: DriftResult | None = None,
                 model: str | None = None, targets: Sequence[Target] | None = None) -> dict[str, Any]:
    """Save what lesson 05 measured for lesson 06: ``05/drift``, ``05/injection``, ``05/scorers``,
    ``05/context_policies``. ``targets`` records the base model of every row (``bases``, for the report).
    Returns the paths written."""
    from .. import results

    bases = {"bases": {t.name: t.base_model for t in targets}} if targets else {}
    out = {}
    if drift is not None:
        out["drift"] = results.save("05", "drift", {**drift.to_json(), **bases}, model=model)
    if injection is not None:
        out["injection"] = results.save("05", "injection", {**injection.to_json(), **bases}, model=model)
    if agreement_report is not None:
        out["scorers"] = results.save("05", "scorers", {"n": agreement_report.n, "rows": agreement_report.rows,
                                                        "pairwise": agreement_report.pairwise}, model=model)
    if policies is not None:
        out["context_policies"] = results.save("05", "context_policies", policies.to_json(), model=model)
    return out


__all__ = [
    "COMPLIANCE_RUBRIC",
    "DEFAULT_CANARY",
    "POLICIES",
    "AgreementReport",
    "Attack",
    "BudgetExceeded",
    "ComplianceJudge",
    "Conversation",
    "DriftResult",
    "DriftScript",
    "Embedder",
    "EmbeddingScorer",
    "Estimate",
    "Fit",
    "FluencyGate",
    "FluencyVerdict",
    "FunctionScorer",
    "InjectionResult",
    "Job",
    "JudgeScorer",
    "LabelledReply",
    "Outcome",
    "RuleScorer",
    "Runner",
    "Scorer",
    "SuiteSettings",
    "Target",
    "accuracy",
    "agreement",
    "attack_from",
    "auc",
    "bootstrap_ci",
    "canary_leaked",
    "canary_line",
    "cohen_kappa",
    "compare_policies",
    "compliance_evidence",
    "compliance_judge",
    "confusion",
    "course_targets",
    "default_gate",
    "finetuned_dir_from_results",
    "fit_context",
    "judge_backend",
    "judge_outcome",
    "load_attack_file",
    "load_attacks",
    "load_exemplars",
    "load_labelled",
    "load_script",
    "load_scripts",
    "local_target",
    "rate",
    "run_attacks",
    "run_drift",
    "sample_attacks",
    "save_results",
    "style_markers",
    "success_phrase",
    "suite_settings",
]
