"""Exit when the editor process that started us dies (``initialize``'s ``processId``).

An editor that crashes never sends ``exit``, and its stdin pipe may stay open in a grandchild; a
server left behind would keep a model in memory for nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from hotfix_engine.processes import process_alive

log = logging.getLogger(__name__)

POLL_S = 2.0


async def watch_parent(pid: int, on_death: Callable[[], None], poll_s: float = POLL_S) -> None:
    """Call ``on_death`` once ``pid`` is gone."""
    while process_alive(pid):
        await asyncio.sleep(poll_s)
    log.warning("the editor process %d is gone; exiting", pid)
    on_death()
