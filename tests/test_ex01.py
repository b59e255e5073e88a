"""Exercise 01's checks, without a kernel: the example answer passes, typical mistakes get the right message."""

from __future__ import annotations

import json

import pytest

from personalab.checks import ex01
from personalab.errors import InputError

#: an example answer, with markers the fake model below repeats; it passes questions 1 to 3
EXAMPLE_PERSONA = """
name: Sous
role: a prep-list planner for a busy restaurant kitchen
traits:
  - name: Calm
    description: Stay steady when the dinner rush is close
  - name: Precise
    description: Repeat quantities, stations and times exactly
  - name: Brisk
    description: Keep every reply short, like a call across the pass
response_pattern:
  - Answer with a kitchen call
  - Confirm the prep item, quantity and time
  - Name the next station to check
vocabulary:
  use:
    - Yes, chef!
    - Mise en place
    - Heard, on it
  avoid:
    - As an AI language model
    - No worries
rules:
  - Never joke about food safety.
  - Never use more than one exclamation mark.
"""


def grade(q, **ns):
    return q.grade(json.loads(json.dumps(q.export(ns))))


@pytest.fixture
def fake_model(monkeypatch):
    """ex01.ask answers like a persona-following model: the first 'use' phrase opens the reply."""
    calls = []

    def ask(request, system):
        calls.append((request, system))
        if system and "DEAF" not in request:
            return system.split('Vocabulary to use: "')[1].split('"')[0] + " " + request
        return "Okay: " + request

    monkeypatch.setattr(ex01, "ask", ask)
    return calls


def test_example_answer_passes_the_offline_questions():
    spec = ex01.spec_from(EXAMPLE_PERSONA)
    ns = {"my_persona": EXAMPLE_PERSONA, "my_prompt": spec.render()}
    for q in ex01.EXERCISE.questions[:3]:
        assert grade(q, **ns).status == "correct", q.id


def test_spec_errors_name_line_and_field():
    with pytest.raises(InputError) as err:
        ex01.spec_from("name: x\nrole: y\ntraits: []\nresponse_pattern: [a]\nvocabulary:\n  use: [Hi]\n")
    assert (err.value.line, err.value.field) == (3, "traits")
    with pytest.raises(InputError, match="invalid YAML") as err:
        ex01.spec_from("name: x\n role: y\n")
    assert err.value.line == 2
    assert ex01.spec_from(ex01.spec_from(EXAMPLE_PERSONA)).name == "Sous"


def test_q1_messages():
    r = grade(ex01.q1, my_persona={"name": "x", "role": "y"})
    assert r.status == "incorrect" and "missing 'traits', 'response_pattern', 'vocabulary'" in r.reason
    assert "expected `my_persona` to be a dict or a string, got a list" in grade(ex01.q1, my_persona=[1]).reason
    tm = EXAMPLE_PERSONA.replace("name: Sous", "name: TaskMaster")
    r = grade(ex01.q1, my_persona=tm)
    assert (r.points, r.status) == (1, "partial") and "TaskMaster" in r.reason
    assert grade(ex01.q1).status == "not-attempted"


def test_q2_partial_credit_lists_what_is_missing():
    thin = {"name": "Pip", "role": "a gardener", "traits": [{"name": "Calm", "description": "calm"}],
            "response_pattern": ["Answer"], "vocabulary": {"use": ["Roots first, always and forever, my friend"]}}
    r = grade(ex01.q2, my_persona=thin)
    assert (r.points, r.status) == (0, "incorrect")
    assert "too long: 'Roots first, always and forever, my friend'" in r.reason
    thin["traits"] *= 3
    thin["rules"] = ["a", "b"]
    r = grade(ex01.q2, my_persona=thin)
    assert (r.points, r.status) == (1.2, "partial")


def test_q3_render_and_budget(monkeypatch):
    prompt = ex01.spec_from(EXAMPLE_PERSONA).render()
    r = grade(ex01.q3, my_persona=EXAMPLE_PERSONA, my_prompt=prompt + "\nextra")
    assert r.status == "incorrect" and "not the rendering" in r.reason
    monkeypatch.setattr(ex01, "TOKEN_BUDGET", 20)
    r = grade(ex01.q3, my_persona=EXAMPLE_PERSONA, my_prompt=prompt)
    assert (r.points, r.status) == (1, "partial") and "over the budget of 20" in r.reason


