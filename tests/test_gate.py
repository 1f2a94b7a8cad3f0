"""The quality gate: decisions on hand-made per-prompt scores, the evidence each rests on, and its
measurement on the tiny model (exact likelihoods as served, retention on ordinary suggestions)."""

from __future__ import annotations

import math

import pytest

from hotfix_engine.evaluation.retention_check import Retention
from hotfix_engine.gate import (
    GateConfig,
    Measurement,
    PairScore,
    decide,
    measure,
    score_pairs,
    sign_test,
)
from hotfix_engine.pairs import BugFixPair, rejected_statement

RETAINED = Retention(10.0, (True,) * 8, (True,) * 4 + (False,) * 4)


def scores(*probabilities: tuple[float, float]) -> tuple[PairScore, ...]:
    """Per-prompt (P buggy, P fixed) as log-probabilities."""
    return tuple(PairScore(f"p{i}", math.log(b), math.log(f)) for i, (b, f) in enumerate(probabilities))


def m(taught=(), held_out=(), retention: Retention = RETAINED) -> Measurement:
    return Measurement(scores(*taught), scores(*held_out), retention)


BEFORE3 = [(0.4, 0.05), (0.3, 0.1), (0.5, 0.02)]
BEFORE8 = [(0.4, 0.05)] * 8


def test_a_clear_win_on_few_taught_prompts_is_published_and_says_what_it_rests_on():
    decision = decide(m([(0.05, 0.4), (0.1, 0.3), (0.1, 0.2)]), m(BEFORE3))
    assert decision.accepted
    assert "no held-out prompts: not shown to generalise" in decision.reason
    taught, held, retention = decision.evidence
    assert (
        taught.verdict == "pass"
        and "3 of 3 prompts better" in taught.text
        and "too few for a test" in taught.text
    )
    assert held.verdict == "none" and retention.verdict == "pass"
    assert decision.to_json()["candidate"]["taught"]["prompts"] == 3


def test_one_prompt_that_did_not_move_blocks_a_small_taught_set():
    decision = decide(m([(0.05, 0.4), (0.1, 0.3), (0.5, 0.02)]), m(BEFORE3))
    assert not decision.accepted and "no clear improvement" in decision.reason


def test_noise_is_not_published():
    # Every prompt moved, but by less than min_shift (25 % in odds): within noise.
    decision = decide(m([(0.38, 0.052)] * 8), m(BEFORE8))
    assert not decision.accepted
    assert decision.evidence[0].numbers["better"] == 0


def test_many_prompts_are_decided_by_a_sign_test():
    mostly = [(0.1, 0.3)] * 7 + [(0.5, 0.01)]
    decision = decide(m(mostly), m(BEFORE8))
    assert decision.accepted and "p = 0.035" in decision.evidence[0].text  # 7 of 8: sign test
    split = [(0.1, 0.3)] * 5 + [(0.5, 0.01)] * 3
    assert not decide(m(split), m(BEFORE8)).accepted  # 5 of 8: p = 0.36


def test_a_clear_loss_is_rejected():
    assert not decide(m([(0.6, 0.01)] * 3), m(BEFORE3)).accepted


def test_retention_loss_rejects_whatever_was_learnt():
    win = [(0.05, 0.4), (0.1, 0.3), (0.1, 0.2)]
    broken = Retention(10.05, (True,) * 6 + (False,) * 2, RETAINED.passed)
    decision = decide(m(win, retention=broken), m(BEFORE3))
    assert not decision.accepted and "degenerate" in decision.reason
    assert "retention failed" in decision.reason
    perplexity = Retention(10.3, RETAINED.clean, RETAINED.passed)
    assert "beyond the 2% limit" in decide(m(win, retention=perplexity), m(BEFORE3)).reason
    fewer = Retention(10.0, RETAINED.clean, (True,) * 2 + (False,) * 6)
    assert "2 fewer line tasks passed" in decide(m(win, retention=fewer), m(BEFORE3)).reason
    one_fewer = Retention(10.0, RETAINED.clean, (True,) * 3 + (False,) * 5)
    assert decide(m(win, retention=one_fewer), m(BEFORE3)).accepted  # a near-tie may flip one


