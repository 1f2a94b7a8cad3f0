"""Discovery of the model's own bugs on hand-written problems where the departure point is known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotfix_engine.discovery import (
    DiscoveryConfig,
    completion_lines,
    discover,
    find_departure,
    model_completer,
)
from hotfix_engine.evaluation.problems import Problem
from hotfix_engine.evaluation.sampling import Sample

TOTAL = Problem(
    id="p/total",
    header="# Add up a list.\n",
    solution="def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s",
    tests="assert total([1, 2, 3]) == 6\nassert total([]) == 0",
    source="hand",
)
BUGGY_BODY = ["def total(xs):", "    s = 0", "    for x in xs:", "        s = x", "    return s"]
NO_TESTS = Problem(id="p/none", header="", solution="def f():\n    return 1", tests="")
BROKEN = Problem(id="p/broken", header="", solution="def g(x):\n    return x + 2", tests="assert g(1) == 2")
CONFIG = DiscoveryConfig(samples=4, timeout_s=3.0, memory_mb=512)


def fake_completer(sampled_bug_share: float = 0.5, calls: list | None = None):
    """Greedy writes the bug on line 3; of the samples, the first share write it, the rest are right."""

    def complete(prompts, samples, temperature):
        if calls is not None:
            calls.append((len(prompts), samples, temperature))
        rows = []
        for prompt in prompts:
            start = prompt.count("\n") - TOTAL.header.count("\n")
            right = TOTAL.solution.split("\n")[start:]
            wrong = BUGGY_BODY[start:]
            if temperature == 0:
                texts = ["\n".join(wrong) + "\n\nprint(total([1, 2]))\nThis function adds"]
            else:
                n_bug = round(samples * sampled_bug_share)
                texts = ["\n".join(wrong) + "\n"] * n_bug + ["\n".join(right) + "\n"] * (samples - n_bug)
            rows.append([Sample(text, finished=True, tokens=10) for text in texts])
        return rows

    return complete


def test_completion_lines_drop_chatter_and_cut_lines():
    sample = Sample("        s = x\n    return s\n\nprint(total([1]))\nThe answer", finished=True, tokens=9)
    assert completion_lines(TOTAL, 3, sample) == ["        s = x", "    return s"]
    cut = Sample("        s += x\n    return s\n    retu", finished=False, tokens=9)
    assert completion_lines(TOTAL, 3, cut) == ["        s += x", "    return s"]
    prose = Sample("        s += x\n    return s\nThis returns the sum of the list.", finished=True, tokens=9)
    assert completion_lines(TOTAL, 3, prose) == ["        s += x", "    return s"]


def test_find_departure():
    departure = find_departure(
        TOTAL, 1, ["    s = 0", "", "    for x in xs:", "        s = x", "    return s"]
    )
    assert departure is not None
    assert (departure.reference_index, departure.model_index) == (3, 3)
    assert (departure.buggy, departure.fixed) == ("        s = x", "        s += x")
    commented = find_departure(TOTAL, 3, ["        # add it", "        s = x", "    return s"])
    assert commented is not None and commented.buggy == "        s = x"
    assert find_departure(TOTAL, 1, ["    s = 0", "    for x in xs:"]) is None  # stops early: no single bug
    assert find_departure(TOTAL, 3, ["        s +=x", "    return s"]) is None  # same up to whitespace


def test_discovers_the_known_bug_with_its_rate():
    calls = []
    result = discover([TOTAL, NO_TESTS, BROKEN], fake_completer(0.5, calls), CONFIG)
    stats = result.stats
    assert (stats.skipped_no_tests, stats.skipped_broken, stats.problems) == (1, 1, 1)
    assert stats.boundaries == 5 and stats.completions == 5 * (1 + 4)
    assert calls == [(5, 1, 0.0), (5, 4, 1.0)]
    assert len(result.pairs) == 1
    pair = result.pairs[0]
    assert (pair.buggy, pair.fixed) == ("        s = x", "        s += x")
    assert pair.prefix == "# Add up a list.\ndef total(xs):\n    s = 0\n    for x in xs:\n"
    assert pair.suffix == "    return s\n"
    assert pair.tests == TOTAL.tests and pair.source == "discovered-hand"
    assert pair.extra["buggy_rate"] == 0.5 and pair.extra["fixed_rate"] == 0.5
    assert pair.extra["line"] == 3 and pair.extra["found_by"] == "greedy"
    assert pair.extra["fails_in_reference"] is True
    assert pair.extra["protocol"] == "product"
    assert pair.pattern  # classified by the patterns package
    json.dumps(pair.to_json())


def test_unverified_departures_are_dropped():
    """A completion that departs early but fails for another reason yields no pair."""

    def complete(prompts, samples, temperature):
        rows = []
        for prompt in prompts:
            start = prompt.count("\n") - 1
            if start == 1:
                text = "    s = sum(xs)\n    return s + 1\n"
            else:
                text = "\n".join(TOTAL.solution.split("\n")[start:]) + "\n"
            rows.append([Sample(text, True, 5)] * samples)
        return rows

    result = discover([TOTAL], complete, DiscoveryConfig(samples=0, timeout_s=3.0, memory_mb=512))
    assert result.pairs == []
    assert result.stats.failing == 1 and result.stats.departures == 1 and result.stats.verified == 0


def test_config_validation():
    with pytest.raises(ValueError):
        DiscoveryConfig(samples=0, greedy=False)
    with pytest.raises(ValueError):
        DiscoveryConfig(samples=2, temperature=0)
    with pytest.raises(ValueError, match="protocol"):
        DiscoveryConfig(protocol="served")


def test_tiny_model_smoke():
    from tiny_model import build_model, build_tokenizer

    tokenizer = build_tokenizer()
    complete = model_completer(build_model(tokenizer), tokenizer, max_new_tokens=12)
    result = discover([TOTAL], complete, DiscoveryConfig(samples=1, timeout_s=3.0, memory_mb=512))
    assert result.stats.completions == 5 * 2
    assert result.stats.failing <= result.stats.completions
    assert all(p.extra["problem"] == "p/total" for p in result.pairs)


def test_cli_discover_writes_pairs(tiny_model_dir: Path, tmp_path: Path, capsys):
    from hotfix_engine.cli import main

    problems = tmp_path / "problems.jsonl"
    rows = [
        {
            "task_id": 1,
            "text": "Add up a list.",
            "code": TOTAL.solution,
            "test_list": TOTAL.tests.split("\n"),
        },
        {"task_id": 2, "text": "No tests.", "code": "def f():\n    return 1", "test_list": []},
    ]
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "found.jsonl"
    args = ["discover", "--model", str(tiny_model_dir), "--problems", str(problems), "--samples", "1",
            "--max-new-tokens", "8", "--out", str(out), "--no-progress", "--adapter", "none"]  # fmt: skip
    assert main(args) == 0
    report = capsys.readouterr()
    assert "1 without tests" in report.out
    assert out.exists()
    assert main(["discover", "--model", str(tiny_model_dir), "--problems", str(tmp_path / "nope.jsonl")]) == 1
    assert "no such problems file" in capsys.readouterr().err


def test_trailers_and_stop_rule():
    from hotfix_engine.discovery import _code_done, is_trailer

    assert is_trailer("This function returns the sum.") and is_trailer("print(total([1]))")
    assert is_trailer("Explanation:") and is_trailer("```")
    assert not is_trailer("R = 3") and not is_trailer("def f(x):") and not is_trailer("    This is indented")
    assert _code_done("    return s\nThis returns s.\n")
    assert not _code_done("    return s\nThis ret")  # the trailer line is not complete yet
