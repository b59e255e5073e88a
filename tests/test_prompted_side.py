"""Issue 26 item 7: with an OpenAI key the base model stays the prompted side; the API model is only a labelled
reference, and lesson 06's report warns when numbers set side by side ran on different base models.

No request leaves this machine: the clients are fakes that record what they were asked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from personalab import backends, config, evidence, report, steering

GPU_BASE = config.GPU_BASE_MODEL


class FakeClient:
    """An OpenAI-compatible client that answers every chat request with a TaskMaster marker and records it."""

    def __init__(self, name: str):
        self.name, self.base_url, self.asked = name, f"http://{name}.invalid/v1", []
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))

    def _create(self, *, model, messages, **params):
        self.asked.append((model, messages))
        message = SimpleNamespace(content=f"Got it! ({self.name}) Next step: add it to today's list.")
        return SimpleNamespace(choices=[SimpleNamespace(message=message)],
                               usage=SimpleNamespace(prompt_tokens=10, completion_tokens=5))


@pytest.fixture
def fakes(monkeypatch, tmp_path):
    """A GPU runtime with a fake OpenAI key: the base model's folder and its local server are fakes."""
    base_dir = tmp_path / "qwen-base"
    base_dir.mkdir()
    (base_dir / "config.json").write_text("{}")
    for var in ("OPENAI_BASE_URL", "PERSONALAB_MODEL", "PERSONALAB_BACKEND", "PERSONALAB_BASE_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake-not-a-key")
    monkeypatch.setenv("PERSONALAB_PROFILE", "gpu")
    clients = {"local": FakeClient("local"), "openai": FakeClient("openai"), "remote": FakeClient("remote")}
    monkeypatch.setattr(backends, "client", lambda backend=None, **kw: clients[backend or backends.active_backend()])
    monkeypatch.setattr(backends, "base_model_dir", lambda base: base_dir)
    monkeypatch.setattr(backends, "local_server", lambda model_dir=None: SimpleNamespace(model=str(base_dir)))
    return SimpleNamespace(clients=clients, base_dir=base_dir)


def test_with_a_key_the_prompted_side_is_the_local_base_and_the_api_a_reference(fakes):
    assert backends.active_backend() == "openai"  # the key makes the API the active backend ...
    side = backends.prompted_side()  # ... but never the prompted side
    assert side.client is fakes.clients["local"] and side.model == str(fakes.base_dir)
    assert side.base_model == GPU_BASE and side.backend == "local" and not side.reference
    assert side.label == "Qwen2.5-0.5B-Instruct (local server)"
    ref = backends.reference_side()
    assert ref is not None and ref.reference and ref.client is fakes.clients["openai"]
    assert ref.label == f"reference: {backends.DEFAULT_OPENAI_MODEL} (OpenAI API)"
    assert ref.base_model == backends.DEFAULT_OPENAI_MODEL


def test_lesson_01s_comparison_asks_the_base_and_labels_the_api_column(fakes):
    requests = ["Add a task: call the bank", "I finished the slides"]
    cmp = steering.compare(requests, {"no system prompt": None, "TaskMaster prompt": "You are TaskMaster."},
                           progress=False)
    assert len(fakes.clients["local"].asked) == 4 and not fakes.clients["openai"].asked
    assert {model for model, _ in fakes.clients["local"].asked} == {str(fakes.base_dir)}
    ref = steering.compare_reference(requests, "You are TaskMaster.", progress=False)
    assert list(ref.replies) == [f"reference: {backends.DEFAULT_OPENAI_MODEL} (OpenAI API)"]
    assert [m for m, _ in fakes.clients["openai"].asked] == [backends.DEFAULT_OPENAI_MODEL] * 2
    assert "reference" not in " ".join(cmp.replies)


def test_lesson_06s_prompt_change_goes_to_the_base(fakes):
    change = report.measure_prompt_change()
    assert change["base_model"] == GPU_BASE and change["model"] == str(fakes.base_dir)
    assert len(fakes.clients["local"].asked) == 1 and not fakes.clients["openai"].asked


def test_without_a_key_there_is_no_reference(fakes, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    assert backends.active_backend() == "local"
    assert backends.reference_side() is None and steering.compare_reference(["x"], "p") is None
    assert backends.prompted_side().client is fakes.clients["local"]


def test_a_shared_server_serving_the_base_is_the_prompted_side_not_a_reference(fakes, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://workshop.invalid/v1")
    monkeypatch.setenv("PERSONALAB_MODEL", str(fakes.base_dir))
    monkeypatch.setattr(backends, "local_server", lambda model_dir=None: pytest.fail("no second server"))
    side = backends.prompted_side()
    assert side.client is fakes.clients["remote"] and side.backend == "remote" and not side.reference
    assert backends.reference_side() is None
    monkeypatch.setenv("PERSONALAB_MODEL", "llama3")  # the workshop serves another model: a reference
    assert backends.reference_side().label == "reference: llama3 (shared server)"


def _records(steering_model: str, steering_base: str | None, trained_on: str) -> dict:
    data = {"marker_rates": {"no system prompt": 0.1, "TaskMaster prompt": 0.8}, "n_requests": 12}
    if steering_base:
        data["base_model"] = steering_base
    return {"01/steering": {"model": steering_model, "hardware": "T4", "data": data},
            "06/change": {"model": "/m/qwen", "hardware": "T4", "data": {"total_s": 0.4, "base_model": trained_on}},
            "04/training": {"model": trained_on, "hardware": "T4",
                            "data": {"wall_s": 300.0, "config": {"base_model": trained_on}}}}


def test_report_and_lesson_06_warn_when_side_by_side_numbers_come_from_different_bases():
    # lesson 01 saved with the API model as the prompted side (before this fix), lesson 04 fine-tuned Qwen
    mixed = _records("gpt-4o-mini", None, GPU_BASE)
    bases = evidence.compared_bases(mixed)
    assert bases == {"prompted (lesson 01)": "gpt-4o-mini", "prompt change (lesson 06)": GPU_BASE,
                     "fine-tuned (lesson 04)": GPU_BASE}
    warning = evidence.base_mismatch(bases)
    assert warning.startswith("WARNING: the compared rows sit on different base models")
    assert "prompted (lesson 01) on gpt-4o-mini" in warning and f"fine-tuned (lesson 04) on {GPU_BASE}" in warning
    rep = report.build(mixed)
    assert warning in rep.to_markdown() and "different base models" in rep.to_html()
    assert warning in evidence.Evidence.from_results(mixed).describe()  # lesson 06 prints these lines


def test_no_warning_when_every_compared_number_ran_on_the_base():
    same = _records("/m/qwen", GPU_BASE, GPU_BASE)
    same["05/drift"] = {"model": "m", "hardware": "T4", "data": {"bases": {
        "prompted": GPU_BASE, "fine-tuned": GPU_BASE, "reference: gpt-4o-mini (OpenAI API)": "gpt-4o-mini"}}}
    assert evidence.base_mismatch(evidence.compared_bases(same)) is None
    md = report.build(same).to_markdown()
    assert "WARNING" not in md and "reference row, not part of the comparison" in md
    unstated = _records("/home/u/models/smollm2", None, GPU_BASE)  # a served folder names no base: left out
    assert "prompted (lesson 01)" not in evidence.compared_bases(unstated)
