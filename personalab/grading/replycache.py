"""The grader's reply cache: an HTTP proxy in front of the model server that answers a repeated greedy request from
memory.

Where exercise 01's time went (profiled on the CPU base, one notebook alone): its comparison cell asks the model
10 requests at once (12 s, the server batches them), then ``q4.check()`` in the kernel asks the *same* 10 requests
again, one at a time (25 s), and the grader asks them a third time to recompute the verdict (another 25 s). With
``--jobs 2`` on 2 cores each of these takes about twice as long. The three rounds are one round of work: greedy
decoding (temperature 0) of the same request on the same model gives the same reply.

So every sandbox (through the relay) and the grader's own checks talk to this proxy, not to the server. A chat or
completion request with ``temperature`` 0 and no streaming is keyed by its whole JSON body (model, messages,
``max_tokens``, seed, everything); the first time it is forwarded to the server, and the server's reply is kept
for the rest of the grading run. Anything else (sampling, streaming, other endpoints) is forwarded untouched, so
a latency measurement still measures the server.

Why this does not weaken a check: the cache holds only what the grader's own model server answered to a
request. A submission can choose which requests are asked first, never what the reply is; the grader's verdict
still rests on replies it asked for itself, they just may have been computed once already. Nothing is written to
disk, and the cache lives only as long as the grading run.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: Paths whose greedy, non-streaming requests are cached.
CACHED_PATHS = ("/chat/completions", "/completions")
#: Headers that belong to one hop of the connection, never forwarded.
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
        "content-length", "host", "accept-encoding"}
#: Upstream read limit: a request that takes longer is answered 504 (the kernel's own cell limit is shorter).
UPSTREAM_TIMEOUT = 900.0


def cache_key(path: str, body: bytes) -> str | None:
    """The cache key of a request, or None when its reply must not be reused (not greedy, streamed, several
    choices, another endpoint, or a body that is not a JSON object)."""
    if not path.split("?")[0].endswith(CACHED_PATHS):
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("stream") or data.get("n", 1) != 1:
        return None
    temperature = data.get("temperature")
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature != 0:
        return None
    canonical = json.dumps([path, data], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _host_port(upstream: str) -> tuple[str, int]:
    parts = urlsplit(upstream)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"the reply cache proxies http:// model servers only, not {upstream}")
    return parts.hostname, parts.port or 80


def requested_model(body: bytes) -> str | None:
    """The ``model`` a request's JSON body names (None when it names none)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) else None


class ReplyCache:
    """A caching proxy for the model server at ``upstream`` (an ``http://`` base URL such as
    ``http://127.0.0.1:8000/v1``); ``base_url`` is where clients reach it. ``routes`` sends the requests that name
    another model to that model's own server ({model name: http base URL}; exercise 05's fine-tuned model), so one
    address serves every model of the grading run. Use as a context manager."""

    def __init__(self, upstream: str, routes: dict[str, str] | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream = _host_port(upstream)
        self.routes = {model: _host_port(url) for model, url in (routes or {}).items()}
        self.replies: dict[str, tuple[int, str, bytes]] = {}
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        port = self.server.server_address[1]
        self.base_url = urlunsplit(("http", f"127.0.0.1:{port}", parts.path, parts.query, ""))
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def get(self, key: str) -> tuple[int, str, bytes] | None:
        with self._lock:
            found = self.replies.get(key)
            if found is not None:
                self.hits += 1
            return found

    def put(self, key: str, reply: tuple[int, str, bytes]) -> None:
        with self._lock:
            self.misses += 1
            self.replies.setdefault(key, reply)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler(cache: ReplyCache) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: no log per request
            return

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            key = cache_key(self.path, body) if self.command == "POST" else None
            if key is not None and (found := cache.get(key)) is not None:
                self._reply(*found)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            model = requested_model(body) if cache.routes and body else None
            conn = http.client.HTTPConnection(*cache.routes.get(model or "", cache.upstream), timeout=UPSTREAM_TIMEOUT)
            try:
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                ctype = resp.getheader("Content-Type", "application/json")
                if key is None and "text/event-stream" in ctype:
                    self._stream(resp, ctype)
                    return
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                msg = json.dumps({"error": {"message": f"model server unreachable ({type(exc).__name__})"}})
                self._reply(502, "application/json", msg.encode())
                return
            finally:
                conn.close()
            if key is not None and resp.status == 200:
                cache.put(key, (resp.status, ctype, data))
            self._reply(resp.status, ctype, data)

        def _reply(self, status: int, ctype: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, resp: http.client.HTTPResponse, ctype: str) -> None:
            """Pass a streamed reply on as it arrives (time to first token stays the server's)."""
            self.send_response(resp.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := resp.read1(65536):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_PUT = do_DELETE = _relay  # noqa: N815 - the names http.server calls

    return Handler


__all__ = ["CACHED_PATHS", "ReplyCache", "cache_key", "requested_model"]
