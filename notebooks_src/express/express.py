# %% [markdown]
# # Persona Lab, express: the whole measurement in one notebook
#
# *Every term is defined in the lessons and collected in the [glossary](https://github.com/persona-lab/persona-lab/blob/main/GLOSSARY.md).*
#
# This notebook runs the course's measurements from start to finish, in one runtime, without the teaching in
# between: a TaskMaster persona written as a system prompt (lesson 01), what its tokens cost (02), a training
# set (03), a LoRA fine-tune with Unsloth (04), drift and prompt injection on the prompted, fine-tuned and
# hybrid models (05), and the comparison matrix with the decision framework (06). It ends with the report,
# shown below and saved. Every cell is a call from the lesson named in its section; open that lesson to see
# why the number is measured that way and how to read it.
#
# Use it to get your own numbers in one sitting (on a free Colab T4, or on a CPU with the small model), then
# read the lessons. Run the cells in order: each one uses what the previous ones made.

# %% [markdown]
# ## How long this takes
#
# `personalab.budget` plays the course on paper: it counts every completion, training step and token that the
# lessons send under a profile's settings, and turns them into minutes with the profile's rates. The
# `colab-gpu` rates (a free T4) are **assumptions** until a T4 measures them; the table lists each one. This
# notebook sends a subset of what the lessons send (no demos or widgets), so the table is an upper bound for it.
# From a terminal: `personalab budget --profile colab-gpu`.

# %%
from personalab import budget

t4 = budget.request_budget("colab-gpu")
print(t4.table())
if profile.name != "colab-gpu":
    here = budget.request_budget(profile.name)
    print(f"\nthis runtime ({profile.name}, {here.rates.hardware}): about {here.total_s / 60:.0f} minutes "
          "(`personalab budget` for the table)")

# %% [markdown]
# Unsloth patches TRL and transformers when it is imported, so the fine-tuning backend is prepared first
# (lesson 04 does the same in its first cell).

# %%
from personalab import finetune

config = finetune.default_config()
backend = finetune.prepare(config)
print("trainer:", backend, "| base model:", config.base_model)

# %% [markdown]
# ## 1. A persona in the system prompt (lesson 01)
#
# TaskMaster's spec is rendered into a system prompt; the held-out requests are asked with it and with no
# system prompt, and the replies that use one of TaskMaster's marker phrases are counted.

# %% tags=["llm"]
from personalab import backends, persona, results
from personalab.steering import compare, heldout_requests

spec = persona.taskmaster()
system_prompt = spec.render()
base_side = backends.prompted_side()  # the base model lesson 04 fine-tunes, with or without an API key
client, model = base_side.client, base_side.model
requests = heldout_requests()
comparison = compare(requests, {"no system prompt": None, "TaskMaster prompt": system_prompt}, client=client,
                     model=model)
rates = comparison.marker_rates(spec)
for label, rate in rates.items():
    print(f"{label:>20}: {rate:.0%} of {len(requests)} replies carry a TaskMaster marker")
print("saved", results.save("01", "steering", {"marker_rates": rates, "n_requests": len(requests),
                                              "base_model": base_side.base_model}, model=model))

# %% [markdown]
# ## 2. What the prompt costs (lesson 02)
#
# The persona is sent with every request. Below: its exact token count, the monthly bill at 500,000 requests
# with the prompt and with a fine-tuned model (gpt-4o-mini's prices from `data/pricing.yaml`), and the time
# to first token measured against prompt length on the base model (with or without an OpenAI key). Lesson 02
# adds caching, multi-turn conversations, distillation and the interactive cost explorer.

# %% tags=["llm"]
from personalab import costs, latency, tokens
from personalab.errors import InputError

user = "Add a task: finish the quarterly report."
overhead = tokens.persona_overhead(system_prompt, [user], model="gpt-4o-mini")
persona_tokens = overhead["added_prompt_tokens"]
try:
    backend_persona = tokens.persona_overhead(system_prompt, [user], model=model)
except InputError:
    backend_persona = None  # a remote model whose tokenizer is not on this machine
prices = costs.load_prices()
mini = prices.price("gpt-4o-mini")
base_rates, ft_rates = prices.rates("gpt-4o-mini"), prices.rates("gpt-4o-mini", finetuned=True)
ours_w = costs.Workload(persona_tokens=persona_tokens, user_tokens=50, response_tokens=200)
monthly = {"system prompt": costs.monthly_cost(ours_w, base_rates, 500_000),
           "fine-tuned": costs.monthly_cost(ours_w, ft_rates, 500_000, finetuned=True)}
print(f"the persona adds {persona_tokens:g} billed tokens to every gpt-4o-mini request")
for label, usd in monthly.items():
    print(f"TaskMaster, {label:13}: ${costs.fmt_usd(usd)} per month at 500,000 requests")

# %% tags=["timing"]
lat = latency.measure(repeats=3)
lat

