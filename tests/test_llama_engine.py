"""The llama.cpp runtime on a tiny GGUF written by the tests: the same behaviour as transformers.

Prompts, healing, stop rules and filters are shared code; what is checked here is what the runtime
itself owns: its answers match transformers on the same file, the cache is reused across keystrokes
and dropped on an adapter swap, cancellation, prefill, adapters (GGUF LoRA, converted on first use),
bad adapters, and that serving never imports torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from hotfix_engine.completion import CompletionRequest  # noqa: E402
from hotfix_engine.errors import AdapterError, Cancelled, ConfigError  # noqa: E402
from hotfix_engine.runtimes import choose_runtime, load_engine  # noqa: E402
from hotfix_engine.stopping import CancelToken  # noqa: E402

PREFIX = "def find(items, target):\n    for index, item in enumerate(items):\n        "
PROMPTS = [PREFIX, "class Stack:\n    def push(self, item):\n        ", "def add(a, b):\n    return "]


@pytest.fixture(scope="module")
def llama(printable_gguf: Path):
    engine = load_engine(str(printable_gguf), "llama.cpp")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def transformers_engine(printable_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    engine = load_engine(str(printable_gguf), "transformers", device="cpu")
    yield engine
    engine.close()


def make_lora(engine, folder: Path, seed: int = 1) -> Path:
    """A LoRA with random non-zero weights for the tiny model, saved by peft (as training would)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(engine.slot.base, config)
    model.save_pretrained(folder)
    model.unload()
    return folder


