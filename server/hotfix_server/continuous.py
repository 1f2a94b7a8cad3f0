"""Continuous hotfixing: the background trainer daemon, on and off with the setting, its runs as progress.

The server only starts ``hotfix daemon`` (its own process, low priority, started by
``hotfix_engine.background``; a file lock lets one serve a data folder however many windows are
open) and relays ``trainer/status.json`` (``run_progress.py``) so that a run the daemon starts shows
up in the editor like one started by ``hotfix.train``. Training itself never happens in the server's
process, so nothing it does can slow or crash completion.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from hotfix_engine.background import start_daemon
from hotfix_engine.daemon import request_training
from hotfix_server.progress import ServerProgress
from hotfix_server.run_progress import POLL_S, RunProgress

log = logging.getLogger(__name__)

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
        self._process, log_file = start_daemon(self.data_dir, self.model, parent_pid=os.getpid())
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
        relay = RunProgress(data_dir, new_progress)
        while True:
            if not self.running and time.monotonic() - self._spawned_at >= RESPAWN_S:
                self._spawn()
            await relay.look()
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