# %%
results.save("02", "tokens", {
    "model": "gpt-4o-mini",
    "persona_text_tokens": overhead["text_tokens"],
    "persona_added_tokens": persona_tokens,
    "backend_model": model,
    "base_model": base_side.base_model,
    "backend_persona_added_tokens": backend_persona["added_prompt_tokens"] if backend_persona else None,
}, model="gpt-4o-mini")
results.save("02", "costs", {
    "model": "gpt-4o-mini",
    "requests_per_month": 500_000,
    "persona_tokens": persona_tokens,
    "user_tokens": 50,
    "response_tokens": 200,
    "monthly_usd": monthly,
    "persona_break_even_tokens": costs.persona_break_even_tokens(ours_w, base_rates, ft_rates),
    "price_source": mini.source,
    "price_date": mini.date,
}, model="gpt-4o-mini")
print("saved", results.save("02", "latency", lat.to_dict(), model=lat.model))

# %% [markdown]
# ## 3. The training set (lesson 03)
#
# Chat-format examples are generated from the same spec (by the offline generator, or by the prompted API
# model as a teacher when a key is set), validated, cleaned of the problems the validator finds and written
# to `train.jsonl` and `eval.jsonl`. Lesson 03 shows the examples, the problems a broken file has, and the
# token histogram.

# %%
import time

from personalab.dataset import (
    Teacher,
    base_counter,
    default_dataset_paths,
    drop_problems,
    generate,
    load_requests,
    marker_coverage,
    openai_training_cost,
    token_counter,
    token_stats,
    validate_examples,
    write_examples,
)
from personalab.dataset.stats import training_price

METHOD = "teacher" if profile.backend == "openai" else "offline"
teacher = Teacher(max_tokens=80) if METHOD == "teacher" else None
MAX_SEQ_LENGTH = 512
started = time.perf_counter()
train_examples = generate(load_requests("train"), spec, method=METHOD, teacher=teacher, injection_ratio=0.1)
eval_examples = generate(load_requests("eval"), spec, method=METHOD, teacher=teacher, injection_ratio=0.1)
build_s = time.perf_counter() - started
openai_counter = token_counter("gpt-4o-mini")
train_counter = base_counter()  # the base model's own tokenizer (lesson 03)
eval_examples = drop_problems(eval_examples, validate_examples(eval_examples, spec=spec, max_seq_length=MAX_SEQ_LENGTH,
                                                               counter=train_counter))
report_03 = validate_examples(train_examples, spec=spec, max_seq_length=MAX_SEQ_LENGTH, counter=train_counter,
                              eval_examples=eval_examples)
train_examples = drop_problems(train_examples, report_03)
paths = default_dataset_paths()
write_examples(paths.train, train_examples)
write_examples(paths.eval, eval_examples)
local_stats, openai_stats = token_stats(train_examples, train_counter), token_stats(train_examples, openai_counter)
coverage = marker_coverage(train_examples, spec)
price, price_source = training_price("gpt-4o-mini") or (3.0, "assumed: no price table found")
openai_cost = openai_training_cost(openai_stats["lengths"], price)
print(f"{METHOD}: {len(train_examples)} train and {len(eval_examples)} eval examples in {build_s:.1f} s, "
      f"{local_stats['total_tokens']} training tokens ({train_counter.name}), "
      f"marker coverage {coverage['coverage']:.0%}")
print(f"OpenAI fine-tuning of gpt-4o-mini would cost ${openai_cost['cost_usd']:.4f} ({price_source})")
print("saved", results.save("03", "dataset", {
    "method": METHOD,
    "build_s": round(build_s, 2),
    "train_examples": len(train_examples),
    "eval_examples": len(eval_examples),
    "max_seq_length": MAX_SEQ_LENGTH,
    "train_tokenizer": train_counter.name,
    "train_tokens": local_stats["total_tokens"],
    "max_tokens": local_stats["max"],
    "openai_tokens": openai_stats["total_tokens"],
    "marker_coverage": coverage["coverage"],
    "openai_training_cost_usd": openai_cost["cost_usd"],
    "openai_epochs": openai_cost["epochs"],
    "training_price_per_1m": price,
    "paths": {"train": str(paths.train), "eval": str(paths.eval)},
}, model=teacher.model if teacher else "offline generator"))

# %% [markdown]
# ## 4. Fine-tuning with Unsloth (lesson 04)
#
# First the base model is measured on the held-out requests without a prompt and with the system prompt. Then
# `finetune.train` runs lesson 04's Unsloth recipe with its settings (`finetune.default_config()`: LoRA rank,
# steps and batch for this runtime), measures time and memory, merges the adapter and saves the model. Lesson
# 04 writes the same recipe out cell by cell: loading, the LoRA adapter, the chat template, training on the
# replies only.

# %% tags=["llm"]
before = finetune.persona_eval(config.base_model, label="base, no prompt")
prompted = finetune.persona_eval(config.base_model, system=system_prompt, label="base + system prompt")

