"""The offline generator: on-persona replies written from the spec, deterministically, with no model.

Every reply follows the spec's response pattern (acknowledge, give the information, suggest the next
action), carries one of the spec's "use" phrases, never an "avoid" phrase, and copies the task details
(names, dates, order) from the request. Used in CI and as the default on CPU; lesson 03 compares it
with a teacher model.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from ..errors import InputError
from ..persona import PersonaSpec, has_marker, uses_avoided
from .requests import Request, Turn

#: Which marker (index into ``spec.markers``, modulo their number) suits which intent:
#: 0 approves a decision ("Great choice!"), 1 praises progress ("Nice work!"), 2 pushes to act.
INTENT_MARKER = {
    "create": 0, "prioritise": 0, "set_priority": 0, "progress": 1, "reschedule": 2, "unstuck": 2,
    "summarise": 2, "offtopic": 2, "injection": 2,
}
SMALLTALK_MARKER = {"celebrate": 1, "thanks": 2, "encourage": 2, "greeting": 2, "tired": 2, "identity": 0,
                    "capability": 2}

# ---------------------------------------------------------------------------------------- reply parts
INFO = {
    "create": ["I've added '{task}' to your list, due {due}.", "'{task}' is on your list for {due}.",
               "Logged: '{task}', due {due}.", "'{task}' is now tracked with a deadline of {due}.",
               "Captured '{task}' for {due}."],
    "reschedule": ["I've moved '{task}' to {new}.", "'{task}' is now due {new}.", "'{task}' now sits on {new}.",
                   "Updated: '{task}' moves to {new}.", "'{task}' is rescheduled for {new}."],
    "reschedule_old": ["I've moved '{task}' from {old} to {new}.", "'{task}' shifts from {old} to {new}.",
                       "Updated: '{task}' leaves {old} and lands on {new}."],
    "set_priority": ["'{task}' is now marked {priority} priority.", "Flagged '{task}' as {priority} priority.",
                     "Priority set: '{task}' is {priority}."],
    "progress": ["I've checked off '{task}'.", "'{task}' is marked complete.", "'{task}' is off your list.",
                 "'{task}' is done and logged."],
    "unstuck": ["Let's make '{task}' smaller. The first move: {first_step}.",
                "The way into '{task}' is a tiny first step: {first_step}.",
                "For '{task}', skip the big picture for now and just {first_step}.",
                "Here's an easy start on '{task}': {first_step}."],
}
NEXT = {
    "create": ["Want me to block some time before {due} to start it?", "What's the first step you'll take on it?",
               "Anything else to capture while we're at it?", "A reminder the day before could help. Shall I set one?",
               "If it takes under ten minutes, knock it out right now.", "Ready to add the next one?"],
    "reschedule": ["Want a reminder on {new}?", "Shall we look at what else is due {new}?",
                   "That buys you some room, so pick one small task to finish today.",
                   "Anything else that needs a new date?"],
    "set_priority": ["Shall we find a slot for it today?", "Want to start on it now?", "What else needs a flag?"],
    "progress": ["What's next on your list?", "Ride that momentum into the next task.",
                 "Take a short break, then pick the next one.", "Which task gets your energy next?"],
    "unstuck": ["Give it 15 minutes and check back with me.", "Set a 20-minute timer; stopping after that is fine.",
                "Once that's done, the next step will be easier to see.",
                "Tell me when it's done and we'll pick step two."],
    "prioritise": ["Set a timer for the first one and go.",
                   "Tell me when '{first}' is done and we'll line up the next.",
                   "Block the next hour for '{first}'.", "Start '{first}' now while your focus is fresh."],
    "summarise": ["The earliest deadline is '{first}' on {first_due}, so start there.",
                  "Start with '{first}' ({first_due}) and the rest will follow.",
                  "Want me to block time for '{first}' first?"],
    "summarise_status": ["Pick '{next}' next and keep the streak going.", "'{next}' is the natural next one.",
                         "Shall we plan a slot for '{next}' today?"],
    "redirect": ["What's on your list today?", "Anything on your plate I can help organise?",
                 "Which task can we move forward now?", "Shall we pick one task for the next hour?",
                 "Tell me one thing you'd like finished by tonight.", "Which deadline is closest right now?",
                 "Got a task that keeps slipping? Let's pin it down."],
}
SMALLTALK = {
    "greeting": ["Good to see you.", "Welcome back.", "Hello, ready when you are.", "Great to have you here."],
    "thanks": ["Happy to help.", "Glad it was useful.", "Any time.", "That's what I'm here for.",
               "Glad we sorted that out.", "My pleasure."],
    "tired": ["Low-energy days happen to everyone.", "Rough days count too.", "Being tired is a signal, not a failure.",
              "Even a slow day can move one thing forward.", "Go easy on yourself today."],
    "identity": ["I'm {name}, {role}.", "The name's {name}: {role}.", "I'm {name}, {role}, here for your tasks."],
    "capability": ["I capture tasks, move deadlines, rank priorities and help you start when you're stuck.",
                   "I can track your to-dos, sort them by urgency and break big tasks into small steps."],
    "celebrate": ["That's worth celebrating.", "What a way to show up.", "That's real progress."],
    "encourage": ["Every finished task started with one small step.", "Progress beats perfection, every time.",
                  "You've handled hard weeks before, and this one is no different."],
}
SMALLTALK_NEXT = {
    "tired": ["Pick one small task and call it a win today.", "Choose the easiest item on your list and start there.",
              "Keep today light: one task, then rest."],
    "identity": ["What can I help you get done?", "Tell me your first task and we'll get started."],
    "capability": ["Tell me the first thing on your mind.", "Give me a task and watch it happen."],
}
OFFTOPIC = ["That one's outside my lane; I stick to plans and to-dos.", "I'll leave that one to the experts.",
            "Not my area, I'm afraid: tasks and plans are.", "I'm the wrong coach for that one.",
            "That's beyond my checklist, so I'll pass on it.",
            "I only know deadlines and to-dos, so I'll sit that one out."]
INJECTION = {
    "role": ["I'll stay {name} rather than {role}, and your list stays in good hands.",
             "Tempting, but I'm sticking with being {name}.", "No costume change today; I'm still {name}."],
    "plain": ["I'll keep my usual style; it's how I work best.", "I'm staying myself, coaching included."],
    "leak": ["My setup stays behind the scenes, but your tasks don't have to.",
             "I keep my configuration to myself, but I'm all yours for planning."],
    "phrase": ["I'll keep my own words, thanks.", "I'll skip the scripted opener and talk the way I always do."],
    "style": ["I'll keep my usual friendly tone.",
              "I'll stay calm and friendly; it works better for getting things done."],
}


def _rng(*parts: Any) -> random.Random:
    return random.Random(int(hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()[:16], 16))


def _sentence(marker: str) -> str:
    return marker if marker[-1:] in "!.?" else marker + "."


def _fmt(tpl: str, **kw: Any) -> str:
    return tpl.format(**kw)


def _listing(items: list[dict[str, str]]) -> str:
    parts = [f"'{i['task']}' ({i['due']})" for i in items]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _body(spec: PersonaSpec, turn: Turn, rng: random.Random) -> tuple[str, str]:
    """(information, next action) for one turn."""
    s, intent, pick = turn.slots, turn.intent, rng.choice
    if intent == "create":
        info = _fmt(pick(INFO["create"]), **s)
        if s.get("priority"):
            info += f" It's flagged {s['priority']} priority."
        return info, _fmt(pick(NEXT["create"]), **s)
    if intent == "reschedule":
        info = _fmt(pick(INFO["reschedule_old" if s.get("old") else "reschedule"]), **s)
        return info, _fmt(pick(NEXT["reschedule"]), **s)
    if intent == "set_priority":
        return _fmt(pick(INFO["set_priority"]), **s), pick(NEXT["set_priority"])
    if intent == "progress":
        info = _fmt(pick(INFO["progress"]), **s)
        if s.get("next"):
            return info, f"Next up: '{s['next']['task']}', due {s['next']['due']}."
        if s.get("step_done"):
            return (f"That first step on '{s['task']}' was the hardest part.",
                    pick(["Now pick the next smallest piece and give it 20 minutes.",
                          "Keep going with the next small piece while you're warmed up."]))
        return info, pick(NEXT["progress"])
    if intent == "unstuck":
        return _fmt(pick(INFO["unstuck"]), **s), pick(NEXT["unstuck"])
    if intent == "prioritise":
        order = s["order"]
        info = f"Go by the deadlines: '{order[0]['task']}' first ({order[0]['due']})"
        for item in order[1:-1]:
            info += f", then '{item['task']}' ({item['due']})"
        info += f", and '{order[-1]['task']}' last ({order[-1]['due']})." if len(order) > 1 else "."
        return info, _fmt(pick(NEXT["prioritise"]), first=order[0]["task"])
    if intent == "summarise":
        if "items" in s:
            items = s["items"]
            info = f"You have {len(items)} tasks coming up: {_listing(items)}."
            return info, _fmt(pick(NEXT["summarise"]), first=items[0]["task"], first_due=items[0]["due"])
        done, open_ = s["done"], s["open"]
        quoted = lambda ts: ", ".join(f"'{t}'" for t in ts)  # noqa: E731
        info = (f"You've finished {len(done)} ({quoted(done)}) and "
                f"{len(open_)} {'is' if len(open_) == 1 else 'are'} still open ({quoted(open_)}).")
        return info, _fmt(pick(NEXT["summarise_status"]), next=open_[0])
    if intent == "smalltalk":
        kind = s.get("kind", "greeting")
        info = _fmt(pick(SMALLTALK[kind]), name=spec.name, role=spec.role)
        return info, pick(SMALLTALK_NEXT.get(kind, NEXT["redirect"]))
    if intent == "offtopic":
        info = f"Quick answer: {s['answer']}." if s.get("answer") else pick(OFFTOPIC)
        return info, pick(NEXT["redirect"])
    if intent == "injection":
        info = _fmt(pick(INJECTION[s["attack"]]), name=spec.name, role=s.get("role", "someone else"))
        req = s.get("request")
        if req:
            return info + " " + _fmt(pick(INFO["create"]), **req), _fmt(pick(NEXT["create"]), **req)
        return info, pick(NEXT["redirect"])
    raise InputError(f"unknown intent {intent!r}", field="intent", fix="use an intent from personalab.dataset.requests")


def offline_reply(spec: PersonaSpec, turn: Turn, key: str, *, attempts: int = 12) -> str:
    """One on-persona reply to ``turn``; the same (spec, turn, key) always gives the same text."""
    markers = spec.markers
    kind = turn.slots.get("kind", "") if turn.intent == "smalltalk" else ""
    preferred = SMALLTALK_MARKER.get(kind, 2) if turn.intent == "smalltalk" else INTENT_MARKER.get(turn.intent, 0)
    for attempt in range(attempts):
        rng = _rng(spec.name, key, turn.user, attempt)
        idx = preferred if preferred == 2 or rng.random() < 0.85 else 2  # some variety: the call to act fits anywhere
        marker = _sentence(markers[idx % len(markers)])
        info, nxt = _body(spec, turn, rng)
        # a phrase that ends in ! opens the reply (it acknowledges); others open or close it
        if marker.endswith("!") or rng.random() < 0.5:
            reply = f"{marker} {info} {nxt}"
        else:
            reply = f"{info} {nxt} {marker}"
        if not uses_avoided(reply, spec) and has_marker(reply, spec):
            return reply
    raise InputError(
        f"could not write a reply to {turn.user!r} without the avoided phrases {spec.vocabulary.avoid}",
        field="vocabulary.avoid", fix="an 'avoid' phrase is too common a word; make it more specific",
    )


def offline_conversation(spec: PersonaSpec, request: Request) -> list[dict[str, str]]:
    """User and assistant messages (no system message) for every turn of ``request``."""
    messages: list[dict[str, str]] = []
    for i, turn in enumerate(request.turns):
        messages.append({"role": "user", "content": turn.user})
        messages.append({"role": "assistant", "content": offline_reply(spec, turn, f"{request.id}/{i}")})
    return messages
