"""The current version's retention measurement, kept between training runs.

Perplexity and the ordinary suggestions of the version being replaced are the same for every
candidate measured against it, and they are most of the gate's time; the taught and held-out pairs
change from run to run and are always scored afresh. The entry is keyed by everything that decides
the numbers (model, version, gate settings, probe texts), so a stale one is never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hotfix_engine.adapters import write_json_atomic

log = logging.getLogger(__name__)

CACHE_FILE = "gate-cache.json"
KEEP = 8  # entries kept: one a version recently current


class GateCache:
    def __init__(
        self, data_dir: Path, model_key: str, version: str | None, config: Any, probes: Sequence[str]
    ) -> None:
        self.path = Path(data_dir) / "trainer" / CACHE_FILE
        identity = json.dumps(
            [
                model_key,
                version,
                dataclasses.asdict(config),
                hashlib.sha256("\0".join(probes).encode()).hexdigest(),
            ],
            sort_keys=True,
        )
        self.key = hashlib.sha256(identity.encode()).hexdigest()[:16]

    def _entries(self) -> dict[str, Any]:
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def load(self) -> Any:
        """The cached :class:`hotfix_engine.evaluation.retention_check.Retention`, or None."""
        from hotfix_engine.evaluation.retention_check import Retention

        entry = self._entries().get(self.key)
        if not isinstance(entry, dict):
            return None
        try:
            return Retention(float(entry["perplexity"]), tuple(entry["clean"]), tuple(entry["passed"]))
        except (KeyError, TypeError, ValueError):
            return None

    def save(self, retention: Any) -> None:
        entries = self._entries()
        entries.pop(self.key, None)
        entries[self.key] = dataclasses.asdict(retention)
        kept = dict(list(entries.items())[-KEEP:])
        try:
            write_json_atomic(self.path, kept)
        except OSError as exc:  # a cache: the next run measures again
            log.warning("could not keep the gate's measurement: %s", exc)
