"""Suggestions that break the code they go into: a bracket closed that nothing opened, a line that
dedents to no enclosing block, a whole line Python cannot parse.

The code around the cursor is usually unfinished, so the test is ``codeop``'s: text that more text
could still complete is incomplete, not invalid. Only an error that lies in the suggestion, and that
no further typing could fix, drops it. Python is parsed on a window of the file (from the last
statement at the window's outermost indentation, through the suggestion, to the end of the
cursor's line); other languages are checked for brackets that close the wrong opener.
"""

from __future__ import annotations

import ast
import codeop
import re

from hotfix_engine.stopping import CLOSE, OPEN, LineScanner, indentation

WINDOW_LINES = 60  # lines above the cursor parsed with the suggestion, as many as the stop rule reads
WINDOW_CHARS = 8000
_INCOMPLETE_INPUT = getattr(codeop, "PyCF_ALLOW_INCOMPLETE_INPUT", 0)  # Python 3.11+
# Errors that mean the end of the text came too soon (Python 3.10 names them; 3.11+ says "incomplete input").
_INCOMPLETE = ("incomplete input", "was never closed", "unterminated triple-quoted", "unexpected EOF")
# Errors that more text cannot fix, even on a last line that may have been cut short.
_BROKEN = ("unmatched", "does not match", "unexpected indent", "unindent", "inconsistent use of tabs")
_NOT_A_START = re.compile(r"(?:else|elif|except|finally)\b")
_OPENER_OF = dict(zip(CLOSE, OPEN, strict=True))
# Prose, markup and shells, where a lone ``)`` (``1)``, ``case a)``) is no bracket.
_NO_BRACKETS = frozenset(
    {"plaintext", "text", "markdown", "restructuredtext", "latex", "tex", "html", "xml", "yaml", "toml"}
    | {"ini", "shellscript", "bash", "sh", "zsh", "fish", "powershell", "makefile", "dockerfile"}
)


def is_python(language: str | None) -> bool:
    """Read as the stop rule does (an empty language is Python); None is a language not told."""
    return language is not None and language.lower() in ("python", "py", "")


def _sees_whole_file(prefix: str) -> bool:
    return len(prefix) <= WINDOW_CHARS and prefix.count("\n") <= WINDOW_LINES


def _parse_error(source: str, incomplete_flag: int = _INCOMPLETE_INPUT) -> SyntaxError | None:
    try:
        compile(source, "<suggestion>", "exec", flags=ast.PyCF_ONLY_AST | incomplete_flag, dont_inherit=True)
    except SyntaxError as error:
        return error
    except (ValueError, RecursionError, MemoryError):
        return None  # null bytes or absurd nesting: not this check's call
    return None


def _is_code(line: str) -> bool:
    body = line.strip()
    return bool(body) and body[0] != "#"


def _starts_statement(line: str) -> bool:
    """A line a parse can begin at: not ``else:``, a closing bracket, or text inside a string."""
    body = line.lstrip()
    return bool(body) and (body[0].isalpha() or body[0] in "_@") and not _NOT_A_START.match(body)


def _window_start(lines: list[str]) -> tuple[int | None, int]:
    """The last line at the least indentation of ``lines`` that starts a statement, and that indentation."""
    start, least = None, None
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if not _is_code(line):
            continue
        indent = indentation(line)
        if least is None or indent < least:
            least, start = indent, None
        if start is None and indent == least and _starts_statement(line):
            start = i
            if indent == 0:
                break  # nothing lies further out
    return start, least or 0


def _lines_above(prefix: str) -> list[str]:
    """The last lines of ``prefix`` (the cursor's line last), whole lines only."""
    lines = prefix[-WINDOW_CHARS:].split("\n")
    if len(prefix) > WINDOW_CHARS:
        lines = lines[1:]
    return lines[-WINDOW_LINES - 1 :]


def _reads_as_code(lines: list[str]) -> bool:
    """The lines above the cursor parse, or only want more: the cursor is in code, not in a docstring."""
    error = _parse_error("\n".join(lines), 0)
    return error is None or any(m in error.msg for m in ("expected an indented block", "was never closed"))


