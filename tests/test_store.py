"""The feedback store: modes, redaction, training records, durability under kill, concurrent writers,
and bad input (corrupt, locked, newer, unwritable).

The record semantics run against both backends (``any_store``, ``store_url``): the data folder's
SQLite file and a PostgreSQL database (tests/pg_cluster.py; skipped where PostgreSQL is missing).
What only a file has (WAL, the stamp, kills mid-write) runs on SQLite."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pg_cluster
import pytest

from hotfix_engine import store_schema
from hotfix_engine.errors import ConfigError, StoreError
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.patterns import Catalogue
from hotfix_engine.store import Store
from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord
from hotfix_engine.store_schema import SCHEMA_VERSION
from hotfix_engine.store_sqlite import remove_store_files

REPO = Path(__file__).resolve().parents[1]
CATALOGUE = Catalogue()


def suggestion(
    sid: str, prefix: str, text: str, suffix: str = "\n", matched: bool | None = None
) -> SuggestionRecord:
    matches = tuple(CATALOGUE.check(prefix, text))
    if matched is not None:
        assert bool(matches) == matched
    return SuggestionRecord(
        sid, time.time(), "python", "file:///w/app.py", prefix, suffix, text, "tiny", "v0001", matches
    )


BUGGY = ("def load(x):\n    ", "if x == None:\n        return {}")
CLEAN = ("def area(w, h):\n    return ", "w * h")


@pytest.fixture
def store(isolated_home: Path) -> Store:
    with Store.open(isolated_home) as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """ "" for the data folder's SQLite file (whatever $HOTFIX_STORE says), else the URL of a fresh
    PostgreSQL database."""
    if request.param == "sqlite":
        return ""
    try:
        return pg_cluster.shared().new_database_url()
    except pg_cluster.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def any_store(isolated_home: Path, store_url: str) -> Store:
    with Store.open(isolated_home, url=store_url) as opened:
        yield opened


def all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())


def stored_bytes(folder: Path, url: str) -> bytes:
    """Everything the store holds as it holds it: the SQLite files, or every row of every table."""
    return pg_cluster.dump(url).encode() if url else all_bytes(folder)


def test_open_creates_a_private_wal_store_with_the_current_schema(store: Store, isolated_home: Path) -> None:
    store.record = "all"
    assert store.record_suggestion(suggestion("s1", *CLEAN))
    assert store.path == isolated_home / "store.sqlite3"
    for name in ("store.sqlite3", "store.sqlite3-wal"):
        assert (isolated_home / name).stat().st_mode & 0o777 == 0o600
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_patterns_mode_keeps_only_matching_suggestions(any_store: Store) -> None:
    store = any_store
    assert store.record_suggestion(suggestion("bug", *BUGGY, matched=True))
    assert not store.record_suggestion(suggestion("clean", *CLEAN, matched=False))
    store.record_outcome(OutcomeRecord("bug", "rejected", "dismissed"))
    store.record_outcome(OutcomeRecord("clean", "accepted", "command"))
    assert store.counts() | {} == {
        "suggestions": 1, "outcomes": 1, "accepted": 0, "rejected": 1, "edited": 0,
        "pairs": 0, "edit_pairs": 0, "consumed": 0,
    }  # fmt: skip


def test_all_mode_keeps_everything_and_off_keeps_nothing(isolated_home: Path, store_url: str) -> None:
    with Store.open(isolated_home, record="all", url=store_url) as store:
        assert store.record_suggestion(suggestion("clean", *CLEAN))
        store.record_outcome(OutcomeRecord("clean", "accepted", "typed"))
        store.record = "off"
        assert not store.record_suggestion(suggestion("bug", *BUGGY))
        store.record_outcome(OutcomeRecord("clean", "rejected", "superseded"))
        store.record_outcome(OutcomeRecord("bug", "edited", "edited", final_text="    if x is None:"))
        assert store.counts()["suggestions"] == 1
        assert store.counts()["outcomes"] == 1


def test_unknown_record_mode_lists_the_valid_ones(isolated_home: Path) -> None:
    with pytest.raises(ConfigError, match="valid: patterns, all, off"):
        Store.open(isolated_home, record="everything")


def test_edit_of_an_unrecorded_suggestion_still_becomes_a_pair(any_store: Store) -> None:
    store = any_store
    rec = suggestion("e1", "def total(xs):\n    return ", "sum(xs) + 1\n", matched=False)
    assert not store.record_suggestion(rec)
    store.record_outcome(OutcomeRecord("e1", "accepted", "command"))
    store.record_outcome(OutcomeRecord("e1", "edited", "edited", final_text="    return sum(xs)"))
    (stored,) = store.pairs()
    assert stored.origin == "edit"
    assert stored.pair.prefix == "def total(xs):\n"
    assert (stored.pair.buggy, stored.pair.fixed) == ("    return sum(xs) + 1", "    return sum(xs)")
    assert stored.pair.pattern == "reduce_expression"
    assert store.counts()["edited"] == 1


def test_edit_pair_picks_the_line_the_user_changed(any_store: Store) -> None:
    store = any_store
    store.record = "all"
    text = "a = load()\n    b = a.count(x)\n    return b"
    store.record_suggestion(suggestion("m1", "def f(x):\n    ", text))
    store.record_outcome(OutcomeRecord("m1", "edited", "edited", final_text="b = a.count(y)"))
    (stored,) = store.pairs()
    assert stored.pair.prefix == "def f(x):\n    a = load()\n"
    assert (stored.pair.buggy, stored.pair.fixed) == ("    b = a.count(x)", "    b = a.count(y)")
    assert stored.pair.suffix.startswith("    return b")


def test_edit_of_a_multi_line_suggestion(any_store: Store) -> None:
    store = any_store
    store.record = "all"
    text = "a = load()\n    b = a.count(x)"
    store.record_suggestion(suggestion("m2", "def f(x):\n    ", text, suffix="\n    return b\n"))
    store.record_outcome(
        OutcomeRecord("m2", "edited", "edited", final_text="    a = load()\n    b = a.count(y)")
    )
    store.record_suggestion(suggestion("m3", "def g(x):\n    ", text))
    store.record_outcome(
        OutcomeRecord("m3", "edited", "edited", final_text="    a = load(x)\n    b = a.total()")
    )
    store.record_suggestion(suggestion("m4", "def h(x):\n    ", text))
    store.record_outcome(
        OutcomeRecord("m4", "edited", "edited", final_text="    a  =  load()\n    b = a.count(x)")
    )
    one, block = store.pairs()
    assert (one.pair.prefix, one.pair.buggy, one.pair.fixed) == (
        "def f(x):\n    a = load()\n",
        "    b = a.count(x)",
        "    b = a.count(y)",
    )
    assert one.pair.suffix == "    return b\n"
    assert (block.pair.prefix, block.pair.buggy) == ("def g(x):\n", "    a = load()\n    b = a.count(x)")
    assert block.pair.fixed == "    a = load(x)\n    b = a.total()"


def test_nothing_is_written_unredacted(any_store: Store, isolated_home: Path, store_url: str) -> None:
    store = any_store
    store.record = "all"
    prefix = 'ADMIN = "root@intra.example.net"\nHOST = "10.9.8.7"\ndef connect():\n    '
    store.record_suggestion(suggestion("r1", prefix, 'password = "correct-horse-battery"'))
    store.record_outcome(
        OutcomeRecord("r1", "edited", "edited", final_text='    password = os.environ["PW"]')
    )
    store.close()
    raw = stored_bytes(isolated_home, store_url)
    assert b"def connect" in raw
    for secret in (b"root@intra.example.net", b"10.9.8.7", b"correct-horse-battery"):
        assert secret not in raw
    with Store.open(isolated_home, url=store_url) as reopened:
        (stored,) = reopened.pairs()
        assert '"<EMAIL>"' in stored.pair.prefix and '"<IP>"' in stored.pair.prefix
        assert stored.pair.buggy == '    password = "<SECRET>"'


def test_training_records_sort_outcomes_into_learn_unlearn_retain(any_store: Store) -> None:
    store = any_store
    store.record = "all"
    store.record_suggestion(suggestion("fixable", *BUGGY))
    store.record_outcome(OutcomeRecord("fixable", "rejected", "diverged"))
    secret_rec = suggestion(
        "nofix", "def hash_pw(password):\n    return ", "hashlib.md5(password.encode()).hexdigest()"
    )
    assert secret_rec.matches and secret_rec.matches[0].fix is None
    store.record_suggestion(secret_rec)
    store.record_outcome(OutcomeRecord("nofix", "rejected", "superseded"))
    store.record_suggestion(suggestion("moved-on", "x = ", "compute()"))
    store.record_outcome(OutcomeRecord("moved-on", "rejected", "superseded"))
    store.record_suggestion(suggestion("dismissed", "y = ", "compute()"))
    store.record_outcome(OutcomeRecord("dismissed", "rejected", "dismissed"))
    store.record_suggestion(suggestion("good", *CLEAN))
    store.record_outcome(OutcomeRecord("good", "accepted", "command"))
    store.add_pairs(
        [BugFixPair(prefix="", buggy="n ^= n - 1", fixed="n &= n - 1", id="bitcount")], origin="mined"
    )

    records = store.training_records()
    assert [(p.origin, p.record_id) for p in records.pairs] == [
        ("mined", "pair:bitcount"),
        ("rule", "suggestion:fixable"),
    ]
    rule_pair = records.pairs[1].pair
    assert (rule_pair.prefix, rule_pair.buggy, rule_pair.fixed) == (
        "def load(x):\n",
        "    if x == None:",
        "    if x is None:",
    )
    assert [t.record_id for t in records.unlearn_only] == ["suggestion:nofix", "suggestion:dismissed"]
    assert [(t.prefix, t.text) for t in records.retain] == [CLEAN]

    store.mark_consumed("v0002", ["pair:bitcount", "suggestion:good", "suggestion:nofix"])
    later = store.training_records(not_consumed_by="v0002")
    assert [p.record_id for p in later.pairs] == ["suggestion:fixable"]
    assert [t.record_id for t in later.unlearn_only] == ["suggestion:dismissed"]
    assert later.retain == []
    assert len(store.training_records(not_consumed_by="v0003").pairs) == 2
    assert store.counts()["consumed"] == 3


def test_a_pair_that_only_swaps_one_secret_for_another_is_not_kept(any_store: Store) -> None:
    store = any_store
    pair = BugFixPair(prefix="", buggy='KEY = "AKIAIOSFODNN7EXAMPLE"', fixed='KEY = "AKIAI44QH8DHBEXAMPLE"')
    assert store.add_pairs([pair], origin="mined") == 0


def test_add_pairs_is_idempotent(any_store: Store) -> None:
    store = any_store
    pair = BugFixPair(prefix="", buggy="a < b", fixed="a <= b")
    assert store.add_pairs([pair, pair], origin="file:x") == 1
    assert store.add_pairs([pair], origin="file:x") == 0


def test_purge_removes_rows_and_their_bytes(any_store: Store, isolated_home: Path, store_url: str) -> None:
    store = any_store
    marker = "def very_distinctive_function_name_xyz(x):\n    "
    store.record_suggestion(suggestion("p1", marker, "if x == None:\n        pass"))
    store.add_pairs([BugFixPair(prefix=marker, buggy="a = 1", fixed="a = 2")], origin="mined")
    store.purge()
    assert set(store.counts().values()) == {0}
    # SQLite overwrites the freed pages; PostgreSQL frees them at its next vacuum: no live row holds it.
    assert b"very_distinctive_function_name_xyz" not in stored_bytes(isolated_home, store_url)
    assert store.record_suggestion(suggestion("p2", *BUGGY))


def test_export_writes_pair_json_lines(any_store: Store) -> None:
    store = any_store
    store.add_pairs([BugFixPair(prefix="p\n", buggy="a = 1", fixed="a = 2", id="one")], origin="mined")
    out = io.StringIO()
    assert store.export_pairs(out) == 1
    data = json.loads(out.getvalue())
    assert (data["id"], data["buggy"], data["fixed"], data["origin"]) == ("one", "a = 1", "a = 2", "mined")


def test_corrupt_store_is_reported_and_left_untouched(isolated_home: Path) -> None:
    isolated_home.mkdir(parents=True)
    path = isolated_home / "store.sqlite3"
    path.write_bytes(b"garbage, not a database " * 200)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="corrupt or not a hotfix store"):
        Store.open(isolated_home)
    assert path.read_bytes() == before
    assert remove_store_files(isolated_home) == [path]
    Store.open(isolated_home).close()


def test_newer_schema_is_refused(isolated_home: Path) -> None:
    Store.open(isolated_home).close()
    db = sqlite3.connect(isolated_home / "store.sqlite3")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this hotfix"):
        Store.open(isolated_home)


def test_unwritable_data_folder_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the store"):
        Store.open(blocker / "data")


def test_locked_store_times_out_with_a_store_error(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store._db.execute("PRAGMA busy_timeout = 100")
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            store.record_suggestion(suggestion("l1", *BUGGY))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.record_suggestion(suggestion("l1", *BUGGY))


def test_closed_store_raises(isolated_home: Path, store_url: str) -> None:
    store = Store.open(isolated_home, url=store_url)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.counts()


def test_schema_is_migrated_from_a_new_store(isolated_home: Path) -> None:
    with Store.open(isolated_home) as store:
        assert store.counts()["pairs"] == 0
    db = sqlite3.connect(isolated_home / "store.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(store_schema.MIGRATIONS)
    assert db.execute("PRAGMA application_id").fetchone()[0] == store_schema.APPLICATION_ID
    db.close()


def test_an_empty_file_is_not_taken_over(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """hotfix creates its store whole (made aside, linked into place), so an empty file is someone else's."""
    from hotfix_engine.cli import main

    isolated_home.mkdir(parents=True)
    path = isolated_home / "store.sqlite3"
    path.touch()
    with pytest.raises(StoreError, match="empty file, not a hotfix store"):
        Store.open(isolated_home)
    assert main(["data", "purge", "--yes", "--data-dir", str(isolated_home)]) == 1
    assert "not a hotfix store" in capsys.readouterr().err
    assert path.read_bytes() == b"" and [p.name for p in isolated_home.iterdir()] == ["store.sqlite3"]


