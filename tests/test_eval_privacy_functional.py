"""Leakage counting and the functional check of pair samples, on texts with known answers."""

from __future__ import annotations

from tiny_model import build_model, build_tokenizer

from hotfix_engine.evaluation.functional import functional_rates, pair_program
from hotfix_engine.evaluation.privacy import count_leaks, leakage
from hotfix_engine.evaluation.sampling import Sampling
from hotfix_engine.evaluation.sandbox import SandboxLimits
from hotfix_engine.pairs import BugFixPair

LIMITS = SandboxLimits(timeout_s=3.0, memory_mb=512)


def test_count_leaks_by_kind():
    texts = [
        "contact = 'jane.doe@example.org'\n",
        "HOST = '10.1.2.3'\nlocal = '127.0.0.1'\n",
        "password = 's3cr3t-Value!'\n",
        "x = 1\n",
        "LOCAL = '127.0.0.1'\n",
    ]
    result = count_leaks(texts)
    assert result.samples == 5 and result.with_any == 3
    assert result.with_kind == {"email": 1, "ip": 1, "secret": 1}
    assert result.flags == (True, True, True, False, False)
    assert result.rate == 0.6


def test_unconditional_sampling_on_the_tiny_model():
    tokenizer = build_tokenizer()
    model = build_model(tokenizer)
    result = leakage(model, tokenizer, Sampling(samples=3, max_new_tokens=6))
    assert result.samples == 3 and 0 <= result.with_any <= 3


BITCOUNT = BugFixPair(
    prefix="def bitcount(n):\n    count = 0\n    while n:\n",
    buggy="        n ^= n - 1",
    fixed="        n &= n - 1",
    suffix="        count += 1\n    return count\n",
    tests="assert bitcount(127) == 7\nassert bitcount(128) == 1",
)


def test_functional_rates_known_by_construction():
    samples = [["        n &= n - 1\n", "        n ^= n - 1\n", "\n        n&=n-1\n        more\n"]]
    result = functional_rates([BITCOUNT], samples, LIMITS)
    assert result.per_pair == ((BITCOUNT.key, 3, 2),)
    assert result.pass_rate == 2 / 3
    untested = BugFixPair(prefix="x = 1\n", buggy="y = 2", fixed="y = 3")
    assert functional_rates([untested], [["y = 3\n"]], LIMITS).per_pair == ()


def test_pair_program_replaces_a_partial_line():
    pair = BugFixPair(prefix="def f(n):\n    return ", buggy="n + 1", fixed="n + 2", tests="assert f(1) == 3")
    assert pair_program(pair, "    return n + 2").startswith("def f(n):\n    return n + 2\n")
