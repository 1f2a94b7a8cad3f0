"""The sampler's two protocols: ``product`` prompts as serving does, ``paper`` as the paper did.

What the product protocol promises is checked against serving itself (``prompt_for`` for the prompt,
the engine's own greedy loop for the tokens), and the paper protocol against a copy of the code it
replaced, so neither drifts without a test saying so.
"""

from __future__ import annotations

import pytest
import torch
from tiny_model import build_model, build_tokenizer

from hotfix_engine.errors import ConfigError, EvaluationError
from hotfix_engine.evaluation import sampling
from hotfix_engine.evaluation.sampling import Sampling, encode_prompts, generate_samples
from hotfix_engine.models import FimTokens
from hotfix_engine.picking import only_tokens_starting_with
from hotfix_engine.prompts import prompt_for

# Prompts ending in a partial word (healed) and at a line boundary or in indentation (not healed).
PARTIAL = ["def add(a, b):\n    ret", "class Stack:\n    def pu", "def is_none(value):\n    if val"]
WHOLE = [
    "def add(a, b):\n    ",
    "x = 1\n",
    "def find(items, target):\n    for index, item in enumerate(items):\n        ",
]
BUDGET = 1536
GREEDY_12 = Sampling(samples=1, temperature=0.0, max_new_tokens=12)


@pytest.fixture(scope="module")
def tiny():
    tokenizer = build_tokenizer()
    return build_model(tokenizer, seed=0), tokenizer


def fed_prompts(model) -> tuple[list[list[int]], object]:
    """Record the unpadded prompt of every row the model reads in a prefill (one row per prompt)."""
    seen: list[list[int]] = []

    def hook(module, args, kwargs):
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        if ids.shape[1] == mask.shape[1]:  # a prefill; decoding steps feed one token against a longer mask
            seen.extend(row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True))

    return seen, model.register_forward_pre_hook(hook, with_kwargs=True)


def decoded_rows(monkeypatch) -> list[list[list[int]]]:
    """Record the token ids each batch decodes (per prompt, per row), before they become text."""
    calls: list[list[list[int]]] = []
    original = sampling._decode_batch

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.extend([ids for ids, _ in group] for group in out)
        return out

    monkeypatch.setattr(sampling, "_decode_batch", spy)
    return calls


def old_encode(tokenizer, prompt: str, limit: int) -> list[int]:
    """The sampler's ``_encode`` before protocols existed, copied: the paper protocol must equal it."""
    ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    if not ids:
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return [start]
    if len(ids) <= limit:
        return ids
    bos = tokenizer.bos_token_id
    if bos is not None and ids[0] == bos:
        return [bos] + ids[len(ids) - limit + 1 :]
    return ids[len(ids) - limit :]


def test_product_prompts_are_prompt_for(tiny):
    model, tok = tiny
    prompts = PARTIAL + WHOLE
    expected = [prompt_for(tok, p, budget=BUDGET) for p in prompts]
    assert encode_prompts(tok, prompts) == expected
    assert all(e.healed for e in expected[: len(PARTIAL)]), "the partial words should be healed"
    seen, handle = fed_prompts(model)
    try:
        generate_samples(model, tok, prompts, Sampling(samples=2, max_new_tokens=3, batch_size=4))
    finally:
        handle.remove()
    assert sorted(seen) == sorted(e.ids for e in expected)


def test_product_prompts_take_the_suffix_in_the_fim_form():
    tok = build_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]})
    model = build_model(tok, seed=1)
    fim = FimTokens("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
    prefixes = ["def add(a, b):\n    return a", "x = 1\n"]
    suffixes = ["\n\nprint(add(1, 2))\n", ""]  # the second has no code after: the plain form
    expected = [prompt_for(tok, p, s, budget=64, fim=fim) for p, s in zip(prefixes, suffixes, strict=True)]
    assert tok.convert_tokens_to_ids("<fim_middle>") == expected[0].ids[-1]
    assert "<fim_prefix>" not in tok.decode(expected[1].ids)
    seen, handle = fed_prompts(model)
    try:
        rows = generate_samples(
            model, tok, prefixes, Sampling(samples=1, temperature=0, max_new_tokens=2), suffixes=suffixes,
            fim=fim, max_prompt_tokens=64,
        )  # fmt: skip
    finally:
        handle.remove()
    assert sorted(seen) == sorted(e.ids for e in expected) and len(rows) == 2
    with pytest.raises(EvaluationError, match="suffixes"):
        generate_samples(model, tok, prefixes, suffixes=suffixes[:1], fim=fim)


def test_healing_constrains_the_first_token_and_leaves_the_fragment_out(tiny, monkeypatch):
    model, tok = tiny
    decoded = decoded_rows(monkeypatch)
    for prefix in PARTIAL:
        prompt = prompt_for(tok, prefix, budget=BUDGET)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([prompt.ids])).logits[0, -1]
        # The model left alone would not start with the fragment: the constraint is what makes it so.
        assert not tok.decode([int(logits.argmax())]).startswith(prompt.healed)
        allowed = only_tokens_starting_with(
            logits.numpy(),
            prompt.healed,
            lambda t: tok.decode([t]),
            lambda text: tok(text, add_special_tokens=False).input_ids[0],
        )
        decoded.clear()
        [greedy] = generate_samples(
            model, tok, [prefix], Sampling(samples=1, temperature=0, max_new_tokens=6)
        )
        assert decoded[0][0][0] == int(allowed.argmax())
        [sampled] = generate_samples(model, tok, [prefix], Sampling(samples=6, max_new_tokens=6, seed=2))
        assert len(decoded) == 2 and len(decoded[1]) == 6
        for sample, ids in zip(greedy + sampled, decoded[0] + decoded[1], strict=True):
            assert tok.decode([ids[0]]).startswith(prompt.healed)
            # The prompt, the healed token and what followed read as the prefix and the sample: nothing
            # of the fragment is written twice, and nothing is lost.
            assert tok.decode(prompt.ids + ids) == prefix + sample.text
            assert sample.tokens == len(ids)


