"""Suggestions not worth showing: empty, repeated, degenerate, broken, or already in the file.

A model stuck in a loop (an adapter trained on a few pairs more so) repeats a line, a block, a name
that grows by one of its own words, or empty docstrings, until the token budget ends. Where the loop
starts after some useful lines the suggestion is cut there, as Tabby's and Continue's
post-processing do; where it starts on the first line nothing is shown.
"""

from __future__ import annotations

import re

from hotfix_engine.pairs import normalize_statement
from hotfix_engine.stopping import indentation
from hotfix_engine.well_formed import breaks_syntax, is_python

# A chunk that starts with a visible character: runs of indentation are not degenerate.
_REPEATED_CHUNK = re.compile(r"(\S.{1,23}?)\1{5,}", re.DOTALL)
LOOPING_PIECE_CHARS = 10  # a piece this long or longer, four times over at the end of a line, is a loop
_SEPARATOR_CHARS = frozenset("-=*#~_.+/\\ ")
_LETTER = re.compile(r"[A-Za-z_]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")
# A line that is only empty strings (six double quotes, ``''``, the same with spaces between).
_EMPTY_STRINGS = re.compile(r"(?:[rRbBuUfF]{0,2}(\"{3}|'{3}|\"|')\s*\1\s*)+;?")
# An empty comment; a longer run of ``#`` or ``/`` is a banner.
_EMPTY_COMMENT = {True: re.compile(r"#{1,3}"), False: re.compile(r"(?:/{2,3}|#{1,3}|--|/\*+\s*\*+/)")}
CONTEXT_BLOCK_LINES = 3  # how many lines above the cursor a suggestion may not simply repeat


def trim_overlap_with_line_after(text: str, line_after: str) -> str:
    """Drop what the model wrote that the line already has after the cursor (``)`` or ``):``)."""
    tail = line_after.strip()
    if not tail or "\n" in text:
        return text
    stripped = text.rstrip()
    if stripped.endswith(tail):
        return stripped[: -len(tail)]
    return text


def _next_line(suffix: str) -> str:
    """The first non-blank line below the cursor's, found without splitting the rest of the file."""
    start = suffix.find("\n") + 1
    while start:
        end = suffix.find("\n", start)
        line = suffix[start:] if end < 0 else suffix[start:end]
        if line.strip():
            return line
        start = end + 1
    return ""


def drop_rewrite_of_following_lines(text: str, suffix: str) -> str:
    """Cut the suggestion where it starts repeating the code below the cursor."""
    following = _next_line(suffix)
    if not following or "\n" not in text:
        return text
    key = _line_key(following)  # with its indentation: ``else:`` one level out is new code
    lines = text.split("\n")
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() and _line_key(line) == key:
            return "\n".join(lines[:index]).rstrip()
    return text


_IDENTIFIER = re.compile(r"(?<!\w)[A-Za-z_]\w*")  # not the ``xFFFF`` of ``0xFFFF``
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


class _Names:
    """The names of the code around the cursor, read only if a check needs them, plus those met since."""

    def __init__(self, prefix: str, suffix: str = "") -> None:
        self.prefix, self.suffix = prefix, suffix
        self.met: set[str] = set()
        self._around: set[str] | None = None

    def __contains__(self, name: str) -> bool:
        if name in self.met:
            return True
        if self._around is None:
            self._around = set(_IDENTIFIER.findall(self.prefix[-4000:]))
            self._around.update(_IDENTIFIER.findall(self.suffix[:2000]))
        return name in self._around


def _stutters(name: str, known: _Names) -> bool:
    """``name`` repeats its own words, or is a known name with some of that name's words put in again."""
    # Case counts: ``aeiouAEIOU`` is two alphabets, ``ResponseResponse`` one word twice.
    spans = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(name)]
    words = [word for _, _, word in spans]
    # Words of three or more letters: ``ro_ro`` (a locale) and ``64_64`` (a size) are real names.
    if any(a == b and len(a) > 2 and not a.isdigit() for a, b in zip(words, words[1:], strict=False)):
        return True
    for size in (2, 3):
        for i in range(len(words) - 2 * size + 1):
            run = words[i : i + size]
            # A word of three or more letters in the run: ``f0f0`` in a colour or ``x1_x1`` are not loops.
            if run == words[i + size : i + 2 * size] and any(len(w) > 2 and not w.isdigit() for w in run):
                return True
    if len(set(words)) == len(words):
        return False
    # A growing name: take one to three words out and an existing name of two or more words is left,
    # and the words taken out are that name's own (``timeout_seconds_per_request`` + ``timeout``).
    for start in range(len(spans)):
        for stop in range(start + 1, min(start + 4, len(spans) + 1)):
            rest = words[:start] + words[stop:]
            if len(rest) < 2 or not set(words[start:stop]) <= set(rest):
                continue
            if start == 0:  # cut from the first word's start to the next kept word's start
                base = name[: spans[0][0]] + name[spans[stop][0] :]
            else:  # cut from the end of the last kept word to the end of the last word taken out
                base = name[: spans[start - 1][1]] + name[spans[stop - 1][1] :]
            if len(base) > 3 and base in known:
                return True
    return False


