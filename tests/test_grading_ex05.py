"""Exercise 05 graded fast: the kernels use the grader's shared servers (one address, routed by model, behind the
reply cache) instead of starting their own, and the fluency gate's perplexity readings are kept by content, so the
labelled sample is read once per grading run, not once per notebook."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from server_watch import ServerWatch

from personalab import backends, quality
from personalab.cache import ResponseCache
from personalab.evaluate.fluency import FluencyGate
from personalab.grading import batch
from personalab.grading.assets import Assets
from personalab.grading.replycache import ReplyCache, requested_model


def fake_server(name: str) -> tuple[ThreadingHTTPServer, list[str]]:
    """A model server that answers every request with its own name (and records the models asked for)."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append(body.get("model"))
            data = json.dumps({"server": name}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, asked


@pytest.fixture
def two_servers() -> Iterator[dict]:
    base, base_asked = fake_server("base")
    tuned, tuned_asked = fake_server("tuned")
    yield {"base": f"http://127.0.0.1:{base.server_address[1]}/v1", "tuned": f"http://127.0.0.1:{tuned.server_address[1]}/v1",
           "base_asked": base_asked, "tuned_asked": tuned_asked}
    for s in (base, tuned):
        s.shutdown()
        s.server_close()


def ask(url: str, model: str, temperature: float = 0.0) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "temperature": temperature}
    req = urllib.request.Request(url + "/chat/completions", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_reply_cache_routes_by_model(two_servers: dict) -> None:
    with ReplyCache(two_servers["base"], routes={"/models/tuned": two_servers["tuned"]}) as cache:
        assert ask(cache.base_url, "/models/base") == {"server": "base"}
        assert ask(cache.base_url, "/models/tuned") == {"server": "tuned"}
        assert ask(cache.base_url, "/models/tuned") == {"server": "tuned"}  # greedy: from memory
        assert ask(cache.base_url, "/models/tuned", temperature=0.7) == {"server": "tuned"}
        assert ask(cache.base_url, "other") == {"server": "base"}  # an unknown model: the main server
    assert two_servers["base_asked"] == ["/models/base", "other"]
    assert two_servers["tuned_asked"] == ["/models/tuned", "/models/tuned"]
    assert requested_model(b'{"model": "m"}') == "m"
    assert requested_model(b"[1]") is None and requested_model(b"not json") is None


def test_grading_run_lists_the_served_models(two_servers: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", two_servers["base"])
    where = {"base_url": two_servers["base"], "model": "/models/base", "api_key": None,
             "routes": {"/models/tuned": two_servers["tuned"]}}
    with batch.reply_cache(where) as cached:
        assert cached["served"] == ["/models/base", "/models/tuned"] and "routes" not in cached
        assert ask(cached["base_url"], "/models/tuned") == {"server": "tuned"}


def test_local_server_uses_the_server_that_already_serves_the_model(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    served, other = tmp_path / "tuned", tmp_path / "other"
    monkeypatch.setattr(backends, "_local_servers", {})
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv(backends.SERVED_ENV, f"{tmp_path / 'base'}:{served}")
    found = backends.local_server(served)
    assert found == backends.ServedElsewhere("http://127.0.0.1:9/v1", str(served.resolve()))
    assert backends.client("local", model_dir=served).base_url == "http://127.0.0.1:9/v1/"
    assert backends.served_elsewhere(other.resolve()) is None
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert backends.served_elsewhere(served.resolve()) is None  # listed, but no server to ask


def test_perplexity_readings_are_kept_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = tmp_path / "ref"
    reference.mkdir()
    (reference / "config.json").write_text("{}", encoding="utf-8")
    read: list[list[str]] = []

    def fake_perplexity(replies: list[str], model: object) -> list[float]:
        read.append(list(replies))
        return [float(len(r)) for r in replies]

    monkeypatch.setattr(quality, "perplexity", fake_perplexity)
    store = tmp_path / "perplexity.jsonl"
    replies = ["Let's get this done: the report is due Friday.", "Nice work! What is next on your list?"]
    first = FluencyGate(reference=reference, store=ResponseCache(store)).check_many(replies)
    # another process (a notebook in its sandbox, with a copy of the file) reads nothing again
    again = FluencyGate(reference=reference, store=ResponseCache(store)).check_many([*replies, "Done. Next?"])
    assert read == [replies, ["Done. Next?"]]
    assert [v.measures["perplexity"] for v in first] == [v.measures["perplexity"] for v in again[:2]]
    # new weights in the reference folder: its readings are not reused
    (reference / "model.safetensors").write_text("new weights", encoding="utf-8")
    FluencyGate(reference=reference, store=ResponseCache(store)).check_many(replies[:1])
    assert read[-1] == replies[:1]


def test_assets_copy_the_perplexity_readings(tmp_path: Path) -> None:
    from personalab import sandbox
    from personalab.evaluate.fluency import PERPLEXITY_CACHE_ENV
    from personalab.grading.run import shared_env

    readings = tmp_path / "perplexity.jsonl"
    readings.write_text('{"key": "k", "model": "m", "response": "12.5"}\n', encoding="utf-8")
    copied = Assets(finetuned_dir=tmp_path, perplexity_cache=readings).copy_into(tmp_path / "job")
    assert copied["perplexity"].read_text(encoding="utf-8") == readings.read_text(encoding="utf-8")
    (tmp_path / "job3").mkdir()
    env = shared_env(Assets(finetuned_dir=tmp_path, perplexity_cache=readings), tmp_path / "job3")
    assert env[PERPLEXITY_CACHE_ENV] == f"{sandbox.JOB}/cache/perplexity.jsonl"
    assert "perplexity" not in Assets(finetuned_dir=tmp_path, perplexity_cache=tmp_path / "none").copy_into(
        tmp_path / "job2")


def test_beside_a_workshop_server_the_grader_serves_exercise_05s_models(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With OPENAI_BASE_URL (a workshop server), exercise 05's base and fine-tuned models are served once by the
    grader and routed by name, instead of by two servers in every sandbox."""
    from personalab import server as server_mod

    started: list[Path] = []

    class FakeServer:
        def __init__(self, model_dir: Path) -> None:
            self.model, self.base_url = str(model_dir), f"http://127.0.0.1:{9000 + len(started)}/v1"
            started.append(Path(model_dir))

        def __enter__(self) -> FakeServer:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    base = tmp_path / "base"
    monkeypatch.setattr(server_mod, "LocalServer", FakeServer)
    monkeypatch.setattr(backends, "base_model_dir", lambda name: base)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.5:8000/v1")
    monkeypatch.setenv("PERSONALAB_MODEL", "workshop-model")
    tuned = tmp_path / "tuned"
    with batch.model_server(True, [tuned]) as where:
        assert where["base_url"] == "http://10.0.0.5:8000/v1" and where["model"] == "workshop-model"
        assert where["routes"] == {str(base.resolve()): "http://127.0.0.1:9000/v1",
                                   str(tuned.resolve()): "http://127.0.0.1:9001/v1"}
    with batch.model_server(True) as where:  # no exercise 05 in the class: nothing started
        assert "routes" not in where and len(started) == 2
    monkeypatch.setenv("PERSONALAB_MODEL", str(base.resolve()))  # the workshop serves the base itself
    with batch.model_server(True, [tuned]) as where:
        assert list(where["routes"]) == [str(tuned.resolve())]


@pytest.mark.slow
@pytest.mark.server
@pytest.mark.after_lessons
def test_the_solution_gets_full_marks_under_two_jobs(tmp_path: Path, local_server) -> None:
    """Exercise 05's model solution (instructor cells removed, as a learner hands it in), two learners graded as an
    instructor grades them (sandboxed where bubblewrap works, 2 jobs, the default cell limits) after the lessons
    saved lesson 04's model: full marks, no cell timed out, and no kernel started a model server of its own."""
    import nbformat

    from personalab import grading
    from personalab.config import REPO_ROOT

    nb = nbformat.read(REPO_ROOT / "solutions" / "05_drift_and_injection.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if not {"instructor", "hidden"} & set(c.metadata.get("tags", []))]
    for learner in ("ana", "ben"):
        (tmp_path / "class" / learner).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "class" / learner / "05_drift_and_injection.ipynb")
    with ServerWatch(local_server.process.pid) as watch:
        reports = grading.grade_folder(tmp_path / "class", tmp_path / "g.csv", jobs=2, progress=False,
                                       isolation=grading.resolve_isolation("auto"))
    assert watch.in_workers == set(), f"a learner's kernel started a model server: {watch.in_workers}"
    assert len(reports) == 2
    for rep in reports:
        assert rep.cell_errors == [], rep.cell_errors
        lost = [(r.question, r.reason) for r in rep.results if r.points != r.max_points]
        assert not lost, lost
