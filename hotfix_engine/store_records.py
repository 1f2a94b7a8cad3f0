"""What the store holds: the records a server writes and the trainer reads.

Plain values with no storage in them, so that the outcome tracker, the store, its backends and the
training policy (training_records.py) share one vocabulary without importing each other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hotfix_engine.pairs import BugFixPair
from hotfix_engine.patterns.matcher import PatternMatch

OUTCOME_KINDS = ("accepted", "rejected", "edited")
OUTCOME_REASONS = ("command", "typed", "partial", "superseded", "diverged", "dismissed", "expired", "edited")


@dataclass(frozen=True)
class SuggestionRecord:
    """A shown suggestion and the context needed to train on it."""

    id: str
    created: float
    language: str
    uri: str
    prefix: str
    suffix: str
    text: str
    model: str
    adapter: str | None
    matches: tuple[PatternMatch, ...] = ()

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a suggestion record needs an id")


@dataclass(frozen=True)
class OutcomeRecord:
    """What became of a suggestion. ``final_text`` (for "edited") is the line the user ended with."""

    suggestion_id: str
    kind: str
    reason: str
    final_text: str | None = None
    created: float = field(default_factory=time.time)
    # The reason of this suggestion's provisional outcome of the same kind that this one finalises
    # (written ahead so a kill cannot lose it, e.g. "typed" until the accept command says "command").
    replaces: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in OUTCOME_KINDS:
            raise ValueError(f"unknown outcome kind {self.kind!r}; valid: {', '.join(OUTCOME_KINDS)}")
        if self.reason not in OUTCOME_REASONS:
            raise ValueError(f"unknown outcome reason {self.reason!r}; valid: {', '.join(OUTCOME_REASONS)}")
        if self.kind == "edited" and self.final_text is None:
            raise ValueError("an 'edited' outcome needs final_text")


@dataclass(frozen=True)
class StoredPair:
    """A pair from the store; ``record_id`` is what :meth:`Store.mark_consumed` takes."""

    pair: BugFixPair
    record_id: str
    origin: str


@dataclass(frozen=True)
class StoredText:
    prefix: str
    text: str
    record_id: str


@dataclass(frozen=True)
class TrainingRecords:
    """What the trainer learns from: ``pairs`` (learn the fix, unlearn the bug), ``unlearn_only``
    (rejected buggy suggestions with no known fix) and ``retain`` (accepted clean suggestions)."""

    pairs: list[StoredPair]
    unlearn_only: list[StoredText]
    retain: list[StoredText]
