import dataclasses
import threading

import pytest
import torch

from hotfix_engine.completion import Completion, CompletionEngine, CompletionRequest
from hotfix_engine.errors import AdapterError, Cancelled, ConfigError
from hotfix_engine.models import load_model
from hotfix_engine.prompts import build_prompt
from hotfix_engine.stopping import CancelToken, StopRule

PREFIX = "def find(items, target):\n    for index, item in enumerate(items):\n        "


@pytest.fixture()
def engine(tiny_model_dir):
    engine = CompletionEngine(load_model(str(tiny_model_dir), device="cpu"))
    yield engine
    engine.close()


def raw_tokens(engine: CompletionEngine, prefix: str, max_new_tokens: int = 12) -> list[int]:
    """The tokens the engine decodes for a prompt, before stop rules and filters shape the text."""
    request = CompletionRequest(prefix=prefix, max_new_tokens=max_new_tokens)
    prompt = build_prompt(engine.loaded.tokenizer, prefix, "", request.context_tokens, None)
    never_stop = StopRule("x = (", "", "python")  # an open bracket: no line ever ends the statement
    tokens, _, _, _ = engine._generate(prompt, request, never_stop, None)
    return tokens


@pytest.fixture(scope="module")
def printable_engine(printable_model):
    """The tiny model that always has a visible suggestion: checks on results cannot be skipped."""
    engine = CompletionEngine(load_model(str(printable_model), device="cpu"))
    yield engine
    engine.close()


def test_completion_reports_model_adapter_and_stop_reason(printable_engine):
    result = printable_engine.complete(CompletionRequest(prefix=PREFIX, max_new_tokens=16))
    assert isinstance(result, Completion)
    assert result.adapter is None and result.model == printable_engine.loaded.spec
    assert result.stop_reason in {"statement", "block", "eos", "length", "budget"}
    assert result.text.strip() and result.tokens > 0 and result.prompt_tokens > 0


def test_suggestions_never_span_past_the_statement(printable_engine):
    # Where the suggestion ends is tested exactly on a scripted model (test_engine_base.py); here the
    # real loop on a real (tiny) model: a mid-line suggestion never holds a newline.
    texts = []
    for seed in range(6):
        result = printable_engine.complete(
            CompletionRequest(prefix="x = compute(", max_new_tokens=24, temperature=1.0, seed=seed)
        )
        if result is not None:
            texts.append(result.text)
    assert texts and all("\n" not in text for text in texts)


def test_bad_request_values_are_config_errors():
    with pytest.raises(ConfigError):
        CompletionRequest(prefix="x", max_new_tokens=0)
    with pytest.raises(ConfigError):
        CompletionRequest(prefix="x", top_p=0)


def test_cancel_stops_within_one_decoding_step(engine):
    token = CancelToken()
    calls = {"n": 0}

    def cancel_after_three(module, args, output):
        calls["n"] += 1
        if calls["n"] == 3:
            token.set()  # as $/cancelRequest would, from another thread, mid-generation

    handle = engine.loaded.model.register_forward_hook(cancel_after_three)
    try:
        future = engine.submit(CompletionRequest(prefix="x = (", max_new_tokens=64), token)
        with pytest.raises(Cancelled) as info:
            future.result(timeout=60)
    finally:
        handle.remove()
    assert info.value.steps_after_cancel <= 1
    assert calls["n"] <= 4


def test_cancel_before_start_runs_no_step(engine):
    event = threading.Event()
    event.set()
    with pytest.raises(Cancelled):
        engine.complete(CompletionRequest(prefix=PREFIX), event)


def test_cache_reuse_gives_the_same_tokens_as_a_cold_run(engine, tiny_model_dir):
    raw_tokens(engine, PREFIX)
    extended = PREFIX + "if item == "
    warm = raw_tokens(engine, extended)
    assert engine._cache_ids[: len(PREFIX) // 8]  # the cache holds the earlier prompt
    cold_engine = CompletionEngine(load_model(str(tiny_model_dir), device="cpu"))
    try:
        cold = raw_tokens(cold_engine, extended)
    finally:
        cold_engine.close()
    assert warm == cold


def test_typing_on_reuses_the_cache(printable_engine):
    engine = printable_engine
    engine.complete(CompletionRequest(prefix=PREFIX, max_new_tokens=4))
    second = engine.complete_now(CompletionRequest(prefix=PREFIX + "if", max_new_tokens=4))
    prompt_len = len(build_prompt(engine.loaded.tokenizer, PREFIX + "if", "", 1536, None))
    assert (
        engine._cache_ids[: prompt_len - 2]
        == build_prompt(engine.loaded.tokenizer, PREFIX + "if", "", 1536, None)[: prompt_len - 2]
    )
    assert second is not None and second.cached_tokens >= prompt_len - 3


def make_lora(loaded, folder, seed=1):
    from peft import LoraConfig, get_peft_model
    from tiny_model import build_model

    base = build_model(loaded.tokenizer)
    torch.manual_seed(seed)  # after build_model, which seeds for its own weights
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, lora_alpha=64)
    peft_model = get_peft_model(base, config)
    peft_model.save_pretrained(folder)
    return folder


