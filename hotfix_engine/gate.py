"""The quality gate: a new adapter version is published only on evidence, and says which evidence.

Three kinds, each a line in the decision (``hotfix adapters show V``, ``hotfix/status``):

- **taught**: the statements it was trained on (the user's rejected and fixed suggestions, a pair
  file's training split). Did the buggy statement become less likely and the fixed one more? This
  is what a personal hotfix promises, and all a version trained from the store can claim.
- **held-out**: pairs it never saw (a pair file's validation split). Only these can show that it
  generalises; a version without them never says it does.
- **retention**: what it must not break. Perplexity on ordinary code (at most +2 %), and the
  suggestions themselves on a fixed set of ordinary line completions (HumanEval's reference
  solutions with one line to write): they must not turn degenerate or unparseable, and must pass
  the tests no less often. Perplexity alone passed a version whose suggestions read
  ``items_by_item_by_item=None``.

Bug and fix rates are the exact probabilities of the statements after the prompt, as served
(:mod:`hotfix_engine.evaluation.likelihood`): no sampling noise, so the only uncertainty left is
which prompts were measured. A claim over several prompts is decided with an exact one-sided sign
test on the per-prompt change (``alpha`` 0.05); with fewer prompts than a test can decide on (5),
every prompt must have improved, and the decision says so. A change smaller than ``min_shift`` at a
prompt counts as no change: a version that only moved within that is not published.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from hotfix_engine.pairs import BugFixPair, where_they_part

if TYPE_CHECKING:  # the evaluation package imports torch: only when a measurement runs
    from hotfix_engine.evaluation.retention_check import Retention

# Fewest prompts for which a one-sided sign test can reach p < 0.05 (0.5 ** 5 = 0.031).
MIN_PROMPTS_FOR_TEST = 5


@dataclass(frozen=True)
class GateConfig:
    max_retention_loss: float = 0.02  # relative perplexity rise allowed on held-out code (the 2 %)
    alpha: float = 0.05  # one-sided significance of a claim over prompts
    # A prompt counts as changed when the odds of fixed against buggy moved by this factor (log).
    min_shift: float = math.log(1.25)
    prompt_tokens: int = 512  # prompt budget for scoring; the nearest code decides the next statement
    # Perplexity needs the whole vocabulary's logits at every position (262k for Gemma): 4 texts of 256
    # tokens take a few seconds a version; the suggestions below are the sharper retention check.
    probe_texts: int = 4
    probe_tokens: int = 256  # tokens of each perplexity probe text
    retention_tasks: int = 12  # ordinary line completions whose suggestions are checked
    retention_tokens: int = 24  # one line; the task is over at its end
    retention_prompt_tokens: int = 256  # the docstring and the lines above: what decides one line
    # Net line tasks the candidate may lose (tests failed, or its suggestion degenerate) against the
    # current version: one, as a near-tie between two tokens flips under any weight change.
    max_tasks_lost: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_retention_loss < 1.0:
            raise ValueError("max_retention_loss must be in [0, 1)")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError("alpha must be in (0, 1)")
        if (
            self.prompt_tokens < 16
            or self.probe_tokens < 2
            or self.retention_tasks < 0
            or self.probe_texts < 1
        ):
            raise ValueError("prompt_tokens, probe_tokens and retention_tasks are too small")


@dataclass(frozen=True)
class PairScore:
    """log P of a prompt's buggy and fixed statements (None: that side is empty, e.g. a deletion)."""

    key: str
    buggy: float | None
    fixed: float | None

    def margin(self) -> float:
        """How much more likely the fix is than the bug (log odds); one side alone where only one exists."""
        return (self.fixed if self.fixed is not None else 0.0) - (
            self.buggy if self.buggy is not None else 0.0
        )


@dataclass(frozen=True)
class Measurement:
    """One model's scores on the taught and held-out prompts, and its retention."""

    taught: tuple[PairScore, ...]
    held_out: tuple[PairScore, ...]
    retention: Retention
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "taught": _rates(self.taught),
            "held_out": _rates(self.held_out),
            "perplexity": self.retention.perplexity,
            "suggestions": len(self.retention.clean),
            "degenerate": self.retention.degenerate,
            "tasks_passed": sum(self.retention.passed),
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class Evidence:
    """One line of a decision: which evidence, its verdict and what it rests on."""

    kind: str  # "taught" | "held-out" | "retention"
    verdict: str  # "pass" | "fail" | "none" (nothing to judge on)
    text: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.kind}: {self.verdict} - {self.text}"


