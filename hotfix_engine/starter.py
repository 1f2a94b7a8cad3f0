"""Whether an adapter is good enough to ship as the starter adapter, and the evidence file that says why.

A starter adapter is installed for every user who asks (``hotfix adapters install starter``), so it
must clear a fixed bar on held-out problems against the base model (issue 16): the buggy rate at most
half the base's and the fixed rate at least double, each with a paired p-value below 0.05; HumanEval
pass@1 and the line-level metric not significantly lower; perplexity at most 2 % higher; and enough
pairs that the test can say so. Each criterion is judged on its own and reported with its numbers,
so a refusal says exactly what fell short.

The input is a comparison as :func:`hotfix_engine.evaluation.evaluate.compare` returns it (and
:func:`hotfix_engine.ablations.compare_measurements`): ``pair_sets[name][side]`` paired comparisons,
``humaneval`` and ``lines`` with McNemar p-values, ``perplexity`` with its relative change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StarterGoal:
    """The bar (issue 16); the minimum sizes are the experiment's: fewer pairs cannot show the effect."""

    buggy_ratio: float = 0.5  # after / before at most this
    fixed_ratio: float = 2.0  # after / before at least this
    alpha: float = 0.05  # paired p-values below this count as significant
    max_perplexity_rise: float = 0.02
    min_test_pairs: int = 60
    min_train_pairs: int = 200
    p_value: str = "p_sign_flip"  # which paired test judges the rates (p_wilcoxon is the other)


@dataclass(frozen=True)
class Criterion:
    name: str
    met: bool
    reason: str
    values: dict[str, Any]


@dataclass(frozen=True)
class StarterDecision:
    meets: bool
    criteria: tuple[Criterion, ...]

    @property
    def reasons(self) -> dict[str, str]:
        return {c.name: c.reason for c in self.criteria}

    def failed(self) -> list[str]:
        return [c.name for c in self.criteria if not c.met]

    def to_json(self) -> dict[str, Any]:
        return {"meets": self.meets, "failed": self.failed(), "criteria": [asdict(c) for c in self.criteria]}


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _rate(comparison: Mapping[str, Any], pair_set: str, side: str) -> Mapping[str, Any] | None:
    return (comparison.get("pair_sets") or {}).get(pair_set, {}).get(side)


def _buggy(c: Mapping[str, Any] | None, goal: StarterGoal) -> Criterion:
    if c is None:
        return Criterion("buggy_rate", False, "not measured", {})
    before, after, p = float(c["before"]), float(c["after"]), float(c[goal.p_value])
    values = {"before": before, "after": after, "p": p, "ci": [c.get("ci_low"), c.get("ci_high")]}
    if before == 0:
        return Criterion("buggy_rate", False, "the base never writes these bugs: nothing to halve", values)
    halved = after <= goal.buggy_ratio * before
    significant = p < goal.alpha and after < before
    text = f"buggy {_pct(before)} -> {_pct(after)} ({after / before:.2f}x of the base, p = {p:.3g})"
    if not halved:
        return Criterion("buggy_rate", False, f"{text}: not at most {goal.buggy_ratio:g}x", values)
    if not significant:
        return Criterion("buggy_rate", False, f"{text}: not significant at {goal.alpha:g}", values)
    return Criterion("buggy_rate", True, text, values)


def _fixed(c: Mapping[str, Any] | None, goal: StarterGoal) -> Criterion:
    if c is None:
        return Criterion("fixed_rate", False, "not measured", {})
    before, after, p = float(c["before"]), float(c["after"]), float(c[goal.p_value])
    values = {"before": before, "after": after, "p": p, "ci": [c.get("ci_low"), c.get("ci_high")]}
    ratio = f"{after / before:.2f}x the base" if before else "the base never writes the fix"
    text = f"fixed {_pct(before)} -> {_pct(after)} ({ratio}, p = {p:.3g})"
    if not (after >= goal.fixed_ratio * before and after > before):
        return Criterion("fixed_rate", False, f"{text}: not at least {goal.fixed_ratio:g}x", values)
    if not p < goal.alpha:
        return Criterion("fixed_rate", False, f"{text}: not significant at {goal.alpha:g}", values)
    return Criterion("fixed_rate", True, text, values)


