"""One live completion request per document: debounce, and a newer request stops the older one.

Clients that ask on every keystroke would otherwise queue a generation per character. Each request
takes a ticket for its document; taking a new ticket sets the previous ticket's cancel token, which
wakes it from its debounce wait at once or stops its generation at the next decoding step.
"""

from __future__ import annotations

import asyncio
import contextlib

from hotfix_engine.stopping import CancelToken


class Ticket:
    """The right of one request to run; lost when a newer request for the same document arrives."""

    def __init__(self) -> None:
        self.cancel = CancelToken()
        self._superseded = asyncio.Event()

    @property
    def superseded(self) -> bool:
        return self._superseded.is_set()

    def supersede(self) -> None:
        self.cancel.set()
        self._superseded.set()

    async def settle(self, delay_s: float) -> bool:
        """Wait out the debounce delay; False when a newer request came in meanwhile."""
        if delay_s > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._superseded.wait(), delay_s)
        return not self.superseded


class DocumentScheduler:
    """Hands out tickets per document and supersedes the previous one."""

    def __init__(self) -> None:
        self._current: dict[str, Ticket] = {}
        self.superseded = 0

    def begin(self, uri: str) -> Ticket:
        ticket = Ticket()
        previous = self._current.get(uri)
        self._current[uri] = ticket
        if previous is not None and not previous.superseded:
            previous.supersede()
            self.superseded += 1
        return ticket

    def busy(self, uri: str) -> bool:
        """Whether a request for ``uri`` is waiting or running."""
        return uri in self._current

    def end(self, uri: str, ticket: Ticket) -> None:
        if self._current.get(uri) is ticket:
            del self._current[uri]

    def cancel_all(self) -> None:
        for ticket in self._current.values():
            ticket.supersede()
        self._current.clear()
