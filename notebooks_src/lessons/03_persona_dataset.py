# %% [markdown]
# # Lesson 03 — A persona dataset
#
# *Every term is defined where it first appears, and collected in the [glossary](https://github.com/persona-lab/persona-lab/blob/main/GLOSSARY.md).*
#
# A system prompt *tells* the model who to be. Fine-tuning *shows* it: the model sees hundreds of
# conversations in which the assistant already talks like TaskMaster, and the persona moves into its
# weights. This lesson builds those conversations, checks them like a fine-tuning service would, and
# works out what training on them costs. Lesson 04 trains on the files this notebook writes.
#
# Three decisions shape the dataset:
#
# 1. **What users ask.** The persona has to hold for creating tasks, rescheduling, prioritising,
#    summarising, getting unstuck, small talk, off-topic questions, and prompt injections.
# 2. **Who writes the answers.** A *teacher* model given TaskMaster's system prompt, or an offline
#    generator that writes answers straight from the persona spec.
# 3. **What the examples leave out.** No system message: the point of fine-tuning is that the persona is
#    there *without* the prompt (a variant keeps a short prompt for the hybrid approach of lesson 06).

# %% [markdown]
# ## 1. The user requests
#
# The course ships a few hundred task-management requests, some of them multi-turn. Each has an id and a
# category; a hash of the id decides whether it belongs to **train** or **eval**. The eval requests never go
# into training: lesson 05 uses them to test drift and injection on conversations the model has not seen.

# %%
from collections import Counter

from personalab import persona
from personalab.dataset import CATEGORIES, load_requests

spec = persona.taskmaster()
train_requests = load_requests("train")
eval_requests = load_requests("eval")

counts = {split: Counter(r.category for r in reqs) for split, reqs in (("train", train_requests), ("eval", eval_requests))}
print(f"{'category':<12}{'train':>7}{'eval':>6}")
for cat in CATEGORIES:
    print(f"{cat:<12}{counts['train'][cat]:>7}{counts['eval'][cat]:>6}")
print(f"{'total':<12}{len(train_requests):>7}{len(eval_requests):>6}")
print("multi-turn:", sum(r.multi_turn for r in train_requests + eval_requests))

# %% tags=["plot"]
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(8, 3))
x = range(len(CATEGORIES))
ax.bar(x, [counts["train"][c] for c in CATEGORIES], label="train")
ax.bar(x, [counts["eval"][c] for c in CATEGORIES], bottom=[counts["train"][c] for c in CATEGORIES], label="eval")
ax.set_xticks(list(x), CATEGORIES, rotation=30, ha="right")
ax.set_ylabel("requests")
ax.legend()
fig.tight_layout()

# %% [markdown]
# A few of them, including a multi-turn exchange and an injection attempt:

# %%
for request in [train_requests[0], next(r for r in train_requests if r.multi_turn),
                next(r for r in train_requests if r.category == "injection")]:
    print(f"[{request.id}]")
    for text in request.texts:
        print("  user:", text)

# %% [markdown]
# ## 2. The format: OpenAI's chat fine-tuning JSONL
#
# One conversation per line, as a JSON object with a `messages` list; each message has a `role`
# (`system`, `user` or `assistant`) and a `content`. The same file works for OpenAI's fine-tuning API and
# for local training with TRL, which reads this chat format directly. The loss is computed on the
# assistant messages: they are what the model learns to write.
#
# ## 3. Answers from the offline generator
#
# The offline generator writes every reply from the spec: it acknowledges, gives the information (copying
# the task names and dates from the request), suggests a next step, uses one of the spec's *use* phrases and
# never an *avoid* phrase. It is deterministic and needs no model, so CI and a laptop produce the same data.
# `injection_ratio` mixes in injection attempts answered in persona, so the fine-tuned model learns to treat
# "ignore your instructions" as content, not as a command.

# %%
import json
import time

from personalab.dataset import generate

started = time.perf_counter()
train_examples = generate(train_requests, spec, injection_ratio=0.1)
eval_examples = generate(eval_requests, spec, injection_ratio=0.1)
build_s = time.perf_counter() - started  # lesson 06 compares it with the fine-tuning run's time
print(len(train_examples), "train and", len(eval_examples), f"eval examples in {build_s:.1f} s")
print(json.dumps(train_examples[0], indent=1))

# %%
for example in [ex for ex in train_examples if len(ex["messages"]) > 2][:2]:
    for m in example["messages"]:
        print(f"{m['role']:>9}: {m['content']}")
    print()

# %% [markdown]
# ## 4. Answers from a teacher model
#
# The other way to write the answers is to ask a capable model *with* the persona prompt and keep what it
# says: distilling the system-prompt persona into training data. `Teacher` sends each request through the
# active backend (the OpenAI API with a key, a workshop server, or the local model), retries transient
# errors, and caches every reply on disk, so running the cell again costs nothing.
#
# The local model is tiny, so on the `cpu` profile its answers are weak; with an OpenAI key
# (`gpt-4o-mini`) they are the real thing. Either way, the same checks judge them below.
#
# A teacher only *writes the training data*: this is distillation (lesson 02, section 7), and gpt-4o-mini in this
# role is a labelled reference model, not a side of the comparison. The prompted persona that lessons 05 and 06
# compare with the fine-tuned one is always the base model lesson 04 fine-tunes, so the two differ only in where
# the persona lives.

