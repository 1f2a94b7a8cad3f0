"""Matching a suggestion against known bug-fix pairs.

A suggestion matches a pair when one of its statements equals the pair's buggy statement (or its
fixed one) after whitespace is normalised, and the contexts agree: one of the last few meaningful
lines before the pair's statement also appears shortly before the suggestion. Without that second
condition every ``return True`` would match QuixBugs' ``is_valid_parenthesization``.

Lookups are dictionary hits on normalised statements, so the cost per suggestion does not grow
with the number of known pairs; the context is only computed when a statement hits.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from hotfix_engine.pairs import BugFixPair, normalize_statement

SOURCES = ("rule", "pair", "edit")
SIDES = ("buggy", "fixed")
# How many meaningful lines before a pair's statement form its context, and how far back in the
# suggestion's prefix we look for them.
PAIR_CONTEXT_LINES = 3
PREFIX_WINDOW_LINES = 30
# Lines that say nothing about where we are: without a name of their own (``else:``, ``return
# False``, ``)``), or comments.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GENERIC = frozenset(keyword.kwlist) | {"self", "cls", "print", "len", "str", "int", "super", "__init__"}


@dataclass(frozen=True)
class PatternMatch:
    """A suggestion line that matches a rule, a known bug (``side="buggy"``) or a known fix.

    ``line`` is 0-based in the checked text, whose line 0 is the line the suggestion starts on;
    ``fix`` is the corrected line (indented like the suggestion) when one is known.
    """

    pattern_id: str
    source: str
    side: str
    line: int
    message: str
    fix: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; valid: {', '.join(SOURCES)}")
        if self.side not in SIDES:
            raise ValueError(f"unknown side {self.side!r}; valid: {', '.join(SIDES)}")

    def to_json(self) -> dict[str, object]:
        return {
            "pattern_id": self.pattern_id,
            "source": self.source,
            "side": self.side,
            "line": self.line,
            "message": self.message,
            "fix": self.fix,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PatternMatch:
        fix = data.get("fix")
        return cls(
            str(data["pattern_id"]),
            str(data["source"]),
            str(data["side"]),
            int(data["line"]),  # type: ignore[call-overload]
            str(data.get("message", "")),
            None if fix is None else str(fix),
        )


def _meaningful(lines: list[str]) -> list[str]:
    normalized = (normalize_statement(line) for line in lines)
    return [
        line
        for line in normalized
        if not line.startswith("#") and any(name not in _GENERIC for name in _IDENTIFIER.findall(line))
    ]


def _lines_before(prefix: str) -> list[str]:
    """The complete lines at the end of ``prefix`` (not the one the cursor is on), at most a window."""
    parts = prefix.rsplit("\n", PREFIX_WINDOW_LINES + 1)
    return parts[:-1] if len(parts) <= PREFIX_WINDOW_LINES + 1 else parts[1:-1]


@dataclass(frozen=True)
class _Known:
    pair: BugFixPair
    source: str
    context: frozenset[str]


class PairIndex:
    """Known pairs indexed by their normalised buggy and fixed statements."""

    def __init__(self) -> None:
        self._buggy: dict[str, list[_Known]] = {}
        self._fixed: dict[str, list[_Known]] = {}
        self._keys: set[tuple[str, str]] = set()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, pair: BugFixPair, source: str = "pair") -> bool:
        """Index ``pair``; False when it is already known (same key) or has nothing to match."""
        if source not in ("pair", "edit"):
            raise ValueError(f"unknown pair source {source!r}; valid: pair, edit")
        buggy, fixed = normalize_statement(pair.buggy), normalize_statement(pair.fixed)
        if (pair.key, source) in self._keys or not buggy or buggy == fixed:
            return False
        self._keys.add((pair.key, source))
        context = frozenset(_meaningful(pair.prefix.split("\n"))[-PAIR_CONTEXT_LINES:])
        known = _Known(pair, source, context)
        self._buggy.setdefault(buggy, []).append(known)
        if fixed:
            self._fixed.setdefault(fixed, []).append(known)
        return True

    def count(self, source: str) -> int:
        return sum(1 for _, known_source in self._keys if known_source == source)

    def match(self, prefix: str, text: str) -> list[PatternMatch]:
        head = prefix[prefix.rfind("\n") + 1 :]
        lines = (head + text).split("\n")
        found: list[PatternMatch] = []
        window: set[str] | None = None
        for number, line in enumerate(lines):
            statement = normalize_statement(line)
            if not statement:
                continue
            for side, table in (("buggy", self._buggy), ("fixed", self._fixed)):
                for known in table.get(statement, ()):
                    if known.context:
                        if window is None:
                            window = set(_meaningful(_lines_before(prefix)))
                        earlier = set(_meaningful(lines[:number]))
                        if not known.context & (window | earlier):
                            continue
                    found.append(self._to_match(known, side, number, line))
        return found

    @staticmethod
    def _to_match(known: _Known, side: str, number: int, line: str) -> PatternMatch:
        pair = known.pair
        label = f" ({pair.pattern})" if pair.pattern else ""
        if side == "buggy":
            indent = line[: len(line) - len(line.lstrip())]
            message = f"matches the known bug {pair.key}{label}: `{pair.buggy.strip()}`"
            return PatternMatch(pair.key, known.source, side, number, message, indent + pair.fixed.strip())
        message = f"matches the known fix {pair.key}{label}"
        return PatternMatch(pair.key, known.source, side, number, message, None)
