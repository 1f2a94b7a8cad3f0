"""Where hotfix keeps its files: one data folder for the store, adapters, logs and the model cache."""

from __future__ import annotations

import os
from pathlib import Path


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
