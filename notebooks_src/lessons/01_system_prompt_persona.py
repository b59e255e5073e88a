# %% [markdown]
# # Lesson 01 — A persona in the system prompt
#
# *Every term is defined where it first appears, and collected in the [glossary](https://github.com/persona-lab/persona-lab/blob/main/GLOSSARY.md).*
#
# The quickest way to give a model a personality is to describe it in the **system prompt**, the message
# sent before every conversation. In this lesson you write **TaskMaster**, a productivity coach for a task
# app, as a structured spec, render it into a system prompt, and check whether it changes the answers.
#
# Why a *spec* and not free text? Because later lessons need the same facts in a machine-readable form:
# the phrases TaskMaster uses become the **persona markers** that lessons 03–05 count, and the dataset for
# fine-tuning is generated from the same spec.

# %%
from personalab import persona
from personalab.persona import PERSONAS_DIR

print((PERSONAS_DIR / "taskmaster.yaml").read_text())

# %% [markdown]
# The spec has a name and role, traits, a response pattern (acknowledge → inform → next step), vocabulary
# to use and to avoid, and rules. Loading validates it: a missing section or a typo in a field name stops
# with the file, line and field that are wrong.

# %%
spec = persona.taskmaster()
system_prompt = spec.render()
print(system_prompt)

# %% [markdown]
# A broken spec gives an error that says where and how to fix it (try it on your own file later):

# %%
import tempfile
from pathlib import Path

from personalab.errors import InputError

broken = Path(tempfile.mkdtemp()) / "broken.yaml"
broken.write_text("name: TaskMaster\nrole: a coach\ntraits: []\nresponse_pattern: [Acknowledge]\nvocabulary:\n  use: []\n")
try:
    persona.load_persona(broken)
except InputError as err:
    print(err)

# %% [markdown]
# ## Call it through the `openai` client
#
# The request is the one from the article: a system message with the persona, then the user's message.
#
# The model asked is the course's **base model**, the one lesson 04 fine-tunes (SmolLM2-135M-Instruct on a CPU,
# Qwen2.5-0.5B-Instruct on a GPU), served on this machine: the prompted persona and the fine-tuned one must share a
# base, or the comparison would measure two models instead of two approaches. With an OpenAI key (or a shared
# server serving another model) that model is added further down as a column labelled *reference*, never in
# place of the base.

# %% tags=["llm"]
from personalab import backends

base_side = backends.prompted_side()  # the base model, with or without an API key
client, model = base_side.client, base_side.model
print("prompted side:", base_side.label)

response = client.chat.completions.create(
    model=model,
    messages=[
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": "I just finished the report for my manager."},
    ],
    max_tokens=80,
)
print(response.choices[0].message.content)

# %% [markdown]
# ## With and without the prompt
#
# One answer proves little. Below, the same held-out requests (the model never saw them in training) are
# asked twice: with TaskMaster's system prompt and with none. The table shows the replies; the numbers under
# it count how many replies contain one of TaskMaster's marker phrases.

# %% tags=["llm"]
from personalab.steering import compare, heldout_requests

requests = heldout_requests()
comparison = compare(requests, {"no system prompt": None, "TaskMaster prompt": system_prompt}, client=client, model=model)
comparison

# %% tags=["llm"]
rates = comparison.marker_rates(spec)
for label, rate in rates.items():
    print(f"{label:>20}: {rate:.0%} of {len(requests)} replies carry a TaskMaster marker")

# %% [markdown]
# With an OpenAI key or a shared server serving another model, the cell below asks that model the same requests
# with the same prompt, as a **reference**: another, usually larger, model, so its rate says what the prompt can
# do on a model that follows prompts well, not what it does on the base that lesson 04 fine-tunes. Without one it
# says so and asks nothing.

# %% tags=["llm"]
from personalab.steering import compare_reference

reference = compare_reference(requests, system_prompt, progress=False)
if reference is None:
    reference_rates = {}
    print("no reference model (no OpenAI key or shared server): the comparison above is the whole story")
else:
    reference_rates = reference.marker_rates(spec)
    for label, rate in reference_rates.items():
        print(f"{label}: {rate:.0%} of {len(requests)} replies carry a marker (another base model: a reference, "
              "not the prompted side)")

# %% [markdown]
# What to look for: compare the two columns reply by reply, then the two rates. On the CPU profile's base,
# SmolLM2-135M-Instruct, the prompt changes the replies surprisingly little: a model this small follows a long
# persona prompt only loosely, and it may use no marker phrase at all. That is the course's first real
# finding, not a bug: how well a system prompt steers depends on the model, and small models are steered
# poorly. A larger model (the GPU base, Qwen2.5-0.5B, or an API model) usually shows the markers in most
# prompted replies. Whatever gap you see here is what the system-prompt approach buys you on this model, and
# what the fine-tuned model of lesson 04 will have to match *without* a prompt.
#
# ## Iterate: change the persona, see the change
#
# The system prompt's great strength is that a change takes effect on the next request. Swap TaskMaster's
# vocabulary for a new catchphrase and ask again: no training, no deployment. Whether the model picks the new
# catchphrase up is something to read in the reply below, not to assume: a model as small as the CPU
# profile's base may well ignore it.

