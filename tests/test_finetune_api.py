"""API drift: what the course passes to Unsloth, TRL, PEFT and transformers is accepted by the pinned versions.

Offline and without a GPU: TRL/PEFT/transformers are inspected as installed (the pinned stack); Unsloth is
never imported — its pinned wheel (from /tmp/wheels, the cache, or `pip download --no-deps`) is parsed with
``ast``. The keyword arguments come from ``personalab.finetune.config.api_calls``, the same builders the
training code calls, and a scan of the sources makes sure no call bypasses them.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest

from personalab.finetune import config as C
from personalab.finetune import drift
from personalab.finetune.config import FinetuneConfig, api_calls

CASES = [("peft", False), ("peft", True), ("unsloth", True)]
#: Requirements of the pinned Unsloth that constraints.txt cannot meet yet, with the reason.
KNOWN_CONSTRAINT_CONFLICTS = {
    "certifi": "unsloth/unsloth-zoo 2026.10.9 require certifi>=2026.10.19, newer than any release on the "
    "package index this project uses (2026.10.18); Colab's pip resolves it from PyPI",
}


@pytest.fixture(scope="module")
def pins():
    return drift.pyproject_pins()


@pytest.fixture(scope="module")
def wheels(pins):
    uw = drift.find_wheel("unsloth", pins["colab"]["unsloth"])
    zw = drift.find_wheel("unsloth_zoo", pins["colab"]["unsloth-zoo"])
    if uw is None or zw is None:
        pytest.skip("the pinned Unsloth wheels are neither cached nor downloadable (no package index?)")
    return uw, zw


@pytest.fixture(scope="module")
def accepted(wheels):
    return drift.installed_params() | drift.unsloth_params(*wheels)


def test_stack_is_the_pinned_one(pins):
    from importlib.metadata import version

    for name in ("transformers", "trl", "peft", "datasets", "torch"):
        assert version(name).split("+")[0] == pins["dependencies"][name], f"installed {name} is not the pinned one"


def test_colab_pins_satisfy_unsloths_requirements(wheels, pins):
    both = pins["dependencies"] | pins["colab"]
    for must in ("transformers", "trl", "datasets", "peft", "torch"):
        assert must in both
    problems = [p for w in wheels for p in drift.unmet_requirements(w, both)]
    assert problems == [], "\n".join(problems)


def test_constraints_satisfy_unsloths_requirements(wheels):
    problems = [p for w in wheels for p in drift.unmet_requirements(w, drift.constraint_pins())]
    unknown = [p for p in problems if not any(f"needs {name}" in p for name in KNOWN_CONSTRAINT_CONFLICTS)]
    assert unknown == [], "\n".join(unknown)
    for name, why in KNOWN_CONSTRAINT_CONFLICTS.items():  # remove an entry once it no longer conflicts
        assert any(f"needs {name}" in p for p in problems), f"{name} no longer conflicts: drop it ({why})"


@pytest.mark.parametrize("backend,cuda", CASES)
def test_every_keyword_is_accepted(accepted, backend, cuda):
    for cfg in (FinetuneConfig(), C.default_config("cpu"), C.default_config("gpu", gradient_checkpointing=False)):
        calls = [(callee, list(kw)) for callee, kw in api_calls(cfg, backend, cuda=cuda, bf16=False)]
        assert drift.check_calls(calls, accepted) == []


def test_the_checker_catches_drift(accepted):
    # TRL renamed max_seq_length to max_length; Unsloth never had load_in_3bit
    problems = drift.check_calls([("trl.SFTConfig", ["max_seq_length"]),
                                  ("unsloth.FastLanguageModel.from_pretrained", ["load_in_3bit", "model_name"]),
                                  ("nobody.Knows", ["x"])], accepted)
    assert len(problems) == 3
    assert "max_seq_length" in problems[0] and "load_in_3bit" in problems[1] and "model_name" not in problems[1]


def test_unsloth_signatures_come_from_the_real_definitions(accepted):
    assert accepted["unsloth.FastLanguageModel.from_pretrained"].where.startswith("unsloth/models/loader.py")
    # FastLanguageModel.get_peft_model(*args, **kwargs) wraps FastLlamaModel.get_peft_model: the checker follows it
    assert accepted["unsloth.FastLanguageModel.get_peft_model"].where.startswith("unsloth/models/llama.py")
    assert {"instruction_part", "response_part"} <= accepted["unsloth.chat_templates.train_on_responses_only"].names


def test_values_are_accepted_too(wheels):
    import peft
    import transformers
    import trl

    cfg = C.default_config("cpu")
    trl.SFTConfig(**C.sft_config_kwargs(cfg, backend="peft", cuda=False, bf16=False, output_dir="/tmp/x"))
    peft.LoraConfig(**C.lora_config_kwargs(cfg))
    transformers.BitsAndBytesConfig(**C.bnb_kwargs())
    assert C.unsloth_merge_kwargs()["save_method"] in drift.unsloth_save_methods(wheels[0])
    assert C.resolve_optim(cfg, "unsloth", True) in {o.value for o in transformers.training_args.OptimizerNames}


def test_plain_loss_override_matches_trl():
    import trl

    params = list(inspect.signature(trl.SFTTrainer.compute_loss).parameters)
    assert params == ["self", "model", "inputs", "return_outputs", "num_items_in_batch"]


def _builder_names() -> set[str]:
    return {n for n, f in vars(C).items() if inspect.isfunction(f) and f.__module__ == C.__name__}


def _called(expr: str) -> str:
    fn = getattr(ast.parse(expr, mode="eval").body, "func", None)
    return getattr(fn, "attr", getattr(fn, "id", ""))


def test_package_calls_go_through_the_builders(accepted):
    """Every watched call in personalab/finetune passes its keywords from a builder (or literal, checked)."""
    strict = set(C.BUILDERS) | {"peft.get_peft_model"}
    problems, seen = [], set()
    for path in drift.package_sources():
        for call in drift.scan_source(path.read_text(encoding="utf-8"), path.name):
            seen.add(call.callee)
            problems += drift.check_calls([(call.callee, call.keywords)], accepted)
            if call.callee in strict:
                names = [_called(star) for star in call.starred]
                inputs = call.callee == "transformers.GenerationMixin.generate"  # generate(**inputs, **builder(...))
                stray = [n for n in names if n not in _builder_names()]
                if call.keywords or (stray and not inputs) or (inputs and len(stray) == len(names)):
                    problems.append(f"{call.where}: {call.callee} gets keywords that bypass the builders in config.py")
    assert problems == []
    assert {"trl.SFTConfig", "unsloth.FastLanguageModel.from_pretrained", "peft.LoraConfig"} <= seen


def test_notebook_calls_are_accepted(accepted):
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    sources = drift.notebook_sources()
    assert len(sources) >= 2, "lesson and solution 04 sources not found"
    problems = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for call in drift.scan_source(text, path.name):
            problems += drift.check_calls([(call.callee, call.keywords)], accepted)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("default_config", "FinetuneConfig"):
                bad = [k.arg for k in node.keywords if k.arg not in fields and k.arg != "profile"]
                problems += [f"{path.name}:{node.lineno}: FinetuneConfig has no field {b}" for b in bad]
    assert problems == []


def test_pins_read_the_same_without_tomllib(monkeypatch, pins):
    import sys

    monkeypatch.setitem(sys.modules, "tomllib", None)  # Python 3.10 has no tomllib
    assert drift.pyproject_pins() == {k: v for k, v in pins.items() if k in ("dependencies", "colab", "dev")}
