# %% [markdown]
# # Lesson 02 — Context-window economics: what the persona costs on every request
#
# *Every term is defined where it first appears, and collected in the [glossary](https://github.com/persona-lab/persona-lab/blob/main/GLOSSARY.md).*
#
# A system-prompt persona is not written once: it is **sent again with every request**, and every token of
# it is billed and processed every time. A fine-tuned persona sends nothing, but the fine-tuned model costs
# more per token and has to be trained first. This lesson turns that trade-off into numbers:
#
# 1. count TaskMaster's tokens **exactly**, the way the provider bills them;
# 2. price it per request, per conversation and per month, with prompt caching and a training cost;
# 3. find the **break-even** volume (the number of requests a month at which two ways of serving the persona
#    cost the same) where fine-tuning becomes cheaper — or see that there is none;
# 4. measure how much **latency** a longer system prompt adds on *your* backend;
# 5. price **distillation**, the case where fine-tuning most often pays: a small self-hosted model trained on a
#    large API model's replies replaces the prompted large model.
#
# The seed article works one example by hand and calls its latency figures illustrative. Here every
# figure is computed by a cell, on prices you can edit and on hardware the cell names.

# %% [markdown]
# ## 1. Counting tokens exactly
#
# OpenAI models read text as tokens of the **o200k_base** encoding (gpt-4o, gpt-4.1, o-series) or the older
# **cl100k_base** (gpt-4, gpt-3.5). `personalab.tokens` loads both with `tiktoken` *offline*: the encoding
# files come from installed packages and are accepted only if they match the checksum tiktoken expects for
# OpenAI's official files. So the counts below are the ones OpenAI bills, even without internet.

# %%
from personalab import costs, tokens, widgets
from personalab.persona import taskmaster

spec = taskmaster()
system_prompt = spec.render()
for model_name in ("gpt-4o-mini", "gpt-4"):
    enc = tokens.encoding_name_for_model(model_name)
    print(f"{model_name:12} ({enc}): {tokens.count_text(system_prompt, model_name)} tokens of text")

# %% [markdown]
# What is a token? Mostly a word or a piece of one, with its leading space. The first tokens of the prompt:

# %%
enc = tokens.encoding_for_model("gpt-4o-mini")
print(" | ".join(repr(enc.decode([t])) for t in enc.encode(system_prompt)[:24]))

# %% [markdown]
# A chat request costs more than the text of its messages. OpenAI's published counting recipe adds 3 tokens
# per message (the role and the markers around it) and 3 more that prime the reply. `persona_overhead`
# counts the request with and without the system message: the difference is what the persona adds to
# **every** request.

# %%
user = "Add a task: finish the quarterly report."
with_persona = tokens.count_messages(
    [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}], "gpt-4o-mini"
)
without = tokens.count_messages([{"role": "user", "content": user}], "gpt-4o-mini")
overhead = tokens.persona_overhead(system_prompt, [user], model="gpt-4o-mini")
persona_tokens = overhead["added_prompt_tokens"]
print(f"request with the persona: {with_persona} tokens, without: {without}")
print(f"the persona adds {persona_tokens:g} billed tokens to every request "
      f"({overhead['text_tokens']} of text + message overhead)")

# %% [markdown]
# ### The model you are talking to
#
# A local model has its own tokenizer and chat template, so the same messages are a different number of
# tokens. `tokens.count` uses the OpenAI recipe for an OpenAI model and the model's own tokenizer and template
# for a local checkpoint. The cell compares that count with the `usage.prompt_tokens` the server reports. The
# model is the course's base model (the prompted side of every comparison, the one lesson 04 fine-tunes), with or
# without an OpenAI key; gpt-4o-mini appears in this lesson as a price, and in section 6 as a labelled reference.

# %% tags=["llm"]
from personalab import backends
from personalab.errors import InputError

base_side = backends.prompted_side()
client, model = base_side.client, base_side.model
messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]
reply = client.chat.completions.create(model=model, messages=messages, max_tokens=1)
try:
    ours = tokens.count(messages, model)
