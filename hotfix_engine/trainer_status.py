"""What other processes can know of a training run: its status file and its lock.

``<data_dir>/trainer/status.json`` is replaced atomically: the server's ``hotfix/status``, the
progress it relays and ``hotfix status`` read it, and a reader never sees a half-written file. A
"training" state whose pid is gone (a killed run) reads as "failed", so a crash never leaves the
editor showing a run that will not finish. ``trainer/train.lock`` allows one run a data folder: a
run holds it from start to end, and the daemon probes it before it starts one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from hotfix_engine.adapters import write_json_atomic
from hotfix_engine.processes import process_alive

STATES = ("idle", "training", "evaluating", "publishing", "failed")
FIELDS = ("state", "progress", "message", "pid", "started", "last_result")
RUNNING = ("training", "evaluating", "publishing")
TRAIN_BUSY = "another training run is in progress for this data folder"  # a refused run's one line


def status_path(data_dir: Path) -> Path:
    return Path(data_dir) / "trainer" / "status.json"


def default_status() -> dict[str, Any]:
    return {
        "state": "idle",
        "progress": None,
        "message": "",
        "pid": None,
        "started": None,
        "last_result": None,
    }


def read_status(data_dir: Path) -> dict[str, Any]:
    """The last status written, or the idle default; never raises for a missing or damaged file."""
    status = default_status()
    try:
        data = json.loads(status_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return status
    if isinstance(data, dict):
        status.update({key: data[key] for key in FIELDS if key in data})
    if status["state"] in RUNNING and isinstance(status["pid"], int) and not process_alive(status["pid"]):
        status.update(state="failed", message=f"the training process ({status['pid']}) ended unexpectedly")
    return status


def write_status(data_dir: Path, **fields: Any) -> dict[str, Any]:
    """Update the given fields (others keep their last value) and write the file atomically."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown status field(s) {', '.join(unknown)}; valid: {', '.join(FIELDS)}")
    if "state" in fields and fields["state"] not in STATES:
        raise ValueError(f"unknown trainer state {fields['state']!r}; valid: {', '.join(STATES)}")
    status = read_status(data_dir)
    status.update(fields)
    status["updated"] = time.time()
    write_json_atomic(status_path(data_dir), status)
    return status


def train_lock_path(data_dir: Path) -> Path:
    """The lock of the one training run a data folder allows; `hotfix train` holds it while it runs."""
    return Path(data_dir) / "trainer" / "train.lock"


def training_locked(data_dir: Path) -> bool:
    """Whether a training run holds the lock now (a probe: taken and let go at once)."""
    lock = FileLock(str(train_lock_path(data_dir)), mode=0o600)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False
