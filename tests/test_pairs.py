import pytest

from hotfix_engine.errors import DataError
from hotfix_engine.pairs import BugFixPair, at_divergence, load_pairs, normalize_statement, split_pairs


def test_normalize_statement_ignores_spacing():
    assert normalize_statement("if x==None :") == normalize_statement("if x == None:")
    assert normalize_statement("return a") != normalize_statement("return  b")


def test_at_divergence_prompts_where_the_lines_part():
    pair = BugFixPair(
        prefix="", buggy="def add_item(item, items=[]):", fixed="def add_item(item, items=None):"
    )
    assert at_divergence(pair).prefix == "def add_item(item, items"
    cond = BugFixPair(prefix="def f(x):\n", buggy="    if x == None:", fixed="    if x is None:")
    assert at_divergence(cond).prefix == "def f(x):\n    if x"
    word = BugFixPair(prefix="", buggy="    total = count + 1", fixed="    total = counter + 1")
    assert at_divergence(word).prefix == "    total"
    apart = BugFixPair(prefix="x = 1\n", buggy="return a", fixed="returned(a)")
    assert at_divergence(apart) == apart


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
