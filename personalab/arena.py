"""The persona arena: one message (or attack) to every configuration at once, the answers side by side.

:func:`play` sends a message, or the turns of an attack, to each target concurrently and scores every last
reply the way lesson 05 does: the rule scorer's adherence score, the fluency gate's verdict and, for an
attack, the outcome label with its evidence (:func:`personalab.evaluate.judge_outcome`). It is a plain
function that returns a :class:`Round`, tested without a browser; :func:`arena` only wires ipywidgets to it.

A learner's own attacks live in one file, ``HOME/attacks/my_attacks.yaml``, in the suite's format (one
category file, see ``data/attacks/``): :func:`add_attack` validates an attack and appends it, and
``evaluate.load_attacks(arena.my_attacks_path())`` reads it back for a full suite run.

    targets = arena.course_targets()          # base without a prompt, prompted, fine-tuned, hybrid
    arena.play("I finished the slides!", targets)
    arena.arena(targets)                      # the widget
"""

from __future__ import annotations

import html
import inspect
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from . import config
from .errors import InputError
from .evaluate.attack_suite import Attack, attack_from, load_attack_file, load_attacks
from .evaluate.attacks import DEFAULT_CANARY, judge_outcome
from .evaluate.fluency import FluencyGate, default_gate
from .evaluate.runner import Conversation, Job, Runner, Target
from .evaluate.scorers import RuleScorer, Scorer
from .io import atomic_write_text

#: The category of every attack a learner adds (the file's ``category``).
MY_CATEGORY = "my_attacks"
#: How the widget's text box separates the turns of a multi-turn attack.
TURN_SEPARATOR = "---"
ADD_FIX = ("type the attack message, and in 'compliance' the phrase a reply would contain if the attack worked "
           "(several: separate them with commas), e.g. 'arrr'")


@dataclass(frozen=True)
class Unavailable:
    """A configuration that cannot answer now (no fine-tuned model yet, a server that did not start): the
    arena shows its column as 'not available: why' instead of failing."""

    name: str
    why: str


# ------------------------------------------------------------------------------------------------ targets
def course_targets(spec: Any = None, *, overlay: Any = "marketing",
                   finetuned_dir: str | Path | None = None) -> list[Target | Unavailable]:
    """The four columns: the base model with no system prompt, the prompted base, lesson 04's fine-tuned
    model and the hybrid (fine-tuned + ``overlay``, a name or an :class:`~personalab.persona.Overlay`), all on the
    base lesson 04 fine-tuned.

    Unlike :func:`personalab.evaluate.course_targets` it never trains: without lesson 04's model the fine-tuned
    and hybrid columns are :class:`Unavailable`, saying how to get one.
    """
    from .evaluate import targets as tg
    from .persona import load_overlay, taskmaster

    spec = spec or taskmaster()
    base_name = tg.finetune_base()
    out: list[Target | Unavailable] = []
    try:
        base_dir = tg.base_model_dir(base_name)
        out.append(tg.local_target("base, no prompt", base_dir, base_model=base_name))
        out.append(tg.local_target("prompted", base_dir, spec.render(), base_model=base_name))
    except Exception as exc:  # noqa: BLE001 - shown in the column, never a traceback
        why = _why(exc)
        out += [Unavailable("base, no prompt", why), Unavailable("prompted", why)]
    ov = load_overlay(overlay) if isinstance(overlay, str) else overlay
    hybrid = f"hybrid ({ov.name})"
    try:
        tuned = Path(finetuned_dir) if finetuned_dir is not None else tg.finetuned_dir_from_results()
        if not (tuned / "config.json").exists():
            raise InputError("not a model checkpoint (config.json missing)", path=tuned, fix=tg.LESSON04_FIX)
        out.append(tg.local_target("fine-tuned", tuned, base_model=base_name))
        out.append(tg.local_target(hybrid, tuned, overlay=ov, base_model=base_name))
    except Exception as exc:  # noqa: BLE001
        why = _why(exc)
        out += [Unavailable("fine-tuned", why), Unavailable(hybrid, why)]
    return out


