"""The trainer's state for other processes: ``<data_dir>/trainer/status.json``, replaced atomically.

The server's ``hotfix/status`` and the VS Code status bar read it; a reader never sees a half-written
file. A "training" state whose pid is gone (a killed run) reads as "failed", so a crash never leaves
the editor showing a run that will not finish.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hotfix_engine.adapters import write_json_atomic
from hotfix_engine.processes import process_alive

STATES = ("idle", "training", "evaluating", "publishing", "failed")
FIELDS = ("state", "progress", "message", "pid", "started", "last_result")
RUNNING = ("training", "evaluating", "publishing")


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