def test_token_count_has_a_fallback(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tokens(name, *args, **kwargs):
        if name.endswith("tokens"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tokens)
    assert ex01.count_tokens("Yes, chef! Two onions.") == (7, "estimate: words + punctuation")


def test_q4_grades_the_learners_count_not_the_models_obedience(fake_model):
    reqs = ["Add a task: chop onions", "Order flour", "Mark stock done"]
    r = grade(ex01.q4, my_persona=EXAMPLE_PERSONA, my_requests=reqs, prompt_changed=3)
    assert (r.points, r.status) == (3, "correct")
    assert "with your prompt 3/3 replies carry a marker, without it 0/3" in r.reason
    assert "made the difference on 3 of 3 requests" in r.reason
    # a model that ignores the prompt everywhere: "0" is the honest finding and gets full marks
    deaf = ["DEAF one", "DEAF two", "DEAF three", "DEAF four"]
    r = grade(ex01.q4, my_persona=EXAMPLE_PERSONA, my_requests=deaf, prompt_changed=0)
    assert (r.points, r.status) == (3, "correct") and "made the difference on 0 of 4 requests" in r.reason
    # one request either way is accepted (another machine may tip a near-tie), two are not
    mixed = reqs[:2] + ["DEAF one", "DEAF two", "DEAF three"]
    assert [grade(ex01.q4, my_persona=EXAMPLE_PERSONA, my_requests=mixed, prompt_changed=n).status
            for n in range(6)] == ["incorrect", "correct", "correct", "correct", "incorrect", "incorrect"]
    r = grade(ex01.q4, my_persona=EXAMPLE_PERSONA, my_requests=mixed, prompt_changed=5)
    assert "you wrote that the prompt made the difference on 5 of your 5 requests" in r.reason
    assert "on 2 of" not in r.reason  # a wrong count is not answered with the gradebook's own count


def test_q4_rejects_malformed_answers_and_requests(fake_model):
    reqs = ["Add a task: chop onions", "Order flour", "Mark stock done"]

    def reason(**ns):
        r = grade(ex01.q4, **{"my_persona": EXAMPLE_PERSONA, "my_requests": reqs, "prompt_changed": 3, **ns})
        assert r.points == 0, r
        return r.reason

    assert "expected `prompt_changed` to be an int, got the string '3'" in reason(prompt_changed="3")
    assert "expected `prompt_changed` to be an int, got the bool True" in reason(prompt_changed=True)
    assert "expected `prompt_changed` to be an int, got the number 2.5" in reason(prompt_changed=2.5)
    assert "a whole number from 0 to 3, got 4" in reason(prompt_changed=4)
    assert "a whole number from 0 to 3, got -1" in reason(prompt_changed=-1)
    assert "3 to 5 different requests, got 2" in reason(my_requests=reqs[:2] * 2)
    assert "3 to 5 different requests, got 6" in reason(my_requests=reqs + ["a", "b", "c"])
    assert "non-empty string" in reason(my_requests=reqs + ["  "])
    assert "non-empty string" in reason(my_requests=reqs + [3])
    assert "expected `my_requests` to be a list or a tuple" in reason(my_requests="Order flour")
    assert "`my_persona` does not validate yet" in reason(my_persona={"name": "x"})
    r = grade(ex01.q4, my_persona=EXAMPLE_PERSONA, my_requests=reqs)
    assert r.status == "not-attempted" and "`prompt_changed` is not defined" in r.reason


def test_q4_fails_markers_any_assistant_says(fake_model):
    reqs = ["Add a task: chop onions", "Order flour", "Mark stock done"]
    # "Okay" opens every reply without the prompt: it cannot show what the prompt does, whatever the count
    generic = EXAMPLE_PERSONA.replace("- Yes, chef!", "- Okay")
    for n in (0, 3):
        r = grade(ex01.q4, my_persona=generic, my_requests=reqs, prompt_changed=n)
        assert (r.points, r.status) == (0, "incorrect")
        assert "3/3 replies WITHOUT your prompt already carry one of your markers" in r.reason
    # one such reply is tolerated (and reported)
    ok_requests = ["Okay then, order flour", "Add a task: chop onions", "Mark stock done"]
    r = grade(ex01.q4, my_persona=EXAMPLE_PERSONA.replace("- Heard, on it", "- Okay then"),
              my_requests=ok_requests, prompt_changed=2)
    assert r.status == "correct" and "1 reply without the prompt already carries a marker" in r.reason


def test_q5_accepts_a_measurement_within_one_reply(fake_model):
    reqs = ["Add a task: chop onions", "Order flour", "DEAF request"]
    ok = grade(ex01.q5, my_persona=EXAMPLE_PERSONA, my_requests=reqs, rates={"with": 2 / 3, "without": 0.0})
    assert ok.status == "correct"
    near = grade(ex01.q5, my_persona=EXAMPLE_PERSONA, my_requests=reqs, rates={"with": 1.0, "without": 0.0})
    assert near.status == "correct"  # one reply off is tolerated
    r = grade(ex01.q5, my_persona=EXAMPLE_PERSONA, my_requests=reqs, rates={"with": 0.0, "without": 0.0})
    assert r.status == "incorrect" and "`rates['with']` = 0 is not the share" in r.reason
    assert "0.667" not in r.reason  # a miss does not give away the measured share (nor q4's count)
    assert "with your prompt 2/3 replies carry a marker, without it 0/3" in ok.reason
    r = grade(ex01.q5, my_persona=EXAMPLE_PERSONA, my_requests=reqs, rates={"with": 2, "without": 0.0})
    assert "a number from 0 to 1, got 2" in r.reason
    r = grade(ex01.q5, my_persona=EXAMPLE_PERSONA, my_requests=reqs, rates={"with": "2/3", "without": 0.0})
    assert "expected `rates['with']` to be an int or a float" in r.reason
    r = grade(ex01.q5, my_persona=EXAMPLE_PERSONA, my_requests=reqs, rates=[0.5, 0.5])
    assert "expected `rates` to be a dict with keys 'with', 'without'" in r.reason


def test_backend_failure_is_an_error_row_not_a_crash(monkeypatch):
    def down(request, system):
        raise ConnectionError("server down")

    monkeypatch.setattr(ex01, "ask", down)
    r = grade(ex01.q4, my_persona=EXAMPLE_PERSONA, my_requests=["a", "b", "c"], prompt_changed=0)
    assert r.status == "error" and "server down" in r.reason
