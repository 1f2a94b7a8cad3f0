"""What a rule is and how rules run: findings, registration, the AST helpers rules share, scanning.

Each rule has an id, a one-line description and a check on AST nodes (or on the text, for the
leak rules). A check yields :class:`Hit` objects; where a deterministic fix exists the hit carries
the edits that make it, and the finding's ``fix`` is the corrected line. Code is parsed with
:func:`~hotfix_engine.patterns.fragments.parse_pieces`, so a single completed line or a file with a
syntax error elsewhere is still checked.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from hotfix_engine.patterns.fragments import Piece, parse_pieces


@dataclass(frozen=True)
class Edit:
    """Replace bytes ``[start, end)`` of AST line ``lineno`` (positions as the AST gives them)."""

    lineno: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    lineno: int
    col: int
    end_lineno: int
    end_col: int
    message: str
    edits: tuple[Edit, ...] | None = None


class TextHit(NamedTuple):
    """A leak found in the text: 0-based ``line`` and columns in characters, ``fix`` the whole line."""

    line: int
    col: int
    end_col: int
    rule_id: str
    message: str
    fix: str | None


@dataclass(frozen=True)
class Finding:
    """A rule that fired. ``line``/``col`` are 1-based (as editors print them); ``end_col`` is the
    1-based column just after the span. ``fix`` is the whole corrected line, or None."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    pattern_id: str
    message: str
    fix: str | None


class Context:
    """What a check may look at besides its node: the piece's source and the whole text."""

    def __init__(self, piece: Piece, text: str) -> None:
        self.piece = piece
        self.text = text
        self._assignments: dict[str, list[tuple[int, ast.expr, bool]]] | None = None

    def src(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.piece.source, node) or ""

    def assigned_before(self, node: ast.AST, lineno: int) -> tuple[ast.expr, bool] | None:
        """For a name, the value last assigned to it before ``lineno`` and whether it (or a later
        ``+=``) builds a string from values: ``query = "... %s" % x`` two lines above ``execute(query)``."""
        if not isinstance(node, ast.Name):
            return None
        if self._assignments is None:
            self._assignments = {}
            for child in ast.walk(self.piece.tree):
                if isinstance(child, ast.Assign) and len(child.targets) == 1:
                    target, value, augmented = child.targets[0], child.value, False
                elif isinstance(child, ast.AnnAssign) and child.value is not None:
                    target, value, augmented = child.target, child.value, False
                elif isinstance(child, ast.AugAssign) and isinstance(child.op, ast.Add):
                    target, value, augmented = child.target, child.value, True
                else:
                    continue
                if isinstance(target, ast.Name):
                    self._assignments.setdefault(target.id, []).append((child.lineno, value, augmented))
        built = False
        for line, value, augmented in sorted(self._assignments.get(node.id, []), key=lambda e: -e[0]):
            if line >= lineno:
                continue
            if augmented:
                built = built or not isinstance(value, ast.Constant) or built_string(value)
                continue
            return value, built or built_string(value)
        return None


Check = Callable[[ast.AST, Context], Iterator[Hit]]
TextScan = Callable[[str], Iterator[TextHit]]


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    fixable: bool
    node_types: tuple[type[ast.AST], ...]
    check: Check


# Filled in as the rule modules are imported (importing the ``rules`` package imports them all).
_AST_RULES: list[Rule] = []
_BY_TYPE: dict[type[ast.AST], list[Rule]] = {}
_TEXT_RULES: list[Rule] = []
_TEXT_SCANS: list[TextScan] = []


def rule(
    rule_id: str, description: str, fixable: bool, *node_types: type[ast.AST]
) -> Callable[[Check], Check]:
    """Register the decorated check as rule ``rule_id``, run on every node of ``node_types``."""

    def register(check: Check) -> Check:
        registered = Rule(rule_id, description, fixable, node_types, check)
        _AST_RULES.append(registered)
        for node_type in node_types:
            _BY_TYPE.setdefault(node_type, []).append(registered)
        return check

    return register


def _no_nodes(node: ast.AST, ctx: Context) -> Iterator[Hit]:
    return iter(())


