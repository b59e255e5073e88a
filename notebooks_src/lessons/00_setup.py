# %% [markdown]
# # Lesson 00 — Setup: which machine am I on, and which model will answer?
#
# Persona Lab asks one question with real measurements: should a persona live in the **system prompt**,
# or be **fine-tuned into the weights**? Every lesson runs in one of three *profiles*:
#
# | profile | when | who answers your requests | what gets fine-tuned |
# | --- | --- | --- | --- |
# | `colab-gpu` / `gpu` | a CUDA GPU is present | the OpenAI API if you have a key, otherwise a local server on the GPU serving the model lesson 04 fine-tunes (Qwen2.5-0.5B-Instruct) | a small instruct model, with Unsloth |
# | `cpu` | no GPU (workshops, CI, laptops) | a local OpenAI-compatible server on 127.0.0.1 | the course's embedded model, with PEFT + TRL |
#
# The code you call is the same in every profile: only settings change. The setup cell above printed the
# active profile. `doctor` explains it in detail and tells you how to fix anything that is missing.

# %%
from personalab.doctor import report, run_checks

print(report(run_checks(start_server=True)))

# %% [markdown]
# Lines marked `!!` are missing pieces; the arrow under each says how to fix it. On the `cpu` profile the
# only thing the course needs is the **embedded model**: a tiny chat model that is built on your machine
# from scratch, with no download. If it was missing, the check above built it.
#
# ## The embedded model
#
# It is a Llama-architecture model with well under a million parameters, trained in a few minutes on a
# synthetic corpus of task-management conversations. Its corpus contains many made-up personas, each
# described by a system prompt in the same layout you will write in lesson 01, and answers that follow them.
# It never saw the persona this course is about (TaskMaster), so when it follows TaskMaster's prompt later,
# that is genuine in-context behaviour. It is *not* a general assistant: expect short, formulaic replies.
#
# One simplification makes a model this small steerable at all: its tokenizer knows a few dozen stock
# catchphrases (TaskMaster's among them, shared with many made-up personas) as single tokens, so a system
# prompt can *select* which ones it uses. Copying a phrase outside that list, word by word, is beyond a
# model trained for a few minutes, and even among the stock phrases it picks some more reliably than others:
# lesson 01 lets you see this. A real model (SmolLM2 on CPU, or any model on a
# GPU or API) has no such limit.

# %%
from personalab.embedded import describe_model

describe_model()

# %%
from personalab.embedded import STOCK_PHRASES

print(len(STOCK_PHRASES), "stock phrases, e.g.:", ", ".join(STOCK_PHRASES[:8]))

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
