"""The feedback store: what was suggested, what the user did with it, and the bug-fix pairs learnt.

:class:`Store` holds the record semantics, written once; a backend (store_backend.py) holds what
differs between the stores. By default that is one SQLite file under the data folder
(``SQLiteBackend``, store_sqlite.py); a team shares one PostgreSQL store instead (``--store
postgresql://...`` or ``$HOTFIX_STORE``, ``PostgresBackend`` in store_pg.py). The tables and their
migrations are in store_schema.py, the records in store_records.py.

Nothing is written unredacted, and of the code around the cursor only the windows that training,
the gate and evaluation read are kept (store_redaction.py). The ``record`` mode decides what is kept
at all: ``patterns`` (default) keeps suggestions that match a known pattern plus the user's own edit
pairs, ``all`` keeps every suggestion, ``off`` keeps nothing. Which records become pairs, and which
are learnt, unlearnt or retained, is training_records.py's to decide: the store only stores.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from hotfix_engine.errors import ConfigError, StoreError
from hotfix_engine.pairs import BugFixPair, normalize_statement
from hotfix_engine.patterns.matcher import PatternMatch
from hotfix_engine.redact import redact
from hotfix_engine.store_backend import Backend
from hotfix_engine.store_records import OutcomeRecord, StoredPair, SuggestionRecord, TrainingRecords
from hotfix_engine.store_redaction import (
    prefix_window,
    redact_document,
    redact_final,
    redact_matches,
    redact_pair,
    suffix_window,
)
from hotfix_engine.store_schema import PAIR_COLUMNS, SUGGESTION_COLUMNS, TABLES
from hotfix_engine.store_sqlite import SQLiteBackend
from hotfix_engine.training_records import Judged, edit_pair, sort_for_training

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# What the store keeps (see above); the server's ``record`` setting takes the same names.
RECORD_MODES = ("patterns", "all", "off")
# Suggestions the record mode dropped are remembered in memory (never on disk) for this many,
# so that a later "edited" outcome can still become a pair.
PENDING_SUGGESTIONS = 512
# Whose records training and export read: the user's own, or the whole team's (a shared store).
SCOPES = ("personal", "team")
# Attempts at a write transaction that lost a race to another writer (a PostgreSQL deadlock).
WRITE_ATTEMPTS = 5


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
            # Only a shared store loads the PostgreSQL backend (and psycopg, which it imports).
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

    # For modules that keep their own tables in the store (suppressions.py): a transaction, a query,
    # a change counter and their tables' creation, on whichever backend is open.

    @contextmanager
    def transaction(self) -> Iterator[Any]:
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
                with self.transaction() as db:
                    return step(db)
            except _Contended:
                if attempt == WRITE_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * attempt)
        raise AssertionError("unreachable")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
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

    def data_version(self) -> object:
        """A value that changes when another connection changed the store (suppressions reload on it)."""
        with self._lock:
            backend = self._live()
            try:
                return backend.data_version()
            except backend.errors as exc:
                raise self._failure(backend, "read", exc) from None

    def ensure_table(self, ddl: str) -> None:
        """Create another module's tables (``CREATE ... IF NOT EXISTS``) where the backend needs it."""
        with self.transaction() as db:
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
        prefix, (text,), suffix = redact_document(rec.prefix, [rec.text], rec.suffix)
        matches = redact_matches([m.to_json() for m in rec.matches])
        db.execute(
            f"INSERT INTO suggestions ({SUGGESTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
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
            f"SELECT {SUGGESTION_COLUMNS} FROM suggestions WHERE id = ?", (out.suggestion_id,)
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
                None if out.final_text is None else redact_final(rec.prefix, out.final_text),
                out.created,
            ),
        )
        if out.kind == "edited" and out.final_text is not None:
            pair = edit_pair(rec, out.final_text)
            if pair is not None:
                return self._insert_pair(db, pair, "edit", out.suggestion_id)
        return None

    def _insert_pair(
        self, db: Any, pair: BugFixPair, origin: str, suggestion_id: str | None
    ) -> BugFixPair | None:
        """Store a pair (redacted); the pair as stored, or None when it was already there or is empty."""
        pair = redact_pair(pair)
        if normalize_statement(pair.buggy) == normalize_statement(pair.fixed):
            return None  # only a secret changed (one redacted value for another): nothing to learn
        cursor = db.execute(
            f"INSERT INTO pairs ({PAIR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
        return [_stored_pair(row) for row in self.query(sql, (origin,) if origin else ())]

    def training_records(self, *, not_consumed_by: str | None = None) -> TrainingRecords:
        """Pairs, unlearn-only and retain texts, leaving out what ``not_consumed_by`` has consumed.

        Which record is which is training_records.sort_for_training's decision. All read from one
        state of the store, whatever other processes write meanwhile.
        """
        with self._snapshot():
            consumed: set[str] = set()
            if not_consumed_by is not None:
                rows = self.query(
                    "SELECT record_id FROM consumed WHERE adapter_version = ?", (not_consumed_by,)
                )
                consumed = {row["record_id"] for row in rows}
            # Two users of a shared store may hold the same pair (one file, imported twice): once.
            seen = set(consumed)
            pairs = []
            for row in self.query("SELECT * FROM pairs ORDER BY created, id"):
                stored = _stored_pair(row)
                if stored.record_id not in seen:
                    seen.add(stored.record_id)
                    pairs.append(stored)
            paired = {
                row["suggestion_id"]
                for row in self.query("SELECT suggestion_id FROM pairs WHERE suggestion_id IS NOT NULL")
            }
            rows = self.query(
                """SELECT s.*, o.kind AS outcome, o.reason AS reason FROM suggestions s
                   JOIN outcomes o ON o.id = (SELECT MAX(id) FROM outcomes WHERE suggestion_id = s.id)
                   ORDER BY s.created, s.id"""
            )
        judged = (Judged(_suggestion_from_row(row), row["outcome"], row["reason"]) for row in rows)
        return sort_for_training(pairs, (j for j in judged if j.record_id not in consumed), paired)

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
        rows = self.query("SELECT record_id FROM consumed WHERE adapter_version = ?", (adapter_version,))
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
        row = self.query(
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
                for table in TABLES:
                    db.execute(f"DELETE FROM {table}")

            self._transact(delete)
            self._live().compact()

    def export_pairs(self, out: IO[str]) -> int:
        """Write every stored pair (and derived rule pairs) as JSON Lines; returns how many.

        Redacted again on the way out: what leaves the store gets today's rules, whatever wrote it.
        """
        count = 0
        for stored in self.training_records().pairs:
            data = redact_pair(stored.pair).to_json()
            data["origin"] = stored.origin
            out.write(json.dumps(data, ensure_ascii=False) + "\n")
            count += 1
        return count


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
