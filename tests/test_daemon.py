import signal
import subprocess
import sys
import threading
import time

import pytest

from hotfix_engine.daemon import Daemon, TrainingPolicy, request_training, trainable_records
from hotfix_engine.errors import ConfigError
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.store import Store
from hotfix_engine.trainer_status import read_status

EAGER = TrainingPolicy(min_records=1, idle_s=0, min_interval_s=0, debounce_s=0.1, poll_s=0.2)


def add_edit_pairs(data_dir, count=2):
    store = Store.open(data_dir)
    try:
        store.add_pairs(
            [
                BugFixPair(prefix=f"def f{i}(x):\n    ", buggy="if x == None:", fixed="if x is None:")
                for i in range(count)
            ],
            origin="edit",
        )
    finally:
        store.close()


def test_policy_reasons():
    policy = TrainingPolicy(min_records=3, idle_s=10, min_interval_s=60)
    assert policy.due(1, 100, 100, False) == (False, "waiting for feedback (1/3 new records)")
    assert policy.due(5, 2, 100, False) == (False, "waiting for the editor to be idle")
    assert not policy.due(5, 100, 30, False)[0]
    assert policy.due(5, 100, 100, False) == (True, "5 new records")
    assert policy.due(1, 0, 0, True) == (True, "requested")
    assert policy.due(0, 0, 0, True)[0] is False
    with pytest.raises(ConfigError):
        TrainingPolicy(idle_s=-1)


def test_counts_trainable_records(isolated_home):
    assert trainable_records(isolated_home)[0] == 0
    add_edit_pairs(isolated_home, 3)
    count, fingerprint = trainable_records(isolated_home)
    assert count == 3 and len(fingerprint) == 40


def test_a_crashing_trainer_is_reported_and_the_daemon_goes_on(isolated_home):
    add_edit_pairs(isolated_home)
    daemon = Daemon(isolated_home, "embedded:no-such-model", EAGER)
    stop = threading.Event()
    assert daemon.tick(stop) == "2 new records"
    status = read_status(isolated_home)
    assert status["state"] == "failed" and "exit 1" in status["message"]
    # The same records are not retried in a loop; a request or new feedback starts a new run.
    assert "waiting for feedback" in daemon.tick(stop)
    request_training(isolated_home)
    assert daemon.tick(stop) == "requested" and daemon.runs == 2


def test_only_one_daemon_serves_a_folder(isolated_home):
    first = Daemon(isolated_home, None, EAGER)
    stop = threading.Event()
    thread = threading.Thread(target=first.run, args=(stop,))
    thread.start()
    try:
        assert first.serving.wait(30), "the first daemon never started serving"
        # Already told to stop: a second daemon that wrongly took the folder returns 0 at once
        # instead of serving (and hanging the test) until the suite's timeout.
        assert Daemon(isolated_home, None, EAGER).run(stopped()) == 3
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def stopped() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def wait_until(check, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def test_stopping_mid_run_asks_the_trainer_to_end_and_says_so(isolated_home, monkeypatch):
    add_edit_pairs(isolated_home)
    daemon = Daemon(isolated_home, None, EAGER)
    slow = [sys.executable, "-c", "import time; time.sleep(60)"]
    real_popen = subprocess.Popen
    # The daemon's child is a stand-in that would run for a minute.
    monkeypatch.setattr(subprocess, "Popen", lambda command, **kwargs: real_popen(slow, **kwargs))
    stop = threading.Event()
    thread = threading.Thread(target=daemon.tick, args=(stop,))
    thread.start()
    child = wait_until(lambda: daemon.child, "the daemon to start its trainer")
    assert child.poll() is None
    asked = time.monotonic()
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    # SIGTERM, not the SIGKILL that follows 15 s later: a real trainer unwinds on it and removes its
    # staging folder (test_trainer's SIGTERM test checks that no version is left).
    assert child.returncode == -signal.SIGTERM and time.monotonic() - asked < 10
    assert read_status(isolated_home)["message"] == "training stopped"


def test_reading_the_store_is_not_feedback_so_the_daemon_gets_idle(isolated_home):
    add_edit_pairs(isolated_home)
    daemon = Daemon(isolated_home, "embedded:no-such-model", TrainingPolicy(min_records=1, idle_s=1.0))
    stop = threading.Event()
    assert daemon.tick(stop) == "waiting for the editor to be idle"  # the records just appeared
    time.sleep(1.2)
    assert daemon.tick(stop) == "2 new records"  # nothing new since: idle, though the store was read


def test_a_run_due_while_a_manual_run_holds_the_lock_waits_for_it_then_runs(isolated_home):
    from filelock import FileLock

    from hotfix_engine.daemon import read_daemon_state
    from hotfix_engine.trainer_status import train_lock_path

    add_edit_pairs(isolated_home)
    daemon = Daemon(isolated_home, "embedded:no-such-model", EAGER)
    stop = threading.Event()
    train_lock_path(isolated_home).parent.mkdir(parents=True, exist_ok=True)
    manual = FileLock(str(train_lock_path(isolated_home)))  # a `hotfix train` in progress
    manual.acquire()
    try:
        request_training(isolated_home)
        assert daemon.tick(stop) == "waiting for another training run to finish (requested)"
        assert daemon.runs == 0 and read_daemon_state(isolated_home)["waiting"] == "requested"
        assert daemon.tick(stop).startswith("waiting for another")  # still held: still waiting, still asked
        assert read_status(isolated_home)["state"] == "idle"  # the manual run's status is left alone
    finally:
        manual.release()
    assert daemon.tick(stop) == "requested" and daemon.runs == 1
    assert read_daemon_state(isolated_home)["waiting"] is None


def test_a_run_refused_at_start_by_a_manual_run_waits_too(isolated_home, monkeypatch):
    import hotfix_engine.daemon as daemon_module
    from hotfix_engine.trainer_status import TRAIN_BUSY

    add_edit_pairs(isolated_home)
    daemon = Daemon(isolated_home, None, EAGER)
    # The manual run takes the lock between the daemon's look and its child's start.
    monkeypatch.setattr(daemon_module, "training_locked", lambda data_dir: False)
    refused = [sys.executable, "-c", f"import sys; sys.exit('hotfix: error: {TRAIN_BUSY}')"]
    real_popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda command, **kwargs: real_popen(refused, **kwargs))
    stop = threading.Event()
    assert daemon.tick(stop) == "waiting for another training run to finish (2 new records)"
    assert read_status(isolated_home)["state"] == "idle"  # not "failed": nothing failed
    assert daemon.tick(stop).startswith("waiting for another")  # retried, not dropped as already seen
    assert daemon.runs == 2