@dataclass(frozen=True)
class GateDecision:
    accepted: bool
    reason: str
    candidate: Measurement
    current: Measurement
    evidence: tuple[Evidence, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "evidence": [asdict(e) for e in self.evidence],
            "candidate": self.candidate.to_json(),
            "current": self.current.to_json(),
        }


def _rates(scores: Sequence[PairScore]) -> dict[str, Any]:
    """Mean probabilities of writing the buggy and the fixed statement (the expected rates at T = 1)."""
    buggy = [math.exp(s.buggy) for s in scores if s.buggy is not None]
    fixed = [math.exp(s.fixed) for s in scores if s.fixed is not None]
    return {
        "prompts": len(scores),
        "buggy_rate": sum(buggy) / len(buggy) if buggy else None,
        "fixed_rate": sum(fixed) / len(fixed) if fixed else None,
    }


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign test: P(at least ``wins`` of ``wins + losses`` fair coin flips)."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def compare_prompts(
    kind: str, candidate: Sequence[PairScore], current: Sequence[PairScore], config: GateConfig
) -> Evidence:
    """Did the candidate make the fixed statements likelier than the buggy ones, prompt by prompt?"""
    if not candidate:
        return Evidence(kind, "none", "no prompts of this kind")
    before, after = {s.key: s for s in current}, {s.key: s for s in candidate}
    shifts = [after[k].margin() - before[k].margin() for k in after if k in before]
    wins = sum(s > config.min_shift for s in shifts)
    losses = sum(s < -config.min_shift for s in shifts)
    rates_before, rates_after = _rates(current), _rates(candidate)
    moved = (
        f"buggy {_pct(rates_before['buggy_rate'])} -> {_pct(rates_after['buggy_rate'])}, "
        f"fixed {_pct(rates_before['fixed_rate'])} -> {_pct(rates_after['fixed_rate'])}"
    )
    n = len(shifts)
    numbers = {"prompts": n, "better": wins, "worse": losses, "before": rates_before, "after": rates_after}
    counted = f"{wins} of {n} prompts better, {losses} worse"
    if n >= MIN_PROMPTS_FOR_TEST:
        p = sign_test(wins, losses)
        numbers["p"] = p
        verdict = "pass" if p < config.alpha else "fail"
        return Evidence(kind, verdict, f"{moved}; {counted} (sign test p = {p:.3f})", numbers)
    verdict = "pass" if wins == n else "fail"
    note = "too few for a test, so every one must improve"
    return Evidence(kind, verdict, f"{moved}; {counted} ({n} prompts: {note})", numbers)


def compare_retention(candidate: Retention, current: Retention, config: GateConfig) -> Evidence:
    """Perplexity within its limit, no more degenerate suggestions, no fewer line tasks passed."""
    limit = current.perplexity * (1.0 + config.max_retention_loss)
    rise = candidate.perplexity / current.perplexity - 1.0 if current.perplexity > 0 else 0.0
    parts = [f"perplexity {current.perplexity:.3f} -> {candidate.perplexity:.3f} ({rise:+.1%})"]
    problems = []
    if not candidate.perplexity <= limit:
        problems.append(f"perplexity beyond the {config.max_retention_loss:.0%} limit")
    numbers: dict[str, Any] = {
        "perplexity_before": current.perplexity,
        "perplexity_after": candidate.perplexity,
    }
    if candidate.clean:
        lost = sum(a and not b for a, b in zip(current.passed, candidate.passed, strict=True))
        gained = sum(b and not a for a, b in zip(current.passed, candidate.passed, strict=True))
        parts.append(
            f"{len(candidate.clean)} ordinary suggestions: degenerate {current.degenerate} -> "
            f"{candidate.degenerate}, tests passed {sum(current.passed)} -> {sum(candidate.passed)}"
        )
        numbers.update(
            tasks=len(candidate.clean),
            degenerate_before=current.degenerate,
            degenerate_after=candidate.degenerate,
            passed_before=sum(current.passed),
            passed_after=sum(candidate.passed),
        )
        broke = sum(a and not b for a, b in zip(current.clean, candidate.clean, strict=True))
        mended = sum(b and not a for a, b in zip(current.clean, candidate.clean, strict=True))
        if broke - mended > config.max_tasks_lost:
            problems.append(f"{broke - mended} more suggestions degenerate or unparseable")
        if lost - gained > config.max_tasks_lost:
            problems.append(f"{lost - gained} fewer line tasks passed")
    text = "; ".join(parts) + (f" ({'; '.join(problems)})" if problems else "")
    return Evidence("retention", "fail" if problems else "pass", text, numbers)


