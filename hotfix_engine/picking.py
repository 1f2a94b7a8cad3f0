"""Choosing the next token from a row of logits: greedy, nucleus sampling and token healing.

Both runtimes hand their logits over as a NumPy row, so one sampler serves llama.cpp and
transformers alike. Gemma's vocabulary has 262k entries: nothing here sorts the whole row, it
partitions out the few thousand likeliest first.

Evaluation samples many rows at once in torch (:func:`hotfix_engine.evaluation.sampling._choose`);
it shares the nucleus rule, :func:`nucleus_keep`, and says there why the rest is its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

Probabilities = TypeVar("Probabilities")

HEAL_CANDIDATES = 256  # the likeliest tokens searched for one that starts with the healed text
TOP_P_SHORTLIST = 2048  # nucleus sampling sorts only this many unless their mass falls short of top_p


def pick_token(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator | None) -> int:
    """Greedy at temperature 0; otherwise nucleus sampling (Holtzman et al., 2020)."""
    if temperature <= 0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / temperature
    finite = np.isfinite(scaled)
    if not finite.all():
        scaled = np.where(finite, scaled, -np.inf)
    scaled -= scaled.max()
    probs = np.exp(scaled)
    probs /= probs.sum()
    rng = rng or np.random.default_rng()
    if top_p >= 1.0:
        return int(rng.choice(len(probs), p=probs))
    shortlist = min(TOP_P_SHORTLIST, len(probs))
    candidates = np.argpartition(-probs, shortlist - 1)[:shortlist]
    if probs[candidates].sum() < top_p:
        candidates = np.arange(len(probs))
    order = candidates[np.argsort(-probs[candidates], kind="stable")]
    sorted_probs = probs[order]
    keep = nucleus_keep(sorted_probs, top_p)
    kept = sorted_probs[keep]
    return int(order[keep][rng.choice(len(kept), p=kept / kept.sum())])


def nucleus_keep(sorted_probs: Probabilities, top_p: float) -> Probabilities:
    """The nucleus of probabilities sorted in descending order (along the last axis), as a mask.

    The smallest prefix whose mass reaches ``top_p``: a token is kept while the mass before it is
    still short of ``top_p``, so the likeliest token is always kept. Written with the operations
    NumPy arrays and torch tensors share, so serving (one NumPy row) and evaluation (a torch batch)
    cut the nucleus by the same rule.
    """
    mass_before = sorted_probs.cumsum(-1) - sorted_probs  # type: ignore[attr-defined]
    return mass_before < top_p


def only_tokens_starting_with(
    logits: np.ndarray,
    text: str,
    token_text: Callable[[int], str],
    first_token_of: Callable[[str], int | None],
) -> np.ndarray:
    """Mask the logits to tokens whose text starts with ``text`` (among the likeliest candidates).

    The token that spells ``text`` itself always stays allowed, so healing never leaves nothing.
    """
    count = min(HEAL_CANDIDATES, len(logits))
    candidates = np.argpartition(-logits, count - 1)[:count]
    allowed = [int(i) for i in candidates if token_text(int(i)).startswith(text)]
    own = first_token_of(text)
    if own is not None:
        allowed.append(own)
    masked = np.full_like(logits, -np.inf)
    index = np.asarray(allowed, dtype=np.int64)
    masked[index] = logits[index]
    return masked


def rng_for(seed: int | None) -> np.random.Generator | None:
    return None if seed is None else np.random.default_rng(seed)