def bos_tokenizer():
    """The tiny tokenizer, made to start every text with ``<s>`` as Llama's and Gemma's do."""
    from tokenizers import processors

    tok = build_tokenizer()
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)]
    )
    assert tok("x").input_ids[0] == tok.bos_token_id
    return tok


@pytest.mark.parametrize("with_bos", [False, True])
def test_paper_protocol_is_the_old_behaviour(tiny, with_bos):
    model, plain = tiny
    tok = bos_tokenizer() if with_bos else plain
    long = "def add(a, b):\n    return a + b\n" * 20 + "def find(items, tar"
    prompts = [*PARTIAL, *WHOLE, long, ""]
    for limit in (BUDGET, 8):
        encoded = encode_prompts(tok, prompts, protocol="paper", budget=limit)
        assert [e.ids for e in encoded] == [old_encode(tok, p, limit) for p in prompts]
        assert all(e.healed == "" for e in encoded)
    # What the model reads, and what comes back: the raw text's continuation, nothing healed.
    seen, handle = fed_prompts(model)
    try:
        rows = generate_samples(
            model, tok, PARTIAL, Sampling(samples=1, temperature=0, max_new_tokens=4), protocol="paper"
        )
    finally:
        handle.remove()
    assert sorted(seen) == sorted(old_encode(tok, p, BUDGET) for p in PARTIAL)
    for prefix, [sample] in zip(PARTIAL, rows, strict=True):
        ids = tok(prefix, return_tensors="pt")
        out = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
        assert sample.text == tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def test_protocols_are_checked(tiny):
    model, tok = tiny
    with pytest.raises(ConfigError, match="protocol"):
        generate_samples(model, tok, PARTIAL, protocol="served")
    with pytest.raises(EvaluationError, match="paper"):
        generate_samples(model, tok, PARTIAL, protocol="paper", suffixes=["x\n"] * len(PARTIAL))
    with pytest.raises(EvaluationError, match="paper"):
        generate_samples(model, tok, PARTIAL, protocol="paper", fim=FimTokens("a", "b", "c"))
    # An empty prompt (unconditional sampling) reads the same start token under both.
    assert encode_prompts(tok, [""]) == encode_prompts(tok, [""], protocol="paper")


def test_greedy_is_deterministic_and_is_what_serving_writes(printable_model, monkeypatch):
    """The gate's retention check calls ``samples=1, temperature=0``: it must be the served suggestion.

    The printable model writes no newline and no end of sequence, so no stop rule ends the served
    loop before the token limit and the whole run compares token for token.
    """
    from hotfix_engine.completion import CompletionEngine, CompletionRequest
    from hotfix_engine.models import load_model
    from hotfix_engine.prompts import build_prompt
    from hotfix_engine.stopping import StopRule

    engine = CompletionEngine(load_model(str(printable_model), device="cpu"))
    try:
        model, tok = engine.loaded.model, engine.loaded.tokenizer
        prefixes = [PARTIAL[0], PARTIAL[2], WHOLE[2]]
        together = generate_samples(model, tok, prefixes, GREEDY_12)
        copies = generate_samples(
            model,
            tok,
            prefixes,
            Sampling(samples=3, temperature=0.0, max_new_tokens=12, batch_size=1, seed=5),
        )
        assert [row * 3 for row in together] == copies  # any seed, any batch: one answer, copied
        decoded = decoded_rows(monkeypatch)
        never_stop = StopRule("x = (", "", "python")  # an open bracket: only a newline ends the statement
        healed_any = False
        for prefix, [sample] in zip(prefixes, together, strict=True):
            decoded.clear()
            [[alone]] = generate_samples(model, tok, [prefix], GREEDY_12)
            assert alone == sample
            request = CompletionRequest(prefix=prefix, max_new_tokens=12)
            full = build_prompt(tok, prefix, "", request.context_tokens, engine.loaded.fim)
            served, reason, _, healed = engine._generate(full, request, never_stop, None)
            assert healed == prompt_for(tok, prefix, budget=request.context_tokens).healed
            healed_any = healed_any or bool(healed)
            assert reason == "length" and decoded[0][0] == served
            assert sample.text == engine._text(served)[len(healed) :]
        assert healed_any
    finally:
        engine.close()
