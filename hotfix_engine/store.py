"""The feedback store: what was suggested, what the user did with it, and the bug-fix pairs learnt.

By default one SQLite file in WAL mode under the data folder, readable by its owner only. Several
servers and one trainer use it at once: every write is one short ``BEGIN IMMEDIATE`` transaction,
readers never block writers, and a busy timeout absorbs the rest. A crash or kill loses at most the
event being written; WAL commits are atomic, so the file is never left half-written, and a log
damaged after the fact (which SQLite silently cuts short) is reported when the store is opened. The
file carries hotfix's application id: hotfix never writes to a file at its path that is not its own.

A team shares one PostgreSQL store instead (``--store postgresql://...`` or ``$HOTFIX_STORE``,
``store_pg.py``). :class:`Store` holds the record semantics, written once; a backend holds what
differs (connection, transactions, SQL dialect, schema versions, housekeeping): ``SQLiteBackend``
here, ``PostgresBackend`` there.

Nothing is written unredacted (e-mail addresses, IPs and secrets become placeholders; redaction runs
here, on the user's machine, before anything reaches a backend), and the ``record`` mode decides
what is kept at all: ``patterns`` (default) keeps suggestions that match a known pattern plus the
user's own edit pairs, ``all`` keeps every suggestion, ``off`` keeps nothing. Of the code around the
cursor, only the windows that training, the gate and evaluation read are kept (STORED_PREFIX_CHARS
before, STORED_SUFFIX_CHARS after).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import random
import sqlite3
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from hotfix_engine.errors import ConfigError, StoreError
from hotfix_engine.pairs import BugFixPair, normalize_statement
from hotfix_engine.paths import private_dir, store_path
from hotfix_engine.patterns.matcher import PatternMatch
from hotfix_engine.redact import redact, redact_parts

log = logging.getLogger(__name__)
_T = TypeVar("_T")

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
# Redaction reads this far beyond each window, so that a secret the window cuts (a key block whose
# BEGIN line lies just outside it; an RSA-4096 key is some 3,300 characters) is still recognised.
REDACT_MARGIN = 8192

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


def _v2_trim_context(db: Any) -> None:
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


def _redact_document(prefix: str, middle: Sequence[str], suffix: str) -> tuple[str, list[str], str]:
    """Redact the code before the cursor, what is in between and the code after it as one text.

    As one: a secret typed partly before the cursor and partly in the suggestion (or split by an
    edit) is only recognised whole. Only REDACT_MARGIN beyond each window is read, so a secret cut
    by the window (a key block whose BEGIN line lies just outside) is still seen, and a long file
    costs no more than a short one. The prefix and suffix returned are at most that long.
    """
    head = prefix[-(STORED_PREFIX_CHARS + REDACT_MARGIN) :]
    tail = suffix[: STORED_SUFFIX_CHARS + REDACT_MARGIN]
    parts = redact_parts(head, *middle, tail)
    return parts[0], parts[1:-1], parts[-1]


def _redact_final(prefix: str, final_text: str) -> str:
    """The line a suggestion became, redacted in the context of the code before it.

    The whole prefix, not only up to its last line start: its last line may be all a placeholder
    says of a secret the final text completes; repeating the line's start does no harm.
    """
    base = prefix[-REDACT_MARGIN:]
    return redact_parts(base if base.endswith("\n") else base + "\n", final_text)[1]


def _redact_matches(matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **m,
            "message": redact(m.get("message") or ""),
            "fix": None if m.get("fix") is None else redact(m["fix"]),
        }
        for m in matches
    ]


def _v3_redact_again(db: Any) -> None:
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
        new_prefix, (new_text,), new_suffix = _redact_document(prefix, [text], suffix)
        new = (
            redact(uri),
            prefix_window(new_prefix),
            new_text,
            suffix_window(new_suffix),
            json.dumps(_redact_matches(json.loads(matches))),
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
        new_final = _redact_final(prefix or "", final_text)
        if new_final != final_text:
            db.execute("UPDATE outcomes SET final_text = ? WHERE id = ?", (new_final, oid))
    for row in db.execute("SELECT id, prefix, buggy, fixed, suffix, tests FROM pairs").fetchall():
        pair = _redact_pair(BugFixPair(row[1], row[2], row[3], row[4], id=row[0], tests=row[5]))
        new = (prefix_window(pair.prefix), pair.buggy, pair.fixed, suffix_window(pair.suffix), pair.tests)
        if new != tuple(row[1:]):
            db.execute(
                "UPDATE pairs SET prefix = ?, buggy = ?, fixed = ?, suffix = ?, tests = ? WHERE id = ?",
                (*new, row[0]),
            )
    # Suppressions (hotfix_engine/suppressions.py) keep their own table in the store, when in use.
    if _has_table(db, "suppressions"):
        rows = db.execute("SELECT id, context, line_prefix, text, fix FROM suppressions").fetchall()
        for sid, *texts in rows:
            new_texts = [None if t is None else redact(t) for t in texts]
            if new_texts != texts:
                db.execute(
                    "UPDATE suppressions SET context = ?, line_prefix = ?, text = ?, fix = ? WHERE id = ?",
                    (*new_texts, sid),
                )


def _has_table(db: Any, name: str) -> bool:
    """Whether the store has table ``name``: the one question a shared migration step asks the dialect."""
    if isinstance(db, sqlite3.Connection):
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return db.execute(query, (name,)).fetchone() is not None
    return bool(db.has_table(name))


# The SQLite store's schema versions. Each entry upgrades the schema by one version (SQL, or a step run
# on the connection); never edit a released entry, append a new one. All pending entries run in one
# transaction. The data steps are plain SQL, shared with the PostgreSQL store's list (store_pg.py):
# a step that both stores need is appended to both.
MIGRATIONS: tuple[str | Callable[[Any], None], ...] = (_V1, _v2_trim_context, _v3_redact_again)
SCHEMA_VERSION = len(MIGRATIONS)
_TABLES = ("consumed", "outcomes", "pairs", "suggestions")
_SUGGESTION_COLUMNS = "id, created, language, uri, prefix, suffix, text, model, adapter, matches"
_PAIR_COLUMNS = "id, created, prefix, buggy, fixed, suffix, source, pattern, tests, origin, suggestion_id"
# Whose records training and export read: the user's own, or the whole team's (a shared store).
SCOPES = ("personal", "team")
# Attempts at a write transaction that lost a race to another writer (a PostgreSQL deadlock).
WRITE_ATTEMPTS = 5
# Stamped in every store's header (PRAGMA application_id), so that hotfix never takes over another
# file: "HFix". Stores made before the stamp are recognised by their tables and stamped on open.
APPLICATION_ID = int.from_bytes(b"HFix", "big")


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
    # The reason of this suggestion's provisional outcome of the same kind that this one finalises
    # (written ahead so a kill cannot lose it, e.g. "typed" until the accept command says "command").
    replaces: str | None = None

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
    """The pair with its text redacted: each statement in its place between the prefix and suffix."""
    prefix, (buggy, _), suffix = _redact_document(pair.prefix, [pair.buggy, "\n"], pair.suffix)
    prefix, (fixed, _), suffix = _redact_document(prefix, [pair.fixed, "\n"], suffix)
    return BugFixPair(
        prefix=prefix,
        buggy=buggy,
        fixed=fixed,
        suffix=suffix,
        id=pair.key,
        source=pair.source,
        pattern=pair.pattern,
        tests=redact(pair.tests),
        extra=pair.extra,
    )


def _create_store(path: Path) -> None:
    """Create a new store file whole (stamped, readable by its owner only) if there is none.

    It is made under a temporary name and linked into place, so the store's path never shows an
    empty file: an empty file found there was not made by hotfix, and is refused rather than taken
    over. Of two processes creating it at once, the first link wins and the other opens that file.
    SQLite gives its -wal and -shm files the mode of the database file, so they inherit 0600.
    """
    if os.path.lexists(path):
        return
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}-{threading.get_ident()}")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        db = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        finally:
            db.close()
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return
        except OSError:  # no hard links here (some network file systems): a rename is atomic too
            if not os.path.lexists(path):
                os.rename(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _claim(db: sqlite3.Connection, path: Path) -> bool:
    """Refuse a file that is not a hotfix store; True when it is one made before the stamp.

    Only reads: nothing is written to a file before it is known to be ours.
    """
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    if app_id == APPLICATION_ID:
        return False
    if app_id != 0:
        raise StoreError(
            f"{path} is another application's SQLite database (application_id {app_id:#010x}), not a hotfix "
            "store; hotfix leaves it untouched: move it, or give hotfix another data folder"
        )
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if db.execute("PRAGMA user_version").fetchone()[0] >= 1 and set(_TABLES) <= tables:
        return True
    raise StoreError(
        f"{path} is an SQLite database without hotfix's tables, not a hotfix store; hotfix leaves it "
        "untouched: move it, or give hotfix another data folder"
    )


def _stamp_and_check_wal(db: sqlite3.Connection, path: Path, unstamped: bool) -> str | None:
    """Stamp a store made before the stamp, and say (logged) what the write-ahead log lost.

    SQLite applies a WAL up to its last intact commit and silently ignores the rest. The frames of
    the current log carry its header's salts; SQLite reports how many frames it applied (mxFrame, the
    ``log`` column of a passive checkpoint). A current frame past that is a transaction that a stopped
    process never finished, or one that was damaged or cut off; one marked as a commit was a whole
    transaction, now lost. The log is read under the write lock, so no writer is half-way through
    appending; mxFrame, read after, only grows until the log restarts (new salts: then nothing is
    compared). See sqlite.org/walformat.html. The -shm file is never opened here: closing a file
    descriptor drops every POSIX lock this process holds on that file, SQLite's included.
    """
    wal = path.with_name(path.name + "-wal")
    if not unstamped and not (wal.exists() and wal.stat().st_size > 32):
        return None  # the usual case: nothing to stamp, no log left by a stopped process
    db.execute("BEGIN IMMEDIATE")  # the write lock: nobody appends to the log while it is read
    try:
        if unstamped:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            log.info("store %s stamped as a hotfix store", path)
        found = _wal_frames(wal)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    if found is None:
        return None
    if isinstance(found, str):
        key, loss = (str(path), found), found
    else:
        busy, applied, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        salts, frames = found
        again = _wal_frames(wal, header_only=True)
        if busy or applied < 0 or not isinstance(again, tuple) or again[0] != salts:
            return None  # another checkpoint is running, or the log restarted: nothing to compare
        lost = [commit for index, commit in frames if index > applied]
        if not lost:
            return None
        key = (str(path), f"{salts.hex()}@{applied}")
        if sum(lost):
            loss = (
                f"{sum(lost)} committed transaction(s) at the end of its write-ahead log were damaged or "
                f"cut off ({len(lost)} frame(s) SQLite could not apply): what they recorded is lost"
            )
        else:
            loss = (
                f"its write-ahead log ends with {len(lost)} frame(s) of a transaction that never finished "
                "(a process stopped while writing, or the log was damaged): it was rolled back"
            )
    if key in _warned_wal:
        return None  # said once per process: the daemon reopens the store every few seconds
    _warned_wal.add(key)
    log.warning("the store %s: %s", path, loss)
    return loss


_WAL_MAGIC = (0x377F0682, 0x377F0683)  # checksums little-endian, big-endian
_warned_wal: set[tuple[str, str]] = set()


def _wal_checksum(data: bytes, big_endian: bool) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    s0 = s1 = 0
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _wal_frames(wal: Path, header_only: bool = False) -> tuple[bytes, list[tuple[int, int]]] | str | None:
    """The log's salts and its current frames as (1-based index, commit flag); a message when its
    header is damaged (SQLite then ignores all of it); None when there is no log to speak of."""
    try:
        with open(wal, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            header = handle.read(32)
            if size <= 32 or len(header) < 32:
                return None
            magic, _, page_size = struct.unpack(">III", header[:12])
            expected = struct.unpack(">II", header[24:32])
            if magic not in _WAL_MAGIC or _wal_checksum(header[:24], magic & 1 == 1) != expected:
                return (
                    f"its write-ahead log's header is damaged, so none of its {size - 32} bytes were applied"
                )
            salts = header[16:24]
            frames: list[tuple[int, int]] = []
            index = 1
            while not header_only and 32 + (index - 1) * (page_size + 24) + 24 <= size:
                handle.seek(32 + (index - 1) * (page_size + 24))
                frame = handle.read(24)
                if frame[8:16] == salts:
                    frames.append((index, int(struct.unpack(">I", frame[4:8])[0] != 0)))
                index += 1
    except FileNotFoundError:
        return None
    return salts, frames


class Backend(Protocol):
    """What differs between the stores: one connection, its transactions, its dialect, its upkeep.

    ``begin`` returns what statements run on: an object with ``execute(sql, params)`` (and
    ``executemany``) that takes ``?`` placeholders and returns a cursor (``fetchone``, ``fetchall``,
    ``rowcount``) of plain tuples, as sqlite3 does. Everything else the store does is the same SQL.
    """

    location: str  # for messages: the file, or the URL without its password
    path: Path | None  # the file, for a store that is one
    errors: tuple[type[Exception], ...]  # what the driver raises

    def begin(self, read_only: bool = False) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def query(self, sql: str, params: tuple[object, ...]) -> list[dict[str, Any]]: ...
    def retryable(self, exc: BaseException) -> bool: ...
    def describe(self, exc: BaseException) -> str: ...
    def data_version(self) -> object: ...
    def ensure_schema(self, db: Any, ddl: str) -> None: ...
    def compact(self) -> None: ...
    def close(self) -> None: ...


class _Contended(StoreError):
    """A write that lost a race to another writer and was rolled back whole: worth another try."""


def store_url(override: str | None = None) -> str | None:
    """The shared store's URL: ``override``, else ``$HOTFIX_STORE``; None for the data folder's file.

    An empty ``override`` means the data folder's file whatever the environment says.
    """
    url = os.environ.get("HOTFIX_STORE", "") if override is None else override
    return url.strip() or None


class Store:
    """The feedback store. Safe to share between threads; several processes may open it at once.

    ``scope`` says whose records :meth:`pairs`, :meth:`training_records`, :meth:`export_pairs`,
    :meth:`counts` and :meth:`purge` see in a shared store: the user's own (``personal``) or the
    whole team's (``team``). What a version consumed is always the user's own. A SQLite store holds
    one user's records, so both scopes see the same.
    """

    def __init__(self, backend: Backend, record: str, scope: str = "personal") -> None:
        self._backend: Backend | None = backend
        self._lock = threading.RLock()
        self._pending: OrderedDict[str, SuggestionRecord] = OrderedDict()
        self.path = backend.path
        self.location = backend.location
        self.scope = scope
        self.record = record
        # What the write-ahead log lost before this open, if anything (SQLite).
        self.wal_loss: str | None = getattr(backend, "wal_loss", None)

    @property
    def record(self) -> str:
        return self._record

    @record.setter
    def record(self, mode: str) -> None:
        if mode not in RECORD_MODES:
            raise ConfigError(f"unknown record mode {mode!r}; valid: {', '.join(RECORD_MODES)}")
        self._record = mode

    @classmethod
    def open(
        cls, data_dir: Path, record: str = "patterns", *, url: str | None = None, scope: str = "personal"
    ) -> Store:
        """Open (creating and migrating as needed) the store; StoreError on failure.

        The shared store at ``url`` (else ``$HOTFIX_STORE``) when there is one, else the file in ``data_dir``.
        """
        if record not in RECORD_MODES:
            raise ConfigError(f"unknown record mode {record!r}; valid: {', '.join(RECORD_MODES)}")
        if scope not in SCOPES:
            raise ConfigError(f"unknown store scope {scope!r}; valid: {', '.join(SCOPES)}")
        shared = store_url(url)
        backend: Backend
        if shared is not None:
            from hotfix_engine.store_pg import PostgresBackend

            backend = PostgresBackend.open(shared, scope)
        else:
            backend = SQLiteBackend.open(Path(data_dir))
        return cls(backend, record, scope)

    # -- plumbing -------------------------------------------------------------------------

    def _live(self) -> Backend:
        if self._backend is None:
            raise StoreError(f"the store {self.location} is closed")
        return self._backend

    @property
    def _db(self) -> Any:
        """The backend's own connection (for tests and SQLite-only upkeep)."""
        return self._live().conn  # type: ignore[attr-defined]

    def _failure(self, backend: Backend, verb: str, exc: BaseException) -> StoreError:
        kind = _Contended if backend.retryable(exc) else StoreError
        return kind(f"cannot {verb} the store {self.location}: {backend.describe(exc)}")

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """One short write transaction; driver errors become StoreError, nothing half-written stays."""
        with self._lock:
            backend = self._live()
            try:
                db = backend.begin()
            except backend.errors as exc:
                raise self._failure(backend, "write to", exc) from None
            try:
                yield db
                backend.commit()
            except BaseException as exc:
                backend.rollback()
                if isinstance(exc, backend.errors):
                    raise self._failure(backend, "write to", exc) from None
                raise

    def _transact(self, step: Callable[[Any], _T]) -> _T:
        """``step`` in one write transaction, run again when another writer made it roll back.

        Only PostgreSQL says so (a deadlock between two writers' inserts); SQLite waits for its lock.
        """
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self._write() as db:
                    return step(db)
            except _Contended:
                if attempt == WRITE_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * attempt)
        raise AssertionError("unreachable")

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            backend = self._live()
            try:
                return backend.query(sql, params)
            except backend.errors as exc:
                raise self._failure(backend, "read", exc) from None

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Reads that see one state of the store while other processes write (a trainer's reads)."""
        with self._lock:
            backend = self._live()
            try:
                backend.begin(read_only=True)
            except backend.errors as exc:
                raise self._failure(backend, "read", exc) from None
            try:
                yield
            finally:
                backend.rollback()

    def _data_version(self) -> object:
        """A value that changes when another connection changed the store (suppressions reload on it)."""
        with self._lock:
            backend = self._live()
            try:
                return backend.data_version()
            except backend.errors as exc:
                raise self._failure(backend, "read", exc) from None

    def _ensure_schema(self, ddl: str) -> None:
        """Create another module's tables (``CREATE ... IF NOT EXISTS``) where the backend needs it."""
        with self._write() as db:
            self._live().ensure_schema(db, ddl)

    def close(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

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
        self._transact(lambda db: self._insert_suggestion(db, rec))
        return True

    def _insert_suggestion(self, db: Any, rec: SuggestionRecord) -> None:
        # Redacted before the cut, and as one text: a secret spanning lines (a PEM key) or split by the
        # cursor is only recognised whole.
        prefix, (text,), suffix = _redact_document(rec.prefix, [rec.text], rec.suffix)
        matches = _redact_matches([m.to_json() for m in rec.matches])
        db.execute(
            f"INSERT INTO suggestions ({_SUGGESTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (
                rec.id,
                rec.created,
                rec.language,
                redact(rec.uri),
                prefix_window(prefix),
                suffix_window(suffix),
                text,
                rec.model,
                rec.adapter,
                json.dumps(matches),
            ),
        )

    def record_outcome(self, out: OutcomeRecord) -> BugFixPair | None:
        """Store what became of a suggestion; an "edited" outcome also stores the bug-fix pair.

        Outcomes of suggestions the record mode dropped are not stored, except edits: the user's
        own fix is always kept (unless the mode is ``off``). Returns the pair an edit stored (as
        stored: redacted), so the caller can learn it without reading the store back.
        """
        if self.record == "off":
            return None
        with self._lock:
            # An accepted suggestion is edited later: keep it pending until then.
            pending = (
                self._pending.pop(out.suggestion_id, None)
                if out.kind == "edited"
                else self._pending.get(out.suggestion_id)
            )
            return self._transact(lambda db: self._store_outcome(db, out, pending))

    def _store_outcome(
        self, db: Any, out: OutcomeRecord, pending: SuggestionRecord | None
    ) -> BugFixPair | None:
        row = db.execute(
            f"SELECT {_SUGGESTION_COLUMNS} FROM suggestions WHERE id = ?", (out.suggestion_id,)
        ).fetchone()
        if row is None:
            if pending is None or out.kind != "edited":
                return None
            self._insert_suggestion(db, pending)
            rec = pending
        else:
            rec = _suggestion_from_row(row)
        if out.replaces is not None:
            finalised = db.execute(
                "UPDATE outcomes SET reason = ? WHERE id = (SELECT MAX(id) FROM outcomes "
                "WHERE suggestion_id = ? AND kind = ? AND reason = ?)",
                (out.reason, out.suggestion_id, out.kind, out.replaces),
            )
            if finalised.rowcount:
                return None
        db.execute(
            "INSERT INTO outcomes (suggestion_id, kind, reason, final_text, created) VALUES (?, ?, ?, ?, ?)",
            (
                out.suggestion_id,
                out.kind,
                out.reason,
                None if out.final_text is None else _redact_final(rec.prefix, out.final_text),
                out.created,
            ),
        )
        if out.kind == "edited" and out.final_text is not None:
            pair = _edit_pair(rec, out.final_text)
            if pair is not None:
                return self._insert_pair(db, pair, "edit", out.suggestion_id)
        return None

    def _insert_pair(
        self, db: Any, pair: BugFixPair, origin: str, suggestion_id: str | None
    ) -> BugFixPair | None:
        """Store a pair (redacted); the pair as stored, or None when it was already there or is empty."""
        pair = _redact_pair(pair)
        if normalize_statement(pair.buggy) == normalize_statement(pair.fixed):
            return None  # only a secret changed (one redacted value for another): nothing to learn
        cursor = db.execute(
            f"INSERT INTO pairs ({_PAIR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
        return pair if cursor.rowcount > 0 else None

    def add_pairs(self, pairs: Iterable[BugFixPair], origin: str) -> int:
        """Store pairs (mined, imported); returns how many were new. Ignores the record mode:
        adding pairs is an explicit request, not something observed in the editor."""
        batch = list(pairs)
        return self._transact(
            lambda db: sum(self._insert_pair(db, pair, origin, None) is not None for pair in batch)
        )

    # -- training -------------------------------------------------------------------------

    def pairs(self, origin: str | None = None) -> list[StoredPair]:
        sql = "SELECT * FROM pairs" + (" WHERE origin = ?" if origin else "") + " ORDER BY created, id"
        return [_stored_pair(row) for row in self._read(sql, (origin,) if origin else ())]

    def training_records(self, *, not_consumed_by: str | None = None) -> TrainingRecords:
        """Pairs, unlearn-only and retain texts, leaving out what ``not_consumed_by`` has consumed.

        A rejected suggestion whose match carries a fix becomes a pair (origin "rule"); one that
        matched a known bug without a fix, or that the user explicitly dismissed, is unlearn-only.
        Superseded rejections of clean code are not unlearnt: moving on is not a verdict. All read
        from one state of the store, whatever other processes write meanwhile.
        """
        with self._snapshot():
            consumed: set[str] = set()
            if not_consumed_by is not None:
                rows = self._read(
                    "SELECT record_id FROM consumed WHERE adapter_version = ?", (not_consumed_by,)
                )
                consumed = {row["record_id"] for row in rows}
            # Two users of a shared store may hold the same pair (one file, imported twice): once.
            seen = set(consumed)
            pairs = []
            for row in self._read("SELECT * FROM pairs ORDER BY created, id"):
                stored = _stored_pair(row)
                if stored.record_id not in seen:
                    seen.add(stored.record_id)
                    pairs.append(stored)
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
        # Sorted: two writers inserting the same keys in one order never wait on each other in a cycle.
        rows = [(adapter_version, rid, now) for rid in sorted(set(record_ids))]
        self._transact(
            lambda db: db.executemany(
                "INSERT INTO consumed (adapter_version, record_id, created) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                rows,
            )
        )

    def reconcile_consumed(self, adapter_version: str, record_ids: Iterable[str]) -> int:
        """Mark what a version's folder says it consumed and the store lacks; returns how many.

        A version lists its records inside its folder, published with it in one rename; a run killed
        after publishing but before marking would otherwise train on them again.
        """
        ids = set(record_ids)
        if not ids:
            return 0
        rows = self._read("SELECT record_id FROM consumed WHERE adapter_version = ?", (adapter_version,))
        missing = ids - {row["record_id"] for row in rows}
        if missing:
            self.mark_consumed(adapter_version, sorted(missing))
            log.info(
                "marked %d records consumed by %s (its run stopped before it could)",
                len(missing),
                adapter_version,
            )
        return len(missing)

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
        """Delete everything stored (in a shared store, what the scope sees), and overwrite it on disk
        where the backend can (SQLite: secure_delete, VACUUM, WAL truncated)."""
        with self._lock:
            self._pending.clear()

            def delete(db: Any) -> None:
                for table in _TABLES:
                    db.execute(f"DELETE FROM {table}")

            self._transact(delete)
            self._live().compact()

    def export_pairs(self, out: IO[str]) -> int:
        """Write every stored pair (and derived rule pairs) as JSON Lines; returns how many.

        Redacted again on the way out: what leaves the store gets today's rules, whatever wrote it.
        """
        count = 0
        for stored in self.training_records().pairs:
            data = _redact_pair(stored.pair).to_json()
            data["origin"] = stored.origin
            out.write(json.dumps(data, ensure_ascii=False) + "\n")
            count += 1
        return count


class SQLiteBackend:
    """The store as one SQLite file in the data folder: WAL, pragmas, the stamp, the log's checks."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.conn = connection
        self.path: Path | None = path
        self.location = str(path)
        self.wal_loss: str | None = None  # what the write-ahead log lost before this open, if anything

    @classmethod
    def open(cls, data_dir: Path) -> SQLiteBackend:
        path = store_path(data_dir)
        try:
            private_dir(data_dir)
            _create_store(path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot create the store in {data_dir}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        with suppress(OSError):
            if path.stat().st_size == 0:
                raise StoreError(
                    f"{path} is an empty file, not a hotfix store (hotfix never leaves its store empty); "
                    "hotfix leaves it untouched: delete it if nothing else uses it, or give hotfix another data folder"
                )
        try:
            connection = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from None
        try:
            unstamped = _claim(connection, path)  # before any write: never change a file that is not ours
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                log.warning("store %s is in %s mode, not WAL: concurrent use will be slower", path, mode)
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA secure_delete=ON")
            wal_loss = _stamp_and_check_wal(connection, path, unstamped)
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
        backend = cls(connection, path)
        backend.wal_loss = wal_loss
        return backend

    def begin(self, read_only: bool = False) -> sqlite3.Connection:
        # A writer takes the lock up front (IMMEDIATE), so it never fails half-way on another's.
        self.conn.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
        return self.conn

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def query(self, sql: str, params: tuple[object, ...]) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def retryable(self, exc: BaseException) -> bool:
        return False  # the busy timeout has waited already

    def describe(self, exc: BaseException) -> str:
        return str(exc)

    def data_version(self) -> object:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def ensure_schema(self, db: Any, ddl: str) -> None:
        for statement in ddl.split(";"):
            if statement.strip():
                db.execute(statement)

    def compact(self) -> None:
        assert self.path is not None
        _compact(self.conn, self.path)

    def close(self) -> None:
        self.conn.close()


def _too_new(where: str, version: int, known: int) -> StoreError:
    return StoreError(
        f"the store {where} has schema version {version}, newer than this hotfix understands "
        f"({known}); upgrade hotfix"
    )


def _upgrade(
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


def _migrate(db: sqlite3.Connection, path: Path) -> bool:
    """Upgrade the schema to SCHEMA_VERSION in one transaction; True when rows already there changed."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise _too_new(str(path), version, SCHEMA_VERSION)
        before = db.total_changes
        _upgrade(
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
