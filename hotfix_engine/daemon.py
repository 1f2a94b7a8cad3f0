"""The background trainer: watches the feedback store and trains when a policy says so.

One daemon per data folder (a file lock: every server may try to start one, only the first runs).
It never trains in its own process: each run is ``hotfix train --from-store`` in a child process at
low priority, so a crash, an out-of-memory kill or a stop request ends that run and nothing else; the
trainer publishes through the adapter registry, which never leaves half a version behind. A run
that falls due while another run (a manual `hotfix train`) holds the training lock waits for it, says
so in ``trainer/daemon.json``, and starts once the lock is free.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from hotfix_engine.adapters import consumed_records, write_json_atomic
from hotfix_engine.background import start_training_run
from hotfix_engine.errors import ConfigError
from hotfix_engine.paths import private_dir
from hotfix_engine.processes import process_alive
from hotfix_engine.trainer_status import (
    TRAIN_BUSY,
    read_status,
    train_lock_path,
    training_locked,
    write_status,
)

log = logging.getLogger(__name__)

REQUEST_FILE = "train-request"  # touched by `hotfix.train` to ask for a run now
CHANGES = {"created", "modified", "moved", "deleted", "closed"}  # watchdog event types that are writes
STATE_FILE = "daemon.json"  # what the daemon is waiting for, for `hotfix status` and the editor
REFUSED = -2  # train_once: the run found another run (a manual `hotfix train`) holding the training lock


def read_daemon_state(data_dir: Path) -> dict[str, Any]:
    """``{"waiting": reason or None, "since": time or None}`` of the daemon serving ``data_dir``."""
    state: dict[str, Any] = {"waiting": None, "since": None}
    try:
        data = json.loads((Path(data_dir) / "trainer" / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return state
    if isinstance(data, dict) and isinstance(data.get("pid"), int) and process_alive(data["pid"]):
        state.update({key: data.get(key) for key in state})
    return state


@dataclass(frozen=True)
class TrainingPolicy:
    """When a run is worth its CPU time. Every default has a reason."""

    min_records: int = 3  # fewer trainable records than this is noise, not a pattern
    idle_s: float = 20.0  # no new feedback for this long: the user has paused, the CPU is free
    min_interval_s: float = 300.0  # at most one run per 5 minutes: training competes with completion
    debounce_s: float = 1.0  # coalesce the bursts of file events one store write makes
    poll_s: float = 5.0  # re-check even without events (clock-based rules: idle, interval)

    def __post_init__(self) -> None:
        for item in fields(self):
            if getattr(self, item.name) < 0:
                raise ConfigError(f"policy value {item.name} must not be negative")

    def due(
        self, new_records: int, since_event_s: float, since_run_s: float, requested: bool
    ) -> tuple[bool, str]:
        """Whether to train now, and why (or why not), for the status line."""
        if requested:
            return (True, "requested") if new_records else (False, "requested, but nothing new to train on")
        if new_records < self.min_records:
            return False, f"waiting for feedback ({new_records}/{self.min_records} new records)"
        if since_event_s < self.idle_s:
            return False, "waiting for the editor to be idle"
        if since_run_s < self.min_interval_s:
            return False, f"next run in {self.min_interval_s - since_run_s:.0f} s at the earliest"
        return True, f"{new_records} new records"


def trainable_records(data_dir: Path) -> tuple[int, str]:
    """How many store records the current adapter has not learnt from, and a fingerprint of them."""
    from hotfix_engine.store import Store

    store = Store.open(data_dir)
    try:
        current = _current_version(data_dir)
        if current is not None:
            # A run killed between publishing and marking: its version lists what it consumed.
            store.reconcile_consumed(current[1], consumed_records(current[0] / current[1]))
        records = store.training_records(not_consumed_by=current[1] if current else None)
    finally:
        store.close()
    ids = sorted([p.record_id for p in records.pairs] + [u.record_id for u in records.unlearn_only])
    return len(ids), hashlib.sha1("\n".join(ids).encode()).hexdigest()


def _current_version(data_dir: Path) -> tuple[Path, str] | None:
    """The current version (its model's folder and name) across model keys: the store is shared by all
    models of a data folder."""
    root = data_dir / "adapters"
    newest: tuple[float, str, Path] | None = None
    for pointer in root.glob("*/current") if root.is_dir() else []:
        name = pointer.read_text(encoding="utf-8").strip()
        if name and name != "none":
            found = (pointer.stat().st_mtime, name, pointer.parent)
            newest = max(newest or found, found)
    return (newest[2], newest[1]) if newest else None


def request_training(data_dir: Path) -> None:
    """Ask a running daemon for a run now (what `hotfix.train` does when continuous mode is on)."""
    path = data_dir / "trainer" / REQUEST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(time.time()), encoding="utf-8")


class Daemon:
    """Watch, decide, train in a child process, repeat; until ``stop`` is set."""

    def __init__(
        self,
        data_dir: Path,
        model: str | None,
        policy: TrainingPolicy | None = None,
        train_args: list[str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.model = model
        self.policy = policy or TrainingPolicy()
        self.train_args = train_args or []
        self.last_event = 0.0
        self.last_run = 0.0
        self.last_fingerprint = ""  # the records the last run was given
        self.seen_fingerprint = ""  # the records seen at the last look
        self.runs = 0
        self.child: subprocess.Popen[bytes] | None = None
        self.waiting: str | None = None  # a due run waiting for another run's training lock: why it is due
        self._waiting_requested = False  # that run was asked for (the request file is gone by then)
        self._wake = threading.Event()
        self.serving = threading.Event()  # set while this daemon holds the folder and watches it

    # -- watching ---------------------------------------------------------------------

    def _on_change(self, path: str, kind: str) -> None:
        if kind not in CHANGES:
            return  # reads, our own included, are not news
        name = Path(path).name
        # While a run waits, the other run's writes (its status) may mean the lock is free; the lock
        # file itself is left out: probing it is a write event of its own.
        waiting = self.waiting is not None and name != train_lock_path(self.data_dir).name
        if name.startswith("store.sqlite3") or name == REQUEST_FILE or waiting:
            self._wake.set()

    def _observer(self) -> Any:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        daemon = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                daemon._on_change(str(event.src_path), event.event_type)

        observer = Observer()
        observer.schedule(Handler(), str(self.data_dir), recursive=False)
        observer.schedule(Handler(), str(self.data_dir / "trainer"), recursive=False)
        return observer

    # -- the loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        """Serve until ``stop``; returns 0, or 3 when another daemon already serves this folder."""
        private_dir(self.data_dir / "trainer")
        lock = FileLock(str(self.data_dir / "trainer" / "daemon.lock"), mode=0o600)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("another hotfix daemon already serves %s", self.data_dir)
            return 3
        observer = self._observer()
        observer.start()
        log.info("hotfix daemon watching %s", self.data_dir)
        self.serving.set()
        try:
            while not stop.is_set():
                self._wake.wait(self.policy.poll_s)
                self._wake.clear()
                if stop.wait(self.policy.debounce_s):
                    break
                self.tick(stop)
        finally:
            observer.stop()
            observer.join(timeout=5)
            self._stop_child()
            self.serving.clear()
            lock.release()
        return 0

    def tick(self, stop: threading.Event) -> str:
        """Decide once, and train if due; returns the decision's reason (tests call it directly)."""
        request = self.data_dir / "trainer" / REQUEST_FILE
        requested = request.exists() or self._waiting_requested
        try:
            count, fingerprint = trainable_records(self.data_dir)
        except Exception as exc:  # a locked or corrupt store: report, keep watching
            log.warning("cannot read the feedback store: %s", exc)
            return f"cannot read the store: {exc}"
        now = time.monotonic()
        if fingerprint != self.seen_fingerprint:
            # New feedback. Idleness is judged by the records, not by file events: reading the store
            # (this daemon's own reads included) touches SQLite's side files too.
            self.seen_fingerprint = fingerprint
            self.last_event = now
        if fingerprint == self.last_fingerprint and not requested:
            count = 0  # the last run already saw exactly these records
        since_event = now - self.last_event if self.last_event else float("inf")
        since_run = now - self.last_run if self.last_run else float("inf")
        due, reason = self.policy.due(count, since_event, since_run, requested)
        if requested:
            request.unlink(missing_ok=True)
        if not due:
            if self.waiting is not None:
                log.info("the run that waited for the training lock is no longer due: %s", reason)
                self._set_waiting(None, False)
            log.debug("not training: %s", reason)
            return reason
        if training_locked(self.data_dir):
            return self._set_waiting(reason, requested)
        before = self.last_run, self.last_fingerprint
        self.last_run = time.monotonic()
        self.last_fingerprint = fingerprint
        if self.train_once(stop) == REFUSED:  # the other run took the lock between the probe and the start
            self.last_run, self.last_fingerprint = before
            return self._set_waiting(reason, requested)
        self._set_waiting(None, False)
        return reason

    def _set_waiting(self, reason: str | None, requested: bool) -> str:
        """Hold a due run until the training lock is free (the loop retries each poll), and say so."""
        if (reason is None) != (self.waiting is None):
            if reason is not None:
                log.info(
                    "a run is due (%s) but another training run holds the lock: it runs after that one",
                    reason,
                )
            write_json_atomic(
                self.data_dir / "trainer" / STATE_FILE,
                {"pid": os.getpid(), "waiting": reason, "since": time.time() if reason else None},
            )
        self.waiting, self._waiting_requested = reason, requested and reason is not None
        return f"waiting for another training run to finish ({reason})" if reason else ""

    def train_once(self, stop: threading.Event) -> int:
        """One ``hotfix train --from-store`` in a low-priority child; its failure is only reported.

        Returns its exit code, -1 when stopped, or REFUSED when another run held the training lock.
        """
        self.runs += 1
        self.child, log_file = start_training_run(self.data_dir, self.model, extra_args=self.train_args)
        while self.child.poll() is None:
            if stop.wait(0.5):
                self._stop_child()
                write_status(self.data_dir, state="idle", progress=None, message="training stopped", pid=None)
                return -1
        code = self.child.returncode
        self.child = None
        if code != 0 and _refused(log_file):
            log.info("the run found another training run holding the lock; it will run after that one")
            return REFUSED  # the status file is the other run's: leave it alone
        if code != 0:
            status = read_status(self.data_dir)
            message = f"training failed (exit {code}); see {log_file}"
            if status["state"] != "failed":
                write_status(self.data_dir, state="failed", progress=None, message=message, pid=None)
            log.warning(message)
        return code

    def _stop_child(self) -> None:
        """End a running trainer: SIGTERM first (it cleans its staging folder), then SIGKILL."""
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        self.child = None


def _refused(log_file: Path) -> bool:
    """Whether a failed run's log ends with the trainer's refusal to run beside another run."""
    try:
        with open(log_file, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 4096))
            return TRAIN_BUSY in handle.read().decode("utf-8", "replace")
    except OSError:
        return False
