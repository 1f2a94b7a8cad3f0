"""A discovered corpus on disk: pairs appended problem by problem, and a progress file beside them.

Discovery over MBPP runs for days on a laptop CPU, so it must survive Ctrl-C, a kill or a reboot,
and it grows: a later run adds problems. Each finished problem appends its pairs to the pair file
(JSON Lines, flushed and synced) and then one line to ``<pairs>.progress.jsonl``. A problem counts as
done only once its progress line is written; on opening, pairs of problems that are not done (a run
killed between the two writes) and a torn last line are dropped, so the next run redoes exactly the
problems that are missing. The progress file starts with the settings that decide what a problem
yields (model, adapter, sampling); continuing with other settings would mix two corpora, and is an
error. Pairs that repeat a bug already in the file (same problem, same statements however written:
:func:`hotfix_engine.discovery.bug_key`) are not appended twice.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from hotfix_engine.discovery import DiscoveryStats, bug_key
from hotfix_engine.errors import DataError
from hotfix_engine.pairs import BugFixPair, pair_from_dict, problem_of

PROGRESS_SUFFIX = ".progress.jsonl"
FORMAT = 1


def progress_path(pairs_path: str | Path) -> Path:
    path = Path(pairs_path)
    return path.with_name(path.name + PROGRESS_SUFFIX)


def _append(path: Path, lines: Sequence[str]) -> None:
    """Append whole lines and make them durable before returning (a kill after this keeps them)."""
    if not lines:
        return
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())


def _read_lines(path: Path) -> tuple[list[dict[str, Any]], list[str], bool]:
    """(objects, their lines, whether the end was cut short) of a JSON Lines file.

    A last line without its newline is the trace of a write cut short: kept when it parses, dropped
    when it does not. A bad line anywhere else is damage no run leaves, and an error.
    """
    if not path.exists():
        return [], [], False
    text = path.read_text(encoding="utf-8")
    rows = text.split("\n")
    objects: list[dict[str, Any]] = []
    raw: list[str] = []
    for number, line in enumerate(rows, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            if number == len(rows):
                continue
            raise DataError(f"{path}:{number}: not a JSON object; the file is damaged")
        objects.append(obj)
        raw.append(line)
    return objects, raw, bool(text) and not text.endswith("\n")


def _rewrite(path: Path, lines: Sequence[str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def _key_of(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return bug_key(str(obj.get("problem", "")), str(obj.get("buggy", "")), str(obj.get("fixed", "")))


class Corpus:
    """An open corpus: which problems are done, which bugs it holds, and where to append.

    ``settings`` are compared with the ones the corpus was started with; ``restart`` deletes the
    corpus and starts it again with these.
    """

    def __init__(self, path: str | Path, settings: Mapping[str, Any], *, restart: bool = False) -> None:
        self.path = Path(path)
        self.progress = progress_path(self.path)
        self.settings = json.loads(json.dumps(dict(settings)))  # as it will read back
        self.done: dict[str, dict[str, Any]] = {}
        self.keys: set[tuple[str, str, str]] = set()
        self.repaired = 0  # pairs dropped on opening: those of a problem a run did not finish
        if restart:
            self.path.unlink(missing_ok=True)
            self.progress.unlink(missing_ok=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open()

    def _open(self) -> None:
        states, state_lines, torn_state = _read_lines(self.progress)
        if not states:
            if self.path.exists() and self.path.read_text(encoding="utf-8").strip():
                raise DataError(
                    f"{self.path} holds pairs but has no progress file ({self.progress.name}): "
                    "use another --out, or --restart to start it again"
                )
            header = {"kind": "settings", "format": FORMAT, "settings": self.settings}
            _rewrite(self.progress, [json.dumps(header, sort_keys=True)])
            self.path.write_text("", encoding="utf-8")
            return
        header = states[0]
        if header.get("kind") != "settings":
            raise DataError(f"{self.progress}: the first line is not the settings; the file is damaged")
        if header.get("settings") != self.settings:
            stored = header.get("settings") or {}
            differ = sorted(
                k for k in stored.keys() | self.settings.keys() if stored.get(k) != self.settings.get(k)
            )
            shown = ", ".join(f"{k} {stored.get(k)!r} -> {self.settings.get(k)!r}" for k in differ)
            raise DataError(
                f"{self.path} was discovered with other settings ({shown}): "
                "give the same options to continue it, another --out, or --restart"
            )
        for state in states[1:]:
            if state.get("kind") == "problem":
                self.done[str(state["problem"])] = state
        if torn_state:
            _rewrite(self.progress, state_lines)
        pairs, pair_lines, torn_pairs = _read_lines(self.path)
        kept = []
        for obj, line in zip(pairs, pair_lines, strict=True):
            key = _key_of(obj)
            if str(obj.get("problem", "")) not in self.done or key in self.keys:
                continue
            self.keys.add(key)
            kept.append(line)
        self.repaired = len(pair_lines) - len(kept)
        if self.repaired or torn_pairs or not self.path.exists():
            _rewrite(self.path, kept)

    def add(self, problem_id: str, pairs: Iterable[BugFixPair], stats: DiscoveryStats) -> int:
        """Append a finished problem's pairs, then mark it done; returns how many pairs were new."""
        lines = []
        duplicates = 0
        for pair in pairs:
            data = pair.to_json()
            data.setdefault("problem", problem_id)
            key = _key_of(data)
            if key in self.keys:
                duplicates += 1
                continue
            self.keys.add(key)
            lines.append(json.dumps(data, ensure_ascii=False))
        _append(self.path, lines)
        counts = replace(stats, pairs=len(lines), duplicates=stats.duplicates + duplicates)
        state = {"kind": "problem", "problem": problem_id, "pairs": len(lines), "stats": counts.to_json()}
        _append(self.progress, [json.dumps(state, sort_keys=True)])
        self.done[problem_id] = state
        return len(lines)

    def skip(self, problem_id: str, reason: str) -> None:
        """Mark a problem done without running it: it has no tests, or its reference fails them."""
        state = {"kind": "problem", "problem": problem_id, "pairs": 0, "skipped": reason}
        _append(self.progress, [json.dumps(state, sort_keys=True)])
        self.done[problem_id] = state

    def totals(self) -> DiscoveryStats:
        """Counts over every run that added to this corpus (``elapsed_s``: compute time, all workers)."""
        return _totals(self.done.values(), pairs=len(self.keys))

    def pairs(self) -> list[BugFixPair]:
        return load_corpus(self.path)