def _python_breaks(text: str, prefix: str, line_after: str) -> bool:
    """Python cannot parse the window with the suggestion in it, and the suggestion is to blame."""
    head = _lines_above(prefix)
    if not head:
        return False
    above, line_before = head[:-1], head[-1]
    parts = text.split("\n")
    below = [line_before + parts[0], *parts[1:]]  # the cursor's line as it will read, then the suggestion's
    below[-1] += line_after
    codes = [i for i, line in enumerate(below) if _is_code(line)]
    if not codes:
        return False
    level = min(indentation(below[i]) for i in codes)
    start, least = _window_start(above)
    if start is not None and level >= least:
        # From the last statement at the window's outermost indentation, all of it moved left alike.
        lines, cursor_row, shift = above[start:] + below, len(above) - start, least
    elif _starts_statement(below[codes[0]]) and indentation(below[codes[0]]) == level:
        # The suggestion reaches further out than the window shows: parse it on its own.
        lines, cursor_row, shift = below[codes[0] :], -codes[0], level
    else:
        return False
    lines = [line[min(shift, indentation(line)) :] for line in lines]
    region = max(0, len(line_before) - min(shift, indentation(below[0])))  # the suggestion's first column
    error = _parse_error("\n".join(lines))
    if error is None or error.lineno is None or any(m in error.msg for m in _INCOMPLETE):
        return False
    row = error.lineno - 1
    if row < cursor_row or row == cursor_row and (error.offset or 0) - 1 < region:
        return False  # the user's code, not the suggestion
    if "expected an indented block" in error.msg:
        if row >= len(lines) or not lines[row].strip():
            return False  # the block's body is still to come
    elif row >= len(lines) - 1 and not any(m in error.msg for m in _BROKEN):
        return False  # the last line may just have been cut short
    # Blame the suggestion only when the code above reads as code; inside a docstring it would not.
    if start is None:
        return not any(_is_code(line) for line in above) and _sees_whole_file(prefix)
    return _reads_as_code([line[min(least, indentation(line)) :] for line in above[start:]])


def _bracket_clash(text: str, prefix: str) -> bool:
    """A bracket in the suggestion that closes the wrong opener, or one that nothing opened.

    An opener far above the cursor may be misread (a regex literal, a lifetime ``'a``), so a clash
    counts only with an opener on the cursor's line or in the suggestion, and a closer with nothing
    open only when the whole file above was read.
    """
    head = _lines_above(prefix)
    if not head:
        return False
    line_before = head[-1]
    whole = _sees_whole_file(prefix)
    scanner = LineScanner(python=False)
    stack: list[tuple[str, bool]] = []  # opener, and whether it is on the cursor's line or later
    for line in head[:-1]:
        for ch in scanner.feed(line):
            _push_or_pop(stack, ch, near=False)
    probe = LineScanner(python=False, depth=scanner.depth)
    probe.quote = scanner.quote
    typed = len(probe.feed(line_before))  # code characters of the cursor's line the user wrote
    parts = text.split("\n")
    for row, line in enumerate([line_before + parts[0], *parts[1:]]):
        for column, ch in enumerate(scanner.feed(line)):
            if row == 0 and column < typed:
                _push_or_pop(stack, ch, near=True)
            elif ch in OPEN:
                stack.append((ch, True))
            elif ch in CLOSE:
                if not stack:
                    return whole
                opener, near = stack[-1]
                if opener != _OPENER_OF[ch]:
                    return near
                stack.pop()
    return False


def _push_or_pop(stack: list[tuple[str, bool]], ch: str, near: bool) -> None:
    """Track the user's brackets leniently: a stray closer is skipped, not held against anyone."""
    if ch in OPEN:
        stack.append((ch, near))
    elif ch in CLOSE:
        opener = _OPENER_OF[ch]
        for depth in range(len(stack) - 1, -1, -1):
            if stack[depth][0] == opener:
                del stack[depth:]
                return


def breaks_syntax(text: str, prefix: str, suffix: str, language: str | None = None) -> bool:
    """Putting ``text`` at the cursor makes the code broken in a way that more typing cannot fix.

    Python is parsed; any other language, or one not told, has its brackets checked.
    """
    if not text.strip():
        return False
    newline = suffix.find("\n")
    line_after = suffix if newline < 0 else suffix[:newline]
    if is_python(language):
        return _python_breaks(text, prefix, line_after)
    if language is not None and language.lower() in _NO_BRACKETS:
        return False
    return _bracket_clash(text, prefix)
