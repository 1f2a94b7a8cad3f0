"""Matching suggestions against known pairs and rules: statements equal after normalising
whitespace, and contexts that agree."""

from __future__ import annotations

import pytest

from hotfix_engine.pairs import BugFixPair, write_pairs
from hotfix_engine.patterns import Catalogue, PairIndex, PatternMatch

BITCOUNT = BugFixPair(
    prefix="def bitcount(n):\n    count = 0\n    while n:\n",
    buggy="        n ^= n - 1",
    fixed="        n &= n - 1",
    suffix="        count += 1\n    return count",
    id="quixbugs/bitcount",
    pattern="change_operator",
)
PARENS = BugFixPair(
    prefix="def is_valid_parenthesization(parens):\n    depth = 0\n    for paren in parens:\n",
    buggy="    return True",
    fixed="    return depth == 0",
    id="quixbugs/is_valid_parenthesization",
)


@pytest.fixture
def index() -> PairIndex:
    index = PairIndex()
    assert index.add(BITCOUNT, "pair")
    assert index.add(PARENS, "edit")
    return index


def test_buggy_statement_in_the_same_context_matches_with_its_fix(index: PairIndex) -> None:
    prefix = "def bitcount(n):\n    count = 0\n    while n:\n        n "
    (match,) = index.match(prefix, "^=n-1\n        count += 1")
    assert match == PatternMatch(
        "quixbugs/bitcount",
        "pair",
        "buggy",
        0,
        "matches the known bug quixbugs/bitcount (change_operator): `n ^= n - 1`",
        "        n &= n - 1",
    )


def test_whitespace_does_not_matter_but_tokens_do(index: PairIndex) -> None:
    prefix = "def bitcount(n):\n    count = 0\n    while n:\n"
    assert index.match(prefix, "        n   ^=   n-1")
    assert not index.match(prefix, "        n ^= n - 2")


def test_known_fix_is_reported_on_the_fixed_side_without_a_fix(index: PairIndex) -> None:
    prefix = "def bitcount(n):\n    count = 0\n    while n:\n"
    (match,) = index.match(prefix, "        n &= n - 1")
    assert (match.side, match.fix) == ("fixed", None)


def test_generic_statement_needs_agreeing_context(index: PairIndex) -> None:
    assert not index.match("def other(x):\n    if x:\n", "        return True")
    (match,) = index.match("    depth = 0\n    for paren in parens:\n        depth += 1\n", "    return True")
    assert (match.pattern_id, match.source, match.side) == (
        "quixbugs/is_valid_parenthesization",
        "edit",
        "buggy",
    )


def test_generic_context_lines_do_not_count_as_agreement() -> None:
    index = PairIndex()
    index.add(
        BugFixPair(
            prefix="        if depth < 0:\n            return False\n",
            buggy="    return True",
            fixed="    return depth == 0",
        )
    )
    assert not index.match("def other(x):\n    if x:\n        return False\n", "    return True")
    assert index.match("    if depth < 0:\n        return False\n", "    return True")


def test_context_may_come_from_earlier_lines_of_the_suggestion(index: PairIndex) -> None:
    matches = index.match("x = 1\n", "while n:\n    n ^= n - 1\n")
    assert [(m.line, m.side) for m in matches] == [(1, "buggy")]


def test_pair_without_meaningful_context_matches_anywhere() -> None:
    index = PairIndex()
    index.add(BugFixPair(prefix="", buggy="EXPIRES = 0", fixed="EXPIRES = 90"), "pair")
    assert index.match("import os\n", "EXPIRES = 0\n")


def test_duplicates_and_no_op_pairs_are_not_indexed() -> None:
    index = PairIndex()
    assert index.add(BITCOUNT)
    assert not index.add(BITCOUNT)
    assert not index.add(BugFixPair(prefix="", buggy="x = 1", fixed="x=1"))
    assert len(index) == 1
    with pytest.raises(ValueError, match="valid: pair, edit"):
        index.add(PARENS, "rule")


def test_catalogue_combines_rules_files_and_added_pairs(tmp_path) -> None:
    path = tmp_path / "pairs.jsonl"
    write_pairs(path, [BITCOUNT])
    catalogue = Catalogue.load([path])
    assert catalogue.counts() == {"rules": len(catalogue.rules()), "pairs": 1, "edits": 0}
    catalogue.add_pair(PARENS)
    assert catalogue.counts()["edits"] == 1
    matches = catalogue.check("def f(x):\n    ", "if x == None:\n        return 1")
    assert [(m.pattern_id, m.source, m.line, m.fix) for m in matches] == [
        ("none-comparison", "rule", 0, "    if x is None:")
    ]


def test_catalogue_reports_only_what_the_suggestion_wrote() -> None:
    catalogue = Catalogue()
    assert catalogue.check("    if x == None", ":\n        pass") == []
    assert catalogue.check("    if x == ", "None:") != []
    assert catalogue.check("x = 1\n", "   \n") == []


def test_catalogue_loads_pairs_from_the_store(isolated_home) -> None:
    from hotfix_engine.known_bugs import load_catalogue
    from hotfix_engine.store import Store

    assert load_catalogue(isolated_home).counts()["pairs"] == 0  # no store yet: none made
    assert not (isolated_home / "store.sqlite3").exists()
    with Store.open(isolated_home) as store:
        store.add_pairs([BITCOUNT], origin="mined")
    catalogue = load_catalogue(isolated_home)
    assert catalogue.counts()["pairs"] == 1


def test_catalogue_survives_a_corrupt_store(isolated_home) -> None:
    from hotfix_engine.known_bugs import load_catalogue

    isolated_home.mkdir(parents=True)
    (isolated_home / "store.sqlite3").write_bytes(b"this is not sqlite" * 100)
    assert load_catalogue(isolated_home).counts()["pairs"] == 0
