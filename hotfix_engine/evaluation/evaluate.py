"""One evaluation run of one model state, and the paired comparison of two runs.

``evaluate`` measures everything ``hotfix eval`` reports (bug rates per pair set, source and pattern;
the functional check; HumanEval pass@k; the line-level metric; perplexity; leakage) with one progress
bar whose estimate of time left counts generated samples, the dominant cost. ``compare`` pairs two
runs item by item: the same pairs, problems and lines, seeded alike.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

from hotfix_engine.evaluation import stats
from hotfix_engine.evaluation.bugrates import BugRates, score_samples
from hotfix_engine.evaluation.functional import FunctionalRates, functional_rates
from hotfix_engine.evaluation.humaneval import HumanEvalResult, humaneval
from hotfix_engine.evaluation.lines import LINE_SAMPLING, LineResult, LineTask, line_completion_rate
from hotfix_engine.evaluation.perplexity import perplexity
from hotfix_engine.evaluation.privacy import LeakageResult, leakage
from hotfix_engine.evaluation.problems import Problem
from hotfix_engine.evaluation.sampling import PAPER_SAMPLING, Sampling, check_protocol, generate_samples
from hotfix_engine.evaluation.sandbox import SandboxLimits
from hotfix_engine.pairs import BugFixPair

log = logging.getLogger(__name__)

# Ordinary code for the perplexity probe: standard-library modules every Python install has, which
# no hotfix trains on. The first ``max_tokens`` tokens of each are scored.
PROBE_MODULES = (
    "bisect", "heapq", "fractions", "statistics", "string", "textwrap", "shlex", "colorsys",
    "calendar", "difflib", "csv", "glob",
)  # fmt: skip


def probe_texts(count: int = len(PROBE_MODULES)) -> list[str]:
    import importlib

    return [inspect.getsource(importlib.import_module(name)) for name in PROBE_MODULES[:count]]


@dataclass(frozen=True)
class EvalConfig:
    """What to measure and how; defaults are the paper's protocol (docs/architecture.md, Contracts).

    ``sampling`` is how the pairs' completions are drawn; HumanEval and leakage draw theirs the same
    way with their own counts and lengths (:meth:`humaneval_sampling`, :meth:`privacy_sampling`), and
    the line-level metric greedily. ``protocol`` is how prompts are built: ``product`` as suggestions
    are served (token healing included), ``paper`` exactly as Yang & Lo 2024 did; the sampling
    defaults are the paper's either way.
    """

    sampling: Sampling = PAPER_SAMPLING
    functional: bool = True
    humaneval_samples: int = 1
    humaneval_max_new_tokens: int = 256
    privacy_samples: int = 0
    privacy_max_new_tokens: int = 128
    perplexity_texts: int = len(PROBE_MODULES)
    perplexity_tokens: int = 512
    timeout_s: float = 5.0
    memory_mb: int = 1024
    protocol: str = "product"

    def __post_init__(self) -> None:
        check_protocol(self.protocol)
        if self.humaneval_samples < 1 or self.humaneval_max_new_tokens < 1:
            raise ValueError("humaneval_samples and humaneval_max_new_tokens must be at least 1")
        if self.privacy_samples < 0 or self.privacy_max_new_tokens < 1:
            raise ValueError("privacy_samples must be >= 0 and privacy_max_new_tokens at least 1")
        if not 0 <= self.perplexity_texts <= len(PROBE_MODULES):
            raise ValueError(f"perplexity_texts must be in 0..{len(PROBE_MODULES)}")

    @property
    def limits(self) -> SandboxLimits:
        return SandboxLimits(timeout_s=self.timeout_s, memory_mb=self.memory_mb)

    def humaneval_sampling(self) -> Sampling:
        """The pairs' sampling with HumanEval's count and length; one sample is greedy pass@1."""
        return replace(
            self.sampling,
            samples=self.humaneval_samples,
            temperature=0.0 if self.humaneval_samples == 1 else self.sampling.temperature,
            max_new_tokens=self.humaneval_max_new_tokens,
        )

    def privacy_sampling(self) -> Sampling:
        """The pairs' sampling with leakage's count and length (only when ``privacy_samples``)."""
        return replace(
            self.sampling, samples=self.privacy_samples, max_new_tokens=self.privacy_max_new_tokens
        )

    def line_sampling(self) -> Sampling:
        """Greedy lines, seeded and batched as the rest."""
        return replace(LINE_SAMPLING, seed=self.sampling.seed, batch_size=self.sampling.batch_size)

    def to_json(self) -> dict[str, object]:
        """One flat object, the sampling's keys first: the shape reports have always had."""
        rest = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sampling"}
        return {**asdict(self.sampling), **rest}


