# %% [markdown]
# # Lesson 04 — Fine-tune the persona into the weights
#
# *Every term is defined where it first appears, and collected in the [glossary](https://github.com/persona-lab/persona-lab/blob/main/GLOSSARY.md).*
#
# Lesson 01 put TaskMaster in the system prompt; lesson 03 wrote conversations in which the assistant already
# talks like TaskMaster, with **no** system prompt. Now a model learns from them. Afterwards it should sound
# like TaskMaster by itself — and then every request saves the prompt's tokens (lesson 02 priced that).
#
# **LoRA** (low-rank adaptation) does not change the model's weights. Next to each chosen weight matrix
# `W` it trains two small matrices `A` (r × d) and `B` (d × r) and uses `W + (alpha / r) · B·A`. With a rank
# `r` of 8 to 64 that is a tiny share of the parameters, the optimizer's memory shrinks with it, and the
# result is a small **adapter** file next to an untouched base model.
#
# The trainer is **Unsloth** on every machine, and section 4 writes its recipe out call by call, in the order
# Unsloth's Colab notebooks use: `FastLanguageModel.from_pretrained`, `FastLanguageModel.get_peft_model`, the
# chat template applied to the data, TRL's `SFTTrainer` with an `SFTConfig`, `train_on_responses_only`,
# `trainer.train()`, `save_pretrained`, and `FastLanguageModel.for_inference` to generate. You can copy those
# cells into your own project. The course's helpers only measure around them (time, memory, the label check,
# sample replies during training). The same cells run on a CPU and a GPU; the profile only changes the
# settings they get from `config`:
#
# | | on a GPU (Colab T4 and up) | on a CPU (laptop, CI) |
# | --- | --- | --- |
# | Unsloth runs | its GPU kernels (Triton), base model loaded in 4 bit (QLoRA), its gradient checkpointing | its CPU mode: transformers + PEFT + TRL under Unsloth's API, float32, no 4-bit, no checkpointing |
# | base model | Qwen2.5-0.5B-Instruct | SmolLM2-135M-Instruct (lesson 00 shows its size) |
# | loss on responses only | Unsloth's `train_on_responses_only` | the same |
#
# The GPU column in plain words: *Triton* is the language Unsloth's fast GPU kernels are written in; *QLoRA*
# is LoRA on a base model stored in 4-bit numbers, a quarter of the memory of 16-bit ones; *gradient
# checkpointing* recomputes intermediate results during the backward pass instead of keeping them, trading
# time for memory. None of the three exists on a CPU, and a 135M model does not need them.
#
# Plain PEFT + TRL — what Unsloth's CPU mode builds on — is the baseline the course benchmarks Unsloth against
# (section 8), and the fallback if Unsloth cannot be installed: with `PERSONALAB_TRAINER=peft`,
# `result = finetune.train(config, paths.train, eval_dataset=paths.eval)` replaces the recipe cells of section 4
# (it makes the PEFT + TRL calls inside the same measurements and saves the same files). The numbers below —
# time, memory, loss, persona rate — are measured on whatever machine runs this notebook.

# %%
from personalab import finetune, persona, results

config = finetune.default_config()
backend = finetune.prepare(config)  # imports Unsloth now (it patches TRL and transformers: it must come first)
spec = persona.taskmaster()
print("trainer:", backend, "| base model:", config.base_model)
print(config)

# %% [markdown]
# ## 1. The data
#
# Lesson 03 wrote `train.jsonl` and `eval.jsonl` (if you skipped it, the offline generator writes them now).
# The model trains on `train.jsonl`; the eval loss is measured on `eval.jsonl`, conversations it never sees.

# %%
paths = finetune.dataset_paths()
train_examples, _ = finetune.load_examples(paths.train)
eval_examples, _ = finetune.load_examples(paths.eval)
eval_examples = finetune.eval_sample(eval_examples)  # on a CPU the first 32 (their loss is measured twice), on a GPU all
print(len(train_examples), "training and", len(eval_examples), "eval conversations; the first:")
for m in train_examples[0]["messages"]:
    print(f"{m['role']:>9}: {m['content']}")

