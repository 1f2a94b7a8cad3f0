"""What the store keeps of the user's code: a bounded window around the cursor, redacted as one text.

Only the windows that training, the gate and evaluation read are kept (STORED_PREFIX_CHARS before
the cursor, STORED_SUFFIX_CHARS after), and nothing is kept unredacted: e-mail addresses, IPs and
secrets become placeholders. Redaction runs on the user's machine, before anything reaches a
backend, when a record is written, when an old store is upgraded (store_schema.py) and when pairs
are exported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hotfix_engine.pairs import BugFixPair
from hotfix_engine.redact import redact, redact_parts

# Code kept around the cursor. The most any consumer of the store reads is the gate's and evaluation's
# prompt, 1536 tokens of a pair's prefix (evaluation.sampling.DEFAULT_PROMPT_TOKENS): 3.7 characters
# a token with Gemma's tokenizer on the standard library, 4.7 at most. Training reads 64 tokens.
STORED_PREFIX_CHARS = 8192
# After the cursor: the rest of its line (edit and rule pairs end their buggy line with it) and
# about the 20 lines a fill-in-the-middle prompt reads (prompts.SUFFIX_LINES); nothing reads more.
STORED_SUFFIX_CHARS = 2048
# Redaction reads this far beyond each window, so that a secret the window cuts (a key block whose
# BEGIN line lies just outside it; an RSA-4096 key is some 3,300 characters) is still recognised.
REDACT_MARGIN = 8192


def prefix_window(text: str) -> str:
    """The end of ``text`` within STORED_PREFIX_CHARS, from a line start (as prompts.tail_tokens cuts).

    A line longer than the whole window is cut where the window starts: bounded beats whole.
    """
    if len(text) <= STORED_PREFIX_CHARS:
        return text
    start = len(text) - STORED_PREFIX_CHARS
    newline = text.find("\n", start - 1)
    return text[newline + 1 if newline >= 0 else start :]


def suffix_window(text: str) -> str:
    """The start of ``text`` within STORED_SUFFIX_CHARS, up to the end of a line."""
    if len(text) <= STORED_SUFFIX_CHARS:
        return text
    newline = text.rfind("\n", 0, STORED_SUFFIX_CHARS)
    return text[: newline + 1 if newline >= 0 else STORED_SUFFIX_CHARS]


def redact_document(prefix: str, middle: Sequence[str], suffix: str) -> tuple[str, list[str], str]:
    """Redact the code before the cursor, what is in between and the code after it as one text.

    As one: a secret typed partly before the cursor and partly in the suggestion (or split by an
    edit) is only recognised whole. Only REDACT_MARGIN beyond each window is read, so a secret cut
    by the window (a key block whose BEGIN line lies just outside) is still seen, and a long file
    costs no more than a short one. The prefix and suffix returned are at most that long.
    """
    head = prefix[-(STORED_PREFIX_CHARS + REDACT_MARGIN) :]
    tail = suffix[: STORED_SUFFIX_CHARS + REDACT_MARGIN]
    parts = redact_parts(head, *middle, tail)
    return parts[0], parts[1:-1], parts[-1]


def redact_final(prefix: str, final_text: str) -> str:
    """The line a suggestion became, redacted in the context of the code before it.

    The whole prefix, not only up to its last line start: its last line may be all a placeholder
    says of a secret the final text completes; repeating the line's start does no harm.
    """
    base = prefix[-REDACT_MARGIN:]
    return redact_parts(base if base.endswith("\n") else base + "\n", final_text)[1]


def redact_matches(matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pattern matches (as JSON) with their message and fix redacted: both quote the user's code."""
    return [
        {
            **m,
            "message": redact(m.get("message") or ""),
            "fix": None if m.get("fix") is None else redact(m["fix"]),
        }
        for m in matches
    ]


def redact_pair(pair: BugFixPair) -> BugFixPair:
    """The pair with its text redacted: each statement in its place between the prefix and suffix."""
    prefix, (buggy, _), suffix = redact_document(pair.prefix, [pair.buggy, "\n"], pair.suffix)
    prefix, (fixed, _), suffix = redact_document(prefix, [pair.fixed, "\n"], suffix)
    return BugFixPair(
        prefix=prefix,
        buggy=buggy,
        fixed=fixed,
        suffix=suffix,
        id=pair.key,
        source=pair.source,
        pattern=pair.pattern,
        tests=redact(pair.tests),
        extra=pair.extra,
    )