def _stuttering_names(text: str, known: _Names) -> str | None:
    """The first new name in ``text`` that stutters; the names met on the way count as known after."""
    for name in _IDENTIFIER.findall(text):
        if name not in known.met and _stutters(name, known) and name not in known:
            return name
        known.met.add(name)
    return None


def stuttering_name(text: str, prefix: str, suffix: str = "") -> str | None:
    """A new name in ``text`` that repeats its own words: ``items_by_item_by_item``,
    ``InvalidRequestResponseResponseError``, ``timeout_seconds_per_request_timeout``.

    Small models fall into this loop, adapters trained on a few pairs more so. A word repeated next to
    itself, a run of two or three words repeated, or a name that is an existing name with some of that
    name's own words put in again, is kept only if the user's code already has that name.
    """
    return _stuttering_names(text, _Names(prefix, suffix))


def _is_padding(piece: str, run: int) -> bool:
    """Separator runs (``# -----``, ``'=' * 40`` written out) and a round number are not loops."""
    if set(piece) <= _SEPARATOR_CHARS:
        return True
    return piece.isdigit() and len(set(piece)) == 1 and run <= 16


def _looping_chunk(text: str) -> int | None:
    """Where a short piece starts repeating six times or more, or None."""
    for match in _REPEATED_CHUNK.finditer(text):
        if not _is_padding(match.group(1), len(match.group(0))):
            return match.start()
    return None