def text_rules(*rules: tuple[str, str, bool]) -> Callable[[TextScan], TextScan]:
    """Register ``(id, description, fixable)`` rules that read the text rather than the AST, all
    reported by the decorated scan (one pass over the text finds leaks of every kind)."""

    def register(scan: TextScan) -> TextScan:
        for rule_id, description, fixable in rules:
            _TEXT_RULES.append(Rule(rule_id, description, fixable, (), _no_nodes))
        _TEXT_SCANS.append(scan)
        return scan

    return register


def all_rules() -> list[Rule]:
    return [*_AST_RULES, *_TEXT_RULES]


def span(node: ast.AST) -> tuple[int, int, int, int]:
    """(lineno, col, end_lineno, end_col) of a node that has a position (expressions, statements)."""
    lineno: int = getattr(node, "lineno")  # noqa: B009 - ast.AST itself declares no position
    col: int = getattr(node, "col_offset")  # noqa: B009
    return (
        lineno,
        col,
        getattr(node, "end_lineno", None) or lineno,
        getattr(node, "end_col_offset", None) or col,
    )


def hit(node: ast.AST, message: str, edits: tuple[Edit, ...] | None = None) -> Hit:
    return Hit(*span(node), message, edits)


def replace_node(node: ast.AST, text: str) -> tuple[Edit, ...] | None:
    """An edit replacing ``node``, or None when it spans lines (fixes are single-line)."""
    lineno, col, end_lineno, end_col = span(node)
    if lineno != end_lineno:
        return None
    return (Edit(lineno, col, end_col, text),)


def dotted_name(node: ast.AST) -> str:
    """``a.b.c`` for a name or attribute chain, else ""."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def keyword_arg(call: ast.Call, name: str) -> ast.keyword | None:
    return next((kw for kw in call.keywords if kw.arg == name), None)


def is_const(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is type(value) and node.value == value


def built_string(node: ast.AST | None) -> bool:
    """A string assembled at run time from values: f-string, % or + with a literal, or .format()."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        sides = (node.left, node.right)
        literal = any(
            isinstance(s, ast.Constant) and isinstance(s.value, str) or built_string(s) for s in sides
        )
        return literal and not all(isinstance(s, ast.Constant) for s in sides)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and bool(node.args or node.keywords)
    )


def _char_col(line: str, byte_col: int) -> int:
    """AST columns count UTF-8 bytes; editors count characters."""
    if line.isascii():
        return byte_col
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _apply(line: str, edits: tuple[Edit, ...]) -> str:
    data = line.encode("utf-8")
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        data = data[: edit.start] + edit.text.encode("utf-8") + data[edit.end :]
    return data.decode("utf-8")


def scan_source(text: str, path: str = "<text>") -> list[Finding]:
    """Every rule finding in ``text`` (a file, or a fragment such as one completed line)."""
    lines = text.split("\n")
    findings: dict[tuple[int, int, str], Finding] = {}
    for piece in parse_pieces(text):
        ctx = Context(piece, text)
        source_lines = piece.source.split("\n")
        for node in ast.walk(piece.tree):
            for matched in _BY_TYPE.get(type(node), ()):
                for found in matched.check(node, ctx):
                    line = piece.line_of(found.lineno)
                    if not 0 <= line < len(lines):
                        continue  # inside a wrapper that fragments.py added
                    end_line = piece.line_of(found.end_lineno)
                    fix = None
                    if found.edits and all(e.lineno == found.edits[0].lineno for e in found.edits):
                        fix = _apply(source_lines[found.edits[0].lineno - 1], found.edits)
                    source_line = source_lines[found.lineno - 1]
                    end_source = source_lines[found.end_lineno - 1]
                    finding = Finding(
                        path,
                        line + 1,
                        _char_col(source_line, found.col) + 1,
                        end_line + 1,
                        _char_col(end_source, found.end_col) + 1,
                        matched.id,
                        found.message,
                        fix,
                    )
                    findings.setdefault((finding.line, finding.col, matched.id), finding)
    for scan in _TEXT_SCANS:
        for line, col, end_col, rule_id, message, fix in scan(text):
            findings.setdefault(
                (line + 1, col + 1, rule_id),
                Finding(path, line + 1, col + 1, line + 1, end_col + 1, rule_id, message, fix),
            )
    return sorted(findings.values(), key=lambda f: (f.line, f.col, f.pattern_id))
