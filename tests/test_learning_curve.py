"""personalab.learning_curve: nested subsets, points from an evaluation, the recorded curve and its errors."""

from __future__ import annotations

import json

import pytest

from personalab import learning_curve as lc
from personalab.errors import InputError


def test_subsets_are_nested_and_fixed_by_the_seed():
    rows = list(range(300))
    sets = lc.subsets(rows, (100, 25, 50), seed=0)
    assert list(sets) == [25, 50, 100]
    assert sets[25] == sets[50][:25] == sets[100][:25]
    assert len(set(sets[100])) == 100
    assert sets == lc.subsets(rows, (25, 50, 100), seed=0)
    assert sets[100] != lc.subsets(rows, (100,), seed=1)[100]


@pytest.mark.parametrize("sizes", [(0,), (301,), (2.5,), (True,)])
def test_subsets_refuse_impossible_sizes(sizes):
    with pytest.raises(InputError, match="between 1 and the 300"):
        lc.subsets(list(range(300)), sizes)


def test_a_point_counts_facts_over_the_requests_that_give_them():
    evaluation = {"n": 4, "has_marker": [True, True, False, True], "fluent": [True, False, True, True],
                  "task_facts": [True, None, False, True]}
    p = lc.point_from_eval(25, evaluation)
    assert (p.examples, p.n, p.markers, p.fluent, p.task_facts, p.facts_n) == (25, 4, 3, 3, 2, 3)
    assert p.rate("markers") == 0.75 and p.rate("task_facts") == pytest.approx(2 / 3)
    low, high = p.interval("markers")
    assert 0 < low < 0.75 < high <= 1


def test_curve_round_trips_summarises_and_plots(tmp_path):
    points = [lc.Point(25, 32, 30, 31, 20, 30), lc.Point(200, 32, 32, 32, 25, 30)]
    curve = lc.LearningCurve(points, "smollm2", {"max_steps": 24}, "CPU x86_64 x2", "2026-12-05")
    back = lc.load(curve.save(tmp_path / "curve.json"))
    assert back == curve
    text = back.summary()
    assert "smollm2" in text and "CPU x86_64 x2" in text and "30 of 32" in text and "20 of 30" in text
    assert back.smallest("markers", 0.9) == 25 and back.smallest("task_facts", 0.8) == 200
    assert back.smallest("fluent", 1.01) is None
    ax = back.plot()
    assert ax.get_xscale() == "log" and len(ax.get_lines()) == 3


def test_missing_and_damaged_curves_say_how_to_record_one(tmp_path):
    with pytest.raises(InputError, match="no recorded learning curve") as err:
        lc.load(tmp_path / "none.json")
    assert "bench_learning_curve.py" in err.value.fix
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        lc.load(bad)
    bad.write_text(json.dumps({"base_model": "x"}))
    with pytest.raises(InputError, match="not a learning curve"):
        lc.load(bad)
