"""The catalogue a suggestion is checked against: rules, pair files, mined pairs, the user's edits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hotfix_engine.pairs import BugFixPair, load_pairs
from hotfix_engine.patterns.matcher import PairIndex, PatternMatch
from hotfix_engine.patterns.rules.framework import Rule, all_rules, scan_source

log = logging.getLogger(__name__)


class Catalogue:
    """Everything known about bugs, checked on every shown suggestion (well under a millisecond)."""

    def __init__(self) -> None:
        self.index = PairIndex()

    @classmethod
    def load(cls, pair_files: Sequence[Path] = ()) -> Catalogue:
        """Rules and the given pair files; a file that cannot be read raises :class:`~hotfix_engine.errors.DataError`.

        The store's pairs are added by :func:`hotfix_engine.known_bugs.load_catalogue`: patterns sit
        below the store, which records their matches.
        """
        catalogue = cls()
        for path in pair_files:
            for pair in load_pairs(path):
                catalogue.add_pair(pair, "pair")
        return catalogue

    def add_pair(self, pair: BugFixPair, source: str = "edit") -> None:
        """Know ``pair`` from now on (``source`` is "pair" for files and mining, "edit" for the user's)."""
        self.index.add(pair, source)

    @staticmethod
    def rules() -> list[Rule]:
        return all_rules()

    def counts(self) -> dict[str, int]:
        return {
            "rules": len(all_rules()),
            "pairs": self.index.count("pair"),
            "edits": self.index.count("edit"),
        }

    def check(self, prefix: str, text: str) -> list[PatternMatch]:
        """Matches of the suggestion ``text`` shown after ``prefix`` (line 0 = the cursor's line).

        Rules only report what the suggestion wrote: a finding that ends inside the text already
        on the cursor's line before the suggestion belongs to the user, not the model.
        """
        if not text.strip():
            return []
        head = prefix[prefix.rfind("\n") + 1 :]
        matches = []
        for finding in scan_source(head + text):
            if finding.end_line == 1 and finding.end_col - 1 <= len(head):
                continue
            matches.append(
                PatternMatch(
                    finding.pattern_id, "rule", "buggy", finding.line - 1, finding.message, finding.fix
                )
            )
        matches.extend(self.index.match(prefix, text))
        return matches
