"""Bug-fix pairs: the unit of data that training, evaluation, mining and discovery share.

A pair file is JSON Lines, one object a line, with the fields of :class:`BugFixPair` (docs/architecture.md, Contracts).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hotfix_engine.errors import DataError
from hotfix_engine.jsonl import read_objects

REQUIRED_FIELDS = ("prefix", "buggy", "fixed")
_SPACE = re.compile(r"\s+")
_AROUND_PUNCT = re.compile(r"\s*([()\[\]{}.,:;=+\-*/%<>!&|^~@])\s*")


def normalize_statement(text: str) -> str:
    """A statement with whitespace made irrelevant, so ``x==1`` and ``x == 1`` compare equal.

    Spaces next to punctuation are dropped and other runs collapse to one space; comments are not
    stripped because a ``#`` may sit inside a string.
    """
    text = _SPACE.sub(" ", text.strip())
    return _AROUND_PUNCT.sub(r"\1", text)


@dataclass(frozen=True)
class BugFixPair:
    """One buggy statement, its fix, and the code around it."""

    prefix: str
    buggy: str
    fixed: str
    suffix: str = ""
    id: str = ""
    source: str = ""
    pattern: str = ""
    tests: str = ""
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        """A stable id derived from the content, used when the file gives none."""
        if self.id:
            return self.id
        digest = hashlib.sha1(f"{self.prefix}\0{self.buggy}\0{self.fixed}".encode()).hexdigest()
        return digest[:12]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        extra = data.pop("extra")
        data["id"] = self.key
        data.update(extra)
        return data


_KNOWN = {f.name for f in fields(BugFixPair)} - {"extra"}


def pair_from_dict(obj: dict[str, object], where: str = "") -> BugFixPair:
    missing = [name for name in REQUIRED_FIELDS if not isinstance(obj.get(name), str)]
    if missing:
        raise DataError(f"{where}missing or non-text field(s): {', '.join(missing)}")
    if not str(obj["buggy"]).strip() and not str(obj["fixed"]).strip():
        raise DataError(f"{where}both 'buggy' and 'fixed' are empty")
    known = {k: ("" if obj.get(k) is None else str(obj[k])) for k in _KNOWN if k in obj}
    extra = {k: v for k, v in obj.items() if k not in _KNOWN}
    return BugFixPair(**known, extra=extra)


def load_pairs(path: str | Path) -> list[BugFixPair]:
    """Read a pair file; a malformed line raises :class:`DataError` naming the file and line."""
    path = Path(path)
    pairs = [pair_from_dict(obj, where) for where, obj in read_objects(path, "pair file")]
    if not pairs:
        raise DataError(f"{path}: the pair file is empty")
    return pairs


def load_pair_files(paths: Iterable[str | Path]) -> list[BugFixPair]:
    return [pair for path in paths for pair in load_pairs(path)]


def write_pairs(path: str | Path, pairs: Iterable[BugFixPair]) -> int:
    """Write pairs as JSON Lines: atomically, readable by the owner only, and redacted (jsonl.write_objects)."""
    from hotfix_engine.jsonl import write_objects

    return write_objects(Path(path), (pair.to_json() for pair in pairs))


SPLITS = ("train", "val", "test")


def split_pairs(
    pairs: Sequence[BugFixPair], seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict[str, list[BugFixPair]]:
    """The 80/10/10 split of docs/architecture.md (Contracts), deterministic for a seed and independent of file order."""
    ordered = sorted(pairs, key=lambda p: p.key)
    random.Random(seed).shuffle(ordered)
    n_train = round(len(ordered) * fractions[0])
    n_val = round(len(ordered) * fractions[1])
    return {
        "train": ordered[:n_train],
        "val": ordered[n_train : n_train + n_val],
        "test": ordered[n_train + n_val :],
    }


def problem_of(pair: BugFixPair) -> str:
    """The problem a pair was found on (discovery records it); a pair without one stands alone."""
    problem = pair.extra.get("problem")
    return str(problem) if problem not in (None, "") else f"pair:{pair.key}"


def split_by_problem(
    pairs: Sequence[BugFixPair], seed: int = 0, test_fraction: float = 0.2
) -> dict[str, list[BugFixPair]]:
    """Train and test sides with no problem on both: a test pair's code was never trained on.

    Pairs found on one problem share its prefix and tests, so a split by pair would test on code the
    adapter saw. A problem goes to the test side when the hash of ``seed`` and its id falls below
    ``test_fraction``: its side depends on nothing else, so neither file order nor a corpus grown
    by later discovery runs moves a problem from one side to the other. The share of test pairs
    varies around ``test_fraction`` with how many pairs each problem has.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    sides: dict[str, list[BugFixPair]] = {"train": [], "test": []}
    for pair in sorted(pairs, key=lambda p: (problem_of(p), p.key)):
        digest = hashlib.sha256(f"{seed}\0{problem_of(pair)}".encode()).digest()
        side = "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"
        sides[side].append(pair)
    return sides


def rejected_statement(prefix: str, suggestion: str) -> BugFixPair:
    """A rejected suggestion with no known fix as a one-sided pair: its first statement, at its cursor.

    The gate scores how likely the model still is to write it there (``fixed`` is empty: no side to
    learn). Leading blank lines stay, so a statement suggested on the next line is scored there.
    """
    return BugFixPair(prefix=prefix, buggy=through_first_statement(suggestion), fixed="", source="rejected")


def through_first_statement(completion: str) -> str:
    """A completion up to the end of its first non-blank line: the statement a suggestion shows first."""
    rows = completion.split("\n")
    first = next((i for i, row in enumerate(rows) if row.strip()), 0)
    return "\n".join(rows[: first + 1])


def where_they_part(pair: BugFixPair) -> tuple[str, str, str]:
    """The prompt where the buggy and fixed statements part, and the rest of each after it.

    That is where the model decides between the bug and the fix (where an editor's cursor was), so
    a score there responds to a hotfix even when the model could never guess the whole line from
    the code above it. The cut is the first character where they differ, wherever it falls: token
    healing takes a partial token back as the server does. Each side keeps at least one character
    (one statement may extend the other); a pair with an empty side is cut nowhere.
    """
    buggy, fixed = pair.buggy.rstrip("\n"), pair.fixed.rstrip("\n")
    cut = 0
    if buggy.strip() and fixed.strip():
        while cut < min(len(buggy), len(fixed)) - 1 and buggy[cut] == fixed[cut]:
            cut += 1
    return pair.prefix + buggy[:cut], buggy[cut:], fixed[cut:]