def _ends_in_loop(line: str, written: int) -> bool:
    """The line ends in one piece four times over, and the model wrote at least one of them
    (Tabby's removeLineEndsWithRepetition)."""
    line = line.rstrip()
    for size in range(LOOPING_PIECE_CHARS, min(len(line) // 4, written) + 1):
        piece = line[-size:]
        if line.endswith(piece * 4) and not piece[0].isspace() and not _is_padding(piece, 4 * size):
            return True
    return False


def _garbled(text: str) -> bool:
    """Undecodable bytes or control characters (a tab and a CRLF line end are text)."""
    return _CONTROL.search(text) is not None


def is_degenerate(text: str) -> bool:
    """Nothing, undecodable bytes, a piece repeated six times over, or one line three times over."""
    stripped = text.strip()
    if not stripped or _garbled(stripped) or _looping_chunk(stripped) is not None:
        return True
    lines = [line.strip() for line in stripped.split("\n") if line.strip()]
    return len(lines) >= 3 and len(set(lines)) == 1


def _line_key(line: str) -> tuple[str, str]:
    """A line compared with another: its indentation counts (``return x`` one level out is new code)."""
    body = line.lstrip()
    return line[: len(line) - len(body)], normalize_statement(body)


def _trivial(key: tuple[str, str]) -> bool:
    """Too short, without a name, or one item of a list, to call a repeat of it a loop: ``i += 1``,
    ``)``, ``[0, 0, 0],``, and ``channels,`` given twice as in and out channels."""
    body = key[1]
    if len(body) < 8 or not _LETTER.search(body):
        return True
    return body.endswith(",") and "=" not in body and ":" not in body


def _last_lines(prefix: str, count: int) -> tuple[list[tuple[str, str]], str]:
    """Keys of the last ``count`` non-blank lines above the cursor's line, and the text before the cursor."""
    newline = prefix.rfind("\n")
    line_before = prefix[newline + 1 :]
    keys: list[tuple[str, str]] = []
    for line in reversed(prefix[max(0, newline - 2000) : max(0, newline)].split("\n")):
        if line.strip():
            keys.append(_line_key(line))
            if len(keys) == count:
                break
    return keys[::-1], line_before


def _first_repeat(rows: list[tuple[str, str]]) -> int | None:
    """Where a line, or a block of lines, starts over right after itself (at its second copy).

    Short lines (``i += 1``, ``pass``) count from a third copy; data rows (``[0, 0, 0],``) never.
    """
    for cut in range(1, len(rows)):
        for size in range(1, cut + 1):
            start = cut - size
            block = rows[start:cut]
            if rows[start] != rows[cut] or block != rows[cut : cut + size]:
                continue
            if not all(_trivial(key) for key in block):
                return cut
            if rows[cut + size : cut + 2 * size] == block and any(_LETTER.search(key[1]) for key in block):
                return cut
    return None


def _is_empty_line(line: str, python: bool) -> bool:
    """An empty docstring or string, or a comment with nothing in it (Continue's avoidEmptyComments)."""
    body = line.strip()
    return bool(_EMPTY_STRINGS.fullmatch(body) or _EMPTY_COMMENT[python].fullmatch(body))


def _rows(text: str, prefix: str) -> tuple[list[str], list[str], list[int], list[tuple[str, str]]]:
    """The suggestion's lines as written, as they will read (the first with the text before the
    cursor), the indexes of the non-blank ones and their keys."""
    line_before = prefix[prefix.rfind("\n") + 1 :]
    parts = text.split("\n")
    lines = [line_before + parts[0], *parts[1:]]
    indexes = [i for i, line in enumerate(lines) if line.strip()]
    return parts, lines, indexes, [_line_key(lines[i]) for i in indexes]


def _repeats_above(prefix: str, parts: list[str], indexes: list[int], rows: list[tuple[str, str]]) -> bool:
    """The suggestion opens with the line, or the lines, just above the cursor again."""
    above, line_before = _last_lines(prefix, CONTEXT_BLOCK_LINES)
    if not rows:
        return False
    line_start = indexes[0] > 0 or not line_before.strip()
    if not parts[0].strip() and line_before.strip():
        # The model wrote nothing on the cursor's line: that line is the user's, one more line above.
        above, rows, line_start = [*above, rows[0]][-CONTEXT_BLOCK_LINES:], rows[1:], True
    for size in range(1, min(len(rows), len(above)) + 1):
        # One short line typed at a fresh line is still a plain copy; mid-line it may be real code.
        copy = (size == 1 and line_start) or not all(_trivial(key) for key in rows[:size])
        if copy and rows[:size] == above[len(above) - size :]:
            return True
    return False


def cut_loops(text: str, prefix: str, suffix: str = "", language: str | None = None) -> str:
    """``text`` up to where it starts looping; empty when the loop starts on its first line.

    Looping is a line or block written again right after itself, or again after the same lines above
    the cursor (Tabby's removeRepetitiveLines and removeRepetitiveBlocks, Continue's
    stopAtRepeatingLines and stopAtSimilarLine, made exact so that ``self.x = x`` / ``self.y = y``
    pass); two or more empty docstrings or comments, or one at the end; a piece repeated to the end
    of a line; or a name that stutters.
    """
    parts, lines, indexes, rows = _rows(text, prefix)
    if not rows:
        return text
    if _repeats_above(prefix, parts, indexes, rows):
        return ""
    cut = len(lines)
    repeat = _first_repeat(rows)
    if repeat is not None:
        cut = indexes[repeat]
    python = is_python(language)
    empty = [_is_empty_line(lines[i], python) for i in indexes]
    for row, index in enumerate(indexes):
        if index >= cut:
            break
        if empty[row] and (row + 1 == len(indexes) or empty[row + 1]):
            cut = index
            break
    chunk = _looping_chunk(text)
    if chunk is not None:
        cut = min(cut, text.count("\n", 0, chunk))
    known = _Names(prefix, suffix)
    for index in range(min(cut, len(lines))):
        part = parts[index]
        if part.strip() and (_ends_in_loop(lines[index], len(part)) or _stuttering_names(part, known)):
            cut = index
            break
    if cut >= len(lines):
        return text
    return "\n".join(parts[:cut]).rstrip()


def _repeats_suffix(text: str, suffix: str, lines: list[str], indexes: list[int]) -> bool:
    """The suggestion is what the file already has right after the cursor.

    A copy of the line below one level in or out is new code: ``return False`` inside an ``if``
    above the function's own ``return False``.
    """
    stripped = text.strip()
    after = suffix[: len(stripped) + 4000]
    if not after.lstrip().startswith(stripped) or not after.strip():
        return False
    newline = after.find("\n")
    if newline < 0 or after[:newline].strip() or not indexes:
        return True  # the text right after the cursor, on its line
    return indentation(_next_line(suffix)) == indentation(lines[indexes[0]])


def repeats_context(text: str, prefix: str, suffix: str) -> bool:
    """The suggestion only repeats the lines above, or the text right after the cursor."""
    parts, lines, indexes, rows = _rows(text, prefix)
    return _repeats_above(prefix, parts, indexes, rows) or _repeats_suffix(text, suffix, lines, indexes)


def clean_suggestion(text: str, prefix: str, suffix: str, *, language: str | None = None) -> str | None:
    """The text worth showing, or None when nothing is.

    ``language`` is the editor's language id: Python suggestions are parsed in place; without one,
    only brackets are checked.
    """
    newline = suffix.find("\n")
    text = trim_overlap_with_line_after(text, suffix if newline < 0 else suffix[:newline])
    text = drop_rewrite_of_following_lines(text, suffix).rstrip()
    text = cut_loops(text, prefix, suffix, language)  # repeated pieces, lines and names go here
    if not text.strip() or _garbled(text):
        return None
    _, lines, indexes, _ = _rows(text, prefix)
    if _repeats_suffix(text, suffix, lines, indexes):
        return None
    if breaks_syntax(text, prefix, suffix, language):
        return None
    return text
