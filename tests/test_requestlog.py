"""System prompts in request logs (lesson 06): the httpx hook sees each body as sent; no server."""

import httpx
import openai
import pytest

from personalab.errors import InputError
from personalab.requestlog import RequestLog, change_cost, logged_client

REPLY = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
         "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]}


def _client(log):
    base = openai.OpenAI(base_url="http://fake.invalid/v1", api_key="k", max_retries=0)
    return logged_client(base, log, transport=httpx.MockTransport(lambda req: httpx.Response(200, json=REPLY)))


def test_the_log_holds_the_system_prompt_of_every_prompted_request_and_none_otherwise():
    log = RequestLog()
    client = _client(log)
    system = "You are TaskMaster. " * 20
    for q in ("one", "two"):
        client.chat.completions.create(model="base", messages=[{"role": "system", "content": system},
                                                               {"role": "user", "content": q}])
    client.chat.completions.create(model="tuned", messages=[{"role": "user", "content": "three"}])
    assert log.system_prompts() == [system, system, None]
    rows = log.rows(["prompted 1", "prompted 2", "fine-tuned"])
    assert [r["system prompt chars in the log"] for r in rows] == [len(system), len(system), 0]
    assert rows[2]["system prompt starts"] == "(none)" and rows[2]["model"] == "tuned"
    assert rows[0]["system prompt starts"].endswith("…") and rows[1]["user message"] == "two"
    assert log.logged_bytes() > 2 * len(system)


def test_rows_need_one_label_per_request():
    log = RequestLog()
    _client(log).chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])
    with pytest.raises(InputError, match="1 logged requests"):
        log.rows(["a", "b"])


def test_change_cost_uses_the_records_and_says_when_one_is_missing():
    change = {"model": "base", "hardware": "CPU", "data": {"total_s": 0.4}}
    training = {"model": "smol", "hardware": "CPU", "data": {"train_s": 120.0, "wall_s": 150.0, "train_examples": 200}}
    prompt_row, tune_row = change_cost(change, training)
    assert prompt_row["training s"] == 0.0 and prompt_row["until the new voice answers, s"] == 0.4
    assert tune_row["training s"] == 120.0 and tune_row["until the new voice answers, s"] == 150.0
    assert "200 examples" in tune_row["note"]
    prompt_row, tune_row = change_cost(None, None)
    assert prompt_row["until the new voice answers, s"] is None and "lesson 06" in prompt_row["note"]
    assert tune_row["training s"] is None and "lesson 04 has not been run" in tune_row["note"]
