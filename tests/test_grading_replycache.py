"""The grader's reply cache (personalab.grading.replycache): greedy requests generated once, everything else
forwarded untouched; and the grading run puts it between the kernels, the grader's checks and the server."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from personalab.grading import batch
from personalab.grading.replycache import ReplyCache, cache_key


@pytest.fixture
def upstream() -> Iterator[dict]:
    """A fake model server: every reply says how many requests it has answered so far."""
    state = {"n": 0, "auth": []}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["n"] += 1
            state["auth"].append(self.headers.get("Authorization"))
            if body.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in (b"data: one\n\n", b"data: two\n\n"):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
                return
            status = 500 if body.get("fail") else 200
            data = json.dumps({"reply": state["n"]}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            state["n"] += 1
            data = b'{"data": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


def post(url: str, body: dict, path: str = "/chat/completions") -> tuple[int, bytes]:
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer k"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


GREEDY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0, "max_tokens": 60,
          "seed": 0}


def test_greedy_requests_are_generated_once(upstream: dict) -> None:
    with ReplyCache(upstream["url"]) as cache:
        first = post(cache.base_url, GREEDY)
        # the same body with its keys in another order is the same request
        again = post(cache.base_url, dict(reversed(list(GREEDY.items()))))
        assert first == again == (200, b'{"reply": 1}')
        assert upstream["n"] == 1 and (cache.hits, cache.misses) == (1, 1)
        assert upstream["auth"] == ["Bearer k"]  # the caller's key is passed on


@pytest.mark.parametrize("change", [
    {"temperature": 0.7},  # sampled: another reply each time
    {"stream": True},  # streamed: passed through as it comes
    {"n": 2},
    {"max_tokens": 61},  # any other field makes it another request
    {"messages": [{"role": "user", "content": "hello"}]},
])
def test_other_requests_reach_the_server(upstream: dict, change: dict) -> None:
    with ReplyCache(upstream["url"]) as cache:
        post(cache.base_url, GREEDY)
        status, data = post(cache.base_url, GREEDY | change)
        post(cache.base_url, GREEDY | change)
        assert status == 200
        assert upstream["n"] == 3 if "max_tokens" not in change and "messages" not in change else upstream["n"] == 2
        if change.get("stream"):
            assert data == b"data: one\n\ndata: two\n\n"


def test_errors_and_other_endpoints_are_never_kept(upstream: dict) -> None:
    with ReplyCache(upstream["url"]) as cache:
        assert post(cache.base_url, GREEDY | {"fail": 1})[0] == 500
        assert post(cache.base_url, GREEDY | {"fail": 1})[0] == 500
        with urllib.request.urlopen(cache.base_url + "/models", timeout=10) as resp:
            assert json.loads(resp.read()) == {"data": []}
        assert upstream["n"] == 3 and cache.hits == 0


def test_cache_key() -> None:
    body = json.dumps(GREEDY).encode()
    assert cache_key("/v1/chat/completions", body) == cache_key("/v1/chat/completions", json.dumps(
        dict(sorted(GREEDY.items()))).encode())
    assert cache_key("/v1/chat/completions", body) != cache_key("/v1/completions", body)
    assert cache_key("/v1/embeddings", body) is None
    assert cache_key("/v1/chat/completions", b"not json") is None
    assert cache_key("/v1/chat/completions", json.dumps(GREEDY | {"temperature": None}).encode()) is None
    assert cache_key("/v1/chat/completions", json.dumps({k: v for k, v in GREEDY.items()
                                                         if k != "temperature"}).encode()) is None


def test_grading_run_uses_the_cache(upstream: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernels (``where``) and the grader's own checks (OPENAI_BASE_URL) both see the proxy."""
    import os

    monkeypatch.setenv("OPENAI_BASE_URL", upstream["url"])
    where = {"base_url": upstream["url"], "model": "m", "api_key": None}
    with batch.reply_cache(where) as cached:
        assert cached["base_url"] != upstream["url"] and os.environ["OPENAI_BASE_URL"] == cached["base_url"]
        post(cached["base_url"], GREEDY)
        post(os.environ["OPENAI_BASE_URL"], GREEDY)
        assert upstream["n"] == 1
    assert os.environ["OPENAI_BASE_URL"] == upstream["url"]
    for plain in ({"base_url": None}, {"base_url": "https://api.example.com/v1"}):
        with batch.reply_cache(plain) as same:
            assert same == plain
