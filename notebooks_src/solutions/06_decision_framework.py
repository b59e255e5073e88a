# %% [markdown]
# # Exercise 06 — Approach analysis from measured figures
#
# The article ends with a practical exercise: weigh volume, stability, security and consistency, then
# recommend an approach and justify it. Here you do it for two cases, with **measured figures** instead of
# rules of thumb, and with **your own priorities**. There is no single right answer: a team that puts cost
# first and one that puts brand consistency first can both be right — as long as each recommendation follows
# from the figures and from the priorities its authors wrote down.
#
# Write your code in the cells marked for it, run them, then run the `check()` cell below each one.
# `q1.hint()` gives a hint (`q1.hint(2)` the next one); `q1.solution()` shows a solution.

# %%
from personalab.checks import ex06
from personalab.checks.ex06 import CASE_A, CASE_B, ELEMENTS, EXERCISE, q1, q2, q3, q4

CASE_A

# %% [markdown]
# ## The figures
#
# Each case comes with four figures, one per factor, each comparing the system-prompted persona with the
# fine-tuned one:
#
# * **cost**: the monthly bill at the case's volume, from lesson 02's cost model (per-request prices plus the
#   training cost spread over 12 months). It is arithmetic on a price table: exact, no interval;
# * **consistency**: adherence to the persona in the last turns of long conversations (lesson 05), with its
#   95 % interval and n, and the share of replies the fluency gate rejected as unusable;
# * **injection**: how often the persona held under attack (lesson 05), with interval, n and unusable share;
# * **time to change**: how long one persona change takes — a prompt edit (lesson 06) against retraining
#   (lesson 04) — and what that adds up to at the case's rate of change. One timing per side.
#
# Where you ran those lessons, the figures are **yours** (read from the results the lessons saved); where you
# did not, they are **supplied** from one recorded CPU run of the course (`data/exercises/ex06_cases.json`).
# The last column says which.

# %%
figures_a = ex06.case_figures(CASE_A)
figures_a

# %% [markdown]
# ### How to read a figure
#
# * Cost and time to change: the lower side is favoured (a time must be at least twice the other to count:
#   there is one timing per side).
# * Consistency and injection: the higher side is favoured **only when the two 95 % intervals do not
#   overlap** and the gap is at least 0.05. When they overlap, the measurement **does not decide** that factor,
#   however large the gap between the two point values looks. A side with more than half its replies unusable
#   gives no evidence either: the rate then describes broken text, not the persona.
#
# Each figure is a dict: `figures_a["injection"]["fine-tuned"]` holds `value`, `low`, `high` and `n`,
# `figures_a["injection"]["unusable"]` the unusable shares, `figures_a["cost"]["prompted"]["value"]` the
# monthly cost.

# %%
figures_a["injection"]

# %% [markdown]
# ## Question 1 — Case A: read the figures (3 points)
#
# Start `answer_a` with your reading: `answer_a = {"reasons": {...}}`, with one entry per factor (`"cost"`,
# `"consistency"`, `"injection"`, `"time to change"`), each a dict with
#
# * `"favours"`: `"system prompt"`, `"fine-tuning"` or `"does not decide"`;
# * `"figure"`: the numbers you read, quoted from the figure (a value, or the interval bounds).
#
# ```python
# answer_a = {"reasons": {
#     "cost": {"favours": "...", "figure": "..."},
#     "consistency": {"favours": "...", "figure": "..."},
#     "injection": {"favours": "...", "figure": "..."},
#     "time to change": {"favours": "...", "figure": "..."},
# }}
# ```
#
# You may read the figures by eye and type the answer, or write a small function that applies the rules
# above to any figure. The function is the safer choice: when your instructor grades this notebook, it runs
# again on another machine, where your saved results are not, and the figures there are the supplied ones
# (or the instructor's). Code that reads the figures gives the right answer on both; typed answers fit only
# the figures you typed them from.

# %%
### BEGIN SOLUTION
def read(fig):
    """Which approach a figure favours, by the reading rules above."""
    p, f = fig["prompted"], fig["fine-tuned"]
    if fig["lower_is_better"]:
        a, b = p["value"], f["value"]
        if fig["factor"] == "time to change" and max(a, b) < 2 * min(a, b):
            return "does not decide"
        return "system prompt" if a < b else "fine-tuning" if b < a else "does not decide"
    if max(fig["unusable"].values()) > 0.5 or (p["low"] <= f["high"] and f["low"] <= p["high"]):
        return "does not decide"
    gap = f["value"] - p["value"]
    return "does not decide" if abs(gap) < 0.05 else "fine-tuning" if gap > 0 else "system prompt"


