"""A throw-away PostgreSQL cluster for the team store's tests and benchmark.

initdb in a temporary folder, a unix socket there and a random loopback port, one per process
(started on first use, stopped and removed at exit). PostgreSQL refuses to run as root, so as root
the server runs as ``nobody``, which owns the folder. Local (socket) connections are trusted; TCP on
127.0.0.1 asks for a password (scram-sha-256), for the tests that check a password never shows.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

SUPERUSER = "hotfix_admin"
INSTALL_HINT = "apt-get install postgresql (Debian's server binaries) and pip install 'psycopg[binary]'"


class Unavailable(RuntimeError):
    """No PostgreSQL to test against: the reason, for a skip."""


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: $HOTFIX_PG_BIN, Debian's newest /usr/lib/postgresql/N/bin, or PATH."""
    candidates = [os.environ.get("HOTFIX_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))[::-1]
    found = shutil.which("initdb")
    candidates.append(str(Path(found).parent) if found else "")
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check() -> Path:
    """The server binaries' folder; Unavailable when they or psycopg are missing."""
    folder = bin_dir()
    if folder is None:
        raise Unavailable(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {INSTALL_HINT}")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable(f"psycopg is not installed: {INSTALL_HINT}") from None
    return folder


class Cluster:
    """One running cluster: ``url(db)`` for a database in it, ``create_database()`` for a fresh one."""

    def __init__(self, durable: bool = False) -> None:
        self.bin = check()
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="hotfix-pg-"))
        self.port = 0
        self._owner = os.getpid()
        self._as: list[str] = []
        if os.geteuid() == 0:
            os.chown(self.root, *_nobody())
            self._as = ["runuser", "-u", "nobody", "--"] if shutil.which("runuser") else _setpriv()

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise Unavailable(
                f"{Path(args[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}\n{tail}"
            )

    def start(self) -> Cluster:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.root / "data"), "-U", SUPERUSER, "-E", "UTF8",
            "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
        )  # fmt: skip
        options = f"-k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        for attempt in range(3):
            self.port = _free_port()
            try:
                self._run(
                    str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
                    "-w", "-t", "60", "-o", f"{options} -p {self.port}", "start",
                )  # fmt: skip
                return self
            except Unavailable:
                if attempt == 2:
                    raise
        return self

    def stop(self) -> None:
        if os.getpid() != self._owner:
            return  # a forked child: the cluster is its parent's
        if (self.root / "data" / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run(
                    str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"
                )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str, user: str = SUPERUSER, password: str | None = None, tcp: bool = False) -> str:
        """A postgresql:// URL: over the unix socket (trusted), or over TCP on loopback (a password)."""
        secret = f":{password}" if password is not None else ""
        if tcp:
            return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{dbname}"
        return f"postgresql://{user}{secret}@/{dbname}?host={self.root}&port={self.port}"

    def admin(
        self, sql: str, params: tuple[Any, ...] = (), dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser; its rows."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cursor = conn.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, owner: str = SUPERUSER) -> str:
        name = f"hotfix_{uuid.uuid4().hex[:12]}"
        self.admin(f'CREATE DATABASE {name} OWNER "{owner}"')
        return name

    def new_database_url(self) -> str:
        """The URL of a fresh, empty database (the superuser's, over the socket)."""
        return self.url(self.create_database())


def dump(url: str) -> str:
    """Every row of every table in the database at ``url``, as text: what the server holds."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ).fetchall()
        return "\n".join(
            str(conn.execute(f"SELECT string_agg(t::text, E'\\n') FROM {name} t").fetchone()[0] or "")
            for (name,) in tables
        )


def _nobody() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _setpriv() -> list[str]:
    uid, gid = _nobody()
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]


_shared: Cluster | None = None
_failure: str | None = None


def shared() -> Cluster:
    """This process's cluster, started on first use; Unavailable (with the reason) when it cannot be."""
    global _shared, _failure
    if _failure is not None:
        raise Unavailable(_failure)
    if _shared is None:
        try:
            cluster = Cluster()
            atexit.register(cluster.stop)
            _shared = cluster.start()
        except Unavailable as exc:
            _failure = str(exc)
            raise
    return _shared