@dataclass
class EvalRun:
    """Everything measured for one model state (``label``: an adapter version or "base")."""

    label: str
    rates: dict[str, BugRates] = field(default_factory=dict)
    functional: dict[str, FunctionalRates] = field(default_factory=dict)
    humaneval: HumanEvalResult | None = None
    lines: LineResult | None = None
    perplexity: float | None = None
    leakage: LeakageResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    samples_per_s: float | None = None

    def all_rates(self) -> BugRates:
        return BugRates.from_pairs([p for r in self.rates.values() for p in r.per_pair])

    def to_json(self) -> dict[str, object]:
        overall = self.all_rates()
        return {
            "label": self.label,
            "buggy_rate": overall.buggy_rate,
            "fixed_rate": overall.fixed_rate,
            "pair_sets": {
                name: {
                    **_rates_summary(rates),
                    "by_source": {k: _rates_summary(v) for k, v in rates.group_by("source").items()},
                    "by_pattern": {k: _rates_summary(v) for k, v in rates.group_by("pattern").items()},
                    "per_pair": rates.to_json()["per_pair"],
                }
                for name, rates in self.rates.items()
            },
            "functional": {name: f.to_json() for name, f in self.functional.items()},
            "humaneval": self.humaneval.to_json() if self.humaneval else None,
            "lines": self.lines.to_json() if self.lines else None,
            "perplexity": self.perplexity,
            "leakage": self.leakage.to_json() if self.leakage else None,
            "seconds": self.seconds,
            "samples_per_s": self.samples_per_s,
        }


def _rates_summary(rates: BugRates) -> dict[str, object]:
    return {
        "pairs": len(rates.per_pair),
        "samples": rates.samples,
        "buggy_rate": rates.buggy_rate,
        "fixed_rate": rates.fixed_rate,
        "buggy_ci": stats.bootstrap_ci([p.buggy_rate for p in rates.per_pair]),
        "fixed_ci": stats.bootstrap_ci([p.fixed_rate for p in rates.per_pair]),
    }


class _Bar:
    """One tqdm bar over all generated samples; each stage reports ``(done, total)`` of its own."""

    def __init__(self, total: int, enabled: bool, label: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="sample", disable=not enabled, desc=label, dynamic_ncols=True)
        self.offset = 0

    def stage(self, name: str, size: int):
        self.bar.set_postfix_str(name)
        start = self.offset
        self.offset += size

        def update(done: int, total: int) -> None:
            self.bar.n = start + round(done * size / total) if total else start + size
            self.bar.refresh()

        return update

    def close(self) -> None:
        self.bar.n = self.offset
        self.bar.close()


