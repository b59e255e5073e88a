"""Lesson 04's recipe: the Unsloth calls it writes out, and the course's helpers around them (CPU only, no training).

* :class:`personalab.finetune.SampleReplies` generates in eval mode with no system prompt on its schedule, goes back to
  training mode, prints each reply with marker yes/no, and counts its own time (a stub model and generator);
* :class:`personalab.finetune.Run` leaves that time out of the training time, refuses to finish without the saved
  adapter, and writes the ``metrics.json`` that ``finetune.train`` writes (a stand-in trainer);
* the lesson's calls get the same keyword arguments as ``finetune.train``'s (read from the lesson's source), in the
  order of Unsloth's notebooks.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from personalab import finetune
from personalab.errors import InputError
from personalab.finetune import config as C
from personalab.finetune import infer, masking
from personalab.finetune.run import SHOWN_SFT_ARGS

LESSON = Path(__file__).resolve().parent.parent / "notebooks_src" / "lessons" / "04_finetune_unsloth.py"


# ----------------------------------------------------------------------------------------------- SampleReplies
class StubModel:
    def __init__(self) -> None:
        self.training = True
        self.modes: list[str] = []

    def eval(self) -> StubModel:
        self.training = False
        self.modes.append("eval")
        return self

    def train(self, mode: bool = True) -> StubModel:
        self.training = mode
        self.modes.append("train")
        return self


@pytest.fixture
def generated(monkeypatch):
    """Replace generation: record each call (and the model's mode during it); the reply names the call."""
    calls: list[dict] = []

    def fake(model, tokenizer, prompts, **kw):
        calls.append({"training": model.training, "prompts": list(prompts), **kw})
        n = len(calls)
        return [("Let's get this done! Added." if n >= 3 else f"Okay, reply {n}") for _ in prompts]

    monkeypatch.setattr(infer, "generate_replies", fake)
    return calls


def test_sample_replies_on_schedule_in_eval_mode_without_a_system_prompt(generated, capsys):
    from transformers import TrainerCallback

    samples = finetune.SampleReplies("tok", ["Add a task: pay rent", "Remind me at 5"], every=3, unsloth=False)
    assert isinstance(samples, TrainerCallback)
    model = StubModel()
    state = SimpleNamespace(global_step=0, max_steps=7)
    samples.on_train_begin(None, state, None, model=model)
    for step in range(1, 8):
        state.global_step = step
        samples.on_step_end(None, state, None, model=model)
    assert [h["step"] for h in samples.history] == [0, 3, 6, 7]  # before training, every 3, and the last step
    assert all(not c["training"] for c in generated) and model.training  # eval while generating, then training
    assert model.modes == ["eval", "train"] * 4
    assert all(c.get("system") is None and c["max_new_tokens"] == 40 for c in generated)
    assert [h["markers"] for h in samples.history] == [[False, False], [False, False], [True, True], [True, True]]
    out = capsys.readouterr().out
    assert "before training: 0 of 2 use a persona marker" in out and "after step 6: 2 of 2" in out
    assert "marker yes" in out and "marker no" in out and "Add a task: pay rent" in out
    assert samples.seconds >= 0


def test_sample_replies_leaves_an_eval_model_in_eval_mode(generated):
    samples = finetune.SampleReplies("tok", ["hi"], every=1, unsloth=False, show=False)
    model = StubModel().eval()
    samples.sample(model, 1)
    assert not model.training and samples.history[0]["replies"] == ["Okay, reply 1"]


def test_sample_replies_rejects_bad_settings():
    with pytest.raises(InputError, match="every"):
        finetune.SampleReplies("tok", ["hi"], every=0)
    with pytest.raises(InputError, match="list of requests") as err:
        finetune.SampleReplies("tok", "hi")
    assert "held_out_prompts" in err.value.fix


# ----------------------------------------------------------------------------------------------- Run
class StandInTrainer:
    """What Run reads from a TRL trainer: model, state, args, datasets, callbacks, evaluate()."""

    def __init__(self, callbacks: list) -> None:
        import torch
        from datasets import Dataset

        self.model = torch.nn.Linear(4, 2)
        self.model.bias.requires_grad_(False)
        self.state = SimpleNamespace(global_step=0, num_input_tokens_seen=0)
        self.args = SimpleNamespace(bf16=False, fp16=False)
        self.train_dataset = Dataset.from_dict({"labels": [[-100, 7, 8], [-100, -100, 9]]})
        self.eval_dataset = ["one eval row"]
        self.callback_handler = SimpleNamespace(callbacks=list(callbacks))
        self.losses = iter([2.5, 1.5])

    def remove_callback(self, cb: type) -> None:
        self.callback_handler.callbacks = [c for c in self.callback_handler.callbacks if not isinstance(c, cb)]

    def evaluate(self) -> dict:
        return {"eval_loss": next(self.losses)}


def cpu_config(tmp_path: Path, **changes) -> C.FinetuneConfig:
    return C.default_config("cpu", output_dir=str(tmp_path / "run"), backend="peft", merge=False, threads=1,
                            **changes)


def test_run_measures_around_training_and_writes_what_train_writes(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("{}")
    run = finetune.Run(cpu_config(tmp_path), progress=False)
    assert not (tmp_path / "run" / "metrics.json").exists()  # a stale file would claim this run finished
    sampler = SimpleNamespace(seconds=0.0)
    trainer = StandInTrainer([*run.callbacks, sampler])
    with pytest.raises(InputError, match="measure"):
        run.finish(trainer, None)
    t0 = time.perf_counter()
    with run.measure(trainer):
        meter = run.callbacks[0]
        for step, loss in enumerate([3.0, 2.0, 1.0], 1):
            trainer.state.global_step = step
            meter.on_log(None, trainer.state, None, logs={"loss": loss, "learning_rate": 1e-3})
        trainer.state.num_input_tokens_seen = 300
        time.sleep(0.3)
        sampler.seconds += 0.3  # sample replies: not training time
    outer = time.perf_counter() - t0
    assert run.eval == {"loss_before": 2.5, "loss_after": 1.5}
    assert 0 <= run.train_s <= outer - 0.3 and run.sample_s == pytest.approx(0.3)

    with pytest.raises(InputError, match="adapter_config.json") as err:
        run.finish(trainer, None)
    assert "save_pretrained(run.adapter_dir)" in err.value.fix
    run.adapter_dir.mkdir(parents=True)
    for name in ("adapter_config.json", "tokenizer_config.json"):
        (run.adapter_dir / name).write_text("{}")
    result = run.finish(trainer, None)
    saved = finetune.load_result(tmp_path / "run")
    assert saved.to_dict() == result.to_dict() and saved.losses == [3.0, 2.0, 1.0]
    m = saved.metrics
    assert m["steps"] == 3 and m["trainable_params"] == 8 and m["total_params"] == 10 and m["sample_s"] == 0.3
    assert m["time_per_step_s"] == pytest.approx(m["train_s"] / 3, abs=1e-3) and m["tokens_seen"] == 300
    assert m["labels_checked"] == 0 and saved.eval == {"loss_before": 2.5, "loss_after": 1.5}
    assert saved.config["learning_rate"] == 1.5e-3 and saved.config["max_steps"] == 24  # issue 25's CPU preset
    assert {"wall_s", "setup_s", "train_s", "peak_memory_mb", "memory_kind", "device", "final_loss"} <= set(m)
    assert saved.summary()["adapter_dir"] == str(run.adapter_dir)


def test_the_ground_truth_label_check_runs_even_when_the_lesson_skips_check_labels(tmp_path):
    from datasets import Dataset

    run = finetune.Run(cpu_config(tmp_path), progress=False)
    trainer = StandInTrainer(run.callbacks)
    trainer.train_dataset = Dataset.from_dict({"labels": [[-100, -100], [-100, -100]]})
    with pytest.raises(InputError, match="-100"), run.measure(trainer):
        pass
    run.close()


def test_machine_args_are_the_sft_settings_the_lesson_does_not_write_out(tmp_path):
    for profile in ("cpu", "gpu"):
        cfg = C.default_config(profile, output_dir=str(tmp_path / profile), threads=1, backend="peft")
        run = finetune.Run(cfg, progress=False)
        run.close()
        kw = {"cuda": run.cuda, "bf16": run.bf16, "output_dir": run.trainer_dir}
        full = C.sft_config_kwargs(cfg, backend="peft", **kw)
        assert run.machine_args == {k: v for k, v in full.items() if k not in SHOWN_SFT_ARGS}
        assert set(SHOWN_SFT_ARGS) <= set(C.sft_config_kwargs(cfg, backend="unsloth", **kw))  # the lesson's trainer
        assert {"bf16", "fp16", "use_cpu", "disable_tqdm"} <= set(run.machine_args)
        assert run.optim == full["optim"] and run.load_in_4bit is False  # no GPU here


# ----------------------------------------------------------------------------------------------- the lesson
def lesson_calls() -> list[tuple[str, int, set[str], bool, list]]:
    """(callee's dotted name, line, keyword names, has **kwargs, positional args) for each call in lesson 04."""
    calls = []
    for node in ast.walk(ast.parse(LESSON.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            names = {k.arg for k in node.keywords if k.arg}
            calls.append((name, node.lineno, names, any(k.arg is None for k in node.keywords), node.args))
    return calls


def the_call(name: str) -> tuple[int, set[str], bool, list]:
    found = [c[1:] for c in lesson_calls() if c[0] == name]
    assert len(found) == 1, f"lesson 04 should call {name} once, found {len(found)}"
    return found[0]


def test_the_lesson_passes_what_train_passes():
    cfg = C.default_config("cpu")
    _, kw, _, _ = the_call("FastLanguageModel.from_pretrained")
    assert kw == set(C.unsloth_load_kwargs(cfg, "m", cuda=False))
    assert kw == set(C.unsloth_load_kwargs(cfg, "m", cuda=True)) - {"random_state"}  # the GPU loader's seed only
    _, kw, _, _ = the_call("FastLanguageModel.get_peft_model")
    assert kw == set(C.unsloth_peft_kwargs(cfg, cuda=True))
    _, kw, rest, _ = the_call("SFTConfig")
    assert kw == set(SHOWN_SFT_ARGS) and rest  # the rest from run.machine_args
    _, kw, _, _ = the_call("SFTTrainer")
    assert set(C.sft_trainer_kwargs(None, None, None, None, eval=[], callbacks=[])) <= kw
    _, kw, _, _ = the_call("train_on_responses_only")
    assert kw == set(C.responses_only_kwargs("a", "b"))
    parts = [ast.literal_eval(node.value) for node in ast.walk(ast.parse(LESSON.read_text(encoding="utf-8")))
             if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "(instruction_part, response_part)"]
    assert parts == [masking.RESPONSE_PARTS["chatml"]]  # the markers detect_response_parts finds for ChatML


def test_the_lesson_makes_the_calls_in_unsloths_order():
    line = {name: the_call(name)[0] for name in (
        "finetune.Run", "FastLanguageModel.from_pretrained", "FastLanguageModel.get_peft_model", "SFTTrainer",
        "train_on_responses_only", "run.check_labels", "run.measure", "trainer.train", "run.finish",
        "FastLanguageModel.for_inference")}
    saves = [c[1] for c in lesson_calls() if c[0] in ("model.save_pretrained", "tokenizer.save_pretrained")]
    assert len(saves) == 2
    order = ["finetune.Run", "FastLanguageModel.from_pretrained", "FastLanguageModel.get_peft_model", "SFTTrainer",
             "train_on_responses_only", "run.check_labels", "run.measure", "trainer.train"]
    assert [line[n] for n in order] == sorted(line[n] for n in order)
    assert line["trainer.train"] < min(saves) and max(saves) < line["run.finish"]
    assert line["run.finish"] < line["FastLanguageModel.for_inference"]
    assert "finetune.train(" not in LESSON.read_text(encoding="utf-8").split("# ## 5.")[0].split("# ## 4.")[1]


def test_a_gpu_out_of_memory_says_which_settings_to_lower():
    from personalab.errors import SettingError
    from personalab.finetune import default_config
    from personalab.finetune.run import out_of_memory

    class OutOfMemoryError(RuntimeError):  # stands in for torch.OutOfMemoryError
        pass

    cfg = default_config("gpu", batch_size=8, grad_accum=1, max_seq_length=512, gradient_checkpointing=False)
    err = out_of_memory(cfg, OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore"))
    assert isinstance(err, SettingError) and "ran out of memory" in str(err) and "Tried to allocate" in err.problem
    assert "batch_size=8 -> 4 with grad_accum=1 -> 2" in err.fix and "max_seq_length=512 -> 256" in err.fix
    assert "gradient_checkpointing=True" in err.fix and "load_in_4bit" not in err.fix


def test_run_measure_turns_an_out_of_memory_into_the_settings_to_lower(tmp_path):
    from personalab.errors import SettingError

    class OutOfMemoryError(RuntimeError):
        pass

    run = finetune.Run(cpu_config(tmp_path), progress=False)
    trainer = StandInTrainer([*run.callbacks])
    with pytest.raises(SettingError, match="ran out of memory") as err, run.measure(trainer):
        raise OutOfMemoryError("CUDA out of memory")
    assert "batch_size=2 -> 1" in err.value.fix
    with pytest.raises(ZeroDivisionError), run.measure(StandInTrainer([*run.callbacks])):
        raise ZeroDivisionError  # any other failure passes through unchanged
    run.close()
