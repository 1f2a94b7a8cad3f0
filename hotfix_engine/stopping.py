"""Where a suggestion ends: the statement or block the cursor is in, and never past it.

Generation is checked after every token. The rule reads the code around the cursor once (open
brackets, the current line's indentation, whether it opens a block) and then scans only the new
text, so each check is cheap. Python is judged by indentation and brackets; other languages by
braces.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

OPEN = "([{"
CLOSE = ")]}"
SCAN_BACK_LINES = 60
MAX_BLOCK_LINES = 24


class CancelToken(threading.Event):
    """A cancel flag that remembers how far generation had got when it was set.

    ``steps_after_cancel`` is the number of decoding steps that still ran after ``set()``: the
    measure behind "a cancelled request stops within one decoding step".
    """

    def __init__(self) -> None:
        super().__init__()
        self.step = 0
        self.set_at_step: int | None = None

    def set(self) -> None:
        if self.set_at_step is None:
            self.set_at_step = self.step
        super().set()

    @property
    def steps_after_cancel(self) -> int:
        return 0 if self.set_at_step is None else self.step - self.set_at_step


class LineScanner:
    """Tracks bracket depth and string state across lines, ignoring brackets in strings and comments."""

    def __init__(self, python: bool = True, depth: int = 0) -> None:
        self.python = python
        self.depth = depth
        self.quote: str | None = None  # open (possibly triple) quote carried to the next line

    def feed(self, line: str) -> str:
        """Scan one line (without its newline); returns its code with strings blanked and comments cut."""
        code: list[str] = []
        i, n = 0, len(line)
        while i < n:
            ch = line[i]
            if self.quote:
                if ch == "\\":
                    i += 2
                    continue
                if line.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                    code.append("s")
                    continue
                i += 1
                continue
            if ch == "#" and self.python or line.startswith("//", i) and not self.python:
                break
            if ch in "\"'" or ch == "`" and not self.python:
                triple = line[i : i + 3]
                self.quote = triple if triple in ('"""', "'''") else ch
                i += len(self.quote)
                continue
            if ch in OPEN:
                self.depth += 1
            elif ch in CLOSE:
                self.depth = max(self.depth - 1, 0) if self.depth > 0 else -1
            code.append(ch)
            i += 1
        if self.quote in ('"', "'"):
            self.quote = None  # a single-quoted string cannot span lines
        return "".join(code)


def indentation(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


@dataclass
class StopDecision:
    cut: int  # characters of the generated text to keep
    reason: str  # "statement" | "block"


class StopRule:
    """Decides, from the generated text so far, whether and where the suggestion ends."""

    def __init__(self, prefix: str, suffix: str = "", language: str = "python") -> None:
        self.python = language.lower() in ("python", "py", "")
        lines = prefix.split("\n")
        self.line_before = lines[-1]
        self.line_after = suffix.split("\n", 1)[0]
        scanner = LineScanner(self.python)
        for line in lines[-SCAN_BACK_LINES:-1]:
            scanner.feed(line)
            if scanner.depth < 0:
                scanner.depth = 0
        self.prefix_depth = scanner.depth
        self.prefix_quote = scanner.quote
        self.mid_line = bool(self.line_before.strip())
        code_before = LineScanner(self.python, self.prefix_depth).feed(self.line_before).rstrip()
        opener = ":" if self.python else "{"
        self.finishes_line = self.mid_line and not code_before.endswith(opener)

    def _end_of_line(self, text: str) -> StopDecision | None:
        scanner = LineScanner(self.python, self.prefix_depth)
        scanner.quote = self.prefix_quote
        offset, line = 0, self.line_before
        while (newline := text.find("\n", offset)) >= 0:
            scanner.feed(line + text[offset:newline])
            if scanner.quote is None:
                return StopDecision(newline, "statement")
            offset, line = newline + 1, ""
        return None

    def check(self, text: str) -> StopDecision | None:
        """Where to cut ``text``, or None to keep generating. Only complete lines decide."""
        if self.line_after.strip() and "\n" in text:
            # Inside a line with code after the cursor: a suggestion can only finish this line.
            return StopDecision(text.index("\n"), "statement")
        if self.finishes_line:
            # Typed mid-line, a suggestion finishes this line (as Continue and llama.vscode do): several
            # lines only at an empty line or after a block opener, or to close a string it opened.
            return self._end_of_line(text)
        scanner = LineScanner(self.python, self.prefix_depth)
        scanner.quote = self.prefix_quote
        # Python statements end at depth 0; in brace languages the enclosing blocks' braces are open.
        base = 0 if self.python else self.prefix_depth
        offset = 0
        block_indent: int | None = None
        statement_started = self.mid_line
        first = True
        keep_until = 0
        while True:
            newline = text.find("\n", offset)
            if newline < 0:
                return None
            piece = text[offset:newline]
            line = (self.line_before + piece) if first else piece
            first = False
            if block_indent is not None:
                dedented = (
                    scanner.depth <= base and scanner.quote is None and indentation(line) <= block_indent
                )
                # A closing brace at the opener's indentation still belongs to the block.
                if line.strip() and dedented and (self.python or line.strip()[0] not in CLOSE):
                    return StopDecision(keep_until, "block")
                scanner.feed(line)
                if line.strip():
                    keep_until = newline
                    if not self.python and scanner.depth <= base:
                        return StopDecision(newline, "block")
                if text.count("\n", 0, newline) >= MAX_BLOCK_LINES:
                    return StopDecision(keep_until, "block")
                offset = newline + 1
                continue
            if not line.strip() and not statement_started:
                offset = newline + 1  # blank lines before the statement starts
                continue
            statement_started = True
            code = scanner.feed(line).rstrip()
            if scanner.depth > base or scanner.quote is not None:
                offset = newline + 1
                continue
            opens_block = code.endswith(":") if self.python else code.endswith("{")
            if opens_block:
                block_indent = indentation(line)
                keep_until = newline
                offset = newline + 1
                continue
            if code.endswith("\\") and self.python:
                offset = newline + 1
                continue
            return StopDecision(newline, "statement")
