"""Gemma 3's sliding-window layers through the engine's cache: long prompts, fed in chunks and then
token by token as the user types on, give the logits of one uncached pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hotfix_engine.completion import CompletionEngine
from hotfix_engine.models import LoadedModel


@pytest.fixture(scope="module")
def gemma(tiny_loaded) -> CompletionEngine:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tiny_loaded.tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=8,  # far shorter than the prompt: the sliding layers must drop what they cannot see
        layer_types=["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
        max_position_embeddings=512,
    )
    model = Gemma3ForCausalLM(config).eval()
    loaded = LoadedModel(model, tiny_loaded.tokenizer, "tiny-gemma3", "tiny-gemma3", torch.device("cpu"))
    engine = CompletionEngine(loaded)
    yield engine
    engine.close()


def test_chunked_and_incremental_cache_match_one_pass(gemma, monkeypatch) -> None:
    ids = list(np.random.default_rng(0).integers(3, len(gemma.tokenizer), size=60))
    with torch.inference_mode():
        reference = gemma.slot.model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
    monkeypatch.setattr(gemma, "PREFILL_CHUNK", 7)
    gemma._reset_cache()
    _, logits = gemma._fill(ids[:40], None)
    np.testing.assert_allclose(logits, reference[39], atol=1e-4)
    with torch.inference_mode():
        for position in range(40, 60):  # typing on: one token at a time over the cached prefix
            np.testing.assert_allclose(gemma._forward([ids[position]]), reference[position], atol=1e-4)
    # Back to a shorter common prefix (the user deleted text), then on again.
    _, logits = gemma._fill(ids[:30] + ids[30:45], None)
    np.testing.assert_allclose(logits, reference[44], atol=1e-4)