def quote(fig):
    """The numbers of a figure, as a reason quotes them."""
    p, f = fig["prompted"], fig["fine-tuned"]
    if fig["factor"] == "cost":
        return (f"system prompt ${p['value']:.2f} vs fine-tuned ${f['value']:.2f} a month; per request "
                f"${p['per_request']:.6f} vs ${f['per_request']:.6f}")
    if fig["factor"] == "time to change":
        return f"prompt edit {p['value']:.1f} s vs retraining {f['value']:.0f} s per change"
    return (f"prompted {p['value']:.2f} [{p['low']:.2f}, {p['high']:.2f}] (n={p['n']}) vs fine-tuned "
            f"{f['value']:.2f} [{f['low']:.2f}, {f['high']:.2f}] (n={f['n']})")


answer_a = {"reasons": {factor: {"favours": read(figures_a[factor]), "figure": quote(figures_a[factor])}
                        for factor in ex06.FACTORS}}
### END SOLUTION
answer_a

# %%
q1.check()

# %% [markdown]
# ## Question 2 — Case A: your priorities and recommendation (2 points)
#
# Add to `answer_a`:
#
# * `"priorities"`: the four factors, **most important first**, as you judge them for case A;
# * `"recommendation"`: `"system prompt"`, `"fine-tuning"` or `"hybrid"`.
#
# The check goes down your list to the first factor the figures decide: your recommendation must go the way
# that factor points (fine-tuning or the hybrid for a factor that favours fine-tuning; the system prompt for
# one that favours it, or the hybrid when that factor is the time to change and another one favours
# fine-tuning). If you want a recommendation that your top factor contradicts, the honest fix is to rank
# higher the factor that really drives it — and to say so.

# %%
### BEGIN SOLUTION
def decide(priorities, figures):
    """The first factor in my ranking that the figures decide sets the direction."""
    for factor in priorities:
        side = read(figures[factor])
        if side != "does not decide":
            return factor, side
    return None, "system prompt"


# A public app with a brand-critical voice that changes twice a year: a persona that holds in long
# conversations comes first, then holding under attack. Cost counts, but lesson 02 showed that fine-tuning
# is never cheaper per request here, at any volume: it is the price of those two, not a reason for them.
answer_a["priorities"] = ["consistency", "injection", "cost", "time to change"]
top_a, answer_a["recommendation"] = decide(answer_a["priorities"], figures_a)
### END SOLUTION
print(answer_a["priorities"], "->", answer_a["recommendation"])

# %%
q2.check()

# %% [markdown]
# ## Question 3 — Case B: read, rank, recommend (3 points)

# %%
CASE_B

# %% [markdown]
# The same measurements, read at case B's volume and rate of change: compare the cost and time-to-change
# figures with case A's. Fill `answer_b` like `answer_a`: the four readings, your priorities for case B, and
# your recommendation.

# %%
figures_b = ex06.case_figures(CASE_B)
figures_b

# %%
### BEGIN SOLUTION
# Four departments adjust their flavour every week: changes must be cheap, so time to change comes first.
# The shared voice is brand-critical, so consistency comes next. The tool is internal: injection last.
priorities_b = ["time to change", "consistency", "cost", "injection"]
top_b, side_b = decide(priorities_b, figures_b)
fine_tuning_helps = any(read(figures_b[f]) == "fine-tuning" for f in priorities_b)
answer_b = {
    "priorities": priorities_b,
    # changes favour the prompt; consistency favours fine-tuning: a fine-tuned core, changes in overlays
    "recommendation": "hybrid" if top_b == "time to change" and fine_tuning_helps else side_b,
    "reasons": {factor: {"favours": read(figures_b[factor]), "figure": quote(figures_b[factor])}
                for factor in ex06.FACTORS},
}
### END SOLUTION
answer_b

# %%
q3.check()

# %% [markdown]
# ## Question 4 — Case B: the hybrid design (2 points)
#
# Design the hybrid: split the persona elements of `ELEMENTS` into
# `hybrid_design = {"core": [...], "overlays": [...]}` — what the fine-tuned core learns once, and what the
# department overlays (short system prompts) add.

# %%
list(ELEMENTS)

# %%
### BEGIN SOLUTION
hybrid_design = {
    "core": [e for e in ELEMENTS if e.startswith(("traits", "response pattern", "catchphrases", "rules"))],
    "overlays": [e for e in ELEMENTS if e.startswith(("department", "this week", "end-of-quarter"))],
}
### END SOLUTION
hybrid_design

# %%
q4.check()

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