@pytest.mark.parametrize("application_id", [0, 0x4D594150])
def test_another_applications_database_is_not_taken_over(
    isolated_home: Path, application_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotfix_engine.cli import main

    isolated_home.mkdir(parents=True)
    path = isolated_home / "store.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA application_id = {application_id}")
    db.execute("CREATE TABLE notes (body TEXT)")
    db.execute("INSERT INTO notes VALUES ('keep me')")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a hotfix store") as refused:
        Store.open(isolated_home)
    assert "corrupt" not in str(refused.value)  # `hotfix data purge` deletes only what it calls corrupt
    assert main(["data", "purge", "--yes", "--data-dir", str(isolated_home)]) == 1
    assert "leaves it untouched" in capsys.readouterr().err
    assert path.read_bytes() == before and [p.name for p in isolated_home.iterdir()] == ["store.sqlite3"]


def test_a_store_made_before_the_stamp_is_recognised_and_stamped(isolated_home: Path) -> None:
    with Store.open(isolated_home) as store:
        store.add_pairs([BugFixPair(prefix="", buggy="a = 1", fixed="a = 2", id="old")], origin="mined")
    db = sqlite3.connect(isolated_home / "store.sqlite3")
    db.execute("PRAGMA application_id = 0")  # as every store was before the stamp
    db.commit()
    db.close()
    with Store.open(isolated_home) as store:
        assert [p.pair.id for p in store.pairs()] == ["old"]
    db = sqlite3.connect(isolated_home / "store.sqlite3")
    assert db.execute("PRAGMA application_id").fetchone()[0] == store_schema.APPLICATION_ID
    db.close()


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from hotfix_engine.store import Store
    from hotfix_engine.store_records import SuggestionRecord, OutcomeRecord
    from hotfix_engine.patterns import PatternMatch

    folder, name, count, mode = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    match = (PatternMatch("none-comparison", "rule", "buggy", 0, "m", "    if x is None:"),)
    store = Store.open(folder, record="patterns")
    if mode == "hold":
        # Commit some events, then stop inside an open transaction until killed.
        for i in range(count):
            store.record_suggestion(SuggestionRecord(f"{name}-{i}", time.time(), "python", "u", "p", "", "if x == None:", "m", None, match))
        db = store._db
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO pairs VALUES ('half', 0, 'p', 'b', 'f', '', 's', '', '', 'o', NULL)")
        print("holding", flush=True)
        time.sleep(60)
    else:
        for i in range(count):
            sid = f"{name}-{i}"
            store.record_suggestion(SuggestionRecord(sid, time.time(), "python", "u", "p", "", "if x == None:", "m", None, match))
            store.record_outcome(OutcomeRecord(sid, "rejected", "dismissed"))
            if mode == "loop" and i == 0:
                print("writing", flush=True)
        print("done", flush=True)
    """
)


def start_writer(folder: Path, name: str, count: int, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), name, str(count), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_writer_killed_mid_transaction_loses_only_that_event(isolated_home: Path) -> None:
    writer = start_writer(isolated_home, "k", 5, "hold")
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "holding"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
    with Store.open(isolated_home) as store:
        assert store.counts()["suggestions"] == 5
        assert store.pairs() == []
        assert store.record_suggestion(suggestion("after", *BUGGY))
    db = sqlite3.connect(isolated_home / "store.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def test_writer_killed_at_a_random_moment_leaves_a_sound_store(isolated_home: Path) -> None:
    writer = start_writer(isolated_home, "r", 100000, "loop")
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        time.sleep(0.3)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
    with Store.open(isolated_home) as store:
        counts = store.counts()
    assert counts["suggestions"] >= 1
    # Each suggestion and its outcome are separate events: the kill may fall between them, no worse.
    assert counts["suggestions"] - 1 <= counts["outcomes"] <= counts["suggestions"]


def test_two_writer_processes_at_once(isolated_home: Path) -> None:
    Store.open(isolated_home).close()
    writers = [start_writer(isolated_home, name, 60, "all") for name in ("a", "b")]
    outputs = [w.communicate(timeout=120)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0]
    assert all(out.strip().endswith("done") for out in outputs)
    with Store.open(isolated_home) as store:
        counts = store.counts()
    assert (counts["suggestions"], counts["rejected"]) == (120, 120)


def wal_killed_after(isolated_home: Path, commits: int) -> Path:
    """A store whose writer committed ``commits`` suggestions and was killed: its WAL is left as is."""
    writer = start_writer(isolated_home, "w", commits, "hold")
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "holding"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
    return isolated_home / "store.sqlite3-wal"


@pytest.mark.parametrize("damage", ["flipped", "cut"])
def test_a_damaged_wal_tail_is_reported_not_dropped_silently(
    isolated_home: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    wal = wal_killed_after(isolated_home, 5)
    data = bytearray(wal.read_bytes())
    if damage == "flipped":
        data[-100] ^= 0xFF  # a bit rot in the last transaction's page
    else:
        del data[-100:]  # the end of the log cut off
    wal.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="hotfix_engine.store_sqlite"), Store.open(isolated_home) as store:
        assert store.counts()["suggestions"] == 4  # SQLite could not apply the last one...
        assert store.wal_loss is not None and "1 committed transaction(s)" in store.wal_loss
    assert "what they recorded is lost" in caplog.text  # ...and now it says so
    with caplog.at_level("WARNING", logger="hotfix_engine.store_sqlite"):
        caplog.clear()
        Store.open(isolated_home).close()
    assert "lost" not in caplog.text  # said once per process, not at every open (the daemon reopens)


def test_an_intact_wal_left_by_a_kill_is_not_reported(isolated_home: Path) -> None:
    wal_killed_after(isolated_home, 5)
    with Store.open(isolated_home) as store:
        assert store.counts()["suggestions"] == 5 and store.wal_loss is None


def test_a_provisional_outcome_is_finalised_in_place(any_store: Store) -> None:
    store = any_store
    store.record = "all"
    store.record_suggestion(suggestion("p1", *CLEAN))
    store.record_outcome(OutcomeRecord("p1", "accepted", "typed"))
    store.record_outcome(OutcomeRecord("p1", "accepted", "command", replaces="typed"))
    store.record_suggestion(suggestion("p2", *CLEAN))
    store.record_outcome(OutcomeRecord("p2", "accepted", "command", replaces="typed"))  # its write failed
    rows = store.query("SELECT suggestion_id, kind, reason FROM outcomes ORDER BY id")
    assert [tuple(r.values()) for r in rows] == [("p1", "accepted", "command"), ("p2", "accepted", "command")]
    assert store.counts()["accepted"] == 2


SECOND_OPEN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from hotfix_engine.store import Store
    from hotfix_engine.store_records import SuggestionRecord

    folder, extra = Path(sys.argv[1]), sys.argv[2]
    first = Store.open(folder, record="all")
    first.record_suggestion(SuggestionRecord("a", time.time(), "python", "u", "p", "", "x = 1", "m", None))
    Store.open(folder).close()  # the log is live now, so this open inspects it
    if extra == "close-shm":  # what reading the -shm file would do
        open(str(folder / "store.sqlite3-shm"), "rb").close()
    print("reopened", flush=True)
    sys.stdin.readline()
    """
)
SHM_DMS_BYTE = 128  # SQLite's "dead man switch" lock in the -shm file (os_unix.c, UNIX_SHM_DMS)


