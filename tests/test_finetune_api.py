"""API drift: what the course passes to Unsloth, TRL, PEFT and transformers is accepted by the pinned versions.

Offline and without a GPU: TRL/PEFT/transformers are inspected as installed (the pinned stack); Unsloth is
never imported here (importing it patches transformers and TRL for the whole process) — the source of the
unsloth and unsloth-zoo versions constraints.txt pins (installed, else their wheels from /tmp/wheels, the cache or
`pip download --no-deps`) is parsed with ``ast``: the GPU definitions and those of Unsloth's CPU mode, which is
what trains on a machine without a GPU (tests/test_finetune_unsloth.py runs it). The keyword arguments come from
``personalab.finetune.config.api_calls``, the same builders the training code calls, and a scan of the sources
makes sure no call bypasses them.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest

from personalab.finetune import api_drift
from personalab.finetune import config as C
from personalab.finetune.config import FinetuneConfig, api_calls

#: (backend, cuda): ("unsloth", False) is what lesson 04 and CI run; ("unsloth", True) is Colab's path.
CASES = [("peft", False), ("peft", True), ("unsloth", False), ("unsloth", True)]


@pytest.fixture(scope="module")
def pins():
    return api_drift.constraint_pins()


@pytest.fixture(scope="module")
def packages():
    pkgs = api_drift.unsloth_packages()
    if pkgs is None:
        pytest.skip("the pinned Unsloth is neither installed nor its wheels cached or downloadable")
    return pkgs


@pytest.fixture(scope="module")
def accepted(packages):
    """Accepted keywords per machine: {cuda: {callee: Params}}."""
    return {cuda: api_drift.installed_params() | api_drift.unsloth_params(*packages, cuda=cuda)
            for cuda in (False, True)}


def test_stack_is_the_pinned_one(pins):
    from importlib.metadata import version

    for name in ("transformers", "trl", "peft", "datasets", "torch", "unsloth", "unsloth-zoo"):
        assert version(name).split("+")[0] == pins[name], f"installed {name} is not the one constraints.txt pins"


def test_unsloth_is_read_from_what_runs(packages, pins):
    unsloth, zoo = packages
    assert (unsloth.version, zoo.version) == (pins["unsloth"], pins["unsloth-zoo"])
    assert unsloth.origin == zoo.origin == "installed"  # the copy lesson 04 imports, not a downloaded wheel
    assert api_drift.CPU_LOADER in zoo.texts  # Unsloth's CPU mode ships with the pinned unsloth-zoo


def test_constraints_satisfy_unsloths_requirements(packages, pins):
    for must in ("transformers", "trl", "datasets", "peft", "torch", "certifi"):
        assert must in pins
    problems = [p for pkg in packages for p in api_drift.unmet_requirements(pkg, pins)]
    assert problems == [], "\n".join(problems)


def test_unmet_requirements_are_found(packages):
    unsloth, _ = packages
    old = dict(api_drift.constraint_pins(), certifi="2026.10.18")  # the release before the floor Unsloth sets
    assert any("needs certifi" in p for p in api_drift.unmet_requirements(unsloth, old))


@pytest.mark.parametrize("backend,cuda", CASES)
def test_every_keyword_is_accepted(accepted, backend, cuda):
    for cfg in (FinetuneConfig(), C.default_config("cpu"), C.default_config("gpu", gradient_checkpointing=False)):
        calls = [(callee, list(kw)) for callee, kw in api_calls(cfg, backend, cuda=cuda, bf16=False)]
        assert api_drift.check_calls(calls, accepted[cuda]) == []


def test_cpu_calls_are_checked_against_unsloths_cpu_mode(accepted):
    cpu, gpu = accepted[False], accepted[True]
    for callee in ("unsloth.FastLanguageModel.from_pretrained", "unsloth.FastLanguageModel.get_peft_model",
                   "unsloth.save_pretrained_merged"):
        loader = api_drift.CPU_LOADER
        assert cpu[callee].where.startswith(loader) and not gpu[callee].where.startswith(loader)
    # the GPU loader takes random_state, the CPU mode's does not: the CPU call must not send it
    kw = dict(api_calls(C.default_config("cpu"), "unsloth", cuda=False))["unsloth.FastLanguageModel.from_pretrained"]
    assert "random_state" not in kw and kw["load_in_4bit"] is False
    assert api_drift.check_calls([("unsloth.FastLanguageModel.from_pretrained", ["random_state"])], cpu) != []


def test_the_checker_catches_drift(accepted):
    # TRL renamed max_seq_length to max_length; Unsloth never had load_in_3bit
    problems = api_drift.check_calls([("trl.SFTConfig", ["max_seq_length"]),
                                  ("unsloth.FastLanguageModel.from_pretrained", ["load_in_3bit", "model_name"]),
                                  ("nobody.Knows", ["x"])], accepted[True])
    assert len(problems) == 3
    assert "max_seq_length" in problems[0] and "load_in_3bit" in problems[1] and "model_name" not in problems[1]


def test_unsloth_signatures_come_from_the_real_definitions(accepted):
    gpu = accepted[True]
    assert gpu["unsloth.FastLanguageModel.from_pretrained"].where.startswith("unsloth/models/loader.py")
    # FastLanguageModel.get_peft_model(*args, **kwargs) wraps FastLlamaModel.get_peft_model: the checker follows it
    assert gpu["unsloth.FastLanguageModel.get_peft_model"].where.startswith("unsloth/models/llama.py")
    assert {"instruction_part", "response_part"} <= gpu["unsloth.chat_templates.train_on_responses_only"].names


def test_values_are_accepted_too(packages):
    import peft
    import transformers
    import trl

    cfg = C.default_config("cpu")
    trl.SFTConfig(**C.sft_config_kwargs(cfg, backend="peft", cuda=False, bf16=False, output_dir="/tmp/x"))
    peft.LoraConfig(**C.lora_config_kwargs(cfg))
    transformers.BitsAndBytesConfig(**C.bnb_kwargs())
    for cuda in (False, True):
        assert C.unsloth_merge_kwargs()["save_method"] in api_drift.unsloth_save_methods(*packages, cuda=cuda)
    assert C.resolve_optim(cfg, "unsloth", True) in {o.value for o in transformers.training_args.OptimizerNames}


def test_plain_loss_override_matches_trl():
    import trl

    from personalab.finetune.trainers import trl_class

    params = list(inspect.signature(trl_class(trl.SFTTrainer).compute_loss).parameters)
    assert params == ["self", "model", "inputs", "return_outputs", "num_items_in_batch"]


def _builder_names() -> set[str]:
    return {n for n, f in vars(C).items() if inspect.isfunction(f) and f.__module__ == C.__name__}


def _called(expr: str) -> str:
    fn = getattr(ast.parse(expr, mode="eval").body, "func", None)
    return getattr(fn, "attr", getattr(fn, "id", ""))


def test_package_calls_go_through_the_builders(accepted):
    accepted = accepted[True]
    """Every watched call in personalab/finetune passes its keywords from a builder (or literal, checked)."""
    strict = set(C.BUILDERS) | {"peft.get_peft_model"}
    problems, seen = [], set()
    for path in api_drift.package_sources():
        for call in api_drift.scan_source(path.read_text(encoding="utf-8"), path.name):
            seen.add(call.callee)
            problems += api_drift.check_calls([(call.callee, call.keywords)], accepted)
            if call.callee in strict:
                names = [_called(star) for star in call.starred]
                inputs = call.callee == "transformers.GenerationMixin.generate"  # generate(**inputs, **builder(...))
                stray = [n for n in names if n not in _builder_names()]
                if call.keywords or (stray and not inputs) or (inputs and len(stray) == len(names)):
                    problems.append(f"{call.where}: {call.callee} gets keywords that bypass the builders in config.py")
    assert problems == []
    assert {"trl.SFTConfig", "unsloth.FastLanguageModel.from_pretrained", "peft.LoraConfig"} <= seen


def test_notebook_calls_are_accepted(accepted):
    accepted = accepted[False]  # the notebooks run in CI on a CPU
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    sources = api_drift.notebook_sources()
    assert len(sources) >= 2, "lesson and solution 04 sources not found"
    problems = []
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for call in api_drift.scan_source(text, path.name):
            problems += api_drift.check_calls([(call.callee, call.keywords)], accepted)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("default_config", "FinetuneConfig"):
                bad = [k.arg for k in node.keywords if k.arg not in fields and k.arg != "profile"]
                problems += [f"{path.name}:{node.lineno}: FinetuneConfig has no field {b}" for b in bad]
    assert problems == []


def test_pins_read_the_same_without_tomllib(monkeypatch):
    import sys

    pins = api_drift.pyproject_pins()
    monkeypatch.setitem(sys.modules, "tomllib", None)  # Python 3.10 has no tomllib
    assert api_drift.pyproject_pins() == {k: v for k, v in pins.items() if k in ("dependencies", "colab", "dev")}
