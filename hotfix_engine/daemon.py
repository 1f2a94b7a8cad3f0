"""The background trainer: watches the feedback store and trains when a policy says so.

One daemon per data folder (a file lock: every server may try to start one, only the first runs).
It never trains in its own process: each run is ``hotfix train --from-store`` in a child process at
low priority, so a crash, an out-of-memory kill or a stop request ends that run and nothing else; the
trainer publishes through the adapter registry, which never leaves half a version behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from hotfix_engine.errors import ConfigError
from hotfix_engine.paths import logs_dir
from hotfix_engine.processes import spawn_low_priority
from hotfix_engine.trainer_status import read_status, write_status

log = logging.getLogger(__name__)

REQUEST_FILE = "train-request"  # touched by `hotfix.train` to ask for a run now
TRAIN_ARGS_ENV = "HOTFIX_TRAIN_ARGS"  # extra `hotfix train` options for every run, e.g. "--epochs 5"
CHANGES = {"created", "modified", "moved", "deleted", "closed"}  # watchdog event types that are writes


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
        records = store.training_records(not_consumed_by=current)
    finally:
        store.close()
    ids = sorted([p.record_id for p in records.pairs] + [u.record_id for u in records.unlearn_only])
    return len(ids), hashlib.sha1("\n".join(ids).encode()).hexdigest()


def _current_version(data_dir: Path) -> str | None:
    """The current version name across model keys (the store is shared by all models of a folder)."""
    root = data_dir / "adapters"
    newest: tuple[float, str] | None = None
    for pointer in root.glob("*/current") if root.is_dir() else []:
        name = pointer.read_text(encoding="utf-8").strip()
        if name and name != "none":
            stamp = pointer.stat().st_mtime
            newest = max(newest or (stamp, name), (stamp, name))
    return newest[1] if newest else None


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
        self._wake = threading.Event()

    # -- watching ---------------------------------------------------------------------

    def _on_change(self, path: str, kind: str) -> None:
        if kind not in CHANGES:
            return  # reads, our own included, are not news
        name = Path(path).name
        if name.startswith("store.sqlite3") or name == REQUEST_FILE:
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
        (self.data_dir / "trainer").mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.data_dir / "trainer" / "daemon.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("another hotfix daemon already serves %s", self.data_dir)
            return 3
        observer = self._observer()
        observer.start()
        log.info("hotfix daemon watching %s", self.data_dir)
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
            lock.release()
        return 0

    def tick(self, stop: threading.Event) -> str:
        """Decide once, and train if due; returns the decision's reason (tests call it directly)."""
        request = self.data_dir / "trainer" / REQUEST_FILE
        requested = request.exists()
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
            log.debug("not training: %s", reason)
            return reason
        self.last_run = time.monotonic()
        self.last_fingerprint = fingerprint
        self.train_once(stop)
        return reason

    def train_once(self, stop: threading.Event) -> int:
        """One ``hotfix train --from-store`` in a low-priority child; its failure is only reported."""
        logs = logs_dir(self.data_dir)
        logs.mkdir(parents=True, exist_ok=True)
        log_file = logs / f"train-{time.strftime('%Y%m%d-%H%M%S')}.log"
        command = [
            sys.executable,
            "-m",
            "hotfix_engine",
            "train",
            "--from-store",
            "--data-dir",
            str(self.data_dir),
        ]
        if self.model:
            command += ["--model", self.model]
        command += [
            "--log-file",
            str(log_file),
            *self.train_args,
            *shlex.split(os.environ.get(TRAIN_ARGS_ENV, "")),
        ]
        log.info("training: %s", " ".join(command))
        self.runs += 1
        self.child = spawn_low_priority(command, log_file)
        while self.child.poll() is None:
            if stop.wait(0.5):
                self._stop_child()
                write_status(self.data_dir, state="idle", progress=None, message="training stopped", pid=None)
                return -1
        code = self.child.returncode
        self.child = None
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
