"""The feedback store: what was suggested, what the user did with it, and the bug-fix pairs learnt.

One SQLite file in WAL mode under the data folder, readable by its owner only. Several servers and
one trainer use it at once: every write is one short ``BEGIN IMMEDIATE`` transaction, readers never
block writers, and a busy timeout absorbs the rest. A crash or kill loses at most the event being
written; WAL commits are atomic, so the file is never left half-written.

Nothing is written unredacted (e-mail addresses, IPs and secrets become placeholders), and the
``record`` mode decides what is kept at all: ``patterns`` (default) keeps suggestions that match a
known pattern plus the user's own edit pairs, ``all`` keeps every suggestion, ``off`` keeps nothing.
Of the code around the cursor, only the windows that training, the gate and evaluation read are
kept (STORED_PREFIX_CHARS before, STORED_SUFFIX_CHARS after).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hotfix_engine.errors import ConfigError, StoreError
from hotfix_engine.pairs import BugFixPair, normalize_statement
from hotfix_engine.paths import store_path
from hotfix_engine.patterns.matcher import PatternMatch
from hotfix_engine.redact import redact

log = logging.getLogger(__name__)

RECORD_MODES = ("patterns", "all", "off")
OUTCOME_KINDS = ("accepted", "rejected", "edited")
OUTCOME_REASONS = ("command", "typed", "partial", "superseded", "diverged", "dismissed", "expired", "edited")
# Seconds a writer waits for another process's transaction before giving up with StoreError.
BUSY_TIMEOUT_S = 10.0
# Suggestions the record mode dropped are remembered in memory (never on disk) for this many,
# so that a later "edited" outcome can still become a pair.
PENDING_SUGGESTIONS = 512
# Code kept around the cursor. The most any consumer of the store reads is the gate's and evaluation's
# prompt, 1536 tokens of a pair's prefix (evaluation.sampling.DEFAULT_PROMPT_TOKENS): 3.7 characters
# a token with Gemma's tokenizer on the standard library, 4.7 at most. Training reads 64 tokens.
STORED_PREFIX_CHARS = 8192
# After the cursor: the rest of its line (edit and rule pairs end their buggy line with it) and
# about the 20 lines a fill-in-the-middle prompt reads (prompts.SUFFIX_LINES); nothing reads more.
STORED_SUFFIX_CHARS = 2048

_V1 = """
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


def prefix_window(text: str) -> str:
    """The end of ``text`` within STORED_PREFIX_CHARS, from a line start (as prompts.tail_tokens cuts).

    A line longer than the whole window is cut where the window starts: bounded beats whole.
    """
    if len(text) <= STORED_PREFIX_CHARS:
        return text
    start = len(text) - STORED_PREFIX_CHARS
    newline = text.find("\n", start - 1)
    return text[newline + 1 if newline >= 0 else start :]


def suffix_window(text: str) -> str:
    """The start of ``text`` within STORED_SUFFIX_CHARS, up to the end of a line."""
    if len(text) <= STORED_SUFFIX_CHARS:
        return text
    newline = text.rfind("\n", 0, STORED_SUFFIX_CHARS)
    return text[: newline + 1 if newline >= 0 else STORED_SUFFIX_CHARS]


def _v2_trim_context(db: sqlite3.Connection) -> None:
    """Cut the prefix and suffix of every stored record to the windows (the tables are unchanged).

    Stores written before the windows kept up to ~78,000 characters before the cursor.
    """
    db.create_function("hotfix_prefix_window", 1, prefix_window, deterministic=True)
    db.create_function("hotfix_suffix_window", 1, suffix_window, deterministic=True)
    for table in ("suggestions", "pairs"):
        db.execute(
            f"UPDATE {table} SET prefix = hotfix_prefix_window(prefix), suffix = hotfix_suffix_window(suffix) "
            "WHERE length(prefix) > ? OR length(suffix) > ?",
            (STORED_PREFIX_CHARS, STORED_SUFFIX_CHARS),
        )


# Each entry upgrades the schema by one version (SQL, or a step run on the connection); never
# edit a released entry, append a new one. All pending entries run in one transaction.
MIGRATIONS: tuple[str | Callable[[sqlite3.Connection], None], ...] = (_V1, _v2_trim_context)
SCHEMA_VERSION = len(MIGRATIONS)
_TABLES = ("consumed", "outcomes", "pairs", "suggestions")


