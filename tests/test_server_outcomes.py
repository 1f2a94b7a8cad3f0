"""The outcome tracker: every way a suggestion can end, driven with a fake clock and plain strings.

Each case runs twice: with the changes as an incremental client sends them (what the server passes
on), and as whole documents (a client with full sync), where the tracker finds each change itself.
Both must decide the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfix_engine.outcomes import COMMAND_GRACE_S, OutcomeTracker, TextChange, text_diff
from hotfix_engine.store import Store
from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord

URI = "file:///work/a.py"
BEFORE = "def area(w, h):\n    return \nprint(area(2, 3))\n"
CURSOR = BEFORE.index("return ") + len("return ")
SUGGESTION = "w + h"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Document:
    """The editor's copy of the document at URI: each edit is told to the tracker as the client would."""

    def __init__(self, tracker: OutcomeTracker, whole: bool) -> None:
        self.tracker, self.whole, self.text = tracker, whole, BEFORE

    def replace(self, start: int, end: int, new: str) -> list[OutcomeRecord]:
        self.text = self.text[:start] + new + self.text[end:]
        return self.tracker.changed(
            URI, [TextChange(self.text) if self.whole else TextChange(new, (start, end))]
        )

    def insert(self, at: int, new: str) -> list[OutcomeRecord]:
        return self.replace(at, at, new)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(clock: Clock) -> OutcomeTracker:
    t = OutcomeTracker(expiry_s=30.0, edit_window_s=60.0, clock=clock)
    assert t.shown("s1", URI, BEFORE, CURSOR, SUGGESTION) == []
    return t


@pytest.fixture(params=["edits", "whole documents"])
def doc(request: pytest.FixtureRequest, tracker: OutcomeTracker) -> Document:
    return Document(tracker, whole=request.param == "whole documents")


def kinds(outcomes) -> list[tuple[str, str]]:
    return [(o.kind, o.reason) for o in outcomes]


def test_text_diff_finds_the_single_edit() -> None:
    assert text_diff("abcdef", "abXYef") == (2, 4, "XY")
    assert text_diff("abc", "abc!") == (3, 3, "!")
    assert text_diff("a))b", "a)))b", near=1) == (1, 1, ")")  # ambiguous: placed at the cursor
    assert text_diff("a))b", "a)))b") == (3, 3, ")")
    big = "x" * 300_000
    assert text_diff(big + "a" + big, big + "bc" + big) == (300_000, 300_001, "bc")


def test_command_accepts_once_even_after_the_editor_inserted_the_text(
    tracker: OutcomeTracker, doc: Document, clock: Clock
) -> None:
    # Written ahead as "typed"; the command that usually follows finalises that record as "command".
    assert kinds(doc.insert(CURSOR, SUGGESTION)) == [("accepted", "typed")]
    [final] = tracker.accept("s1")
    assert (final.kind, final.reason, final.replaces) == ("accepted", "command", "typed")
    clock.now += COMMAND_GRACE_S + 1
    assert tracker.tick() == []
    assert tracker.accept("s1") == []


def test_command_before_the_insertion_accepts(tracker: OutcomeTracker, doc: Document) -> None:
    assert kinds(tracker.accept("s1")) == [("accepted", "command")]
    assert doc.insert(CURSOR, SUGGESTION) == []


def test_typing_the_suggestion_out_accepts_it_as_typed(
    tracker: OutcomeTracker, doc: Document, clock: Clock
) -> None:
    for n in range(len(SUGGESTION) - 1):
        assert doc.insert(CURSOR + n, SUGGESTION[n]) == []
    assert kinds(doc.insert(CURSOR + len(SUGGESTION) - 1, SUGGESTION[-1])) == [("accepted", "typed")]
    clock.now += COMMAND_GRACE_S
    assert tracker.tick() == []


def test_partial_accept_by_the_editor_then_other_text(doc: Document) -> None:
    assert doc.insert(CURSOR, "w + ") == []  # a word-wise accept inserts several characters at once
    out = doc.insert(CURSOR + 4, "2")
    assert kinds(out) == [("accepted", "partial")]
    assert out[0].final_text == "w + "


def test_typing_something_else_is_diverged(doc: Document) -> None:
    assert doc.insert(CURSOR, "w") == []  # one typed character matches, but that is not an accept
    assert kinds(doc.insert(CURSOR + 1, "*")) == [("rejected", "diverged")]


def test_deleting_before_the_cursor_is_diverged(doc: Document) -> None:
    assert kinds(doc.replace(CURSOR - 1, CURSOR, "")) == [("rejected", "diverged")]


def test_edits_elsewhere_keep_the_suggestion_alive(tracker: OutcomeTracker, doc: Document) -> None:
    assert doc.insert(0, "# header\n") == []
    assert doc.insert(len(doc.text), "x = 1\n") == []
    assert kinds(doc.insert(CURSOR + len("# header\n"), "w + h")) == [("accepted", "typed")]
    assert kinds(tracker.accept("s1")) == [("accepted", "command")]


def test_a_newer_suggestion_supersedes(tracker: OutcomeTracker) -> None:
    assert kinds(tracker.shown("s2", URI, BEFORE, CURSOR, "w * h")) == [("rejected", "superseded")]
    assert tracker.live_id == "s2"


def test_dismissed_and_expired(tracker: OutcomeTracker, clock: Clock) -> None:
    assert tracker.reject("other") == []
    assert kinds(tracker.reject("s1")) == [("rejected", "dismissed")]
    tracker.shown("s2", URI, BEFORE, CURSOR, "w * h")
    clock.now += 29
    assert tracker.tick() == []
    clock.now += 2
    assert kinds(tracker.tick()) == [("rejected", "expired")]


