"""Where hotfix keeps its files: one data folder for the store, adapters, logs and the model cache.

Everything in the data folder is its owner's only (folders 0700, files 0600), whatever the umask:
it holds code the user typed. The entry points set the umask to PRIVATE_UMASK, and whatever creates
a folder or file there goes through :func:`private_dir` or :func:`open_private`, which also tighten
one that an older hotfix left readable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

PRIVATE_UMASK = 0o077


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: ``override``, else ``$HOTFIX_HOME``, else ``$XDG_DATA_HOME/hotfix``."""
    if override:
        return Path(override).expanduser()
    if os.environ.get("HOTFIX_HOME"):
        return Path(os.environ["HOTFIX_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(xdg) / "hotfix"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Converted models live here: ``$HOTFIX_CACHE``, else ``$XDG_CACHE_HOME/hotfix``.

    Kept apart from the data folder because a converted model is large and can always be rebuilt,
    while the data folder holds the user's feedback and adapters.
    """
    if override:
        return Path(override).expanduser()
    if os.environ.get("HOTFIX_CACHE"):
        return Path(os.environ["HOTFIX_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "hotfix"


def store_path(data: Path) -> Path:
    return data / "store.sqlite3"


def adapters_root(data: Path) -> Path:
    return data / "adapters"


def logs_dir(data: Path) -> Path:
    return data / "logs"


def _tighten(path: Path, mode: int) -> None:
    """Take group and other permissions off ``path`` if we own it (best effort)."""
    try:
        info = path.stat()
        if info.st_mode & 0o077 and info.st_uid == os.getuid():
            os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077 | mode)
    except (OSError, AttributeError):  # AttributeError: no getuid (Windows), where modes mean little
        pass


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and any missing parent) readable by its owner only, or tighten it if it exists."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.is_dir():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue
        _tighten(folder, 0o700)
    _tighten(path, 0o700)
    return path


def open_private(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> IO:
    """Open ``path`` for writing (``w``, ``a``, ``wb``, ``ab``), created or kept 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        if hasattr(os, "fchmod"):
            info = os.fstat(fd)
            if info.st_mode & 0o077 and info.st_uid == os.getuid():
                os.fchmod(fd, 0o600)
        return os.fdopen(fd, mode, encoding=None if "b" in mode else encoding)
    except BaseException:
        os.close(fd)
        raise


def private_file(path: str | os.PathLike[str]) -> Path:
    """Make sure ``path`` exists as a file only its owner can read (for a log or lock opened elsewhere)."""
    open_private(path, "ab").close()
    return Path(path)