@dataclass(frozen=True)
class SuggestionRecord:
    """A shown suggestion and the context needed to train on it."""

    id: str
    created: float
    language: str
    uri: str
    prefix: str
    suffix: str
    text: str
    model: str
    adapter: str | None
    matches: tuple[PatternMatch, ...] = ()

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a suggestion record needs an id")


@dataclass(frozen=True)
class OutcomeRecord:
    """What became of a suggestion. ``final_text`` (for "edited") is the line the user ended with."""

    suggestion_id: str
    kind: str
    reason: str
    final_text: str | None = None
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.kind not in OUTCOME_KINDS:
            raise ValueError(f"unknown outcome kind {self.kind!r}; valid: {', '.join(OUTCOME_KINDS)}")
        if self.reason not in OUTCOME_REASONS:
            raise ValueError(f"unknown outcome reason {self.reason!r}; valid: {', '.join(OUTCOME_REASONS)}")
        if self.kind == "edited" and self.final_text is None:
            raise ValueError("an 'edited' outcome needs final_text")


@dataclass(frozen=True)
class StoredPair:
    """A pair from the store; ``record_id`` is what :meth:`Store.mark_consumed` takes."""

    pair: BugFixPair
    record_id: str
    origin: str


@dataclass(frozen=True)
class StoredText:
    prefix: str
    text: str
    record_id: str


@dataclass(frozen=True)
class TrainingRecords:
    """What the trainer learns from: ``pairs`` (learn the fix, unlearn the bug), ``unlearn_only``
    (rejected buggy suggestions with no known fix) and ``retain`` (accepted clean suggestions)."""

    pairs: list[StoredPair]
    unlearn_only: list[StoredText]
    retain: list[StoredText]


def _edit_pair(rec: SuggestionRecord, final_text: str) -> BugFixPair | None:
    """The (buggy, fixed) pair of an accepted suggestion the user then changed.

    ``final_text`` is what the suggested line (or lines) became. When one line of a multi-line
    suggestion changed, that line is the pair; a one-line final text pairs with the suggested line
    most like it; otherwise the whole block is. ``None`` when nothing but layout changed.
    """
    from hotfix_engine.patterns.classify import classify_pair

    head = rec.prefix[rec.prefix.rfind("\n") + 1 :]
    base = rec.prefix[: len(rec.prefix) - len(head)]
    lines = (head + rec.text + rec.suffix).split("\n")
    suggested = (head + rec.text).count("\n") + 1
    final = final_text.strip("\n")
    finals = final.split("\n")
    first, last = 0, suggested
    if len(finals) == suggested:
        changed = [
            i for i in range(suggested) if normalize_statement(lines[i]) != normalize_statement(finals[i])
        ]
        if len(changed) == 1:
            first, last, final = changed[0], changed[0] + 1, finals[changed[0]]
    elif len(finals) == 1:
        target = normalize_statement(final)
        best = max(
            (i for i in range(suggested) if lines[i].strip()),
            key=lambda i: difflib.SequenceMatcher(None, normalize_statement(lines[i]), target).ratio(),
            default=None,
        )
        if best is not None:
            first, last = best, best + 1
    buggy = "\n".join(lines[first:last])
    if not final.strip() or normalize_statement(buggy) == normalize_statement(final):
        return None
    indent = buggy[: len(buggy) - len(buggy.lstrip())]
    fixed = final if final != final.lstrip() or not indent else indent + final
    return BugFixPair(
        prefix=base + "".join(line + "\n" for line in lines[:first]),
        buggy=buggy,
        fixed=fixed,
        suffix="\n".join(lines[last:]),
        id=f"edit-{rec.id}",
        source="edit",
        pattern=classify_pair(buggy, fixed),
    )


def _redact_pair(pair: BugFixPair) -> BugFixPair:
    return BugFixPair(
        prefix=redact(pair.prefix),
        buggy=redact(pair.buggy),
        fixed=redact(pair.fixed),
        suffix=redact(pair.suffix),
        id=pair.key,
        source=pair.source,
        pattern=pair.pattern,
        tests=redact(pair.tests),
        extra=pair.extra,
    )


def _create_private(path: Path) -> None:
    """Create the store file readable by its owner only, before SQLite opens it.

    SQLite gives its -wal and -shm files the mode of the database file, so they inherit 0600.
    """
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


