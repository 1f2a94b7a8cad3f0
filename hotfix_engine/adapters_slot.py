"""The adapter slot: one base model, at most one active hotfix adapter, swapped without reloading.

The base stays in memory once; peft wraps it on the first load, and later versions are loaded beside
the active one, switched to, and the old one deleted, so a failed load never leaves the slot empty.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hotfix_engine.errors import AdapterError
from hotfix_engine.models import LoadedModel

log = logging.getLogger(__name__)


def check_adapter_folder(folder: Path) -> dict[str, Any]:
    """The adapter's peft config, or :class:`AdapterError` saying what is wrong with the folder."""
    config_file = folder / "adapter_config.json"
    if not folder.is_dir():
        raise AdapterError(f"adapter folder not found: {folder}")
    if not config_file.is_file():
        raise AdapterError(f"{folder} is not an adapter folder (no adapter_config.json)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"{config_file} is corrupt: {exc}") from None
    if not isinstance(config, dict) or "peft_type" not in config:
        raise AdapterError(f"{config_file} is not a peft adapter config")
    if not any((folder / name).is_file() for name in ("adapter_model.safetensors", "adapter_model.bin")):
        raise AdapterError(f"{folder} has no adapter weights (adapter_model.safetensors)")
    return config


class AdapterSlot:
    """Holds the base model and the active adapter version (``None``: the bare base model)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.base = loaded.model
        self.peft_model: Any = None
        self.version: str | None = None
        self.prompt_learning = False

    @property
    def model(self) -> Any:
        """The module to run now: the adapted model, or the base."""
        return self.peft_model if self.version is not None else self.base

    def load(self, folder: Path, version: str) -> None:
        """Activate the adapter in ``folder`` as ``version``; on failure the previous one stays active."""
        from peft import PeftModel

        folder = Path(folder)
        config = check_adapter_folder(folder)
        name = _adapter_name(version)
        try:
            if self.peft_model is None:
                self.peft_model = PeftModel.from_pretrained(self.base, str(folder), adapter_name=name)
            else:
                if name in self.peft_model.peft_config:
                    self._delete(name)
                self.peft_model.load_adapter(str(folder), adapter_name=name)
                self.peft_model.set_adapter(name)
        except Exception as exc:
            if self.peft_model is not None and name in self.peft_model.peft_config:
                self._delete(name)
            if self.version is not None:
                self.peft_model.set_adapter(_adapter_name(self.version))
            raise AdapterError(f"cannot load adapter {version} from {folder}: {exc}") from None
        previous = self.version
        self.version = version
        self.prompt_learning = bool(self.peft_model.peft_config[name].is_prompt_learning)
        self.peft_model.eval()
        if previous is not None and previous != version:
            self._delete(_adapter_name(previous))
        log.info("adapter %s active (%s, from %s)", version, config.get("peft_type"), folder)

    def unload(self) -> None:
        """Run the base model; adapter weights are dropped to free their memory."""
        if self.version is not None:
            self._delete(_adapter_name(self.version))
        self.version = None
        self.prompt_learning = False

    def _delete(self, name: str) -> None:
        if name not in self.peft_model.peft_config:
            return
        if len(self.peft_model.peft_config) == 1:
            # peft refuses to delete the last adapter; unwrap instead and start afresh next time.
            unwrap(self.peft_model)
            self.peft_model = None
            return
        self.peft_model.delete_adapter(name)

    @contextlib.contextmanager
    def active(self) -> Iterator[Any]:
        """The module to generate with, for the duration of one request."""
        yield self.model


def _adapter_name(version: str) -> str:
    return "hotfix_" + "".join(c if c.isalnum() else "_" for c in version)


def unwrap(peft_model: Any) -> Any:
    """Take every adapter off and give the base model back as it was, through peft's own ``unload``.

    LoRA and IA3 wrap the base's layers in place: ``unload`` puts the originals back and drops the
    base's ``peft_config``. Prompt-style adapters never touch the base, which is simply handed back.
    """
    if (
        getattr(peft_model, "active_peft_config", None) is not None
        and peft_model.active_peft_config.is_prompt_learning
    ):
        return peft_model.get_base_model()
    return peft_model.unload()
