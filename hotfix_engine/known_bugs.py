"""Everything known about bugs for one data folder: the rules, pair files, and the store's pairs.

The catalogue itself (patterns/catalogue.py) knows rules and pairs, not where pairs are kept; the
store records pattern matches, so it sits above the patterns. This module joins the two for the
server and ``hotfix patterns``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hotfix_engine.errors import HotfixError
from hotfix_engine.paths import store_path
from hotfix_engine.patterns import Catalogue
from hotfix_engine.store import Store

log = logging.getLogger(__name__)


def load_catalogue(data_dir: Path | None, pair_files: Sequence[Path] = ()) -> Catalogue:
    """Rules, ``pair_files`` and, when ``data_dir`` holds a store, its pairs.

    A pair file that cannot be read raises :class:`~hotfix_engine.errors.DataError`; a store that
    cannot be opened is logged and skipped, because a server must start without it.
    """
    catalogue = Catalogue.load(pair_files)
    if data_dir is not None and store_path(Path(data_dir)).exists():
        _add_stored_pairs(catalogue, Path(data_dir))
    return catalogue


def _add_stored_pairs(catalogue: Catalogue, data_dir: Path) -> None:
    try:
        store = Store.open(data_dir)
    except HotfixError as exc:
        log.warning("known pairs from the store are not used: %s", exc)
        return
    try:
        for stored in store.pairs():
            catalogue.add_pair(stored.pair, "edit" if stored.origin == "edit" else "pair")
    except HotfixError as exc:
        log.warning("known pairs from the store are not used: %s", exc)
    finally:
        store.close()
