"""The shipped reference build of the embedded model: current, served everywhere, and robust across CPU kernels.

Builds differ slightly between machines, so the course ships one build and every machine serves it. What can
still differ is which CPU kernels PyTorch picks at inference (AVX-512, AVX2 or none); ``ATEN_CPU_CAPABILITY``
forces each, and the steering and exercise-01 checks must hold under all of them.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from personalab import persona
from personalab.config import REPO_ROOT
from personalab.embedded.build import (
    BUILDER_VERSION,
    REFERENCE_DIR,
    build,
    default_model_dir,
    read_build_info,
    source_hash,
)
from personalab.steering import compare, heldout_requests

SOLUTION_01 = REPO_ROOT / "notebooks_src" / "solutions" / "01_system_prompt_persona.py"


def test_reference_build_is_current() -> None:
    info = read_build_info(REFERENCE_DIR)
    assert info, f"{REFERENCE_DIR}/build_info.json is missing"
    assert info["builder"] == BUILDER_VERSION
    assert info["source_sha256"] == source_hash(), (
        "the embedded model's builder changed since the shipped reference was built: "
        "run `personalab model build --reference --force` and commit personalab/embedded/reference/"
    )
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (REFERENCE_DIR / name).is_file(), name


def test_source_hash_tracks_the_builder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    build_mod = importlib.import_module("personalab.embedded.build")
    before = source_hash()
    fake = tmp_path / "personalab"
    for name in build_mod.SOURCE_FILES:
        (fake / name).parent.mkdir(parents=True, exist_ok=True)
        (fake / name).write_bytes((Path(build_mod.__file__).parent.parent / name).read_bytes())
    (fake / "embedded" / "corpus.py").write_text("# changed\n", encoding="utf-8")
    monkeypatch.setattr(build_mod, "__file__", str(fake / "embedded" / "build.py"))
    assert build_mod.source_hash() != before


def test_the_course_serves_the_reference() -> None:
    assert default_model_dir() == REFERENCE_DIR


def solution_01() -> tuple[str, list[str]]:
    """Exercise 01's solution persona (YAML) and requests, read from the solution's source."""
    src = SOLUTION_01.read_text(encoding="utf-8")
    yaml_text = re.findall(r'^my_persona = """(.*?)"""', src, re.S | re.M)[-1]
    requests = ast.literal_eval(re.search(r"^my_requests = (\[.*?\])", src, re.S | re.M).group(1))
    return yaml_text, requests


def steering_and_ex01(base_url: str, model: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Marker rates on the held-out requests (with, without, control prompt) and ex01 q4's own measurement."""
    import openai

    from personalab.checks import ex01

    client = openai.OpenAI(base_url=base_url, api_key="not-needed")
    tm = persona.taskmaster()
    control = tm.model_copy(deep=True)
    control.name, control.vocabulary.use = "PlanPal", ["Solid plan!", "Nice start!"]
    rates = compare(
        heldout_requests(),
        {"without": None, "with": tm.render(), "control": control.render()},
        client=client,
        model=model,
        progress=False,
    ).marker_rates(tm)
    yaml_text, requests = solution_01()
    # the check's own measurement, pointed at this server (its memo is keyed by base URL and model)
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("PERSONALAB_MODEL", model)
    monkeypatch.setenv("PERSONALAB_BACKEND", "remote")
    m = ex01.measure(ex01.spec_from(yaml_text), requests)
    good = sum(w and not wo for w, wo in zip(m["with"], m["without"], strict=True))
    return {"rates": rates, "ex01_good": good, "ex01_requests": len(requests)}


def assert_steers(result: dict) -> None:
    from personalab.checks.ex01 import needed_for_full_marks

    rates = result["rates"]
    assert rates["with"] - rates["without"] >= 0.5, result
    assert rates["with"] - rates["control"] >= 0.5, result
    need = needed_for_full_marks(result["ex01_requests"])
    assert result["ex01_good"] >= need + 1, f"exercise 01's solution needs a margin of one request: {result}"


def _capabilities() -> list[str]:
    import torch

    native = torch.backends.cpu.get_cpu_capability()  # e.g. AVX512, AVX2, DEFAULT
    order = ["default", "avx2", "avx512"]
    return order[: order.index(native.lower()) + 1] if native.lower() in order else ["default"]


@pytest.mark.slow
@pytest.mark.parametrize("capability", _capabilities())
def test_checks_hold_under_every_cpu_kernel(capability: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from personalab.server import LocalServer

    monkeypatch.setenv("ATEN_CPU_CAPABILITY", capability)
    with LocalServer(REFERENCE_DIR) as server:
        result = steering_and_ex01(server.base_url, server.model, monkeypatch)
    print(f"\nATEN_CPU_CAPABILITY={capability}: {result}")
    assert_steers(result)


@pytest.mark.slow
def test_a_rebuild_steers_like_the_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`personalab model build` from scratch on this machine gives a model that passes the same checks."""
    from personalab.server import LocalServer

    out = build(tmp_path / "rebuilt", progress=False)
    assert read_build_info(out)["source_sha256"] == source_hash()
    with LocalServer(out) as server:
        result = steering_and_ex01(server.base_url, server.model, monkeypatch)
    print(f"\nrebuilt on this machine: {result}")
    assert_steers(result)
