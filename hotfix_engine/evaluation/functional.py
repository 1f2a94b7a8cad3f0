"""Functional check of pair samples: where a pair carries tests, does the completed function pass?

Exact-statement matching misses fixes written differently (``x != 0`` for ``x``). For pairs with
tests, each sample's first line replaces the buggy line between the pair's prefix and suffix and the
tests run in the sandbox; the share of samples that pass is the pair's functional fix rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hotfix_engine.evaluation.lines import first_line
from hotfix_engine.evaluation.sampling import Sample
from hotfix_engine.evaluation.sandbox import DEFAULT_LIMITS, SandboxLimits, run_many
from hotfix_engine.pairs import BugFixPair


@dataclass(frozen=True)
class FunctionalRates:
    """Per pair with tests: its key, how many samples ran, how many passed."""

    per_pair: tuple[tuple[str, int, int], ...]

    @property
    def pass_rate(self) -> float:
        total = sum(n for _, n, _ in self.per_pair)
        return sum(c for _, _, c in self.per_pair) / total if total else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "pairs": len(self.per_pair),
            "pass_rate": self.pass_rate,
            "per_pair": [{"key": k, "samples": n, "passed": c} for k, n, c in self.per_pair],
        }


def pair_program(pair: BugFixPair, line: str) -> str:
    """The pair's code with ``line`` (a whole line) in the buggy statement's place, then its tests."""
    head = pair.prefix[: pair.prefix.rfind("\n") + 1]
    return f"{head}{line}\n{pair.suffix}\n\n\n{pair.tests}\n"


def functional_rates(
    pairs: Sequence[BugFixPair],
    samples: Sequence[Sequence[Sample | str]],
    limits: SandboxLimits = DEFAULT_LIMITS,
    progress: Callable[[int, int], None] | None = None,
) -> FunctionalRates:
    """Run every sample of every pair that has tests; identical programs run once."""
    jobs: list[tuple[str, list[str]]] = []
    for pair, row in zip(pairs, samples, strict=True):
        if pair.tests.strip():
            texts = [s if isinstance(s, str) else s.text for s in row]
            jobs.append((pair.key, [pair_program(pair, first_line(pair.prefix, t)) for t in texts]))
    unique = sorted({program for _, programs in jobs for program in programs})
    outcome = dict(zip(unique, (r.passed for r in run_many(unique, limits, progress=progress)), strict=True))
    return FunctionalRates(
        tuple((key, len(programs), sum(outcome[p] for p in programs)) for key, programs in jobs)
    )