@pytest.mark.skipif(sys.platform != "linux", reason="reads the struct flock layout of Linux")
@pytest.mark.parametrize("extra", ["", "close-shm"])
def test_opening_the_store_twice_in_one_process_keeps_sqlite_s_locks(isolated_home: Path, extra: str) -> None:
    """POSIX drops all of a process's locks on a file when any descriptor of it closes. Had the WAL
    check opened the -shm file, SQLite's shared lock on it would be gone: the next process to open
    the store would take it for unused and reset its shared memory under the first connection
    (seen as a SIGBUS in the server)."""
    import fcntl
    import struct

    child = subprocess.Popen(
        [sys.executable, "-c", SECOND_OPEN, str(isolated_home), extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "reopened"
        with open(isolated_home / "store.sqlite3-shm", "rb") as shm:  # this process holds no locks
            probe = struct.pack("@hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, SHM_DMS_BYTE, 1, 0)
            kind, _, _, _, holder = struct.unpack("@hhqqi4x", fcntl.fcntl(shm, fcntl.F_GETLK, probe))
    finally:
        child.communicate("done\n", timeout=30)
    if extra:
        assert kind == fcntl.F_UNLCK  # the probe sees the failure it guards against
    else:
        assert (kind, holder) == (fcntl.F_RDLCK, child.pid)
