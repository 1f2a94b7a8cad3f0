"""Exact probabilities of given completions: how likely a model is to write a statement, as served.

Sampling K completions a prompt estimates the rate at which a model writes the buggy (or fixed)
statement, with noise that needs many samples to beat: one sample in thirty moved the old gate.
The rate it estimates is the probability of the statement's tokens after the prompt, which one
forward pass gives exactly. Prompts are built as the server builds them
(:func:`hotfix_engine.prompts.prompt_for`, token healing included), so the number is about the
suggestions users see. At temperature 1 and without a nucleus cut it is the expected rate of the
paper's protocol; ``hotfix eval`` keeps sampling for that protocol itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hotfix_engine.models import FimTokens
from hotfix_engine.picking import HEAL_CANDIDATES
from hotfix_engine.prompts import prompt_for

# Rows scored together: each keeps its target positions' logits over the whole vocabulary
# (262k for Gemma), so a few rows of 20 tokens already hold tens of megabytes.
BATCH_ROWS = 4


@dataclass(frozen=True)
class Completion:
    """A completion to score: the text before the cursor, after it, and what would be written."""

    prefix: str
    completion: str
    suffix: str = ""


@torch.inference_mode()
def completion_logprobs(
    model,
    tokenizer,
    items: Sequence[Completion],
    *,
    budget: int = 512,
    fim: FimTokens | None = None,
    batch_rows: int = BATCH_ROWS,
) -> list[float]:
    """``log P(completion | prompt)`` for each item, summed over the completion's tokens.

    With token healing the prompt's last token is taken back and the completion is scored from the
    healed text on, as the model writes it when serving: the first token's probability is taken
    among the tokens that start with the healed text (serving's mask), not the whole vocabulary.
    """
    rows: list[tuple[list[int], list[int], str]] = []
    for item in items:
        prompt = prompt_for(tokenizer, item.prefix, item.suffix, budget=budget, fim=fim)
        target = list(tokenizer(prompt.healed + item.completion, add_special_tokens=False).input_ids)
        rows.append((list(prompt.ids), target, prompt.healed))
    scores: list[float] = []
    for start in range(0, len(rows), batch_rows):
        scores.extend(_score(model, rows[start : start + batch_rows], tokenizer))
    return scores


def _healed_share(logp: torch.Tensor, healed: str, first: int, tokenizer) -> float:
    """log of the probability mass serving's healing mask keeps: tokens that start with ``healed``."""
    count = min(HEAL_CANDIDATES, logp.shape[-1])
    candidates = logp.topk(count).indices.tolist()
    allowed = {i for i in candidates if str(tokenizer.decode([i])).startswith(healed)} | {first}
    return float(torch.logsumexp(logp[list(allowed)], dim=0))


def _score(model, rows: list[tuple[list[int], list[int], str]], tokenizer) -> list[float]:
    """Left-padded rows, so every target ends the row and only the last positions' logits are kept."""
    device = next(model.parameters()).device
    width = max(len(p) + len(t) for p, t, _ in rows)
    keep = max(len(t) for _, t, _ in rows) + 1
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (prompt, target, _) in enumerate(rows):
        seq = prompt + target
        ids[i, width - len(seq) :] = torch.tensor(seq)
        mask[i, width - len(seq) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        use_cache=False,
        logits_to_keep=keep,
    ).logits.float()
    logp = torch.log_softmax(logits, dim=-1)  # (rows, keep, vocab): position j predicts token j+1
    scores = []
    for i, (_, target, healed) in enumerate(rows):
        if not target:
            scores.append(0.0)
            continue
        # The target's tokens are the row's last len(target); their predictions sit one position earlier.
        steps = torch.arange(keep - 1 - len(target), keep - 1)
        chosen = torch.tensor(target)
        score = float(logp[i, steps, chosen].sum())
        if healed:
            score -= _healed_share(logp[i, steps[0]], healed, target[0], tokenizer)
        scores.append(score)
    return scores
