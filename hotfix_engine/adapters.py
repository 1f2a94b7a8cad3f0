"""Adapter versions on disk: ``adapters/<model key>/vNNNN/`` and the ``current`` pointer.

A version folder holds peft's files and ``manifest.json`` (config, data hashes, objective weights,
metrics, parent, time taken, gate decision and reason). It is assembled in a hidden temporary folder
and renamed into place, so a reader never sees half a version; ``current`` is a text file replaced
atomically, which the server watches to hot-swap. A version the gate rejected is kept, unpublished,
with the reason, and cannot become current.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from hotfix_engine.errors import AdapterError
from hotfix_engine.gguf_lora import GGUF_LORA_FILE
from hotfix_engine.paths import adapters_root, private_dir
from hotfix_engine.processes import process_alive

log = logging.getLogger(__name__)

VERSION = re.compile(r"^v(\d{4,})$")
MANIFEST = "manifest.json"
POINTER = "current"
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")
TEMP_PREFIX = ".tmp-"
NONE = "none"
# The store records a version learnt from, published inside its folder (see add and consumed_records).
CONSUMED = "consumed.json"
KILL_AT_ENV = "HOTFIX_TEST_KILL_AT"  # tests only: the kill point where the process dies (kill_point)


def kill_point(name: str) -> None:
    """Die here as a SIGKILL would when a test names this point in HOTFIX_TEST_KILL_AT; else nothing.

    The kill-matrix tests use it to stop a run at a known step instead of after a guessed sleep.
    """
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


@dataclass(frozen=True)
class AdapterVersion:
    version: str
    path: Path
    manifest: dict[str, Any]
    published: bool

    @property
    def parent(self) -> str | None:
        return self.manifest.get("parent")

    @property
    def reason(self) -> str:
        return str(self.manifest.get("gate", {}).get("reason", ""))


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: without it a crash can lose the new directory entry."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file next to ``path``, fsync it, and rename it over ``path``."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class AdapterRegistry:
    """The versions of one base model's adapters, and which one is current."""

    def __init__(self, data_dir: Path, model_key: str):
        self.root = adapters_root(Path(data_dir)) / model_key
        self._lock = FileLock(str(self.root.parent / f".{model_key}.lock"), mode=0o600)

    def _read(self, version: str, folder: Path) -> AdapterVersion:
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AdapterError(f"adapter {version} is corrupt: {MANIFEST} is missing ({folder})") from None
        except (OSError, ValueError) as exc:
            raise AdapterError(f"adapter {version} is corrupt: cannot read {MANIFEST} ({exc})") from None
        if not isinstance(manifest, dict):
            raise AdapterError(f"adapter {version} is corrupt: {MANIFEST} is not an object")
        missing = [name for name in PEFT_FILES if not (folder / name).is_file()]
        if missing:
            raise AdapterError(f"adapter {version} is corrupt: missing {', '.join(missing)} ({folder})")
        return AdapterVersion(version, folder, manifest, bool(manifest.get("published")))

    def _names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir() if p.is_dir() and VERSION.match(p.name)]
        return sorted(names, key=lambda name: int(name[1:]))

    def versions(self) -> list[AdapterVersion]:
        """All readable versions, oldest first; a corrupt one is logged and left out."""
        found = []
        for name in self._names():
            try:
                found.append(self._read(name, self.root / name))
            except AdapterError as exc:
                log.warning("%s", exc)
        return found

    def get(self, version: str) -> AdapterVersion:
        if not VERSION.match(version):
            raise AdapterError(f"{version!r} is not a version name (expected e.g. v0001)")
        folder = self.root / version
        if not folder.is_dir():
            known = ", ".join(self._names()) or "none"
            raise AdapterError(f"no adapter version {version} (known: {known})")
        return self._read(version, folder)

    def current_name(self) -> str | None:
        """The pointer's text, or None for the base model."""
        try:
            text = (self.root / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AdapterError(f"cannot read the current adapter pointer: {exc}") from None
        return None if text in ("", NONE) else text

    def current(self) -> AdapterVersion | None:
        name = self.current_name()
        return None if name is None else self.get(name)

    def set_current(self, version: str | None, *, force: bool = False) -> None:
        """Point ``current`` at ``version`` (None: the base model) with one atomic rename.

        A version the gate rejected is refused unless ``force``: it was kept for inspection, not use.
        """
        if version is not None:
            target = self.get(version)
            if not target.published and not force:
                raise AdapterError(
                    f"{version} was not published ({target.reason or 'rejected'}); use --force"
                )
        private_dir(self.root)
        with self._lock:  # staging clean-up, also under the lock, must not take our temporary file
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.root)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write((version or NONE) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.root / POINTER)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(self.root)
        log.info("current adapter: %s", version or "none (base model)")

    def rollback(self, to: str | None = None) -> AdapterVersion | None:
        """Make ``to`` current, or by default the current version's parent (None: the base model)."""
        if to is None:
            current = self.current()
            if current is None:
                raise AdapterError("nothing to roll back: the base model is already current")
            to = current.parent
            # A parent that was itself rolled away from or deleted falls back to the base model.
            if to is not None and not (self.root / to).is_dir():
                to = None
        elif to == NONE:
            to = None
        self.set_current(to)
        return None if to is None else self.get(to)

    def staging(self) -> Path:
        """A fresh hidden folder inside the root to write a new version into before it is added."""
        private_dir(self.root)
        return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=self.root))  # 0700

    def add(
        self,
        staged: Path,
        manifest: dict[str, Any],
        *,
        make_current: bool = False,
        consumed: Sequence[str] = (),
    ) -> AdapterVersion:
        """Turn a staged folder holding peft's files into the next version, atomically.

        The manifest (and ``consumed``, the store records the version learnt from) is written into
        the staged folder first, then the folder is renamed to its version name under a lock (so two
        trainers never take one number); a crash at any point leaves either no version or a complete
        one, and ``current`` untouched until the rename is done.
        """
        missing = [name for name in PEFT_FILES if not (staged / name).is_file()]
        if missing:
            raise AdapterError(f"cannot add {staged}: missing {', '.join(missing)}")
        with self._lock:
            self.clean_staging()
            names = self._names()
            version = f"v{(int(names[-1][1:]) + 1) if names else 1:04d}"
            manifest = {**manifest, "version": version, "created": manifest.get("created", time.time())}
            write_json_atomic(staged / MANIFEST, manifest)
            if consumed:
                write_json_atomic(staged / CONSUMED, sorted(consumed))
            for item in staged.iterdir():  # peft wrote them with the umask's mode: its owner's only
                if item.is_file():
                    os.chmod(item, 0o600)
            optional = [GGUF_LORA_FILE] if (staged / GGUF_LORA_FILE).is_file() else []
            for name in [*PEFT_FILES, *optional]:
                with open(staged / name, "rb") as handle:
                    os.fsync(handle.fileno())
            os.rename(staged, self.root / version)
            _fsync_dir(self.root)
            kill_point("renamed")
            added = self._read(version, self.root / version)
            if make_current:
                self.set_current(version)
        return added

    def clean_staging(self) -> None:
        """Remove staging folders whose writer is gone (an interrupted run leaves one behind)."""
        if not self.root.is_dir():
            return
        for path in self.root.glob(f"{TEMP_PREFIX}*"):
            match = re.match(rf"{re.escape(TEMP_PREFIX)}(\d+)-", path.name)
            if match and process_alive(int(match.group(1))):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif not match:
                path.unlink(missing_ok=True)


def consumed_records(folder: Path) -> list[str]:
    """The store records the version in ``folder`` learnt from (none for a version made before the list)."""
    try:
        data = json.loads((folder / CONSUMED).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", folder / CONSUMED, exc)
        return []
    return [str(item) for item in data] if isinstance(data, list) else []