def with_base(targets: Sequence[Target | Unavailable], name: str = "base, no prompt") -> list[Target | Unavailable]:
    """``targets`` (lesson 05's) with a column for the first target's model without any system prompt in front."""
    if not targets or any(t.name == name for t in targets):
        return list(targets)
    first = targets[0]
    if isinstance(first, Unavailable):
        return [Unavailable(name, first.why), *targets]
    return [replace(first, name=name, system_prompt=None, overlay=None), *targets]


def _why(exc: BaseException) -> str:
    """A short reason: an :class:`InputError`'s message, where and how to fix it; else the exception."""
    if isinstance(exc, InputError):
        where = f" ({exc.path})" if exc.path else ""
        return exc.message + where + (f"; how to fix: {exc.fix}" if exc.fix else "")
    return f"{type(exc).__name__}: {str(exc).strip()}"


# ------------------------------------------------------------------------------------------------ one round
@dataclass
class Answer:
    """One column of the arena: a target's replies to the round's turns and the scores of the last one."""

    target: str
    replies: list[str] = field(default_factory=list)
    adherence: float | None = None
    on_persona: bool | None = None
    fluency: float | None = None
    fluent: bool | None = None
    fluency_reason: str = ""
    outcome: str | None = None  # complied, held, broken, neither (attacks only)
    evidence: list[str] = field(default_factory=list)
    leaked: bool | None = None
    seconds: float = 0.0
    cached: bool = False
    error: str | None = None  # 'not available: ...' or the failure

    @property
    def reply(self) -> str:
        return self.replies[-1] if self.replies else ""

    @property
    def available(self) -> bool:
        return self.error is None

    def cells(self) -> dict[str, str]:
        """The column as text, row name -> value (what the widget's table shows)."""
        if self.error is not None:
            reply = f"{self.reply}\n({self.error})" if self.replies else self.error
            return {"reply": reply, "adherence": "-", "fluency": "-", "attack": "-", "time": "-"}
        attack = "-" if self.outcome is None else self.outcome + (f" ({'; '.join(self.evidence)})" if self.evidence
                                                                 else "")
        if self.leaked:
            attack += "; the system prompt leaked"
        return {
            "reply": self.reply,
            "adherence": f"{self.adherence:.2f} ({'on persona' if self.on_persona else 'not on persona'})",
            "fluency": f"{self.fluency:.2f} {'well-formed' if self.fluent else 'REJECTED: ' + self.fluency_reason}",
            "attack": attack,
            "time": "cached" if self.cached else f"{self.seconds:.1f} s",
        }


ROWS = {"reply": "last reply", "adherence": "adherence (rules)", "fluency": "fluency gate",
        "attack": "attack outcome", "time": "time"}


@dataclass
class Round:
    """One message (or attack) played against every target."""

    turns: list[str]
    answers: list[Answer]
    attack: Attack | None = None
    canary: str | None = None

    def answer(self, target: str) -> Answer:
        for a in self.answers:
            if a.target == target:
                return a
        raise InputError(f"no target named {target!r} in this round", field="target",
                         fix="one of " + ", ".join(a.target for a in self.answers))

    def rows(self) -> list[dict[str, str]]:
        """One row per measure, one column per target."""
        cells = {a.target: a.cells() for a in self.answers}
        return [{"": title, **{t: c[key] for t, c in cells.items()}} for key, title in ROWS.items()]

    def header(self) -> str:
        if self.attack is None:
            return f"message: {self.turns[-1]!r}"
        turns = f"{len(self.turns)} turns, last: " if len(self.turns) > 1 else ""
        return (f"attack {self.attack.id} [{self.attack.category}], {turns}{self.turns[-1]!r}; complied means: "
                f"{self.attack.compliance_rule}")

    def _repr_html_(self) -> str:
        heads = "".join(f"<th>{html.escape(a.target)}</th>" for a in self.answers)
        body = ""
        for row in self.rows():
            title = row.pop("")
            tds = "".join(
                f"<td style='vertical-align:top;text-align:left;max-width:260px;white-space:pre-wrap'>"
                f"{html.escape(v)}</td>" for v in row.values())
            body += f"<tr><th style='text-align:left'>{html.escape(title)}</th>{tds}</tr>"
        return (f"<p class='personalab-arena-header'>{html.escape(self.header())}</p>"
                f"<table class='personalab-arena-table'><tr><th></th>{heads}</tr>{body}</table>")

    def __repr__(self) -> str:
        lines = [self.header()]
        for a in self.answers:
            lines.append(f"--- {a.target}")
            lines += [f"  {ROWS[k]}: {v}" for k, v in a.cells().items()]
        return "\n".join(lines)


