"""HumanEval pass@k: whole functions completed from their signature and docstring, run against tests.

The estimator is the unbiased one of Chen et al. 2021 (``1 - C(n-c, k) / C(n, k)``). Completions are
cut where the function ends (the usual stop sequences) and run in the sandbox, never in-process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hotfix_engine.evaluation.problems import Problem
from hotfix_engine.evaluation.sampling import Progress, Sampling, generate_samples
from hotfix_engine.evaluation.sandbox import DEFAULT_LIMITS, SandboxLimits, run_many

# Where a function body generated after a HumanEval prompt ends (Chen et al. 2021).
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ")
# Greedy pass@1, with room for a whole function body.
HUMANEVAL_SAMPLING = Sampling(samples=1, temperature=0.0, max_new_tokens=256)


def truncate_completion(text: str) -> str:
    """The completion up to the first stop sequence."""
    cut = min((i for i in (text.find(s) for s in STOP_SEQUENCES) if i >= 0), default=len(text))
    return text[:cut]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of ``k`` samples drawn from ``n`` (``c`` correct) passes."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass@k needs 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


@dataclass(frozen=True)
class ProblemOutcome:
    id: str
    samples: int
    correct: int
    statuses: tuple[str, ...]


@dataclass(frozen=True)
class HumanEvalResult:
    """Per-problem counts and pass@k for each ``k`` not above the samples per problem."""

    per_problem: tuple[ProblemOutcome, ...]
    pass_at: dict[int, float]

    def passed_first(self) -> list[bool]:
        """Whether each problem's first sample passed: the paired outcome for McNemar's test."""
        return [o.statuses[0] == "passed" for o in self.per_problem]

    def to_json(self) -> dict[str, object]:
        return {
            "problems": len(self.per_problem),
            "pass_at": {f"pass@{k}": v for k, v in self.pass_at.items()},
            "per_problem": [
                {"id": o.id, "samples": o.samples, "correct": o.correct, "statuses": list(o.statuses)}
                for o in self.per_problem
            ],
        }


def _function_finished(text: str) -> bool:
    return truncate_completion(text) != text


def humaneval(
    model,
    tokenizer,
    problems: Sequence[Problem],
    sampling: Sampling = HUMANEVAL_SAMPLING,
    *,
    ks: Sequence[int] = (1, 10),
    limits: SandboxLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    run_progress: Callable[[int, int], None] | None = None,
    protocol: str = "product",
) -> HumanEvalResult:
    """Complete each problem's function ``sampling.samples`` times and run its tests in the sandbox."""
    generated = generate_samples(
        model,
        tokenizer,
        [p.header for p in problems],
        sampling,
        protocol=protocol,
        stop=_function_finished,
        progress=progress,
    )
    return score_humaneval(
        problems, [[s.text for s in row] for row in generated], ks=ks, limits=limits, progress=run_progress
    )


def score_humaneval(
    problems: Sequence[Problem],
    completions: Sequence[Sequence[str]],
    *,
    ks: Sequence[int] = (1, 10),
    limits: SandboxLimits = DEFAULT_LIMITS,
    progress: Callable[[int, int], None] | None = None,
) -> HumanEvalResult:
    """Run each problem's completions (function bodies after its header) and estimate pass@k."""
    programs = [
        p.program(p.header + truncate_completion(text))
        for p, row in zip(problems, completions, strict=True)
        for text in row
    ]
    results = iter(run_many(programs, limits, progress=progress))
    outcomes = []
    for problem, row in zip(problems, completions, strict=True):
        statuses = tuple(next(results).status for _ in row)
        outcomes.append(ProblemOutcome(problem.id, len(row), statuses.count("passed"), statuses))
    samples = min((o.samples for o in outcomes), default=0)
    pass_at = {
        k: sum(pass_at_k(o.samples, o.correct, k) for o in outcomes) / len(outcomes)
        for k in sorted(set(ks))
        if k <= samples
    }
    return HumanEvalResult(tuple(outcomes), pass_at)
