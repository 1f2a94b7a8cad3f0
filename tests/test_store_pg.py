"""The team store on PostgreSQL: schema versions and migrations, scopes, many writers at once, no
password in any message, and the commands that read it (``hotfix train --from-store``, ``hotfix
data export``). The record semantics it shares with SQLite run in test_store.py on both backends.

Each test gets a fresh database in one throw-away cluster (tests/pg_cluster.py); skipped, with the
reason, where the PostgreSQL server binaries or psycopg are missing.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pg_cluster
import pytest

from hotfix_engine import store_pg
from hotfix_engine.errors import ConfigError, StoreError
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.patterns import Catalogue, PatternMatch
from hotfix_engine.store import Store
from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord
from hotfix_engine.store_redaction import STORED_PREFIX_CHARS
from hotfix_engine.suppressions import Suppressions

REPO = Path(__file__).resolve().parents[1]
BUGGY = ("def load(x):\n    ", "if x == None:\n        return {}")
MATCH = (PatternMatch("none-comparison", "rule", "buggy", 0, "m", "    if x is None:"),)
PASSWORD = "Pg-Sup3r-S3cret-Pw"


@pytest.fixture(scope="module")
def cluster() -> pg_cluster.Cluster:
    try:
        return pg_cluster.shared()
    except pg_cluster.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def url(cluster: pg_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("HOTFIX_USER", raising=False)
    monkeypatch.delenv("HOTFIX_STORE", raising=False)
    return cluster.new_database_url()


def dbname(url: str) -> str:
    return url.split("/")[3].split("?")[0]


def suggestion(
    sid: str, prefix: str = BUGGY[0], text: str = BUGGY[1], matched: bool = True
) -> SuggestionRecord:
    matches = tuple(Catalogue().check(prefix, text)) if matched else ()
    return SuggestionRecord(
        sid, time.time(), "python", "file:///w/app.py", prefix, "\n", text, "tiny", None, matches
    )


def as_user(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("HOTFIX_USER", name)


# -- schema --------------------------------------------------------------------------------------


def test_an_empty_database_is_migrated_to_the_current_schema(url: str, cluster: pg_cluster.Cluster) -> None:
    with Store.open(Path("unused"), url=url) as store:
        assert store.path is None and store.location == url
        assert store.counts()["suggestions"] == 0
    db = dbname(url)
    assert cluster.admin("SELECT application_id, version FROM hotfix_schema", dbname=db) == [
        (store_pg.APPLICATION_ID, store_pg.SCHEMA_VERSION)
    ]
    views = {row[0] for row in cluster.admin("SELECT table_name FROM information_schema.views", dbname=db)}
    assert {"suggestions", "outcomes", "pairs", "consumed", "suppressions"} <= views
    Store.open(Path("unused"), url=url).close()  # opening again migrates nothing


def make_old_store(cluster: pg_cluster.Cluster, url: str, version: int) -> dict[str, str]:
    """A store as hotfix left it at ``version`` (1: long contexts, unredacted; 3: before scopes)."""
    import psycopg

    prefixes = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE hotfix_schema (application_id INTEGER NOT NULL, version INTEGER NOT NULL)")
        conn.execute("INSERT INTO hotfix_schema VALUES (%s, %s)", (store_pg.APPLICATION_ID, version))
        for statement in store_pg.MIGRATIONS[0].split(";"):
            if statement.strip():
                conn.execute(statement)
        for i in range(3):
            code = "".join(f"OLD_CODE_{i} = {n}\n" for n in range(2000 if version == 1 else 5))
            secret = 'API = "root@intra.example.net"\n' if version == 1 else ""
            prefix = code + secret + "def load(x):\n    "
            prefixes[f"old{i}"] = prefix
            match = json.dumps([m.to_json() for m in Catalogue().check(prefix, "if x == None:")])
            conn.execute(
                "INSERT INTO suggestions VALUES (%s, %s, 'python', 'file:///w/a.py', %s, '\n', 'if x == None:', "
                "'tiny', NULL, %s)",
                (f"old{i}", float(i), prefix, match),
            )
            conn.execute(
                "INSERT INTO outcomes (suggestion_id, kind, reason, created) VALUES (%s, 'rejected', 'dismissed', %s)",
                (f"old{i}", float(i)),
            )
        conn.execute(
            "INSERT INTO pairs VALUES ('mined1', 1.0, 'p\n', 'a < b', 'a <= b', '', 'mined', '', '', 'mined', NULL)"
        )
        conn.execute("INSERT INTO consumed VALUES ('v0001', 'pair:mined1', 1.0)")
        conn.execute(
            "INSERT INTO suppressions VALUES ('s1', 1.0, '/w', 'def f():', '', %s, NULL, 'old0', 'dismissed', NULL)",
            ('password = "correct-horse-battery"' if version == 1 else "x = 1",),
        )
    return prefixes


@pytest.mark.parametrize("version", [1, 3])
def test_an_older_schema_is_migrated_and_keeps_every_record(
    url: str, cluster: pg_cluster.Cluster, version: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefixes = make_old_store(cluster, url, version)
    as_user(monkeypatch, "alice")
    with Store.open(Path("unused"), url=url) as store:
        assert store.counts() == {
            "suggestions": 3, "outcomes": 3, "accepted": 0, "rejected": 3, "edited": 0,
            "pairs": 1, "edit_pairs": 0, "consumed": 1,
        }  # fmt: skip
        records = store.training_records(not_consumed_by="v0001")
        assert [p.record_id for p in records.pairs] == [f"suggestion:old{i}" for i in range(3)]
        for stored in records.pairs:
            assert len(stored.pair.prefix) <= STORED_PREFIX_CHARS
            assert stored.pair.prefix.endswith("def load(x):\n")
        assert [s.text for s in Suppressions(store).items()] == [
            'password = "<SECRET>"' if version == 1 else "x = 1"
        ]
        kept = {row["id"]: row["prefix"] for row in store.query("SELECT id, prefix FROM suggestions")}
    raw = pg_cluster.dump(url)
    assert "root@intra.example.net" not in raw and "correct-horse-battery" not in raw
    if version == 1:
        assert "OLD_CODE_0 = 0\n" not in raw  # cut to the window
        assert all(kept[sid].endswith('API = "<EMAIL>"\ndef load(x):\n    ') for sid in prefixes)
    else:
        assert kept == prefixes  # short and clean: left exactly as it was
    # Records from before scopes are the upgrading user's: another user's personal scope has none.
    as_user(monkeypatch, "bob")
    with Store.open(Path("unused"), url=url) as store:
        assert store.counts()["suggestions"] == 0
    with Store.open(Path("unused"), url=url, scope="team") as store:
        assert store.counts()["suggestions"] == 3


def test_a_newer_schema_is_refused(url: str, cluster: pg_cluster.Cluster) -> None:
    Store.open(Path("unused"), url=url).close()
    cluster.admin("UPDATE hotfix_schema SET version = version + 1", dbname=dbname(url))
    with pytest.raises(StoreError, match="newer than this hotfix"):
        Store.open(Path("unused"), url=url)


def test_another_applications_database_is_not_taken_over(url: str, cluster: pg_cluster.Cluster) -> None:
    db = dbname(url)
    cluster.admin("CREATE TABLE pairs (body TEXT)", dbname=db)
    cluster.admin("INSERT INTO pairs VALUES ('keep me')", dbname=db)
    with pytest.raises(StoreError, match="already has pairs but is not a hotfix store"):
        Store.open(Path("unused"), url=url)
    tables = {
        row[0]
        for row in cluster.admin("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", dbname=db)
    }
    assert tables == {"pairs"}
    assert cluster.admin("SELECT body FROM pairs", dbname=db) == [("keep me",)]


def test_servers_that_start_together_migrate_once(url: str) -> None:
    """Several processes open an empty database at the same moment: one migrates, the others wait."""
    script = (
        "import sys; from hotfix_engine.store import Store; Store.open('unused', url=sys.argv[1]).close()"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, url], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors


# -- scopes --------------------------------------------------------------------------------------


def test_scopes_keep_each_users_records_apart_and_the_team_sees_all(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared_pair = BugFixPair(prefix="", buggy="a < b", fixed="a <= b", id="shared")
    for user in ("alice", "bob"):
        as_user(monkeypatch, user)
        with Store.open(Path("unused"), url=url) as store:
            store.record_suggestion(suggestion(f"{user}-1"))
            store.record_outcome(OutcomeRecord(f"{user}-1", "rejected", "dismissed"))
            assert store.add_pairs([shared_pair], origin="file:team.jsonl") == 1  # each user keeps their own
            Suppressions(store).add("/w", "def f(x):\n    ", f"return {user}\n")
    as_user(monkeypatch, "alice")
    with (
        Store.open(Path("unused"), url=url) as mine,
        Store.open(Path("unused"), url=url, scope="team") as team,
    ):
        assert [p.record_id for p in mine.training_records().pairs] == ["pair:shared", "suggestion:alice-1"]
        team_ids = [p.record_id for p in team.training_records().pairs]
        assert sorted(team_ids) == ["pair:shared", "suggestion:alice-1", "suggestion:bob-1"]  # the pair once
        # A version's consumed records are its trainer's: bob's v0001 is not alice's.
        team.mark_consumed("v0001", team_ids)
        assert team.training_records(not_consumed_by="v0001").pairs == []
        assert [s.text for s in Suppressions(team).items()] == ["return alice\n"]
        mine.purge()  # deletes alice's records, nobody else's
        assert mine.counts()["suggestions"] == 0
        assert team.counts()["suggestions"] == 1
    as_user(monkeypatch, "bob")
    with Store.open(Path("unused"), url=url) as bobs:
        assert len(bobs.training_records(not_consumed_by="v0001").pairs) == 2
        assert bobs.counts()["consumed"] == 0
        suppressions = Suppressions(bobs)
        assert [s.text for s in suppressions.items()] == ["return bob\n"]
        assert suppressions.steer(None, "def f(x):\n    ").banned == ("return bob\n",)


def test_suppressions_changed_by_another_process_are_seen(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_pg, "DATA_VERSION_POLL_S", 0.0)
    with Store.open(Path("unused"), url=url) as serving, Store.open(Path("unused"), url=url) as cli:
        running = Suppressions(serving)
        item = running.add("/w", "def f(x):\n    ", "return x + 1\n")
        assert item is not None and running.steer("/w", "def f(x):\n    ").banned
        assert Suppressions(cli).remove([item.id]) == 1
        assert running.steer("/w", "def f(x):\n    ").banned == ()


def test_unknown_scope_and_url_are_refused(isolated_home: Path) -> None:
    with pytest.raises(ConfigError, match="valid: personal, team"):
        Store.open(isolated_home, scope="everyone")
    with pytest.raises(ConfigError, match="not a postgresql:// URL"):
        Store.open(isolated_home, url="mysql://u:pw@host/db")


# -- many writers at once ------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys, time
    from hotfix_engine.pairs import BugFixPair
    from hotfix_engine.patterns import PatternMatch
    from hotfix_engine.store import Store
    from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord
    from hotfix_engine.store_redaction import STORED_PREFIX_CHARS

    url, user, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    match = (PatternMatch("none-comparison", "rule", "buggy", 0, "m", "    if x is None:"),)
    shared = [BugFixPair(prefix="", buggy=f"a < {n}", fixed=f"a <= {n}", id=f"shared{n}") for n in range(8)]
    with Store.open("unused", record="all", url=url) as store:
        for i in range(count):
            sid = f"{user}-{i}"
            if i % 3 == 2:  # an edit: the suggestion, accepted, then edited into a fix
                store.record_suggestion(SuggestionRecord(sid, time.time(), "python", "u", "def f(xs):\\n    ", "\\n", "return sum(xs) + 1", "m", None))
                store.record_outcome(OutcomeRecord(sid, "accepted", "typed"))
                store.record_outcome(OutcomeRecord(sid, "edited", "edited", final_text="    return sum(xs)"))
            else:  # a rejected buggy suggestion with the rule's fix
                store.record_suggestion(SuggestionRecord(sid, time.time(), "python", "u", "def load(x):\\n    ", "\\n", "if x == None:", "m", None, match))
                store.record_outcome(OutcomeRecord(sid, "rejected", "dismissed"))
            if i % 10 == 0:  # the same pairs from every writer, in opposite orders: waits, maybe deadlocks
                store.add_pairs(shared if i % 20 else shared[::-1], origin="file:team.jsonl")
    print("done", flush=True)
    """
)


