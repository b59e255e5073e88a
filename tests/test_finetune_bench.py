"""personalab.finetune.bench: the recorded Unsloth vs PEFT + TRL table lesson 04 shows."""

from __future__ import annotations

import json

import pytest

from personalab.errors import InputError
from personalab.finetune import recorded_comparison


def _run(backend: str, step: float, mb: float) -> dict:
    return {"backend": backend, "marker_rate_after": 0.9,
            "metrics": {"time_per_step_s": step, "tokens_per_second": 1000 / step, "peak_memory_mb": mb,
                        "final_loss": 5.2}}


def test_missing_records_say_not_yet_measured(tmp_path):
    table = recorded_comparison(tmp_path)
    assert [r["backend"] for r in table.rows] == ["unsloth", "peft", "unsloth", "peft"]
    assert all(r["s/step"] == "not yet measured" for r in table.rows)
    assert table.ratio("cpu") is None and table.ratio("gpu") is None
    assert "not yet measured" in str(table) and repr(table) == str(table) and "<table>" in table._repr_html_()


def test_a_record_gives_rows_and_ratios(tmp_path):
    rec = {"date": "2026-11-29 10:00", "hardware": "CPU x86_64 x2 (Linux)", "threads": 1,
           "runs": [_run("unsloth", 0.25, 1300), _run("peft", 0.5, 650), {"backend": "mlx", "error": "exit 1"}]}
    (tmp_path / "finetune_cpu.json").write_text(json.dumps(rec))
    table = recorded_comparison(tmp_path)
    cpu = [r for r in table.rows if r["machine"].startswith("CPU x86_64")]
    assert [r["s/step"] for r in cpu] == ["0.250", "0.500", "failed"] and "1 thread" in cpu[0]["machine"]
    assert table.ratio("cpu") == pytest.approx(2.0) and table.ratio("cpu", "peak_memory_mb") == pytest.approx(0.5)
    assert table.ratio("gpu") is None and table.rows[-1]["machine"] == "GPU"


def test_an_old_or_broken_record_is_a_clear_error(tmp_path):
    path = tmp_path / "finetune_cpu.json"
    path.write_text(json.dumps({"metrics": {}}))  # the PEFT-only format of the earlier script
    with pytest.raises(InputError, match="runs") as err:
        recorded_comparison(tmp_path)
    assert "bench_finetune_cpu.py --record" in err.value.fix and err.value.path == str(path)
    path.write_text("{")
    with pytest.raises(InputError, match="JSON"):
        recorded_comparison(tmp_path)
