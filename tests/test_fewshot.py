"""Few-shot prompts (lesson 01): the examples file, fewshot.with_examples and fewshot.measure, no server."""

import pytest

from personalab import costs, fewshot, persona, tokens
from personalab.errors import InputError
from personalab.steering import Comparison, heldout_requests


def test_examples_file_loads_and_avoids_the_heldout_requests():
    examples = fewshot.load_examples()
    assert len(examples) >= 3
    held = {q.lower() for q in heldout_requests()}
    assert not any(ex.user.lower() in held for ex in examples)


def test_with_examples_appends_n_examples_and_leaves_the_spec_alone():
    spec = persona.taskmaster()
    plain = spec.render()
    shot = fewshot.with_examples(spec, 2)
    text = shot.render()
    first, second, third = fewshot.load_examples()[:3]
    assert text.startswith(plain) and first.assistant in text and second.user in text and third.user not in text
    assert spec.render() == plain and spec.examples == []
    assert fewshot.with_examples(spec, 0).render() == plain


@pytest.mark.parametrize("n", [-1, 99])
def test_with_examples_rejects_an_impossible_n(n):
    with pytest.raises(InputError, match="examples asked for"):
        fewshot.with_examples(persona.taskmaster(), n)


def test_bad_examples_file_names_the_field(tmp_path):
    bad = tmp_path / "ex.yaml"
    bad.write_text("examples:\n  - user: hi\n    asistant: typo\n")
    with pytest.raises(InputError) as err:
        fewshot.load_examples(bad)
    assert "ex.yaml" in str(err.value) and "examples.0" in str(err.value)


def test_measure_counts_markers_tokens_and_cost():
    spec = persona.taskmaster()
    plain = spec.render()
    shot = fewshot.with_examples(spec, 3).render()
    requests = ["Add milk to my list.", "I finished the report."]
    replies = {"plain": ["Added milk.", "Good."], "few-shot": ["Nice work! Milk added.", "Great choice! Done."]}
    rows = fewshot.measure(Comparison(requests, replies), {"plain": plain, "few-shot": shot}, spec)
    by = {r["prompt"]: r for r in rows}
    assert by["plain"]["marker rate"] == 0.0 and by["few-shot"]["marker rate"] == 1.0
    key = "prompt tokens (gpt-4o-mini)"
    expected = sum(tokens.count_messages(tokens.persona_messages(shot, q)) for q in requests) / 2
    assert by["few-shot"][key] == expected and by["few-shot"][key] > by["plain"][key]
    rates = costs.load_prices().rates("gpt-4o-mini")
    one = costs.request_cost(tokens.count_messages(tokens.persona_messages(plain, requests[0])),
                             tokens.count_text(replies["plain"][0]), rates)
    two = costs.request_cost(tokens.count_messages(tokens.persona_messages(plain, requests[1])),
                             tokens.count_text(replies["plain"][1]), rates)
    assert by["plain"]["$ per 1,000 requests"] == pytest.approx(1000 * (one + two) / 2)
    assert by["few-shot"]["$ per 1,000 requests"] > by["plain"]["$ per 1,000 requests"]


def test_measure_needs_a_prompt_for_every_label():
    with pytest.raises(InputError, match="no prompt given"):
        fewshot.measure(Comparison(["a"], {"x": ["r"]}), {}, persona.taskmaster())


def test_plot_has_three_panels():
    spec = persona.taskmaster()
    rows = fewshot.measure(Comparison(["a"], {"plain": ["Nice work!"], "few-shot": ["ok"]}),
                           {"plain": spec.render(), "few-shot": fewshot.with_examples(spec, 2).render()}, spec)
    fig = fewshot.plot(rows)
    assert len(fig.axes) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_measure_gives_each_marker_count_its_interval():
    spec = persona.taskmaster()
    requests = ["a", "b", "c", "d"]
    replies = {"plain": ["ok", "ok", "ok", "Nice work!"]}
    [row] = fewshot.measure(Comparison(requests, replies), {"plain": spec.render()}, spec)
    from personalab.general import count_summary, wilson_interval

    assert row["replies with a marker"] == count_summary(1, 4)
    assert (row["marker low"], row["marker high"]) == wilson_interval(1, 4)
    assert row["marker low"] < row["marker rate"] < row["marker high"]
    assert fewshot.summary([row]) == f"plain: {count_summary(1, 4)} replies with a marker"
