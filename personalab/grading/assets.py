"""What some exercises need from the course, prepared once per grading run instead of once per submission.

Exercise 05 plays lesson 05's suites against lesson 04's fine-tuned model. Graded naively, every submission
would fine-tune its own model inside its sandbox (minutes on a CPU) and generate every suite reply again, and the
clock would stop a correct notebook. So before the first notebook runs, the grader

1. makes sure the fine-tuned model exists in its own ``PERSONALAB_HOME`` (fine-tuning it once, with lesson 04's
   settings, when the instructor never ran lesson 04 there), and
2. plays the grading-sized suites the model solution plays (:func:`personalab.evaluate.suite_settings`, the
   checks' calibration) once, filling the reply cache, and
3. has the fluency gate read the suites' replies and the labelled sample once, keeping its perplexity readings
   (:func:`personalab.evaluate.fluency.perplexity_store`): reading the 290 labelled replies with the reference
   model took 76-82 s of every notebook's agreement cell, and the suites' replies most of its 92-s suite cell.

Each sandbox then sees the models at the same paths as the grader (read-only), a copy of the 04/training record,
of the reply cache and of the gate's readings: a submission that plays the same suites gets its replies and
readings from the caches, the replies every submission is graded on are the same, and only what a learner adds
(their own attack) is generated and read. The base and the fine-tuned model are served by the grader's own
servers for the whole run (:func:`personalab.grading.batch.model_server`), so a sandbox starts none. Nothing here
trusts a submission: the caches and the record are the grader's, copied per job (what a kernel writes to its
copy is thrown away with the job), and they hold only what the grader's own models and reference model answered.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import config

#: Exercises that play lesson 05's suites on the fine-tuned model.
SUITE_EXERCISES = frozenset({"05"})


@dataclass(frozen=True)
class Assets:
    """What the grader prepared: the fine-tuned model, its 04/training record and the warmed reply cache."""

    finetuned_dir: Path | None = None
    training_record: Path | None = None
    reply_cache: Path | None = None
    #: the fluency gate's perplexity readings of the suites' replies and the labelled sample
    perplexity_cache: Path | None = None
    seconds: float = 0.0

    @property
    def ready(self) -> bool:
        return self.finetuned_dir is not None

    def readonly_paths(self) -> list[Path]:
        """Folders a sandbox mounts read-only at the same paths as here (so cache keys, which name the served
        model folder, match the grader's)."""
        return [config.models_dir()] + ([self.finetuned_dir] if self.finetuned_dir else [])

    def copy_into(self, jobdir: Path) -> dict[str, Path]:
        """Copy the record and the caches into a job folder; returns {"results": dir, "cache": file,
        "perplexity": file}."""
        out: dict[str, Path] = {}
        if self.training_record is not None:
            dest = jobdir / "results" / "04" / "training.json"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.training_record, dest)
            out["results"] = jobdir / "results"
        if self.reply_cache is not None:
            dest = jobdir / "cache" / "eval_responses.jsonl"
            dest.parent.mkdir(parents=True, exist_ok=True)
            if self.reply_cache.exists():
                shutil.copyfile(self.reply_cache, dest)
            out["cache"] = dest
        if self.perplexity_cache is not None and self.perplexity_cache.exists():
            dest = jobdir / "cache" / "perplexity.jsonl"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.perplexity_cache, dest)
            out["perplexity"] = dest
        return out


def needed(exercises: set[str | None]) -> bool:
    return bool(SUITE_EXERCISES & {e for e in exercises if e})


def prepare(exercises: set[str | None], *, progress: bool = True) -> Assets:
    """Prepare what ``exercises`` need (nothing for most): see the module docstring. Prints what it does."""
    if not needed(exercises):
        return Assets()
    from .. import backends, evaluate, persona
    from ..evaluate.fluency import perplexity_cache_path
    from ..evaluate.runner import default_cache_path
    from ..evaluate.targets import ensure_finetuned

    start = time.monotonic()
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    say("exercise 05: preparing lesson 04's fine-tuned model and the suites' replies once for every submission")
    tuned = ensure_finetuned()
    record = config.results_dir() / "04" / "training.json"
    spec = persona.taskmaster()
    settings = evaluate.suite_settings()
    runner = settings.runner()
    try:
        targets = evaluate.course_targets(spec, overlay="marketing")
        scripts = evaluate.load_scripts()[: settings.n_scripts]
        evaluate.run_drift(targets, scripts, runner, scorers=[evaluate.RuleScorer(spec)], seeds=settings.seeds,
                           max_turns=settings.max_turns)
        attacks = evaluate.sample_attacks(evaluate.load_attacks(), settings.per_category)
        evaluate.run_attacks(targets, attacks, runner)
        # the gate's readings of the labelled sample, which the notebook's agreement cell reads (the suites'
        # replies were read while they were scored)
        evaluate.default_gate().check_many([row.reply for row in evaluate.load_labelled()])
    finally:
        backends.stop_local_servers()
    seconds = time.monotonic() - start
    say(f"exercise 05: ready in {seconds:.0f} s ({runner.requests} requests, {runner.cache.hits} from the cache)")
    return Assets(finetuned_dir=Path(tuned).resolve(), training_record=record if record.exists() else None,
                  reply_cache=default_cache_path(), perplexity_cache=perplexity_cache_path(), seconds=seconds)


__all__ = ["SUITE_EXERCISES", "Assets", "needed", "prepare"]
