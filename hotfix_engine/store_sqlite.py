"""The store as one SQLite file in the data folder, and the checks that keep that file safe.

WAL mode, readable by its owner only. Several servers and one trainer use it at once: every write is
one short ``BEGIN IMMEDIATE`` transaction, readers never block writers, and a busy timeout absorbs
the rest. A crash or kill loses at most the event being written; WAL commits are atomic, so the file
is never left half-written, and a log damaged after the fact (which SQLite silently cuts short) is
reported when the store is opened. The file carries hotfix's application id: hotfix never writes to
a file at its path that is not its own.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

from hotfix_engine.errors import StoreError
from hotfix_engine.paths import private_dir, store_path
from hotfix_engine.store_backend import BUSY_TIMEOUT_S
from hotfix_engine.store_schema import APPLICATION_ID, TABLES, migrate_sqlite

log = logging.getLogger(__name__)


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
            if migrate_sqlite(connection, path):
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


def _compact(db: sqlite3.Connection, path: Path) -> None:
    """VACUUM and empty the WAL, so that deleted text leaves the files too; best effort."""
    try:
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        # The rows are changed already; compaction waits for the other processes to let go.
        log.warning("the store %s could not be compacted yet: %s", path, exc)


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
    if db.execute("PRAGMA user_version").fetchone()[0] >= 1 and set(TABLES) <= tables:
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