# %% [markdown]
# ## 2. Which tokens carry the loss?
#
# The model should learn to *write TaskMaster's replies*, not to predict the user's messages. So the loss is
# computed only on the assistant's tokens; every other label is set to -100, which the loss ignores. Unsloth's
# `train_on_responses_only` trains on the text after each `<|im_start|>assistant\n` up to the next
# `<|im_start|>user\n` and masks everything else; section 4 compares the labels it builds with the course's own
# view below, row by row. (The PEFT + TRL baseline gets the same mask from the chat template's
# `{% generation %}` tags.)
#
# Below, the tokens that carry loss are highlighted (the ones inside ⟦ ⟧ in plain text). Note that the
# end-of-turn token belongs to the reply: the model must learn when to stop.
#
# Look at the first line too: the training conversations have no system message, yet the rendered text
# starts with one. SmolLM2's chat template adds its default ("You are a helpful AI assistant named SmolLM,
# trained by Hugging Face") whenever a conversation has none; Qwen2.5's adds "You are Qwen, created by Alibaba
# Cloud. You are a helpful assistant." The same template renders every "no system prompt" request below and in
# lesson 05, so "no prompt" means this default message, the same in training and in evaluation: the
# fine-tuned model is never asked to answer under a message it did not train with.

# %%
tokenizer = finetune.load_tokenizer(config.base_model)
multi_turn = next(ex for ex in train_examples if len(ex["messages"]) > 2)
view = finetune.loss_view(tokenizer, multi_turn, backend=backend, max_length=config.max_seq_length)
view

# %% [markdown]
# ### The classic failure: every label is -100
#
# If the chat template and the data do not match, the mask is empty: the loss is 0 (or NaN), the run
# "finishes" and the model learns nothing. It happens with a role the template does not know (`bot`,
# `model`), with response markers of another model family, or with a `max_seq_length` that cuts off every
# reply. `finetune.check_masking` finds it in the whole dataset in about a second, before any model is loaded
# (section 4 runs it again on the labels the trainer prepared); here it runs on purpose on data whose replies are
# labelled `model` instead of `assistant`:

# %%
from personalab.errors import InputError

mislabelled = [{"messages": [{"role": "model" if m["role"] == "assistant" else m["role"], "content": m["content"]}
                             for m in ex["messages"]]} for ex in train_examples[:50]]
try:
    finetune.check_masking(tokenizer, mislabelled, backend=backend, max_length=config.max_seq_length)
except InputError as err:
    print(err)

# %% [markdown]
# ## 3. Before: the base model without a system prompt
#
# The held-out requests are the eval split of lesson 03's user requests. The base model answers them with no
# system prompt, and once more *with* TaskMaster's prompt, for comparison. Three numbers describe each set of
# replies:
#
# * **marker rate**: the share of replies with one of the persona's marker phrases (is it TaskMaster?);
# * **fluent rate**: the share of replies that read as text. A reply's **perplexity** under the base model is
#   how surprised the model is by it, token by token (the exponential of the mean loss): fluent English scores
#   low, word salad scores high even when every word is real. A reply counts as fluent below a threshold that
#   was calibrated on labelled fluent replies and word salad (`data/evaluate/fluency_calibration.jsonl`), and
#   when it does not loop on one phrase;
# * **task-fact rate**: the share of replies that keep the task's name and the date the user gave (is it
#   still a working assistant?).

# %% tags=["llm"]
before = finetune.persona_eval(config.base_model, label="base, no prompt")
prompted = finetune.persona_eval(config.base_model, system=spec.render(), label="base + system prompt")
print(finetune.quality_table([before, prompted]))

# %% [markdown]
# What to look for: SmolLM2-135M without a prompt answers as a generic assistant, so the marker rate is near
# zero. With TaskMaster's prompt it rises only a little: a model this small follows a long system prompt
# loosely. That is a real finding, not a bug of the course: small models are much less steerable by
# instructions than large ones, which is one reason people fine-tune them. (On the GPU base, Qwen2.5-0.5B,
# expect the prompted marker rate to be clearly higher.)
#
# ## 4. Train: Unsloth's recipe, call by call
#
# The cells below are the recipe. Every value comes from `config` (printed at the top), so the CPU and the GPU
# profile run the same cells with different settings. One helper object, `run`, measures around the calls:
# it starts the clock, sets the CPU threads, records peak memory and the loss at every step, checks the labels,
# and at the end saves what lessons 05 and 06 read. Creating it also picks the output folder.