except InputError:
    ours = None  # a remote model whose tokenizer is not on this machine
print(f"prompted side: {base_side.label}")
print(f"our count: {ours}   the backend's usage.prompt_tokens: {reply.usage.prompt_tokens}")
backend_persona = tokens.persona_overhead(system_prompt, [user], model=model) if ours is not None else None
if backend_persona:
    print(f"on this model the persona adds {backend_persona['added_prompt_tokens']:g} tokens per request")

# %% [markdown]
# What to look for: the two numbers agree — the counter reproduces what the backend bills or processes.
#
# ## 2. Prices
#
# Prices live in `data/pricing.yaml`, in US dollars per 1M tokens, each entry with the date and source it
# was copied from. **Prices change**: check the provider's pricing page and edit the file. A typo in it
# stops with the file, line and field to fix.

# %%
prices = costs.load_prices()
mini = prices.price("gpt-4o-mini")
print(f"gpt-4o-mini: input ${mini.input}/1M, output ${mini.output}/1M, fine-tuned ${mini.finetuned_input}/"
      f"${mini.finetuned_output}, training ${mini.training}/1M")
print(f"  ({mini.source}; dated {mini.date})")

# %% [markdown]
# ### The article's worked example
#
# The article prices a 500-token persona, a 50-token user message and a 200-token reply on gpt-4o-mini, with
# the fine-tuned model at twice the base price, at 500,000 requests a month. The same arithmetic with
# `costs` (the test suite checks these exact figures):

# %%
article = costs.Workload(persona_tokens=500, user_tokens=50, response_tokens=200)
base = prices.rates("gpt-4o-mini")
ft_2x = prices.rates("gpt-4o-mini", finetuned=True, multiplier=2)
for label, rates, finetuned in (("system prompt", base, False), ("fine-tuned (2x)", ft_2x, True)):
    per = costs.per_request_cost(article, rates, finetuned=finetuned)
    month = costs.monthly_cost(article, rates, 500_000, finetuned=finetuned)
    print(f"{label:16} ${costs.fmt_usd(per)} per request, ${costs.fmt_usd(month)} per month")

# %% [markdown]
# The fine-tuned model is *more* expensive per request here. Dropping 500 prompt tokens saves less than
# doubling the price of the 50 input and 200 output tokens costs. Now the same with TaskMaster's real size:

# %%
ours_w = costs.Workload(persona_tokens=persona_tokens, user_tokens=50, response_tokens=200)
ft_table = prices.rates("gpt-4o-mini", finetuned=True)
monthly = {
    "system prompt": costs.monthly_cost(ours_w, base, 500_000),
    "fine-tuned": costs.monthly_cost(ours_w, ft_table, 500_000, finetuned=True),
}
for label, usd in monthly.items():
    print(f"TaskMaster, {label:13}: ${costs.fmt_usd(usd)} per month at 500,000 requests")

# %% [markdown]
# ## 3. Conversations: the persona is re-sent every turn
#
# In a chat, every turn sends the system prompt **and the whole history so far**. The persona's cost is
# multiplied by the number of turns — but so is the history, and the fine-tuned model pays its higher price
# on that history too. The table prices one 8-turn conversation turn by turn.

# %%
talk = costs.Workload(persona_tokens=persona_tokens, user_tokens=50, response_tokens=200, turns=8)
rows = costs.turn_table(talk, base, ft_table)
widgets.Table(rows, ["turn", "prompt_input_tokens", "finetuned_input_tokens", "prompt_usd", "finetuned_usd"])

# %% tags=["plot"]
widgets.plot_turns(rows);

# %% [markdown]
# ### Prompt caching
#
# OpenAI bills the part of a prompt it has seen recently at a lower "cached input" price — but only for
# prompts of at least 1024 tokens, counted in steps of 128. A short persona is never cached on its own; a
# long one, or a long conversation history, is.

