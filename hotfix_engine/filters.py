"""Suggestions not worth showing: empty, repeated, degenerate, or already in the file."""

from __future__ import annotations

import re

from hotfix_engine.pairs import normalize_statement

# A chunk that starts with a visible character: runs of indentation are not degenerate.
_REPEATED_CHUNK = re.compile(r"(\S.{1,23}?)\1{5,}", re.DOTALL)


def trim_overlap_with_line_after(text: str, line_after: str) -> str:
    """Drop what the model wrote that the line already has after the cursor (``)`` or ``):``)."""
    tail = line_after.strip()
    if not tail or "\n" in text:
        return text
    stripped = text.rstrip()
    if stripped.endswith(tail):
        return stripped[: -len(tail)]
    return text


def drop_rewrite_of_following_lines(text: str, suffix: str) -> str:
    """Cut the suggestion where it starts repeating the code below the cursor."""
    following = [normalize_statement(line) for line in suffix.split("\n")[1:] if line.strip()][:1]
    if not following:
        return text
    lines = text.split("\n")
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() and normalize_statement(line) == following[0]:
            return "\n".join(lines[:index]).rstrip()
    return text


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def stuttering_name(text: str, prefix: str) -> str | None:
    """A new name in ``text`` that repeats its own words: ``items_by_item_by_item``,
    ``InvalidRequestResponseResponseError``, ``timeout_seconds_per_request_timeout``.

    Small models fall into this loop, adapters trained on a few pairs more so. A word repeated next to
    itself, a run of two or more words repeated, or a name that is an existing name plus one of that
    name's own words again, is kept only if the user's code already has that name.
    """
    known = set(_IDENTIFIER.findall(prefix[-4000:]))
    for name in _IDENTIFIER.findall(text):
        if name in known:
            continue
        words = [w.lower() for w in _WORD.findall(name)]
        if any(a == b and len(a) > 1 for a, b in zip(words, words[1:], strict=False)):
            return name
        for size in (2, 3):
            for i in range(len(words) - 2 * size + 1):
                if words[i : i + size] == words[i + size : i + 2 * size]:
                    return name
        for other in known:
            if len(other) > 3 and name.startswith(other) and name != other:
                extra = [w.lower() for w in _WORD.findall(name[len(other) :])]
                if extra and set(extra) <= {w.lower() for w in _WORD.findall(other)}:
                    return name
    return None


def is_degenerate(text: str) -> bool:
    stripped = text.strip()
    if not stripped:
        return True
    if "\ufffd" in stripped or any(ord(c) < 32 and c not in "\t\n" for c in stripped):
        return True
    if _REPEATED_CHUNK.search(stripped):
        return True
    lines = [line.strip() for line in stripped.split("\n") if line.strip()]
    return len(lines) >= 3 and len(set(lines)) == 1


def repeats_context(text: str, prefix: str, suffix: str) -> bool:
    """The suggestion only repeats the line above, or the text right after the cursor."""
    stripped = text.strip()
    line_before = prefix.rsplit("\n", 1)[-1]
    above = prefix[: len(prefix) - len(line_before)].rstrip("\n").rsplit("\n", 1)[-1]
    if (
        "\n" not in stripped
        and not line_before.strip()
        and normalize_statement(stripped) == normalize_statement(above)
    ):
        return True
    return bool(suffix.strip()) and suffix.lstrip().startswith(stripped)


def clean_suggestion(text: str, prefix: str, suffix: str) -> str | None:
    """The text worth showing, or None when nothing is."""
    line_after = suffix.split("\n", 1)[0]
    text = trim_overlap_with_line_after(text, line_after)
    text = drop_rewrite_of_following_lines(text, suffix).rstrip()
    if is_degenerate(text) or repeats_context(text, prefix, suffix) or stuttering_name(text, prefix):
        return None
    return text