def test_closing_the_document_expires_it(tracker: OutcomeTracker) -> None:
    assert kinds(tracker.closed(URI)) == [("rejected", "expired")]


def test_accepted_line_edited_into_another_statement_is_an_edit(
    tracker: OutcomeTracker, doc: Document, clock: Clock
) -> None:
    tracker.accept("s1")
    doc.insert(CURSOR, SUGGESTION)
    doc.replace(CURSOR + 3, CURSOR + 4, "")  # the user deletes a space, then rewrites the operator
    doc.replace(CURSOR + 2, CURSOR + 3, "*")
    doc.insert(CURSOR + 3, " ")
    assert tracker.tick() == []  # still inside the window and still on that line
    out = doc.insert(len(doc.text), "# moved on\n")
    assert kinds(out) == [("edited", "edited")]
    assert out[0].final_text == "    return w * h"


def test_edit_decided_when_the_window_closes(tracker: OutcomeTracker, doc: Document, clock: Clock) -> None:
    tracker.accept("s1")
    doc.insert(CURSOR, SUGGESTION)
    doc.replace(CURSOR + 2, CURSOR + 3, "*")
    clock.now += 61
    out = tracker.tick()
    assert kinds(out) == [("edited", "edited")]


def test_whitespace_changes_and_new_lines_are_not_edits(
    tracker: OutcomeTracker, doc: Document, clock: Clock
) -> None:
    tracker.accept("s1")
    doc.insert(CURSOR, SUGGESTION)
    doc.replace(CURSOR + 1, CURSOR + 4, "+")  # the same statement, spaced differently: w+h
    doc.insert(doc.text.index("\n", CURSOR), "\n    x = 1")
    clock.now += 61
    assert tracker.tick() == []


def test_edits_after_the_window_are_not_pairs(tracker: OutcomeTracker, doc: Document, clock: Clock) -> None:
    tracker.accept("s1")
    doc.insert(CURSOR, SUGGESTION)
    clock.now += 61
    assert tracker.tick() == []
    assert doc.replace(CURSOR + 2, CURSOR + 3, "*") == []


def test_flush_decides_everything(tracker: OutcomeTracker, doc: Document) -> None:
    assert kinds(doc.insert(CURSOR, SUGGESTION)) == [("accepted", "typed")]
    assert tracker.flush() == []  # the acceptance was returned already
    tracker.shown("s2", URI, BEFORE, CURSOR, "w * h")
    assert kinds(tracker.flush()) == [("rejected", "expired")]


def test_typed_accept_then_edit_is_an_edit(tracker: OutcomeTracker, doc: Document, clock: Clock) -> None:
    assert kinds(doc.insert(CURSOR, SUGGESTION)) == [("accepted", "typed")]
    clock.now += COMMAND_GRACE_S
    assert tracker.tick() == []
    doc.replace(CURSOR + 2, CURSOR + 3, "*")
    out = doc.insert(0, "x = 0\n")  # an edit above: the user moved on
    assert kinds(out) == [("edited", "edited")]
    assert out[0].final_text == "    return w * h"


def test_several_changes_in_one_notification_apply_in_order(tracker: OutcomeTracker) -> None:
    """One didChange may carry several changes, each in the text the previous one left."""
    out = tracker.changed(
        URI, [TextChange("# header\n", (0, 0)), TextChange(SUGGESTION, (CURSOR + 9, CURSOR + 9))]
    )
    assert kinds(out) == [("accepted", "typed")]
    # The watch on the accepted line followed the header: an edit there is the user's fix.
    at = CURSOR + 9 + 2
    out = tracker.changed(URI, [TextChange("*", (at, at + 1)), TextChange("x = 0\n", (0, 0))])
    assert kinds(out) == [("edited", "edited")] and out[0].final_text == "    return w * h"


def test_changes_to_a_document_that_is_not_watched_are_ignored(tracker: OutcomeTracker) -> None:
    assert tracker.changed("file:///work/other.py", [TextChange("x", (0, 5))]) == []
    assert tracker.changed("file:///work/other.py", [TextChange("anything")]) == []
    assert tracker.live_id == "s1"


def test_typed_acceptances_are_stored_as_they_happen_so_a_kill_loses_none(
    clock: Clock, isolated_home: Path
) -> None:
    """Each acceptance reaches the store when it is decided, not after the command's grace: a process
    killed within the grace (nothing flushed) keeps them all; a late command finalises the same row."""
    tracker = OutcomeTracker(clock=clock)
    with Store.open(isolated_home, record="all") as store:
        for n in range(6):
            sid = f"t{n}"
            store.record_suggestion(
                SuggestionRecord(sid, clock(), "python", URI, BEFORE[:CURSOR], "", SUGGESTION, "m", None)
            )
            tracker.shown(sid, URI, BEFORE, CURSOR, SUGGESTION)
            for outcome in tracker.changed(URI, [TextChange(SUGGESTION, (CURSOR, CURSOR))]):
                store.record_outcome(outcome)
            # Undone, ready for the next one; the watch is not an outcome.
            tracker.changed(URI, [TextChange("", (CURSOR, CURSOR + len(SUGGESTION)))])
        for outcome in tracker.accept("t5"):
            store.record_outcome(outcome)
        # No tick, no flush: what a kill -9 leaves.
        rows = store.query("SELECT suggestion_id, kind, reason FROM outcomes ORDER BY id")
    assert [(r["suggestion_id"], r["kind"], r["reason"]) for r in rows] == [
        *((f"t{n}", "accepted", "typed") for n in range(5)),
        ("t5", "accepted", "command"),
    ]