# %%
run = finetune.Run(config)  # the course's measurements: clock, memory, output folder
print("trainer:", run.backend, "| output folder:", run.output_dir)

# %% [markdown]
# ### 4.1 Load the base model
#
# `FastLanguageModel.from_pretrained` loads the model and its tokenizer. `dtype` is float32 on a CPU and bf16
# (fp16 on a T4) on a GPU; `load_in_4bit=True` (QLoRA) only on a GPU.

# %%
from unsloth import FastLanguageModel

model, tokenizer = FastLanguageModel.from_pretrained(
    model_name=run.model_path,  # the local copy of config.base_model
    max_seq_length=config.max_seq_length,
    dtype=run.dtype,
    load_in_4bit=run.load_in_4bit,
)

# %% [markdown]
# ### 4.2 Add the LoRA adapters
#
# `get_peft_model` freezes the base weights and adds the small `A` and `B` matrices to every attention and MLP
# projection listed in `target_modules`. Only those train.

# %%
model = FastLanguageModel.get_peft_model(
    model,
    r=config.r,
    target_modules=config.target_modules,
    lora_alpha=config.lora_alpha,
    lora_dropout=config.lora_dropout,
    bias="none",
    use_gradient_checkpointing="unsloth" if config.gradient_checkpointing and run.cuda else False,
    random_state=config.seed,
    max_seq_length=config.max_seq_length,
)
model.print_trainable_parameters()

# %% [markdown]
# ### 4.3 Render the conversations with the chat template
#
# Unsloth trains on plain text: each conversation is rendered with the model's own chat template into one
# `text` field. TRL appends the end-of-sequence token (`<|im_end|>`) to every text, so the template's newline
# after the last one is dropped. The `messages` column is removed, or TRL would render the conversations a
# second time itself.

# %%
from datasets import Dataset


def formatting_prompts_func(batch):
    texts = [tokenizer.apply_chat_template(convo, tokenize=False) for convo in batch["messages"]]
    return {"text": [t.removesuffix("\n") for t in texts]}


train_dataset = Dataset.from_list(train_examples).map(formatting_prompts_func, batched=True,
                                                      remove_columns=["messages"])
eval_dataset = Dataset.from_list(eval_examples).map(formatting_prompts_func, batched=True,
                                                    remove_columns=["messages"])
print(train_dataset[0]["text"])

# %% [markdown]
# ### 4.4 The trainer
#
# TRL's `SFTTrainer` with an `SFTConfig`. One optimizer step sees `per_device_train_batch_size ×
# gradient_accumulation_steps` conversations. `run.machine_args` adds what depends on the machine: mixed
# precision on a GPU, `use_cpu` on a CPU, and the quiet logging the course's progress bar replaces.
#
# Two callbacks watch the run. `run.callbacks` is the progress bar with the loss. `finetune.SampleReplies`
# (a `transformers.TrainerCallback`) asks the model a few held-out requests, with no system prompt, before the
# first step and every few steps, and prints each reply with "marker yes/no": you watch the persona appear.
# Its generation time is left out of the training time.

# %%
from trl import SFTConfig, SFTTrainer

samples = finetune.SampleReplies(tokenizer, finetune.held_out_prompts(3), every=max(1, config.max_steps // 3),
                                 max_new_tokens=32)
trainer = SFTTrainer(
    model=model,
    processing_class=tokenizer,
    train_dataset=train_dataset,
    eval_dataset=eval_dataset,
    callbacks=[*run.callbacks, samples],
    args=SFTConfig(
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        warmup_steps=config.warmup_steps,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        weight_decay=config.weight_decay,
        optim=run.optim,  # "adamw_8bit" on a GPU, "adamw_torch" on a CPU
        seed=config.seed,
        max_length=config.max_seq_length,
        dataset_text_field="text",
        packing=False,
        logging_steps=1,
        report_to="none",
        output_dir=run.trainer_dir,
        **run.machine_args,
    ),
)

# %% [markdown]
# ### 4.5 Train on the responses only, and check the labels
#
# `train_on_responses_only` sets the label of every token outside an assistant reply to -100. The two markers are
# ChatML's, the format of both SmolLM2 and Qwen2.5. `run.check_labels` then compares the labels the trainer
# prepared with section 2's view, row by row: with markers of another model family it stops here with the rows
# that differ, instead of training on nothing.

# %%
from unsloth.chat_templates import train_on_responses_only

instruction_part, response_part = "<|im_start|>user\n", "<|im_start|>assistant\n"
trainer = train_on_responses_only(trainer, instruction_part=instruction_part, response_part=response_part)
checked = run.check_labels(trainer, tokenizer, train_examples, parts=(instruction_part, response_part))
print(f"{checked['labels_compared']} rows: the labels are exactly the replies and their <|im_end|>; "
      f"{checked['loss_tokens']['trained_share']:.0%} of the tokens carry loss")

# %% [markdown]
# The same check by eye, as in Unsloth's notebooks: decode only the tokens of one row that carry loss:

# %%
row = trainer.train_dataset[0]
print(tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]))