def test_auto_picks_llama_cpp_for_gguf_and_transformers_otherwise(printable_gguf, tiny_model_dir, tmp_path):
    assert choose_runtime("auto", str(printable_gguf)) == "llama.cpp"
    assert choose_runtime("auto", str(tiny_model_dir)) == "transformers"
    assert choose_runtime("transformers", str(printable_gguf)) == "transformers"
    ia3 = tmp_path / "ia3"
    ia3.mkdir()
    (ia3 / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    assert choose_runtime("auto", str(printable_gguf), ia3) == "transformers"
    with pytest.raises(ConfigError, match="unknown runtime"):
        choose_runtime("vllm", str(printable_gguf))


def test_suggestions_match_transformers_on_the_same_file(llama, transformers_engine):
    pairs = []
    for prefix in PROMPTS:
        request = CompletionRequest(prefix=prefix, max_new_tokens=12)
        a, b = llama.complete(request), transformers_engine.complete(request)
        pairs.append((a and a.text, b and b.text))
    assert [a for a, _ in pairs] == [b for _, b in pairs]
    assert sum(a is not None for a, _ in pairs) >= 2  # compared on real suggestions, not on two Nones
    assert llama.runtime == "llama.cpp" and transformers_engine.runtime == "transformers"


def test_typing_on_reuses_the_cache_and_gives_the_cold_answer(llama, printable_gguf):
    llama.complete(CompletionRequest(prefix=PREFIX, max_new_tokens=4))
    warm = llama.complete(CompletionRequest(prefix=PREFIX + "if", max_new_tokens=8))
    assert warm is not None
    assert warm.cached_tokens >= warm.prompt_tokens - 3
    cold = load_engine(str(printable_gguf), "llama.cpp")
    try:
        again = cold.complete(CompletionRequest(prefix=PREFIX + "if", max_new_tokens=8))
    finally:
        cold.close()
    assert again is not None and again.cached_tokens == 0 and again.text == warm.text


def test_prefill_computes_the_prompt_ahead_of_the_request(llama):
    llama._reset_cache()
    request = CompletionRequest(prefix=PREFIX * 3, max_new_tokens=4)
    cached = llama.prefill(request).result(timeout=60)
    assert cached == 0  # nothing was cached before
    result = llama.complete(request)
    assert result is not None and result.cached_tokens >= result.prompt_tokens - 2


def test_a_request_stops_a_running_prefill_at_its_next_chunk(llama, monkeypatch):
    llama._reset_cache()
    chunks = {"n": 0}
    gate = threading.Event()
    forward = llama._forward

    def slow_forward(feed):
        chunks["n"] += 1
        if chunks["n"] == 1:
            gate.wait(10)  # hold the first chunk until the request has been queued
        return forward(feed)

    monkeypatch.setattr(llama, "_forward", slow_forward)
    monkeypatch.setattr(llama, "PREFILL_CHUNK", 4)
    long = CompletionRequest(prefix=PREFIX * 4, max_new_tokens=2)
    prefill = llama.prefill(long)
    answer = llama.submit(CompletionRequest(prefix="x = ", max_new_tokens=2))
    gate.set()
    assert prefill.result(timeout=60) == 0
    answer.result(timeout=60)
    prompt = llama._prompt(long)
    assert chunks["n"] < len(prompt) // 4  # the prefill did not run to its end


def test_cancel_stops_within_one_decoding_step(llama, monkeypatch):
    token = CancelToken()
    calls = {"n": 0}
    forward = llama._forward

    def counting_forward(feed):
        calls["n"] += 1
        if calls["n"] == 3:
            token.set()  # as $/cancelRequest would, from another thread, mid-generation
        return forward(feed)

    monkeypatch.setattr(llama, "_forward", counting_forward)
    llama._reset_cache()
    with pytest.raises(Cancelled) as info:
        llama.submit(CompletionRequest(prefix="x = (", max_new_tokens=64), token).result(timeout=60)
    assert info.value.steps_after_cancel <= 1
    assert calls["n"] <= 4


def test_adapter_swap_between_requests_changes_the_answer_and_back(
    llama, transformers_engine, tmp_path, monkeypatch
):
    from hotfix_engine.gguf_lora import GGUF_LORA_FILE

    folder = make_lora(transformers_engine, tmp_path / "v0001")
    request = CompletionRequest(prefix=PREFIX, max_new_tokens=12, seed=0)
    prompt = llama._prompt(request)
    base_logits = llama._fill(prompt, None)[1]

    # Hot-swap while a generation runs: the running one finishes on the base, the queued one on v0001.
    gate = threading.Event()
    forward = llama._forward

    def held_forward(feed):
        gate.wait(10)
        return forward(feed)

    monkeypatch.setattr(llama, "_forward", held_forward)
    running = llama.submit(CompletionRequest(prefix=PREFIX, max_new_tokens=6))
    swap = llama.swap_adapter(folder, "v0001")
    queued = llama.submit(CompletionRequest(prefix=PREFIX, max_new_tokens=6))
    gate.set()
    first, _, second = running.result(timeout=60), swap.result(timeout=60), queued.result(timeout=60)
    monkeypatch.setattr(llama, "_forward", forward)
    assert first is not None and first.adapter is None
    assert second is not None and second.adapter == "v0001"
    assert llama.adapter_version == "v0001"
    assert (folder / GGUF_LORA_FILE).is_file()  # converted on first use, kept beside peft's files

    adapted = llama._fill(prompt, None)[1]
    assert abs(adapted - base_logits).max() > 1e-3  # the adapter is applied, the cache was dropped
    llama.swap_adapter(None, None).result(timeout=60)
    assert llama.adapter_version is None
    assert abs(llama._fill(prompt, None)[1] - base_logits).max() < 1e-4


def test_a_corrupt_adapter_is_refused_and_the_previous_one_keeps_serving(
    llama, transformers_engine, tmp_path
):
    from hotfix_engine.gguf_lora import GGUF_LORA_FILE

    good = make_lora(transformers_engine, tmp_path / "v0001")
    llama.swap_adapter(good, "v0001").result(timeout=60)
    bad = make_lora(transformers_engine, tmp_path / "v0002", seed=2)
    (bad / GGUF_LORA_FILE).write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(AdapterError):
        llama.swap_adapter(bad, "v0002").result(timeout=60)
    assert llama.adapter_version == "v0001"
    result = llama.complete(CompletionRequest(prefix=PREFIX, max_new_tokens=4))
    assert result is not None and result.adapter == "v0001"

    ia3 = tmp_path / "v0003"
    ia3.mkdir()
    (ia3 / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3"}))
    (ia3 / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(AdapterError, match="transformers runtime"):
        llama.swap_adapter(ia3, "v0003").result(timeout=60)
    assert llama.adapter_version == "v0001"
    llama.swap_adapter(None, None).result(timeout=60)


def test_an_empty_prompt_on_a_model_without_bos_gives_no_suggestion(llama, monkeypatch):
    monkeypatch.setattr(llama.tokenizer, "bos_token_id", None)
    assert llama.complete(CompletionRequest(prefix="", max_new_tokens=4)) is None


def test_serving_on_llama_cpp_never_imports_torch(printable_gguf, tmp_path):
    script = (
        "import sys\n"
        "from hotfix_engine.completion import CompletionRequest\n"
        "from hotfix_engine.runtimes import load_engine\n"
        "import hotfix_server.server\n"
        f"engine = load_engine({str(printable_gguf)!r}, 'auto')\n"
        "engine.complete(CompletionRequest(prefix='def add(a, b):\\n    return ', max_new_tokens=4))\n"
        "engine.close()\n"
        "print(engine.runtime, sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "llama.cpp []"
