"""Pairs into learn/unlearn examples with changed-token masks; retain windows; store data; hashes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from tiny_model import build_tokenizer

from hotfix_engine import train_data as td
from hotfix_engine.errors import DataError
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.prompts import prompt_for


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def decode(tok, ids):
    return tok.decode(list(ids))


def test_changed_mask_marks_replaced_tokens_only():
    assert td.changed_mask([1, 2, 3, 4], [1, 9, 3, 4]) == [False, True, False, False]
    assert td.changed_mask([1, 9, 3, 4], [1, 2, 3, 4]) == [False, True, False, False]


def test_changed_mask_marks_the_divergence_point_of_an_insertion():
    # fixed = buggy with tokens inserted before 3: the buggy side's 3 is where the two part ways.
    assert td.changed_mask([1, 2, 3], [1, 2, 7, 8, 3]) == [False, False, True]
    assert td.changed_mask([1, 2, 7, 8, 3], [1, 2, 3]) == [False, False, True, True, False]
    assert td.changed_mask([1, 2], [1, 2, 5]) == [False, True]  # appended at the end


def test_pair_example_shares_the_context_and_masks_the_diff(tok):
    pair = BugFixPair(prefix="def f(a, b):\n", buggy="    return a - b", fixed="    return a + b")
    example = td.pair_example(tok, pair)
    assert example.key == pair.key
    fixed, buggy = example.fixed, example.buggy
    assert fixed.ids[: fixed.start] == buggy.ids[: buggy.start]
    assert decode(tok, fixed.ids) == pair.prefix + pair.fixed + "\n"
    # The prefix's last newline may merge with the indentation: the target then starts one token early.
    assert decode(tok, fixed.target).endswith(pair.fixed + "\n")
    changed_fixed = "".join(tok.decode([t]) for t, c in zip(fixed.target, fixed.changed, strict=True) if c)
    changed_buggy = "".join(tok.decode([t]) for t, c in zip(buggy.target, buggy.changed, strict=True) if c)
    assert "+" in changed_fixed and "-" in changed_buggy
    assert "return" not in changed_fixed + changed_buggy


def test_examples_are_prompted_as_suggestions_are_served(tok):
    """The context is the serving prompt (prompts.prompt_for); a healed token starts the target."""
    context, target = td.tokenize_target(tok, "x = fo", "o(1)\n", max_context=100, max_target=100)
    served = prompt_for(tok, "x = fo", budget=100)
    assert context == served.ids and served.healed and "x = fo".endswith(served.healed)
    assert tok.decode(target) == served.healed + "o(1)\n"
    assert tok.decode(context + target, skip_special_tokens=True) == "x = foo(1)\n"


def test_context_is_cut_at_a_line_start_and_targets_from_the_right(tok):
    prefix = "".join(f"value_{i} = {i}\n" for i in range(50))
    context, target = td.tokenize_target(tok, prefix, "total = 1\n", max_context=24, max_target=3)
    assert len(context) <= 25 and len(target) == 3  # 24 and the BOS
    text = tok.decode(context, skip_special_tokens=True)
    assert text.endswith("_49 = 49\n") and text.startswith("value_")


def test_empty_side_is_left_out_and_identical_sides_are_an_error(tok):
    deleted = BugFixPair(prefix="x = 1\n", buggy="print(x)", fixed="")
    example = td.pair_example(tok, deleted)
    assert example.fixed is None and example.buggy is not None and all(example.buggy.changed)
    with pytest.raises(DataError, match="the same"):
        td.pair_example(tok, BugFixPair(prefix="", buggy="x = 1", fixed="x = 1  "))


class CharTokenizer:
    """A tokenizer with an unknown token, so that some text genuinely does not tokenize."""

    unk_token_id = 0
    pad_token_id = 1
    eos_token_id = 1
    bos_token_id = None
    all_special_ids = [0, 1]

    def __call__(self, text, add_special_tokens=True):
        ids = [ord(c) if ord(c) < 128 else self.unk_token_id for c in text]
        return _Encoding(input_ids=ids)

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids)


class _Encoding(dict):
    """Both spellings transformers' tokenizers answer to: ``enc["input_ids"]`` and ``enc.input_ids``."""

    def __getattr__(self, name):
        return self[name]


