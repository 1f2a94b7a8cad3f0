"""What the user's feedback teaches: the bug-fix pairs it yields and which records are learnt from.

An accepted suggestion the user then changed becomes an edit pair (the line they changed and what
they made of it); a rejected suggestion that a rule flagged with a fix becomes a rule pair. Of the
other judged suggestions, clean accepted ones are retained and rejected ones that matched a known
bug, or that the user dismissed, are unlearnt. The store only stores: it calls these rules when it
writes an outcome and when the trainer reads its records. Turning the records into training
examples is train_data.py's job.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from hotfix_engine.pairs import BugFixPair, normalize_statement
from hotfix_engine.patterns.matcher import PatternMatch
from hotfix_engine.store_records import StoredPair, StoredText, SuggestionRecord, TrainingRecords


@dataclass(frozen=True)
class Judged:
    """A stored suggestion with the kind and reason of its latest outcome."""

    record: SuggestionRecord
    outcome: str
    reason: str

    @property
    def record_id(self) -> str:
        """What :meth:`hotfix_engine.store.Store.mark_consumed` takes for this suggestion."""
        return f"suggestion:{self.record.id}"


def sort_for_training(
    pairs: Iterable[StoredPair], judged: Iterable[Judged], paired: Collection[str]
) -> TrainingRecords:
    """The stored ``pairs`` plus what the ``judged`` suggestions teach, each kind in its place.

    A suggestion in ``paired`` (its edit is a stored pair already) is learnt through that pair. A
    rejected suggestion whose match carries a fix becomes a pair (origin "rule"); one that matched a
    known bug without a fix, or that the user explicitly dismissed, is unlearn-only. Superseded
    rejections of clean code are not unlearnt: moving on is not a verdict.
    """
    pairs = list(pairs)
    unlearn, retain = [], []
    for item in judged:
        rec = item.record
        if rec.id in paired:
            continue
        record_id = item.record_id
        buggy = [m for m in rec.matches if m.side == "buggy"]
        if item.outcome == "accepted" and not buggy:
            retain.append(StoredText(rec.prefix, rec.text, record_id))
        elif item.outcome == "rejected":
            fixable = next((m for m in buggy if m.fix), None)
            if fixable is not None:
                pair = rule_pair(rec, fixable)
                if pair is not None:
                    pairs.append(StoredPair(pair, record_id, "rule"))
                    continue
            if buggy or item.reason == "dismissed":
                unlearn.append(StoredText(rec.prefix, rec.text, record_id))
    return TrainingRecords(pairs, unlearn, retain)


def edit_pair(rec: SuggestionRecord, final_text: str) -> BugFixPair | None:
    """The (buggy, fixed) pair of an accepted suggestion the user then changed.

    ``final_text`` is what the suggested line (or lines) became. When one line of a multi-line
    suggestion changed, that line is the pair; a one-line final text pairs with the suggested line
    most like it; otherwise the whole block is. ``None`` when nothing but layout changed.
    """
    from hotfix_engine.patterns.classify import classify_pair

    head = rec.prefix[rec.prefix.rfind("\n") + 1 :]
    base = rec.prefix[: len(rec.prefix) - len(head)]
    lines = (head + rec.text + rec.suffix).split("\n")
    suggested = (head + rec.text).count("\n") + 1
    final = final_text.strip("\n")
    finals = final.split("\n")
    first, last = 0, suggested
    if len(finals) == suggested:
        changed = [
            i for i in range(suggested) if normalize_statement(lines[i]) != normalize_statement(finals[i])
        ]
        if len(changed) == 1:
            first, last, final = changed[0], changed[0] + 1, finals[changed[0]]
    elif len(finals) == 1:
        target = normalize_statement(final)
        best = max(
            (i for i in range(suggested) if lines[i].strip()),
            key=lambda i: difflib.SequenceMatcher(None, normalize_statement(lines[i]), target).ratio(),
            default=None,
        )
        if best is not None:
            first, last = best, best + 1
    buggy = "\n".join(lines[first:last])
    if not final.strip() or normalize_statement(buggy) == normalize_statement(final):
        return None
    indent = buggy[: len(buggy) - len(buggy.lstrip())]
    fixed = final if final != final.lstrip() or not indent else indent + final
    return BugFixPair(
        prefix=base + "".join(line + "\n" for line in lines[:first]),
        buggy=buggy,
        fixed=fixed,
        suffix="\n".join(lines[last:]),
        id=f"edit-{rec.id}",
        source="edit",
        pattern=classify_pair(buggy, fixed),
    )


def rule_pair(rec: SuggestionRecord, match: PatternMatch) -> BugFixPair | None:
    """A rejected suggestion with a rule's fix, as a pair: the line it flagged and the fixed line."""
    assert match.fix is not None
    head = rec.prefix[rec.prefix.rfind("\n") + 1 :]
    lines = (head + rec.text).split("\n")
    if not 0 <= match.line < len(lines):
        return None
    base = rec.prefix[: len(rec.prefix) - len(head)]
    return BugFixPair(
        prefix=base + "".join(line + "\n" for line in lines[: match.line]),
        buggy=lines[match.line],
        fixed=match.fix,
        suffix="\n".join(lines[match.line + 1 :]) + rec.suffix,
        id=f"rule-{rec.id}",
        source="rule",
        pattern=match.pattern_id,
    )