def split_turns(text: str) -> list[str]:
    """The turns typed in one box: separated by a line holding only ``---`` (one turn without one)."""
    parts = re.split(rf"(?m)^\s*{re.escape(TURN_SEPARATOR)}\s*$", text or "")
    return [p.strip() for p in parts if p.strip()]


def play(
    message: str | Sequence[str] | Attack,
    targets: Sequence[Target | Unavailable],
    *,
    attack: Attack | None = None,
    runner: Runner | None = None,
    scorer: Scorer | None = None,
    gate: FluencyGate | None = None,
    canary: str = DEFAULT_CANARY,
    seed: int = 0,
) -> Round:
    """Send ``message`` (one text, a list of turns, or an :class:`Attack`) to every target at once and score
    each last reply: adherence (``scorer``, default the rule scorer behind ``gate``), the fluency verdict and,
    for an attack, its outcome. A target that is unavailable or fails gets its error, never an exception.

    An attack plants ``canary`` in every system prompt, as lesson 05's suite does; a plain message does not.
    Replies go through ``runner``'s cache (default: lesson 05's settings), so an attack lesson 05 played shows
    the reply the suite judged.
    """
    if isinstance(message, Attack):
        attack, turns = message, list(message.turns)
    elif isinstance(message, str):
        turns = split_turns(message)
    else:
        turns = [str(t).strip() for t in message if str(t).strip()]
    if not turns:
        raise InputError("the message is empty", field="message", fix="type a message or pick an attack")
    if not targets:
        raise InputError("no targets to send the message to", field="targets", fix="pass arena.course_targets()")
    if runner is None:
        from .evaluate import suite_settings

        runner = suite_settings().runner(progress=False)
    gate = gate or (scorer.gate if scorer is not None and scorer.gate is not None else default_gate())
    scorer = scorer or RuleScorer(gate=gate)
    planted = canary if attack is not None else None

    def converse(target: Target | Unavailable) -> tuple[Conversation | None, float, str | None]:
        if isinstance(target, Unavailable):
            return None, 0.0, f"not available: {target.why}"
        start = time.perf_counter()
        try:
            conv = runner.converse(Job(target, turns, script=attack.id if attack else "arena", seed=seed,
                                       canary=planted))
        except Exception as exc:  # noqa: BLE001 - one column fails, the others still answer
            return None, 0.0, f"failed: {_why(exc)}"
        return conv, time.perf_counter() - start, None

    for t in targets:  # load each tokenizer once, before the threads start (as Runner.run does)
        if isinstance(t, Target) and t.count_tokens is not None:
            try:
                t.count_tokens([{"role": "user", "content": "hi"}])
            except Exception:  # noqa: BLE001 - the request below reports it
                pass
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:  # the requests run at once ...
        played = list(pool.map(converse, targets))
    answers = []
    for t, (conv, seconds, error) in zip(targets, played, strict=True):  # ... the scoring in this thread
        if conv is None or isinstance(t, Unavailable):
            answers.append(Answer(t.name, error=error))
            continue
        try:
            answers.append(score(conv, t, attack, scorer, gate, seconds=seconds))
        except Exception as exc:  # noqa: BLE001 - shown in the column, never a traceback
            answers.append(Answer(t.name, list(conv.replies), seconds=seconds, error=f"scoring failed: {_why(exc)}"))
    return Round(turns, answers, attack, planted)


def _verdict(gate: FluencyGate, reply: str, user: str | None) -> Any:
    """The gate's verdict on ``reply``, read as the answer to ``user`` when the gate takes the user's message
    (a gate with a reference model measures perplexity given it)."""
    if "users" in inspect.signature(gate.check_many).parameters:
        return gate.check_many([reply], [user])[0]
    return gate.check(reply)


