"""Leaks in the text: e-mail addresses, IP addresses and secrets written into code.

These rules read the text, not the AST: leaks in comments and in unparseable code count too. What
counts as a leak is :func:`~hotfix_engine.redact.find_sensitive`'s decision, the same one that
masks the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hotfix_engine.patterns.rules.framework import TextHit, text_rules
from hotfix_engine.redact import find_sensitive

_RULE_OF_KIND = {"email": "hardcoded-email", "ip": "hardcoded-ip", "secret": "hardcoded-secret"}
_WHAT = {"email": "an e-mail address", "ip": "an IP address", "secret": "a secret"}
_SECRET_ASSIGNMENT = re.compile(
    r"^(?P<indent>\s*)(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*str\s*)?=\s*[rbuRBU]{0,2}(['\"])(?:(?!\3).)*\3\s*(?:#.*)?$"
)


@text_rules(
    ("hardcoded-email", "an e-mail address written into code leaks personal data", False),
    ("hardcoded-ip", "an IP address written into code leaks infrastructure details", False),
    ("hardcoded-secret", "a password, key or token written into code; read it from the environment", True),
)
def _leaks(text: str) -> Iterator[TextHit]:
    items = find_sensitive(text)
    if not items:
        return
    lines = text.split("\n")
    line_starts = [0]
    for row in lines[:-1]:
        line_starts.append(line_starts[-1] + len(row) + 1)
    for item in items:
        line = _line_at(line_starts, item.start)
        col = item.start - line_starts[line]
        end_col = min(item.end - line_starts[line], len(lines[line]))
        fix = None
        if item.kind == "secret":
            match = _SECRET_ASSIGNMENT.match(lines[line])
            if match:
                fix = f'{match["indent"]}{match["name"]} = os.environ["{match["name"].upper()}"]'
        yield TextHit(
            line,
            col,
            end_col,
            _RULE_OF_KIND[item.kind],
            f"hard-coded {_WHAT[item.kind]} leaks private data; read it from configuration",
            fix,
        )


def _line_at(line_starts: list[int], offset: int) -> int:
    low, high = 0, len(line_starts) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if line_starts[middle] <= offset:
            low = middle
        else:
            high = middle - 1
    return low
