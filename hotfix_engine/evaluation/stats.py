"""Paired statistics, so that a user can tell a real change from noise.

Every comparison here is paired: the same pairs (or problems) scored before and after a hotfix.
Confidence intervals come from the percentile bootstrap over pairs; the paired test on per-pair rates
is an exact (or, for many pairs, Monte Carlo) sign-flip permutation test on the mean difference, with
the Wilcoxon signed-rank test beside it; paired pass/fail outcomes (pass@1 per problem) use the exact
McNemar test. Only the standard library: scipy is not a dependency.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Above this many non-zero differences the 2**n sign flips are sampled instead of enumerated.
_EXACT_FLIPS = 16
_RANDOM_FLIPS = 20000


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[[Sequence[float]], float] = mean,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (resampled with replacement)."""
    if not values:
        return (0.0, 0.0)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = random.Random(seed)
    n = len(values)
    estimates = sorted(statistic([values[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    tail = (1 - confidence) / 2
    return (_quantile(estimates, tail), _quantile(estimates, 1 - tail))


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def paired_differences(before: Sequence[float], after: Sequence[float]) -> list[float]:
    if len(before) != len(after):
        raise ValueError(f"paired samples differ in length: {len(before)} and {len(after)}")
    return [b - a for a, b in zip(before, after, strict=True)]


def sign_flip_test(before: Sequence[float], after: Sequence[float], *, seed: int = 0) -> float:
    """Two-sided p-value that the mean paired difference is zero (sign-flip permutation test).

    Under the null each difference is as likely to have either sign; the p-value is the share of sign
    assignments whose absolute mean is at least the observed one. Exact up to 16 non-zero differences.
    """
    diffs = [d for d in paired_differences(before, after) if d != 0]
    if not diffs:
        return 1.0
    observed = abs(sum(diffs)) - 1e-12
    magnitudes = [abs(d) for d in diffs]
    if len(diffs) <= _EXACT_FLIPS:
        hits = sum(
            abs(sum(s * m for s, m in zip(signs, magnitudes, strict=True))) >= observed
            for signs in itertools.product((1, -1), repeat=len(magnitudes))
        )
        return hits / 2 ** len(magnitudes)
    rng = random.Random(seed)
    hits = sum(
        abs(sum(m if rng.random() < 0.5 else -m for m in magnitudes)) >= observed
        for _ in range(_RANDOM_FLIPS)
    )
    # Counting the observed assignment keeps a Monte Carlo p-value valid (never exactly zero).
    return (hits + 1) / (_RANDOM_FLIPS + 1)


def wilcoxon_signed_rank(before: Sequence[float], after: Sequence[float]) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test (zero differences dropped, ties mid-ranked).

    Exact distribution for up to 25 differences without ties, else the normal approximation with the
    tie correction and a continuity correction.
    """
    diffs = [d for d in paired_differences(before, after) if d != 0]
    n = len(diffs)
    if n == 0:
        return 1.0
    ranks = _midranks([abs(d) for d in diffs])
    w_plus = sum(r for r, d in zip(ranks, diffs, strict=True) if d > 0)
    tied = len(set(ranks)) < n
    if n <= 25 and not tied:
        counts = _signed_rank_counts(n)
        w = min(w_plus, n * (n + 1) / 2 - w_plus)
        tail = sum(c for total, c in enumerate(counts) if total <= w) / 2**n
        return min(1.0, 2 * tail)
    expected = n * (n + 1) / 4
    tie_term = sum(t**3 - t for t in _tie_sizes(ranks)) / 48
    variance = n * (n + 1) * (2 * n + 1) / 24 - tie_term
    if variance <= 0:
        return 1.0
    z = (abs(w_plus - expected) - 0.5) / math.sqrt(variance)
    return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


def _midranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _tie_sizes(ranks: Sequence[float]) -> list[int]:
    sizes: dict[float, int] = {}
    for rank in ranks:
        sizes[rank] = sizes.get(rank, 0) + 1
    return [size for size in sizes.values() if size > 1]


def _signed_rank_counts(n: int) -> list[int]:
    """How many of the 2**n sign assignments give each rank sum W+ (dynamic programming)."""
    counts = [1]
    for rank in range(1, n + 1):
        grown = counts + [0] * rank
        for total, c in enumerate(counts):
            grown[total + rank] += c
        counts = grown
    return counts


def mcnemar_exact(before: Sequence[bool], after: Sequence[bool]) -> float:
    """Two-sided exact McNemar p-value for paired pass/fail outcomes (a sign test on discordant pairs)."""
    if len(before) != len(after):
        raise ValueError(f"paired samples differ in length: {len(before)} and {len(after)}")
    gained = sum(1 for a, b in zip(before, after, strict=True) if b and not a)
    lost = sum(1 for a, b in zip(before, after, strict=True) if a and not b)
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(gained, lost) + 1)) / 2**n
    return min(1.0, 2 * tail)


def relative_change(before: float, after: float) -> float | None:
    """``(after - before) / before``; None when the base rate is zero and no ratio exists."""
    return None if before == 0 else (after - before) / before


@dataclass(frozen=True)
class PairedComparison:
    """Before/after means of per-item values, the mean difference with its interval, and p-values."""

    n: int
    before: float
    after: float
    difference: float
    ci_low: float
    ci_high: float
    relative: float | None
    p_sign_flip: float
    p_wilcoxon: float

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def compare_paired(
    before: Sequence[float], after: Sequence[float], *, confidence: float = 0.95, seed: int = 0
) -> PairedComparison:
    """Everything a report needs to say whether a paired change is real."""
    diffs = paired_differences(before, after)
    low, high = bootstrap_ci(diffs, confidence=confidence, seed=seed)
    return PairedComparison(
        n=len(diffs),
        before=mean(before),
        after=mean(after),
        difference=mean(diffs),
        ci_low=low,
        ci_high=high,
        relative=relative_change(mean(before), mean(after)),
        p_sign_flip=sign_flip_test(before, after, seed=seed),
        p_wilcoxon=wilcoxon_signed_rank(before, after),
    )