class Store:
    """The feedback store. Safe to share between threads; several processes may open it at once."""

    def __init__(self, connection: sqlite3.Connection, path: Path, record: str) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._lock = threading.RLock()
        self._pending: OrderedDict[str, SuggestionRecord] = OrderedDict()
        self.path = path
        self.record = record

    @property
    def record(self) -> str:
        return self._record

    @record.setter
    def record(self, mode: str) -> None:
        if mode not in RECORD_MODES:
            raise ConfigError(f"unknown record mode {mode!r}; valid: {', '.join(RECORD_MODES)}")
        self._record = mode

    @classmethod
    def open(cls, data_dir: Path, record: str = "patterns") -> Store:
        """Open (creating and migrating as needed) the store in ``data_dir``; StoreError on failure."""
        if record not in RECORD_MODES:
            raise ConfigError(f"unknown record mode {record!r}; valid: {', '.join(RECORD_MODES)}")
        data_dir = Path(data_dir)
        path = store_path(data_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            _create_private(path)
        except OSError as exc:
            raise StoreError(f"cannot create the store in {data_dir}: {exc.strerror or exc}") from None
        try:
            connection = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from None
        try:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                log.warning("store %s is in %s mode, not WAL: concurrent use will be slower", path, mode)
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA secure_delete=ON")
            check = connection.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            if _migrate(connection, path):
                # Rows an upgrade rewrote (old stores' long contexts, cut to the windows) leave free
                # pages behind: secure_delete has zeroed them, compaction gives the space back.
                _compact(connection, path)
        except sqlite3.DatabaseError as exc:
            connection.close()
            message = str(exc)
            if "locked" in message or "busy" in message:
                raise StoreError(
                    f"the store {path} is locked by another process ({exc}); try again"
                ) from None
            if isinstance(exc, sqlite3.OperationalError) and any(
                word in message for word in ("readonly", "read-only", "unable to open", "disk", "I/O")
            ):
                raise StoreError(f"cannot write the store {path}: {exc}") from None
            raise StoreError(
                f"the store {path} is corrupt or not a hotfix store ({exc}); move it aside or run `hotfix data purge --yes`"
            ) from None
        except BaseException:
            connection.close()
            raise
        return cls(connection, path, record)

    # -- plumbing -------------------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self.path} is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; sqlite errors become StoreError, nothing half-written stays."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from None
            try:
                yield db
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"cannot write to the store {self.path}: {exc}") from None
                raise

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            db = self._db
            try:
                cursor = db.execute(sql, params)
                columns = [d[0] for d in cursor.description]
                return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events ---------------------------------------------------------------------------

    def record_suggestion(self, rec: SuggestionRecord) -> bool:
        """Store a shown suggestion; False when the record mode drops it (nothing is written)."""
        if self.record == "off":
            return False
        if self.record == "patterns" and not rec.matches:
            with self._lock:
                self._pending[rec.id] = rec
                self._pending.move_to_end(rec.id)
                while len(self._pending) > PENDING_SUGGESTIONS:
                    self._pending.popitem(last=False)
            return False
        with self._write() as db:
            self._insert_suggestion(db, rec)
        return True

    def _insert_suggestion(self, db: sqlite3.Connection, rec: SuggestionRecord) -> None:
        # Redacted before the cut: a secret spanning lines (a PEM key) is only recognised whole.
        matches = [
            {**m.to_json(), "message": redact(m.message), "fix": None if m.fix is None else redact(m.fix)}
            for m in rec.matches
        ]
        db.execute(
            "INSERT OR IGNORE INTO suggestions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.id,
                rec.created,
                rec.language,
                redact(rec.uri),
                prefix_window(redact(rec.prefix)),
                suffix_window(redact(rec.suffix)),
                redact(rec.text),
                rec.model,
                rec.adapter,
                json.dumps(matches),
            ),
        )

    def record_outcome(self, out: OutcomeRecord) -> None:
        """Store what became of a suggestion; an "edited" outcome also stores the bug-fix pair.

        Outcomes of suggestions the record mode dropped are not stored, except edits: the user's
        own fix is always kept (unless the mode is ``off``).
        """
        if self.record == "off":
            return
        with self._lock:
            # An accepted suggestion is edited later: keep it pending until then.
            pending = (
                self._pending.pop(out.suggestion_id, None)
                if out.kind == "edited"
                else self._pending.get(out.suggestion_id)
            )
            with self._write() as db:
                row = db.execute("SELECT * FROM suggestions WHERE id = ?", (out.suggestion_id,)).fetchone()
                if row is None:
                    if pending is None or out.kind != "edited":
                        return
                    self._insert_suggestion(db, pending)
                    rec = pending
                else:
                    rec = _suggestion_from_row(row)
                db.execute(
                    "INSERT INTO outcomes (suggestion_id, kind, reason, final_text, created) VALUES (?, ?, ?, ?, ?)",
                    (
                        out.suggestion_id,
                        out.kind,
                        out.reason,
                        None if out.final_text is None else redact(out.final_text),
                        out.created,
                    ),
                )
                if out.kind == "edited" and out.final_text is not None:
                    pair = _edit_pair(rec, out.final_text)
                    if pair is not None:
                        self._insert_pair(db, pair, "edit", out.suggestion_id)

    def _insert_pair(
        self, db: sqlite3.Connection, pair: BugFixPair, origin: str, suggestion_id: str | None
    ) -> bool:
        pair = _redact_pair(pair)
        if normalize_statement(pair.buggy) == normalize_statement(pair.fixed):
            return False  # only a secret changed (one redacted value for another): nothing to learn
        cursor = db.execute(
            "INSERT OR IGNORE INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                pair.key,
                time.time(),
                prefix_window(pair.prefix),
                pair.buggy,
                pair.fixed,
                suffix_window(pair.suffix),
                pair.source,
                pair.pattern,
                pair.tests,
                origin,
                suggestion_id,
            ),
        )
        return cursor.rowcount > 0

    def add_pairs(self, pairs: Iterable[BugFixPair], origin: str) -> int:
        """Store pairs (mined, imported); returns how many were new. Ignores the record mode:
        adding pairs is an explicit request, not something observed in the editor."""
        added = 0
        with self._write() as db:
            for pair in pairs:
                added += self._insert_pair(db, pair, origin, None)
        return added

    # -- training -------------------------------------------------------------------------

    def pairs(self, origin: str | None = None) -> list[StoredPair]:
        sql = "SELECT * FROM pairs" + (" WHERE origin = ?" if origin else "") + " ORDER BY created, id"
        return [_stored_pair(row) for row in self._read(sql, (origin,) if origin else ())]

    def training_records(self, *, not_consumed_by: str | None = None) -> TrainingRecords:
        """Pairs, unlearn-only and retain texts, leaving out what ``not_consumed_by`` has consumed.

        A rejected suggestion whose match carries a fix becomes a pair (origin "rule"); one that
        matched a known bug without a fix, or that the user explicitly dismissed, is unlearn-only.
        Superseded rejections of clean code are not unlearnt: moving on is not a verdict.
        """
        consumed: set[str] = set()
        if not_consumed_by is not None:
            rows = self._read("SELECT record_id FROM consumed WHERE adapter_version = ?", (not_consumed_by,))
            consumed = {row["record_id"] for row in rows}
        pairs = [
            p
            for p in (_stored_pair(row) for row in self._read("SELECT * FROM pairs ORDER BY created, id"))
            if p.record_id not in consumed
        ]
        paired = {
            row["suggestion_id"]
            for row in self._read("SELECT suggestion_id FROM pairs WHERE suggestion_id IS NOT NULL")
        }
        rows = self._read(
            """SELECT s.*, o.kind AS outcome, o.reason AS reason FROM suggestions s
               JOIN outcomes o ON o.id = (SELECT MAX(id) FROM outcomes WHERE suggestion_id = s.id)
               ORDER BY s.created, s.id"""
        )
        unlearn, retain = [], []
        for row in rows:
            record_id = f"suggestion:{row['id']}"
            if record_id in consumed or row["id"] in paired:
                continue
            rec = _suggestion_from_row(row)
            buggy = [m for m in rec.matches if m.side == "buggy"]
            if row["outcome"] == "accepted" and not buggy:
                retain.append(StoredText(rec.prefix, rec.text, record_id))
            elif row["outcome"] == "rejected":
                fixable = next((m for m in buggy if m.fix), None)
                if fixable is not None:
                    pair = _rule_pair(rec, fixable)
                    if pair is not None:
                        pairs.append(StoredPair(pair, record_id, "rule"))
                        continue
                if buggy or row["reason"] == "dismissed":
                    unlearn.append(StoredText(rec.prefix, rec.text, record_id))
        return TrainingRecords(pairs, unlearn, retain)

    def mark_consumed(self, adapter_version: str, record_ids: Iterable[str]) -> None:
        now = time.time()
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO consumed VALUES (?, ?, ?)",
                [(adapter_version, rid, now) for rid in record_ids],
            )

    # -- housekeeping ---------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        row = self._read(
            """SELECT (SELECT COUNT(*) FROM suggestions) AS suggestions,
                      (SELECT COUNT(*) FROM outcomes) AS outcomes,
                      (SELECT COUNT(*) FROM outcomes WHERE kind = 'accepted') AS accepted,
                      (SELECT COUNT(*) FROM outcomes WHERE kind = 'rejected') AS rejected,
                      (SELECT COUNT(*) FROM outcomes WHERE kind = 'edited') AS edited,
                      (SELECT COUNT(*) FROM pairs) AS pairs,
                      (SELECT COUNT(*) FROM pairs WHERE origin = 'edit') AS edit_pairs,
                      (SELECT COUNT(DISTINCT record_id) FROM consumed) AS consumed"""
        )[0]
        return {key: int(value) for key, value in row.items()}

    def purge(self) -> None:
        """Delete everything stored, and overwrite it on disk (secure_delete, VACUUM, WAL truncated)."""
        with self._lock:
            self._pending.clear()
            with self._write() as db:
                for table in _TABLES:
                    db.execute(f"DELETE FROM {table}")
            _compact(self._db, self.path)

    def export_pairs(self, out: IO[str]) -> int:
        """Write every stored pair (and derived rule pairs) as JSON Lines; returns how many."""
        count = 0
        for stored in self.training_records().pairs:
            data = stored.pair.to_json()
            data["origin"] = stored.origin
            out.write(json.dumps(data, ensure_ascii=False) + "\n")
            count += 1
        return count


