"""Latency measurement: exact prompt sizing, aggregation and fit on a simulated clock, and the live server."""

from __future__ import annotations

import types

import pytest

from personalab import latency, tokens
from personalab.errors import InputError


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class FakeClient:
    """Streams replies whose timing is a known function of the prompt: TTFT = a + b * prompt_tokens."""

    def __init__(self, clock: FakeClock, a: float, b: float, per_token: float, out_tokens: int = 8) -> None:
        self.clock, self.a, self.b, self.per_token, self.out_tokens = clock, a, b, per_token, out_tokens
        self.chat = types.SimpleNamespace(completions=types.SimpleNamespace(create=self.create))
        self.calls = []

    def create(self, *, model, messages, max_tokens, stream, **kw):
        assert stream
        self.calls.append(messages)
        prompt = tokens.count_messages(messages, "gpt-4o-mini")

        def gen():
            self.clock.t += self.a + self.b * prompt
            for i in range(self.out_tokens):
                if i:
                    self.clock.t += self.per_token
                yield types.SimpleNamespace(
                    choices=[types.SimpleNamespace(delta=types.SimpleNamespace(content="x"))], usage=None
                )
            usage = types.SimpleNamespace(prompt_tokens=prompt, completion_tokens=self.out_tokens)
            yield types.SimpleNamespace(choices=[], usage=usage)

        return gen()


def test_sized_prompt_is_exact_with_tiktoken():
    tok, how = latency.tokenizer_for("gpt-4o-mini")
    assert how == "exact"
    for n in (1, 150, 1500):
        text, got = latency.sized_prompt(n, tok)
        assert got == n == tokens.count_text(text, "gpt-4o-mini")
    assert latency.sized_prompt(0, tok) == ("", 0)


def test_fit_line():
    f = latency.fit_line([0, 100, 200], [0.01, 0.03, 0.05])
    assert f.slope_s_per_token == pytest.approx(0.0002) and f.intercept_s == pytest.approx(0.01)
    assert f.prefill_tokens_per_s == pytest.approx(5000)
    with pytest.raises(ValueError):
        latency.fit_line([5, 5], [1, 2])


def test_measure_on_simulated_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(latency.time, "perf_counter", clock)
    client = FakeClient(clock, a=0.05, b=0.0002, per_token=0.01)
    table = latency.measure(
        (0, 100, 400), repeats=2, client=client, model="gpt-4o-mini", backend="openai", progress=False
    )
    assert len(table.samples) == 6 and len(client.calls) == 7  # + one warm-up
    rows = table.rows()
    assert [r["system_prompt_tokens"] for r in rows] == [0, 100, 400]
    assert rows[0]["added_ttft_ms"] == 0
    # a system prompt of N tokens adds N text tokens + 4 (role and per-message overhead) to the prompt
    assert rows[2]["prompt_tokens"] - rows[0]["prompt_tokens"] == 404
    assert rows[2]["added_ttft_ms"] == pytest.approx(404 * 0.2, abs=0.1)
    assert rows[1]["total_ms"] - rows[1]["ttft_ms"] == pytest.approx(70, abs=0.1)  # 7 more tokens x 10 ms
    fit = table.fit()
    assert fit.slope_s_per_token == pytest.approx(0.0002) and fit.ms_per_100_tokens == pytest.approx(20)
    assert table.decode_tokens_per_s() == pytest.approx(100)
    d = table.to_dict()
    assert d["prefill_tokens_per_s"] == pytest.approx(5000) and len(d["samples"]) == 6
    assert table.hardware == "OpenAI API (network time included)" and "gpt-4o-mini" in table.label
    assert "added TTFT" in table.table() and repr(table).startswith(table.label)


def test_plot_is_labelled(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    clock = FakeClock()
    monkeypatch.setattr(latency.time, "perf_counter", clock)
    table = latency.measure(
        (0, 200),
        repeats=1,
        client=FakeClient(clock, 0.02, 0.0001, 0.005),
        model="gpt-4o-mini",
        backend="openai",
        progress=False,
    )
    fig = table.plot()
    title = fig.axes[0].get_title()
    assert "gpt-4o-mini" in title and table.hardware in title
    assert fig.axes[0].get_xlabel().startswith("prompt tokens")


def test_bad_arguments():
    with pytest.raises(InputError):
        latency.measure((0, 100), repeats=0, client=object(), model="m")
    with pytest.raises(InputError):
        latency.measure((), client=object(), model="m")
    with pytest.raises(InputError, match="model"):
        latency.measure((0, 100), client=object())


@pytest.mark.server
def test_measure_local_server(request):
    try:
        server = request.getfixturevalue("local_server")
    except pytest.FixtureLookupError:
        pytest.skip("the local_server fixture is not available in this checkout")
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="not-needed")
    table = latency.measure(
        (0, 64, 256),
        repeats=2,
        client=client,
        model=server.model,
        model_dir=server.model_dir,
        backend="local",
        max_tokens=8,
        progress=False,
    )
    rows = table.rows()
    assert [r["system_prompt_tokens"] for r in rows] == [0, 64, 256]
    # the server's prompt_tokens grow by exactly what the local tokenizer + template count
    for r in rows:
        text, _ = latency.sized_prompt(
            r["system_prompt_tokens"], latency.tokenizer_for(server.model, server.model_dir)[0]
        )
        msgs = ([{"role": "system", "content": text}] if text else []) + [
            {"role": "user", "content": latency.USER_MESSAGE}
        ]
        assert r["prompt_tokens"] == tokens.count_local(msgs, server.model_dir)
    assert all(s.total_s > 0 for s in table.samples)
    assert all(s.ttft_s is None or 0 < s.ttft_s <= s.total_s for s in table.samples)


def test_hardware_label():
    local = types.SimpleNamespace(base_url="http://127.0.0.1:8000/v1/")
    remote = types.SimpleNamespace(base_url="http://gpu-box:8000/v1/")
    assert latency.hardware_label("remote", local, "CPU x2") == "CPU x2"
    assert latency.hardware_label("local", object(), "CPU x2") == "CPU x2"
    assert latency.hardware_label("remote", remote, "CPU x2") == "server gpu-box (network time included)"
    assert "OpenAI" in latency.hardware_label(
        "openai", types.SimpleNamespace(base_url="https://api.openai.com/v1"), "x"
    )
