"""The secret corpus against redaction, and against everything the store, the logs and an export keep.

The end-to-end test types each snippet where a user would (before the cursor, in the suggestion,
after it, in an edit, in a pair), with ``record: all``, logs at DEBUG the way the server does, and
then greps the store's files, the export and the log for every secret value: none may be there.
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import pytest
from secret_corpus import Case, corpus, secrets_of

from hotfix_engine.outcomes import OutcomeTracker, TextChange
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.redact import redact
from hotfix_engine.store import Store
from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord

CASES = corpus()
HEADER = "import os\nimport requests\n\n\n"


def test_the_corpus_is_large_and_covers_every_category() -> None:
    assert len(CASES) >= 100
    assert len(secrets_of(CASES)) >= 100
    categories = {case.category for case in CASES}
    for needed in (
        "password",
        "http-auth",
        "ipv6",
        "aws",
        "gitlab",
        "slack",
        "stripe",
        "private-key",
        "pieces",
    ):
        assert needed in categories


def test_the_corpus_is_deterministic() -> None:
    assert [case.text for case in corpus()] == [case.text for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.category}" for i, c in enumerate(CASES)])
def test_no_secret_survives_redact(case: Case) -> None:
    redacted = redact(case.text)
    assert [s for s in case.secrets if s in redacted] == [], redacted


def _suggestion(sid: str, prefix: str, text: str, suffix: str) -> SuggestionRecord:
    return SuggestionRecord(
        sid, time.time(), "python", "file:///w/app.py", prefix, suffix, text, "tiny", None
    )


def _line_with(text: str, secret: str) -> str:
    start = text.rfind("\n", 0, text.index(secret)) + 1
    end = text.find("\n", start)
    return text[start : end if end >= 0 else len(text)]


def _record_case(store: Store, log: logging.Logger, i: int, case: Case) -> None:
    """Every place a user's text reaches the store, as the server reaches it."""
    text, line = case.text, _line_with(case.text, case.secrets[0])
    # The snippet as the suggestion, accepted and then edited (an edit pair), as in the server.
    store.record_suggestion(_suggestion(f"c{i}-text", HEADER, text, "\nmain()\n"))
    store.record_outcome(OutcomeRecord(f"c{i}-text", "accepted", "command"))
    store.record_outcome(OutcomeRecord(f"c{i}-text", "edited", "edited", line + "  # checked"))
    # Before the cursor (rejected) and after it (partially accepted).
    store.record_suggestion(_suggestion(f"c{i}-prefix", HEADER + text, "print('ok')", "\n"))
    store.record_outcome(OutcomeRecord(f"c{i}-prefix", "rejected", "diverged"))
    store.record_suggestion(_suggestion(f"c{i}-suffix", HEADER, "x = 1\n", text))
    store.record_outcome(OutcomeRecord(f"c{i}-suffix", "accepted", "partial", line))
    # A pair file's pair, with the secret in every field.
    store.add_pairs(
        [
            BugFixPair(
                HEADER + text, line, line + "  # rotated", text, id=f"p{i}", source="import", tests=text
            )
        ],
        "import",
    )
    # What the server logs: learnt pairs, dropped suggestions, protocol traffic at -vv.
    for stored in store.pairs():
        if stored.pair.id.startswith(f"edit-c{i}-"):
            log.info("learnt an edit pair: %r -> %r", stored.pair.buggy.strip(), stored.pair.fixed.strip())
    log.debug("suggestion dropped by filters: %r", text)
    log.debug(
        "Sending data: %s",
        json.dumps({"jsonrpc": "2.0", "id": i, "result": {"items": [{"insertText": text}]}}),
    )
    log.info("document text: %s", text)


def _type_in_pieces(store: Store, i: int, case: Case) -> None:
    """A secret typed over several edits: each piece is one accepted suggestion, then the line is edited."""
    tracker = OutcomeTracker(edit_window_s=60.0)
    uri, document = "file:///w/settings.py", case.pieces[0]
    for k, piece in enumerate(case.pieces[1:], start=1):
        sid = f"pieces{i}-{k}"
        store.record_suggestion(_suggestion(sid, document, piece, ""))
        outcomes = tracker.shown(sid, uri, document, len(document), piece)
        document += piece
        outcomes += tracker.changed(uri, [TextChange(document)]) + tracker.accept(sid)
        for outcome in outcomes:
            store.record_outcome(outcome)
    # The user edits the finished line (appends a comment): an edited outcome with the whole secret.
    document = document.rstrip("\n") + "  # rotate monthly\n"
    whole = tracker.changed(uri, [TextChange(document)]) + tracker.changed(uri, [TextChange(document + "\n")])
    for outcome in whole + tracker.flush():
        store.record_outcome(outcome)


def _found(haystack: bytes, secrets: list[str]) -> list[str]:
    found = []
    for secret in secrets:
        forms = {secret.encode(), json.dumps(secret)[1:-1].encode(), repr(secret)[1:-1].encode()}
        if any(form in haystack for form in forms):
            found.append(secret)
    return found


def test_store_logs_and_export_keep_no_secret(isolated_home: Path, tmp_path: Path) -> None:
    from hotfix_engine.cli import setup_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    log_file = tmp_path / "server.log"
    setup_logging(2, str(log_file))
    log = logging.getLogger("hotfix_server.runtime")
    try:
        with Store.open(isolated_home, record="all") as store:
            for i, case in enumerate(CASES):
                if case.pieces:
                    _type_in_pieces(store, i, case)
                else:
                    _record_case(store, log, i, case)
            export = io.StringIO()
            assert store.export_pairs(export) > len(CASES)
            counts = store.counts()
    finally:
        for handler in root.handlers[:]:
            handler.close()
        root.handlers[:], root.level = saved
    assert counts["edited"] >= len(CASES) - 4 and counts["pairs"] >= len(CASES)
    secrets = secrets_of(CASES)
    stored = b"".join(p.read_bytes() for p in isolated_home.iterdir() if p.name.startswith("store.sqlite3"))
    leaks = {
        "store": _found(stored, secrets),
        "export": _found(export.getvalue().encode(), secrets),
        "log": _found(log_file.read_bytes(), secrets),
    }
    assert leaks == {"store": [], "export": [], "log": []}, {k: len(v) for k, v in leaks.items()}
