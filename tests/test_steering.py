"""The system prompt measurably steers the embedded model (issue: 'a test asserts a marker-rate difference')."""

import pytest

from personalab import persona
from personalab.steering import Comparison, compare, heldout_requests


def test_heldout_requests_are_loaded_without_comments():
    qs = heldout_requests()
    assert len(qs) >= 10 and not any(q.startswith("#") for q in qs)


def test_comparison_rates_and_html():
    spec = persona.taskmaster()
    c = Comparison(["a", "b"], {"none": ["Task added.", "Done."], "tm": ["Great choice! Added.", "Done."]})
    assert c.marker_rates(spec) == {"none": 0.0, "tm": 0.5}
    assert "<table>" in c.to_html() and "Great choice!" in c.to_html()


@pytest.mark.server
def test_taskmaster_prompt_steers_the_embedded_model(local_server):
    spec = persona.taskmaster()
    import openai

    client = openai.OpenAI(base_url=local_server.base_url, api_key="x")
    requests = heldout_requests()
    # Control: the same prompt with other catchphrases, so the gap is TaskMaster's vocabulary being
    # followed, not just "any persona prompt" switching the model into a persona style.
    control = spec.model_copy(deep=True)
    control.name, control.vocabulary.use = "PlanPal", ["Solid plan!", "Nice start!"]
    result = compare(
        requests,
        {"without": None, "with": spec.render(), "control": control.render()},
        client=client,
        model=local_server.model,
        progress=False,
    )
    rates = result.marker_rates(spec)
    print(
        f"\nTaskMaster marker rate on {len(requests)} held-out requests: "
        f"with prompt {rates['with']:.2f}, without {rates['without']:.2f}, "
        f"with a control persona's prompt {rates['control']:.2f}"
    )
    assert rates["with"] - rates["without"] >= 0.5, rates
    assert rates["with"] - rates["control"] >= 0.5, rates
