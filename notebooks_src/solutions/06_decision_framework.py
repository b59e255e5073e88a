# %% [markdown]
# # Exercise 06 — Approach analysis
#
# The article ends with a practical exercise: estimate the volume, judge how stable the persona is, whether
# jailbreaking is a concern and how critical consistency is, then recommend an approach and justify it. Here
# you do it for two cases and for a use case of your own, and the course's decision framework
# (`personalab.decision.recommend`) checks that your recommendation follows from your answers.
#
# Write your code in the cells marked for it, run them, then run the `check()` cell below each one.
# `q1.hint()` gives a hint (`q1.hint(2)` the next one); `q1.solution()` shows a solution.

# %%
from personalab import decision
from personalab.checks.ex06 import CASE_A, CASE_B, ELEMENTS, EXERCISE, q1, q2, q3, q4

CASE_A

# %% [markdown]
# ## Question 1 — Analyse case A (2 points)
#
# Fill `analysis_a` with the four answers of the article's worksheet, using the names `recommend()` takes:
#
# * `monthly_requests`: expected requests per month (a number: compute it from the case);
# * `persona_change_frequency`: how often the persona changes — a word from `decision.FREQUENCIES` or a
#   number of changes per month;
# * `public_facing`: can strangers reach it and try to jailbreak it? (`True`/`False`)
# * `consistency_critical`: is adherence to the persona brand-critical? (`True`/`False`)

# %%
print("words the framework understands:", ", ".join(decision.FREQUENCIES))

# %%
### BEGIN SOLUTION
analysis_a = {
    "monthly_requests": 8_000 * 1.5 * 30,
    "persona_change_frequency": "twice a year",
    "public_facing": True,
    "consistency_critical": True,
}
### END SOLUTION
analysis_a

# %%
q1.check()

# %% [markdown]
# ## Question 2 — Recommend and justify (3 points)
#
# * `recommendation_a`: `"system prompt"`, `"fine-tuning"` or `"hybrid"`;
# * `verdicts_a`: for each of `"volume"`, `"stability"`, `"security"`, `"consistency"`, which approach that
#   question favours for this case — `"system prompt"`, `"fine-tuning"` or `"neutral"`;
# * `justification_a`: two or three sentences that name your recommendation and say, for each of the four
#   questions, why it points where it does.
#
# `decision.recommend(**analysis_a)` shows the framework's reasoning; your verdicts are checked against it.

# %%
### BEGIN SOLUTION
rec_a = decision.recommend(**analysis_a)
recommendation_a = rec_a.approach
verdicts_a = {name: rec_a.factor(name).favours or "neutral"
              for name in ("volume", "stability", "security", "consistency")}
justification_a = (
    "Fine-tuning: at 360,000 requests a month the volume is well above 100,000, the persona changes only "
    "twice a year so retraining is rare, the app is public so jailbreak attempts will come, and a "
    "brand-critical voice must not drift over long conversations."
)
### END SOLUTION
print(recommendation_a, verdicts_a)

# %%
q2.check()

# %% [markdown]
# ## Question 3 — Case B: factors that pull both ways (3 points)

# %%
CASE_B

# %% [markdown]
# Fill `analysis_b` (the same four answers plus `personas`: how many persona variants share the model) and
# `recommendation_b`. Then design the hybrid: split the persona elements of `ELEMENTS` into
# `hybrid_design = {"core": [...], "overlays": [...]}` — what the fine-tuned core learns once, and what the
# department overlays (short system prompts) add.

# %%
list(ELEMENTS)

# %%
### BEGIN SOLUTION
analysis_b = {
    "monthly_requests": 300 * 40,
    "persona_change_frequency": "weekly",
    "public_facing": False,
    "consistency_critical": True,
    "personas": 4,
}
recommendation_b = decision.recommend(**analysis_b).approach
hybrid_design = {
    "core": [e for e in ELEMENTS if e.startswith(("traits", "response pattern", "catchphrases", "rules"))],
    "overlays": [e for e in ELEMENTS if e.startswith(("department", "this week", "end-of-quarter"))],
}
### END SOLUTION
print(recommendation_b)
hybrid_design

# %%
q3.check()

# %% [markdown]
# ## Question 4 — Your own use case (2 points)
#
# Pick an assistant you know (or would like to build). Describe it in `my_case["description"]` and give the
# four inputs (add `"personas"` if several share one model). Your recommendation must be the framework's for
# your inputs — if it is not what you expected, ask yourself which input does not describe your case — and
# the justification must name the approach and address all four questions.

# %%
### BEGIN SOLUTION
my_case = {
    "description": "A study-planner chatbot for a university: students plan revision with it during exam "
                   "season; the student union wants a friendly, steady coach voice.",
    "monthly_requests": 25_000,
    "persona_change_frequency": "quarterly",
    "public_facing": True,
    "consistency_critical": False,
}
my_recommendation = decision.recommend(**{k: v for k, v in my_case.items() if k != "description"}).approach
my_justification = (
    "Fine-tuning: the volume of 25,000 requests a month is in the middle band, so cost does not decide; the "
    "persona changes only quarterly, so retraining is acceptable; the bot is public, so jailbreak attempts are "
    "likely; consistency is nice-to-have, so drift would not be a disaster."
)
### END SOLUTION
decision.recommend(**{k: v for k, v in my_case.items() if k != "description"})

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
