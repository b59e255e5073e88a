"""Generators: the offline one (deterministic, on persona, copies details) and the teacher path."""

import httpx
import openai
import pytest

from personalab.dataset import generation as gen
from personalab.dataset.counting import token_counter
from personalab.dataset.generation import ResponseCache, Teacher, generate, select_requests
from personalab.dataset.offline import offline_reply
from personalab.dataset.requests import Request, Turn, load_requests
from personalab.dataset.validate import validate_examples
from personalab.errors import BackendError, InputError
from personalab.persona import has_marker, taskmaster, uses_avoided


@pytest.fixture(scope="module")
def train():
    return generate("train", progress=False, injection_ratio=0.1)


def test_offline_is_deterministic(train):
    assert generate("train", progress=False, injection_ratio=0.1) == train


def test_offline_format_no_system_and_on_persona(train):
    spec = taskmaster()
    assert len(train) > 250
    for ex in train:
        roles = [m["role"] for m in ex["messages"]]
        assert set(ex) == {"messages"}
        assert roles == ["user", "assistant"] * (len(roles) // 2)
        for m in ex["messages"][1::2]:
            assert has_marker(m["content"], spec), m["content"]
            assert not uses_avoided(m["content"], spec), m["content"]
            assert "!!" not in m["content"]  # the spec's rule: no excessive punctuation


def test_offline_dataset_validates_clean(train):
    ev = generate("eval", progress=False, injection_ratio=0.1)
    report = validate_examples(train, spec=taskmaster(), max_seq_length=512, counter=token_counter(),
                               eval_examples=ev)
    assert report.ok, report.format(10)


def test_offline_copies_task_details():
    spec = taskmaster()
    for r in load_requests("train")[:120]:
        for i, t in enumerate(r.turns):
            reply = offline_reply(spec, t, f"{r.id}/{i}")
            for key in ("task", "due", "new"):
                if key in t.slots and t.intent in ("create", "reschedule", "unstuck", "progress"):
                    assert t.slots[key] in reply, (t.user, reply)
            if t.intent == "prioritise":
                order = [reply.index(f"'{o['task']}'") for o in t.slots["order"]]
                assert order == sorted(order), reply


def test_offline_follows_another_spec():
    spec = taskmaster().model_copy(deep=True)
    spec.name = "Nudge"
    spec.vocabulary.use = ["Onward!", "Tidy move."]
    spec.vocabulary.avoid = ["Logged", "Captured"]
    turn = Turn("Who are you, exactly?", "smalltalk", {"kind": "identity"})
    replies = [offline_reply(spec, turn, f"k{i}") for i in range(20)]
    assert any("Nudge" in r for r in replies)
    create = Turn("Add 'x' for Friday.", "create", {"task": "x", "due": "Friday"})
    for i in range(30):
        r = offline_reply(spec, create, f"c{i}")
        assert has_marker(r, spec) and not uses_avoided(r, spec), r


def test_offline_fails_clearly_when_avoid_list_blocks_everything():
    spec = taskmaster().model_copy(deep=True)
    spec.vocabulary.avoid = ["the", "a", "'"]
    with pytest.raises(InputError, match="vocabulary.avoid"):
        offline_reply(spec, Turn("Add 'x' for Friday.", "create", {"task": "x", "due": "Friday"}), "k")


def test_system_modes():
    reqs = load_requests("eval")[:5]
    spec = taskmaster()
    none = generate(reqs, progress=False)
    persona = generate(reqs, system="persona", progress=False)
    overlay = generate(reqs, system="overlay:marketing", progress=False)
    assert all(ex["messages"][0]["role"] == "user" for ex in none)
    assert all(ex["messages"][0] == {"role": "system", "content": spec.render()} for ex in persona)
    assert overlay[0]["messages"][0]["content"].startswith("Context: ")
    assert [{"messages": ex["messages"][1:]} for ex in persona] == none
    for bad in ("full", "overlay:", "overlay:nope"):
        with pytest.raises(InputError):
            generate(reqs, system=bad, progress=False)


def test_injection_ratio():
    reqs = load_requests("train")
    base = [r for r in reqs if r.category != "injection"]
    assert select_requests(reqs, 0.0) == sorted(base, key=lambda r: gen._order_key(r.id))
    chosen = select_requests(reqs, 0.1)
    inj = [r for r in chosen if r.category == "injection"]
    assert len(inj) == round(0.1 / 0.9 * len(base))
    assert 0.08 < len(inj) / len(chosen) < 0.12
    with pytest.raises(InputError):
        select_requests(reqs, 1.0)


def test_default_paths_and_build(tmp_path, monkeypatch):
    monkeypatch.setenv("PERSONALAB_HOME", str(tmp_path))
    paths = gen.default_dataset_paths()
    assert paths.train == tmp_path / "data" / "train.jsonl" and paths.eval.name == "eval.jsonl"
    gen.build_default_datasets(progress=False)
    train, ev = gen.read_examples(paths.train), gen.read_examples(paths.eval)
    assert len(train) > 250 and 40 < len(ev) < 120
    assert not list((tmp_path / "data").glob(".*tmp"))  # atomic writes leave no temp files


# ------------------------------------------------------------------------------------------- teacher
class _Msg:
    def __init__(self, content):
        self.content = content


class _Resp:
    def __init__(self, content):
        self.choices = [type("C", (), {"message": _Msg(content)})()]


class FakeClient:
    """Answers like an OpenAI client; ``script`` items are replies or exceptions to raise, in order."""

    def __init__(self, script=None, default="Great choice! Done."):
        self.script, self.default, self.calls = list(script or []), default, []
        self.chat = type("Chat", (), {"completions": self})()

    def create(self, *, model, messages, **kw):
        self.calls.append({"model": model, "messages": messages, **kw})
        item = self.script.pop(0) if self.script else self.default
        if isinstance(item, Exception):
            raise item
        return _Resp(item)


def _req():
    return Request("create-test", "create", [Turn("Add 'x' for Friday.", "create", {"task": "x", "due": "Friday"}),
                                             Turn("Thanks!", "smalltalk", {"kind": "thanks"})])


def _teacher(client, tmp_path, **kw):
    return Teacher(client=client, model="teacher-1", cache=ResponseCache(tmp_path / "cache.jsonl"),
                   sleep=lambda s: None, **kw)


def test_teacher_sees_the_persona_and_history(tmp_path):
    client = FakeClient(["Great choice! Added 'x'.", "Nice work! Any time."])
    ex = generate([_req()], method="teacher", teacher=_teacher(client, tmp_path), progress=False)
    assert ex == [{"messages": [
        {"role": "user", "content": "Add 'x' for Friday."},
        {"role": "assistant", "content": "Great choice! Added 'x'."},
        {"role": "user", "content": "Thanks!"}, {"role": "assistant", "content": "Nice work! Any time."}]}]
    first, second = client.calls
    assert first["messages"][0] == {"role": "system", "content": taskmaster().render()}
    assert second["messages"][-2]["content"] == "Great choice! Added 'x'."
    assert first["model"] == "teacher-1" and first["temperature"] == 0.7 and first["max_tokens"] == 200


def test_teacher_cache_makes_a_rerun_free(tmp_path):
    client = FakeClient()
    generate([_req()], method="teacher", teacher=_teacher(client, tmp_path), progress=False)
    assert len(client.calls) == 2
    again = FakeClient()
    t = _teacher(again, tmp_path)
    generate([_req()], method="teacher", teacher=t, progress=False)
    assert again.calls == [] and t.cache_hits == 2
    other = FakeClient()
    generate([_req()], method="teacher", teacher=_teacher(other, tmp_path, temperature=0.2), progress=False)
    assert len(other.calls) == 2  # other sampling settings: another key
    (tmp_path / "cache.jsonl").open("a").write('{"key": "torn')  # an interrupted write is ignored
    assert len(ResponseCache(tmp_path / "cache.jsonl")) == 4


def test_teacher_asks_conversations_at_the_same_time_and_keeps_their_order(tmp_path):
    import threading

    class EchoClient(FakeClient):
        """Replies with the request's first user message, after every asked conversation has started."""

        def __init__(self, n):
            super().__init__()
            self.all_started = threading.Barrier(n, timeout=10)

        def create(self, *, model, messages, **kw):
            if len(messages) == 2:  # the first turn of a conversation: wait until all are in flight
                self.all_started.wait()
            return _Resp("Great choice! " + messages[1]["content"])

    reqs = [Request(f"r{i}", "create", [Turn(f"Add 'task {i}' for Friday.", "create", {})]) for i in range(5)]
    client = EchoClient(len(reqs))
    teacher = _teacher(client, tmp_path, concurrency=len(reqs))
    ex = generate(reqs, method="teacher", teacher=teacher, progress=False)
    order = [r.id for r in select_requests(reqs)]
    assert [e["messages"][0]["content"] for e in ex] == [f"Add 'task {i[1:]}' for Friday." for i in order]
    assert all(e["messages"][1]["content"] == "Great choice! " + e["messages"][0]["content"] for e in ex)
    assert teacher.calls == len(reqs)
    (tmp_path / "other").mkdir()
    one_by_one = _teacher(FakeClient(), tmp_path / "other", concurrency=1)
    assert len(generate(reqs, method="teacher", teacher=one_by_one, progress=False)) == len(reqs)


def _conn_error():
    return openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions"))


def _status(code):
    req = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    return openai.APIStatusError("boom", response=httpx.Response(code, request=req), body=None)


def test_teacher_retries_transient_errors_and_empty_replies(tmp_path):
    slept = []
    client = FakeClient([_conn_error(), _status(503), "", "Great choice! ok"])
    t = Teacher(client=client, model="m", cache=ResponseCache(None), sleep=slept.append, backoff_s=0.5)
    assert t.complete([{"role": "user", "content": "hi"}]) == "Great choice! ok"
    assert len(client.calls) == 4 and slept == [0.5, 1.0, 2.0]


def test_teacher_gives_up_with_a_clear_error(tmp_path):
    t = Teacher(client=FakeClient([_conn_error()] * 5), model="m", cache=ResponseCache(None), sleep=lambda s: None,
                retries=2)
    with pytest.raises(BackendError, match="after 3 attempts"):
        t.complete([{"role": "user", "content": "hi"}])
    t = Teacher(client=FakeClient([_status(401)]), model="m", cache=ResponseCache(None), sleep=lambda s: None)
    with pytest.raises(BackendError, match="APIStatusError"):
        t.complete([{"role": "user", "content": "hi"}])
    assert len(t.client.calls) == 1  # not retried


def test_off_persona_teacher_replies_can_be_replaced(tmp_path):
    client = FakeClient(default="Sure, the task was created.")
    kept = generate([_req()], method="teacher", teacher=_teacher(client, tmp_path), progress=False)
    assert kept[0]["messages"][1]["content"] == "Sure, the task was created."
    fixed = generate([_req()], method="teacher", teacher=_teacher(FakeClient(default="Sure."), tmp_path / "b"),
                     on_off_persona="offline", progress=False)
    assert all(has_marker(m["content"], taskmaster()) for m in fixed[0]["messages"][1::2])


@pytest.mark.server
def test_teacher_against_the_local_server(local_server, tmp_path):
    client = openai.OpenAI(base_url=local_server.base_url, api_key="local")
    t = Teacher(client=client, model=local_server.model, max_tokens=24, cache=ResponseCache(tmp_path / "c.jsonl"))
    reqs = load_requests("eval")[:3]
    ex = generate(reqs, method="teacher", teacher=t, progress=False)
    assert len(ex) == 3
    report = validate_examples(ex)  # format only: a small model's replies need not be on persona
    assert report.ok, report.format()
    calls = t.calls
    t2 = Teacher(client=client, model=local_server.model, max_tokens=24, cache=ResponseCache(tmp_path / "c.jsonl"))
    assert generate(reqs, method="teacher", teacher=t2, progress=False) == ex
    assert t2.calls == 0 and t2.cache_hits == calls