# %% [markdown]
# ### 4.6 Train
#
# `trainer.train()` runs the steps. `run.measure` measures the eval loss (conversations the model never trains
# on) before and after, and the training time.

# %% tags=["timing"]
with run.measure(trainer):
    trainer_stats = trainer.train()

# %% [markdown]
# ### 4.7 Save
#
# `save_pretrained` writes the LoRA **adapter** (a few MB) and the tokenizer. `run.finish` then writes a
# **merged** model, the adapter folded into the base weights (Unsloth's `save_pretrained_merged(dir, tokenizer,
# save_method="merged_16bit")`): a normal checkpoint that the local server loads in lesson 05. It also writes
# `metrics.json` with everything measured, and returns the result.

# %%
model.save_pretrained(run.adapter_dir)
tokenizer.save_pretrained(run.adapter_dir)
result = run.finish(trainer, tokenizer)
print(result)

# %% [markdown]
# ### 4.8 Ask the fine-tuned model
#
# `FastLanguageModel.for_inference` switches the model to generation (on a GPU, Unsloth's faster inference
# path). No system prompt in the request:

# %% tags=["llm"]
FastLanguageModel.for_inference(model)
messages = [{"role": "user", "content": "Add a task: water the plants on Sunday"}]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                       return_dict=True).to(model.device)
output = model.generate(**inputs, max_new_tokens=40, do_sample=False)
print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))

# %% [markdown]
# ### The loss curve and the numbers
#
# `result` holds what the run measured (the same `TrainResult` that `finetune.train` returns); the sample replies
# printed during training are kept in `samples.history`.

# %% tags=["plot"]
ax = result.plot_loss()
ax.set_title(f"{result.backend}: {config.base_model}");

# %%
m = result.metrics
print(f"eval loss (conversations not trained on): {result.eval['loss_before']:.3f} before, "
      f"{result.eval['loss_after']:.3f} after")
print(f"trainable parameters: {m['trainable_params']:,} of {m['total_params']:,} ({m['trainable_share']:.2%})")
print(f"setup {m['setup_s']:.1f} s, training {m['train_s']:.1f} s ({m['time_per_step_s']:.3f} s/step, "
      f"{m['tokens_per_second']:.0f} tokens/s), peak memory {m['peak_memory_mb']:.0f} MB ({m['memory_kind']})")
print("measured on:", m["device"], f"| {m['sample_s']:.1f} s of sample replies not counted as training")
print("sample replies with a persona marker, by step:",
      ", ".join(f"{h['step']}: {sum(h['markers'])}/{len(h['markers'])}" for h in samples.history))

# %% [markdown]
# What does a loss value mean? It is the mean negative log-probability the model gives each trained token
# (the replies only), and `exp(loss)` is the perplexity: a loss of 2.8 means the model is about as unsure as if
# it picked among 16 equally likely tokens, a loss of 1.4 among 4. What to look for: the loss falls quickly and
# then flattens — the persona is a *style*, easy to learn. The eval loss falls too, so the model learned the
# style rather than memorising the training conversations. A lower loss does not by itself mean better
# replies: section 5 checks that.
# Peak memory on a CPU is the whole process (Python, libraries, model); on a GPU it is what PyTorch allocated.
#
# ## 5. After: the fine-tuned model without a system prompt

# %% tags=["llm"]
after = finetune.persona_eval(*result.load(), label="fine-tuned, no prompt")
print(finetune.compare_answers(before, after, k=4))
print(finetune.quality_table([before, prompted, after]))