# %%
cache = costs.Caching(enabled=True)
for size in (persona_tokens, 2000):
    w = costs.Workload(persona_tokens=size, user_tokens=50, response_tokens=200)
    plain, cached = costs.per_request_cost(w, base), costs.per_request_cost(w, base, caching=cache)
    print(f"persona {size:>6g} tokens: ${costs.fmt_usd(plain)} per request, with caching ${costs.fmt_usd(cached)}")

# %% [markdown]
# ## 4. Break-even
#
# Each approach costs `per_request x volume` a month, plus, for fine-tuning, a one-time training cost
# (tokens in the training file x epochs x training price), spread here over 12 months. Two straight lines
# cross at most once, so the break-even volume has a closed form: **training cost per month / (system-prompt
# cost per request - fine-tuned cost per request)**. When the fine-tuned request is not cheaper, the
# denominator is not positive and **no volume** makes fine-tuning pay.

# %%
for persona_size in (persona_tokens, 3000):
    scenario = costs.Scenario(model="gpt-4o-mini", persona_tokens=persona_size, training_tokens=1_000_000)
    result = costs.compare(scenario, prices)
    print(f"persona {persona_size:g} tokens -> {result.break_evens[0].reason}")

# %% [markdown]
# So the question is really: *when is a fine-tuned request cheaper?* For one turn, with fine-tuned prices
# `m` times the base and no prompt left, the persona must be longer than
# `(m - 1) x (user tokens + response tokens x output price / input price)`. With longer conversations the
# fine-tuned premium also applies to the growing history, so the bar rises; caching lowers the cost of long
# prompts, so it rises further. The plot draws that threshold against conversation length.

# %% tags=["plot"]
widgets.plot_threshold(costs.Workload(persona_tokens, 50, 200), base, ft_table, max_turns=20);

# %% [markdown]
# What to look for: where your persona's dashed line sits relative to the curves. Below them, fine-tuning
# never pays on API prices, whatever the volume: its case rests on consistency, robustness and latency
# (lesson 05), or on self-hosting.
#
# ## 5. Explore
#
# Move the sliders: volume, token sizes, turns, caching, the model, fine-tuned prices, training size, and a
# self-hosted fine-tuned model on a GPU rented by the hour. The plot marks the crossover, or says why there
# is none. The box "distilled small model" turns the self-hosted model into the
# distilled small model of section 7 below.

# %% tags=["widget"]
widgets.explorer(prices, persona_tokens=int(round(persona_tokens)))

# %% [markdown]
# ## 6. Latency, measured on the base model
#
# Every prompt token must be processed before the first output token appears. The cell sends the same user
# message with system prompts of several sizes (TaskMaster's prompt repeated and cut to an exact token
# count), streams each reply, and records the **time to first token** and the total time, three times each
# in shuffled order. It measures the base model (the prompted side), the number lesson 06 sets beside the
# fine-tuned model; with an OpenAI key, a later cell measures the API model as a labelled reference.

# %% tags=["timing"]
from personalab import latency

lat = latency.measure(repeats=3)
lat

# %% tags=["plot", "timing"]
lat.plot();

# %% tags=["timing"]
fit = lat.fit()
if fit is not None:
    print(f"each 100 prompt tokens add {fit.ms_per_100_tokens:.2f} ms to the time to first token ({lat.label})")
print(f"output rate after the first token: {lat.decode_tokens_per_s() or float('nan'):.1f} tokens/s")

# %% tags=["timing"]
reference = backends.reference_side()
if reference is None:
    print("no reference model (no OpenAI key or shared server): nothing more to measure")
else:  # another model on other hardware: a reference, never the number lesson 06 compares
    ref_fit = latency.measure(repeats=3, client=reference.client, model=reference.model, backend=reference.backend,
                              progress=False).fit()
    slope = f"{ref_fit.ms_per_100_tokens:.2f} ms per 100 prompt tokens" if ref_fit else "no fit (too few sizes)"
    print(f"{reference.label}: {slope} (not saved; lesson 06 compares the base model's numbers)")

