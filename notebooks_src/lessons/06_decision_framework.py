# %% [markdown]
# # Lesson 06 — The decision, with your own numbers
#
# *Every term is defined where it first appears, and collected in the [glossary](https://github.com/persona-lab/persona-lab/blob/main/GLOSSARY.md).*
#
# The article compares the two approaches on seven dimensions — setup cost, latency, consistency,
# robustness, flexibility, token cost and expertise — and ends with a decision framework. Its figures are
# rules of thumb, and it calls the consistency percentages illustrative. You now have measurements of your
# own from lessons 01–05. This lesson:
#
# 1. measures the last missing piece: how long a persona change takes when the persona is a prompt;
# 2. builds the **hybrid** — the fine-tuned TaskMaster as the core, a short prompt overlay per department —
#    and runs it through lesson 05's drift and injection harness;
# 3. fills the comparison matrix with your numbers, next to the article's;
# 4. runs the decision framework as code, first on the article's rules of thumb, then on your measurements;
# 5. writes the report to `build/`.
#
# Every cell of the matrix says which model and hardware its number came from. Where a lesson has not been
# run, the cell says so instead of showing a number.
#
# This lesson also works alone: each "Open in Colab" badge opens a fresh runtime, which holds none of the
# earlier lessons' results. The cell below says what it found in `PERSONALAB_HOME` (the results of lessons
# 01–05 and lesson 04's fine-tuned model) and, for each missing piece, what this lesson does instead, with an
# estimate of the time from the course's request budget.

# %%
from personalab import budget, decision, report, results
from personalab.evidence import standalone_plan

records = results.load_all()
for line in standalone_plan(records, report.SOURCES, budget.request_budget()):
    print(line)

# %% [markdown]
# ## 1. Changing a prompted persona
#
# The article says a system prompt "changes instantly" and a fine-tuned persona "requires retraining". The
# retraining time is lesson 04's training run. The prompt side is timed here: edit the spec (a new
# catchphrase), render it again, and send one request with the new prompt — from the edit to the first
# reply in the new voice. The request goes to the base model that lesson 04 fine-tunes, with or without an OpenAI
# key, so the two sides of the comparison below ran on the same base.

# %% tags=["llm", "timing"]
change = report.measure_prompt_change()
print(f"edit + render: {change['render_s'] * 1000:.2f} ms, one request: {change['request_s'] * 1000:.0f} ms, "
      f"total: {change['total_s']:.3f} s on {results.hardware()}")
print("first reply with the new prompt:", change["reply"][:120])
saved = results.save("06", "change", {k: v for k, v in change.items() if k != "reply"}, model=change["model"])

# %% [markdown]
# What to look for: the render takes a tiny fraction of the total; almost all of it is the one request.
# Compare it, in the matrix below, with the retraining run.
#
# ### What a persona change costs, both ways
#
# The same change on a fine-tuned persona means a new dataset, a new training run, an evaluation and a
# redeployment. `requestlog.change_cost` puts the two side by side from the saved records: the prompt change
# timed above, and lesson 04's recorded training time (or a note that lesson 04 has not been run).

# %%
from personalab import requestlog
from personalab.widgets import Table

change_rows = requestlog.change_cost(results.load("06", "change"), results.load("04", "training"))
Table(change_rows)

# %% [markdown]
# The training time is only the machine's part: a changed persona also needs its dataset regenerated and
# checked (lesson 03) and the new model evaluated (lesson 05) before it replaces the old one. A persona that
# changes every week pays that every week; the prompt pays nothing but the request.
#
# ### System prompts show up in request logs
#
# The other side of "sent with every request": anything that logs requests — a proxy, an API gateway, the
# provider's own logs — stores the **whole system prompt on every call**, with its rules and anything
# confidential in it. The cell below wraps the `openai` client with an httpx event hook that keeps each
# request body exactly as sent (what a logging proxy sees), sends two prompted requests and one request to
# the fine-tuned model, which needs no prompt, and shows what the log holds. The requests ask for one token:
# only their bodies matter here.

# %% tags=["llm"]
from personalab import backends, finetune
from personalab.errors import InputError
from personalab.persona import taskmaster

log = requestlog.RequestLog()
side = backends.prompted_side()  # the base model lesson 04 fine-tunes, with or without an API key
prompted = requestlog.logged_client(side.client, log)
base_model = side.model
persona_prompt = taskmaster().render()
asks = ["Add a task: call the plumber tomorrow.", "I finished the slides for Friday."]
for q in asks:
    prompted.chat.completions.create(model=base_model, max_tokens=1, messages=[
        {"role": "system", "content": persona_prompt}, {"role": "user", "content": q}])
