"""Sampling, bug rates and perplexity on the tiny model, with answers known by construction."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from tiny_model import build_model, build_tokenizer

from hotfix_engine.errors import ConfigError, EvaluationError
from hotfix_engine.evaluation import (
    Sample,
    Sampling,
    bug_rates,
    contains_statement,
    generate_samples,
    perplexity,
    sample_completions,
    score_samples,
)
from hotfix_engine.pairs import BugFixPair

PROMPTS = ["def add(a, b):\n    ", "class Stack:\n    def push(self, item):\n        ", "x = 1\n"]


@pytest.fixture(scope="module")
def tiny():
    tokenizer = build_tokenizer()
    return build_model(tokenizer, seed=0), tokenizer


def texts(rows):
    return [[s.text for s in row] for row in rows]


def test_greedy_matches_transformers_generate(tiny):
    model, tok = tiny
    rows = generate_samples(
        model, tok, PROMPTS, Sampling(samples=2, temperature=0, max_new_tokens=10), protocol="paper"
    )
    for prompt, row in zip(PROMPTS, rows, strict=True):
        ids = tok(prompt, return_tensors="pt")
        ref = model.generate(**ids, max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id)
        expected = tok.decode(ref[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        assert row[0].text == row[1].text == expected


def test_sampling_is_seeded_and_independent_of_batching(tiny):
    model, tok = tiny
    sampling = Sampling(samples=3, max_new_tokens=8, seed=3)
    together = sample_completions(model, tok, PROMPTS, sampling)
    alone = sample_completions(model, tok, PROMPTS, replace(sampling, batch_size=2))
    other = sample_completions(model, tok, PROMPTS, replace(sampling, seed=4))
    assert together == alone
    assert together != other
    assert [len(row) for row in together] == [3, 3, 3]
    assert len({text for row in together for text in row}) > 3  # sampling, not greedy copies


def test_top_p_small_is_greedy(tiny):
    model, tok = tiny
    greedy = sample_completions(model, tok, PROMPTS, Sampling(samples=1, temperature=0, max_new_tokens=8))
    nucleus = sample_completions(
        model, tok, PROMPTS, Sampling(samples=3, top_p=1e-6, max_new_tokens=8, seed=9)
    )
    assert all(set(row) == {g[0]} for row, g in zip(nucleus, greedy, strict=True))


def test_progress_reaches_total_and_token_limit_is_kept(tiny):
    model, tok = tiny
    seen = []
    rows = generate_samples(
        model,
        tok,
        PROMPTS,
        Sampling(samples=3, max_new_tokens=5, batch_size=4),
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen[-1] == (9, 9)
    assert all(s.tokens <= 5 and (s.finished or s.tokens == 5) for row in rows for s in row)


def test_bad_sampling_settings_raise_where_they_are_made():
    bad = [{"samples": 0}, {"max_new_tokens": 0}, {"top_p": 0.0}, {"top_p": 1.5}, {"temperature": -0.1}]
    for settings in bad:
        with pytest.raises(ConfigError):
            Sampling(**settings)
    assert Sampling(temperature=0).greedy and not Sampling().greedy


def test_a_model_without_an_end_of_sequence_token_is_refused(tiny, monkeypatch):
    from hotfix_engine.evaluation import sampling

    model, tok = tiny
    monkeypatch.setattr(sampling, "eos_ids", lambda model, tokenizer: set())
    with pytest.raises(EvaluationError, match="end-of-sequence"):
        generate_samples(model, tok, PROMPTS)


def test_eval_config_reports_keep_their_flat_keys():
    """Reports and ablation runs stored before the sampling settings became one object still match."""
    from hotfix_engine.evaluation.evaluate import EvalConfig

    config = EvalConfig(Sampling(samples=3, seed=7), humaneval_samples=2, privacy_samples=5)
    assert list(config.to_json()) == [
        "samples", "temperature", "top_p", "max_new_tokens", "seed", "batch_size", "functional",
        "humaneval_samples", "humaneval_max_new_tokens", "privacy_samples", "privacy_max_new_tokens",
        "perplexity_texts", "perplexity_tokens", "timeout_s", "memory_mb", "protocol",
    ]  # fmt: skip
    assert (config.to_json()["samples"], config.to_json()["seed"]) == (3, 7)
    assert config.humaneval_sampling() == Sampling(samples=2, max_new_tokens=256, seed=7)
    assert EvalConfig(humaneval_samples=1).humaneval_sampling().greedy
    assert config.privacy_sampling() == Sampling(samples=5, max_new_tokens=128, seed=7)
    assert config.line_sampling() == Sampling(samples=1, temperature=0.0, max_new_tokens=48, seed=7)


def test_statement_matching_is_per_line_and_whitespace_blind():
    prefix = "def f(n):\n"
    assert contains_statement(prefix, "    n &= n-1\n    return n\n", "    n &= n - 1")
    assert not contains_statement(prefix, "    n &= n - 10\n", "    n &= n - 1")
    # A line cut off by the token limit is not a statement.
    assert not contains_statement(
        prefix, Sample("    x = 1\n    n &= n - 1", finished=False, tokens=9), "n &= n - 1"
    )
    assert contains_statement(
        prefix, Sample("    n &= n - 1\n    ret", finished=False, tokens=9), "n &= n - 1"
    )
    # The completion may finish the prefix's unfinished line.
    assert contains_statement("def f(n):\n    n &= ", "n - 1\n", "n &= n - 1")
    # Multi-line statements and the empty side.
    assert contains_statement(prefix, "a = (1,\n     2)\n", "a = (1,\n 2)")
    assert not contains_statement(prefix, "\n", "")


def test_score_samples_counts_by_construction():
    pairs = [
        BugFixPair(
            prefix="def f(n):\n", buggy="    n ^= n - 1", fixed="    n &= n - 1", source="q", pattern="op"
        ),
        BugFixPair(prefix="x = 0\n", buggy="while True:", fixed="while queue:", source="b"),
    ]
    rates = score_samples(
        pairs,
        [
            ["    n ^= n-1\n", "    n &= n - 1\n", "    pass\n", "    n &= n - 1\n"],
            ["while True:\n", "while queue :\n", "while True:\n", "print()\n"],
        ],
    )
    assert [(p.buggy, p.fixed, p.samples) for p in rates.per_pair] == [(1, 2, 4), (2, 1, 4)]
    assert rates.buggy_rate == pytest.approx(3 / 8)
    assert rates.fixed_rate == pytest.approx(3 / 8)
    by_source = rates.group_by("source")
    assert by_source["q"].fixed_rate == pytest.approx(0.5)
    assert set(rates.group_by("pattern")) == {"op", "unclassified"}
    with pytest.raises(ValueError, match="valid"):
        rates.group_by("colour")


def test_bug_rates_known_by_construction(tiny):
    """A pair whose fixed line is exactly the model's greedy line scores fixed 100%, buggy 0%."""
    model, tok = tiny
    prefix = "def find(items, target):\n"
    greedy_24 = Sampling(samples=1, temperature=0, max_new_tokens=24)
    greedy = sample_completions(model, tok, [prefix], greedy_24)[0][0]
    first_line = greedy.split("\n")[0]
    assert "\n" in greedy and first_line.strip(), "the tiny model's greedy completion should hold a full line"
    pair = BugFixPair(
        prefix=prefix, buggy="    return -1  # never generated", fixed=first_line, source="made"
    )
    rates = bug_rates(model, tok, [pair, pair], replace(greedy_24, samples=3))
    assert rates.fixed_rate == 1.0 and rates.buggy_rate == 0.0
    swapped = BugFixPair(prefix=prefix, buggy=first_line, fixed="    pass  # never generated", source="made")
    rates = bug_rates(model, tok, [swapped], replace(greedy_24, samples=2))
    assert (rates.buggy_rate, rates.fixed_rate) == (1.0, 0.0)


