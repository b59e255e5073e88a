"""Token statistics, marker coverage, cost estimates and plots of a dataset."""

import pytest

from personalab.dataset import stats
from personalab.dataset.counting import approx_counter, token_counter
from personalab.errors import InputError
from personalab.persona import taskmaster


def ex(*pairs):
    return {"messages": [{"role": r, "content": c} for r, c in pairs]}


DATA = [
    ex(("user", "Add x."), ("assistant", "Great choice! Added x.")),
    ex(("user", "Done with y."), ("assistant", "Nice work! y is done."),
       ("user", "Thanks"), ("assistant", "Any time.")),
    ex(("system", "Context: sales."), ("user", "Stuck."), ("assistant", "You should rest. Let's get this done.")),
]


def test_token_stats_with_a_known_counter():
    s = stats.token_stats(DATA, approx_counter())
    # approx: 3 + per message (4 + words and punctuation)
    assert s["lengths"] == [3 + (4 + 3) + (4 + 6), 3 + (4 + 4) + (4 + 7) + (4 + 1) + (4 + 3),
                            3 + (4 + 4) + (4 + 2) + (4 + 11)]
    assert s["n_examples"] == 3 and s["total_tokens"] == sum(s["lengths"])
    assert s["min"] == min(s["lengths"]) and s["max"] == max(s["lengths"])
    assert s["assistant_tokens"] == 6 + 7 + 3 + 11
    assert s["with_system"] == 1 and s["multi_turn"] == 1
    assert s["messages_per_example"] == {"2": 1, "3": 1, "4": 1}
    assert s["exact"] is False and "approximate" in s["tokenizer"]


def test_exact_openai_counts_are_larger_than_the_text():
    counter = token_counter("gpt-4o-mini")
    n = counter(DATA[0]["messages"])
    assert n > counter.text("Add x.") + counter.text("Great choice! Added x.")


def test_marker_coverage():
    cov = stats.marker_coverage(DATA, taskmaster())
    assert cov["assistant_messages"] == 4 and cov["with_marker"] == 3 and cov["coverage"] == 0.75
    assert cov["example_coverage"] == 1.0
    assert cov["per_marker"] == {"Great choice!": 1, "Nice work!": 1, "Let's get this done": 1}
    assert cov["by_turn"] == {"1": 1.0, "2": 0.0}
    assert cov["avoided"] == {"You should": 1}
    assert stats.marker_coverage([], taskmaster())["coverage"] == 0.0


@pytest.mark.parametrize("n, epochs", [(1, 25), (10, 10), (20, 5), (40, 3), (5000, 3), (10_000, 2), (50_000, 1)])
def test_openai_default_epochs(n, epochs):
    assert stats.openai_default_epochs(n) == epochs


def test_training_cost_and_local_estimate():
    cost = stats.openai_training_cost([100, 200, 70_000], 3.0)
    assert cost["epochs"] == 25 and cost["tokens_per_epoch"] == 300 + stats.MAX_TOKENS_PER_EXAMPLE
    assert cost["cost_usd"] == pytest.approx((300 + stats.MAX_TOKENS_PER_EXAMPLE) * 25 * 3.0 / 1e6, abs=1e-4)
    assert stats.openai_training_cost([1000] * 50, 2.0, epochs=2)["cost_usd"] == pytest.approx(0.2)
    local = stats.lora_run_estimate(36_000, 3, tokens_per_second=30, gpu_price_per_hour=0.5)
    assert local["hours"] == pytest.approx(1.0) and local["cost_usd"] == pytest.approx(0.5)
    with pytest.raises(InputError):
        stats.lora_run_estimate(1, 1, tokens_per_second=0)
    with pytest.raises(InputError):
        stats.openai_training_cost([], 3.0)
    with pytest.raises(InputError):
        stats.openai_training_cost([1], -1.0)


def test_price_table_lookup_when_available():
    found = stats.training_price("gpt-4o-mini")
    try:
        import personalab.costs  # noqa: F401
    except ImportError:
        assert found is None
    else:
        price, source = found
        assert price > 0 and source
        assert stats.training_price("no-such-model") is None


def test_plots_and_atomic_save(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    fig = stats.plot_token_histogram([10, 20, 20, 300], max_seq_length=256, tokenizer="t")
    ax = fig.axes[0]
    assert sum(p.get_height() for p in ax.patches) == 4
    assert "max_seq_length = 256" in [t.get_text() for t in ax.get_legend().get_texts()]
    path = stats.save_figure(fig, tmp_path / "h.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and [p.name for p in tmp_path.iterdir()] == ["h.png"]
    fig2 = stats.plot_marker_coverage(stats.marker_coverage(DATA, taskmaster()))
    assert [round(p.get_width(), 2) for p in fig2.axes[0].patches] == [0.25, 0.25, 0.25, 0.75]


def test_a_hub_base_is_counted_with_its_own_tokenizer(monkeypatch):
    """On a GPU profile lesson 03 counts Qwen2.5's tokens (its tokenizer files, not its weights), named by its id."""
    from personalab import models
    from personalab.dataset import counting

    fetched = []

    def fake_fetch(repo_id):
        fetched.append(repo_id)
        return models.model_dir("smollm2")  # a ChatML checkpoint folder standing in for the Hub snapshot

    monkeypatch.setattr(counting, "_hub_tokenizer_dir", fake_fetch)
    counter = counting.base_counter("Qwen/Qwen2.5-0.5B-Instruct")
    assert fetched == ["Qwen/Qwen2.5-0.5B-Instruct"]
    assert counter.name == "Qwen/Qwen2.5-0.5B-Instruct (its chat template)" and counter.exact
    assert counter.conversation([{"role": "user", "content": "Add a task"}]) > 3


def test_a_base_whose_tokenizer_cannot_load_is_an_estimate_that_says_so(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    counter = token_counter("gpt-4o-mini")
    with pytest.raises(InputError, match="could not be fetched"):
        token_counter("no-such-org/no-such-model-anywhere")
    from personalab.dataset import base_counter

    estimate = base_counter("no-such-org/no-such-model-anywhere")
    assert estimate.name.startswith(counter.name)
    assert "an estimate for no-such-org/no-such-model-anywhere" in estimate.name
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("note: counting with the gpt-4o-mini tokenizer")
