# %% [markdown]
# # Exercise 01 — Your own persona in a system prompt
#
# In lesson 01 you rendered TaskMaster into a system prompt and saw it change the model's replies. Now you
# design a persona of your own, for a domain you choose (a kitchen, a lab, a gym, a help desk, a library…),
# and prove that its system prompt works.
#
# **How the checks work.** After each step, run the `qN.check()` cell: it says what is right, what is
# missing, and how many points the step is worth. Stuck? Un-comment `qN.hint()` (and `qN.hint(2)` for a
# stronger one); `qN.solution()` shows an answer. Your instructor grades by running your notebook from top to
# bottom, so make sure it runs in order, and keep the variable names this notebook asks for.

# %%
from personalab import persona
from personalab.checks.ex01 import (
    EXERCISE,
    REQUEST_PARAMS,
    TOKEN_BUDGET,
    count_tokens,
    q1,
    q2,
    q3,
    q4,
    q5,
    spec_from,
)

# %% [markdown]
# ## 1. Write the spec
#
# Write your persona as YAML text in `my_persona`, with the same sections as TaskMaster's spec:
# `name`, `role` (it completes "You are NAME, …"), `traits` (each a `name` and a `description`),
# `response_pattern` (the steps of every reply), `vocabulary` (`use`: phrases it says, `avoid`: phrases it
# never says) and `rules`. A dict with the same keys works too.
#
# The `use` phrases are your persona's **markers**: later steps count them in the model's replies. Pick
# short, distinctive phrases (two to five words) that a plain assistant would never say. On the CPU
# profile the embedded model can only use catchphrases it knows as whole tokens: choose them from
# `personalab.embedded.STOCK_PHRASES` (printed below), and even among those it follows some more reliably
# than others, so if step 4 finds no markers, try other stock phrases. On a GPU or API backend any phrase works.

# %%
from personalab.embedded import STOCK_PHRASES

print(STOCK_PHRASES)

# %%
# my_persona = """
# name: ...
# role: ...
# traits:
#   - name: ...
#     description: ...
# ...
# """
### BEGIN SOLUTION
my_persona = """
name: Sous
role: a prep-list planner for a busy restaurant kitchen
traits:
  - name: Calm
    description: Stay steady when the dinner rush is close
  - name: Precise
    description: Repeat quantities, stations and times exactly
  - name: Brisk
    description: Keep every reply short, like a call across the pass
response_pattern:
  - Answer with a kitchen call
  - Confirm the prep item, quantity and time
  - Name the next station to check
vocabulary:
  use:
    - Let's get this sorted
    - Great work!
    - Nice choice!
  avoid:
    - As an AI language model
    - No worries
rules:
  - Never joke about food safety.
  - Never use more than one exclamation mark.
"""
### END SOLUTION

# %%
q1.check()

# %%
# q1.hint()
# q1.solution()

# %% [markdown]
# ## 2. Every section a persona needs
#
# A spec can validate and still be thin. Give yours at least 3 traits, a response pattern of at least 3
# steps, at least 2 short `use` phrases, at least 1 phrase to `avoid` and at least 2 rules. Edit the spec
# above, re-run its cell, then check. Each missing item costs part of the points.

# %%
q2.check()

# %%
# q2.hint()

# %% [markdown]
# ## 3. Render it, and stay within the token budget
#
# Validate the spec (`spec_from` reports the line and field of a mistake) and render it into the system
# prompt `my_prompt`. The prompt is sent with *every* request, so its length costs latency and money on each
# call (lesson 02 measures both): keep it within the budget below.

# %%
spec = spec_from(my_persona)
### BEGIN SOLUTION
my_prompt = spec.render()
### END SOLUTION
print(my_prompt)

# %%
n_tokens, counted_with = count_tokens(my_prompt)
print(f"{n_tokens} tokens ({counted_with}); budget: {TOKEN_BUDGET}")

# %%
q3.check()

# %%
# q3.hint()

# %% [markdown]
# ## 4. Does the prompt change the answers?
#
# Write 3 to 5 requests a user of your persona would send (`my_requests`, a list of strings). The cell after
# it asks the model each one twice: with your system prompt and with none. The check counts a request when
# the reply *with* the prompt carries one of your markers and the reply *without* it does not, and gives full
# marks when that happens on at least 60 % of your requests (3 of 5, 2 of 3): a tiny model does not follow a
# prompt every time, so five requests give you a margin.

# %%
### BEGIN SOLUTION
my_requests = [
    "Add a task: chop two kilos of onions before 5pm",
    "Remind me to order more flour on Friday",
    "Mark the stock for tonight's soup as done",
    "Add a task: sharpen the knives before service",
    "Remind me to check the fridge temperatures at noon",
]
### END SOLUTION

# %% tags=["llm"]
from personalab.steering import compare

comparison = compare(my_requests, {"without": None, "with": my_prompt}, **REQUEST_PARAMS)
comparison

# %% tags=["llm"]
q4.check()

# %%
# q4.hint()
# q4.hint(2)

# %% [markdown]
# ## 5. Measure it
#
# Turn the table into two numbers: the share of replies that carry a marker with the prompt and without it.
# Store them as `rates = {"with": ..., "without": ...}`. (`persona.marker_rate(replies, spec)` counts them;
# the replies are in `comparison.replies["with"]` and `comparison.replies["without"]`.)

# %% tags=["llm"]
### BEGIN SOLUTION
rates = {
    "with": persona.marker_rate(comparison.replies["with"], spec),
    "without": persona.marker_rate(comparison.replies["without"], spec),
}
### END SOLUTION
print(rates)

# %% tags=["llm"]
q5.check()

# %% [markdown]
# ## Your score so far
#
# The same checks run when your instructor grades the notebook, so this is the score you can expect.

# %%
EXERCISE.progress()

# %% tags=["instructor"]
# Instructor only (removed from the exercise): the solution must pass every check.
failed = [q.id for q in EXERCISE.questions if q.result is None or not q.result.ok]
assert not failed, f"the solution fails {failed}"