def _totals(states: Iterable[Mapping[str, Any]], pairs: int) -> DiscoveryStats:
    """Discovery counts summed over the progress lines of done problems; ``pairs``: what the file holds."""
    total = DiscoveryStats()
    for state in states:
        if "stats" in state:
            total.add(DiscoveryStats.from_json(state["stats"]))
        elif state.get("skipped") == "no_tests":
            total.skipped_no_tests += 1
        elif state.get("skipped") == "broken":
            total.skipped_broken += 1
    total.pairs = pairs
    return total


def load_corpus(path: str | Path) -> list[BugFixPair]:
    """The pairs of a corpus file (a torn last line, from a run killed mid-write, is left out)."""
    objects, _, _ = _read_lines(Path(path))
    return [pair_from_dict(obj, f"{path}: ") for obj in objects]


def dedupe_pairs(pairs: Iterable[BugFixPair]) -> tuple[list[BugFixPair], int]:
    """The pairs with repeats of a bug removed (the first one kept), and how many were removed."""
    seen: set[tuple[str, str, str]] = set()
    kept = []
    removed = 0
    for pair in pairs:
        key = bug_key(problem_of(pair), pair.buggy, pair.fixed)
        if key in seen:
            removed += 1
            continue
        seen.add(key)
        kept.append(pair)
    return kept, removed


def _summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "median": 0.0, "max": 0.0}
    return {
        "mean": round(statistics.fmean(values), 4),
        "median": float(statistics.median(values)),
        "max": float(max(values)),
    }