try:
    tuned_dir = finetune.finetuned_model_dir()
    tuned = requestlog.logged_client(backends.client("local", model_dir=tuned_dir), log)
    tuned_model, tuned_label = backends.local_server(tuned_dir).model, "fine-tuned, no prompt"
except InputError as err:
    print(f"lesson 04's model is missing ({err.message}); the no-prompt request goes to the base instead")
    tuned, tuned_model, tuned_label = prompted, base_model, "no prompt (base: lesson 04's model missing)"
tuned.chat.completions.create(model=tuned_model, max_tokens=1, messages=[{"role": "user", "content": asks[0]}])
labels = ["prompted 1", "prompted 2", tuned_label]
Table(log.rows(labels), ["request", "system prompt chars in the log", "system prompt starts", "user message"])

# %%
print(f"{log.logged_bytes():,} bytes logged for {len(labels)} requests; at 1,000,000 prompted requests a month "
      f"the log stores the persona {1_000_000:,} times: about {len(persona_prompt) * 1_000_000 / 1e9:.1f} GB of it")

# %% [markdown]
# What to look for: every prompted request carries the full persona, character for character; the
# fine-tuned request carries none, because the persona is in the weights. That is also why a prompt can be
# *extracted* (lesson 05's canary attacks) and a fine-tuned persona's instructions cannot be read from the
# request — though the model's replies still show what it learned.
#
# ## 2. The hybrid: a fine-tuned core with department overlays
#
# A company wants TaskMaster everywhere, but marketing talks about campaigns, engineering about sprints,
# sales about leads, and at the end of a quarter everybody is in a hurry. Four prompted personas would each
# carry the full persona prompt, and each could drift or be talked out of it. The hybrid keeps the persona
# in the weights and puts only the *differences* in the system prompt: an overlay of a few lines.

# %%
from personalab import hybrid
from personalab.persona import render_overlay

overlays = hybrid.load_overlays()
print(render_overlay(overlays[0]))

# %% [markdown]
# The request of the hybrid is the article's message array: the fine-tuned model, the overlay as the system
# message, the user's message.
#
# ```python
# client.chat.completions.create(model=finetuned_model, messages=[
#     {"role": "system", "content": render_overlay(marketing)},
#     {"role": "user", "content": user_message}])
# ```
#
# The cell below runs the fine-tuned model without a prompt and with each overlay through lesson 05's drift
# scripts and attack suite (the same settings, so the replies lesson 05 already produced come from the
# cache). It adds one question lesson 05 did not ask: **does the overlay show?** — how often the replies
# use the overlay's terms, next to how often the core model uses the same terms in the same conversations.
# Lesson 04's fine-tuned model is needed; in a fresh runtime without it, the cell first fine-tunes it with
# lesson 04's settings and says how long that takes (the first cell of this lesson estimated it too).

# %% tags=["llm"]
from personalab.errors import InputError

try:
    hyb = hybrid.evaluate_hybrid(overlays)
except InputError as err:
    hyb = None
    print(f"{err}\nThe hybrid is not measured in this runtime (its matrix cells say so): "
          "run lesson 04, then this cell again.")
hyb

# %% tags=["plot"]
if hyb is not None:
    hyb.plot();

# %%
if hyb is not None:
    print("saved", hyb.save())

# %% [markdown]
# What to look for: does any overlay cost adherence or robustness compared with the core? Does the
# terminology bar rise above the core's mark — that is, does the overlay change what the model says? A very
# small model often cannot follow an overlay it never saw in training; a larger one in Colab usually can.
# An overlay is also a system prompt, so it can leak: the canary rate of the injection suite tells you.
#
# ## 3. The comparison matrix, filled with your numbers

# %%
records = results.load_all()
matrix = report.build(records)
matrix

# %% [markdown]
# Below the matrix, the report names the base model behind each compared number, and warns when two numbers
# set side by side ran on different base models (for example a prompted rate saved with an API model beside
# lesson 04's fine-tuned small model): such a difference is not prompt vs weights alone.
#
# Read it row by row against the article's column. Setup cost and flexibility: what a change costs on each
# side. Latency: what the persona's tokens add to the time to first token on your backend. Consistency and
# robustness: lesson 05's measurements with their confidence intervals. Token cost: lesson 02's cost model
# on your persona's real size. The plot sets the article's illustrative consistency figures beside yours;
# the scales differ (the article gives percentages, lesson 05 a mean score and a rate), so compare the
# *shapes* — does the prompted persona fall from early to late turns, does the fine-tuned one hold?

