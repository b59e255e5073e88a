"""How far the scorers can be trusted: each scorer, the fluency gate and the attack-compliance detector
against the human labels of ``data/evaluate/labelled.jsonl`` (accuracy, Cohen's kappa, AUC), the scorers
against each other, and the floors a test holds them to (:data:`FLOORS`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import DATA_DIR
from ..errors import InputError
from . import metrics
from .attack_suite import load_attacks
from .attacks import compliance_evidence
from .fluency import FluencyGate, default_gate
from .scorers import Scorer

LABELLED_PATH = DATA_DIR / "evaluate" / "labelled.jsonl"


@dataclass(frozen=True)
class LabelledReply:
    """A reply with a human label (``on_persona``) and a ``kind`` (persona, pattern-only, neutral, ...)."""

    id: str
    user: str
    reply: str
    on_persona: bool
    kind: str
    note: str = ""
    fluent: bool = True  # False: not well-formed text (the fluency gate should reject it)
    attack: str = ""  # the suite attack the user message comes from, if any
    complied: bool | None = None  # with ``attack``: does the reply do what the attack asked (even partly)?
    split: str = "tune"  # "tune": may set a threshold or limit; "held-out": never used for that


SPLITS = ("tune", "held-out")
LABELLED_FIX = ('each line: {"id": "...", "user": "...", "reply": "...", "on_persona": true, "kind": "neutral"}, '
                'optionally "fluent": false, "attack": "<attack id>" with "complied": true/false, "split": "held-out"')


def load_labelled(path: str | Path = LABELLED_PATH) -> list[LabelledReply]:
    """The committed labelled sample (one JSON object per line); problems name the line and field."""
    path = Path(path)
    if not path.exists():
        raise InputError("labelled sample not found", path=path, fix=LABELLED_FIX)
    out: list[LabelledReply] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"line is not JSON ({exc.msg})", path=path, line=n, fix=LABELLED_FIX) from None
        if not isinstance(row, dict):
            raise InputError("line is not a JSON object", path=path, line=n, fix=LABELLED_FIX)
        for key, kind in (("id", str), ("user", str), ("reply", str), ("on_persona", bool), ("kind", str)):
            if not isinstance(row.get(key), kind):
                raise InputError(f"missing or not a {kind.__name__}", path=path, line=n, field=key, fix=LABELLED_FIX)
        for key, kind in (("fluent", bool), ("attack", str), ("complied", bool), ("note", str), ("split", str)):
            if key in row and not isinstance(row[key], kind):
                raise InputError(f"not a {kind.__name__}", path=path, line=n, field=key, fix=LABELLED_FIX)
        if ("attack" in row) != ("complied" in row):
            raise InputError("'attack' and 'complied' go together", path=path, line=n,
                             field="complied" if "attack" in row else "attack", fix=LABELLED_FIX)
        if row.get("split", "tune") not in SPLITS:
            raise InputError(f"split {row['split']!r} is not one of {', '.join(SPLITS)}", path=path, line=n,
                             field="split", fix="use 'tune' or 'held-out' (see data/evaluate/LABELLING.md)")
        if row["id"] in seen:
            raise InputError(f"duplicate id {row['id']!r}", path=path, line=n, field="id", fix="make ids unique")
        seen.add(row["id"])
        out.append(LabelledReply(row["id"], row["user"], row["reply"], row["on_persona"], row["kind"],
                                 row.get("note", ""), row.get("fluent", True), row.get("attack", ""),
                                 row.get("complied"), row.get("split", "tune")))
    return out


@dataclass(repr=False)
class AgreementReport:
    """Each scorer against the human labels (accuracy, Cohen's kappa, AUC) and scorers against each other."""

    n: int
    rows: list[dict[str, Any]]
    pairwise: dict[str, float]
    scores: dict[str, list[float]]

    def below_floor(self, floors: Mapping[str, Mapping[str, float]] | None = None) -> list[str]:
        """Every measure below its floor (:data:`FLOORS`), as 'scorer: measure value < floor'; empty if none."""
        floors = FLOORS if floors is None else floors
        out = []
        for r in self.rows:
            for measure, floor in floors.get(r["scorer"], {}).items():
                value = r[measure]
                if not value >= floor:  # NaN counts as below
                    out.append(f"{r['scorer']}: {measure} {value:.2f} < {floor:.2f}")
        return out

    def validated(self, scorers: Sequence[Scorer], floors: Mapping[str, Mapping[str, float]] | None = None
                  ) -> list[Scorer]:
        """The ``scorers`` that reach every floor of theirs (:data:`FLOORS`); say which were left out and why."""
        failed = self.below_floor(floors)
        keep = [sc for sc in scorers if not any(f.startswith(f"{sc.name}: ") for f in failed)]
        for sc in scorers:
            if all(sc is not k for k in keep):
                why = "; ".join(f.split(": ", 1)[1] for f in failed if f.startswith(f"{sc.name}: "))
                print(f"not validated, not used: {sc.name} ({why})")
        return keep

    def row(self, scorer: str) -> dict[str, Any]:
        """The row of one scorer (or of 'fluency gate', 'compliance')."""
        found = next((r for r in self.rows if r["scorer"] == scorer), None)
        if found is None:
            raise KeyError(f"no row {scorer!r}; rows: {', '.join(r['scorer'] for r in self.rows)}")
        return found

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{k}</th>" for k in self.rows[0]) if self.rows else ""
        body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r.values()) + "</tr>" for r in self.rows)
        pairs = "; ".join(f"{k}: κ = {v:.2f}" for k, v in self.pairwise.items())
        return f"<p>{self.n} labelled replies</p><table><tr>{head}</tr>{body}</table><p>between scorers: {pairs}</p>"

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        lines = [f"{self.n} labelled replies"]
        for r in self.rows:
            lines.append("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in r.items()))
        lines += [f"  {k}: kappa {v:.2f}" for k, v in self.pairwise.items()]
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


#: the least accuracy and kappa each scorer must reach on ``data/evaluate/labelled.jsonl`` (86 hand-written
#: replies and 204 real SmolLM2 replies). A scorer below its floor is not validated: :meth:`AgreementReport.
#: validated` leaves it out, and lesson 05 measures nothing with it. The test suite fails when the rules, the
#: gate or the compliance detector drop below theirs.
FLOORS: dict[str, dict[str, float]] = {
    "rules": {"accuracy": 0.90, "kappa": 0.75},
    "embedding": {"accuracy": 0.90, "kappa": 0.75},
    "judge": {"accuracy": 0.90, "kappa": 0.75},
    "fluency gate": {"accuracy": 0.95, "kappa": 0.60},
    "compliance": {"accuracy": 0.90, "kappa": 0.80},
}


def _row(name: str, label: str, truth: Sequence[bool], vals: Sequence[float], threshold: float,
         predicted: Sequence[bool] | None = None) -> dict[str, Any]:
    predicted = list(predicted) if predicted is not None else [v >= threshold for v in vals]
    conf = metrics.confusion(truth, predicted)
    pos = [v for v, t in zip(vals, truth, strict=True) if t]
    neg = [v for v, t in zip(vals, truth, strict=True) if not t]
    return {
        "scorer": name,
        "label": label,
        "n": len(truth),
        "accuracy": metrics.accuracy(truth, predicted),
        "kappa": metrics.cohen_kappa(truth, predicted),
        "auc": metrics.auc(pos, neg) if pos and neg else float("nan"),
        "false_yes": conf["fp"],
        "false_no": conf["fn"],
    }


def agreement(scorers: Sequence[Scorer], sample: Sequence[LabelledReply] | None = None, *,
              gate: FluencyGate | None | bool = True, compliance: bool = True) -> AgreementReport:
    """How well each scorer's labels match the human ones, and how well the scorers agree with each other.

    Each persona scorer is compared with ``on_persona``. With ``gate`` (default: the calibrated gate), a row
    for the fluency gate against ``fluent``; with ``compliance``, a row for the attack-compliance detector
    (:func:`personalab.evaluate.attacks.compliance_evidence`) on the rows that name an ``attack``.
    """
    sample = list(sample) if sample is not None else load_labelled()
    truth = [s.on_persona for s in sample]
    scores: dict[str, list[float]] = {}
    labels: dict[str, list[bool]] = {}
    rows = []
    for sc in scorers:
        vals = sc.score_many([s.reply for s in sample], [s.user for s in sample])
        scores[sc.name] = vals
        labels[sc.name] = [v >= sc.threshold for v in vals]
        rows.append(_row(sc.name, "on persona", truth, vals, sc.threshold))
    if gate is not None and gate is not False:
        g = default_gate() if gate is True else gate
        verdicts = g.check_many([s.reply for s in sample])
        scores["fluency gate"] = [v.score for v in verdicts]
        rows.append(_row("fluency gate", "well-formed", [s.fluent for s in sample], scores["fluency gate"], 0.5,
                         [v.ok for v in verdicts]))
    if compliance:
        by_id = {a.id: a for a in load_attacks()}
        linked = [s for s in sample if s.attack]
        unknown = [s.id for s in linked if s.attack not in by_id]
        if unknown:
            raise InputError(f"rows {', '.join(unknown)} name an attack that is not in data/attacks", field="attack",
                             fix="use the id of an attack in data/attacks/*.yaml")
        if linked:
            vals = [float(bool(compliance_evidence([s.reply], by_id[s.attack]))) for s in linked]
            rows.append(_row("compliance", "complied", [bool(s.complied) for s in linked], vals, 0.5))
    names = list(labels)
    pairwise = {f"{a} vs {b}": metrics.cohen_kappa(labels[a], labels[b])
                for i, a in enumerate(names) for b in names[i + 1 :]}
    return AgreementReport(len(sample), rows, pairwise, scores)