def _migrate(db: sqlite3.Connection, path: Path) -> bool:
    """Upgrade the schema to SCHEMA_VERSION in one transaction; True when rows already there changed."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store {path} has schema version {version}, newer than this hotfix understands "
                f"({SCHEMA_VERSION}); upgrade hotfix"
            )
        before = db.total_changes
        for number in range(version, SCHEMA_VERSION):
            step = MIGRATIONS[number]
            if callable(step):
                step(db)
            else:
                for statement in step.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {number + 1}")
            log.info("store %s migrated to schema version %d", path, number + 1)
        changed = db.total_changes > before
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return changed


def _compact(db: sqlite3.Connection, path: Path) -> None:
    """VACUUM and empty the WAL, so that deleted text leaves the files too; best effort."""
    try:
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        # The rows are changed already; compaction waits for the other processes to let go.
        log.warning("the store %s could not be compacted yet: %s", path, exc)


def _suggestion_from_row(row: tuple[Any, ...] | dict[str, Any]) -> SuggestionRecord:
    if not isinstance(row, dict):
        names = (
            "id",
            "created",
            "language",
            "uri",
            "prefix",
            "suffix",
            "text",
            "model",
            "adapter",
            "matches",
        )
        row = dict(zip(names, row, strict=True))
    matches = tuple(PatternMatch.from_json(m) for m in json.loads(row["matches"]))
    return SuggestionRecord(
        row["id"], row["created"], row["language"], row["uri"], row["prefix"], row["suffix"], row["text"],
        row["model"], row["adapter"], matches,
    )  # fmt: skip


def _stored_pair(row: dict[str, Any]) -> StoredPair:
    pair = BugFixPair(
        prefix=row["prefix"],
        buggy=row["buggy"],
        fixed=row["fixed"],
        suffix=row["suffix"],
        id=row["id"],
        source=row["source"],
        pattern=row["pattern"],
        tests=row["tests"],
    )
    return StoredPair(pair, f"pair:{row['id']}", row["origin"])


def _rule_pair(rec: SuggestionRecord, match: PatternMatch) -> BugFixPair | None:
    """A rejected suggestion with a rule's fix, as a pair: the line it flagged and the fixed line."""
    assert match.fix is not None
    head = rec.prefix[rec.prefix.rfind("\n") + 1 :]
    lines = (head + rec.text).split("\n")
    if not 0 <= match.line < len(lines):
        return None
    base = rec.prefix[: len(rec.prefix) - len(head)]
    return BugFixPair(
        prefix=base + "".join(line + "\n" for line in lines[: match.line]),
        buggy=lines[match.line],
        fixed=match.fix,
        suffix="\n".join(lines[match.line + 1 :]) + rec.suffix,
        id=f"rule-{rec.id}",
        source="rule",
        pattern=match.pattern_id,
    )


def remove_store_files(data_dir: Path) -> list[Path]:
    """Delete the store's files (for a store too corrupt to open); returns what was removed."""
    path = store_path(Path(data_dir))
    removed = []
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            candidate.unlink()
            removed.append(candidate)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot delete {candidate}: {exc.strerror or exc}") from None
    return removed
