"""Exact completion probabilities (hotfix_engine.evaluation.likelihood) against a plain forward pass."""

from __future__ import annotations

import pytest
import torch

from hotfix_engine.evaluation.likelihood import Completion, completion_logprobs
from hotfix_engine.picking import only_tokens_starting_with
from hotfix_engine.prompts import prompt_for

ITEMS = [
    Completion("def add(a, b):\n    return a", " + b\n"),
    Completion("x = ", "[]\n"),
    Completion("class Stack:\n    def push(self, item):\n        self.items.app", "end(item)\n"),
    Completion("import os\n", "print(os.getcwd())\n"),
]


def _direct(model, tokenizer, item: Completion) -> float:
    """One row, no padding, every position's logits, and serving's own healing mask on the first."""
    prompt = prompt_for(tokenizer, item.prefix, item.suffix, budget=512)
    target = tokenizer(prompt.healed + item.completion, add_special_tokens=False).input_ids
    ids = torch.tensor([prompt.ids + target])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0].float()
    start = len(prompt.ids)
    rows = [logits[start + i - 1] for i in range(len(target))]
    if prompt.healed:
        first = only_tokens_starting_with(
            rows[0].numpy(),
            prompt.healed,
            lambda t: tokenizer.decode([t]),
            lambda text: tokenizer(text, add_special_tokens=False).input_ids[0],
        )
        rows[0] = torch.from_numpy(first)
    return float(sum(torch.log_softmax(row, dim=-1)[t] for row, t in zip(rows, target, strict=True)))


def test_batched_scores_equal_one_row_at_a_time(tiny_loaded):
    model, tok = tiny_loaded.model, tiny_loaded.tokenizer
    batched = completion_logprobs(model, tok, ITEMS, batch_rows=4)
    single = completion_logprobs(model, tok, ITEMS, batch_rows=1)
    assert batched == pytest.approx(single, abs=1e-3)
    assert batched == pytest.approx([_direct(model, tok, item) for item in ITEMS], abs=1e-3)
    assert all(score < 0 for score in batched)


def test_a_healed_prompt_scores_the_completion_from_the_healed_text(tiny_loaded):
    model, tok = tiny_loaded.model, tiny_loaded.tokenizer
    prompt = prompt_for(tok, ITEMS[2].prefix, budget=512)
    assert prompt.healed  # "app" is a partial word: healing takes it back
    (score,) = completion_logprobs(model, tok, [ITEMS[2]])
    assert score == pytest.approx(_direct(model, tok, ITEMS[2]), abs=1e-3)
