"""Persona specs: a validated YAML description of a persona, rendered into a system prompt.

The same renderer produces the prompts of the embedded model's training corpus (for made-up
personas) and of TaskMaster in lesson 01, so the model has learned the prompt *format*, not the persona.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .io import load_yaml_model

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
PERSONAS_DIR = DATA_DIR / "personas"

SPEC_FIX = "compare with data/personas/taskmaster.yaml; every section is described in lesson 01"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Trait(_Strict):
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)


class Vocabulary(_Strict):
    use: list[str] = Field(min_length=1, description="phrases the persona says; they are its markers")
    avoid: list[str] = Field(default_factory=list, description="phrases the persona never says")

    @field_validator("use", "avoid")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if any(not p.strip() for p in v):
            raise ValueError("phrases must not be empty")
        return v


class Example(_Strict):
    user: str = Field(min_length=1)
    assistant: str = Field(min_length=1)


class PersonaSpec(_Strict):
    """A persona: who it is, how it answers, which words it uses and avoids, and its rules."""

    name: str = Field(min_length=1)
    role: str = Field(min_length=1, description="completes 'You are NAME, ...'")
    traits: list[Trait] = Field(min_length=1)
    response_pattern: list[str] = Field(min_length=1)
    vocabulary: Vocabulary
    rules: list[str] = Field(default_factory=list)
    examples: list[Example] = Field(default_factory=list)

    @property
    def markers(self) -> list[str]:
        """Phrases whose presence in a reply shows the persona (its 'use' vocabulary)."""
        return list(self.vocabulary.use)

    def render(self, overlay: Overlay | None = None) -> str:
        return render_system_prompt(self, overlay)


class Overlay(_Strict):
    """A context-specific adjustment (department, season) layered on a persona: the hybrid approach."""

    name: str = Field(min_length=1)
    focus: str = Field(min_length=1)
    terminology: list[str] = Field(default_factory=list)
    instructions: list[str] = Field(default_factory=list)


def load_persona(path: str | Path) -> PersonaSpec:
    """Load and validate a persona spec; bad YAML or a missing field names the file, line and field."""
    return load_yaml_model(path, PersonaSpec, fix=SPEC_FIX)


def load_overlay(path_or_name: str | Path) -> Overlay:
    path = Path(path_or_name)
    if not path.suffix:
        path = PERSONAS_DIR / "overlays" / f"{path_or_name}.yaml"
    return load_yaml_model(path, Overlay, fix="compare with data/personas/overlays/marketing.yaml")


def taskmaster() -> PersonaSpec:
    return load_persona(PERSONAS_DIR / "taskmaster.yaml")


def available_overlays() -> list[str]:
    return sorted(p.stem for p in (PERSONAS_DIR / "overlays").glob("*.yaml"))


def _quoted(phrases: list[str]) -> str:
    return ", ".join(f'"{p}"' for p in phrases)


def render_overlay(overlay: Overlay) -> str:
    """The overlay alone: the system prompt of a fine-tuned persona in the hybrid approach."""
    lines = [f"Context: {overlay.name}. {overlay.focus}"]
    if overlay.terminology:
        lines.append(f"Terms to use when relevant: {_quoted(overlay.terminology)}")
    lines += [f"- {i}" for i in overlay.instructions]
    return "\n".join(lines)


def render_system_prompt(spec: PersonaSpec, overlay: Overlay | None = None) -> str:
    """Render a spec as a system prompt (plain text, stable layout)."""
    parts = [f"You are {spec.name}, {spec.role}."]
    parts.append("Core traits:\n" + "\n".join(f"- {t.name}: {t.description}" for t in spec.traits))
    parts.append("Response pattern:\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(spec.response_pattern, 1)))
    vocab = f"Vocabulary to use: {_quoted(spec.vocabulary.use)}"
    if spec.vocabulary.avoid:
        vocab += f"\nVocabulary to avoid: {_quoted(spec.vocabulary.avoid)}"
    parts.append(vocab)
    if spec.rules:
        parts.append("Rules:\n" + "\n".join(f"- {r}" for r in spec.rules))
    for ex in spec.examples:
        parts.append(f"Example:\nUser: {ex.user}\n{spec.name}: {ex.assistant}")
    if overlay is not None:
        parts.append(render_overlay(overlay))
    return "\n\n".join(parts)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower().replace("\u2019", "'")).strip()


def has_marker(reply: str, spec: PersonaSpec) -> bool:
    """True when the reply contains at least one of the persona's 'use' phrases (case-insensitive)."""
    r = _norm(reply)
    return any(_norm(m).rstrip("!.") in r for m in spec.markers)


def uses_avoided(reply: str, spec: PersonaSpec) -> list[str]:
    r = _norm(reply)
    return [p for p in spec.vocabulary.avoid if _norm(p).rstrip(".") in r]


def marker_rate(replies: list[str], spec: PersonaSpec) -> float:
    """Share of replies that carry a persona marker (0.0 for no replies)."""
    return sum(has_marker(r, spec) for r in replies) / len(replies) if replies else 0.0