def _retained(name: str, label: str, c: Mapping[str, Any] | None, key: str, goal: StarterGoal) -> Criterion:
    """Not significantly lower: a drop counts only with McNemar's p below alpha."""
    if c is None:
        return Criterion(name, False, "not measured", {})
    paired, p = c[key], float(c["p_mcnemar"])
    before, after = float(paired["before"]), float(paired["after"])
    values = {"before": before, "after": after, "p_mcnemar": p}
    text = f"{label} {_pct(before)} -> {_pct(after)} (McNemar p = {p:.3g})"
    if after < before and p < goal.alpha:
        return Criterion(name, False, f"{text}: significantly lower", values)
    return Criterion(name, True, text, values)


def _perplexity(c: Mapping[str, Any] | None, goal: StarterGoal) -> Criterion:
    if c is None or c.get("relative") is None:
        return Criterion("perplexity", False, "not measured", {})
    rise = float(c["relative"])
    values = {"before": c["before"], "after": c["after"], "relative": rise}
    text = f"perplexity {float(c['before']):.3f} -> {float(c['after']):.3f} ({rise:+.1%})"
    if rise > goal.max_perplexity_rise:
        return Criterion("perplexity", False, f"{text}: above +{goal.max_perplexity_rise:.0%}", values)
    return Criterion("perplexity", True, text, values)


def _evidence(c: Mapping[str, Any] | None, train_pairs: int | None, goal: StarterGoal) -> Criterion:
    test_pairs = int(c["n"]) if c is not None else 0
    values = {"test_pairs": test_pairs, "train_pairs": train_pairs}
    short = []
    if test_pairs < goal.min_test_pairs:
        short.append(f"{test_pairs} held-out pairs (needs {goal.min_test_pairs})")
    if train_pairs is not None and train_pairs < goal.min_train_pairs:
        short.append(f"{train_pairs} training pairs (needs {goal.min_train_pairs})")
    if short:
        return Criterion("evidence", False, "too little evidence: " + ", ".join(short), values)
    trained = f", trained on {train_pairs}" if train_pairs is not None else ""
    return Criterion("evidence", True, f"{test_pairs} held-out pairs{trained}", values)


def decide_starter(
    comparison: Mapping[str, Any],
    goal: StarterGoal = StarterGoal(),
    *,
    pair_set: str = "test",
    train_pairs: int | None = None,
) -> StarterDecision:
    """Judge a comparison (base before, candidate after) against the starter bar, criterion by criterion.

    Anything not measured fails its criterion: a starter is shipped on evidence, not its absence.
    """
    buggy, fixed = _rate(comparison, pair_set, "buggy"), _rate(comparison, pair_set, "fixed")
    criteria = (
        _buggy(buggy, goal),
        _fixed(fixed, goal),
        _retained("humaneval", "HumanEval pass@1", comparison.get("humaneval"), "pass@1", goal),
        _retained("lines", "line-level pass rate", comparison.get("lines"), "pass_rate", goal),
        _perplexity(comparison.get("perplexity"), goal),
        _evidence(buggy, train_pairs, goal),
    )
    return StarterDecision(all(c.met for c in criteria), criteria)


def write_evidence(
    path: str | Path,
    decision: StarterDecision,
    comparison: Mapping[str, Any],
    *,
    goal: StarterGoal = StarterGoal(),
    adapter: str | Path | None = None,
    **context: Any,
) -> Path:
    """Write the decision, the bar, the comparison it was made on and its context as one JSON file.

    ``context`` is anything that says how the evidence was produced (model, training config, split,
    evaluation config). Written aside and renamed, so a reader never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "meets": decision.meets,
        "decision": decision.to_json(),
        "goal": asdict(goal),
        "adapter": str(adapter) if adapter is not None else None,
        "comparison": comparison,
        **context,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