# %% tags=["plot"]
finetune.plot_rates([before, prompted, after]);

# %% [markdown]
# What to look for: the fine-tuned model uses TaskMaster's phrases with no prompt at all, far more often than
# the prompted base does. Fine-tuning is only a success if the model is still a working assistant, so read
# the other two columns too: the fluent rate should stay about where the base model's is, and the task-fact
# rate should not fall (a persona that forgets the user's date is worse than no persona). A loss that falls
# while fluency collapses means the learning rate was too high or the run too long: the model copies
# fragments of the training replies. Lesson 05 asks the harder questions: does the persona hold over many
# turns, and against a user who tries to talk it out of it?
#
# ## 6. The fine-tuned model behind the same API
#
# The merged model is a normal checkpoint, so the local server serves it and the `openai` client talks to it
# exactly as to the base model in lesson 01 — no system prompt in the request:

# %% tags=["llm"]
import openai

with result.server() as server:
    client = openai.OpenAI(base_url=server.base_url, api_key="local")
    reply = client.chat.completions.create(
        model=server.model, messages=[{"role": "user", "content": "Add a task: call the bank on Friday"}],
        max_tokens=40, temperature=0)
print(reply.choices[0].message.content)

# %% [markdown]
# ## Check your understanding
#
# Two short questions about what *your* run just measured: the right answer is whatever your numbers say.
# Replace the `...` line with your answer (remove the `#`), run the cell, and `q1.hint()` helps when stuck.

# %%
from personalab.checks.understanding import lesson

q1, q2, q3 = lesson("04").questions  # q3 comes with section 10

# %%
# marker_rate_change = ...   # the marker rate without a prompt after training minus before, -1 to 1
q1.check()

# %%
# still_fluent = ...   # True if at least 80 % of the fine-tuned model's replies are fluent, else False
q2.check()

# %% [markdown]
# ## 7. Save the measurements for lessons 05 and 06
#
# Lesson 03's cost estimate uses the measured throughput; lesson 05 serves the merged model; lesson 06 puts the
# training time and memory into the decision matrix.

# %%
record = result.record(before, prompted, after, train_examples=len(train_examples), config=config)
saved = results.save("04", "training", record, model=config.base_model)
print("saved", saved)
print("adapter:", result.adapter_dir, "\nmerged model:", result.merged_dir)

# %% [markdown]
# ## 8. What Unsloth buys — on a CPU and on a GPU
#
# Unsloth exists for GPUs: hand-written Triton kernels for attention, RoPE (the rotary position encoding), the
# MLP and the cross-entropy, 4-bit base weights (QLoRA) and its own gradient checkpointing let a free Colab T4
# fine-tune models that would not fit or would take far longer with plain PEFT + TRL. None of that runs on a
# CPU: there Unsloth's CPU mode is a thin layer over the same transformers + PEFT + TRL code, so on a CPU it
# buys **little** — the same API as on
# Colab, the response-only masking and the merged save, at about the speed of the baseline. The course's
# benchmark (`benchmarks/bench_finetune_cpu.py`) trains both side by side — same data, steps, seed and threads,
# each in its own process — and records the numbers with the machine they were measured on. A machine with
# no record yet says so instead of showing a number.

# %%
from IPython.display import display

bench = finetune.recorded_comparison()
display(bench)
for kind in ("cpu", "gpu"):
    speed, memory = bench.ratio(kind), bench.ratio(kind, "peak_memory_mb")
    if speed is None:
        print(f"{kind.upper()}: Unsloth vs PEFT + TRL not yet measured")
        continue
    u, p = bench.run(kind, "unsloth"), bench.run(kind, "peft")
    print(f"{kind.upper()} ({bench.records[kind].get('hardware') or bench.records[kind].get('gpu')}): PEFT + TRL "
          f"takes {speed:.2f}x Unsloth's time per step and {memory:.2f}x its peak memory; final loss "
          f"{u['metrics']['final_loss']:.3f} (Unsloth) vs {p['metrics']['final_loss']:.3f} (PEFT + TRL)")
print(f"this notebook's own run ({m['device']}, {result.backend}): {m['time_per_step_s']:.3f} s/step, "
      f"{m['peak_memory_mb']:.0f} MB peak")

