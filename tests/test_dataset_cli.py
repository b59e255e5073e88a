"""``personalab data ...``: exit codes 0 (fine), 1 (the dataset has problems), 2 (bad input)."""

import json

import pytest

from personalab.cli import main
from personalab.dataset.exercise import BROKEN_EVAL_PATH, BROKEN_PATH, PLANTED


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONALAB_HOME", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def test_generate_validate_stats_roundtrip(home, capsys):
    assert main(["data", "generate", "--no-progress"]) == 0
    train, ev = home / "data" / "train.jsonl", home / "data" / "eval.jsonl"
    assert train.exists() and ev.exists()
    assert main(["data", "validate", str(train), "--eval", str(ev), "--max-seq-length", "512"]) == 0
    assert "no problems" in capsys.readouterr().out
    plot, report = home / "hist.png", home / "stats.json"
    assert main(["data", "stats", str(train), "--plot", str(plot), "--price-per-1m", "3.0",
                 "--tokens-per-second", "1000", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "persona markers: 100%" in out and "OpenAI fine-tuning" in out and "local LoRA run" in out
    data = json.loads(report.read_text())
    assert data["openai_training"]["cost_usd"] > 0 and data["persona"]["coverage"] == 1.0
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_generate_one_split_with_system_prompt(home):
    out = home / "hybrid.jsonl"
    assert main(["data", "generate", "--split", "eval", "--out", str(out), "--system", "overlay:sales",
                 "--injection-ratio", "0", "--no-progress"]) == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert first["messages"][0]["role"] == "system" and first["messages"][0]["content"].startswith("Context: ")


def test_validate_broken_file_exits_1_and_names_lines(home, capsys):
    report = home / "r.json"
    code = main(["data", "validate", str(BROKEN_PATH), "--eval", str(BROKEN_EVAL_PATH), "--max-seq-length", "384",
                 "--limit", "0", "--json", str(report)])
    assert code == 1
    out = capsys.readouterr().out
    for line in PLANTED:
        assert f"line {line}" in out
    assert json.loads(report.read_text())["ok"] is False


def test_validate_without_persona_checks(home, tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "Hello."}]}) + "\n")
    assert main(["data", "validate", str(path)]) == 1
    assert main(["data", "validate", str(path), "--persona", "none"]) == 0
    assert main(["data", "validate", str(path), "--persona", "none", "--min-examples", "10"]) == 1


def test_bad_input_exits_2(home, tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path / "missing.jsonl")]) == 2
    assert "dataset file not found" in capsys.readouterr().err
    (tmp_path / "p.yaml").write_text("name: X\n")
    (tmp_path / "d.jsonl").write_text("{}\n")
    assert main(["data", "validate", str(tmp_path / "d.jsonl"), "--persona", str(tmp_path / "p.yaml")]) == 2
    assert main(["data", "generate", "--system", "weird", "--no-progress"]) == 2
    assert main(["data", "stats", str(tmp_path / "d.jsonl"), "--tokenizer", "no-such-model"]) in (1, 2)
    with pytest.raises(SystemExit):
        main(["data", "frobnicate"])