def test_pairs_that_do_not_tokenize_are_named_together():
    pairs = [
        BugFixPair(prefix="a = 1\n", buggy="b = a", fixed="b = a + 1", id="fine"),
        BugFixPair(prefix="a = 1\n", buggy="s = 'é'", fixed="s = 'è'", id="accents"),
        BugFixPair(prefix="a = 1\n", buggy="t = '→'", fixed="t = '←'", id="arrows"),
    ]
    with pytest.raises(DataError, match=r"2 training example\(s\) do not tokenize: accents .*arrows"):
        td.build_examples(CharTokenizer(), pairs)
    assert len(td.build_examples(CharTokenizer(), pairs[:1])) == 1


def test_unlearn_only_examples_unlearn_the_first_statement(tok):
    examples = td.build_examples(tok, [], [("rec1", "def f(x):\n", "\n    return x - 1\n    pass\n")])
    (example,) = examples
    assert example.key == "rec1" and example.fixed is None
    assert tok.decode(example.buggy.target).endswith("    return x - 1\n")
    assert all(example.buggy.changed)


def test_code_windows_have_exact_length_and_avoid_the_probe_modules(tok):
    files = td.stdlib_files()
    assert files and not {p.stem for p in files} & set(td.PROBE_MODULES)
    windows = td.code_windows(tok, files, count=5, tokens=24, seed=1)
    assert len(windows) == 5 and {len(w) for w in windows} == {24}
    assert windows == td.code_windows(tok, files, count=5, tokens=24, seed=1)
    assert windows != td.code_windows(tok, files, count=5, tokens=24, seed=2)


def test_workspace_files_skip_virtual_environments(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "dep.py").write_text("y = 2\n")
    assert td.workspace_files([tmp_path]) == [tmp_path / "pkg" / "mod.py"]


def test_retention_probe_texts_are_code():
    texts = td.retention_probe_texts()
    assert len(texts) >= 4 and all("def " in text for text in texts)


def test_training_data_hashes_follow_the_content(tok):
    pairs = [BugFixPair(prefix="def f(a, b):\n", buggy="    return a - b", fixed="    return a + b")]
    one = td.build_training_data(tok, pairs, retain_windows=2, window_tokens=16)
    same = td.build_training_data(tok, list(pairs), retain_windows=2, window_tokens=16)
    other = td.build_training_data(
        tok,
        [BugFixPair(prefix="def f(a, b):\n", buggy="    return a * b", fixed="    return a + b")],
        retain_windows=2,
        window_tokens=16,
    )
    assert one.hashes == same.hashes
    assert one.hashes["pairs"] != other.hashes["pairs"]
    assert one.counts == {"pairs": 1, "unlearn_only": 0, "retain_windows": 2}
    with pytest.raises(DataError, match="no training data"):
        td.build_training_data(tok, [])


def test_store_texts_come_first_in_the_retain_windows(tok):
    text = "def g(items):\n" + "".join(f"    items.append({i})\n" for i in range(20))
    data = td.build_training_data(
        tok,
        [BugFixPair(prefix="", buggy="x = 1", fixed="x = 2")],
        retain_texts=[text],
        retain_windows=4,
        window_tokens=16,
    )
    assert len(data.retain) == 4
    assert tok.decode(data.retain[0]) in text


@dataclass
class _Stored:
    pair: BugFixPair
    record_id: str


@dataclass
class _Text:
    prefix: str
    text: str
    record_id: str


@dataclass
class _Records:
    pairs: list
    unlearn_only: list
    retain: list


class FakeStore:
    def __init__(self):
        self.asked = None

    def training_records(self, *, not_consumed_by=None):
        self.asked = not_consumed_by
        return _Records(
            [_Stored(BugFixPair(prefix="p\n", buggy="x == None", fixed="x is None"), "r1")],
            [_Text("def f():\n", "    return 1/0", "r2")],
            [_Text("def g():\n", "    return 2", "r3")],
        )


def test_store_records_become_pairs_unlearn_only_and_retain():
    store = FakeStore()
    data = td.from_store(store, not_consumed_by="v0002")
    assert store.asked == "v0002"
    assert [p.fixed for p in data.pairs] == ["x is None"]
    assert data.unlearn_only == [("r2", "def f():\n", "    return 1/0")]
    assert data.retain_texts == ["def g():\n    return 2"]
    assert data.record_ids == ["r1", "r2", "r3"]