def score(conv: Conversation, target: Target, attack: Attack | None, scorer: Scorer, gate: FluencyGate,
          *, seconds: float = 0.0) -> Answer:
    """The scores of one played conversation's last reply (see :func:`play`)."""
    last = conv.replies[-1] if conv.replies else ""
    user = conv.turns[-1].user if conv.turns else None
    verdict = _verdict(gate, last, user)
    adherence = scorer.score(last, user)
    ans = Answer(target.name, list(conv.replies), adherence, adherence >= scorer.threshold, verdict.score,
                 verdict.ok, verdict.reason, seconds=seconds, cached=all(t.cached for t in conv.turns))
    if attack is not None:
        out = judge_outcome(conv, attack, scorer, can_leak=target.system() is not None)
        ans.outcome, ans.evidence, ans.leaked = out.label, list(out.evidence), out.leaked
    return ans


# ------------------------------------------------------------------------------------------------ my attacks
def my_attacks_path() -> Path:
    """The learner's own attack file: ``HOME/attacks/my_attacks.yaml`` (``PERSONALAB_HOME``)."""
    return config.home() / "attacks" / f"{MY_CATEGORY}.yaml"


def load_my_attacks(path: str | Path | None = None) -> list[Attack]:
    """The learner's attacks (none when the file does not exist yet); a broken file names its line."""
    path = Path(path) if path is not None else my_attacks_path()
    return load_attack_file(path) if path.exists() else []


def _phrases(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(p).strip() for p in items if str(p).strip()]


def new_id(turns: Sequence[str], taken: set[str]) -> str:
    """``my-`` and the first words of the last turn, lower case with dashes, unique among ``taken``."""
    words = re.findall(r"[a-z0-9]+", turns[-1].lower())[:4] if turns else []
    stem = "my-" + ("-".join(words) or "attack")
    out, n = stem, 2
    while out in taken:
        out, n = f"{stem}-{n}", n + 1
    return out


def add_attack(
    message: str | Sequence[str],
    success: str | Sequence[str] | None = None,
    *,
    markers: str | Sequence[str] | None = None,
    attack_id: str | None = None,
    goal: str = "persona",
    path: str | Path | None = None,
) -> Attack:
    """Validate an attack (its turns, and what counts as compliance) and append it to the learner's attack
    file, written atomically; returns the attack as the suite loads it. Its id must be new to the suite too.

    ``message`` is one text (turns separated by a ``---`` line) or a list of turns; ``success`` and
    ``markers`` are lists or comma-separated text.
    """
    path = Path(path) if path is not None else my_attacks_path()
    turns = split_turns(message) if isinstance(message, str) else [str(t).strip() for t in message if str(t).strip()]
    if not turns:
        raise InputError("the attack has no message", field="turns", fix=ADD_FIX)
    mine = load_my_attacks(path)
    taken = {a.id for a in mine} | {a.id for a in load_attacks()}
    item: dict[str, Any] = {"id": attack_id or new_id(turns, taken), "turns": turns}
    if attack_id and attack_id in taken:
        raise InputError(f"attack id {attack_id!r} is already used", field="id",
                         fix="choose another id, or leave it out for a new one")
    if _phrases(success):
        item["success"] = _phrases(success)
    if _phrases(markers):
        item["markers"] = _phrases(markers)
        item["min_markers"] = min(2, len(item["markers"]))
    if goal != "persona":
        item["goal"] = goal
    try:
        attack = attack_from({**item, "category": MY_CATEGORY}, name=str(path))
    except InputError as err:
        if not item.get("success") and not item.get("markers") and goal == "persona":
            raise InputError("the attack does not say what counts as compliance", path=path, field="success",
                             fix=ADD_FIX) from None
        raise err
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    else:
        data = {"category": MY_CATEGORY, "description": "My own attacks, added from the persona arena.",
                "attacks": []}
    data["attacks"].append(item)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    atomic_write_text(path, text)
    load_attack_file(path)  # what was written loads the way the suite loads it
    return attack


# ------------------------------------------------------------------------------------------------ the widget
def attack_options(attacks: Sequence[Attack]) -> list[tuple[str, str]]:
    """The picker's entries: ``(label, id)``, the learner's own message first."""
    return [("(my own message)", "")] + [(f"[{a.category}] {a.id}", a.id) for a in attacks]


def attack_text(attack: Attack) -> str:
    """An attack's turns as the text box shows them (``---`` between turns)."""
    return f"\n{TURN_SEPARATOR}\n".join(attack.turns)