# %% tags=["llm"]
edited = spec.model_copy(deep=True)
edited.vocabulary.use = ["Onward and upward!"]
print(backends.ask(requests[0], system=edited.render(), client_=client, model=model, max_tokens=60))

# %% [markdown]
# ## Overlays: one persona, several departments
#
# A company rarely wants one voice everywhere. An **overlay** adds context for one department or season on
# top of the persona. In lesson 06 the same overlays sit on top of a *fine-tuned* TaskMaster: the hybrid.

# %%
print("overlays:", persona.available_overlays())
marketing = persona.load_overlay("marketing")
print(spec.render(marketing)[-300:])

# %% tags=["llm"]
overlaid = {name: spec.render(persona.load_overlay(name)) for name in persona.available_overlays()}
by_overlay = compare(["Add a task: prepare the slides for Monday"], overlaid, client=client, model=model,
                     max_tokens=60, progress=False)  # the overlays' requests at once: the server batches them
for name, replies in by_overlay.replies.items():
    print(f"[{name}] {replies[0]}")

# %% [markdown]
# ## Few-shot: show the persona instead of describing it
#
# The articles suggest a common trick: end the system prompt with a few **example exchanges** (a user
# message and the reply the persona should give). This is **few-shot prompting**: the model sees the voice
# instead of only reading a description of it. The examples live in `data/personas/taskmaster_examples.yaml`,
# worded unlike the held-out requests, and `fewshot.with_examples(spec, n)` appends the first `n`:

# %%
from personalab import fewshot

few_shot = fewshot.with_examples(spec, 3)
few_shot_prompt = few_shot.render()
print(few_shot_prompt[len(system_prompt):])

# %% [markdown]
# The cell below asks the same held-out requests with the few-shot prompt (the plain prompt's replies are the
# ones from above, so nothing is asked twice) and measures three things side by side: how many replies carry
# a marker (with a 95 % interval, explained below the table), how many prompt tokens each request sends (the
# o200k count OpenAI bills, and this model's own count when it is a local checkpoint), and what 1,000 such
# requests would cost on gpt-4o-mini at the price table's rates, with the replies the model actually gave.

# %% tags=["llm"]
from personalab.steering import Comparison
from personalab.widgets import Table

prompts = {"TaskMaster prompt": system_prompt, "prompt + 3 examples": few_shot_prompt}
shots = compare(requests, {"prompt + 3 examples": few_shot_prompt}, client=client, model=model)
both = Comparison(requests, {"TaskMaster prompt": comparison.replies["TaskMaster prompt"], **shots.replies})
few_shot_rows = fewshot.measure(both, prompts, spec, served_model=model)
print(fewshot.summary(few_shot_rows))
Table(few_shot_rows, [k for k in few_shot_rows[0] if k not in ("marker low", "marker high")])

# %% tags=["plot"]
fewshot.plot(few_shot_rows);

# %% [markdown]
# Each count comes with a **95 % interval** (the *Wilson score interval*): the range of marker rates that could
# plausibly give this count out of this many replies. With a dozen replies it is wide: 4 of 12 is "somewhere
# between 14 % and 61 %". When the two prompts' intervals overlap, this run cannot tell them apart; ask more
# requests before you believe a difference. The plot draws the same intervals as error bars.
#
# What to look for: the token column grows by the examples' length on every request — that part is certain.
# Whether the marker rate grows with it is what your run measured: a small model sometimes copies an
# example's catchphrase more readily than it follows a described rule, and sometimes copies the example's
# *content* (an invoice, train tickets) or its whole transcript ("User: … TaskMaster: …") into an unrelated
# reply, which is worse. A marker inside a copied example still counts as a marker, so read a few replies
# before trusting the rate:

# %%
for q, reply in list(zip(requests, shots.replies["prompt + 3 examples"]))[:4]:
    print(f"> {q}\n  {reply}\n")

# %% [markdown]
# ## Check your understanding
#
# Three short questions about what *your* run just measured: the right answer is whatever your numbers say.
# Replace the `...` line with your answer (remove the `#`), run the cell, and `q1.hint()` helps when stuck.

# %%
from personalab.checks.understanding import lesson

q1, q2, q3 = lesson("01").questions

# %%
# marker_gain = ...   # the marker rate with the prompt minus the rate without, a number from -1 to 1
q1.check()

# %%
# prompt_steers = ...   # True if the prompt added a marker to at least half of the replies, else False
q2.check()

# %%
# few_shot_intervals_overlap = ...   # True if the plain and the few-shot prompt's 95 % intervals share a value
q3.check()

# %% [markdown]
# ## Save what you measured
#
# Lesson 06 fills its comparison matrix with your own numbers; this cell stores the marker rates measured
# above, with the model and hardware they came from, and the base model (lesson 06 warns when numbers set side
# by side come from different bases). A reference model's rate is kept apart from them.

# %%
from personalab import results

path = results.save("01", "steering", {"marker_rates": rates, "n_requests": len(requests),
                                       "base_model": base_side.base_model, "reference_marker_rates": reference_rates},
                    model=model)
print("saved", path)

# %% [markdown]
# **Next:** lesson 02 prices this system prompt: it is sent with every request, so its tokens are paid for
# every time.