def test_held_out_prompts_are_the_only_claim_of_generalisation():
    win = [(0.05, 0.4), (0.1, 0.3), (0.1, 0.2)]
    general = decide(m(win, held_out=[(0.1, 0.3)] * 6), m(BEFORE3, held_out=[(0.4, 0.05)] * 6))
    assert general.accepted and "generalises to held-out prompts" in general.reason
    local = decide(m(win, held_out=[(0.4, 0.05)] * 6), m(BEFORE3, held_out=[(0.4, 0.05)] * 6))
    assert local.accepted and "does not generalise" in local.reason
    worse = decide(m(win, held_out=[(0.7, 0.01)] * 6), m(BEFORE3, held_out=[(0.4, 0.05)] * 6))
    assert not worse.accepted and "held-out prompts got worse" in worse.reason


def test_store_trained_versions_never_claim_held_out_evidence():
    """A version with taught prompts only (what `train --from-store` gives) says it is not shown to generalise."""
    decision = decide(m([(0.05, 0.4)] * 6), m(BEFORE8[:6]))
    assert decision.accepted and "generalise" in decision.reason and "not shown" in decision.reason
    assert all(e.kind != "held-out" or e.verdict == "none" for e in decision.evidence)


def test_one_sided_prompts_compare_the_side_they_have():
    before = (PairScore("r", math.log(0.5), None),)
    after = (PairScore("r", math.log(0.05), None),)
    decision = decide(Measurement(after, (), RETAINED), Measurement(before, (), RETAINED))
    assert decision.accepted and "buggy 50.0% -> 5.0%" in decision.evidence[0].text


def test_sign_test():
    assert sign_test(5, 0) == pytest.approx(1 / 32)
    assert sign_test(0, 0) == 1.0
    assert sign_test(7, 1) == pytest.approx(9 / 256)


def test_config_is_checked():
    with pytest.raises(ValueError):
        GateConfig(max_retention_loss=1.5)
    with pytest.raises(ValueError):
        GateConfig(alpha=0.0)


def test_pairs_are_scored_exactly_where_their_lines_part(tiny_loaded):
    from hotfix_engine.evaluation.likelihood import Completion, completion_logprobs

    pair = BugFixPair(prefix="def add(a, b):\n", buggy="    return a - b", fixed="    return a + b")
    config = GateConfig()
    (score,) = score_pairs(tiny_loaded.model, tiny_loaded.tokenizer, [pair], config)
    # Where the statements part ("    return a "), their rests are scored as served.
    direct = completion_logprobs(
        tiny_loaded.model,
        tiny_loaded.tokenizer,
        [
            Completion("def add(a, b):\n    return a ", "- b"),
            Completion("def add(a, b):\n    return a ", "+ b"),
        ],
    )
    assert (score.buggy, score.fixed) == pytest.approx(tuple(direct))
    (rejected,) = score_pairs(
        tiny_loaded.model, tiny_loaded.tokenizer, [rejected_statement("x = ", "1\n")], config
    )
    assert rejected.fixed is None and rejected.buggy is not None and rejected.buggy < 0


def test_measure_is_deterministic_and_reuses_a_retention(tiny_loaded):
    pairs = [BugFixPair(prefix="def add(a, b):\n", buggy="    return a - b", fixed="    return a + b")]
    config = GateConfig(probe_tokens=32, retention_tasks=3, retention_tokens=8)
    probes = ["def f(x):\n    return x + 1\n"]
    args = (tiny_loaded.model, tiny_loaded.tokenizer, pairs, [], probes, config)
    first = measure(*args)
    assert first.retention.perplexity > 1.0 and len(first.retention.clean) == 3
    again = measure(*args)
    assert (again.taught, again.retention) == (first.taught, first.retention)
    kept = Retention(1.5, (True,), (False,))
    assert measure(*args, retention=kept).retention is kept