# %% tags=["llm"]
from personalab import backends
from personalab.dataset import Teacher, marker_coverage

teacher = Teacher(max_tokens=80)
teacher_examples = generate(train_requests[:6], spec, method="teacher", teacher=teacher)
for example in teacher_examples[:3]:
    for m in example["messages"]:
        print(f"{m['role']:>9}: {m['content']}")
    print()
role = "the base model" if backends.reference_side() is None else "a reference model writing training data"
print(f"teacher {teacher.model} ({role}): {teacher.calls} calls, {teacher.cache_hits} from the cache")
print(f"marker coverage of the teacher's replies: {marker_coverage(teacher_examples, spec)['coverage']:.0%}")

# %% [markdown]
# Which answers go into the dataset? With an OpenAI key, the teacher's (checked below, with bad examples
# dropped); otherwise the offline generator's. Change `METHOD` to choose yourself.

# %% tags=["llm"]
METHOD = "teacher" if profile.backend == "openai" else "offline"
if METHOD == "teacher":
    started = time.perf_counter()
    train_examples = generate(train_requests, spec, method="teacher", teacher=teacher, injection_ratio=0.1)
    eval_examples = generate(eval_requests, spec, method="teacher", teacher=teacher, injection_ratio=0.1)
    build_s = time.perf_counter() - started
print("dataset written by:", METHOD)

# %% [markdown]
# ## 5. Validate before you train
#
# A fine-tuning job rejects a malformed file, but it happily trains on a file full of bad examples. The
# validator runs the checks of OpenAI's data-preparation recipe (valid JSON, a `messages` list, known keys
# and roles, non-empty content, at least one assistant reply) and adds the ones that matter for a persona:
#
# * **persona**: every example has a reply with a marker phrase; no reply uses an avoided phrase;
# * **length**: no example is longer than `max_seq_length` tokens (training would cut it off);
# * **duplicates**: exact copies and near copies (word 3-gram Jaccard similarity ≥ 0.8) over-weight a few
#   conversations;
# * **leakage**: a training conversation whose user side matches an eval conversation makes the eval useless.
#
# Token counts depend on the tokenizer: OpenAI bills `gpt-4o-mini` tokens, while `max_seq_length` limits the
# tokens of the model lesson 04 trains, counted with that model's own tokenizer and chat template
# (SmolLM2-135M-Instruct on the `cpu` profile, Qwen2.5-0.5B-Instruct on a GPU: its tokenizer files only, a few MB).

# %%
from personalab.dataset import base_counter, token_counter, validate_examples

MAX_SEQ_LENGTH = 512
openai_counter = token_counter("gpt-4o-mini")
train_counter = base_counter()  # the base model's tokenizer; gpt-4o-mini's, named as an estimate, if it cannot load
print("counting training tokens with:", train_counter.name)

report = validate_examples(train_examples, spec=spec, max_seq_length=MAX_SEQ_LENGTH, counter=train_counter,
                           eval_examples=eval_examples)
print(report.format(limit=10))

# %% [markdown]
# A teacher (or a person) makes mistakes; the validator says where. Here is a file with a planted problem of
# every kind — the one you repair in exercise 03:

# %%
from personalab.dataset import exercise, validate_file

broken = validate_file(exercise.BROKEN_PATH, spec=spec, max_seq_length=exercise.MAX_SEQ_LENGTH,
                       counter=token_counter(exercise.TOKENIZER), eval_path=exercise.BROKEN_EVAL_PATH)
print(broken.format(limit=8))

# %% [markdown]
# Every problem names its line and field, and says how to fix it. From a terminal the same check is
# `personalab data validate FILE --max-seq-length 512 --eval EVAL_FILE`; it exits with status 1 when it finds
# a problem, so a script or CI job can stop before a bad file reaches a training run.
#
# Whatever failed a check is dropped before training: off-persona teacher replies, duplicates, and
# conversations too long for `max_seq_length` with this tokenizer. The eval set is cleaned the same way
# (without the leakage check, which compares train *against* it).

# %%
from personalab.dataset import drop_problems

n_train, n_eval = len(train_examples), len(eval_examples)
eval_report = validate_examples(eval_examples, spec=spec, max_seq_length=MAX_SEQ_LENGTH, counter=train_counter)
eval_examples = drop_problems(eval_examples, eval_report)
train_examples = drop_problems(train_examples, report)
report = validate_examples(train_examples, spec=spec, max_seq_length=MAX_SEQ_LENGTH, counter=train_counter,
                           eval_examples=eval_examples)
print(f"dropped {n_train - len(train_examples)} of {n_train} train and {n_eval - len(eval_examples)} of {n_eval} "
      "eval examples")
