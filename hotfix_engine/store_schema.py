"""The store's schema and its migrations: the tables, and the steps that bring an older store up to date.

The SQLite store's versions are MIGRATIONS here (its version is ``PRAGMA user_version``); the
PostgreSQL store keeps its own list in store_pg.py, the same tables and data steps in its dialect,
then its scopes. The data steps (cut old records to the windows, redact them again with newer rules)
are plain SQL with ``?`` placeholders, so both lists run the same functions.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hotfix_engine.errors import StoreError
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.redact import redact
from hotfix_engine.store_redaction import (
    STORED_PREFIX_CHARS,
    STORED_SUFFIX_CHARS,
    prefix_window,
    redact_document,
    redact_final,
    redact_matches,
    redact_pair,
    suffix_window,
)

log = logging.getLogger(__name__)

# Stamped in every store's header (PRAGMA application_id), so that hotfix never takes over another
# file: "HFix". Stores made before the stamp are recognised by their tables and stamped on open.
APPLICATION_ID = int.from_bytes(b"HFix", "big")

# The first schema: the store's four tables.
SCHEMA_V1 = """
CREATE TABLE suggestions (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    language TEXT NOT NULL,
    uri TEXT NOT NULL,
    prefix TEXT NOT NULL,
    suffix TEXT NOT NULL,
    text TEXT NOT NULL,
    model TEXT NOT NULL,
    adapter TEXT,
    matches TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE outcomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    suggestion_id TEXT NOT NULL REFERENCES suggestions(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    final_text TEXT,
    created REAL NOT NULL
);
CREATE INDEX outcomes_by_suggestion ON outcomes(suggestion_id);
CREATE TABLE pairs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    prefix TEXT NOT NULL,
    buggy TEXT NOT NULL,
    fixed TEXT NOT NULL,
    suffix TEXT NOT NULL,
    source TEXT NOT NULL,
    pattern TEXT NOT NULL,
    tests TEXT NOT NULL,
    origin TEXT NOT NULL,
    suggestion_id TEXT
);
CREATE INDEX pairs_by_origin ON pairs(origin);
CREATE TABLE consumed (
    adapter_version TEXT NOT NULL,
    record_id TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (adapter_version, record_id)
) WITHOUT ROWID
"""
# The suppressions' table (hotfix_engine/suppressions.py): made when suppressions are first used in a
# SQLite store, and by the first migration of a PostgreSQL one.
SUPPRESSIONS_TABLE = """
CREATE TABLE IF NOT EXISTS suppressions (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    workspace TEXT NOT NULL,
    context TEXT NOT NULL,
    line_prefix TEXT NOT NULL,
    text TEXT NOT NULL,
    fix TEXT,
    suggestion_id TEXT,
    reason TEXT NOT NULL,
    learned_by TEXT
);
CREATE INDEX IF NOT EXISTS suppressions_by_site ON suppressions(workspace, context)
"""
# The store's own tables (what a purge empties and what marks a file made before the stamp).
TABLES = ("consumed", "outcomes", "pairs", "suggestions")
SUGGESTION_COLUMNS = "id, created, language, uri, prefix, suffix, text, model, adapter, matches"
PAIR_COLUMNS = "id, created, prefix, buggy, fixed, suffix, source, pattern, tests, origin, suggestion_id"


def v2_trim_context(db: Any) -> None:
    """Cut the prefix and suffix of every stored record to the windows (the tables are unchanged).

    Stores written before the windows kept up to ~78,000 characters before the cursor. Plain SQL,
    one row at a time: the PostgreSQL store runs this step too.
    """
    for table in ("suggestions", "pairs"):
        ids = db.execute(
            f"SELECT id FROM {table} WHERE length(prefix) > ? OR length(suffix) > ?",
            (STORED_PREFIX_CHARS, STORED_SUFFIX_CHARS),
        ).fetchall()
        for (rid,) in ids:
            prefix, suffix = db.execute(f"SELECT prefix, suffix FROM {table} WHERE id = ?", (rid,)).fetchone()
            db.execute(
                f"UPDATE {table} SET prefix = ?, suffix = ? WHERE id = ?",
                (prefix_window(prefix), suffix_window(suffix), rid),
            )


def v3_redact_again(db: Any) -> None:
    """Redact every stored text again, in place, with the rules that replaced the first ones.

    The first rules missed secrets (unquoted .env values, Authorization headers, IPv6 addresses,
    temporary AWS keys, many vendors' tokens, a secret split between the code and a suggestion);
    records are kept, only their text changes. The free pages left behind are zeroed (secure_delete)
    and given back by the compaction that follows a migration that changed rows.
    """
    rows = db.execute("SELECT id, uri, prefix, text, suffix, matches FROM suggestions").fetchall()
    if rows:
        log.info("redacting the %d stored suggestions again with the new rules (once)", len(rows))
    for sid, uri, prefix, text, suffix, matches in rows:
        new_prefix, (new_text,), new_suffix = redact_document(prefix, [text], suffix)
        new = (
            redact(uri),
            prefix_window(new_prefix),
            new_text,
            suffix_window(new_suffix),
            json.dumps(redact_matches(json.loads(matches))),
        )
        if new != (uri, prefix, text, suffix, json.dumps(json.loads(matches))):
            db.execute(
                "UPDATE suggestions SET uri = ?, prefix = ?, text = ?, suffix = ?, matches = ? WHERE id = ?",
                (*new, sid),
            )
    rows = db.execute(
        "SELECT o.id, o.final_text, s.prefix FROM outcomes o LEFT JOIN suggestions s ON s.id = o.suggestion_id "
        "WHERE o.final_text IS NOT NULL"
    ).fetchall()
    for oid, final_text, prefix in rows:
        new_final = redact_final(prefix or "", final_text)
        if new_final != final_text:
            db.execute("UPDATE outcomes SET final_text = ? WHERE id = ?", (new_final, oid))
    for row in db.execute("SELECT id, prefix, buggy, fixed, suffix, tests FROM pairs").fetchall():
        pair = redact_pair(BugFixPair(row[1], row[2], row[3], row[4], id=row[0], tests=row[5]))
        new = (prefix_window(pair.prefix), pair.buggy, pair.fixed, suffix_window(pair.suffix), pair.tests)
        if new != tuple(row[1:]):
            db.execute(
                "UPDATE pairs SET prefix = ?, buggy = ?, fixed = ?, suffix = ?, tests = ? WHERE id = ?",
                (*new, row[0]),
            )
    # Suppressions (hotfix_engine/suppressions.py) keep their own table in the store, when in use.
    if has_table(db, "suppressions"):
        rows = db.execute("SELECT id, context, line_prefix, text, fix FROM suppressions").fetchall()
        for sid, *texts in rows:
            new_texts = [None if t is None else redact(t) for t in texts]
            if new_texts != texts:
                db.execute(
                    "UPDATE suppressions SET context = ?, line_prefix = ?, text = ?, fix = ? WHERE id = ?",
                    (*new_texts, sid),
                )


def has_table(db: Any, name: str) -> bool:
    """Whether the store has table ``name``: the one question a shared migration step asks the dialect."""
    if isinstance(db, sqlite3.Connection):
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return db.execute(query, (name,)).fetchone() is not None
    return bool(db.has_table(name))


# The SQLite store's schema versions. Each entry upgrades the schema by one version (SQL, or a step run
# on the connection); never edit a released entry, append a new one. All pending entries run in one
# transaction. The data steps are plain SQL, shared with the PostgreSQL store's list (store_pg.py):
# a step that both stores need is appended to both.
MIGRATIONS: tuple[str | Callable[[Any], None], ...] = (SCHEMA_V1, v2_trim_context, v3_redact_again)
SCHEMA_VERSION = len(MIGRATIONS)


def too_new(where: str, version: int, known: int) -> StoreError:
    """The error for a store that a newer hotfix upgraded: never downgraded, never guessed at."""
    return StoreError(
        f"the store {where} has schema version {version}, newer than this hotfix understands "
        f"({known}); upgrade hotfix"
    )


def upgrade(
    db: Any,
    version: int,
    steps: Sequence[str | Callable[[Any], None]],
    set_version: Callable[[int], object],
    where: str,
) -> None:
    """Run the migration steps past ``version`` on ``db``, inside the caller's transaction."""
    for number in range(version, len(steps)):
        step = steps[number]
        if callable(step):
            step(db)
        else:
            for statement in step.split(";"):
                if statement.strip():
                    db.execute(statement)
        set_version(number + 1)
        log.info("store %s migrated to schema version %d", where, number + 1)


def migrate_sqlite(db: sqlite3.Connection, path: Path) -> bool:
    """Upgrade the schema to SCHEMA_VERSION in one transaction; True when rows already there changed."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise too_new(str(path), version, SCHEMA_VERSION)
        before = db.total_changes
        upgrade(
            db,
            version,
            MIGRATIONS[:SCHEMA_VERSION],
            lambda number: db.execute(f"PRAGMA user_version = {number}"),
            str(path),
        )
        changed = db.total_changes > before
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return changed