# %% tags=["plot"]
report.plot_vs_article(records);

# %% [markdown]
# ## 4. The decision framework as code
#
# `decision.recommend` asks the article's questions — volume, stability, security, consistency, and whether
# several personas share a model — and says which approach each answer favours. First the article's
# TaskMaster case: moderate to high volume, a stable persona, public, consistency critical.

# %%
article = decision.recommend(monthly_requests=300_000, persona_change_frequency="quarterly", public_facing=True,
                             consistency_critical=True)
article

# %% [markdown]
# The thresholds above are the article's, and its claims about drift and injection are taken on trust. With
# your measurements the framework replaces them: the break-even volume from lesson 02's cost model (with
# lesson 03's training cost) decides the volume question, and lesson 05's measured gaps decide whether
# "public-facing" and "brand-critical" really favour the fine-tuned model on *your* model. A gap decides only
# when it is clear: when the two 95 % intervals overlap, the factor says the measurement does not decide it,
# and a target whose replies the fluency gate mostly rejected gives no evidence at all. Each measured reason
# quotes the interval and its n. Read the n: lesson 05's CPU run has a few dozen replies per target, and the
# last turns of one conversation are not independent of each other, so a narrow interval there is narrower
# than the truth.

# %%
evidence = decision.Evidence.from_results(records)
for line in evidence.describe() or ["nothing measured yet: the article's thresholds apply"]:
    print("-", line)
measured = decision.recommend(monthly_requests=300_000, persona_change_frequency="quarterly", public_facing=True,
                              consistency_critical=True, evidence=evidence)
measured

# %% [markdown]
# The article's quick-reference table, answered by the framework with your numbers. Where the two disagree,
# the "why" column says which measurement overruled the rule of thumb.

# %%
from personalab.widgets import Table

Table(decision.quick_reference(evidence), ["scenario", "article", "framework", "why"])

# %% [markdown]
# Try your own case: move the controls and read the reasons.

# %% tags=["widget"]
decision.explorer(evidence)

# %% [markdown]
# ## Check your understanding
#
# Three short questions about what *your* run just measured: the right answer is whatever your numbers say.
# Replace the `...` line with your answer (remove the `#`), run the cell, and `q1.hint()` helps when stuck.

# %%
from personalab.checks.understanding import lesson

q1, q2, q3 = lesson("06").questions

# %%
# approach_with_your_numbers = ...   # "system prompt", "fine-tuning" or "hybrid": the recommendation with your evidence
q1.check()

# %%
# overruled = ...   # a list of the factor names that favour a different approach once your numbers are used
q2.check()

# %%
# change_slowdown = ...   # how many times longer retraining took than the prompt change (section 1's table)
q3.check()

# %% [markdown]
# ## 5. The report
#
# The matrix, the framework on your numbers and the list of sources, as Markdown and HTML in `build/`
# (`personalab run-course` writes the same files after running every lesson).

# %%
from personalab.course import BUILD_DIR

for path in matrix.write(BUILD_DIR):
    print("wrote", path)

# %% [markdown]
# ## Try it yourself: the persona arena
#
# Before you decide, ask the four configurations the same question yourself. The arena sends one message to
# the base model without a prompt, the prompted base, the fine-tuned model and the hybrid (here with the
# sales overlay) at once, and scores each answer as lesson 05 does. A column without lesson 04's model says
# "not available" and why.

# %% tags=["llm"]
from personalab import arena

arena_targets = arena.course_targets(overlay="sales")
arena.play("I just closed the deal with Acme. What should I do next?", arena_targets)

# %% [markdown]
# Try a request from your own department and look at the hybrid's column: does it use the overlay's terms
# (lead, pipeline, follow-up, deal) where the fine-tuned model does not? Then pick an attack, or write one
# and press **Add to my attacks**; your attacks are saved to `arena.my_attacks_path()`, shared with
# lesson 05's arena.

# %% tags=["widget"]
arena.arena(arena_targets)

# %% [markdown]
# **Done.** Exercise 06 is the article's approach analysis on measured figures: two cases, your numbers
# where you have them, and a recommendation that must follow from them and from the priorities you state.
