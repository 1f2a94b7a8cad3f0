"""The quality gate: a new adapter version is published only if it beats the current one.

On held-out pairs, measured with the paper's protocol (docs/architecture.md, Contracts: K samples at temperature 1.0,
top-p 0.95, 64 new tokens; prompted where the buggy and fixed lines part, see
:func:`hotfix_engine.pairs.at_divergence`), the candidate must lower the buggy rate and keep or raise the fixed rate;
and its perplexity on held-out ordinary code (the retention probe) may rise by at most
``max_retention_loss`` (2 %). One tie rule: when the buggy rate cannot fall (it is equal, typically
0 % on a model that rarely writes the bug), a strictly higher fixed rate is accepted instead, or a
user whose bugs the base model seldom repeats could never publish a fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from hotfix_engine.pairs import BugFixPair


@dataclass(frozen=True)
class GateConfig:
    max_retention_loss: float = 0.02  # relative perplexity rise allowed on held-out code (the 2 %)
    samples: int = 10  # samples a pair, the paper's K
    temperature: float = 1.0  # the paper's sampling settings, so numbers compare
    top_p: float = 0.95
    max_new_tokens: int = 64
    seed: int = 0  # the same seed for both sides, so sampling noise does not decide
    probe_tokens: int = (
        256  # tokens of each probe text scored; 8 x 256 costs half of 8 x 512 (full-vocabulary logits)
    )
    # Prompt each pair where its buggy and fixed lines part: the decision a hotfix changes, and
    # the only measurable one for pairs whose line the model cannot guess from the code above.
    prompt_at: str = "divergence"

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_retention_loss < 1.0:
            raise ValueError("max_retention_loss must be in [0, 1)")
        if self.prompt_at not in ("divergence", "line"):
            raise ValueError(f"unknown prompt_at {self.prompt_at!r}; valid: divergence, line")
        if self.samples < 1 or self.max_new_tokens < 1 or self.probe_tokens < 2:
            raise ValueError("samples, max_new_tokens and probe_tokens must be positive")


@dataclass(frozen=True)
class Measurement:
    """One model's scores: rates over held-out pairs and perplexity on held-out code."""

    buggy_rate: float
    fixed_rate: float
    perplexity: float
    pairs: int
    samples: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    accepted: bool
    reason: str
    candidate: Measurement
    current: Measurement

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "candidate": self.candidate.to_json(),
            "current": self.current.to_json(),
        }


MeasureFn = Callable[[Any, Any, Sequence[BugFixPair], Sequence[str], GateConfig], Measurement]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def decide(candidate: Measurement, current: Measurement, config: GateConfig = GateConfig()) -> GateDecision:
    """Accept or reject ``candidate`` against ``current`` with a one-line reason either way."""
    limit = current.perplexity * (1.0 + config.max_retention_loss)
    rise = candidate.perplexity / current.perplexity - 1.0 if current.perplexity > 0 else 0.0
    retention = f"retention perplexity {current.perplexity:.3f} -> {candidate.perplexity:.3f} ({rise:+.1%})"
    if not candidate.perplexity <= limit:
        reason = f"{retention}, beyond the {_pct(config.max_retention_loss)} limit"
        return GateDecision(False, reason, candidate, current)
    buggy = f"buggy {_pct(current.buggy_rate)} -> {_pct(candidate.buggy_rate)}"
    fixed = f"fixed {_pct(current.fixed_rate)} -> {_pct(candidate.fixed_rate)}"
    if candidate.fixed_rate < current.fixed_rate:
        return GateDecision(False, f"the fixed rate fell: {fixed}; {buggy}", candidate, current)
    if candidate.buggy_rate < current.buggy_rate:
        return GateDecision(True, f"better: {buggy}, {fixed}; {retention}", candidate, current)
    if candidate.buggy_rate == current.buggy_rate and candidate.fixed_rate > current.fixed_rate:
        return GateDecision(True, f"better: {fixed}, {buggy} (unchanged); {retention}", candidate, current)
    return GateDecision(False, f"no improvement: {buggy}, {fixed}", candidate, current)


def statement_written(pairs: Sequence[BugFixPair]) -> Callable[[str], bool]:
    """A sampling stop rule: a sample prompted where the lines part is decided once it ends its statement.

    Prompted mid-line, the first newline completes the buggy or fixed line (the widest statement of
    any pair sets how many lines to wait for); the rest of 64 tokens costs time and decides nothing.
    """
    width = max(
        (max(p.buggy.strip("\n").count("\n"), p.fixed.strip("\n").count("\n")) + 1 for p in pairs), default=1
    )
    return lambda text: text.count("\n") >= width


def measure(
    model: Any, tokenizer: Any, pairs: Sequence[BugFixPair], probe_texts: Sequence[str], config: GateConfig
) -> Measurement:
    """Score a model (with whatever adapter is active) with hotfix_engine.evaluation."""
    from hotfix_engine.evaluation import bug_rates, perplexity
    from hotfix_engine.pairs import at_divergence

    stop = None
    if config.prompt_at == "divergence":
        pairs = [at_divergence(pair) for pair in pairs]
        stop = statement_written(pairs)
    rates = bug_rates(
        model,
        tokenizer,
        pairs,
        samples=config.samples,
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
        stop=stop,
    )
    ppl = perplexity(model, tokenizer, probe_texts, max_tokens=config.probe_tokens)
    return Measurement(rates.buggy_rate, rates.fixed_rate, float(ppl), len(pairs), config.samples)
