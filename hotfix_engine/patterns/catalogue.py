"""The catalogue a suggestion is checked against: rules, pair files, mined pairs, the user's edits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hotfix_engine.errors import HotfixError
from hotfix_engine.pairs import BugFixPair, load_pairs
from hotfix_engine.patterns.matcher import PairIndex, PatternMatch
from hotfix_engine.patterns.rules.framework import Rule, all_rules, scan_source

log = logging.getLogger(__name__)


class Catalogue:
    """Everything known about bugs, checked on every shown suggestion (well under a millisecond)."""

    def __init__(self) -> None:
        self.index = PairIndex()

    @classmethod
    def load(cls, data_dir: Path | None = None, pair_files: Sequence[Path] = ()) -> Catalogue:
        """Rules, the given pair files and, when ``data_dir`` holds a store, its pairs.

        A pair file that cannot be read raises :class:`~hotfix_engine.errors.DataError`; a store
        that cannot be opened is logged and skipped, because a server must start without it.
        """
        catalogue = cls()
        for path in pair_files:
            for pair in load_pairs(path):
                catalogue.add_pair(pair, "pair")
        if data_dir is not None:
            catalogue._load_store(Path(data_dir))
        return catalogue

    def _load_store(self, data_dir: Path) -> None:
        from hotfix_engine.paths import store_path
        from hotfix_engine.store import Store

        if not store_path(data_dir).exists():
            return
        try:
            store = Store.open(data_dir)
        except HotfixError as exc:
            log.warning("known pairs from the store are not used: %s", exc)
            return
        try:
            for stored in store.pairs():
                self.add_pair(stored.pair, "edit" if stored.origin == "edit" else "pair")
        except HotfixError as exc:
            log.warning("known pairs from the store are not used: %s", exc)
        finally:
            store.close()

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
