"""Exercise 04 graded from the learner's saved adapter (personalab.grading.adapter): the folder is checked without
loading it, the adapter is measured by the grader, and questions 2-4 rest only on what the grader measured."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import nbformat
import pytest

from personalab import config
from personalab.checks import ex04
from personalab.grading import adapter as ad
from personalab.grading.adapter import AdapterProblem, check_adapter

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: A stand-in base: Llama layout, 2 layers, hidden 8, MLP 16, 2 heads of 4, 1 key/value head.
TINY = {"hidden_size": 8, "intermediate_size": 16, "num_attention_heads": 2, "head_dim": 4, "num_key_value_heads": 1,
        "num_hidden_layers": 2}
SHAPES = {"q_proj": (8, 8), "k_proj": (8, 4), "v_proj": (8, 4), "o_proj": (8, 8), "gate_proj": (8, 16),
          "up_proj": (8, 16), "down_proj": (16, 8)}  # (in, out)


def _base(tmp_path: Path, name: str = "smollm2-135m-instruct") -> Path:
    base = tmp_path / name
    base.mkdir()
    (base / "config.json").write_text(json.dumps(TINY))
    return base


def _write_safetensors(path: Path, tensors: dict[str, list[int]], *, truncate: int = 0) -> None:
    header, offset = {}, 0
    for name, shape in tensors.items():
        n = 4 * shape[0] * shape[1]
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * max(0, offset - truncate))


def _adapter(tmp_path: Path, *, r: int = 4, alpha: int = 8, modules=("q_proj", "v_proj"),
             base_name: str = "/home/me/models/smollm2-135m-instruct", shapes=SHAPES, **cfg) -> Path:
    folder = tmp_path / "student" / "adapter"
    folder.mkdir(parents=True)
    conf = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base_name, "r": r,
            "lora_alpha": alpha, "target_modules": list(modules), "modules_to_save": None, "rank_pattern": {}} | cfg
    (folder / "adapter_config.json").write_text(json.dumps(conf))
    tensors = {}
    for layer in range(TINY["num_hidden_layers"]):
        for mod in modules:
            fan_in, fan_out = shapes[mod]
            where = f"base_model.model.model.layers.{layer}.{ad.LINEAR.get(mod, 'mlp')}.{mod}"
            tensors[f"{where}.lora_A.weight"] = [r, fan_in]
            tensors[f"{where}.lora_B.weight"] = [fan_out, r]
    _write_safetensors(folder / "adapter_model.safetensors", tensors)
    return folder


def _problem(folder: Path, base: Path, **kw) -> str:
    with pytest.raises(AdapterProblem) as exc:
        check_adapter(folder, base, **kw)
    return str(exc.value)


def test_a_saved_lora_for_the_course_base_passes(tmp_path):
    info = check_adapter(_adapter(tmp_path), _base(tmp_path))
    assert info["r"] == 4 and info["lora_alpha"] == 8 and info["modules"] == ["q_proj", "v_proj"]
    assert info["tensors"] == 8


def test_a_missing_adapter_says_how_to_save_it(tmp_path):
    base = _base(tmp_path)
    msg = _problem(tmp_path / "student" / "adapter", base)
    assert "no `adapter/` folder next to the notebook" in msg and "save_pretrained('adapter')" in msg
    folder = _adapter(tmp_path)
    (folder / "adapter_model.safetensors").unlink()
    assert "adapter/adapter_model.safetensors` is missing" in _problem(folder, base)


def test_pickle_files_are_refused_never_loaded(tmp_path):
    folder = _adapter(tmp_path)
    (folder / "adapter_model.bin").write_bytes(b"\x80\x04not loaded")
    assert "pickle files are never loaded" in _problem(folder, _base(tmp_path))


def test_links_and_oversized_folders_are_refused(tmp_path):
    base = _base(tmp_path)
    folder = _adapter(tmp_path)
    assert "over the 0.0001 MB limit" in _problem(folder, base, max_mb=0.0001)
    link = tmp_path / "other" / "adapter"
    link.parent.mkdir()
    link.symlink_to(folder)
    assert "not a link" in _problem(link, base)
    (folder / "evil").symlink_to("/etc/passwd")
    assert "contains links" in _problem(folder, base)


def test_a_foreign_adapter_is_named_as_such(tmp_path):
    base = _base(tmp_path)
    msg = _problem(_adapter(tmp_path, base_name="Qwen/Qwen2.5-0.5B-Instruct"), base)
    assert "trained on 'Qwen/Qwen2.5-0.5B-Instruct', not on the course base" in msg
    shutil.rmtree(tmp_path / "student")
    wider = {k: (2 * i, 2 * o) for k, (i, o) in SHAPES.items()}  # same names, another model's dimensions
    assert "does not fit the course base" in _problem(_adapter(tmp_path, shapes=wider), base)


@pytest.mark.parametrize(("kw", "words"), [
    ({"r": 128, "alpha": 128}, "r=128"),
    ({"r": 4, "alpha": 64}, "lora_alpha/r"),
    ({"modules_to_save": ["lm_head"]}, "sets modules_to_save"),
    ({"modules": ("q_proj", "embed_tokens")}, "target_modules"),
    ({"peft_type": "PREFIX_TUNING"}, "not a LoRA adapter"),
])
def test_config_out_of_the_exercise_ranges(tmp_path, kw, words):
    shapes = SHAPES | {"embed_tokens": (8, 8)}
    assert words in _problem(_adapter(tmp_path, shapes=shapes, **kw), _base(tmp_path))


def test_broken_weights_files(tmp_path):
    base = _base(tmp_path)
    folder = _adapter(tmp_path)
    weights = folder / "adapter_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-10])
    assert "points outside the file" in _problem(folder, base)
    weights.write_bytes(b"\xff" * 4)
    assert "not a safetensors file" in _problem(folder, base)
    weights.write_bytes(data)
    (folder / "adapter_config.json").write_text("{not json")
    assert "is not valid JSON" in _problem(folder, base)


def test_an_extra_tensor_outside_the_config_is_refused(tmp_path):
    folder = _adapter(tmp_path, modules=("q_proj",))
    cfg = json.loads((folder / "adapter_config.json").read_text())
    _write_safetensors(folder / "adapter_model.safetensors",
                       {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": [4, 8],
                        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": [8, 4],
                        "base_model.model.lm_head.weight": [8, 8]})
    assert cfg["target_modules"] == ["q_proj"]
    assert "not a LoRA weight of the course base" in _problem(folder, _base(tmp_path))


def test_the_training_cells_never_run():
    cells = [nbformat.v4.new_code_cell("from personalab import finetune"),
             nbformat.v4.new_code_cell("before = finetune.persona_eval('smollm2')"),
             nbformat.v4.new_code_cell("my_config = finetune.default_config(r=16)\nq1.check()"),
             nbformat.v4.new_markdown_cell("## Step 2"),
             nbformat.v4.new_code_cell("my_result = finetune.train(my_config, paths.train)"),
             nbformat.v4.new_code_cell("q2.check()")]
    nb, dropped = ad.drop_training(nbformat.v4.new_notebook(cells=cells))
    assert [c.source for c in nb.cells if c.cell_type == "code"] == [cells[0].source, cells[2].source]
    assert dropped == [1, 4, 5] and nb.cells[-1].cell_type == "markdown"
    together = nbformat.v4.new_notebook(cells=[cells[0], nbformat.v4.new_code_cell(
        "my_config = finetune.default_config(r=16)\nmy_result = finetune.train(my_config)")])
    _, dropped = ad.drop_training(together)
    assert "define it in a cell of its own" in ad.skipped_definition(together, dropped, "my_config")
    assert ad.skipped_definition(nbformat.v4.new_notebook(cells=cells), [1, 4, 5], "my_config") is None


def _marked(n: int, marked: int) -> list[str]:
    return ["Great choice! Your report is due Friday." if i < marked else "Your report is due Friday."
            for i in range(n)]


def test_verdicts_rest_on_the_measured_numbers_only(monkeypatch):
    monkeypatch.setattr(ex04, "quality_verdict", lambda before, after, score=None: "fluent enough")
    base = _marked(16, 0)
    good = {"replies": _marked(16, 14), "base_loss": 2.7, "tuned_loss": 1.2}
    info = {"r": 16, "lora_alpha": 32}
    cfg = {"r": 16, "lora_alpha": 32}
    res = ad.adapter_results(ex04.EXERCISE, good, base, cfg, info)
    assert [(q, r.points, r.max_points) for q, r in res.items()] == [("q2", 2, 2), ("q3", 3, 3), ("q4", 2, 2)]
    assert "2.700 → 1.200" in res["q2"].reason and "0% → 88%" in res["q3"].reason
    weak = {"replies": _marked(16, 5), "base_loss": 2.7, "tuned_loss": 2.5}
    res = ad.adapter_results(ex04.EXERCISE, weak, base, cfg, info)
    assert (res["q2"].points, res["q2"].status) == (1.0, "partial")  # the loss fell, by less than a quarter
    assert (res["q3"].points, res["q3"].status) == (1.5, "partial")  # 31 points up: half credit
    none = {"replies": _marked(16, 1), "base_loss": 2.7, "tuned_loss": 2.9}
    res = ad.adapter_results(ex04.EXERCISE, none, base, cfg, info)
    assert res["q2"].points == 0 and res["q3"].points == 0
    res = ad.adapter_results(ex04.EXERCISE, good, base, {"r": 8, "lora_alpha": 16}, info)
    assert res["q2"].points == 0 and "not trained with `my_config`" in res["q2"].reason


def test_a_peft_adapter_is_measured_on_its_base(tmp_path):
    """A real PEFT adapter on the embedded test model (Llama layout): checked, loaded, measured."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from personalab.models import model_dir

    base = model_dir(config.EMBEDDED)
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(tmp_path / "adapter")
    info = check_adapter(tmp_path / "adapter", base, base_name=base.name)
    assert info["r"] == 4 and info["modules"] == ["q_proj", "v_proj"]
    conv = [{"role": "user", "content": "Plan my week"}, {"role": "assistant", "content": "Great choice! Monday."}]
    out = ad.evaluate_adapter({"base": str(base), "adapter": str(tmp_path / "adapter"), "prompts": ["Hi", "Plan"],
                               "train": [conv], "max_new_tokens": 4})
    base_replies, base_loss = ad.base_reference(base, ["Hi", "Plan"], [conv])
    assert len(out["replies"]) == 2 and len(base_replies) == 2 and base_loss > 0 and out["tuned_loss"] != base_loss
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "adapter", bad)
    cfg = json.loads((bad / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps(cfg | {"r": 8}))  # config and weights disagree
    out = ad.evaluate_adapter({"base": str(base), "adapter": str(bad), "prompts": ["Hi"], "train": [conv]})
    assert out["error"].startswith("the adapter could not be loaded on the course base")


def _course_adapter() -> Path | None:
    from personalab.finetune.config import default_output_dir

    folder = Path(os.environ.get("PERSONALAB_TEST_ADAPTER") or default_output_dir() / "adapter")
    return folder if (folder / "adapter_model.safetensors").exists() else None


@pytest.mark.slow
@pytest.mark.after_lessons
def test_the_solution_with_its_adapter_gets_full_marks_without_training(tmp_path):
    """The model solution plus lesson 04's adapter (PERSONALAB_TEST_ADAPTER, else HOME/runs/finetune/adapter, which
    the lessons' nbval run saves before this test), graded in the sandbox with 2 jobs: full marks, and the training
    cell never ran. Without the adapter, every point of questions 2-4 is lost with the reason."""
    from personalab import grading, sandbox

    adapter = _course_adapter()
    if adapter is None:
        pytest.skip("no course adapter: run lesson 04 (or finetune.train(finetune.default_config())) first")
    for student, with_adapter in (("alice", True), ("bob", False)):
        (tmp_path / "class" / student).mkdir(parents=True)
        shutil.copy(config.REPO_ROOT / "solutions" / "04_finetune_unsloth.ipynb", tmp_path / "class" / student)
        if with_adapter:
            shutil.copytree(adapter, tmp_path / "class" / student / "adapter")
    mode = "bwrap" if sandbox.probe() is None else "none"
    reports = grading.grade_folder(tmp_path / "class", tmp_path / "grades.csv", jobs=2, server=False,
                                   progress=False, isolation=grading.resolve_isolation(mode))
    alice, bob = reports
    assert [(r.question, r.points) for r in alice.results] == [("q1", 1), ("q2", 2), ("q3", 3), ("q4", 2)], \
        [r.reason for r in alice.results]
    assert bob.results[0].points == 1 and all(r.points == 0 and "no `adapter/` folder" in r.reason
                                              and r.status == "not-attempted" for r in bob.results[1:])
    assert alice.seconds < 300


def test_cell_errors_are_numbered_as_in_the_learners_notebook():
    from personalab.grading.run import _original_cells

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("persona_eval()"),
                                         nbformat.v4.new_markdown_cell("text"),
                                         nbformat.v4.new_code_cell("raise NotImplementedError"),
                                         nbformat.v4.new_code_cell("train(cfg)")])
    trimmed, skipped = ad.drop_training(nb)
    assert skipped == [1, 4] and len(trimmed.cells) == 3
    assert _original_cells([{"cell": 2, "ename": "NotImplementedError"}], nb, skipped) == [
        {"cell": 3, "ename": "NotImplementedError"}]
    assert _original_cells([{"cell": 1}], nb, []) == [{"cell": 1}]
