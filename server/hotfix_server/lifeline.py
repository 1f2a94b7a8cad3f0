"""Exit when the editor process that started us dies (``initialize``'s ``processId``).

An editor that crashes never sends ``exit``, and its stdin pipe may stay open in a grandchild; a
server left behind would keep a model in memory for nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)

POLL_S = 2.0


def process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate the process on Windows
        import ctypes

        synchronize, wait_timeout = 0x00100000, 0x102
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(synchronize, False, pid)
        if not handle:
            return False
        try:
            return bool(kernel32.WaitForSingleObject(handle, 0) == wait_timeout)
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


async def watch_parent(pid: int, on_death: Callable[[], None], poll_s: float = POLL_S) -> None:
    """Call ``on_death`` once ``pid`` is gone."""
    while process_alive(pid):
        await asyncio.sleep(poll_s)
    log.warning("the editor process %d is gone; exiting", pid)
    on_death()