def test_many_writers_at_once_lose_and_duplicate_nothing_while_a_trainer_reads(url: str) -> None:
    writers, events = 6, 30
    Store.open(Path("unused"), url=url).close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"user{k}", str(events)],
            env={**env, "HOTFIX_USER": f"user{k}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(writers)
    ]
    reads = 0
    with Store.open(Path("unused"), url=url, scope="team") as trainer:
        while any(p.poll() is None for p in procs) or reads == 0:
            records = trainer.training_records()
            ids = [p.record_id for p in records.pairs] + [t.record_id for t in records.unlearn_only]
            ids += [t.record_id for t in records.retain]
            assert len(ids) == len(set(ids)), "a record read twice in one snapshot"
            reads += 1
        outputs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0] * writers, [err for _, err in outputs]
        records = trainer.training_records()
        counts = trainer.counts()
    expected = {
        (f"pair:edit-user{k}-{i}" if i % 3 == 2 else f"suggestion:user{k}-{i}")
        for k in range(writers)
        for i in range(events)
    } | {f"pair:shared{n}" for n in range(8)}
    got = [p.record_id for p in records.pairs]
    assert len(got) == len(set(got)) and set(got) == expected
    assert records.unlearn_only == [] and records.retain == []
    edits = writers * len([i for i in range(events) if i % 3 == 2])
    assert counts["suggestions"] == writers * events
    assert counts["outcomes"] == writers * events + edits  # accepted then edited
    assert counts["edit_pairs"] == edits
    assert counts["pairs"] == edits + 8 * writers  # each writer keeps its own copy of the shared pairs


