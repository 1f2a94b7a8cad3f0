"""What every caller asks of a transformers model and its tokenizer, answered once.

Serving, training and evaluation all need the end-of-sequence tokens, the start-of-text token the
tokenizer adds, and the keyword that takes the key/value cache; each had its own copy, and the
copies disagreed on details (whether the generation config's list counts, PEFT wrappers).
"""

from __future__ import annotations

import inspect
from typing import Any


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every token that ends a generation: the generation config's (one or a list) and the tokenizer's."""
    ids: set[int] = set()
    config = getattr(model, "generation_config", None)
    for value in (getattr(config, "eos_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(int(v) for v in value)
    return ids


def leading_bos(tokenizer: Any) -> list[int]:
    """``[bos]`` when the tokenizer puts a start-of-text token before what it encodes, else ``[]``.

    Having a ``bos_token_id`` is not enough: some tokenizers define one and never add it.
    """
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return []
    probe = tokenizer("x", add_special_tokens=True).input_ids
    return [bos] if probe and probe[0] == bos else []


def cache_argument(model: Any) -> str:
    """The keyword (and output field) of the key/value cache: ``cache`` in transformers >= 5.2x, else the old name."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