def decide(candidate: Measurement, current: Measurement, config: GateConfig = GateConfig()) -> GateDecision:
    """Publish when the taught statements improved and nothing retained broke.

    Held-out prompts, where there are any, may not get worse (a significant loss rejects); they are
    the only evidence on which the decision says that the version generalises.
    """
    taught = compare_prompts("taught", candidate.taught, current.taught, config)
    held = compare_prompts("held-out", candidate.held_out, current.held_out, config)
    retention = compare_retention(candidate.retention, current.retention, config)
    evidence = (taught, held, retention)
    if retention.verdict == "fail":
        return GateDecision(False, f"retention failed: {retention.text}", candidate, current, evidence)
    held_lost = held.numbers.get("worse", 0) > held.numbers.get("better", 0) and (
        sign_test(held.numbers.get("worse", 0), held.numbers.get("better", 0)) < config.alpha
    )
    if held_lost:
        return GateDecision(False, f"held-out prompts got worse: {held.text}", candidate, current, evidence)
    if taught.verdict == "pass":
        scope = (
            "generalises to held-out prompts"
            if held.verdict == "pass"
            else (
                "no held-out prompts: not shown to generalise"
                if held.verdict == "none"
                else "does not generalise"
            )
        )
        return GateDecision(True, f"taught statements improved ({scope})", candidate, current, evidence)
    if taught.verdict == "none" and held.verdict == "pass":
        return GateDecision(True, "held-out prompts improved", candidate, current, evidence)
    return GateDecision(False, f"no clear improvement: {taught.text}", candidate, current, evidence)


def gate_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """A version's verdict and the evidence it rested on, line by line, for status displays."""
    gate = manifest.get("gate", {})
    return {
        "accepted": bool(gate.get("accepted")),
        "forced": bool(gate.get("forced")),
        "reason": gate.get("reason", ""),
        "evidence": list(gate.get("evidence", [])),
    }


def score_pairs(
    model: Any, tokenizer: Any, pairs: Sequence[BugFixPair], config: GateConfig, fim: Any = None
) -> tuple[PairScore, ...]:
    """Each pair prompted where its statements part, both scored exactly as served (likelihood.py).

    The cut is the first character where they differ, wherever it falls: token healing takes a
    partial token back as the server does, so the prompt is the one a user typing the line meets.
    """
    from hotfix_engine.evaluation.likelihood import Completion, completion_logprobs

    items: list[Completion] = []
    sides: list[tuple[int | None, int | None]] = []
    for pair in pairs:
        prefix, buggy, fixed = where_they_part(pair)
        slots: list[int | None] = []
        for text, whole in ((buggy, pair.buggy), (fixed, pair.fixed)):
            if whole.strip():
                # The statement's text, not its newline: a model writes ":\n" or "\n    " as one token,
                # so a lone "\n" token after it would score a tokenisation it never writes.
                items.append(Completion(prefix, text, pair.suffix))
                slots.append(len(items) - 1)
            else:
                slots.append(None)
        sides.append((slots[0], slots[1]))
    scores = completion_logprobs(model, tokenizer, items, budget=config.prompt_tokens, fim=fim)
    return tuple(
        PairScore(
            pair.key,
            scores[b] if b is not None else None,
            scores[f] if f is not None else None,
        )
        for pair, (b, f) in zip(pairs, sides, strict=True)
    )


def measure(
    model: Any,
    tokenizer: Any,
    taught: Sequence[BugFixPair],
    held_out: Sequence[BugFixPair],
    probes: Sequence[str],
    config: GateConfig,
    retention: Retention | None = None,
    fim: Any = None,
) -> Measurement:
    """Score a model (with whatever adapter is active); ``retention`` reuses an earlier measurement."""
    from hotfix_engine.evaluation.retention_check import measure_retention

    started = time.monotonic()
    taught_scores = score_pairs(model, tokenizer, taught, config, fim)
    held_scores = score_pairs(model, tokenizer, held_out, config, fim)
    if retention is None:
        retention = measure_retention(model, tokenizer, probes, config, fim)
    return Measurement(taught_scores, held_scores, retention, time.monotonic() - started)
