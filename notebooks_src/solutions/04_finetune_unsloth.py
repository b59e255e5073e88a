# %% [markdown]
# # Exercise 04 — Fine-tune the persona into the weights
#
# Lesson 04 trained with the course's preset. Now you choose the LoRA hyperparameters yourself, within a
# training budget, and show four things: the run trains, its loss falls, the persona shows up **without a
# system prompt** on requests the model never saw, and the model is still a working assistant (fluent replies
# that keep the task's name and date).
#
# **How the checks work.** After each step, run the `qN.check()` cell: it says what is right, what is missing
# and how many points the step is worth. `qN.hint()` (then `qN.hint(2)`) helps when you are stuck. Your
# instructor grades by running the notebook from top to bottom, so keep the variable names it asks for; for this
# exercise the grader does not run your training cell: it grades the `adapter/` folder you save in step 2.

# %%
from personalab import finetune
from personalab.checks.ex04 import EXERCISE, LR_RANGES, MAX_EXAMPLES_SEEN

q1, q2, q3, q4 = EXERCISE.questions
backend = finetune.prepare()  # imports Unsloth first (the trainer on every machine; PERSONALAB_TRAINER=peft: PEFT + TRL)
paths = finetune.dataset_paths()
OUTPUT_DIR = str(finetune.default_output_dir("exercise04"))  # your run, apart from lesson 04's
print("trainer:", backend)
print("the preset for this machine:", finetune.default_config())

# %% [markdown]
# ## Before: the base model, no system prompt
#
# `before` holds the base model's replies to the held-out requests and its persona-marker rate; `after` will
# hold the same for your fine-tuned model.

# %% tags=["llm"]
before = finetune.persona_eval(finetune.default_config().base_model, label="base")
print(f"base model, no system prompt: marker rate {before['rate']:.0%} on {before['n']} held-out requests")

# %% [markdown]
# ## Step 1 — choose the hyperparameters (q1)
#
# Build `my_config` with `finetune.default_config(...)` and these fields:
#
# * `r` — the LoRA rank: the size of the update matrices (4 to 64);
# * `lora_alpha` — the update is scaled by `lora_alpha / r` (keep that between 0.5 and 4);
# * `learning_rate` — the one that matters most. The range that works depends on the model (`LR_RANGES`);
# * `max_steps` and `batch_size` — together the number of conversations the optimizer sees; the budget is
#   `MAX_EXAMPLES_SEEN`.
#
# Keep `output_dir=OUTPUT_DIR`. A rule of thumb: a short run of a few dozen steps on CPU needs a learning rate
# several times higher than a longer GPU run; a persona is a style, so a small rank is enough.

# %%
print("learning-rate ranges:", LR_RANGES, "| budget:", MAX_EXAMPLES_SEEN, "conversations")
### BEGIN SOLUTION
if finetune.default_config().base_model == "smollm2":  # the CPU base: a short run with a high learning rate
    my_config = finetune.default_config(r=16, lora_alpha=32, learning_rate=1.5e-3, max_steps=24, batch_size=2,
                                        grad_accum=4, output_dir=OUTPUT_DIR)
else:
    my_config = finetune.default_config(r=16, lora_alpha=16, learning_rate=2e-4, max_steps=60, batch_size=8,
                                        output_dir=OUTPUT_DIR)
### END SOLUTION
print(my_config)
q1.check()

# %% [markdown]
# ## Step 2 — train (q2)
#
# Run the training with your settings. The check reads the result: all steps done, the loss finite, and the
# loss at the end at least a quarter below the loss at the start. Re-run this cell after changing `my_config`.

# %% tags=["timing"]
my_result = finetune.train(my_config, paths.train)
print(my_result)
my_result.plot_loss();

# %%
q2.check()

# %% [markdown]
# ### Hand in your adapter
#
# Your instructor does not train your model again (that takes minutes per learner). The gradebook loads your
# LoRA adapter onto the base model and measures it itself: the loss on training replies with and without it,
# and its replies to held-out requests. This cell copies the adapter next to the notebook as `adapter/`
# (`adapter_config.json` and `adapter_model.safetensors`, what `model.save_pretrained("adapter")` writes, about
# 20 MB). Hand in this notebook **and** the `adapter/` folder, together in one folder. Run the cell again after
# every training run, so the adapter matches `my_config`.

# %%
import shutil
from pathlib import Path

shutil.copytree(my_result.adapter_dir, "adapter", dirs_exist_ok=True)
print("hand in with the notebook:", sorted(p.name for p in Path("adapter").iterdir()))

# %% [markdown]
# ## Step 3 — the persona without a prompt (q3)
#
# Measure your fine-tuned model on the same held-out requests, with no system prompt, into `after`. The marker
# rate must rise by at least 50 percentage points over `before`.

# %% tags=["llm"]
### BEGIN SOLUTION
after = finetune.persona_eval(*my_result.load(), label="fine-tuned")
### END SOLUTION
print(finetune.compare_answers(before, after, k=3))
print(finetune.quality_table([before, after]))
q3.check()

# %% [markdown]
# ## Step 4 — still a working assistant (q4)
#
# Markers alone can be bought with word salad: a model trained too hard copies fragments of the training
# replies. The check recomputes, from `before` and `after`, how many replies are fluent (perplexity under the
# base model, no loops) and how many keep the task's name and date (the table printed in step 3). Both must stay
# high, and no more than a little below the base model's own rates.

# %% tags=["llm"]
q4.check()

# %% [markdown]
# **Try it:** what happens with `learning_rate` at the bottom of its range, or with `r=4`? With a learning rate
# far above the range? The checks tell you what changed, the loss curve shows why.

# %%
EXERCISE.progress()