def test_adapter_swap_changes_output_and_back(engine, tmp_path):
    base_tokens = raw_tokens(engine, PREFIX, 16)
    folder = make_lora(engine.loaded, tmp_path / "v0001")
    engine.swap_adapter(folder, "v0001").result()
    assert engine.adapter_version == "v0001"
    adapted = raw_tokens(engine, PREFIX, 16)
    assert adapted != base_tokens
    second = make_lora(engine.loaded, tmp_path / "v0002", seed=2)
    engine.swap_adapter(second, "v0002").result()
    assert raw_tokens(engine, PREFIX, 16) not in (adapted, base_tokens)
    engine.swap_adapter(None, None).result()
    assert engine.adapter_version is None
    assert raw_tokens(engine, PREFIX, 16) == base_tokens


def test_corrupt_adapter_keeps_the_previous_one(engine, tmp_path):
    good = make_lora(engine.loaded, tmp_path / "v0001")
    engine.swap_adapter(good, "v0001").result()
    before = raw_tokens(engine, PREFIX, 8)
    broken = tmp_path / "v0002"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterError, match="corrupt"):
        engine.swap_adapter(broken, "v0002").result()
    (broken / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4}')
    (broken / "adapter_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(AdapterError):
        engine.swap_adapter(broken, "v0002").result()
    assert engine.adapter_version == "v0001"
    assert raw_tokens(engine, PREFIX, 8) == before


def test_token_healing_takes_back_a_trailing_space_or_partial_word(tiny_loaded):
    import numpy as np

    from hotfix_engine.picking import only_tokens_starting_with
    from hotfix_engine.prompts import healable_text

    tok = tiny_loaded.tokenizer
    assert healable_text(tok, tok("    return value ", add_special_tokens=False).input_ids) == " "
    assert healable_text(tok, tok("def add(a, b):\n", add_special_tokens=False).input_ids) == ""
    logits = np.random.default_rng(0).standard_normal(len(tok)).astype(np.float32)
    masked = only_tokens_starting_with(
        logits, " ", lambda i: tok.decode([i]), lambda t: tok(t, add_special_tokens=False).input_ids[0]
    )
    kept = np.flatnonzero(np.isfinite(masked)).tolist()
    assert kept and all(tok.decode([i]).startswith(" ") for i in kept)


def test_a_swap_lands_between_requests_running_and_queued(printable_engine, tmp_path):
    """Requests submitted before a swap are served by the old adapter, those after it by the new one."""
    folder = make_lora(printable_engine.loaded, tmp_path / "v0001")
    request = CompletionRequest(prefix=PREFIX, max_new_tokens=12, temperature=1.0)
    before = [printable_engine.submit(dataclasses.replace(request, seed=seed)) for seed in range(3)]
    swapped = printable_engine.swap_adapter(folder, "v0001")
    after = [printable_engine.submit(dataclasses.replace(request, seed=seed)) for seed in range(3)]
    old = [future.result() for future in before]
    swapped.result()
    new = [future.result() for future in after]
    assert all(done is not None for done in old + new)  # the printable model always shows something
    assert [done.adapter for done in old] == [None] * 3
    assert [done.adapter for done in new] == ["v0001"] * 3
    printable_engine.swap_adapter(None, None).result()


def test_healed_text_is_not_repeated_in_the_suggestion(printable_engine):
    results = [
        printable_engine.complete(
            CompletionRequest(prefix="x = foo ", max_new_tokens=8, temperature=1.0, seed=seed)
        )
        for seed in range(4)
    ]
    shown = [result.text for result in results if result is not None]
    # The healed space is already in the document: a suggestion never starts by typing it again.
    assert shown and not any(text.startswith(" ") for text in shown)
