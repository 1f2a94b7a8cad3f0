"""Parsing code that is not a whole module: a completed line, a block header, a file with a typo.

Suggestions are checked one statement at a time, usually a line such as ``if x == None:`` or
``except:`` that does not parse alone, and ``hotfix patterns scan`` must not give up on a file because
one line is broken. :func:`parse_pieces` returns the parts that parse, each with the number of wrapper
lines added around it, so positions map back to the text unchanged (only whole lines are added; the
text of a line is never altered, so column offsets stay valid).
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

# The longest run of lines tried as one statement when a file does not parse as a whole.
MAX_STATEMENT_LINES = 8
_AFTER_IF = ("elif ", "elif(", "else:", "else ")
_AFTER_TRY = ("except", "finally:", "finally ")
_STRINGS = re.compile(r"([\'\"])(?:\\.|(?!\1).)*\1")
_CODE_END = re.compile(r"#.*$")
_ARGUMENTS = re.compile(r"^\*{0,2}[A-Za-z_]\w*\s*=[^=]")


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


def parse_module(source: str) -> ast.Module | None:
    """``source`` as a module, or None when it does not parse (user code: never an exception)."""
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
    """Wrappers (lines before, lines after) that may make ``lines`` parse as a statement.

    Only plausible wrappers are tried (a body only after a ``:``, brackets only around what looks
    like arguments): every failed parse costs time on each shown suggestion.
    """
    first = lines[0]
    indent = _indent(first)
    stripped = first.lstrip()
    before: list[str] = ["if 1:"] if indent else []
    if stripped.startswith(_AFTER_IF):
        before.append(indent + "if 1: pass")
    elif stripped.startswith(_AFTER_TRY):
        before.append(indent + "try: pass")
    variants: list[tuple[list[str], list[str]]] = [(before, [])]
    if _CODE_END.sub("", _STRINGS.sub('""', lines[-1])).rstrip().endswith(":"):
        variants.append((before, [indent + "    pass"]))
    # A continuation line inside brackets, such as keyword arguments: ``exists=False, dir_okay=True``.
    if _ARGUMENTS.match(stripped) or stripped.rstrip().endswith(","):
        variants.append((["f("], [")"]))
    return variants


def _depth(line: str) -> int:
    """Brackets opened minus closed on a line, strings and comments aside (an estimate)."""
    code = _CODE_END.sub("", _STRINGS.sub("", line))
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")


def _try_lines(lines: list[str]) -> tuple[ast.Module, str, int] | None:
    for before, after in _variants(lines):
        source = "\n".join([*before, *lines, *after])
        tree = parse_module(source)
        if tree is not None:
            return tree, source, len(before)
    return None


def parse_pieces(text: str) -> list[Piece]:
    """The parts of ``text`` that parse: the whole text when it can, else statement by statement."""
    lines = text.split("\n")
    # For an unindented text the first variant is the text itself, parsed as it is.
    whole = _try_lines(lines)
    if whole is not None:
        return [Piece(whole[0], whole[1], 0, whole[2])]
    if len(lines) == 1:
        return []
    pieces = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        if not line or line.startswith("#"):
            index += 1
            continue
        # A statement continues past a line only while brackets are open or the line ends in "\\".
        end, depth = index, 0
        while end < min(len(lines), index + MAX_STATEMENT_LINES):
            depth += _depth(lines[end])
            end += 1
            if depth <= 0 and not lines[end - 1].rstrip().endswith("\\"):
                break
        parsed = _try_lines(lines[index:end])
        if parsed is None and end > index + 1:
            parsed = _try_lines(lines[index : index + 1])
            end = index + 1
        if parsed is not None:
            pieces.append(Piece(parsed[0], parsed[1], index, parsed[2]))
            index = end
        else:
            index += 1
    return pieces


def parse_statement(text: str) -> ast.Module | None:
    """One statement or fragment (a pair's buggy or fixed line), or None when nothing parses."""
    tree = parse_module(text.strip())
    if tree is not None:
        return tree
    parsed = _try_lines(text.strip("\n").split("\n"))
    return parsed[0] if parsed else None
