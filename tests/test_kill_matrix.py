"""kill -9 at known points: the server while outcomes stream in, the daemon mid-run, and `hotfix train`
mid-training, with its version staged, renamed into place, and published but not yet marked.

After every kill: the store passes ``PRAGMA integrity_check``, nothing acknowledged is lost (at most
the event in flight), and ``current`` names a version that loads, or the base model. The trainer
dies where HOTFIX_TEST_KILL_AT names (adapters.kill_point); the server and the daemon are killed on
observed state (an answered request, a status file), never after a guessed sleep. bench/kill_matrix.py
repeats these trials many times.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hotfix_engine.adapters import KILL_AT_ENV, AdapterRegistry
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.processes import process_alive
from hotfix_engine.store import Store
from hotfix_engine.trainer_status import RUNNING, read_status

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
KILL_POINTS = ("train", "staged", "renamed", "mark")  # in the order a run reaches them
PAIRS = [
    BugFixPair(prefix="def add(a, b):\n", buggy="    return a - b", fixed="    return a + b", id="add"),
    BugFixPair(prefix="def find(items, target):\n", buggy="    return -2", fixed="    return -1", id="find"),
]
TRAIN_OPTIONS = ["--epochs", "1", "--threads", "1", "--force"]
WAIT_S = 300.0  # only ever reached when something is broken


def child_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **extra,
    }


def integrity(home: Path) -> str:
    db = sqlite3.connect(home / "store.sqlite3")
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def model_key(model_dir: Path) -> str:
    from hotfix_engine.models import parse_spec

    return parse_spec(str(model_dir)).key


def loadable_current(home: Path, model_dir: Path) -> str | None:
    """The current version's name after loading it onto the base model (None: the base model).

    Every version folder on disk must be whole too: the registry reads each one.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    registry = AdapterRegistry(home, model_key(model_dir))
    folders = [p for p in registry.root.glob("v*") if p.is_dir()] if registry.root.is_dir() else []
    assert len(registry.versions()) == len(folders), "a half-written version is visible"
    current = registry.current()
    if current is not None:
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), str(current.path))
    return None if current is None else current.version


def seed_store(home: Path) -> list[str]:
    with Store.open(home) as store:
        store.add_pairs(PAIRS, origin="edit")
        return sorted(p.record_id for p in store.training_records().pairs)


def train_argv(model_dir: Path, home: Path) -> list[str]:
    return ["train", "--from-store", "--model", str(model_dir), "--data-dir", str(home), *TRAIN_OPTIONS]


# The trainer ---------------------------------------------------------------------------------------