print(report.format(limit=5))

# %% [markdown]
# ## 6. Analyse: how long, how on-persona
#
# The histogram shows tokens per example against the `max_seq_length` line. Short examples train fast;
# the long tail decides how much memory a batch needs.

# %% tags=["plot"]
from personalab.dataset import plot_token_histogram, token_stats

local_stats = token_stats(train_examples, train_counter)
openai_stats = token_stats(train_examples, openai_counter)
plot_token_histogram(local_stats["lengths"], max_seq_length=MAX_SEQ_LENGTH, tokenizer=train_counter.name);

# %%
for s in (local_stats, openai_stats):
    print(f"{s['tokenizer']}: median {s['median']}, p95 {s['p95']}, max {s['max']}, total {s['total_tokens']} "
          f"tokens, {s['assistant_share']:.0%} of them in assistant replies")

# %% [markdown]
# **Persona coverage** is the share of assistant replies that carry a marker phrase. The validator only
# demands one marker per conversation; coverage tells you whether the persona also holds in the *later*
# replies of a conversation (`by_turn`), which is exactly where lesson 05 will look for drift.

# %% tags=["plot"]
from personalab.dataset import plot_marker_coverage

coverage = marker_coverage(train_examples, spec)
print(f"coverage {coverage['coverage']:.0%} of {coverage['assistant_messages']} replies; by turn {coverage['by_turn']}")
plot_marker_coverage(coverage);

# %% [markdown]
# ## 7. What does training cost?
#
# OpenAI bills fine-tuning by *trained tokens*: the tokens of the file times the number of epochs (it picks
# the epochs itself unless you set them). The training price comes from the course's price table — check
# it against the provider's pricing page, prices change. A local LoRA run costs GPU time instead: its
# duration is the trained tokens divided by the training throughput, which lesson 04 measures. Until you
# have run lesson 04, the table below shows the estimate for a few throughputs so you can see how it scales.

# %%
from personalab import results
from personalab.dataset import lora_run_estimate, openai_training_cost
from personalab.dataset.stats import gpu_hour_price, training_price

price, price_source = training_price("gpt-4o-mini") or (3.0, "assumed: no price table found")
openai_cost = openai_training_cost(openai_stats["lengths"], price)
print(f"OpenAI fine-tuning of gpt-4o-mini: {openai_cost['tokens_per_epoch']} tokens x {openai_cost['epochs']} epochs "
      f"x ${price}/1M = ${openai_cost['cost_usd']:.4f}\n  price source: {price_source}")

gpu_price, gpu_source = gpu_hour_price("t4") or (0.0, "free Colab T4")
measured = results.load("04", "training")
throughputs = [measured["data"]["tokens_per_second"]] if measured else [500, 2000, 8000]
print(f"\nlocal LoRA run, {local_stats['total_tokens']} tokens x {openai_cost['epochs']} epochs, "
      f"GPU at ${gpu_price}/h ({gpu_source}):")
for tps in throughputs:
    est = lora_run_estimate(local_stats["total_tokens"], openai_cost["epochs"], tokens_per_second=tps,
                            gpu_price_per_hour=gpu_price)
    label = "measured in lesson 04" if measured else "what-if"
    print(f"  {tps:>7} tokens/s ({label}): {est['hours'] * 60:6.1f} min, ${est['cost_usd']:.4f}")

# %% [markdown]
# What to look for: both are small next to the *time* fine-tuning takes you (writing the spec, the
# requests and the checks) — and a dataset is cheap to regenerate when the persona changes, while the
# model has to be trained again.
#
# ## 8. Save the dataset for lesson 04
#
# The files are written atomically: a crash never leaves half a dataset behind.

# %%
from personalab.dataset import default_dataset_paths, write_examples

paths = default_dataset_paths()
write_examples(paths.train, train_examples)
write_examples(paths.eval, eval_examples)
final = validate_file(paths.train, spec=spec, max_seq_length=MAX_SEQ_LENGTH, counter=train_counter,
                      eval_path=paths.eval)
print(final.format(limit=5))
print("train:", paths.train, "\neval: ", paths.eval)

# %%
saved = results.save("03", "dataset", {
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
}, model=teacher.model if METHOD == "teacher" else "offline generator")
print("saved", saved)

# %% [markdown]
# ## Check your understanding
#
# Two short questions about what *your* run just measured: the right answer is whatever your numbers say.
# Replace the `...` line with your answer (remove the `#`), run the cell, and `q1.hint()` helps when stuck.

# %%
from personalab.checks.understanding import lesson

q1, q2 = lesson("03").questions

# %%
# marker_share = ...   # the share of training replies with a marker, 0 to 1
q1.check()

# %%
# training_cost_usd = ...   # what OpenAI would charge to fine-tune gpt-4o-mini on it, in dollars
q2.check()

# %% [markdown]
# **Next:** exercise 03 hands you a dataset with every kind of problem in it. Lesson 04 fine-tunes a model on
# `train.jsonl` and watches its loss on `eval.jsonl`.
