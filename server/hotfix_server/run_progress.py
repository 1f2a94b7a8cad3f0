"""Training runs shown as progress: one relay follows ``trainer/status.json`` for every run.

A run started by ``hotfix.train`` and one the background daemon starts are the same to the editor:
the trainer writes its status file (``hotfix_engine.trainer_status``), and this relay turns each run
it sees (a new ``started`` time) into one progress bar, from its first status to its last. It polls
the file, once a second, because the run is another process; the client's ``hotfix/status`` reads
the same file, so both always agree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotfix_engine.trainer_status import RUNNING, read_status
from hotfix_server.progress import ServerProgress

POLL_S = 1.0


class RunProgress:
    """Follows the runs of one data folder; each :meth:`look` reads the status once and relays it.

    A run this relay only finds closes its own bar when it stops running. The bar of a run opened
    with :meth:`expect` is its starter's to close, which knows how the process ended.
    """

    def __init__(self, data_dir: Path, new_progress: Callable[[], ServerProgress]) -> None:
        self.data_dir = data_dir
        self._new_progress = new_progress
        self._followed = read_status(data_dir)["started"]  # runs before we started following are old news
        self._progress: ServerProgress | None = None
        self._owned = False  # the open bar is an expected run's: its starter closes it
        self._waiting = False  # that run has not written its first status yet

    async def expect(self, message: str) -> None:
        """Open the bar of a run about to start, before it writes anything (its model still loads)."""
        self.end()
        self._progress = self._new_progress()
        self._owned = self._waiting = True
        await self._progress.begin(message)

    async def look(self) -> dict[str, Any]:
        """Read the status once: open a bar for a new run, report a running one, close a finished one."""
        status = read_status(self.data_dir)
        running = status["state"] in RUNNING
        if status["started"] is not None and status["started"] != self._followed:
            # A new run; one shorter than a poll is seen only once it has ended: show it all the same.
            self._followed = status["started"]
            if self._waiting:
                self._waiting = False  # the expected run: its bar is already open
            else:
                self.end()
                self._progress = self._new_progress()
                await self._progress.begin("background run")
        if self._progress is None or self._waiting:
            return status
        if running:
            self._progress.report(f"{status['state']}: {status['message']}".rstrip(": "), status["progress"])
        elif not self._owned:
            self.end(status["message"] or "training finished")
        return status

    def end(self, message: str | None = None) -> None:
        """Close the open bar, if any."""
        if self._progress is not None:
            self._progress.end(message)
        self._progress, self._owned, self._waiting = None, False, False
