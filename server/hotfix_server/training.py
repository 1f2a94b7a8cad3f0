"""``hotfix.train``: one low-priority training process, its status relayed to the client as progress.

The trainer runs as ``python -m hotfix_engine train --from-store`` in its own process (it must never
slow the inference thread down), started by ``hotfix_engine.background`` like every training run,
and writes ``trainer/status.json``; ``run_progress.py`` turns that into ``$/progress`` reports. Its
output goes to a log file: stdout is the LSP channel.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path

from hotfix_engine.background import start_training_run
from hotfix_engine.trainer_status import RUNNING, read_status
from hotfix_server.progress import ServerProgress
from hotfix_server.run_progress import POLL_S, RunProgress

log = logging.getLogger(__name__)


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
        relay = RunProgress(data_dir, lambda: progress)  # before the start: the run's first status is news
        # A new session: an editor's Ctrl-C must not kill a half-written adapter.
        self._process, log_file = start_training_run(data_dir, model, detached=True)
        log.info("training started (process %d), log: %s", self._process.pid, log_file)
        self._follower = asyncio.ensure_future(self._follow(self._process, relay, log_file, on_failure))
        return f"training started (process {self._process.pid})"

    async def _follow(
        self,
        process: subprocess.Popen[bytes],
        relay: RunProgress,
        log_file: Path,
        on_failure: Callable[[str], None],
    ) -> None:
        await relay.expect("starting")
        while process.poll() is None:
            await relay.look()
            await asyncio.sleep(POLL_S)
        status = await relay.look()
        if process.returncode == 0:
            relay.end(status["message"] or "training finished")
            return
        message = (
            f"training failed: {_last_error(log_file) or f'exit code {process.returncode}'} (log: {log_file})"
        )
        relay.end(message)
        on_failure(message)

    def stop(self) -> None:
        """Leave a running trainer alone (it publishes atomically) but stop following it."""
        if self._follower is not None:
            self._follower.cancel()
