import pytest

from hotfix_engine.errors import DataError
from hotfix_engine.pairs import BugFixPair, load_pairs, normalize_statement, split_pairs, where_they_part


def test_normalize_statement_ignores_spacing():
    assert normalize_statement("if x==None :") == normalize_statement("if x == None:")
    assert normalize_statement("return a") != normalize_statement("return  b")


def test_pairs_are_cut_where_the_statements_part():
    pair = BugFixPair(
        prefix="", buggy="def add_item(item, items=[]):", fixed="def add_item(item, items=None):"
    )
    assert where_they_part(pair) == ("def add_item(item, items=", "[]):", "None):")
    cond = BugFixPair(prefix="def f(x):\n", buggy="    if x == None:\n", fixed="    if x is None:")
    assert where_they_part(cond) == ("def f(x):\n    if x ", "== None:", "is None:")
    longer = BugFixPair(prefix="", buggy="x = f(a)", fixed="x = f(a) + 1")
    assert where_they_part(longer) == ("x = f(a", ")", ") + 1")  # each side keeps a character
    deleted = BugFixPair(prefix="x = 1\n", buggy="print(x)", fixed="")
    assert where_they_part(deleted) == ("x = 1\n", "print(x)", "")


def test_load_pairs_reports_file_and_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"prefix": "", "buggy": "a", "fixed": "b"}\n{"prefix": 1}\n')
    with pytest.raises(DataError, match=r"pairs.jsonl:2: missing"):
        load_pairs(path)
    path.write_text("not json\n")
    with pytest.raises(DataError, match=r"pairs.jsonl:1: not valid JSON"):
        load_pairs(path)
    path.write_text("\n")
    with pytest.raises(DataError, match="empty"):
        load_pairs(path)


def test_split_is_deterministic_and_order_free():
    pairs = [BugFixPair(prefix=str(i), buggy="a", fixed="b") for i in range(50)]
    first = split_pairs(pairs, seed=3)
    again = split_pairs(list(reversed(pairs)), seed=3)
    assert first == again
    assert [len(first[k]) for k in ("train", "val", "test")] == [40, 5, 5]
