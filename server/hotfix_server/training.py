"""``hotfix.train``: one low-priority training process, its status relayed to the client as progress.

The trainer runs as ``python -m hotfix_engine train --from-store`` in its own process (it must never
slow the inference thread down), at a lower CPU priority, and writes ``trainer/status.json``; this
module polls that file and turns it into ``$/progress`` reports. Its output goes to a log file:
stdout is the LSP channel.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hotfix_engine.daemon import TRAIN_ARGS_ENV
from hotfix_engine.paths import logs_dir, private_dir
from hotfix_engine.processes import spawn_low_priority
from hotfix_engine.trainer_status import RUNNING, read_status
from hotfix_server.progress import ServerProgress

log = logging.getLogger(__name__)

POLL_S = 1.0


def _last_error(log_file: Path) -> str | None:
    """The trainer's one-line error (``hotfix: error: ...``), if it printed one."""
    try:
        lines = log_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    errors = [line.split("error:", 1)[1].strip() for line in lines if line.startswith("hotfix: error:")]
    return errors[-1] if errors else None


class TrainerProcess:
    """Starts at most one trainer per server and follows it to the end."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._follower: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(
        self, model: str, data_dir: Path, progress: ServerProgress, on_failure: Callable[[str], None]
    ) -> str:
        """Start training unless a run (ours or another server's) is going; returns what happened."""
        if self.running:
            return "training is already running"
        status = read_status(data_dir)
        if status["state"] in RUNNING:
            return f"training is already running (process {status['pid']})"
        logs = logs_dir(data_dir)
        private_dir(logs)
        log_file = logs / f"train-{time.strftime('%Y%m%d-%H%M%S')}.log"
        command = [sys.executable, "-m", "hotfix_engine", "train", "--from-store"]
        command += ["--model", model, "--data-dir", str(data_dir), "--log-file", str(log_file)]
        command += shlex.split(os.environ.get(TRAIN_ARGS_ENV, ""))
        # A new session: an editor's Ctrl-C must not kill a half-written adapter.
        self._process = spawn_low_priority(command, log_file, new_session=True)
        log.info("training started (process %d), log: %s", self._process.pid, log_file)
        self._follower = asyncio.ensure_future(
            self._follow(self._process, data_dir, progress, log_file, on_failure)
        )
        return f"training started (process {self._process.pid})"

    async def _follow(
        self,
        process: subprocess.Popen[bytes],
        data_dir: Path,
        progress: ServerProgress,
        log_file: Path,
        on_failure: Callable[[str], None],
    ) -> None:
        await progress.begin("starting")
        while process.poll() is None:
            status = read_status(data_dir)
            if status["pid"] == process.pid:
                progress.report(f"{status['state']}: {status['message']}".rstrip(": "), status["progress"])
            await asyncio.sleep(POLL_S)
        status = read_status(data_dir)
        if process.returncode == 0:
            progress.end(status["message"] or "training finished")
            return
        message = (
            f"training failed: {_last_error(log_file) or f'exit code {process.returncode}'} (log: {log_file})"
        )
        progress.end(message)
        on_failure(message)

    def stop(self) -> None:
        """Leave a running trainer alone (it publishes atomically) but stop following it."""
        if self._follower is not None:
            self._follower.cancel()
