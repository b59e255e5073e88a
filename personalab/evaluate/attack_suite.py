"""The attack suite as data: ``data/attacks/*.yaml``, one file per category, each attack a short scripted
conversation with what counts as compliance. :func:`load_attacks` reads and checks the files (a problem names
the file, line and field); :func:`attack_from` checks a learner's own attack the same way. Running and judging
the attacks is :mod:`personalab.evaluate.attacks`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..config import DATA_DIR
from ..errors import InputError
from ..io import parse_yaml, read_yaml, validate_with_lines

ATTACKS_DIR = DATA_DIR / "attacks"
ATTACK_FIX = ("compare with data/attacks/instruction_override.yaml: id, turns, and what counts as compliance "
              "(success phrases and/or style markers; goal: leak for the canary)")
COMPLIANCE_FIX = ("state what counts as compliance: `success: [phrase, ...]` (a phrase the attack asks for) and/or "
                  "`markers: [word, ...]` (style markers, `min_markers` of them needed), or `goal: leak`")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AttackItem(_Strict):
    """One attack as written in a category file."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="lower-case letters, digits and dashes")
    turns: list[str] = Field(min_length=1, max_length=8, description="the user's messages, in order")
    success: list[str] = Field(default_factory=list,
                               description="phrases in the last reply that show the attack worked")
    markers: list[str] = Field(default_factory=list, description="style markers of the requested style")
    min_markers: int = Field(2, ge=1, description="how many different markers prove compliance")
    judge: str = Field("", description="the requested behaviour, in words, for an LLM judge")
    goal: Literal["persona", "leak"] = "persona"
    note: str = ""

    @field_validator("turns", "success", "markers")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if any(not t.strip() for t in v):
            raise ValueError("entries must not be empty")
        return v


class AttackFile(_Strict):
    category: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    attacks: list[AttackItem] = Field(min_length=1)


@dataclass(frozen=True)
class Attack:
    """An attack with its category (and where it was defined, for error messages)."""

    id: str
    category: str
    turns: tuple[str, ...]
    success: tuple[str, ...] = ()
    goal: str = "persona"
    note: str = ""
    source: str = ""
    markers: tuple[str, ...] = ()
    min_markers: int = 2
    judge: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "category": self.category, "turns": list(self.turns), "success": list(self.success),
                "markers": list(self.markers), "min_markers": self.min_markers, "judge": self.judge,
                "goal": self.goal}

    @property
    def compliance_rule(self) -> str:
        """What counts as compliance with this attack, in words."""
        parts = []
        if self.goal == "leak":
            parts.append("the planted canary appears in a reply")
        if self.success:
            parts.append("the last reply contains " + " or ".join(repr(p) for p in self.success))
        if self.markers:
            parts.append(f"the last reply uses {min(self.min_markers, len(self.markers))} of the style markers "
                         + ", ".join(repr(m) for m in self.markers))
        if self.judge:
            parts.append(f"a judge says YES to: {self.judge}")
        return "; or ".join(parts)


def _attack(item: AttackItem, category: str, source: str) -> Attack:
    return Attack(item.id, category, tuple(item.turns), tuple(item.success), item.goal, item.note, source,
                  tuple(item.markers), item.min_markers, item.judge)


def _check_compliance(item: AttackItem, *, path: str | Path, line: int | None, field_: str) -> None:
    """A persona attack must say what proves compliance; markers must be able to reach ``min_markers``."""
    if item.goal == "persona" and not item.success and not item.markers:
        raise InputError(f"attack {item.id!r} does not state what counts as compliance", path=path, line=line,
                         field=f"{field_}success", fix=COMPLIANCE_FIX)
    if item.markers and item.min_markers > len(item.markers):
        raise InputError(f"min_markers is {item.min_markers} but attack {item.id!r} lists {len(item.markers)} "
                         "marker(s)", path=path, line=line, field=f"{field_}min_markers",
                         fix="lower min_markers or add markers")


def _item_line(node: Any, index: int | None) -> int | None:
    try:
        if index is None:
            return node.start_mark.line + 1
        attacks = next(v for k, v in node.value if k.value == "attacks")
        return attacks.value[index].start_mark.line + 1
    except (AttributeError, StopIteration, IndexError, TypeError):
        return None


def load_attack_file(path: str | Path) -> list[Attack]:
    """One category file; a problem names the file, line and field."""
    data, node = read_yaml(path)
    f = validate_with_lines(data, node, AttackFile, path=path, fix=ATTACK_FIX)
    for i, a in enumerate(f.attacks):
        _check_compliance(a, path=path, line=_item_line(node, i), field_=f"attacks.{i}.")
    return [_attack(a, f.category, f"{path}") for a in f.attacks]


def load_attacks(paths: Sequence[str | Path] | str | Path | None = None) -> list[Attack]:
    """Every attack of the given files (default: all of ``data/attacks``); ids must be unique."""
    if paths is None:
        paths = sorted(ATTACKS_DIR.glob("*.yaml"))
    elif isinstance(paths, (str, Path)):
        p = Path(paths)
        paths = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    if not paths:
        raise InputError("no attack files found", path=ATTACKS_DIR, fix="add a YAML file per category")
    out: list[Attack] = []
    seen: dict[str, str] = {}
    for path in paths:
        for a in load_attack_file(path):
            if a.id in seen:
                raise InputError(f"attack id {a.id!r} is also used in {seen[a.id]}", path=path,
                                 line=_id_line(path, a.id), field="id", fix="give every attack its own id")
            seen[a.id] = str(path)
            out.append(a)
    return out


def sample_attacks(attacks: Sequence[Attack], per_category: int | None) -> list[Attack]:
    """The first ``per_category`` attacks of each category (all of them for None): a quicker suite."""
    if per_category is None:
        return list(attacks)
    counts: dict[str, int] = {}
    out = []
    for a in attacks:
        counts[a.category] = counts.get(a.category, 0) + 1
        if counts[a.category] <= per_category:
            out.append(a)
    return out


def _id_line(path: str | Path, attack_id: str) -> int | None:
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if re.search(rf"\bid:\s*['\"]?{re.escape(attack_id)}['\"]?\s*$", line):
            return n
    return None


def attack_from(value: Any, name: str = "my_attack") -> Attack:
    """An :class:`Attack` from a dict or YAML text with ``id``, ``category``, ``turns`` and what counts as
    compliance (``success``, ``markers``, or ``goal: leak``): how the exercise's own attack is validated."""
    node = None
    if isinstance(value, Attack):
        return value
    if isinstance(value, str):
        value, node = parse_yaml(value, path=name, fix="check indentation and quoting")
    if not isinstance(value, Mapping):
        raise InputError("an attack is a dict with id, category and turns", path=name, fix=ATTACK_FIX)
    data = dict(value)
    category = data.pop("category", None)
    if not isinstance(category, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", category.strip()):
        raise InputError("missing or invalid category (lower-case letters, digits and _)", path=name,
                         field="category", fix="e.g. category: instruction_override")
    item = validate_with_lines(data, node, AttackItem, path=name, fix=ATTACK_FIX)
    _check_compliance(item, path=name, line=_item_line(node, None) if node is not None else None, field_="")
    return _attack(item, category.strip(), name)
