"""Continuous hotfixing: the background trainer daemon, on and off with the setting, its runs as progress.

The server only starts ``hotfix daemon`` (its own process, low priority; a file lock lets one serve
a data folder however many windows are open) and follows ``trainer/status.json`` so that a run the
daemon starts shows up in the editor like one started by ``hotfix.train``. Training itself never
happens in the server's process, so nothing it does can slow or crash completion.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hotfix_engine.daemon import request_training
from hotfix_engine.paths import logs_dir, private_dir
from hotfix_engine.processes import spawn_low_priority
from hotfix_engine.trainer_status import RUNNING, read_status
from hotfix_server.progress import ServerProgress

log = logging.getLogger(__name__)

POLL_S = 1.0
RESPAWN_S = 30.0  # how often a window without a daemon of its own checks that one still serves it


class ContinuousTraining:
    """The daemon this server started (if any) and the relay of every run's progress."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._follower: asyncio.Task[None] | None = None
        self.data_dir: Path | None = None
        self.model: str | None = None
        self._spawned_at = 0.0

    @property
    def running(self) -> bool:
        """This window's own daemon process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def active(self) -> bool:
        """Continuous hotfixing is on here (the serving daemon may be another window's)."""
        return self._follower is not None

    def start(self, model: str, data_dir: Path, new_progress: Callable[[], ServerProgress]) -> None:
        """Start the daemon for ``data_dir`` (a second server's daemon exits at once: one is enough)."""
        if self._follower is not None and (self.data_dir, self.model) == (data_dir, model):
            return
        self.stop()
        self.data_dir, self.model = data_dir, model
        self._spawn()
        self._follower = asyncio.ensure_future(self._follow(data_dir, new_progress))

    def _spawn(self) -> None:
        assert self.data_dir is not None and self.model is not None
        self._spawned_at = time.monotonic()
        data_dir, model = self.data_dir, self.model
        logs = logs_dir(data_dir)
        private_dir(logs)
        log_file = logs / "daemon.log"
        command = [sys.executable, "-m", "hotfix_engine", "daemon", "--parent-pid", str(os.getpid())]
        command += ["--model", model, "--data-dir", str(data_dir), "--log-file", str(log_file)]
        self._process = spawn_low_priority(command, log_file, new_session=True)
        log.info("continuous hotfixing: daemon process %d (log: %s)", self._process.pid, log_file)

    def request(self) -> str:
        """``hotfix.train`` while continuous: ask the serving daemon, which owns the one training slot."""
        assert self.data_dir is not None
        request_training(self.data_dir)
        return "training requested from the background trainer"

    async def _follow(self, data_dir: Path, new_progress: Callable[[], ServerProgress]) -> None:
        """Show each daemon run as one progress bar, from its first status to its last.

        Also keeps a daemon alive for this window: when ours has exited (another window's held the
        folder, and that window has since closed), start one again.
        """
        followed = read_status(data_dir)["started"]  # runs before we started following are old news
        progress: ServerProgress | None = None
        while True:
            if not self.running and time.monotonic() - self._spawned_at >= RESPAWN_S:
                self._spawn()
            status = read_status(data_dir)
            running = status["state"] in RUNNING
            if status["started"] is not None and status["started"] != followed:
                # A new run; one shorter than a poll is seen only once it has ended: show it all the same.
                if progress is not None:
                    progress.end()
                followed, progress = status["started"], new_progress()
                await progress.begin("background run")
            if progress is not None and running:
                progress.report(f"{status['state']}: {status['message']}".rstrip(": "), status["progress"])
            elif progress is not None:
                progress.end(status["message"] or "training finished")
                progress = None
            await asyncio.sleep(POLL_S)

    def stop(self) -> None:
        """Stop the daemon (it ends a run in progress cleanly: no version is half written)."""
        if self._follower is not None:
            self._follower.cancel()
            self._follower = None
        if self.running:
            assert self._process is not None
            self._process.terminate()
            log.info("continuous hotfixing off: stopped daemon process %d", self._process.pid)
        self._process = None
