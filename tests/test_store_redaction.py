"""The store's redaction: every text written is redacted as one document, exports are redacted
again, and stores written under the first rules are redacted again on upgrade (schema 3)."""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path

from hotfix_engine.pairs import BugFixPair
from hotfix_engine.store import Store
from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord
from hotfix_engine.store_redaction import STORED_PREFIX_CHARS
from hotfix_engine.store_schema import SCHEMA_VERSION

TOKEN = "ghp_Mg5BhozKfWnQeHX2Spiofm28pWkF3gmJWs3A"
PASSWORD = "Tundra5853_uI4x"
ENV_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY9xAmP1eKey"


def _suggestion(sid: str, prefix: str, text: str, suffix: str = "\n") -> SuggestionRecord:
    return SuggestionRecord(
        sid, time.time(), "python", "file:///w/app.py", prefix, suffix, text, "tiny", None
    )


def _files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("store.sqlite3"))


def test_a_secret_split_by_the_cursor_is_redacted_in_both_pieces(isolated_home: Path) -> None:
    with Store.open(isolated_home, record="all") as store:
        store.record_suggestion(_suggestion("s1", 'GITHUB_TOKEN = "' + TOKEN[:14], TOKEN[14:] + '"'))
        store.record_outcome(OutcomeRecord("s1", "accepted", "command"))
        store.record_outcome(OutcomeRecord("s1", "edited", "edited", f'GITHUB_TOKEN = "{TOKEN}"  # rotate'))
        row = sqlite3.connect(store.path).execute("SELECT prefix, text FROM suggestions").fetchone()
    assert row == ('GITHUB_TOKEN = "<SECRET>', '<SECRET>"')
    for piece in (TOKEN, TOKEN[4:14], TOKEN[14:30]):
        assert piece.encode() not in _files(isolated_home)


def test_a_long_document_costs_a_window_not_the_whole_file(isolated_home: Path) -> None:
    prefix = "x = 1\n" * 400_000 + f"DB_PASSWORD={PASSWORD}\n"
    with Store.open(isolated_home, record="all") as store:
        started = time.perf_counter()
        store.record_suggestion(_suggestion("s1", prefix, "y = 2"))
        elapsed = time.perf_counter() - started
        stored = sqlite3.connect(store.path).execute("SELECT prefix FROM suggestions").fetchone()[0]
    assert elapsed < 2.0
    assert len(stored) <= STORED_PREFIX_CHARS and stored.endswith("DB_PASSWORD=<SECRET>\n")


def test_export_redacts_again_what_the_store_holds(isolated_home: Path) -> None:
    with Store.open(isolated_home, record="all") as store:
        store.add_pairs([BugFixPair("import os\n", "x = 1", "x = 2", "", id="p1", source="import")], "import")
        # As a store written under older rules holds it: the raw secret in every field.
        raw = sqlite3.connect(store.path, isolation_level=None)
        raw.execute(
            "UPDATE pairs SET prefix = ?, buggy = ?, fixed = ?",
            (f"AWS_SECRET_ACCESS_KEY={ENV_KEY}\n", f'password = "{PASSWORD}"', f'password = "{PASSWORD}!"'),
        )
        raw.close()
        out = io.StringIO()
        assert store.export_pairs(out) == 1
    assert ENV_KEY not in out.getvalue() and PASSWORD not in out.getvalue()
    assert "<SECRET>" in out.getvalue()


def test_a_store_from_the_first_rules_is_redacted_again_on_upgrade(isolated_home: Path) -> None:
    with Store.open(isolated_home, record="all") as store:
        store.record_suggestion(_suggestion("s1", "import os\n", "x = 1"))
        store.record_outcome(OutcomeRecord("s1", "accepted", "command"))
        store.record_outcome(OutcomeRecord("s1", "edited", "edited", "x = 2"))
        store.add_pairs([BugFixPair("import os\n", "y = 1", "y = 2", "", id="p1", source="import")], "import")
        counts = store.counts()
    # What the first rules let through, written in place, and the store put back at schema 2.
    raw = sqlite3.connect(isolated_home / "store.sqlite3", isolation_level=None)
    raw.execute(
        "UPDATE suggestions SET prefix = ?, text = ?, suffix = ?",
        (
            f"DB_PASSWORD={PASSWORD}\n",
            f'headers = {{"Authorization": "Bearer {TOKEN}"}}',
            "ping6 2001:db8::1\n",
        ),
    )
    raw.execute(
        "UPDATE outcomes SET final_text = ? WHERE kind = 'edited'",
        (f"export AWS_SECRET_ACCESS_KEY={ENV_KEY}",),
    )
    raw.execute(
        "UPDATE pairs SET prefix = ?, tests = ?", (f"  password: {PASSWORD}\n", f"assert login('{TOKEN}')")
    )
    raw.execute("PRAGMA user_version = 2")
    raw.close()
    assert PASSWORD.encode() in _files(isolated_home)

    with Store.open(isolated_home, record="all") as store:
        assert store.counts() == counts  # every record kept
        row = sqlite3.connect(store.path).execute("SELECT prefix, text, suffix FROM suggestions").fetchone()
    assert row == ("DB_PASSWORD=<SECRET>\n", 'headers = {"Authorization": "Bearer <SECRET>"}', "ping6 <IP>\n")
    db = sqlite3.connect(isolated_home / "store.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    db.close()
    data = _files(isolated_home)
    for secret in (PASSWORD, TOKEN, ENV_KEY, "2001:db8::1"):
        assert secret.encode() not in data, secret
