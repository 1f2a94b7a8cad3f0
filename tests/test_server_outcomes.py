"""The outcome tracker: every way a suggestion can end, driven with a fake clock and plain strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfix_engine.outcomes import COMMAND_GRACE_S, OutcomeTracker, text_diff
from hotfix_engine.store import Store
from hotfix_engine.store_records import SuggestionRecord

URI = "file:///work/a.py"
BEFORE = "def area(w, h):\n    return \nprint(area(2, 3))\n"
CURSOR = BEFORE.index("return ") + len("return ")
SUGGESTION = "w + h"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(clock: Clock) -> OutcomeTracker:
    t = OutcomeTracker(expiry_s=30.0, edit_window_s=60.0, clock=clock)
    assert t.shown("s1", URI, BEFORE, CURSOR, SUGGESTION) == []
    return t


def typed(text: str) -> str:
    return BEFORE[:CURSOR] + text + BEFORE[CURSOR:]


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
    tracker: OutcomeTracker, clock: Clock
) -> None:
    # Written ahead as "typed"; the command that usually follows finalises that record as "command".
    assert kinds(tracker.changed(URI, typed(SUGGESTION))) == [("accepted", "typed")]
    [final] = tracker.accept("s1")
    assert (final.kind, final.reason, final.replaces) == ("accepted", "command", "typed")
    clock.now += COMMAND_GRACE_S + 1
    assert tracker.tick() == []
    assert tracker.accept("s1") == []


def test_command_before_the_insertion_accepts(tracker: OutcomeTracker) -> None:
    assert kinds(tracker.accept("s1")) == [("accepted", "command")]
    assert tracker.changed(URI, typed(SUGGESTION)) == []


def test_typing_the_suggestion_out_accepts_it_as_typed(tracker: OutcomeTracker, clock: Clock) -> None:
    for n in range(1, len(SUGGESTION)):
        assert tracker.changed(URI, typed(SUGGESTION[:n])) == []
    assert kinds(tracker.changed(URI, typed(SUGGESTION))) == [("accepted", "typed")]
    clock.now += COMMAND_GRACE_S
    assert tracker.tick() == []


def test_partial_accept_by_the_editor_then_other_text(tracker: OutcomeTracker) -> None:
    assert tracker.changed(URI, typed("w + ")) == []  # a word-wise accept inserts several characters at once
    out = tracker.changed(URI, typed("w + 2"))
    assert kinds(out) == [("accepted", "partial")]
    assert out[0].final_text == "w + "


def test_typing_something_else_is_diverged(tracker: OutcomeTracker) -> None:
    assert tracker.changed(URI, typed("w")) == []  # one typed character matches, but that is not an accept
    assert kinds(tracker.changed(URI, typed("w*"))) == [("rejected", "diverged")]


def test_deleting_before_the_cursor_is_diverged(tracker: OutcomeTracker) -> None:
    text = BEFORE[: CURSOR - 1] + BEFORE[CURSOR:]
    assert kinds(tracker.changed(URI, text)) == [("rejected", "diverged")]


def test_edits_elsewhere_keep_the_suggestion_alive(tracker: OutcomeTracker) -> None:
    above = "# header\n" + BEFORE
    assert tracker.changed(URI, above) == []
    below = above + "x = 1\n"
    assert tracker.changed(URI, below) == []
    assert kinds(tracker.changed(URI, below.replace("return ", "return w + h"))) == [("accepted", "typed")]
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
    tracker: OutcomeTracker, clock: Clock
) -> None:
    tracker.accept("s1")
    tracker.changed(URI, typed(SUGGESTION))
    tracker.changed(URI, typed("w +h"))  # the user deletes a space, then rewrites the operator
    tracker.changed(URI, typed("w *h"))
    tracker.changed(URI, typed("w * h"))
    assert tracker.tick() == []  # still inside the window and still on that line
    out = tracker.changed(URI, typed("w * h") + "# moved on\n")
    assert kinds(out) == [("edited", "edited")]
    assert out[0].final_text == "    return w * h"


def test_edit_decided_when_the_window_closes(tracker: OutcomeTracker, clock: Clock) -> None:
    tracker.accept("s1")
    tracker.changed(URI, typed(SUGGESTION))
    tracker.changed(URI, typed("w * h"))
    clock.now += 61
    out = tracker.tick()
    assert kinds(out) == [("edited", "edited")]


def test_whitespace_changes_and_new_lines_are_not_edits(tracker: OutcomeTracker, clock: Clock) -> None:
    tracker.accept("s1")
    text = typed(SUGGESTION)
    tracker.changed(URI, text)
    tracker.changed(URI, typed("w+h"))  # the same statement, spaced differently
    end_of_line = text.index("\n", CURSOR)
    tracker.changed(URI, typed("w+h")[: end_of_line - 2] + "\n    x = 1" + typed("w+h")[end_of_line - 2 :])
    clock.now += 61
    assert tracker.tick() == []


def test_edits_after_the_window_are_not_pairs(tracker: OutcomeTracker, clock: Clock) -> None:
    tracker.accept("s1")
    tracker.changed(URI, typed(SUGGESTION))
    clock.now += 61
    assert tracker.tick() == []
    assert tracker.changed(URI, typed("w * h")) == []


def test_flush_decides_everything(tracker: OutcomeTracker) -> None:
    assert kinds(tracker.changed(URI, typed(SUGGESTION))) == [("accepted", "typed")]
    assert tracker.flush() == []  # the acceptance was returned already
    tracker.shown("s2", URI, BEFORE, CURSOR, "w * h")
    assert kinds(tracker.flush()) == [("rejected", "expired")]


def test_typed_accept_then_edit_is_an_edit(tracker: OutcomeTracker, clock: Clock) -> None:
    assert kinds(tracker.changed(URI, typed(SUGGESTION))) == [("accepted", "typed")]
    clock.now += COMMAND_GRACE_S
    assert tracker.tick() == []
    tracker.changed(URI, typed("w * h"))
    out = tracker.changed(URI, "x = 0\n" + typed("w * h"))  # an edit above: the user moved on
    assert kinds(out) == [("edited", "edited")]
    assert out[0].final_text == "    return w * h"


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
            for outcome in tracker.changed(URI, typed(SUGGESTION)):
                store.record_outcome(outcome)
            tracker.changed(URI, BEFORE)  # undone, ready for the next one; the watch is not an outcome
        for outcome in tracker.accept("t5"):
            store.record_outcome(outcome)
        # No tick, no flush: what a kill -9 leaves.
        rows = store._read("SELECT suggestion_id, kind, reason FROM outcomes ORDER BY id")
    assert [(r["suggestion_id"], r["kind"], r["reason"]) for r in rows] == [
        *((f"t{n}", "accepted", "typed") for n in range(5)),
        ("t5", "accepted", "command"),
    ]
