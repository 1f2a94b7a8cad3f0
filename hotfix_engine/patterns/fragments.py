"""Parsing code that is not a whole module: a completed line, a block header, a file with a typo.

Suggestions are checked one statement at a time, usually a line such as ``if x == None:`` or
``except:`` that does not parse alone, and ``hotfix patterns scan`` must not give up on a file because
one line is broken. :func:`parse_pieces` returns the parts that parse, each with the number of wrapper
lines added around it, so positions map back to the text unchanged (only whole lines are added; the
text of a line is never altered, so column offsets stay valid).
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass

# The longest run of lines tried as one statement when a file does not parse as a whole.
MAX_STATEMENT_LINES = 8
_AFTER_IF = ("elif ", "elif(", "else:", "else ")
_AFTER_TRY = ("except", "finally:", "finally ")


@dataclass(frozen=True)
class Piece:
    """A parsed part of a text: ``tree`` was parsed from ``source``, whose line ``shift + 1``
    is line ``start`` (0-based) of the original text."""

    tree: ast.Module
    source: str
    start: int
    shift: int

    def line_of(self, lineno: int) -> int:
        """The 0-based line in the original text of an AST ``lineno``."""
        return lineno - 1 - self.shift + self.start


def _parse(source: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            # Invalid escape sequences in user code are not our concern here.
            warnings.simplefilter("ignore")
            return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _variants(lines: list[str]) -> list[tuple[list[str], list[str]]]:
    """Wrappers (lines before, lines after) that may make ``lines`` parse as a statement."""
    first = lines[0]
    indent = _indent(first)
    stripped = first.lstrip()
    before: list[str] = ["if 1:"] if indent else []
    if stripped.startswith(_AFTER_IF):
        before.append(indent + "if 1: pass")
    elif stripped.startswith(_AFTER_TRY):
        before.append(indent + "try: pass")
    body = [indent + "    pass"]
    variants = [(before, []), (before, body)]
    # A continuation line inside brackets, such as keyword arguments: ``exists=False, dir_okay=True``.
    variants.append((["f("], [")"]))
    return variants


def _try_lines(lines: list[str]) -> tuple[ast.Module, str, int] | None:
    for before, after in _variants(lines):
        source = "\n".join([*before, *lines, *after])
        tree = _parse(source)
        if tree is not None:
            return tree, source, len(before)
    return None


def parse_pieces(text: str) -> list[Piece]:
    """The parts of ``text`` that parse: the whole text when it can, else statement by statement."""
    tree = _parse(text)
    if tree is not None:
        return [Piece(tree, text, 0, 0)]
    lines = text.split("\n")
    whole = _try_lines(lines)
    if whole is not None:
        return [Piece(whole[0], whole[1], 0, whole[2])]
    pieces = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if not line or line.startswith("#"):
            index += 1
            continue
        for end in range(index + 1, min(len(lines), index + MAX_STATEMENT_LINES) + 1):
            parsed = _try_lines(lines[index:end])
            if parsed is not None:
                pieces.append(Piece(parsed[0], parsed[1], index, parsed[2]))
                index = end
                break
        else:
            index += 1
    return pieces


def parse_statement(text: str) -> ast.Module | None:
    """One statement or fragment (a pair's buggy or fixed line), or None when nothing parses."""
    tree = _parse(text.strip())
    if tree is not None:
        return tree
    parsed = _try_lines(text.strip("\n").split("\n"))
    return parsed[0] if parsed else None
