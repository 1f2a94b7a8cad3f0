"""The demo's terminal: numbered steps, code with the suggestion highlighted, one progress bar at a time."""

from __future__ import annotations

import os
from typing import Any, TextIO


class Screen:
    """What the user sees: numbered steps, code, and one progress bar at a time."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.color = out.isatty() and not os.environ.get("NO_COLOR")
        self.bar: Any = None

    def style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def step(self, number: int, total: int, title: str) -> None:
        self.close_bar()
        self.out.write("\n" + self.style(f"[{number}/{total}] {title}", "1") + "\n")
        self.out.flush()

    def line(self, text: str = "") -> None:
        self.close_bar()
        self.out.write(text + "\n")
        self.out.flush()

    def code(self, prefix: str, suggestion: str) -> None:
        body = "\n".join(
            "    " + row for row in (prefix + self.style(suggestion or "(no suggestion)", "36")).split("\n")
        )
        self.line(body)

    def progress(self, title: str, message: str, fraction: float | None) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(
                total=100,
                desc=title,
                file=self.out,
                leave=True,
                bar_format="{desc} |{bar}| {n:.0f}% {postfix}",
            )
        if fraction is not None:
            self.bar.n = round(100 * fraction)
        self.bar.set_postfix_str(message[:60], refresh=True)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
