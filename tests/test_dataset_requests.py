"""The committed user requests: counts, categories, multi-turn share, a stable hash split, no leakage."""

import json
from collections import Counter

import pytest

from personalab.dataset import requests as rq
from personalab.dataset.validate import shingles, similar_pairs
from personalab.errors import InputError


@pytest.fixture(scope="module")
def built():
    return rq.build_requests()


def test_committed_files_match_the_generator(built, tmp_path):
    rq.write_requests(built, tmp_path)
    for split, path in rq.request_paths().items():
        assert path.read_text(encoding="utf-8") == (tmp_path / f"{split}.jsonl").read_text(encoding="utf-8"), (
            f"{path} is stale: run `python -m personalab.dataset.requests`"
        )


def test_generator_is_deterministic(built):
    assert [r.to_dict() for r in rq.build_requests()] == [r.to_dict() for r in built]


def test_counts_and_categories():
    reqs = rq.load_requests("all")
    cats = Counter(r.category for r in reqs)
    assert set(cats) == set(rq.CATEGORIES)
    assert sum(n for c, n in cats.items() if c != "injection") >= 300
    assert cats == Counter(rq.COUNTS)
    assert len({r.id for r in reqs}) == len(reqs)
    multi = [r for r in reqs if r.multi_turn]
    assert len(multi) >= 0.2 * len(reqs)
    assert {r.category for r in multi} >= {"create", "prioritise", "unstuck", "summarise", "injection"}
    for split in rq.SPLITS:
        assert {r.category for r in rq.load_requests(split)} == set(rq.CATEGORIES), split


def test_split_is_by_id_hash_only():
    train, ev = rq.load_requests("train"), rq.load_requests("eval")
    assert all(r.split == "train" for r in train) and all(r.split == "eval" for r in ev)
    assert 0.12 < len(ev) / (len(ev) + len(train)) < 0.28
    assert rq.split_of("create-00000000") == rq.split_of("create-00000000")
    # the split of an id never depends on which other requests exist
    sample = [f"create-{i:08x}" for i in range(2000)]
    assert [rq.split_of(i) for i in sample] == [rq.split_of(i) for i in reversed(sample)][::-1]
    assert 0.17 < sum(rq.split_of(i) == "eval" for i in sample) / len(sample) < 0.23
    assert all(r.id == rq.make_id(r.category, r.texts) for r in train + ev)


def test_no_eval_request_is_close_to_a_train_request():
    train, ev = rq.load_requests("train"), rq.load_requests("eval")
    pairs = similar_pairs([shingles(" ".join(r.texts)) for r in train], 0.6, [shingles(" ".join(r.texts)) for r in ev])
    assert pairs == []


def test_turns_carry_the_details_they_mention():
    """A task or date the offline reply copies was said by the user, in this turn or an earlier one."""
    for r in rq.load_requests("all"):
        for k, t in enumerate(r.turns):
            assert t.user.strip()
            said = " ".join(r.texts[: k + 1])
            for key in ("task", "due", "new", "old"):
                if key in t.slots:
                    assert t.slots[key] in said, (r.id, key, t.user)
            for item in t.slots.get("order", []) + t.slots.get("items", []):
                assert item["task"] in said and item["due"] in said, (r.id, t.user)


def test_bad_requests_file_names_line(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"id": "x", "category": "create", "turns": []}) + "\nnot json\n")
    with pytest.raises(InputError, match="line 2"):
        rq.load_requests("train", tmp_path)
    (tmp_path / "eval.jsonl").write_text(json.dumps({"id": "x", "category": "gossip", "turns": []}) + "\n")
    with pytest.raises(InputError, match="unknown category"):
        rq.load_requests("eval", tmp_path)
    with pytest.raises(InputError, match="unknown split"):
        rq.load_requests("test")


def test_eval_requests_are_held_out_from_the_embedded_corpus():
    corpus = pytest.importorskip("personalab.embedded.corpus")
    convs = corpus.build_corpus(n=1500, seed=0)
    users = [m["content"] for c in convs for m in c if m["role"] == "user"]
    ev = [t.user for r in rq.load_requests("eval") for t in r.turns]
    assert not set(ev) & set(users)
    assert similar_pairs([shingles(u) for u in ev], 0.8, [shingles(u) for u in users]) == []
