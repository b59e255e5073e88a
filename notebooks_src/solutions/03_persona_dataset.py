# %% [markdown]
# # Exercise 03 — Repair a persona dataset
#
# A colleague collected TaskMaster conversations by hand, from chat logs and a teacher model, and wants to
# fine-tune on them tomorrow. The file, `data/exercises/broken_dataset.jsonl`, has 40 lines — and a problem of
# every kind lesson 03 checks for. Your job:
#
# 1. write `fix_example`, which repairs one parsed line (or gives up on it);
# 2. build `repaired`: the repaired examples, which must pass the validator (and keep most of the data);
# 3. build `final`: the same examples with the persona markers back in the replies where they faded.
#
# Run `q1.hint()` (and `q1.hint(2)`, ...) when you are stuck; `q1.check()` tells you what is still wrong.

# %%
import copy
import json
import re

from personalab import persona
from personalab.checks.ex03 import EXERCISE
from personalab.dataset import drop_problems, exercise, marker_coverage, token_counter, validate_file
from personalab.persona import has_marker

q1, q2, q3 = EXERCISE.questions
spec = persona.taskmaster()

report = validate_file(exercise.BROKEN_PATH, spec=spec, max_seq_length=exercise.MAX_SEQ_LENGTH,
                       counter=token_counter(exercise.TOKENIZER), eval_path=exercise.BROKEN_EVAL_PATH)
print(report.format(limit=None))

# %% [markdown]
# Read the report before you code: every problem has a line, a field and a fix. Some problems are about the
# *shape* of a line (it must be a JSON object with a `messages` list of `{"role", "content"}` messages),
# some about the *persona*, and some about the dataset as a whole (duplicates, eval leakage, length).
#
# ## Step 1 — read every line
#
# `parse_line` turns a line of text into Python data. A line that is not valid JSON is often *almost* valid:
# this one repairs a trailing comma before `]` or `}`, and gives up (returns `None`) otherwise.

# %%
def parse_line(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return json.loads(re.sub(r",\s*([\]}])", r"\1", text))
        except json.JSONDecodeError:
            return None


lines = exercise.BROKEN_PATH.read_text(encoding="utf-8").splitlines()
parsed = [parse_line(line) for line in lines]
print(sum(p is not None for p in parsed), "of", len(lines), "lines parsed")

# %% [markdown]
# ## Step 2 — repair one example (q1)
#
# Write `fix_example(obj)`. It receives one parsed line and returns a clean example
# `{"messages": [{"role": ..., "content": ...}, ...]}`, or `None` when nothing can be saved. Handle:
#
# * a bare list of messages, or a `conversation` key instead of `messages`; keys other than `messages`;
# * the role `bot` (it means `assistant`); `text` instead of `content`; extra keys on a message (`timestamp`,
#   `weight`: keep only `role` and `content`); messages that are not objects; empty messages;
# * a conversation that ends with a user message nobody answered (drop those trailing user turns), and one
#   with no assistant reply at all (`None`).
#
# Keep the user's words as they are: the checks compare them with the original.

# %%
ROLE_FIXES = {"bot": "assistant", "human": "user", "ai": "assistant"}


def fix_example(obj):
    ### BEGIN SOLUTION
    if isinstance(obj, list):
        obj = {"messages": obj}
    if not isinstance(obj, dict):
        return None
    messages = []
    for m in obj.get("messages") or obj.get("conversation") or []:
        if not isinstance(m, dict):
            continue
        role = ROLE_FIXES.get(m.get("role"), m.get("role"))
        content = m.get("content", m.get("text"))
        if role in ("system", "user", "assistant") and isinstance(content, str) and content.strip():
            messages.append({"role": role, "content": content.strip()})
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
    return {"messages": messages} if messages else None
    ### END SOLUTION


print(fix_example([{"role": "user", "content": "hi"}, {"role": "bot", "content": "Nice work!"}]))
q1.check()

# %% [markdown]
# ## Step 3 — a valid dataset (q2)
#
# Now apply `fix_example` to every parsed line and rewrite the replies that use an *avoided* phrase (the
# persona never says "You should" or "As an AI language model"): `clean_reply` removes the phrase and keeps
# the rest of the sentence. Then validate. What is left can't be repaired line by line — duplicates, near
# duplicates, conversations copied from the eval set, and an example too long for `max_seq_length` — so drop
# exactly those lines (`drop_problems` takes the report and the kinds to drop). One conversation has no
# persona marker at all: give its first reply one (`report.lines(kind)` lists the flagged positions).
#
# The validator must report no problems, and you must keep at least `exercise.MIN_KEPT` examples.

# %%
AVOIDED = [phrase.lower() for phrase in spec.vocabulary.avoid]


def clean_reply(text):
    ### BEGIN SOLUTION
    for phrase in AVOIDED:
        # drop the phrase (and a comma after it); capitalise what now starts the sentence
        text = re.sub(re.escape(phrase) + r",?\s*(\w)", lambda m: m.group(1).upper(), text, flags=re.IGNORECASE)
    return text
    ### END SOLUTION


repaired = []
### BEGIN SOLUTION
for obj in parsed:
    example = fix_example(copy.deepcopy(obj))
    if example is None:
        continue
    for m in example["messages"]:
        if m["role"] == "assistant":
            m["content"] = clean_reply(m["content"])
    repaired.append(example)
first_pass = exercise.validate_repaired(repaired)
for line in first_pass.lines("persona_marker_missing"):  # report lines are positions in `repaired`
    first_reply = next(m for m in repaired[line - 1]["messages"] if m["role"] == "assistant")
    first_reply["content"] = "Great choice! " + first_reply["content"]
repaired = drop_problems(repaired, first_pass, kinds=["duplicate", "near_duplicate", "eval_leak", "too_long"])
### END SOLUTION

print(exercise.validate_repaired(repaired).format())
print(len(repaired), "examples kept")
q2.check()

# %% [markdown]
# ## Step 4 — bring the persona back (q3)
#
# The validator only asks for one marker per conversation. Look at the coverage per reply: in multi-turn
# conversations the later replies lost their markers — exactly the drift a fine-tuned model would learn.

# %%
coverage = marker_coverage(repaired, spec)
print(f"coverage {coverage['coverage']:.0%}; by turn {coverage['by_turn']}")

# %% [markdown]
# Write `add_marker(reply, user)`: return the reply unchanged when it has a marker, otherwise put a fitting
# one in front — "Nice work!" when the user reports progress, "Great choice!" when they decide or add
# something, "Let's get this done." otherwise. Build `final` from `repaired` with it; the result must still
# validate and reach at least `exercise.MIN_COVERAGE` coverage.

# %%
def add_marker(reply, user):
    ### BEGIN SOLUTION
    if has_marker(reply, spec):
        return reply
    u = user.lower()
    if any(w in u for w in ("done", "finished", "did ", "complete", "worked", "out of the way")):
        return "Nice work! " + reply
    if any(w in u for w in ("add", "log", "note", "put", "track", "flag", "mark", "priority")):
        return "Great choice! " + reply
    return "Let's get this done. " + reply
    ### END SOLUTION


final = copy.deepcopy(repaired)
for example in final:
    msgs = example["messages"]
    for i, m in enumerate(msgs):
        if m["role"] == "assistant":
            m["content"] = add_marker(m["content"], msgs[i - 1]["content"] if i else "")

print(exercise.validate_repaired(final).format())
print(f"coverage now {marker_coverage(final, spec)['coverage']:.0%}")
q3.check()

# %%
EXERCISE.progress()
