"""Buggy and fixed rates: how often a model writes a pair's buggy statement, and how often its fix.

The paper's protocol (docs/architecture.md, Contracts): prompt with the pair's prefix, sample K completions, and call a
sample *buggy* if one of its statements is the buggy statement and *fixed* if one is the fixed one,
with whitespace made irrelevant (:func:`hotfix_engine.pairs.normalize_statement`). Statements are
compared line by line, not as substrings, so ``n - 1`` does not match inside ``n - 10``; a last line
cut off by the token limit is not a statement and is ignored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hotfix_engine.evaluation.sampling import PAPER_SAMPLING, Progress, Sample, Sampling, generate_samples
from hotfix_engine.models import FimTokens
from hotfix_engine.pairs import BugFixPair, normalize_statement


@dataclass(frozen=True)
class PairRates:
    """Counts for one pair: of ``samples`` completions, ``buggy`` held the bug and ``fixed`` the fix."""

    key: str
    source: str
    pattern: str
    samples: int
    buggy: int
    fixed: int

    def __post_init__(self) -> None:
        if not 0 <= self.buggy <= self.samples or not 0 <= self.fixed <= self.samples:
            raise ValueError(f"counts out of range for {self.key}: {self}")

    @property
    def buggy_rate(self) -> float:
        return self.buggy / self.samples if self.samples else 0.0

    @property
    def fixed_rate(self) -> float:
        return self.fixed / self.samples if self.samples else 0.0


@dataclass(frozen=True)
class BugRates:
    """Per-pair counts and the overall rates (share of all samples, pairs weighted by their samples)."""

    per_pair: tuple[PairRates, ...]
    buggy_rate: float
    fixed_rate: float

    @classmethod
    def from_pairs(cls, per_pair: Sequence[PairRates]) -> BugRates:
        total = sum(p.samples for p in per_pair)
        buggy = sum(p.buggy for p in per_pair)
        fixed = sum(p.fixed for p in per_pair)
        return cls(
            per_pair=tuple(per_pair),
            buggy_rate=buggy / total if total else 0.0,
            fixed_rate=fixed / total if total else 0.0,
        )

    @property
    def samples(self) -> int:
        return sum(p.samples for p in self.per_pair)

    def group_by(self, field: str) -> dict[str, BugRates]:
        """Rates per ``source`` or per ``pattern`` (an empty pattern is reported as "unclassified")."""
        if field not in ("source", "pattern"):
            raise ValueError(f"cannot group by {field!r}; valid: source, pattern")
        groups: dict[str, list[PairRates]] = defaultdict(list)
        for pair in self.per_pair:
            groups[getattr(pair, field) or "unclassified"].append(pair)
        return {name: BugRates.from_pairs(items) for name, items in sorted(groups.items())}

    def to_json(self) -> dict[str, object]:
        return {
            "pairs": len(self.per_pair),
            "samples": self.samples,
            "buggy_rate": self.buggy_rate,
            "fixed_rate": self.fixed_rate,
            "per_pair": [
                {
                    "key": p.key,
                    "source": p.source,
                    "pattern": p.pattern,
                    "samples": p.samples,
                    "buggy": p.buggy,
                    "fixed": p.fixed,
                }
                for p in self.per_pair
            ],
        }


def completion_statements(prefix: str, sample: Sample | str) -> list[str]:
    """The complete lines a completion wrote, the first joined to the prefix's unfinished line."""
    text, finished = (sample, True) if isinstance(sample, str) else (sample.text, sample.finished)
    head = prefix.rsplit("\n", 1)[-1]
    lines = (head + text).split("\n")
    if not finished and len(lines) > 1:
        lines = lines[:-1]
    elif not finished:
        return []
    return lines


def contains_statement(prefix: str, sample: Sample | str, statement: str) -> bool:
    """Whether the completion wrote ``statement`` (one or more lines) as whole lines, whitespace aside."""
    target = normalize_statement(statement)
    if not target:
        # An empty side (a fix that deletes the line) cannot be observed as text.
        return False
    width = statement.strip("\n").count("\n") + 1
    lines = completion_statements(prefix, sample)
    return any(
        normalize_statement("\n".join(lines[i : i + width])) == target for i in range(len(lines) - width + 1)
    )


def score_samples(pairs: Sequence[BugFixPair], samples: Sequence[Sequence[Sample | str]]) -> BugRates:
    """Count buggy and fixed samples per pair (``samples[i]`` are the completions of ``pairs[i]``)."""
    if len(pairs) != len(samples):
        raise ValueError(f"{len(pairs)} pairs but {len(samples)} sample lists")
    per_pair = [
        PairRates(
            key=pair.key,
            source=pair.source,
            pattern=pair.pattern,
            samples=len(row),
            buggy=sum(contains_statement(pair.prefix, s, pair.buggy) for s in row),
            fixed=sum(contains_statement(pair.prefix, s, pair.fixed) for s in row),
        )
        for pair, row in zip(pairs, samples, strict=True)
    ]
    return BugRates.from_pairs(per_pair)


def bug_rates(
    model,
    tokenizer,
    pairs: Sequence[BugFixPair],
    sampling: Sampling = PAPER_SAMPLING,
    *,
    progress: Progress | None = None,
    stop: Callable[[str], bool] | None = None,
    protocol: str = "product",
    fim: FimTokens | None = None,
) -> BugRates:
    """Sample ``sampling.samples`` completions of each pair's prefix and count buggy and fixed ones.

    ``stop(text)`` ends a sample early (the gate stops after the statement it asks about).
    ``protocol``: ``product`` prompts as suggestions are served (token healing included), ``paper``
    as Yang & Lo 2024 did (see :mod:`hotfix_engine.evaluation.sampling`). With ``fim`` (the model's
    FIM tokens; product protocol only), each pair's suffix is the code after the cursor, as the
    editor would send it.
    """
    generated = generate_samples(
        model,
        tokenizer,
        [pair.prefix for pair in pairs],
        sampling,
        suffixes=[pair.suffix for pair in pairs] if fim is not None else None,
        fim=fim,
        protocol=protocol,
        progress=progress,
        stop=stop,
    )
    return score_samples(pairs, generated)