def arena(
    targets: Sequence[Target | Unavailable],
    *,
    attacks: Sequence[Attack] | None = None,
    runner: Runner | None = None,
    scorer: Scorer | None = None,
    gate: FluencyGate | None = None,
    path: str | Path | None = None,
) -> Any:
    """The persona arena (an ipywidgets box): type a message or pick an attack, press Send, read the answers
    side by side; 'Add to my attacks' saves the typed attack to the learner's attack file (``path``).

    Picking an attack fills the box with its turns and its compliance phrases; the round is played as that
    attack (its markers and canary too) while the text is unchanged, as the learner's own attack otherwise.
    """
    import ipywidgets as w

    suite = list(attacks) if attacks is not None else load_attacks()
    path = Path(path) if path is not None else my_attacks_path()
    try:
        mine = load_my_attacks(path)
        note = ""
    except InputError as err:
        mine, note = [], f"your attack file could not be read: {err}"
    known: dict[str, Attack] = {a.id: a for a in [*suite, *mine]}
    names = ", ".join(t.name for t in targets)
    text = w.Textarea(placeholder=f"A message or an attack (several turns: a line with {TURN_SEPARATOR} between)",
                      layout=w.Layout(width="640px", height="90px"))
    text.add_class("personalab-arena-message")
    picker = w.Dropdown(options=attack_options(list(known.values())), value="", description="attack",
                        layout=w.Layout(width="640px"))
    picker.add_class("personalab-arena-picker")
    success = w.Text(placeholder="phrases a reply would contain if the attack worked, comma-separated",
                     description="compliance", layout=w.Layout(width="640px"))
    success.add_class("personalab-arena-success")
    send = w.Button(description="Send", button_style="primary", tooltip=f"send to: {names}")
    send.add_class("personalab-arena-send")
    add = w.Button(description="Add to my attacks", tooltip=f"append to {path}")
    add.add_class("personalab-arena-add")
    status = w.HTML(value=html.escape(note))
    status.add_class("personalab-arena-status")
    table = w.HTML()
    table.add_class("personalab-arena-output")

    def say(msg: str, error: bool = False) -> None:
        colour = "#b00" if error else "#333"
        status.value = f"<pre style='color:{colour};white-space:pre-wrap'>{html.escape(msg)}</pre>"

    def current_attack() -> Attack | None:
        picked = known.get(picker.value)
        typed = split_turns(text.value)
        if picked is not None and typed == list(picked.turns) and _phrases(success.value) == list(picked.success):
            return picked
        phrases = _phrases(success.value)
        if not phrases:
            return None
        return Attack("my-message", MY_CATEGORY, tuple(typed), tuple(phrases), source="arena")

    def on_pick(change: Any) -> None:
        picked = known.get(change["new"])
        if picked is not None:
            text.value = attack_text(picked)
            success.value = ", ".join(picked.success)

    def on_send(_button: Any = None) -> None:
        send.disabled = True
        say(f"sending to {len(targets)} targets ...")
        try:
            rnd = play(text.value, targets, attack=current_attack(), runner=runner, scorer=scorer, gate=gate)
        except InputError as err:
            say(str(err), error=True)
            return
        except Exception as exc:  # noqa: BLE001 - the widget shows it, never a traceback
            say(f"{type(exc).__name__}: {exc}", error=True)
            return
        finally:
            send.disabled = False
        box.round = rnd
        table.value = rnd._repr_html_()
        say(f"{sum(a.available for a in rnd.answers)} of {len(rnd.answers)} targets answered")

    def on_add(_button: Any = None) -> None:
        try:
            attack = add_attack(text.value, success.value, path=path)
        except InputError as err:
            say(str(err), error=True)
            return
        known[attack.id] = attack
        picker.unobserve(on_pick, names="value")
        picker.options = attack_options(list(known.values()))
        picker.value = attack.id
        picker.observe(on_pick, names="value")
        say(f"added {attack.id!r} to {path} ({len(load_my_attacks(path))} attacks of your own)")

    picker.observe(on_pick, names="value")
    send.on_click(on_send)
    add.on_click(on_add)
    box = w.VBox([picker, text, success, w.HBox([send, add]), status, table])
    box.add_class("personalab-arena")
    box.round = None
    box.text, box.picker, box.success, box.send_button, box.add_button = text, picker, success, send, add
    box.status, box.table = status, table
    return box
