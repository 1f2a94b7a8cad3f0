"""The hotfix objectives: pure functions on logits, targets and masks, composed by name with weights.

Every function takes ``logits`` of shape ``(N, V)`` (one row per scored position; the trainer gathers
only the positions that need a loss, because Gemma's 262k-word output layer makes full logits the
memory hog), ``targets`` of shape ``(N,)`` and a float or bool ``mask`` of shape ``(N,)`` selecting
the positions that count, and returns a scalar. Nothing here runs a model.

The three terms follow Yang & Lo, "Hotfixing Large Language Models for Code" (2024), section 3:
*learn* the fixed code, *unlearn* the buggy code, *retain* everything else.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

OBJECTIVES = ("learn", "unlearn", "retain")
LEARN_TOKENS = ("whole", "changed")
UNLEARN_LOSSES = ("unlikelihood", "gradient_ascent", "npo")
RETAIN_LOSSES = ("kl", "ce", "hidden")
# Measured on Gemma 3 270M: the paper's 1 / 0.5 / 1 raised held-out perplexity 6.4 % in 6 steps;
# unlearning gets 0.2. Retain is KL to the base at weight 50 over 32 positions a window: on the
# QuixBugs train split (27 pairs, 3 epochs) held-out perplexity rose 0.7 %, against 3.4 % for the
# hidden-state distance at 50 and 3.9 % for learn alone; KL at 5 over 16 positions let it rise 8.7 %.
DEFAULT_WEIGHTS = {"learn": 1.0, "unlearn": 0.2, "retain": 50.0}

# p is clamped below 1 - EPS in the unlikelihood term so that -log(1 - p) stays finite and its
# gradient bounded when the model is certain of the buggy token.
EPS = 1e-6


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the masked positions; zero (still attached to the graph) when nothing is masked."""
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) at each position, computed in float32 so bf16 models do not lose the tail."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def learn_ce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the fixed code given its context (Yang & Lo 2024, eq. 1, L_learn).

    The mask chooses the variant: all tokens of the fixed statement, or only the tokens that differ
    from the buggy one (the paper's ``*_added`` setting).
    """
    return _masked_mean(-token_logprobs(logits, targets), mask)


def unlearn_unlikelihood(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unlikelihood -log(1 - p(buggy token)) (Welleck et al. 2020, eq. 4; Yang & Lo 2024, L_unlearn).

    Bounded below by 0 and vanishing as p -> 0, so it stops pushing once the buggy token is unlikely.
    Use it only on the tokens that differ from the fix: buggy and fixed lines share most tokens, and
    unlearning the shared ones fights the learn term (docs/architecture.md, Contracts).
    """
    p = token_logprobs(logits, targets).exp().clamp(max=1.0 - EPS)
    return _masked_mean(-torch.log1p(-p), mask)


def unlearn_gradient_ascent(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, max_nll: float = 6.0
) -> torch.Tensor:
    """Gradient ascent on the buggy tokens' likelihood, log p (Jang et al. 2023, "Knowledge Unlearning").

    Plain ascent is unbounded and wrecks a model within a few steps, so this applies a stop rule per
    token: a token whose negative log-likelihood already exceeds ``max_nll`` (p < e^-6 by default)
    contributes nothing, and the term is bounded below by -``max_nll``.
    """
    logp = token_logprobs(logits, targets)
    active = mask.to(torch.bool) & (-logp.detach() < max_nll)
    return _masked_mean(logp, active.to(logp.dtype)) if active.any() else logp.sum() * 0.0


def unlearn_npo(
    logits: torch.Tensor,
    ref_logprobs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    beta: float = 0.1,
) -> torch.Tensor:
    """Negative preference optimisation per token (Zhang et al. 2024, "Negative Preference Optimization", eq. 3).

    (2 / beta) * log(1 + (p / p_ref) ** beta) with p_ref from the base model (the adapter disabled):
    like gradient ascent near the reference, but its gradient fades as p falls below p_ref, so it
    cannot run away.
    """
    log_ratio = token_logprobs(logits, targets) - ref_logprobs.detach().float()
    return _masked_mean(2.0 / beta * F.softplus(beta * log_ratio), mask)


def retain_kl(logits: torch.Tensor, base_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(base || adapted) on ordinary code (Yang & Lo 2024, L_retain; trl's reference-model KL).

    ``base_logits`` come from the same model with the adapter disabled, under ``no_grad``; the
    gradient flows through ``logits`` only. (The paper's code computed this term without any
    gradient, so it never acted: tests check that it moves the adapter.)
    """
    base_logp = torch.log_softmax(base_logits.detach().float(), dim=-1)
    logp = torch.log_softmax(logits.float(), dim=-1)
    per_position = (base_logp.exp() * (base_logp - logp)).sum(-1)
    return _masked_mean(per_position, mask)


def retain_ce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Plain language-modelling cross-entropy on ordinary code, the cheaper retain alternative (no base pass)."""
    return learn_ce(logits, targets, mask)


def retain_hidden(hidden: torch.Tensor, base_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Relative squared distance of the last hidden states to the base's, at every masked position.

    Feature-level distillation (Romero et al. 2015, "FitNets"; the representation-matching retain
    terms of the unlearning literature, e.g. RMU, Li et al. 2024): equal final hidden states mean
    equal next-token distributions, yet no output-layer logits are needed, so on a 262k-word
    vocabulary every position of a window can be held for the price of a few. ``hidden`` is
    ``(N, H)``; the distance is divided by the base's mean squared norm so the scale is model-free.
    """
    base = base_hidden.detach().float()
    per_position = (hidden.float() - base).pow(2).mean(-1) / base.pow(2).mean().clamp_min(1e-12)
    return _masked_mean(per_position, mask)


def validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Check objective names and weights; unknown names raise ValueError listing the valid ones."""
    unknown = sorted(set(weights) - set(OBJECTIVES))
    if unknown:
        raise ValueError(f"unknown objective(s) {', '.join(unknown)}; valid: {', '.join(OBJECTIVES)}")
    if not weights:
        raise ValueError(f"at least one objective is needed; valid: {', '.join(OBJECTIVES)}")
    bad = [name for name, weight in weights.items() if not weight >= 0.0]
    if bad:
        raise ValueError(f"objective weights must be >= 0: {', '.join(bad)}")
    if not any(weights.values()):
        raise ValueError("all objective weights are zero: nothing to train")
    return {name: float(weights[name]) for name in OBJECTIVES if name in weights}


def parse_weights(objectives: str, weights: str = "") -> dict[str, float]:
    """``"learn,unlearn"`` and ``"learn=1,unlearn=0.5"`` -> validated weights (DEFAULT_WEIGHTS where none is given)."""
    names = [name.strip() for name in objectives.split(",") if name.strip()]
    given: dict[str, float] = {}
    for item in (part.strip() for part in weights.split(",") if part.strip()):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"weight {item!r} is not NAME=NUMBER")
        try:
            given[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"weight {item!r} is not NAME=NUMBER") from None
    stray = sorted(set(given) - set(names))
    if stray and names:
        raise ValueError(f"weight given for objective(s) not selected: {', '.join(stray)}")
    return validate_weights(
        {name: given.get(name, DEFAULT_WEIGHTS.get(name, 1.0)) for name in names or given}
    )


def compose(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """The weighted sum of the terms present; a weighted term that is missing is an error, not a silent 0."""
    missing = [name for name, weight in weights.items() if weight and name not in terms]
    if missing:
        raise ValueError(f"no value for objective(s) {', '.join(missing)}")
    parts = [weights[name] * value for name, value in terms.items() if weights.get(name)]
    return torch.stack(parts).sum()