# %% [markdown]
# What to look for: on a CPU, a time-per-step ratio near 1 means Unsloth bought no speed there; the final loss
# and marker rate show whether both learned the same; peak memory is the whole process, libraries included. On
# a GPU the ratio is the reason Unsloth exists; until a GPU run is recorded, its rows say "not yet measured".
#
# ## 9. Swiss Army knife or scalpel: did the model lose general ability?
#
# The articles warn that fine-tuning turns a general model (a Swiss Army knife) into a specialist (a
# scalpel): better at the persona, possibly worse at everything else. Section 5 checked the persona's own
# requests. Here both models answer a few **general questions** with checkable answers — arithmetic,
# capitals, simple facts — greedily and with no system prompt. The questions and the accepted answers
# (regular expressions, case-insensitive) are in `data/evaluate/general.jsonl`; every answer is shown, so you
# can check the checker.

# %% tags=["llm"]
from personalab import general
from personalab.widgets import Table

general_result = general.ask({"base": finetune.load_model(config.base_model), "fine-tuned": result.load()})
print(general_result.summary())
Table(general_result.rows())

# %% tags=["plot"]
general_result.plot();

# %% [markdown]
# What to look for: the two accuracies, and the questions whose mark changed (printed below). With a dozen
# questions one changed answer moves the accuracy by about 8 points, so only a large gap says anything: the
# summary gives each count a 95 % Wilson interval (the range of true accuracies that would plausibly give this
# count; see the glossary), and two intervals that overlap decide nothing. Then
# read *how* the fine-tuned model answers. When we ran the CPU profile, it answered almost no question: it
# opened with a catchphrase and treated the question as a task to schedule ("'capital of France' is a task
# that requires some planning"), because every reply it was trained on was about a task. That is the
# articles' "Swiss Army knife vs scalpel" point, measured: the persona is in every reply, wanted or not, and
# a small model trained on one kind of conversation forgets how to hold any other. Your numbers may differ
# (a larger base, fewer steps or a lower learning rate may lose less); whatever they show, fine-tune a model for
# the one job it will do, and keep a general model with a prompt for everything else.

# %%
changed = general_result.changed()
print("answers that changed:", changed or "none")

# %% [markdown]
# ## 10. How much data does a persona need?
#
# Lesson 03 wrote a few hundred training conversations. Would 25 have done? A **learning curve** answers it: the
# same training run (the same steps, batch and learning rate as above) repeated on the first 25, 50, 100 and
# 200 conversations of one fixed shuffle of the training split, each run then asked the held-out requests with
# no system prompt, and judged on the three numbers of section 5. The compute is the same at every point, so a
# small set is seen many times over: the curve is about *distinct* examples, not about steps.
#
# Four training runs take about a quarter of an hour on 2 CPU cores, more than this lesson should spend, so by
# default the cell shows the curve `benchmarks/bench_learning_curve.py` recorded, and prints which model,
# machine and date it came from. Set `MEASURE_HERE = True` to train the four runs on your machine instead (on
# a GPU, about a minute a run).

# %%
from personalab import learning_curve

MEASURE_HERE = False
curve = learning_curve.measure() if MEASURE_HERE else learning_curve.load()
print(curve.summary())
curve.plot();

# %% [markdown]
# What to look for: the smallest set at which the marker rate reaches the level of section 5, and whether
# fluency and task facts hold there too. Each count has its 95 % Wilson interval (the shaded bands), and with
# a few dozen held-out requests two points whose bands overlap are not different. A persona is a style, and a
# style is cheap to learn. When we recorded the curve on the CPU profile, 25 conversations were enough for a
# marker in 31 of 32 replies, all of them fluent. The task-fact counts went up and down from one size to the
# next, and their bands all overlap: only 17 of the requests carry a task name or date to keep, too few for
# this curve to say whether more data keeps the facts better. That is the honest reading of a small
# measurement: the persona needs very little data; what more data buys is not shown here.

# %% [markdown]
# One more question, about this curve: replace the `...` line (remove the `#`) and run the cell.

# %%
# fewest_examples = ...   # the fewest training conversations whose run put a marker in at least 90 % of replies
q3.check()

# %% [markdown]
# **Next:** exercise 04 — choose the LoRA hyperparameters yourself. Lesson 05 measures drift and injection on
# the system-prompted base model, the fine-tuned model, and both together.
