"""Discovery of the model's own bugs on hand-written problems where the departure point is known."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
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
from hotfix_engine.evaluation.sampling import Sample, Sampling

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
CONFIG = DiscoveryConfig(Sampling(samples=4), timeout_s=3.0, memory_mb=512)


def fake_completer(sampled_bug_share: float = 0.5, calls: list | None = None):
    """Greedy writes the bug on line 3; of the samples, the first share write it, the rest are right."""

    def complete(prompts, sampling):
        samples, temperature = sampling.samples, sampling.temperature
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

    def complete(prompts, sampling):
        rows = []
        for prompt in prompts:
            start = prompt.count("\n") - 1
            if start == 1:
                text = "    s = sum(xs)\n    return s + 1\n"
            else:
                text = "\n".join(TOTAL.solution.split("\n")[start:]) + "\n"
            rows.append([Sample(text, True, 5)] * sampling.samples)
        return rows

    result = discover([TOTAL], complete, DiscoveryConfig(sampled=False, timeout_s=3.0, memory_mb=512))
    assert result.pairs == []
    assert result.stats.failing == 1 and result.stats.departures == 1 and result.stats.verified == 0


def test_config_validation():
    with pytest.raises(ValueError):
        DiscoveryConfig(sampled=False, greedy=False)
    with pytest.raises(ValueError):
        DiscoveryConfig(Sampling(samples=2, temperature=0))
    with pytest.raises(ValueError, match="protocol"):
        DiscoveryConfig(protocol="served")


def test_the_corpus_settings_keep_their_keys():
    """A corpus started before the sampling settings became one object continues under the same keys."""
    from hotfix_engine.cli.discover import settings

    config = DiscoveryConfig(Sampling(samples=3, top_p=0.9, seed=4, batch_size=8), sampled=False)
    assert settings(config, "m", None) == {
        "model": "m", "adapter": None, "samples": 0, "greedy": True, "temperature": 1.0, "top_p": 0.9,
        "max_new_tokens": 64, "seed": 4, "protocol": "product", "timeout_s": 5.0, "memory_mb": 1024,
    }  # fmt: skip
    defaults = DiscoveryConfig().to_json()
    assert (defaults["samples"], defaults["max_new_tokens"]) == (10, 96)
    assert CONFIG.greedy_sampling == replace(CONFIG.sampling, samples=1, temperature=0.0)


def test_tiny_model_smoke():
    from tiny_model import build_model, build_tokenizer

    tokenizer = build_tokenizer()
    complete = model_completer(build_model(tokenizer), tokenizer)
    config = DiscoveryConfig(Sampling(samples=1, max_new_tokens=12), timeout_s=3.0, memory_mb=512)
    result = discover([TOTAL], complete, config)
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
    assert out.exists() and (tmp_path / "found.jsonl.stats.json").exists()
    assert main(args) == 0  # the same command again: everything is done, nothing is redone
    assert "0 new verified pairs from 0 problems (2 done before" in capsys.readouterr().out
    assert main([*args, "--samples", "2"]) == 1  # other settings would mix two corpora
    assert "other settings (samples 1 -> 2)" in capsys.readouterr().err
    assert main(["discover", "--model", str(tiny_model_dir), "--problems", str(tmp_path / "nope.jsonl")]) == 1
    assert "no such problems file" in capsys.readouterr().err


def test_trailers_and_stop_rule():
    from hotfix_engine.discovery import _code_done, is_trailer

    assert is_trailer("This function returns the sum.") and is_trailer("print(total([1]))")
    assert is_trailer("Explanation:") and is_trailer("```")
    assert not is_trailer("R = 3") and not is_trailer("def f(x):") and not is_trailer("    This is indented")
    assert _code_done("    return s\nThis returns s.\n")
    assert not _code_done("    return s\nThis ret")  # the trailer line is not complete yet


# --- One bug however written; a corpus that survives being cut short -------------------------------


def test_the_same_bug_written_three_ways_is_one_pair():
    """Spacing, parentheses and a comment do not make another bug: one pair, two duplicates."""
    spellings = ["        s = x", "        s = (x)", "        s=x  # keep the last"]

    def complete(prompts, sampling):
        rows = []
        for prompt in prompts:
            start = prompt.count("\n") - TOTAL.header.count("\n")
            texts = []
            for j in range(sampling.samples):
                body = list(BUGGY_BODY)
                body[3] = spellings[(j + (sampling.temperature > 0)) % len(spellings)]
                texts.append("\n".join(body[start:]) + "\n")
            rows.append([Sample(t, finished=True, tokens=5) for t in texts])
        return rows

    result = discover([TOTAL], complete, CONFIG)
    assert len(result.pairs) == 1
    assert result.pairs[0].buggy == "        s = x"  # the greedy one, found first
    assert result.stats.duplicates >= 2


def test_canonical_statements():
    from hotfix_engine.discovery import bug_key, canonical_statement

    same = [("s = (x)", "s=x  # add"), ("x = 'a'", 'x = "a"'), ("elif x>1:", "elif (x > 1):")]
    for a, b in same:
        assert canonical_statement(a) == canonical_statement(b), (a, b)
    assert canonical_statement("return a") != canonical_statement("return b")  # names are kept
    assert canonical_statement("x = [1,") == canonical_statement("x = [1, ")  # no parse: spacing only
    assert bug_key("p", "    s = x", "    s += x") == bug_key("p", "s=(x)", "s+=x")
    assert bug_key("p", "s = x", "s += x") != bug_key("q", "s = x", "s += x")


PROBLEMS = [replace(TOTAL, id=f"p/total{i}") for i in range(6)] + [NO_TESTS, BROKEN]
SETTINGS = {"model": "fake", "samples": 4}


class Killed(RuntimeError):
    pass


class CountingCompleter:
    """The fake completer, counting the problems it started; dies on the one after ``fail_after``."""

    def __init__(self, fail_after: int | None) -> None:
        self.fail_after = fail_after
        self.problems = 0
        self.inner = fake_completer(0.5)

    def __call__(self, prompts, sampling):
        if sampling.greedy:
            self.problems += 1
            if self.fail_after is not None and self.problems > self.fail_after:
                raise Killed("killed")
        return self.inner(prompts, sampling)


@dataclass
class FakeFactory:
    """Picklable, as --jobs needs: each process builds its own completer."""

    fail_after: int | None = None
    made: list = field(default_factory=list)

    def __call__(self):
        completer = CountingCompleter(self.fail_after)
        self.made.append(completer)
        return completer


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_run_cut_short_keeps_what_it_found_and_the_next_one_continues(tmp_path: Path):
    from hotfix_engine.corpus import Corpus, progress_path
    from hotfix_engine.discovery_run import ProblemFailed, run_discovery

    reference = tmp_path / "whole.jsonl"
    run_discovery(PROBLEMS, FakeFactory(), CONFIG, Corpus(reference, SETTINGS))
    whole = {p["id"] for p in lines_of(reference)}
    assert len(whole) == 6

    out = tmp_path / "found.jsonl"
    first = FakeFactory(fail_after=3)
    with pytest.raises(ProblemFailed, match="discovery failed on p/total3: killed"):
        run_discovery(PROBLEMS, first, CONFIG, Corpus(out, SETTINGS))
    assert {p["problem"] for p in lines_of(out)} == {"p/total0", "p/total1", "p/total2"}
    # A kill between the pairs and the progress line, and a torn last line: both dropped on opening.
    stray = dict(lines_of(out)[0], problem="p/total4", id="discovered/p/total4/3/x")
    with out.open("a") as handle:
        handle.write(json.dumps(stray) + "\n" + '{"prefix": "def tot')
    with progress_path(out).open("a") as handle:
        handle.write('{"kind": "problem", "problem": "p/tot')

    corpus = Corpus(out, SETTINGS)
    assert corpus.repaired == 1
    assert set(corpus.done) == {"p/total0", "p/total1", "p/total2", "p/none", "p/broken"}
    second = FakeFactory()
    summary = run_discovery(PROBLEMS, second, CONFIG, corpus)
    assert second.made[0].problems == 3  # only the problems not done
    assert summary.already_done == 5 and summary.added == 3
    found = lines_of(out)
    assert len(found) == len({p["id"] for p in found}) == 6  # no duplicates
    assert {p["id"] for p in found} == whole  # nothing lost
    assert summary.totals.pairs == 6 and summary.totals.problems == 6
    assert (summary.totals.skipped_no_tests, summary.totals.skipped_broken) == (1, 1)

    third = FakeFactory()
    again = run_discovery(PROBLEMS, third, CONFIG, Corpus(out, SETTINGS))
    assert again.added == 0 and not third.made  # everything done: the model is not even loaded
    assert len(lines_of(out)) == 6


def test_a_corpus_continues_only_with_its_own_settings(tmp_path: Path):
    from hotfix_engine.corpus import Corpus
    from hotfix_engine.discovery_run import run_discovery
    from hotfix_engine.errors import DataError

    out = tmp_path / "found.jsonl"
    run_discovery(PROBLEMS[:2], FakeFactory(), CONFIG, Corpus(out, SETTINGS))
    with pytest.raises(DataError, match="samples 4 -> 10"):
        Corpus(out, {**SETTINGS, "samples": 10})
    fresh = Corpus(out, {**SETTINGS, "samples": 10}, restart=True)
    assert not fresh.done and out.read_text() == ""
    loose = tmp_path / "loose.jsonl"
    loose.write_text(reference_line() + "\n")
    with pytest.raises(DataError, match="no progress file"):
        Corpus(loose, SETTINGS)


def reference_line() -> str:
    return json.dumps({"prefix": "", "buggy": "a", "fixed": "b", "problem": "p"})


def test_a_corpus_never_holds_one_bug_twice(tmp_path: Path):
    from hotfix_engine.corpus import Corpus, dedupe_pairs
    from hotfix_engine.discovery import DiscoveryStats
    from hotfix_engine.pairs import BugFixPair

    corpus = Corpus(tmp_path / "c.jsonl", SETTINGS)
    one = BugFixPair(prefix="", buggy="    s = x", fixed="    s += x", id="a", extra={"problem": "p"})
    spelled = BugFixPair(prefix="", buggy="    s = (x)", fixed="    s+=x", id="b", extra={"problem": "p"})
    other = BugFixPair(prefix="", buggy="    s = x", fixed="    s += x", id="c", extra={"problem": "q"})
    assert corpus.add("p", [one, spelled], DiscoveryStats()) == 1
    assert corpus.add("q", [other], DiscoveryStats()) == 1  # the same statements on another problem
    assert [p["id"] for p in lines_of(tmp_path / "c.jsonl")] == ["a", "c"]
    assert corpus.done["p"]["stats"]["duplicates"] == 1
    kept, removed = dedupe_pairs([one, spelled, other])
    assert [p.id for p in kept] == ["a", "c"] and removed == 1


def test_parallel_jobs_find_what_one_process_finds(tmp_path: Path):
    from hotfix_engine.corpus import Corpus
    from hotfix_engine.discovery_run import run_discovery

    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    run_discovery(PROBLEMS[:4], FakeFactory(), CONFIG, Corpus(one, SETTINGS))
    summary = run_discovery(PROBLEMS[:4], FakeFactory(), CONFIG, Corpus(two, SETTINGS), jobs=2)
    assert summary.added == 4
    assert sorted(map(json.dumps, lines_of(one))) == sorted(map(json.dumps, lines_of(two)))


@dataclass
class BrokenFactory:
    def __call__(self):
        raise OSError("no model here")


def test_a_worker_that_cannot_start_stops_the_run_instead_of_hanging(tmp_path: Path):
    from hotfix_engine.corpus import Corpus
    from hotfix_engine.discovery_run import ProblemFailed, run_discovery

    corpus = Corpus(tmp_path / "c.jsonl", SETTINGS)
    with pytest.raises(ProblemFailed, match="could not start: no model here"):
        run_discovery(PROBLEMS[:3], BrokenFactory(), CONFIG, corpus, jobs=2)
    assert set(Corpus(tmp_path / "c.jsonl", SETTINGS).done) == set()


def test_corpus_statistics(tmp_path: Path, capsys):
    from hotfix_engine.cli import main
    from hotfix_engine.corpus import corpus_stats
    from hotfix_engine.pairs import BugFixPair

    def pair(problem, buggy, fixed, key):
        return BugFixPair(
            prefix="", buggy=buggy, fixed=fixed, id=key, extra={"problem": problem, "found_by": "greedy"}
        )

    pairs = [
        pair("p", "    if x > 1:", "    if x >= 1:", "1"),
        pair("p", "    return a", "    return b", "2"),
        pair("p", "    return (a)", "    return b", "3"),  # the same bug as 2
        pair("q", "    n = 2", "    n = 3", "4"),
    ]
    stats = corpus_stats(pairs)
    assert stats["pairs"] == 3 and stats["duplicates"] == 1 and stats["problems_with_pairs"] == 2
    assert stats["per_problem"] == {"p": 2, "q": 1}
    assert stats["pairs_per_problem"]["histogram"] == {"1": 1, "2": 1}
    assert stats["bug_kinds"] == {"change_operator": 1, "change_identifier": 1, "change_numeric_literal": 1}

    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(p.to_json()) + "\n" for p in pairs))
    assert main(["discover", "--stats", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "3 pairs from 2 problems (1 duplicates left out)" in printed and "change_operator 1" in printed
    written = json.loads((tmp_path / "corpus.jsonl.stats.json").read_text())
    assert written["bug_kinds"] == stats["bug_kinds"]
