"""The three configurations lesson 05 compares, built from what lesson 04 saved.

* **prompted**: the base model with the full persona system prompt (lesson 01's approach);
* **fine-tuned**: lesson 04's merged checkpoint with no system prompt at all;
* **hybrid**: the fine-tuned checkpoint plus a short department overlay as its system prompt.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import backends, results
from .. import config as pl_config
from ..errors import InputError
from ..persona import Overlay, PersonaSpec, load_overlay, taskmaster
from .runner import Target

LESSON04_FIX = ("run lesson 04 (it fine-tunes the model and saves results '04/training'), or pass "
                "finetuned_dir= the folder of a merged checkpoint")


def finetuned_dir_from_results() -> Path:
    """The merged checkpoint that lesson 04 saved (``results.load("04", "training")["data"]["merged_dir"]``)."""
    record = results.load("04", "training")
    if record is None:
        raise InputError("lesson 04 has not been run yet: there is no fine-tuned model to evaluate",
                         field="04/training", fix=LESSON04_FIX)
    merged = (record.get("data") or {}).get("merged_dir")
    if not merged:
        raise InputError("lesson 04's results name no merged checkpoint", field="merged_dir",
                         fix="run lesson 04 again with merging on (the default)")
    path = Path(merged)
    if not (path / "config.json").exists():
        raise InputError("lesson 04's merged checkpoint is missing (deleted or made on another machine)",
                         path=path, fix=LESSON04_FIX)
    return path


def ensure_finetuned() -> Path:
    """Lesson 04's merged checkpoint; if lesson 04 was skipped, fine-tune now with its default settings.

    The fallback trains into its own folder (so it never collides with a lesson 04 run in progress) and
    saves ``04/training`` like lesson 04 does, marked as trained by this fallback.
    """
    try:
        return finetuned_dir_from_results()
    except InputError as exc:
        from .. import finetune, rates

        config = finetune.default_config(output_dir=str(pl_config.home() / "runs" / "finetune-fallback"))
        estimate = rates.RATES[pl_config.detect().name].training_seconds(config.max_steps or 0)
        print(f"{exc.message} (looked in {pl_config.home()}).\nFine-tuning now with lesson 04's default settings "
              f"({config.max_steps} steps): {rates.fmt_minutes(estimate)} on this profile (estimated; "
              "`personalab budget` shows the rates it assumes).")
        finetune.prepare(config)
        paths = finetune.dataset_paths()
        result = finetune.train(config, paths.train, eval_dataset=paths.eval)
        summary = {**result.summary(), "config": config.to_dict(), "trained_by": "lesson 05 fallback"}
        results.save("04", "training", summary, model=config.base_model)
        return Path(summary["merged_dir"])


def local_target(name: str, model_dir: str | Path, system_prompt: str | None = None,
                 overlay: Overlay | None = None, **kwargs: Any) -> Target:
    """A target on a local checkpoint, served by a shared :class:`personalab.server.LocalServer`."""
    server = backends.local_server(model_dir)
    client = backends.client("local", model_dir=model_dir)
    return Target(name, client, server.model, system_prompt, overlay, **kwargs)


def finetune_base() -> str:
    """The base model lesson 04 fine-tuned (its saved ``04/training`` config), else the profile's default."""
    record = results.load("04", "training") or {}
    data = record.get("data") or {}
    base = (data.get("config") or {}).get("base_model") or data.get("base_model")
    if base:
        return str(base)
    from ..finetune import default_config

    return default_config().base_model


def base_model_dir(base: str) -> Path:
    """A local folder for ``base`` (see :func:`personalab.backends.base_model_dir`)."""
    return backends.base_model_dir(base)


def mismatched_bases(targets: list[Target]) -> str | None:
    """A one-line warning when lesson 05's compared rows (all but reference rows) sit on different bases."""
    compared = {t.name: t.base_model for t in targets if not t.name.startswith("reference")}
    if len(set(compared.values())) <= 1:
        return None
    return "base models differ, so the comparison is not prompt vs weights: " + ", ".join(
        f"{name} on {base or '?'}" for name, base in compared.items()
    )


def reference_target(spec: PersonaSpec, base_dir: Path | None = None) -> Target | None:
    """The active API or shared server as an extra, labelled row (prompted persona). None when the backend is
    local, or when the shared server serves the base model itself (the row would repeat the prompted one)."""
    ref = backends.reference_side(base_dir)
    if ref is None:
        return None
    return Target(ref.label, ref.client, ref.model, spec.render(), base_model=ref.base_model)


def course_targets(
    spec: PersonaSpec | None = None,
    *,
    overlay: str | Overlay = "marketing",
    finetuned_dir: str | Path | None = None,
    base: Target | None = None,
) -> list[Target]:
    """[prompted, fine-tuned, hybrid] for ``spec`` (default TaskMaster), all on the base lesson 04 fine-tuned.

    The prompted row is that base model with the persona prompt, served by the course's local server
    (SmolLM2-135M-Instruct on cpu, the GPU model lesson 04 fine-tuned otherwise), so the rows differ only in where the
    persona lives. An API model (key present) or a shared server (``OPENAI_BASE_URL``) serving another model,
    and ``base=`` if given, are appended as labelled reference rows, never as the prompted side.
    """
    spec = spec or taskmaster()
    ov = load_overlay(overlay) if isinstance(overlay, str) else overlay
    tuned = Path(finetuned_dir) if finetuned_dir is not None else ensure_finetuned()
    if not (tuned / "config.json").exists():
        raise InputError("not a model checkpoint (config.json missing)", path=tuned, fix=LESSON04_FIX)
    base_name = finetune_base()
    base_dir = base_model_dir(base_name)
    targets = [
        local_target("prompted", base_dir, spec.render(), base_model=base_name),
        local_target("fine-tuned", tuned, base_model=base_name),
        local_target(f"hybrid ({ov.name})", tuned, overlay=ov, base_model=base_name),
    ]
    extra = [reference_target(spec, base_dir)]
    if base is not None:
        name = base.name if base.name.startswith("reference") else f"reference: {base.name}"
        extra.append(replace(base, name=name, base_model=base.base_model or base.model))
    targets += [t for t in extra if t is not None]
    warning = mismatched_bases(targets)
    if warning:
        print("WARNING: " + warning)
    return targets
