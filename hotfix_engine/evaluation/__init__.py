"""Evaluation: the paper's measurements (buggy/fixed rates, retention, leakage) as one library.

The trainer's quality gate, ``hotfix eval`` and the benchmarks all call these functions, so a number
means the same thing wherever it is reported.
"""

from hotfix_engine.evaluation.bugrates import (
    BugRates,
    PairRates,
    bug_rates,
    contains_statement,
    score_samples,
)
from hotfix_engine.evaluation.perplexity import perplexity
from hotfix_engine.evaluation.sampling import Sample, Sampling, generate_samples, sample_completions

__all__ = [
    "BugRates",
    "PairRates",
    "Sample",
    "Sampling",
    "bug_rates",
    "contains_statement",
    "generate_samples",
    "perplexity",
    "sample_completions",
    "score_samples",
]
