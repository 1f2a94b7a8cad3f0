"""The store keeps only the code near the cursor that training, the gate and evaluation read: new
records are cut to a window, old stores are cut on upgrade (every record kept), and the export
shows the cut text."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from hotfix_engine import store_redaction, store_schema
from hotfix_engine.cli import main
from hotfix_engine.errors import StoreError
from hotfix_engine.pairs import BugFixPair, load_pairs
from hotfix_engine.patterns import Catalogue
from hotfix_engine.store import Store
from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord

CATALOGUE = Catalogue()
CURSOR_LINE = "    if x == None:"  # a known bug with a rule fix: a rejection becomes a pair


def long_code(chars: int, marker: str) -> str:
    """Numbered lines of ordinary code, ``marker`` on the first line only, about ``chars`` long."""
    lines = [f"# {marker}"]
    while sum(len(line) + 1 for line in lines) < chars:
        lines.append(f"value_{len(lines)} = compute({len(lines)}, scale=2) + offset")
    return "\n".join(lines) + "\n"


def long_suggestion(sid: str, marker: str = "EARLY-CODE") -> SuggestionRecord:
    prefix = long_code(50_000, marker) + "def load(x):\n    "
    suffix = "  # rest of the line\n" + long_code(30_000, "LATE-CODE")
    text = "if x == None:\n        return {}"
    matches = tuple(CATALOGUE.check(prefix, text))
    assert matches, "the fixture must match a known bug"
    return SuggestionRecord(
        sid, time.time(), "python", "file:///w/app.py", prefix, suffix, text, "tiny", "v1", matches
    )


def stored_rows(store: Store, table: str) -> list[dict[str, object]]:
    return store.query(f"SELECT * FROM {table} ORDER BY id")


def assert_prefix_window(kept: str, original: str) -> None:
    """``kept`` is the end of ``original``, at most the window long, starting at a line start."""
    assert len(kept) <= store_redaction.STORED_PREFIX_CHARS
    assert original.endswith(kept)
    assert len(kept) < len(original)
    assert original[len(original) - len(kept) - 1] == "\n"  # no half line starts it
    assert len(kept) > store_redaction.STORED_PREFIX_CHARS - 200  # cut at the nearest line, not far off


def assert_suffix_window(kept: str, original: str) -> None:
    assert len(kept) <= store_redaction.STORED_SUFFIX_CHARS
    assert original.startswith(kept)
    assert kept.endswith("\n")  # no half line ends it
    assert len(kept) > store_redaction.STORED_SUFFIX_CHARS - 200


# -- the window ---------------------------------------------------------------------------------


def test_window_cuts_at_line_boundaries_and_leaves_short_text_alone() -> None:
    short = "import os\n\ndef f():\n    "
    assert store_redaction.prefix_window(short) == short
    assert store_redaction.suffix_window("x)\nreturn y\n") == "x)\nreturn y\n"
    text = long_code(20_000, "M")
    kept = store_redaction.prefix_window(text)
    assert_prefix_window(kept, text)
    assert (
        store_redaction.prefix_window(kept) == kept
    )  # cutting again changes nothing (migrations rely on it)
    after = store_redaction.suffix_window(text)
    assert_suffix_window(after, text)
    assert store_redaction.suffix_window(after) == after


def test_window_on_one_line_longer_than_it_is_still_bounded() -> None:
    minified = "x = [" + "1, " * 20_000
    assert len(store_redaction.prefix_window(minified)) == store_redaction.STORED_PREFIX_CHARS
    assert len(store_redaction.suffix_window(minified)) == store_redaction.STORED_SUFFIX_CHARS


def test_window_covers_the_longest_prompt_a_consumer_of_the_store_reads() -> None:
    from hotfix_engine.evaluation.sampling import DEFAULT_PROMPT_TOKENS
    from hotfix_engine.train_config import TrainConfig

    # The gate and evaluation prompt with up to DEFAULT_PROMPT_TOKENS of a pair's prefix; Gemma's
    # tokenizer averages 3.7 characters a token on the standard library (4.7 at most), so 5 a token
    # keeps their prompts exactly as they were. Training reads far less (64 tokens).
    assert store_redaction.STORED_PREFIX_CHARS >= DEFAULT_PROMPT_TOKENS * 5
    training_chars = TrainConfig().max_context * 12  # a generous 12 characters a token
    assert training_chars <= store_redaction.STORED_PREFIX_CHARS
    assert store_redaction.STORED_PREFIX_CHARS >= 2000  # train_data.from_store's retain text


# -- new records --------------------------------------------------------------------------------


def test_a_suggestion_with_a_50000_character_prefix_is_stored_as_the_window(isolated_home: Path) -> None:
    rec = long_suggestion("s1")
    with Store.open(isolated_home) as store:
        assert store.record_suggestion(rec)
        (row,) = stored_rows(store, "suggestions")
        assert_prefix_window(str(row["prefix"]), rec.prefix)
        assert str(row["prefix"]).endswith("def load(x):\n    ")  # the cursor's line is whole
        assert_suffix_window(str(row["suffix"]), rec.suffix)
        assert str(row["suffix"]).startswith("  # rest of the line\n")
        # A rejection still becomes the rule's pair, from the kept window.
        store.record_outcome(OutcomeRecord("s1", "rejected", "dismissed"))
        (stored,) = store.training_records().pairs
        assert stored.origin == "rule"
        assert (stored.pair.buggy, stored.pair.fixed) == (CURSOR_LINE, "    if x is None:")
        assert stored.pair.prefix == row["prefix"][: -len("    ")]
    assert b"EARLY-CODE" not in b"".join(p.read_bytes() for p in isolated_home.iterdir() if p.is_file())


def test_edit_pairs_and_added_pairs_are_stored_as_the_window(isolated_home: Path) -> None:
    rec = long_suggestion("e1")
    with Store.open(isolated_home, record="off") as store:
        store.record = "patterns"
        store._pending[rec.id] = rec  # dropped by the mode, remembered in memory only
        store.record_outcome(OutcomeRecord("e1", "edited", "edited", final_text="    if x is None:"))
        big = BugFixPair(
            prefix=long_code(50_000, "MINED"), buggy="a < b", fixed="a <= b",
            suffix=long_code(30_000, "AFTER"), id="mined-1",
        )  # fmt: skip
        assert store.add_pairs([big], origin="mined") == 1
        pairs = {p.pair.key: p.pair for p in store.pairs()}
        assert_prefix_window(pairs["mined-1"].prefix, big.prefix)
        assert_suffix_window(pairs["mined-1"].suffix, big.suffix)
        edit = pairs["edit-e1"]
        assert len(edit.prefix) <= store_redaction.STORED_PREFIX_CHARS
        assert rec.prefix.endswith(edit.prefix + "    ")
        assert len(edit.suffix) <= store_redaction.STORED_SUFFIX_CHARS
        (row,) = stored_rows(store, "suggestions")
        assert_prefix_window(str(row["prefix"]), rec.prefix)


# -- old stores ---------------------------------------------------------------------------------


def make_v1_store(folder: Path, records: int) -> dict[str, str]:
    """A store written by the first schema, with long contexts; returns each suggestion's prefix."""
    folder.mkdir(parents=True)
    db = sqlite3.connect(folder / "store.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in store_schema.MIGRATIONS[0].split(";"):  # type: ignore[union-attr]
        if statement.strip():
            db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    prefixes = {}
    for i in range(records):
        sid = f"old{i}"
        prefix = long_code(12_000 + 6_000 * i, f"OLD-CODE-{i}") + "def load(x):\n    "
        prefixes[sid] = prefix
        suffix = "\n" + long_code(6_000, f"OLD-AFTER-{i}")
        match = [m.to_json() for m in CATALOGUE.check(prefix, "if x == None:")]
        db.execute(
            "INSERT INTO suggestions VALUES (?, ?, 'python', 'file:///w/a.py', ?, ?, ?, 'tiny', NULL, ?)",
            (sid, float(i), prefix, suffix, "if x == None:", json.dumps(match)),
        )
        db.execute(
            "INSERT INTO outcomes (suggestion_id, kind, reason, created) VALUES (?, 'rejected', 'dismissed', ?)",
            (sid, float(i)),
        )
        db.execute(
            "INSERT INTO pairs VALUES (?, ?, ?, 'a < b', 'a <= b', ?, 'mined', '', '', 'mined', NULL)",
            (f"p{i}", float(i), prefix[:-4], suffix),
        )
        db.execute("INSERT INTO consumed VALUES ('v0001', ?, ?)", (f"pair:p{i}", float(i)))
    # A short record is left exactly as it was.
    db.execute(
        "INSERT INTO pairs VALUES ('short', 9.0, 'def f():\n', 'a < b', 'a <= b', 'x = 1', 'mined', '', '', 'mined', NULL)"
    )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return prefixes


def test_an_old_store_is_trimmed_on_open_and_keeps_every_record(isolated_home: Path) -> None:
    prefixes = make_v1_store(isolated_home, records=12)
    path = isolated_home / "store.sqlite3"
    size_before = path.stat().st_size
    with Store.open(isolated_home) as store:
        assert store.counts() == {
            "suggestions": 12, "outcomes": 12, "accepted": 0, "rejected": 12, "edited": 0,
            "pairs": 13, "edit_pairs": 0, "consumed": 12,
        }  # fmt: skip
        for row in stored_rows(store, "suggestions"):
            assert_prefix_window(str(row["prefix"]), prefixes[str(row["id"])])
            assert len(str(row["suffix"])) <= store_redaction.STORED_SUFFIX_CHARS
        for stored in store.pairs():
            if stored.pair.key == "short":
                assert (stored.pair.prefix, stored.pair.suffix) == ("def f():\n", "x = 1")
            else:
                assert len(stored.pair.prefix) <= store_redaction.STORED_PREFIX_CHARS
                assert len(stored.pair.suffix) <= store_redaction.STORED_SUFFIX_CHARS
        assert len(store.training_records().pairs) == 25  # 13 stored, 12 from the rule's fix
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == store_schema.SCHEMA_VERSION
    db.close()
    # Compacted once: the cut code is gone from the files, not only from the rows.
    assert path.stat().st_size < size_before / 3
    on_disk = b"".join(p.read_bytes() for p in isolated_home.iterdir() if p.is_file())
    assert b"OLD-CODE-11" not in on_disk


def test_trimming_an_old_store_is_one_transaction(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefixes = make_v1_store(isolated_home, records=3)

    def interrupted(db: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    # The trim runs, then a later step fails: nothing of the upgrade may stay.
    monkeypatch.setattr(store_schema, "MIGRATIONS", (*store_schema.MIGRATIONS, interrupted))
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", len(store_schema.MIGRATIONS))
    with pytest.raises(StoreError, match="cannot write"):
        Store.open(isolated_home)
    db = sqlite3.connect(isolated_home / "store.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert dict(db.execute("SELECT id, prefix FROM suggestions").fetchall()) == prefixes
    db.close()
    monkeypatch.undo()
    with Store.open(isolated_home) as store:
        assert store.counts()["suggestions"] == 3
        assert all(
            len(str(r["prefix"])) <= store_redaction.STORED_PREFIX_CHARS
            for r in stored_rows(store, "suggestions")
        )


# -- export -------------------------------------------------------------------------------------


def test_export_shows_the_kept_text(isolated_home: Path, tmp_path: Path) -> None:
    with Store.open(isolated_home) as store:
        assert store.record_suggestion(long_suggestion("x1"))
        store.record_outcome(OutcomeRecord("x1", "rejected", "dismissed"))
        (row,) = stored_rows(store, "suggestions")
    out = tmp_path / "export.jsonl"
    assert main(["data", "export", "--out", str(out)]) == 0
    (pair,) = load_pairs(out)
    assert pair.prefix == str(row["prefix"])[: -len("    ")]
    assert len(pair.prefix) <= store_redaction.STORED_PREFIX_CHARS
    assert "EARLY-CODE" not in out.read_text()
    (data,) = [json.loads(line) for line in out.read_text().splitlines()]
    # The stored pair fields and where the pair came from; nothing else (no file path, no model).
    assert set(data) == {"id", "source", "prefix", "buggy", "fixed", "suffix", "pattern", "tests", "origin"}


def test_export_of_an_old_store_shows_the_trimmed_text(isolated_home: Path, tmp_path: Path) -> None:
    make_v1_store(isolated_home, records=2)
    out = tmp_path / "export.jsonl"
    assert main(["data", "export", "--out", str(out)]) == 0
    pairs = load_pairs(out)
    assert len(pairs) == 5
    assert all(len(p.prefix) <= store_redaction.STORED_PREFIX_CHARS for p in pairs)
    assert "OLD-CODE-1" not in out.read_text()