def evaluate(
    model,
    tokenizer,
    pair_sets: Mapping[str, Sequence[BugFixPair]],
    config: EvalConfig = EvalConfig(),
    *,
    label: str = "base",
    humaneval_problems: Sequence[Problem] = (),
    line_tasks: Sequence[LineTask] = (),
    progress: bool = True,
) -> EvalRun:
    """Measure one model state on the given pair sets, problems and line tasks."""
    run = EvalRun(label=label)
    pairs = [pair for group in pair_sets.values() for pair in group]
    limits = config.limits
    sampling = config.sampling
    total = (
        len(pairs) * sampling.samples
        + len(humaneval_problems) * config.humaneval_samples
        + len(line_tasks)
        + config.privacy_samples
    )
    bar = _Bar(total, progress, label)
    try:
        if pairs:
            started = time.perf_counter()
            generated = generate_samples(
                model,
                tokenizer,
                [p.prefix for p in pairs],
                sampling,
                protocol=config.protocol,
                progress=bar.stage("bug rates", len(pairs) * sampling.samples),
            )
            elapsed = time.perf_counter() - started
            run.seconds["bug_rates"] = elapsed
            run.samples_per_s = len(pairs) * sampling.samples / elapsed if elapsed else None
            start = 0
            for name, group in pair_sets.items():
                rows = generated[start : start + len(group)]
                start += len(group)
                run.rates[name] = score_samples(list(group), rows)
                if config.functional and any(p.tests.strip() for p in group):
                    began = time.perf_counter()
                    run.functional[name] = functional_rates(list(group), rows, limits)
                    run.seconds["functional"] = (
                        run.seconds.get("functional", 0.0) + time.perf_counter() - began
                    )
        if humaneval_problems:
            started = time.perf_counter()
            run.humaneval = humaneval(
                model,
                tokenizer,
                humaneval_problems,
                config.humaneval_sampling(),
                ks=(1, 10, 100),
                protocol=config.protocol,
                limits=limits,
                progress=bar.stage("humaneval", len(humaneval_problems) * config.humaneval_samples),
            )
            run.seconds["humaneval"] = time.perf_counter() - started
        if line_tasks:
            started = time.perf_counter()
            run.lines = line_completion_rate(
                model,
                tokenizer,
                line_tasks,
                config.line_sampling(),
                protocol=config.protocol,
                limits=limits,
                progress=bar.stage("lines", len(line_tasks)),
            )
            run.seconds["lines"] = time.perf_counter() - started
        if config.perplexity_texts:
            started = time.perf_counter()
            bar.bar.set_postfix_str("perplexity")
            run.perplexity = perplexity(
                model, tokenizer, probe_texts(config.perplexity_texts), max_tokens=config.perplexity_tokens
            )
            run.seconds["perplexity"] = time.perf_counter() - started
        if config.privacy_samples:
            started = time.perf_counter()
            run.leakage = leakage(
                model,
                tokenizer,
                config.privacy_sampling(),
                progress=bar.stage("privacy", config.privacy_samples),
            )
            run.seconds["privacy"] = time.perf_counter() - started
    finally:
        bar.close()
    return run


def compare(before: EvalRun, after: EvalRun, *, seed: int = 0) -> dict[str, object]:
    """Paired differences ``after - before`` with intervals and p-values, per metric."""
    result: dict[str, object] = {"before": before.label, "after": after.label, "pair_sets": {}}
    pair_sets: dict[str, object] = {}
    for name in before.rates.keys() & after.rates.keys():
        b, a = before.rates[name], after.rates[name]
        pair_sets[name] = {
            side: stats.compare_paired(
                [getattr(p, f"{side}_rate") for p in b.per_pair],
                [getattr(p, f"{side}_rate") for p in a.per_pair],
                seed=seed,
            ).to_json()
            for side in ("buggy", "fixed")
        }
    result["pair_sets"] = pair_sets
    if before.humaneval and after.humaneval:
        first_b, first_a = before.humaneval.passed_first(), after.humaneval.passed_first()
        result["humaneval"] = {
            "pass@1": stats.compare_paired(
                [float(x) for x in first_b], [float(x) for x in first_a], seed=seed
            ).to_json(),
            "p_mcnemar": stats.mcnemar_exact(first_b, first_a),
        }
    if before.lines and after.lines:
        lb, la = before.lines.passed(), after.lines.passed()
        result["lines"] = {
            "pass_rate": stats.compare_paired(
                [float(x) for x in lb], [float(x) for x in la], seed=seed
            ).to_json(),
            "p_mcnemar": stats.mcnemar_exact(lb, la),
        }
    if before.perplexity is not None and after.perplexity is not None:
        result["perplexity"] = {
            "before": before.perplexity,
            "after": after.perplexity,
            "relative": stats.relative_change(before.perplexity, after.perplexity),
        }
    if before.leakage and after.leakage:
        result["leakage"] = {
            "before": before.leakage.rate,
            "after": after.leakage.rate,
            "p_mcnemar": stats.mcnemar_exact(list(before.leakage.flags), list(after.leakage.flags)),
        }
    return result
