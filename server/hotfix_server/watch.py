"""Watch one model's adapter folder and report changes of its ``current`` pointer.

The trainer (another process) publishes a version by replacing ``<root>/current`` atomically; the
server hot-swaps when it sees that. Events arrive on watchdog's thread, so the callback must only
hand the news to the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from hotfix_engine.paths import private_dir

log = logging.getLogger(__name__)

POINTER = "current"
# Only changes: watchdog also reports reads ("opened", "closed_no_write"), and the server's own read
# of the pointer would otherwise wake it again, forever.
CHANGES = {"created", "modified", "moved", "deleted", "closed"}


class _PointerHandler(FileSystemEventHandler):
    def __init__(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        names = {Path(str(event.src_path)).name, Path(str(getattr(event, "dest_path", "") or "")).name}
        if POINTER in names and event.event_type in CHANGES:
            self.on_change()


class AdapterWatcher:
    """Calls ``on_change`` (from a watchdog thread) whenever the pointer file may have changed."""

    def __init__(self, root: Path, on_change: Callable[[], None]) -> None:
        self.root = root
        self._observer = Observer()
        self._observer.daemon = True
        private_dir(root)
        self._observer.schedule(_PointerHandler(on_change), str(root), recursive=False)

    def start(self) -> None:
        self._observer.start()
        log.debug("watching %s", self.root)

    def stop(self) -> None:
        self._observer.stop()
