"""Lesson 01's comparison: the same requests with and without a system prompt."""

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
def test_compare_asks_concurrently_and_keeps_the_order(local_server):
    """Machinery only: every (prompt, request) pair is asked once and lands in its place. What the base model
    does with the prompt is a finding the lessons measure, not something a test may fix."""
    import openai

    client = openai.OpenAI(base_url=local_server.base_url, api_key="x")
    requests = heldout_requests()[:3]
    result = compare(requests, {"without": None, "with": persona.taskmaster().render()}, client=client,
                     model=local_server.model, progress=False, max_tokens=12, temperature=0.0, concurrency=6)
    assert list(result.replies) == ["without", "with"]
    assert all(len(v) == 3 and all(isinstance(r, str) and r for r in v) for v in result.replies.values())
