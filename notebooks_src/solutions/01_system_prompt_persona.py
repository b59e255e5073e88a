# %% [markdown]
# # Exercise 01 — Your own persona in a system prompt
#
# In lesson 01 you rendered TaskMaster into a system prompt and saw it change the model's replies. Now you
# design a persona of your own, for a domain you choose (a kitchen, a lab, a gym, a help desk, a library…),
# and find out, by measuring, what its system prompt changes in the model's replies.
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
# short, distinctive phrases (two to five words) that a plain assistant would never say: a marker that turns
# up in replies *without* your prompt cannot show what the prompt does, and step 4's check says so. A rule
# such as `Start every reply with "Yes, chef!"` is the most direct instruction a prompt can give; whether
# the model follows it is what step 4 finds out.

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
    - Yes, chef!
    - Heard, on it
    - Behind you
  avoid:
    - As an AI language model
    - No worries
rules:
  - Start every reply with "Yes, chef!"
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
# ## 4. What does the prompt change?
#
# Write 3 to 5 different requests a user of your persona would send (`my_requests`, a list of strings). The
# cell after it asks the model each one twice, with your system prompt and with none, greedily (temperature
# 0: the same request gets the same reply each time you run it). The cell after that prints, for each
# request, whether each reply carries one of your markers.

# %%
# my_requests = ["...", "...", "..."]
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
for request, plain, prompted in zip(my_requests, comparison.replies["without"], comparison.replies["with"]):
    marked = ["yes" if persona.has_marker(reply, spec) else "no" for reply in (prompted, plain)]
    print(f"with: {marked[0]:<3}  without: {marked[1]:<3}  {request}")

# %% [markdown]
# Read the replies and the table, and state your finding: on how many of your requests did the prompt make
# the difference, that is, the reply *with* the prompt carries a marker and the reply *without* it does not?
# Store that number in `prompt_changed` (a whole number; 0 if it never did).
#
# The check asks the model the same requests again and grades your count against what it finds, accepting
# one request either way (greedy decoding on another machine can tip a near-tie). It grades your reading,
# not the model's obedience: an honest count gets full marks whatever the model did. It fails a count the
# replies do not show, and a persona whose markers turn up even without the prompt.

# %% tags=["llm"]
# prompt_changed = ...
### BEGIN SOLUTION
prompt_changed = sum(
    persona.has_marker(prompted, spec) and not persona.has_marker(plain, spec)
    for prompted, plain in zip(comparison.replies["with"], comparison.replies["without"])
)
### END SOLUTION
print(f"the prompt made the difference on {prompt_changed} of {len(my_requests)} requests")

# %% tags=["llm"]
q4.check()

# %%
# q4.hint()
# q4.hint(2)

# %% [markdown]
# **What to make of it.** On the CPU profile's small base model, expect the prompt to change little: a model
# this small follows a system prompt poorly, so your markers may appear in few of its replies, or in none,
# however well you write the persona. That is a property of the model, not a mistake in your spec, and it
# is why this course measures what a prompt does instead of assuming it. On a GPU or API backend the same
# cells typically show a clear difference. Lesson 04 takes the other route: it trains the persona into the
# model's weights.

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