# %% [markdown]
# What to look for: how steep the time-to-first-token line is compared with the scatter between runs. A tiny
# local model processes prompts so fast that the persona's effect can vanish in the noise; a large model on
# a busy API shows it clearly. Your numbers, with the model and hardware they came from, go to lesson 06.
#
# ### Self-hosting with your measured throughput
#
# A self-hosted model is paid by the hour, not by the token. With the rates measured above, a request costs
# `(prompt tokens / prefill rate + output tokens / output rate)` seconds of machine time, where the *prefill
# rate* is how many prompt tokens per second the model reads before it writes its first token, and the
# *output rate* how many reply tokens per second it then writes. The hourly price
# below is a T4's from the price table (the free Colab GPU); replace it with what your machine costs. One
# stream's rate understates a server that batches many requests, so this is a pessimistic estimate.

# %% tags=["timing"]
prefill = fit.prefill_tokens_per_s if fit is not None else None
decode = lat.decode_tokens_per_s()
if decode:
    hosted = costs.SelfHosted(gpu_hour=prices.gpu("t4").gpu_hour, output_tokens_per_second=decode,
                              prompt_tokens_per_second=prefill, label="self-hosted (measured rates)")
    sh_plan = costs.self_hosted_plan("self-hosted fine-tuned", ours_w, hosted)
    print(f"${costs.fmt_usd(sh_plan.per_request)} per request, "
          f"${costs.fmt_usd(sh_plan.running(500_000))} per month at 500,000 requests (pay-per-hour)")
else:
    print("no output rate measured (the replies were too short)")

# %% [markdown]
# ## 7. Distillation: a prompted large model against a small fine-tuned one
#
# So far the fine-tuned model was the *same* model as the prompted one, at a higher price per token. The case
# where fine-tuning most often pays is different. **Distillation** means training a small model (the
# *student*) on replies written by a large one (the *teacher*): here the teacher is gpt-4o-mini, or gpt-4o,
# called with TaskMaster's prompt, and the student is a model the size of SmolLM2, fine-tuned on the
# teacher's replies (lessons 03 and 04 are this recipe, with a dataset written by hand) and served without
# a prompt on a GPU you rent. The one-time cost is the teacher's replies plus the GPU hours of training; after
# that, each request costs GPU seconds instead of API tokens.
#
# The student's numbers are **assumptions**, and the cell prints them: the T4 price from the price table,
# and the T4 rates the course budgets with (`personalab.rates.T4_RATES`, stated for a 0.5B model, so a
# 135M model is faster and the estimate is pessimistic). If you have measured a GPU's rates, put them in
# `student_rates`. The cell is arithmetic only: no model is called, and it runs in well under a second.

# %%
import math

from personalab.rates import T4_RATES

# ASSUMPTIONS: edit them to your GPU and your dataset
gpu_hour = prices.gpu("t4").gpu_hour  # US$ per hour, from data/pricing.yaml
student_rates = {"output_tokens_per_second": T4_RATES.decode_batched, "prompt_tokens_per_second": T4_RATES.prefill}
examples, epochs, per_step = 2000, 3, 8  # teacher-written replies; training passes; conversations per step
train_hours = T4_RATES.training_seconds(math.ceil(examples * epochs / per_step)) / 3600
recipe = costs.Distillation(examples=examples, training_gpu_hours=train_hours)
for key in ("decode_batched", "prefill", "step_s"):
    print(f"assumed {key}: {T4_RATES.assumed[key]}")
print(f"T4 price: ${gpu_hour}/hour ({prices.gpu('t4').source})\n")

distill_break_even, distilled = {}, {}
for teacher in ("gpt-4o-mini", "gpt-4o"):
    distill_break_even[teacher] = {}
    for mode, hours in (("pay per hour", 0.0), ("always on", costs.HOURS_PER_MONTH)):
        student = costs.SelfHosted(gpu_hour=gpu_hour, min_hours_per_month=hours, label=f"T4, {mode}",
                                   **student_rates)
        scenario = costs.Scenario(model=teacher, persona_tokens=persona_tokens, self_hosted=student,
                                  distillation=recipe)
        distilled[teacher, mode] = result = costs.compare(scenario, prices)
        prompted, small, even = result.plans[0], result.plans[-1], result.break_evens[-1]
        distill_break_even[teacher][mode] = even.volume
        print(f"{teacher} + prompt ${costs.fmt_usd(prompted.per_request)}/request | student on a T4 ({mode}) "
              f"${costs.fmt_usd(small.per_request)}/request, one-time ${costs.fmt_usd(small.one_time)}")
        print(f"   -> {even.reason}")