def test_a_deadlock_between_two_writers_is_run_again(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers insert the same two pairs in opposite orders, each holding the row the other wants
    next: PostgreSQL aborts one, and the store runs its transaction again instead of losing it."""
    import threading

    Store.open(Path("unused"), url=url).close()
    pairs = [BugFixPair(prefix="", buggy=f"a < {n}", fixed=f"a <= {n}", id=f"p{n}") for n in range(2)]
    barrier = threading.Barrier(2, timeout=60)
    waited: set[int] = set()
    original = Store._insert_pair

    def insert_then_wait(self: Store, db: object, pair: BugFixPair, origin: str, sid: str | None) -> object:
        stored = original(self, db, pair, origin, sid)
        if threading.get_ident() not in waited:  # the first try only
            waited.add(threading.get_ident())
            barrier.wait()
        return stored

    monkeypatch.setattr(Store, "_insert_pair", insert_then_wait)
    added: list[int] = []
    failed: list[BaseException] = []

    def write(order: list[BugFixPair]) -> None:
        try:
            with Store.open(Path("unused"), url=url) as store:
                added.append(store.add_pairs(order, origin="mined"))
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=write, args=(order,)) for order in (pairs, pairs[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failed == [] and sorted(added) == [0, 2]
    with Store.open(Path("unused"), url=url) as store:
        assert sorted(p.pair.id for p in store.pairs()) == ["p0", "p1"]


# -- credentials ---------------------------------------------------------------------------------


@pytest.fixture
def alice_db(cluster: pg_cluster.Cluster) -> str:
    """A database owned by a role with a password (TCP on loopback asks for it)."""
    if not cluster.admin("SELECT 1 FROM pg_roles WHERE rolname = 'alice'"):
        cluster.admin(f"CREATE ROLE alice LOGIN PASSWORD '{PASSWORD}'")
    return cluster.create_database(owner="alice")


def test_a_wrong_password_is_never_shown(
    cluster: pg_cluster.Cluster, alice_db: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from hotfix_engine.cli import main

    wrong = cluster.url(alice_db, user="alice", password=PASSWORD + "-wrong", tcp=True)
    with caplog.at_level(logging.DEBUG), pytest.raises(StoreError) as refused:
        Store.open(Path("unused"), url=wrong)
    message = str(refused.value)
    assert "password authentication failed" in message and "alice:***@" in message
    assert main(["--store", wrong, "data", "export"]) == 1
    monkeypatch.setenv("PGPASSWORD", PASSWORD + "-env-wrong")
    with pytest.raises(StoreError) as from_env:
        Store.open(Path("unused"), url=cluster.url(alice_db, user="alice", tcp=True))
    shown = message + str(from_env.value) + caplog.text + "".join(capsys.readouterr())
    assert PASSWORD not in shown and "-env-wrong" not in shown


def test_the_password_comes_from_the_url_the_environment_or_pgpass_and_is_never_logged(
    cluster: pg_cluster.Cluster, alice_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from hotfix_engine.cli import main

    with caplog.at_level(logging.DEBUG):
        with_password = cluster.url(alice_db, user="alice", password=PASSWORD, tcp=True)
        with Store.open(Path("unused"), url=with_password) as store:
            assert store.location == cluster.url(alice_db, user="alice", password="***", tcp=True)
            store.add_pairs([BugFixPair(prefix="", buggy="a < b", fixed="a <= b", id="one")], origin="mined")
        bare = cluster.url(alice_db, user="alice", tcp=True)
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
        with Store.open(Path("unused"), url=bare) as store:
            assert store.counts()["pairs"] == 1
        monkeypatch.delenv("PGPASSWORD")
        pgpass = tmp_path / "pgpass"
        pgpass.write_text(f"127.0.0.1:{cluster.port}:{alice_db}:alice:{PASSWORD}\n")
        pgpass.chmod(0o600)
        monkeypatch.setenv("PGPASSFILE", str(pgpass))
        assert main(["--store", bare, "-vv", "data", "export"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["id"] == "one"
    assert PASSWORD not in caplog.text + out.out + out.err


# -- the commands --------------------------------------------------------------------------------


def test_export_reads_the_team_store(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hotfix_engine.cli import main

    for user in ("alice", "bob"):
        as_user(monkeypatch, user)
        with Store.open(Path("unused"), url=url) as store:
            store.record_suggestion(suggestion(f"{user}-1"))
            store.record_outcome(OutcomeRecord(f"{user}-1", "rejected", "dismissed"))
    out = tmp_path / "team.jsonl"
    assert main(["--store", url, "data", "export", "--scope", "team", "--out", str(out)]) == 0
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == [
        "rule-alice-1",
        "rule-bob-1",
    ]
    monkeypatch.setenv("HOTFIX_STORE", url)  # the environment chooses the store as --store does
    assert main(["data", "export", "--out", str(out)]) == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["rule-bob-1"]


def test_train_from_the_team_store(
    url: str, tiny_model_dir: Path, isolated_home: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from hotfix_engine.cli import main

    pairs = [
        BugFixPair(prefix="def add(a, b):\n", buggy="    return a - b", fixed="    return a + b", id="add"),
        BugFixPair(prefix="def find(xs, t):\n", buggy="    return -2", fixed="    return -1", id="find"),
    ]
    as_user(monkeypatch, "alice")
    with Store.open(Path("unused"), url=url) as store:
        store.add_pairs(pairs[:1], origin="edit")
    as_user(monkeypatch, "bob")
    with Store.open(Path("unused"), url=url) as store:
        store.add_pairs(pairs[1:], origin="edit")
    argv = ["--store", url, "train", "--from-store", "--scope", "team", "--model", str(tiny_model_dir)]
    argv += ["--data-dir", str(isolated_home), "--epochs", "1", "--threads", "1", "--force", "--json"]
    assert main(argv) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["store_scope"] == "team"
    with Store.open(Path("unused"), url=url, scope="team") as store:
        assert store.training_records(not_consumed_by=manifest["version"]).pairs == []
        assert store.counts()["consumed"] == 2  # bob's, who trained
    assert main(argv) == 1
    assert "no new" in capsys.readouterr().err


# -- the connection ------------------------------------------------------------------------------


def test_a_dropped_connection_is_reopened(url: str, cluster: pg_cluster.Cluster) -> None:
    with Store.open(Path("unused"), url=url, record="all") as store:
        store.record_suggestion(suggestion("before"))
        cluster.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname(url),),
        )
        assert store.record_suggestion(suggestion("after"))
        assert store.counts()["suggestions"] == 2


def test_text_postgresql_cannot_hold_is_stored_all_the_same(url: str) -> None:
    with Store.open(Path("unused"), url=url) as store:
        assert store.add_pairs(
            [BugFixPair(prefix="", buggy="a = '\x00'", fixed="a = ''", id="nul")], origin="mined"
        )
        (stored,) = store.pairs()
        assert stored.pair.buggy == "a = '\ufffd'"
