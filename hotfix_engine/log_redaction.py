"""Redacting every log record, whatever logged it.

Logs hold what the code around them holds: a learnt pair, a dropped suggestion, and at ``-vv``
pygls's protocol traffic with whole documents. Rather than trust each call site, a filter on every
handler redacts each record's message and traceback before it is written. Document text inside
JSON or a ``repr`` has its quotes and line breaks escaped (``\\"``, ``\\n``), which hides the shapes
the detectors look for, so the filter also reads the text unescaped and masks what it finds there.
"""

from __future__ import annotations

import logging
import re

from hotfix_engine.redact import PLACEHOLDERS, Sensitive, find_loose, find_sensitive

_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|(.))", re.DOTALL)
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "'": "'", "\\": "\\", "/": "/"}


def _unescape(text: str) -> tuple[str, list[int]]:
    """``text`` with JSON/repr escapes decoded, and for each character the index it came from."""
    out: list[str] = []
    origin: list[int] = []
    position = 0
    for match in _ESCAPE.finditer(text):
        for i in range(position, match.start()):
            out.append(text[i])
            origin.append(i)
        code, char = match.groups()
        decoded = chr(int(code, 16)) if code else _SIMPLE.get(char, match.group())
        for c in decoded:
            out.append(c)
            origin.append(match.start())
        position = match.end()
    for i in range(position, len(text)):
        out.append(text[i])
        origin.append(i)
    origin.append(len(text))
    return "".join(out), origin


def redact_log_text(text: str) -> str:
    """``text`` with every sensitive span masked, found as written or with its escapes decoded."""
    items = find_sensitive(text) + find_loose(text)
    if "\\" in text:
        decoded, origin = _unescape(text)
        for item in find_sensitive(decoded) + find_loose(decoded):
            start, end = origin[item.start], origin[item.end]
            if end > start:
                items.append(Sensitive(item.kind, start, end, text[start:end]))
    if not items:
        return text
    items.sort(key=lambda s: (s.start, -s.end))
    parts, position = [], 0
    for item in items:
        if item.end <= position:
            continue
        parts.append(text[position : max(position, item.start)])
        parts.append(PLACEHOLDERS[item.kind])
        position = item.end
    parts.append(text[position:])
    return "".join(parts)


class RedactingFilter(logging.Filter):
    """Masks secrets and personal data in each record; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it when it formats the record
            return True
        clean = redact_log_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_log_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_log_text(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put a RedactingFilter on every handler of ``logger`` (the root logger by default), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
