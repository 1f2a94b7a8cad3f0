"""The decoding loop every runtime shares, on a scripted model: where suggestions end, the predict
budget, end of sequence, and the cache a prefill leaves for the request after it.

The model here writes a fixed text token by token, so each check is exact and can fail; the real
runtimes are tested against each other in test_llama_engine.py.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from hotfix_engine.completion import CompletionRequest, EngineBase, common_prefix_length


class ScriptedEngine(EngineBase):
    """A runtime whose model answers every prompt with the same text, then end of sequence."""

    runtime = "scripted"
    PREFILL_CHUNK = 4

    def __init__(self, tokenizer, answer: str, step_s: float = 0.0) -> None:
        super().__init__(SimpleNamespace(spec="scripted", key="scripted", fim=None))
        self.tokenizer = tokenizer
        self.answer = answer
        self.script: list[int] = []
        self.prompt_length = 0
        self.step_s = step_s
        self.cached: list[int] = []
        self.fed = 0

    def _take_back_healed(self, prompt: list[int]) -> tuple[list[int], str]:
        # The model writes the healed text again first, as a real one does after token healing.
        prompt, healed = super()._take_back_healed(prompt)
        answer = self.tokenizer(healed + self.answer, add_special_tokens=False).input_ids
        self.script = answer + [self.tokenizer.eos_token_id]
        return prompt, healed

    def _fill(self, prompt, cancel):
        self.prompt_length = len(prompt)
        return super()._fill(prompt, cancel)

    @property
    def adapter_version(self) -> str | None:
        return None

    def _reuse(self, prompt: list[int]) -> int:
        reuse = min(common_prefix_length(self.cached, prompt), len(prompt) - 1)
        self.cached = self.cached[:reuse]
        return reuse

    def _forward(self, feed: list[int]) -> np.ndarray:
        time.sleep(self.step_s)
        self.fed += len(feed)
        self.cached.extend(feed)
        # The next scripted token: how many answer tokens follow the first prompt token fed so far.
        written = max(0, len(self.cached) - self.prompt_length)
        logits = np.zeros(len(self.tokenizer), dtype=np.float32)
        logits[self.script[min(written, len(self.script) - 1)]] = 10.0
        return logits

    def _is_eos(self, token: int) -> bool:
        return token == self.tokenizer.eos_token_id

    def _swap(self, folder, version) -> None:
        pass

    def _reset_cache(self) -> None:
        self.cached = []


@pytest.fixture()
def scripted(tiny_loaded):
    engines = []

    def make(answer: str, step_s: float = 0.0) -> ScriptedEngine:
        engine = ScriptedEngine(tiny_loaded.tokenizer, answer, step_s)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def test_typed_mid_line_the_suggestion_ends_with_the_line(scripted) -> None:
    # The call's brackets stay open past the newline: still, no invented arguments on the next lines.
    engine = scripted("first,\n        second=None, third=None)\ny = 2\n")
    result = engine.complete(CompletionRequest(prefix="x = foo(", max_new_tokens=40))
    assert result is not None
    assert (result.text, result.stop_reason) == ("first,", "statement")


def test_at_an_empty_line_a_block_is_suggested_whole(scripted) -> None:
    engine = scripted("for item in items:\n        total += item\n    return total\n")
    result = engine.complete(
        CompletionRequest(prefix="def f(items):\n    total = 0\n    ", max_new_tokens=40)
    )
    assert result is not None
    assert (result.text, result.stop_reason) == ("for item in items:\n        total += item", "block")


def test_end_of_sequence_ends_the_suggestion(scripted) -> None:
    engine = scripted("None):")
    result = engine.complete(CompletionRequest(prefix="def add(item, items=", max_new_tokens=40))
    assert result is not None and result.text == "None):"
    assert result.tokens == len(engine.script) - 1  # every token before the end of sequence, no more


def test_past_the_predict_budget_the_suggestion_ends_at_a_complete_line(scripted) -> None:
    body = "".join(f"        value_{i} = compute({i})\n" for i in range(20))
    engine = scripted("for i in range(20):\n" + body + "    return i\n", step_s=0.002)
    request = CompletionRequest(prefix="def f():\n    ", max_new_tokens=400, budget_ms=100)
    result = engine.complete(request)
    assert result is not None and result.stop_reason == "budget"
    assert result.text.startswith("for i in range(20):\n        value_0 = compute(0)")
    assert result.text.endswith(")")  # whole lines only
    assert result.text.count("\n") < 20  # stopped well before the block's end
    unlimited = scripted("for i in range(20):\n" + body + "    return i\n")
    whole = unlimited.complete(CompletionRequest(prefix="def f():\n    ", max_new_tokens=400))
    assert whole is not None and whole.stop_reason == "block" and whole.text.count("\n") == 20


def test_a_prefill_leaves_the_prompt_cached_for_the_request(scripted) -> None:
    engine = scripted("1\n")
    request = CompletionRequest(prefix="import os\n\n\ndef main():\n    path = os.getcwd()\n    x = ")
    engine.prefill(request).result(timeout=10)
    prefilled = engine.fed
    assert prefilled > 0
    result = engine.complete(request)
    assert result is not None and result.cached_tokens >= result.prompt_tokens - 2
    assert engine.fed - prefilled <= 4  # the request fed only the last tokens and its answer
