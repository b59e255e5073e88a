# %% [markdown]
# # Exercise 02 — Context-window economics
#
# You price one scenario both ways, find where fine-tuning breaks even, work out how long a persona must be
# before fine-tuning saves money, judge when caching or conversation length flips the decision, and read
# the latency slope off your own measurement.
#
# Write your code in the cells marked for it, run them, then run the `check()` cell below each one.
# `q1.hint()` gives a hint (`q1.hint(2)` the next one); `q1.solution()` shows a solution.

# %%
from personalab import costs, latency
from personalab.checks.ex02 import SCENARIO, q1, q2, q3, q4, q5

SCENARIO

# %% [markdown]
# The scenario: a support assistant with an **800-token persona**, 60-token user messages and 150-token
# replies, **200,000 requests a month**, one turn each. The base model costs \$0.40 per 1M input tokens and
# \$1.60 per 1M output tokens; the fine-tuned model twice that. (These are fixed for the exercise; they do
# not come from your price table.)
#
# ## Question 1 — Price the scenario (2 points)
#
# Fill `q1_answer` with four numbers in US dollars: `prompt_per_request`, `prompt_monthly` (the persona in
# the system prompt), `finetuned_per_request`, `finetuned_monthly` (fine-tuned, no system prompt).
# You may use `costs.Workload`, `costs.Rates` and `costs.per_request_cost` / `costs.monthly_cost`.

# %%
### BEGIN SOLUTION
w = costs.Workload(persona_tokens=800, user_tokens=60, response_tokens=150)
base = costs.Rates(input=0.40, output=1.60)
ft = costs.Rates(input=0.80, output=3.20)
q1_answer = {
    "prompt_per_request": costs.per_request_cost(w, base),
    "prompt_monthly": costs.monthly_cost(w, base, 200_000),
    "finetuned_per_request": costs.per_request_cost(w, ft, finetuned=True),
    "finetuned_monthly": costs.monthly_cost(w, ft, 200_000, finetuned=True),
}
### END SOLUTION
q1_answer

# %%
q1.check()

# %% [markdown]
# ## Question 2 — Break-even volume (2 points)
#
# Fine-tuning costs \$5.00 per 1M training tokens; the training file holds 1,500,000 tokens and trains for
# 3 epochs. Spread that one-time cost over 12 months.
#
# * `training_usd`: the one-time training cost;
# * `break_even_requests`: the monthly volume above which fine-tuning is cheaper;
# * `break_even_persona_500`: the same volume if the persona had only 500 tokens — or `None` if no volume
#   makes fine-tuning cheaper.

# %%
### BEGIN SOLUTION
training_usd = costs.training_cost(1_500_000, 3, 5.00)
saving = costs.per_request_cost(w, base) - costs.per_request_cost(w, ft, finetuned=True)
break_even_requests = training_usd / 12 / saving
w500 = costs.Workload(persona_tokens=500, user_tokens=60, response_tokens=150)
saving_500 = costs.per_request_cost(w500, base) - costs.per_request_cost(w500, ft, finetuned=True)
break_even_persona_500 = training_usd / 12 / saving_500 if saving_500 > 0 else None
### END SOLUTION
print(training_usd, break_even_requests, break_even_persona_500)

# %%
q2.check()

# %% [markdown]
# ## Question 3 — How long must the persona be? (2 points)
#
# With the same prices, find the persona size (in tokens) above which a fine-tuned request is cheaper than
# a system-prompted one: `threshold_1_turn` for single-turn requests, and `threshold_10_turns` for
# conversations of 10 turns (each turn re-sends the persona and the whole history).

# %%
### BEGIN SOLUTION
threshold_1_turn = costs.persona_break_even_tokens(costs.Workload(0, 60, 150), base, ft)
threshold_10_turns = costs.persona_break_even_tokens(costs.Workload(0, 60, 150, turns=10), base, ft)
### END SOLUTION
print(threshold_1_turn, threshold_10_turns)

# %%
q3.check()

# %% [markdown]
# ## Question 4 — When does the decision flip? (2 points)
#
# Mark each claim `True` or `False` in the dict `claims`:
#
# * **a** — Longer conversations make fine-tuning (at 2x token prices) cheaper relative to the system prompt.
# * **b** — Prompt caching only changes the bill once a prompt reaches 1024 tokens.
# * **c** — If a fine-tuned request costs more than a system-prompted one, no monthly volume makes
#   fine-tuning cheaper on API pricing.
# * **d** — A one-time training cost moves the break-even volume, but does not decide whether one exists.
# * **e** — A self-hosted model on an always-on GPU is the cheapest option at low volume.

# %%
### BEGIN SOLUTION
claims = {"a": False, "b": True, "c": True, "d": True, "e": False}
### END SOLUTION

# %%
q4.check()

# %% [markdown]
# ## Question 5 — Your own latency slope (1 point)
#
# Measure your backend with system prompts of 0, 200 and 800 tokens, twice each, keep the table's rows in
# `latency_rows`, and put the added time to first token per 100 prompt tokens (in milliseconds) in
# `ms_per_100_tokens`. The check recomputes the slope from your rows, so any backend and any result passes
# as long as the two agree.

# %% tags=["timing"]
### BEGIN SOLUTION
table = latency.measure((0, 200, 800), repeats=2)
latency_rows = table.rows()
ms_per_100_tokens = table.fit().ms_per_100_tokens
### END SOLUTION
print(f"{ms_per_100_tokens:.2f} ms per 100 prompt tokens on {table.label}")

# %%
q5.check()