seconds = student.seconds(costs.conversation_tokens(ours_w, finetuned=True))
print(f"\none T4 at these rates serves at most {costs.HOURS_PER_MONTH * 3600 / seconds:,.0f} requests a month; "
      "above that, add GPUs (the pay-per-hour line assumes you rent what the load needs)")

# %% [markdown]
# The plot draws the gpt-4o-mini case with an always-on GPU, the explorer's way (the fine-tuned API model,
# gpt-4o-mini trained by OpenAI, is the third line).

# %% tags=["plot"]
widgets.plot(widgets.view_of(distilled["gpt-4o-mini", "always on"]));

# %% [markdown]
# What to look for: the per-request costs first. If the student's GPU seconds cost less than the teacher's
# tokens, a GPU paid by the hour breaks even almost at once, because the one-time cost (the teacher's replies
# and the training hours) is small next to a month of traffic. An always-on GPU changes that: its 730 hours a
# month are paid whether requests come or not, so the break-even is the volume at which the saved API cost
# covers a month of GPU. Against a cheap teacher that volume is high (compare it with what one GPU can
# serve); against an expensive teacher it is far lower. That is the articles' "fine-tuning pays at scale",
# stated with its conditions: a small model that keeps the persona (lesson 04 measures whether yours does),
# and enough traffic to keep a GPU busy.

# %% [markdown]
# ## Save what you measured
#
# Lesson 06 fills its comparison matrix with your numbers. These cells store the persona's token counts,
# the monthly costs and the latency table, each stamped with its model and hardware.

# %%
from personalab import results

saved = results.save("02", "tokens", {
    "model": "gpt-4o-mini",
    "persona_text_tokens": overhead["text_tokens"],
    "persona_added_tokens": persona_tokens,
    "backend_model": model,
    "base_model": base_side.base_model,
    "backend_persona_added_tokens": backend_persona["added_prompt_tokens"] if backend_persona else None,
}, model="gpt-4o-mini")
print("saved", saved)
saved = results.save("02", "costs", {
    "model": "gpt-4o-mini",
    "requests_per_month": 500_000,
    "persona_tokens": persona_tokens,
    "user_tokens": 50,
    "response_tokens": 200,
    "monthly_usd": monthly,
    "persona_break_even_tokens": costs.persona_break_even_tokens(ours_w, base, ft_table),
    "distill_break_even": distill_break_even,  # requests/month; None: never (section 7's assumptions)
    "price_source": mini.source,
    "price_date": mini.date,
}, model="gpt-4o-mini")
print("saved", saved)

# %% tags=["timing"]
print("saved", results.save("02", "latency", lat.to_dict(), model=lat.model))

# %% [markdown]
# ## Check your understanding
#
# Three short questions about what *your* run just measured: the right answer is whatever your numbers say.
# Replace the `...` line with your answer (remove the `#`), run the cell, and `q1.hint()` helps when stuck.

# %%
from personalab.checks.understanding import lesson

q1, q2, q3 = lesson("02").questions

# %%
# tokens_per_request = ...   # the billed tokens the persona adds to every request
q1.check()

# %%
# cheaper_at_500k = ...   # "system prompt" or "fine-tuned": which costs less per month at 500,000 requests
q2.check()

# %%
# distilled_cheaper_at_500k = ...   # True if the student on an always-on T4 beats prompted gpt-4o-mini at 500,000
q3.check()

# %% [markdown]
# **Next:** lesson 03 builds the dataset a fine-tuned TaskMaster would learn from — and its token count is
# the training cost you priced here.
