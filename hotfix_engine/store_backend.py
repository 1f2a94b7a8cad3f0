"""The seam between :class:`hotfix_engine.store.Store` and where its records live.

The store holds the record semantics, written once; a backend holds what differs: the connection,
transactions, SQL dialect, schema versions and housekeeping. ``SQLiteBackend`` (store_sqlite.py)
keeps one user's file in the data folder, ``PostgresBackend`` (store_pg.py) a team's database. The
backends import only this module and the schema, never the store, so that the store picks one
without an import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

# Seconds a writer waits for another process's transaction before giving up with StoreError.
BUSY_TIMEOUT_S = 10.0


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
