"""The split by problem: no problem on both sides, whatever the corpus, seed or file order."""

from __future__ import annotations

import random

import pytest

from hotfix_engine.pairs import BugFixPair, problem_of, split_by_problem


def corpus(problems: int, seed: int) -> list[BugFixPair]:
    rng = random.Random(seed)
    pairs = []
    for p in range(problems):
        for line in range(rng.randint(1, 6)):
            pairs.append(
                BugFixPair(
                    prefix=f"# problem {p}\n",
                    buggy=f"x = {line}",
                    fixed=f"x = {line + 1}",
                    id=f"discovered/mbpp/{p}/{line}",
                    extra={"problem": f"mbpp/{p}"},
                )
            )
    return pairs


@pytest.mark.parametrize("seed", range(20))
def test_no_problem_is_ever_on_both_sides(seed):
    pairs = corpus(60, seed)
    split = split_by_problem(pairs, seed=seed, test_fraction=0.25)
    train = {problem_of(p) for p in split["train"]}
    test = {problem_of(p) for p in split["test"]}
    assert not train & test
    assert sorted(p.key for p in split["train"] + split["test"]) == sorted(p.key for p in pairs)
    assert split["train"] and split["test"]


def test_deterministic_order_free_and_stable_as_the_corpus_grows():
    pairs = corpus(80, 1)
    split = split_by_problem(pairs, seed=3)
    shuffled = list(pairs)
    random.Random(9).shuffle(shuffled)
    assert split_by_problem(shuffled, seed=3) == split
    assert split_by_problem(pairs, seed=4) != split
    grown = split_by_problem(pairs + corpus(120, 1)[len(pairs) :], seed=3)
    for side in ("train", "test"):  # a problem keeps its side when later runs add problems
        assert {problem_of(p) for p in split[side]} <= {problem_of(p) for p in grown[side]}


def test_the_share_of_test_problems_follows_the_fraction():
    pairs = corpus(1000, 2)
    split = split_by_problem(pairs, seed=0, test_fraction=0.2)
    problems = {problem_of(p) for p in split["test"]}
    assert 150 < len(problems) < 250
    assert split_by_problem(pairs, test_fraction=0.0)["test"] == []
    assert split_by_problem(pairs, test_fraction=1.0)["train"] == []
    with pytest.raises(ValueError):
        split_by_problem(pairs, test_fraction=1.5)


def test_pairs_without_a_problem_stand_alone():
    loose = [BugFixPair(prefix="", buggy=f"a{i}", fixed=f"b{i}") for i in range(40)]
    split = split_by_problem(loose, seed=0, test_fraction=0.5)
    assert len(split["train"]) + len(split["test"]) == 40
    assert problem_of(loose[0]).startswith("pair:")
