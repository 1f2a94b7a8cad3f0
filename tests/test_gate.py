"""The quality gate's decisions, and its measurement through hotfix_engine.evaluation on the tiny model."""

from __future__ import annotations

import math

import pytest

from hotfix_engine.gate import GateConfig, Measurement, decide, measure, statement_written
from hotfix_engine.pairs import BugFixPair


def m(buggy: float, fixed: float, ppl: float = 10.0) -> Measurement:
    return Measurement(buggy_rate=buggy, fixed_rate=fixed, perplexity=ppl, pairs=5, samples=10)


CURRENT = m(0.30, 0.10)


@pytest.mark.parametrize(
    "candidate, accepted, words",
    [
        (m(0.10, 0.40), True, "better: buggy 30.0% -> 10.0%"),
        (m(0.10, 0.10), True, "better"),  # buggy down, fixed kept
        (m(0.10, 0.05), False, "the fixed rate fell"),
        (m(0.30, 0.10), False, "no improvement"),
        (m(0.40, 0.50), False, "no improvement"),  # more fixed but also more buggy
        (m(0.30, 0.20), True, "(unchanged)"),  # the tie rule: buggy cannot fall, fixed rose
        (m(0.10, 0.40, ppl=10.19), True, "+1.9%"),  # retention within 2 %
        (m(0.10, 0.40, ppl=10.21), False, "beyond the 2.0% limit"),
        (m(0.10, 0.40, ppl=math.nan), False, "beyond"),
    ],
)
def test_decisions(candidate, accepted, words):
    decision = decide(candidate, CURRENT)
    assert decision.accepted is accepted
    assert words in decision.reason
    assert decision.to_json()["candidate"]["buggy_rate"] == candidate.buggy_rate


def test_the_retention_threshold_is_configurable():
    candidate = m(0.1, 0.4, ppl=10.4)
    assert not decide(candidate, CURRENT).accepted
    assert decide(candidate, CURRENT, GateConfig(max_retention_loss=0.05)).accepted
    with pytest.raises(ValueError):
        GateConfig(max_retention_loss=1.5)
    with pytest.raises(ValueError):
        GateConfig(samples=0)


def test_a_zero_buggy_rate_can_still_be_improved_on_by_fixing_more():
    assert decide(m(0.0, 0.3), m(0.0, 0.1)).accepted
    assert not decide(m(0.0, 0.1), m(0.0, 0.1)).accepted


def test_measure_uses_the_evaluation_protocol(tiny_loaded):
    pairs = [BugFixPair(prefix="def add(a, b):\n", buggy="    return a - b", fixed="    return a + b")]
    config = GateConfig(samples=2, max_new_tokens=8, probe_tokens=32)
    result = measure(
        tiny_loaded.model, tiny_loaded.tokenizer, pairs, ["def f(x):\n    return x + 1\n"], config
    )
    assert 0.0 <= result.buggy_rate <= 1.0 and 0.0 <= result.fixed_rate <= 1.0
    assert result.perplexity > 1.0 and result.pairs == 1 and result.samples == 2
    again = measure(
        tiny_loaded.model, tiny_loaded.tokenizer, pairs, ["def f(x):\n    return x + 1\n"], config
    )
    assert again == result  # seeded: the gate compares versions, not sampling noise


def test_samples_prompted_where_the_lines_part_stop_once_the_statement_is_written():
    one = BugFixPair(prefix="def f(n):\n", buggy="    return n - 1", fixed="    return n + 1")
    two = BugFixPair(prefix="x = 1\n", buggy="if x:\n    y = 1", fixed="if x:\n    y = 2")
    assert statement_written([one])("+ 1") is False
    assert statement_written([one])("+ 1\n") is True
    assert statement_written([one, two])("+ 1\n") is False  # the widest statement decides
    assert statement_written([one, two])("+ 1\n    y = 2\n") is True


def test_the_stop_only_cuts_samples_short(tiny_loaded):
    """Same seed, same rows: each stopped sample is the start of the full one, ended at its newline."""
    from hotfix_engine.evaluation.sampling import generate_samples

    pair = BugFixPair(
        prefix="def add(a, b):\n    return a", buggy="    return a - b", fixed="    return a + b"
    )
    args = dict(samples=4, temperature=1.0, top_p=1.0, max_new_tokens=24, seed=3)
    [full] = generate_samples(tiny_loaded.model, tiny_loaded.tokenizer, [pair.prefix], **args)
    stop = statement_written([pair])
    [early] = generate_samples(tiny_loaded.model, tiny_loaded.tokenizer, [pair.prefix], stop=stop, **args)
    for whole, cut in zip(full, early, strict=True):
        assert whole.text.startswith(cut.text) and cut.tokens <= whole.tokens
        if "\n" in whole.text:
            assert cut.text.count("\n") == 1 and cut.finished  # one token may hold the newline and more
