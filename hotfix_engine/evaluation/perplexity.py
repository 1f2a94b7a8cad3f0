"""Perplexity on ordinary code: a cheap retention probe that needs no execution.

A hotfix that damages the model shows up as higher perplexity on code it was not trained on, long
before it shows up in pass rates. Texts are scored one at a time because the embedded model's
262k-token output layer makes logits for a batch of long texts cost gigabytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from hotfix_engine.errors import EvaluationError


@torch.inference_mode()
def perplexity(model, tokenizer, texts: Sequence[str], *, max_tokens: int = 512) -> float:
    """exp of the mean next-token loss over all predicted tokens of ``texts`` (each cut to ``max_tokens``)."""
    device = next(model.parameters()).device
    total_loss = 0.0
    total_tokens = 0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"][:max_tokens]
        if len(ids) < 2:
            continue
        input_ids = torch.tensor([ids], dtype=torch.long, device=device)
        logits = model(input_ids=input_ids, use_cache=False).logits[0, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits, input_ids[0, 1:], reduction="sum")
        total_loss += float(loss)
        total_tokens += len(ids) - 1
    if not total_tokens:
        raise EvaluationError("perplexity needs at least one text of two or more tokens")
    return math.exp(total_loss / total_tokens)
