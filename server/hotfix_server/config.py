"""The server's settings: a frozen, defaulted dataclass tree read from the client's camelCase options.

``initializationOptions`` and ``workspace/didChangeConfiguration`` carry the same flat keys as the
VS Code settings ``hotfix.*`` (docs/architecture.md, Contracts). A change carries the client's whole settings, as VS Code
and Neovim send them: it is read over the initialization options, so a key the user removed (absent
or null) returns to its initial or default value instead of keeping the old one. Unknown keys are
ignored, so newer clients work with older servers; a bad value keeps the value in force and is
reported once, so a typo in a setting never stops completions.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cattrs

from hotfix_engine.errors import ConfigError
from hotfix_engine.store import RECORD_MODES

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "llama.cpp", "transformers")  # hotfix_engine.runtimes.RUNTIMES, without importing it
SUPPRESSION_SCOPES = ("workspace", "everywhere", "off")


def _wire(key: str) -> Any:
    """Field metadata naming the camelCase key that sets the field."""
    return {"wire": key}


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, not {value!r}")


@dataclass(frozen=True)
class CompletionConfig:
    """How suggestions are generated."""

    # 64 tokens covers a long statement; more makes every suggestion slower on a CPU.
    max_new_tokens: int = field(default=64, metadata=_wire("maxNewTokens"))
    # Greedy by default: a suggestion should not change when the user asks twice.
    temperature: float = field(default=0.0, metadata=_wire("temperature"))
    # The prompt window; 1536 keeps the first token under a second on two CPU cores.
    context_tokens: int = field(default=1536, metadata=_wire("contextTokens"))
    # Clients that ask on every keystroke would otherwise queue a generation per character.
    debounce_ms: int = field(default=75, metadata=_wire("debounceMs"))
    # Past this much decoding time a suggestion ends at the next complete line (llama.vscode's
    # t_max_predict_ms): one that takes seconds arrives after the user typed on and is never seen.
    predict_budget_ms: int = field(default=500, metadata=_wire("predictBudgetMs"))

    def __post_init__(self) -> None:
        _check_range("maxNewTokens", self.max_new_tokens, 1, 1024)
        _check_range("temperature", self.temperature, 0.0, 2.0)
        _check_range("contextTokens", self.context_tokens, 16, 32768)
        _check_range("debounceMs", self.debounce_ms, 0, 10000)
        _check_range("predictBudgetMs", self.predict_budget_ms, 0, 600000)


@dataclass(frozen=True)
class OutcomeConfig:
    """When the server decides what became of a suggestion."""

    # A suggestion nobody acted on within this time was ignored: rejected as "expired".
    expiry_s: float = field(default=30.0, metadata=_wire("suggestionExpirySeconds"))
    # An accepted line changed into another statement within this time is the user's own fix.
    edit_window_s: float = field(default=60.0, metadata=_wire("editWindowSeconds"))

    def __post_init__(self) -> None:
        _check_range("suggestionExpirySeconds", self.expiry_s, 0.1, 86400.0)
        _check_range("editWindowSeconds", self.edit_window_s, 0.1, 86400.0)


@dataclass(frozen=True)
class ServerConfig:
    """Everything a client can set; every field has a default."""

    # None means the engine's default model (the embedded Gemma 3 270M).
    model: str | None = field(default=None, metadata=_wire("model"))
    # None means $HOTFIX_HOME, else $XDG_DATA_HOME/hotfix.
    data_dir: str | None = field(default=None, metadata=_wire("dataDir"))
    # auto: llama.cpp for GGUF models (the embedded ones), transformers for the rest.
    runtime: str = field(default="auto", metadata=_wire("runtime"))
    # Training in the background is opt-in: it costs CPU the user may need.
    continuous_hotfixing: bool = field(default=False, metadata=_wire("continuousHotfixing"))
    # Only events that match a known pattern are kept by default: we do not hoard users' code.
    record: str = field(default="patterns", metadata=_wire("record"))
    # A rejected suggestion is not suggested again at its place in this workspace (or everywhere),
    # from the next request on; "off" leaves the model's suggestions as they are until training.
    suppressions: str = field(default="workspace", metadata=_wire("suppressions"))
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    outcomes: OutcomeConfig = field(default_factory=OutcomeConfig)

    def __post_init__(self) -> None:
        if self.record not in RECORD_MODES:
            raise ConfigError(f"record must be one of {', '.join(RECORD_MODES)}, not {self.record!r}")
        if self.suppressions not in SUPPRESSION_SCOPES:
            raise ConfigError(
                f"suppressions must be one of {', '.join(SUPPRESSION_SCOPES)}, not {self.suppressions!r}"
            )
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, not {self.runtime!r}")
        for name in ("model", "data_dir"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise ConfigError(f"{_wire_name(self, name)} must not be empty")


def _wire_name(obj: object, name: str) -> str:
    return next(f.metadata["wire"] for f in dataclasses.fields(obj) if f.name == name)  # type: ignore[arg-type]


def _string(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    raise ConfigError(f"must be a string, not {value!r}")


def _optional_string(value: Any, _: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"must be a string or null, not {value!r}")


def _boolean(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"must be true or false, not {value!r}")


def _whole_number(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ConfigError(f"must be a whole number, not {value!r}")


def _number(value: Any, _: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ConfigError(f"must be a number, not {value!r}")


# JSON's values as the settings take them. cattrs's own hooks convert too freely for settings a user
# types by hand (str(3) is a model, int("12") a token count, bool("no") true): these only accept the
# JSON type itself (and a whole float for an integer), and say what they wanted. Ranges and choices
# are the dataclasses' own checks (__post_init__).
_converter = cattrs.Converter()
_converter.register_structure_hook(str, _string)
_converter.register_structure_hook_func(lambda kind: kind == (str | None), _optional_string)
_converter.register_structure_hook(bool, _boolean)
_converter.register_structure_hook(int, _whole_number)
_converter.register_structure_hook(float, _number)


def _read(value: Any, kind: Any, key: str) -> Any:
    """``value`` as the type ``kind``; a mismatch is one line that names the setting."""
    try:
        return _converter.structure(value, kind)
    except ConfigError as exc:
        raise ConfigError(f"{key} {exc}") from None


def _apply(node: Any, raw: Mapping[str, Any], problems: list[str], in_force: Any) -> Any:
    """A copy of ``node`` with every valid value from ``raw`` set, recursing into sub-sections.

    Absent and null keys keep ``node``'s value; an invalid one keeps the value ``in_force``.
    """
    kinds = typing.get_type_hints(type(node))
    for f in dataclasses.fields(node):
        current = getattr(node, f.name)
        kept = getattr(in_force, f.name)
        if dataclasses.is_dataclass(current):
            node = dataclasses.replace(node, **{f.name: _apply(current, raw, problems, kept)})
            continue
        key = f.metadata["wire"]
        if raw.get(key) is None:
            continue
        try:
            # The type by the converter, then the range or choice by the dataclass's own checks.
            node = dataclasses.replace(node, **{f.name: _read(raw[key], kinds[f.name], key)})
        except ConfigError as exc:
            problems.append(f"{exc}; keeping {kept!r}")
            node = dataclasses.replace(node, **{f.name: kept})
    return node


def wire_keys(node: Any = None) -> list[str]:
    """Every camelCase key the server understands."""
    node = ServerConfig() if node is None else node
    keys: list[str] = []
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        keys.extend(wire_keys(value) if dataclasses.is_dataclass(value) else [f.metadata["wire"]])
    return keys


def parse_config(
    raw: Any, base: ServerConfig | None = None, in_force: ServerConfig | None = None
) -> tuple[ServerConfig, list[str]]:
    """Read client options on top of ``base``; returns the config and one line per rejected value.

    A rejected value keeps its value in ``in_force`` (default ``base``): after a change of settings,
    what the server was using. VS Code sends its settings section as ``{"hotfix": {...}}``; other
    clients send the keys bare.
    """
    base = base or ServerConfig()
    in_force = in_force or base
    if raw is None:
        return in_force, []
    if isinstance(raw, Mapping) and isinstance(raw.get("hotfix"), Mapping):
        raw = raw["hotfix"]
    if not isinstance(raw, Mapping):
        return in_force, [f"settings must be an object, not {type(raw).__name__}; using the previous ones"]
    unknown = sorted(set(raw) - set(wire_keys()))
    if unknown:
        log.debug("ignoring unknown settings: %s", ", ".join(map(str, unknown)))
    problems: list[str] = []
    return _apply(base, raw, problems, in_force), problems
