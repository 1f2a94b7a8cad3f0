"""The starter decision on hand-made results: a clear pass, and each criterion failing on its own."""

from __future__ import annotations

import functools
import json

import pytest

from hotfix_engine.evaluation import stats
from hotfix_engine.starter import StarterGoal, decide_starter, write_evidence

N = 70


def paired(before: list[float], after: list[float]) -> dict:
    return dict(_paired(tuple(before), tuple(after)))


@functools.lru_cache
def _paired(before: tuple[float, ...], after: tuple[float, ...]) -> tuple:
    """The permutation test is slow in pure Python: each hand-made comparison is computed once."""
    return tuple(stats.compare_paired(before, after).to_json().items())


def passes(before: list[bool], after: list[bool]) -> dict:
    return {
        "pass_rate": paired([float(x) for x in before], [float(x) for x in after]),
        "pass@1": paired([float(x) for x in before], [float(x) for x in after]),
        "p_mcnemar": stats.mcnemar_exact(before, after),
    }


def results(
    buggy_after: float = 0.1,
    fixed_after: float = 0.4,
    humaneval_after: int = 30,
    lines_after: int = 50,
    perplexity_after: float = 7.3,
    pairs: int = N,
) -> dict:
    """Base: buggy 0.5 and fixed 0.1 on every pair; 30 of 100 HumanEval, 50 of 100 lines; ppl 7.2."""
    he_before = [i < 30 for i in range(100)]
    lines_before = [i < 50 for i in range(100)]
    return {
        "before": "base",
        "after": "candidate",
        "pair_sets": {
            "test": {
                "buggy": paired([0.5] * pairs, [buggy_after] * pairs),
                "fixed": paired([0.1] * pairs, [fixed_after] * pairs),
            }
        },
        "humaneval": passes(he_before, [i < humaneval_after for i in range(100)]),
        "lines": passes(lines_before, [i < lines_after for i in range(100)]),
        "perplexity": {
            "before": 7.2,
            "after": perplexity_after,
            "relative": stats.relative_change(7.2, perplexity_after),
        },
    }


def test_a_clear_pass():
    decision = decide_starter(results(), train_pairs=240)
    assert decision.meets, decision.reasons
    assert decision.failed() == []
    assert set(decision.reasons) == {
        "buggy_rate",
        "fixed_rate",
        "humaneval",
        "lines",
        "perplexity",
        "evidence",
    }
    assert "50.0% -> 10.0%" in decision.reasons["buggy_rate"]


def test_a_small_insignificant_retention_drop_still_passes():
    decision = decide_starter(results(humaneval_after=28, lines_after=47), train_pairs=240)
    assert decision.meets, decision.reasons


@pytest.mark.parametrize(
    ("changes", "failing", "words"),
    [
        ({"buggy_after": 0.3}, "buggy_rate", "not at most 0.5x"),
        ({"fixed_after": 0.15}, "fixed_rate", "not at least 2x"),
        ({"humaneval_after": 10}, "humaneval", "significantly lower"),
        ({"lines_after": 25}, "lines", "significantly lower"),
        ({"perplexity_after": 7.4}, "perplexity", "above +2%"),
        ({"pairs": 40}, "evidence", "40 held-out pairs (needs 60)"),
    ],
)
def test_one_criterion_failing_fails_the_decision_and_says_why(changes, failing, words):
    decision = decide_starter(results(**changes), train_pairs=240)
    assert not decision.meets
    assert decision.failed() == [failing]
    assert words in decision.reasons[failing]


def test_a_large_change_on_few_pairs_is_not_significant():
    """Halved and doubled on 5 pairs, but 5 pairs cannot give p < 0.05 (the exact sign-flip p is 1/16)."""
    comparison = results(pairs=5)
    goal = StarterGoal(min_test_pairs=1)
    comparison["pair_sets"]["test"]["buggy"] = paired([0.5, 0.4, 0.5, 0.6, 0.5], [0.1, 0.2, 0.1, 0.6, 0.1])
    comparison["pair_sets"]["test"]["fixed"] = paired([0.1] * 5, [0.5, 0.3, 0.4, 0.1, 0.6])
    decision = decide_starter(comparison, goal)
    assert decision.failed() == ["buggy_rate", "fixed_rate"]
    assert all("not significant" in decision.reasons[name] for name in decision.failed())


def test_missing_evidence_fails_and_too_few_training_pairs_count():
    comparison = results()
    del comparison["humaneval"]
    decision = decide_starter(comparison, train_pairs=150)
    assert decision.failed() == ["humaneval", "evidence"]
    assert decision.reasons["humaneval"] == "not measured"
    assert "150 training pairs (needs 200)" in decision.reasons["evidence"]
    empty = decide_starter({})
    assert not empty.meets and len(empty.failed()) == 6


def test_a_base_that_never_writes_the_bug_cannot_be_halved():
    comparison = results()
    comparison["pair_sets"]["test"]["buggy"] = paired([0.0] * N, [0.0] * N)
    decision = decide_starter(comparison, train_pairs=240)
    assert decision.failed() == ["buggy_rate"]


def test_evidence_file(tmp_path):
    comparison = results()
    decision = decide_starter(comparison, train_pairs=240)
    path = write_evidence(
        tmp_path / "starter" / "evidence.json", decision, comparison, adapter="adapters/all", model="tiny"
    )
    record = json.loads(path.read_text())
    assert record["meets"] is True and record["adapter"] == "adapters/all" and record["model"] == "tiny"
    assert record["goal"]["buggy_ratio"] == 0.5
    assert [c["name"] for c in record["decision"]["criteria"]][0] == "buggy_rate"
    assert record["comparison"]["perplexity"]["before"] == 7.2