# %% tags=["timing"]
eval_sample = finetune.eval_sample(finetune.load_examples(paths.eval)[0])
result = finetune.train(config, eval_dataset=eval_sample)
print(result)

# %% tags=["llm"]
after = finetune.persona_eval(*result.load(), label="fine-tuned, no prompt")
print(finetune.quality_table([before, prompted, after]))
m = result.metrics
print(f"eval loss {result.eval.get('loss_before', float('nan')):.3f} before, "
      f"{result.eval.get('loss_after', float('nan')):.3f} after; training {m['train_s']:.1f} s "
      f"({m['time_per_step_s']:.3f} s/step), peak memory {m['peak_memory_mb']:.0f} MB on {m['device']}")
record = result.record(before, prompted, after, train_examples=len(train_examples), config=config)
print("saved", results.save("04", "training", record, model=config.base_model))

# %% tags=["plot"]
finetune.plot_rates([before, prompted, after]);

# %% [markdown]
# ## 5. Drift and prompt injection (lesson 05)
#
# The prompted base, the fine-tuned model and the hybrid (fine-tuned, marketing overlay) play lesson 05's
# long conversations and its attack suite, with the settings of this profile (`evaluate.suite_settings()`:
# quick on a CPU, the full suites on a GPU). Replies are scored by the scorers that agree with human labels,
# after the fluency gate. Lesson 05 explains the scorers, the gate, the context policies and each attack.

# %%
from personalab import evaluate

settings = evaluate.suite_settings()
targets = evaluate.course_targets(spec, overlay="marketing")
scorers = [evaluate.RuleScorer(spec), evaluate.EmbeddingScorer()]
if evaluate.judge_backend() is not None:
    scorers.append(evaluate.JudgeScorer(spec=spec))
agreement = evaluate.agreement(scorers)
validated = agreement.validated(scorers)
print(settings)
print("targets:", *(t.describe() for t in targets), sep="\n  ")
print("scorers that agree with the human labels:", [sc.name for sc in validated])

# %% tags=["llm"]
runner = settings.runner()
scripts = evaluate.load_scripts()[: settings.n_scripts]
drift = evaluate.run_drift(targets, scripts, runner, scorers=validated, seeds=settings.seeds,
                           max_turns=settings.max_turns)
print(f"{runner.requests} requests sent, {runner.cache.hits} answered from the cache")
fig = drift.plot("rules")

# %% tags=["llm"]
policies = evaluate.compare_policies(targets[0], scripts, runner, scorers=validated[:1], seeds=settings.seeds,
                                     context_window=1024, max_turns=settings.max_turns)  # lesson 05's CONTEXT_BUDGET
attacks = evaluate.sample_attacks(evaluate.load_attacks(), settings.per_category)
injection = evaluate.run_attacks(targets, attacks, runner, canary=evaluate.DEFAULT_CANARY, scorer=validated[0],
                                 judge=evaluate.compliance_judge())
injection

# %%
for name, path in evaluate.save_results(drift, injection, agreement, policies=policies, model=targets[0].model,
                                        targets=targets).items():
    print(name, "->", path)

# %% [markdown]
# ## 6. The decision, with your numbers (lesson 06)
#
# The last two measurements: how long a prompted persona takes to change (edit, render, one request), and the
# hybrid, the fine-tuned core with each department's overlay, through the same drift and attack suites
# (requests already sent above come from the cache). Then every saved result fills the comparison matrix and
# the decision framework. Lesson 06 walks through each row and lets you try your own case.

# %% tags=["llm", "timing"]
from personalab import decision, hybrid, report

change = report.measure_prompt_change()
print(f"a prompt change: {change['total_s']:.3f} s from the edit to the first reply, on {results.hardware()}")
results.save("06", "change", {k: v for k, v in change.items() if k != "reply"}, model=change["model"])
hyb = hybrid.evaluate_hybrid(hybrid.load_overlays())
print("saved", hyb.save())
hyb

# %% [markdown]
# ## The report
#
# The matrix with your numbers next to the article's, the decision framework on your evidence, the figures,
# and the source of every number (which lesson, model, hardware and time). It is saved as Markdown and HTML in
# `build/express/`; in Colab, download `report.html` from the file browser on the left.

# %%
from IPython.display import HTML, display

from personalab.course import BUILD_DIR

records = results.load_all()
matrix = report.build(records)
display(HTML(matrix.to_html()))
for path in matrix.write(BUILD_DIR / "express"):
    print("wrote", path)

# %% tags=["plot"]
report.plot_vs_article(records);

# %%
evidence = decision.Evidence.from_results(records)
decision.recommend(monthly_requests=300_000, persona_change_frequency="quarterly", public_facing=True,
                   consistency_critical=True, evidence=evidence)

# %% [markdown]
# **Next:** open the lessons, starting with lesson 01, to see how each number was measured and what can make
# it wrong. The results saved here are the ones the lessons find, in the same `PERSONALAB_HOME`.