def corpus_stats(pairs: Sequence[BugFixPair], totals: DiscoveryStats | None = None) -> dict[str, Any]:
    """What a corpus holds: pairs per problem, bug kinds (SStuB classes), how the bugs were found.

    Kinds are classified again from the statements (:func:`hotfix_engine.patterns.classify_pair`),
    so corpora written before a classifier change report alike. ``totals`` (from the progress file)
    adds the problems tried and the time taken.
    """
    from hotfix_engine.patterns import classify_pair

    unique, duplicates = dedupe_pairs(pairs)
    per_problem = Counter(problem_of(p) for p in unique)
    sizes = sorted(per_problem.values())
    kinds = Counter(classify_pair(p.buggy.strip(), p.fixed.strip()) for p in unique)
    found_by = Counter(str(p.extra.get("found_by") or "unknown") for p in unique)
    rates = [float(r) for p in unique if isinstance(r := p.extra.get("buggy_rate"), int | float)]
    in_reference = [p for p in unique if "fails_in_reference" in p.extra]
    result: dict[str, Any] = {
        "pairs": len(unique),
        "duplicates": duplicates,
        "problems_with_pairs": len(per_problem),
        "pairs_per_problem": {
            **_summary(sizes),
            "histogram": {str(k): v for k, v in sorted(Counter(sizes).items())},
        },
        "bug_kinds": dict(kinds.most_common()),
        "found_by": dict(found_by.most_common()),
        "fails_in_reference": (
            sum(bool(p.extra["fails_in_reference"]) for p in in_reference) / len(in_reference)
            if in_reference
            else None
        ),
        "discovery_buggy_rate": _summary(rates) if rates else None,
        "per_problem": dict(sorted(per_problem.items())),
    }
    if totals is not None:
        tried = totals.problems + totals.skipped_no_tests + totals.skipped_broken
        result["discovery"] = {**totals.to_json(), "problems_tried": tried}
    return result


def stats_text(stats: Mapping[str, Any]) -> str:
    """The statistics as a few lines for a terminal (everything but the per-problem counts)."""
    per = stats["pairs_per_problem"]
    lines = [
        f"{stats['pairs']} pairs from {stats['problems_with_pairs']} problems "
        f"({stats['duplicates']} duplicates left out)"
    ]
    if stats["pairs"]:
        lines += [
            f"pairs per problem: mean {per['mean']:.2f}, median {per['median']:g}, max {per['max']:g}; "
            "problems with 1, 2, ... pairs: " + ", ".join(f"{k}: {v}" for k, v in per["histogram"].items()),
            "bug kinds: " + ", ".join(f"{k} {v}" for k, v in stats["bug_kinds"].items()),
            "found by: " + ", ".join(f"{k} {v}" for k, v in stats["found_by"].items()),
        ]
    if stats.get("fails_in_reference") is not None:
        lines.append(
            f"buggy statement also fails in the reference solution: {stats['fails_in_reference']:.0%}"
        )
    if stats.get("discovery_buggy_rate"):
        rate = stats["discovery_buggy_rate"]
        lines.append(f"buggy rate when found: mean {rate['mean']:.0%}, median {rate['median']:.0%}")
    run = stats.get("discovery")
    if run:
        lines.append(
            f"problems tried {run['problems_tried']} ({run['skipped_no_tests']} without tests, "
            f"{run['skipped_broken']} with a failing reference); {run['elapsed_s'] / 3600:.1f} h of compute, "
            f"{run['pairs_per_hour']:.0f} pairs/hour"
        )
    return "\n".join(lines)


def read_stats(path: str | Path) -> dict[str, Any]:
    """Statistics of a corpus file, with the run totals when its progress file is there."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such pair file")
    pairs = load_corpus(path)
    states, _, _ = _read_lines(progress_path(path))
    done = {str(s["problem"]): s for s in states[1:] if s.get("kind") == "problem"}
    totals = _totals(done.values(), pairs=len(dedupe_pairs(pairs)[0])) if states else None
    return corpus_stats(pairs, totals)
