"""Prompts cut to a token budget, with fill-in-the-middle where the model was trained for it.

Only the end of a long prefix matters to the next line, so the prefix is cut by characters first
(cheap on a document of several MB), at a line start so the model never sees half a line first.
"""

from __future__ import annotations

from typing import Any

from hotfix_engine.models import FimTokens

CHARS_PER_TOKEN = 3  # code averages 3-4 characters a token: aim a little under the budget
ANCHOR_GRID = 1024  # characters; the prompt start moves only in steps of this (or a quarter window)
HEAD_CHARS_PER_TOKEN = 12  # generous upper bound when cutting the suffix
SUFFIX_SHARE = 0.25  # of the budget, when the model can use the suffix at all
SUFFIX_LINES = 20


def _bos(tokenizer: Any) -> list[int]:
    bos = tokenizer.bos_token_id
    if bos is None:
        return []
    probe = tokenizer("x", add_special_tokens=True).input_ids
    return [bos] if probe and probe[0] == bos else []


def tail_tokens(tokenizer: Any, text: str, budget: int) -> list[int]:
    """The last tokens of ``text`` within ``budget``, starting at a line boundary.

    The start is anchored to a grid of characters, so while the user types on it stays put and the
    new prompt extends the previous one token for token: that is what lets the engine reuse its
    key/value cache instead of recomputing the whole prompt.
    """
    if budget <= 0 or not text:
        return []
    window = budget * CHARS_PER_TOKEN
    grid = max(1, min(ANCHOR_GRID, window // 4))
    start = 0
    if len(text) > window:
        start = -(-(len(text) - window) // grid) * grid
    while True:
        cut = start
        if start:
            newline = text.find("\n", start - 1)
            cut = newline + 1 if newline >= 0 else start
        ids: list[int] = tokenizer(text[cut:], add_special_tokens=False).input_ids
        if len(ids) <= budget or start >= len(text):
            return ids[-budget:]
        start += grid


def head_tokens(tokenizer: Any, text: str, budget: int) -> list[int]:
    if budget <= 0 or not text:
        return []
    ids: list[int] = tokenizer(text[: budget * HEAD_CHARS_PER_TOKEN], add_special_tokens=False).input_ids
    return ids[:budget]


def build_prompt(tokenizer: Any, prefix: str, suffix: str, budget: int, fim: FimTokens | None) -> list[int]:
    """Token ids for the model: ``[bos] prefix`` or the FIM form ``[bos] <pre> prefix <suf> suffix <mid>``."""
    bos = _bos(tokenizer)
    if fim is None or not suffix.strip():
        return bos + tail_tokens(tokenizer, prefix, budget)
    near_suffix = "\n".join(suffix.split("\n")[:SUFFIX_LINES])
    suffix_ids = head_tokens(tokenizer, near_suffix, int(budget * SUFFIX_SHARE))
    prefix_ids = tail_tokens(tokenizer, prefix, budget - len(suffix_ids))
    vocab = tokenizer.convert_tokens_to_ids
    return bos + [vocab(fim.prefix)] + prefix_ids + [vocab(fim.suffix)] + suffix_ids + [vocab(fim.middle)]