def test_perplexity_matches_a_hand_computed_loss(tiny):
    model, tok = tiny
    text = "def add(a, b):\n    return a + b\n"
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss
    assert perplexity(model, tok, [text]) == pytest.approx(math.exp(float(loss)), rel=1e-4)
    assert perplexity(model, tok, [text, text]) == pytest.approx(math.exp(float(loss)), rel=1e-4)
    assert perplexity(model, tok, [text], max_tokens=4) != pytest.approx(perplexity(model, tok, [text]))
    with pytest.raises(EvaluationError):
        perplexity(model, tok, [""])


def test_callers_pass_the_protocol_and_the_suffix_through(tiny, monkeypatch):
    """bug_rates hands the protocol on, and with FIM tokens each pair's suffix; EvalConfig checks it."""
    from hotfix_engine.evaluation import bugrates
    from hotfix_engine.evaluation.evaluate import EvalConfig
    from hotfix_engine.models import FimTokens

    model, tok = tiny
    seen = []

    def fake(model, tokenizer, prompts, sampling, **kwargs):
        seen.append(kwargs)
        return [[Sample("x\n", True, 1)] for _ in prompts]

    monkeypatch.setattr(bugrates, "generate_samples", fake)
    pair = BugFixPair(prefix="def f(n):\n    return n", buggy="    return n - 1", fixed="    return n + 1",
                      suffix="\nprint(f(1))\n")  # fmt: skip
    fim = FimTokens("<a>", "<b>", "<c>")
    bug_rates(model, tok, [pair], protocol="paper")
    bug_rates(model, tok, [pair], fim=fim)
    assert (seen[0]["protocol"], seen[0]["suffixes"], seen[0]["fim"]) == ("paper", None, None)
    assert (seen[1]["protocol"], seen[1]["suffixes"], seen[1]["fim"]) == ("product", [pair.suffix], fim)
    assert EvalConfig().protocol == "product"
    with pytest.raises(ValueError, match="protocol"):
        EvalConfig(protocol="served")
