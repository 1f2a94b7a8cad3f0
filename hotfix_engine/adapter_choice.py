"""Turn an ``--adapter`` choice (current, none, a version, a folder) into the engine's active adapter."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hotfix_engine.errors import AdapterError
from hotfix_engine.paths import data_dir

if TYPE_CHECKING:
    from hotfix_engine.adapters import AdapterVersion
    from hotfix_engine.completion import EngineBase


def resolve_adapter(
    choice: str | None, model_key: str, data: str | Path | None
) -> tuple[Path | None, str | None]:
    """The folder and version label for a choice; ``(None, None)`` means the bare base model."""
    from hotfix_engine.adapters import AdapterRegistry

    choice = (choice or "current").strip()
    if choice.lower() == "none":
        return None, None
    registry = AdapterRegistry(data_dir(data), model_key)
    if choice.lower() == "current":
        version: AdapterVersion | None = registry.current()
        return (version.path, version.version) if version else (None, None)
    folder = Path(choice).expanduser()
    if folder.is_dir():
        return folder, folder.name
    if choice.startswith("v") and choice[1:].isdigit():
        found = registry.get(choice)
        return found.path, found.version
    raise AdapterError(f"unknown adapter {choice!r}: use current, none, a version like v0001, or a folder")


def activate_adapter(engine: EngineBase, choice: str | None, data: str | Path | None) -> str | None:
    """Load the chosen adapter into the engine; returns its version label (None for the base)."""
    folder, version = resolve_adapter(choice, engine.model_key, data)
    if folder is not None:
        engine.swap_adapter(folder, version).result()
    return version