def trainer_trial(point: str, model_dir: Path, home: Path) -> dict[str, Any]:
    """Kill `hotfix train` at ``point``, check what it left, run again, check again."""
    from hotfix_engine.cli import main

    records = seed_store(home)
    killed = subprocess.run(
        [sys.executable, "-m", "hotfix_engine", *train_argv(model_dir, home)],
        env=child_env(**{KILL_AT_ENV: point}),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    result: dict[str, Any] = {"point": point, "integrity": integrity(home)}
    result["current_after_kill"] = loadable_current(home, model_dir)
    result["status_after_kill"] = read_status(home)["state"]
    code = main(train_argv(model_dir, home))  # the next run, in this process
    with Store.open(home) as store:
        left = store.training_records(not_consumed_by=loadable_current(home, model_dir))
    result.update(
        rerun_exit=code,
        current_after_rerun=loadable_current(home, model_dir),
        integrity_after_rerun=integrity(home),
        retrained=code == 0,
        records_left=len(left.pairs),
        records=len(records),
        staging_left=len(list(AdapterRegistry(home, model_key(model_dir)).root.glob(".tmp-*"))),
    )
    return result


@pytest.mark.parametrize("point", KILL_POINTS)
def test_trainer_killed_at_each_step(point: str, tiny_model_dir: Path, isolated_home: Path) -> None:
    result = trainer_trial(point, tiny_model_dir, isolated_home)
    assert result["integrity"] == "ok" and result["integrity_after_rerun"] == "ok"
    assert result["status_after_kill"] not in RUNNING  # a dead run never reads as running
    # Until `current` moves, the base model serves; once it has, the version loads.
    assert result["current_after_kill"] == ("v0001" if point == "mark" else None)
    if point == "mark":
        # Published but not marked: the version's own list marks the records, nothing is trained twice.
        assert not result["retrained"] and result["current_after_rerun"] == "v0001"
    else:
        # Nothing reached `current`: the records are still new, and the next run learns them.
        assert result["retrained"] and result["current_after_rerun"] in ("v0001", "v0002")
    assert result["records_left"] == 0 and result["staging_left"] == 0


# The daemon ----------------------------------------------------------------------------------------


def daemon_trial(model_dir: Path, home: Path) -> dict[str, Any]:
    """Kill the daemon while its trainer runs; the orphaned run finishes alone; a new daemon goes on."""
    from hotfix_engine.daemon import Daemon, TrainingPolicy

    seed_store(home)
    command = [
        sys.executable,
        "-m",
        "hotfix_engine",
        "daemon",
        "--model",
        str(model_dir),
        "--data-dir",
        str(home),
    ]
    command += ["--min-records", "1", "--idle", "0", "--min-interval", "0"]
    daemon = subprocess.Popen(
        command,
        env=child_env(HOTFIX_TRAIN_ARGS=" ".join(TRAIN_OPTIONS)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    trainer_pid = None
    try:
        deadline = time.monotonic() + WAIT_S
        while trainer_pid is None:
            assert daemon.poll() is None, "the daemon exited"
            assert time.monotonic() < deadline, "the daemon never started a run"
            status = read_status(home)
            if status["state"] == "training" and status["pid"] not in (None, daemon.pid):
                trainer_pid = status["pid"]
            time.sleep(0.05)
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=30)
        while process_alive(trainer_pid):  # the run goes on without its daemon, and ends
            assert time.monotonic() < deadline, "the orphaned run never ended"
            time.sleep(0.1)
    finally:
        for pid in (daemon.pid, trainer_pid):
            if pid is not None and process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        daemon.wait(timeout=30)
    result: dict[str, Any] = {"integrity": integrity(home), "current": loadable_current(home, model_dir)}
    policy = TrainingPolicy(min_records=1, idle_s=0, min_interval_s=0)
    result["next_daemon"] = Daemon(home, str(model_dir), policy).tick(threading.Event())
    return result


def test_daemon_killed_mid_run(tiny_model_dir: Path, isolated_home: Path) -> None:
    result = daemon_trial(tiny_model_dir, isolated_home)
    assert result["integrity"] == "ok" and result["current"] == "v0001"
    # The orphan's version consumed the records: a new daemon finds nothing new (and the lock free).
    assert result["next_daemon"] == "waiting for feedback (0/1 new records)"


# The server ----------------------------------------------------------------------------------------


async def server_trial(model: Path, home: Path, acknowledged: int, in_flight: int) -> dict[str, Any]:
    """Type out ``acknowledged`` suggestions, each followed by an answered request (the server has
    handled everything sent before it), then ``in_flight`` more without waiting, and kill -9 the server.
    """
    from test_server_e2e import Doc, start, status

    client = await start(home, {"model": str(model), "maxNewTokens": 8, "debounceMs": 0, "record": "all"})
    acked: list[str] = []
    sent: list[str] = []
    try:
        for n in range(acknowledged + in_flight):
            doc = Doc(client, f"kill{n}", "def f(x):\n    y = ")
            sid, text = await doc.suggestion()
            doc.insert(doc.end(), text)  # typed out: an acceptance the tracker decides at once
            sent.append(sid)
            if n < acknowledged:
                await status(client)
                acked.append(sid)
        assert client._server is not None
        os.kill(client._server.pid, signal.SIGKILL)
        await client._server.wait()
    finally:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()
        await client.stop()
    data_dir = home / "home"
    db = sqlite3.connect(data_dir / "store.sqlite3")
    try:
        rows = db.execute("SELECT suggestion_id, kind FROM outcomes").fetchall()
    finally:
        db.close()
    accepted = {sid for sid, kind in rows if kind == "accepted"}
    return {
        "integrity": integrity(data_dir),
        "acknowledged": len(acked),
        "acknowledged_lost": len(set(acked) - accepted),
        "in_flight": in_flight,
        "in_flight_kept": len(set(sent[acknowledged:]) & accepted),
    }


@pytest.mark.e2e
async def test_server_killed_keeps_every_acknowledged_outcome(printable_model: Path, tmp_path: Path) -> None:
    result = await server_trial(printable_model, tmp_path, acknowledged=4, in_flight=1)
    assert result["integrity"] == "ok"
    assert result["acknowledged_lost"] == 0, result  # were held in memory for the command's grace
