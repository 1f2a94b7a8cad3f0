"""Server-initiated work-done progress (``window/workDoneProgress/create`` then ``$/progress``).

Model loading and training report from worker threads, but pygls writes to the client from the event
loop only, so every report is handed to the loop. Clients that did not announce progress support
get nothing but the log.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from pygls.lsp.server import LanguageServer

from hotfix_server import translate

log = logging.getLogger(__name__)


class ServerProgress:
    """One progress bar in the client, driven from any thread."""

    def __init__(self, server: LanguageServer, title: str, enabled: bool) -> None:
        self.server = server
        self.title = title
        self.enabled = enabled
        self.token = f"hotfix-{uuid.uuid4().hex[:12]}"
        self._loop = asyncio.get_running_loop()
        self._last: tuple[str | None, float | None] | None = None

    async def begin(self, message: str | None = None) -> None:
        log.info("%s: %s", self.title, message or "started")
        if not self.enabled:
            return
        try:
            await self.server.work_done_progress.create_async(self.token)
        except Exception as exc:  # the client refused: report to the log only
            log.warning("client refused a progress token: %s", exc)
            self.enabled = False
            return
        self.server.work_done_progress.begin(self.token, translate.progress_begin(self.title, message))

    def report(self, message: str | None, fraction: float | None = None) -> None:
        """Thread-safe; repeated identical reports are dropped."""
        if (message, fraction) == self._last:
            return
        self._last = (message, fraction)
        log.info("%s: %s", self.title, message)
        if self.enabled:
            value = translate.progress_report(message, fraction)
            self._loop.call_soon_threadsafe(self.server.work_done_progress.report, self.token, value)

    def end(self, message: str | None = None) -> None:
        log.info("%s: %s", self.title, message or "done")
        if self.enabled:
            value = translate.progress_end(message)
            self._loop.call_soon_threadsafe(self.server.work_done_progress.end, self.token, value)
