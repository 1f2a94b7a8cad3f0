"""What became of each suggestion: accepted, rejected (and why), or accepted and then edited.

The editor tells us little: VS Code runs ``hotfix.accept`` after a full accept, but a partial
accept (word by word) or a suggestion typed out by hand only shows up as document changes, and a
rejection is never announced at all. So the tracker watches the text of the documents that hold a
live suggestion and decides:

- *accepted* when the command runs (``command``), when the suggestion appears at the cursor through
  edits (``typed``), or when part of it was inserted by the editor before the user went another
  way (``partial``);
- *rejected* when a newer suggestion is shown (``superseded``), the user types something else
  (``diverged``), dismisses it (``dismissed``, the ``hotfix.reject`` command) or ignores it
  (``expired``);
- *edited* when an accepted statement is changed into a different one on the same line within a
  short window: the user's own fix of the model's suggestion, the most valuable training pair.

It is pure logic on strings and offsets (no LSP types), driven by the server and by tests with an
injected clock. The server hands over each change as the editor sent it (a :class:`TextChange`, translated
from LSP's ranges), so the tracker keeps its copy of a watched document up to date without comparing
whole texts; only a client that sends whole documents makes it look for the change itself.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hotfix_engine.pairs import normalize_statement
from hotfix_engine.store_records import OutcomeRecord

# A command that follows the editor's insertion arrives a moment later. The acceptance is returned
# (and so stored) at once as "typed", lest a kill lose it; a command within this grace turns that
# record into "command" (OutcomeRecord.replaces) rather than adding a second acceptance.
COMMAND_GRACE_S = 1.0
# One change inserting this much of the suggestion is the editor accepting part of it, not typing.
PARTIAL_STEP = 2
_CHUNK = 1 << 16


@dataclass(frozen=True)
class TextChange:
    """One change to a document: the code points ``[start, end)`` of ``span`` in the text before it
    become ``text``. Without a span, ``text`` is the whole new document (LSP's change without a range)."""

    text: str
    span: tuple[int, int] | None = None


@dataclass
class _Live:
    """A suggestion being watched (mutable: offsets move as the document changes)."""

    suggestion_id: str
    uri: str
    text: str
    start: int  # the cursor when it was shown
    end: int  # end of the part of the suggestion inserted so far
    shown_at: float
    largest_step: int = 0


@dataclass
class _Accepted:
    """An accepted suggestion whose statement is watched for the user's own edit."""

    suggestion_id: str
    uri: str
    line_start: int
    line_end: int
    statement: str  # the line(s) as accepted
    until: float
    touched: bool = False


@dataclass
class _Held:
    """A typed acceptance already returned, which the accept command may still turn into "command"."""

    record: OutcomeRecord
    release_at: float


def _common_prefix(a: str, b: str, limit: int) -> int:
    """Length of the common prefix, comparing large chunks first so multi-MB documents stay cheap."""
    i = 0
    while i + _CHUNK <= limit and a[i : i + _CHUNK] == b[i : i + _CHUNK]:
        i += _CHUNK
    lo, hi = i, min(limit, i + _CHUNK)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[i:mid] == b[i:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    i = 0
    la, lb = len(a), len(b)
    while i + _CHUNK <= limit and a[la - i - _CHUNK : la - i] == b[lb - i - _CHUNK : lb - i]:
        i += _CHUNK
    lo, hi = i, min(limit, i + _CHUNK)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[la - mid : la - i] == b[lb - mid : lb - i]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def text_diff(before: str, after: str, near: int | None = None) -> tuple[int, int, str]:
    """The single edit ``(start, old_end, new_text)`` that turns ``before`` into ``after`` (a change
    sent as the whole document).

    Where the edit is ambiguous (typing ``)`` in front of a ``)``), it is placed at ``near`` when
    that is a valid place, because that is where the cursor was.
    """
    shortest = min(len(before), len(after))
    prefix = _common_prefix(before, after, shortest)
    suffix = _common_suffix(before, after, shortest)
    if prefix + suffix <= shortest:
        return prefix, len(before) - suffix, after[prefix : len(after) - suffix]
    # Overlap: a pure insertion or deletion whose position is anywhere in [shortest - suffix, prefix].
    start = prefix if near is None else max(shortest - suffix, min(near, prefix))
    if len(after) >= len(before):
        return start, start, after[start : start + len(after) - len(before)]
    return start, start + len(before) - len(after), ""


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The full lines covering ``[start, end)``, without the final newline."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return line_start, len(text) if line_end < 0 else line_end


class OutcomeTracker:
    """Decides outcomes from shown suggestions, commands and document text; returns them as records."""

    def __init__(
        self,
        *,
        expiry_s: float = 30.0,
        edit_window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.expiry_s = expiry_s
        self.edit_window_s = edit_window_s
        self.clock = clock
        self._live: _Live | None = None  # one ghost text is visible at a time
        self._accepted: dict[str, _Accepted] = {}
        self._held: dict[str, _Held] = {}
        self._texts: dict[str, str] = {}  # last known text of documents being watched

    def _outcome(self, sid: str, kind: str, reason: str, final_text: str | None = None) -> OutcomeRecord:
        return OutcomeRecord(
            suggestion_id=sid, kind=kind, reason=reason, final_text=final_text, created=self.clock()
        )

    # Events -----------------------------------------------------------------------------------

    def shown(
        self, suggestion_id: str, uri: str, text: str, offset: int, suggestion: str
    ) -> list[OutcomeRecord]:
        """A suggestion was returned for ``offset`` in a document whose text is ``text``."""
        out = self._release(self.clock())
        if self._live is not None:
            out.extend(self._end_live("superseded"))
        self._live = _Live(suggestion_id, uri, suggestion, offset, offset, self.clock())
        self._texts[uri] = text
        return out

    def accept(self, suggestion_id: str) -> list[OutcomeRecord]:
        """The client ran ``hotfix.accept``: the editor inserted (or is about to insert) the suggestion."""
        out = self._release(self.clock())
        held = self._held.pop(suggestion_id, None)
        if held is not None:
            final = self._outcome(suggestion_id, "accepted", "command")
            out.append(dataclasses.replace(final, created=held.record.created, replaces=held.record.reason))
            return out
        live = self._live
        if live is None or live.suggestion_id != suggestion_id:
            return out
        self._live = None
        text = self._texts[live.uri]
        # The insertion may not have arrived yet: watch the line as it will read once it does.
        inserted = text[live.start : live.end]
        line_start, line_end = _line_bounds(text, live.start, live.end)
        statement = text[line_start : live.start] + live.text + text[live.start + len(inserted) : line_end]
        self._watch(live, line_start, line_end, statement)
        out.append(self._outcome(suggestion_id, "accepted", "command"))
        return out

    def reject(self, suggestion_id: str) -> list[OutcomeRecord]:
        """The client ran ``hotfix.reject`` (the user dismissed the suggestion)."""
        out = self._release(self.clock())
        if self._live is not None and self._live.suggestion_id == suggestion_id:
            out.extend(self._end_live("dismissed"))
        return out

    def changed(self, uri: str, edits: Iterable[TextChange]) -> list[OutcomeRecord]:
        """The document ``uri`` was changed by ``edits``, in order (one ``didChange``)."""
        now = self.clock()
        out = self._release(now)
        for edit in edits:
            before = self._texts.get(uri)
            if before is None:  # not watched, or no longer: its suggestions are decided
                break
            out.extend(self._change(uri, before, edit, now))
        return out

    def _change(self, uri: str, before: str, edit: TextChange, now: float) -> list[OutcomeRecord]:
        live = self._live if self._live is not None and self._live.uri == uri else None
        if edit.span is None:
            if edit.text == before:
                return []
            text = edit.text
            start, old_end, new = text_diff(before, text, live.end if live else None)
        else:
            start, old_end = sorted(min(max(0, at), len(before)) for at in edit.span)
            new = edit.text
            if start == old_end and not new:
                return []
            text = before[:start] + new + before[old_end:]
        self._texts[uri] = text
        delta = len(new) - (old_end - start)
        out: list[OutcomeRecord] = []
        # Watches that exist before this change; one the change itself starts is already up to date.
        watches = [a for a in self._accepted.values() if a.uri == uri]
        if live is not None:
            out.extend(self._update_live(live, text, start, old_end, new, delta, now))
        for acc in watches:
            out.extend(self._update_accepted(acc, text, start, old_end, new, delta))
        self._forget_unwatched()
        return out

    def closed(self, uri: str) -> list[OutcomeRecord]:
        """The document was closed: nothing in it can still be accepted or edited."""
        out = self._release(self.clock())
        if self._live is not None and self._live.uri == uri:
            out.extend(self._end_live("expired"))
        text = self._texts.get(uri, "")
        for acc in [a for a in self._accepted.values() if a.uri == uri]:
            out.extend(self._finish_accepted(acc, text))
        self._forget_unwatched()
        return out

    def tick(self) -> list[OutcomeRecord]:
        """Apply the timeouts: held acceptances, expired suggestions, closed edit windows."""
        now = self.clock()
        out = self._release(now)
        if self._live is not None and now - self._live.shown_at >= self.expiry_s:
            out.extend(self._end_live("expired"))
        for acc in [a for a in self._accepted.values() if now >= a.until]:
            out.extend(self._finish_accepted(acc, self._texts.get(acc.uri, "")))
        self._forget_unwatched()
        return out

    def flush(self) -> list[OutcomeRecord]:
        """Decide everything now (on shutdown)."""
        out: list[OutcomeRecord] = []
        self._held.clear()  # returned already
        if self._live is not None:
            out.extend(self._end_live("expired"))
        for acc in list(self._accepted.values()):
            out.extend(self._finish_accepted(acc, self._texts.get(acc.uri, "")))
        self._forget_unwatched()
        return out

    @property
    def live_id(self) -> str | None:
        return self._live.suggestion_id if self._live else None

    # Internals --------------------------------------------------------------------------------

    def _release(self, now: float) -> list[OutcomeRecord]:
        """End the grace of typed acceptances: they stay "typed" (returned already, nothing to add)."""
        for sid in [sid for sid, held in self._held.items() if now >= held.release_at]:
            del self._held[sid]
        return []

    def _end_live(self, reason: str) -> list[OutcomeRecord]:
        """Close the live suggestion: a partial insertion by the editor counts as a partial accept."""
        live = self._live
        assert live is not None
        self._live = None
        if live.end > live.start and live.largest_step >= PARTIAL_STEP:
            part = self._texts[live.uri][live.start : live.end]
            return [self._outcome(live.suggestion_id, "accepted", "partial", part)]
        return [self._outcome(live.suggestion_id, "rejected", reason)]

    def _update_live(
        self, live: _Live, text: str, start: int, old_end: int, new: str, delta: int, now: float
    ) -> list[OutcomeRecord]:
        if old_end < live.start:
            live.start += delta
            live.end += delta
            return []
        if start > live.end:
            return []
        if start < live.start or old_end > live.end:
            return self._end_live("diverged")
        inserted = text[live.start : live.end + delta]
        if inserted.startswith(live.text):
            self._live = None
            end = live.start + len(live.text)
            line_start, line_end = _line_bounds(text, live.start, end)
            self._watch(live, line_start, line_end, text[line_start:line_end])
            record = self._outcome(live.suggestion_id, "accepted", "typed")
            self._held[live.suggestion_id] = _Held(record, now + COMMAND_GRACE_S)
            return [record]  # written ahead: a kill during the grace must not lose it
        if not live.text.startswith(inserted):
            return self._end_live("diverged")
        live.end += delta
        live.largest_step = max(live.largest_step, len(new))
        return []

    def _watch(self, live: _Live, line_start: int, line_end: int, statement: str) -> None:
        self._accepted[live.suggestion_id] = _Accepted(
            live.suggestion_id, live.uri, line_start, line_end, statement, self.clock() + self.edit_window_s
        )

    def _update_accepted(
        self, acc: _Accepted, text: str, start: int, old_end: int, new: str, delta: int
    ) -> list[OutcomeRecord]:
        pure_insert = start == old_end
        before = old_end < acc.line_start or (pure_insert and start == acc.line_start and new.endswith("\n"))
        after = start > acc.line_end or (pure_insert and start == acc.line_end and new.startswith("\n"))
        if before:
            acc.line_start += delta
            acc.line_end += delta
        if before or after:
            # The user moved on: a statement they changed is final now.
            return self._finish_accepted(acc, text, closing=False) if acc.touched else []
        acc.line_start, acc.line_end = _line_bounds(
            text, min(acc.line_start, start), max(acc.line_end, old_end) + delta
        )
        acc.touched = True
        return []

    def _finish_accepted(self, acc: _Accepted, text: str, *, closing: bool = True) -> list[OutcomeRecord]:
        """Decide an edit watch; a line now holding a different statement is the user's own fix.

        When the user merely moved to another line (``closing`` False) and the statement is unchanged,
        the watch goes on until its window closes.
        """
        final = text[acc.line_start : acc.line_end]
        edited = (
            acc.touched
            and bool(final.strip())
            and normalize_statement(final) != normalize_statement(acc.statement)
        )
        if edited or closing:
            self._accepted.pop(acc.suggestion_id, None)
        acc.touched = False
        if not edited:
            return []
        return [self._outcome(acc.suggestion_id, "edited", "edited", final.strip("\n"))]

    def _forget_unwatched(self) -> None:
        watched = {a.uri for a in self._accepted.values()}
        if self._live is not None:
            watched.add(self._live.uri)
        for uri in set(self._texts) - watched:
            del self._texts[uri]
