"""One base model per comparison: lesson 05's prompted, fine-tuned and hybrid rows share the base lesson 04
fine-tuned; an API model or shared server is only an extra, labelled reference row. The 0.7M embedded test
stand-in plays lesson 04's base where a fast one is enough."""

from __future__ import annotations

from pathlib import Path

import pytest

from personalab import backends, config, results
from personalab.embedded import ensure_built
from personalab.evaluate import targets as T
from personalab.evaluate.runner import Target


@pytest.fixture
def course(tmp_path, monkeypatch):
    """Results in a temp folder, lesson 04 'done' on the embedded model (standing in for the GPU base)."""
    monkeypatch.setenv("PERSONALAB_RESULTS", str(tmp_path / "results"))
    for var in ("OPENAI_BASE_URL", "PERSONALAB_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    base = str(ensure_built())
    results.save("04", "training", {"config": {"base_model": base}, "merged_dir": base}, model=base)
    return base


def _compared(targets: list[Target]) -> list[Target]:
    return [t for t in targets if not t.name.startswith("reference")]


@pytest.mark.server
def test_local_backend_compares_three_rows_on_one_base(course, monkeypatch):
    monkeypatch.setenv("PERSONALAB_BACKEND", "local")
    rows = T.course_targets(finetuned_dir=course)
    assert [t.name for t in rows] == ["prompted", "fine-tuned", "hybrid (Marketing)"]
    assert {t.base_model for t in rows} == {course}
    assert rows[0].client.base_url == rows[1].client.base_url  # the same local server, the same weights
    assert T.mismatched_bases(rows) is None
    mine = Target("my api", None, "gpt-4o-mini")
    with_base = T.course_targets(finetuned_dir=course, base=mine)
    assert with_base[0].name == "prompted" and with_base[-1].name == "reference: my api"
    assert with_base[-1].base_model == "gpt-4o-mini" and mine.name == "my api"  # the caller's target is untouched


@pytest.mark.server
def test_shared_server_is_a_reference_row_not_the_prompted_side(course, monkeypatch, local_server, tmp_path):
    """A shared server serving another model is a reference row; one serving the base itself adds nothing."""
    monkeypatch.setenv("PERSONALAB_BACKEND", "remote")
    monkeypatch.setenv("OPENAI_BASE_URL", local_server.base_url)
    monkeypatch.setenv("PERSONALAB_MODEL", local_server.model)
    # lesson 04 fine-tuned the model the shared server serves: that server adds no row
    results.save("04", "training", {"config": {"base_model": local_server.model}, "merged_dir": course},
                 model=local_server.model)
    monkeypatch.setattr(T, "local_target", lambda name, model_dir, *a, **kw: Target(name, None, "gpt-4o-mini", **kw))
    assert [t.name for t in T.course_targets(finetuned_dir=course)] == ["prompted", "fine-tuned", "hybrid (Marketing)"]
    other = tmp_path / "other-base"
    other.mkdir()
    (other / "config.json").write_text("{}")
    results.save("04", "training", {"config": {"base_model": str(other)}}, model=str(other))
    rows = T.course_targets(finetuned_dir=course)
    assert [t.name for t in rows] == ["prompted", "fine-tuned", "hybrid (Marketing)",
                                      f"reference: {Path(local_server.model).name} (shared server)"]
    assert {t.base_model for t in _compared(rows)} == {str(other)}
    assert rows[3].base_model == local_server.model and T.mismatched_bases(rows) is None


@pytest.mark.server
def test_api_key_adds_a_labelled_reference_row(course, monkeypatch, local_server):
    """The 'OpenAI API' is a local fake: the openai client honours OPENAI_BASE_URL; no real key is used."""
    monkeypatch.setenv("PERSONALAB_BACKEND", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake-not-a-key")
    monkeypatch.setenv("OPENAI_BASE_URL", local_server.base_url)
    rows = T.course_targets(finetuned_dir=course)
    assert rows[0].name == "prompted" and rows[0].base_model == course
    assert rows[-1].name == f"reference: {backends.DEFAULT_OPENAI_MODEL} (OpenAI API)"
    assert rows[-1].base_model == backends.DEFAULT_OPENAI_MODEL
    assert len(_compared(rows)) == 3


def test_mismatched_bases_are_flagged():
    rows = [
        Target("prompted", None, "gpt-4o-mini", base_model="gpt-4o-mini"),
        Target("fine-tuned", None, "gpt-4o-mini", base_model="Qwen2.5-0.5B-Instruct"),
        Target("reference: x (OpenAI API)", None, "gpt-4o-mini", base_model="gpt-4o-mini"),
    ]
    warning = T.mismatched_bases(rows)
    assert warning and "prompted on gpt-4o-mini" in warning and "fine-tuned on Qwen2.5-0.5B-Instruct" in warning
    assert T.mismatched_bases(rows[:1] + rows[2:]) is None


def test_finetune_base_defaults_to_the_profile_base(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONALAB_RESULTS", str(tmp_path))
    assert T.finetune_base() == "smollm2"  # the cpu profile (tests force CPU)


def test_gpu_profile_without_key_serves_the_finetune_base(monkeypatch, tmp_path):
    """A GPU runtime without a key: the local server gets the model lesson 04 fine-tunes (a Hub id, downloaded
    once; here the download is faked with the embedded model standing in for it)."""
    import huggingface_hub

    from personalab.config import GPU_BASE_MODEL

    asked = []
    monkeypatch.setenv("PERSONALAB_PROFILE", "gpu")
    monkeypatch.delenv("PERSONALAB_LOCAL_MODEL", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo: asked.append(repo) or str(ensure_built()))
    assert config.base_model() == GPU_BASE_MODEL
    assert backends._default_local_model_dir() == ensure_built()
    assert asked == [GPU_BASE_MODEL]
    monkeypatch.setenv("PERSONALAB_PROFILE", "cpu")
    assert config.base_model() == "smollm2"


def test_report_names_every_rows_base_and_flags_a_mismatch():
    from personalab import report

    def records(bases):
        return {"05/drift": {"model": "m", "hardware": "cpu", "data": {"bases": bases}}}

    same = report.build(records({"prompted": "embedded", "fine-tuned": "embedded", "hybrid (Marketing)": "embedded",
                                 "reference: gpt-4o-mini (OpenAI API)": "gpt-4o-mini"}), framework=False)
    md = same.to_markdown()
    assert "- prompted: embedded" in md and "reference row, not part of the comparison" in md
    assert "WARNING" not in md
    mixed = report.build(records({"prompted": "gpt-4o-mini", "fine-tuned": "unsloth/Qwen2.5-0.5B-Instruct"}),
                         framework=False)
    assert "WARNING: the compared rows sit on different base models" in mixed.to_markdown()
    assert "different base models" in mixed.to_html()
