"""The completion engine: one inference thread, stop rules, filters, cancellation and cache reuse.

Requests are queued onto a single dedicated thread, so the model is never run twice at once and
adapter swaps happen between requests. Decoding is a plain loop over the model rather than
``generate`` because it keeps the key/value cache of the last prompt: when the user types on, the new
prompt extends the old one and only the new tokens are computed.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotfix_engine.adapters_slot import AdapterSlot
from hotfix_engine.errors import Cancelled, ConfigError
from hotfix_engine.filters import clean_suggestion
from hotfix_engine.models import LoadedModel
from hotfix_engine.prompts import build_prompt
from hotfix_engine.stopping import CancelToken, StopRule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompletionRequest:
    """What to complete: the text around the cursor and how to sample."""

    prefix: str
    suffix: str = ""
    language: str = "python"
    max_new_tokens: int = 64  # one statement or a short block; more costs latency the user feels
    temperature: float = 0.0  # greedy: a completion should be the model's best guess
    top_p: float = 1.0
    context_tokens: int = 1536  # prompt budget; the prefill cost grows with it
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 1024:
            raise ConfigError(f"max_new_tokens must be in 1..1024, not {self.max_new_tokens}")
        if not 0.0 <= self.temperature <= 5.0:
            raise ConfigError(f"temperature must be in 0..5, not {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], not {self.top_p}")
        if not 16 <= self.context_tokens <= 32768:
            raise ConfigError(f"context_tokens must be in 16..32768, not {self.context_tokens}")


@dataclass(frozen=True)
class Completion:
    """A suggestion and how it was made."""

    text: str
    model: str
    adapter: str | None
    tokens: int
    stop_reason: str  # "statement" | "block" | "eos" | "length"
    elapsed_s: float
    cached_tokens: int
    prompt_tokens: int


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class CompletionEngine:
    """Serves completions from one model (and its adapter slot) on one inference thread."""

    def __init__(self, loaded: LoadedModel, slot: AdapterSlot | None = None) -> None:
        self.loaded = loaded
        self.slot = slot or AdapterSlot(loaded)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hotfix-inference")
        self._lock = threading.Lock()  # guards the cache when complete_now is called directly
        self._cache: Any = None
        self._cache_ids: list[int] = []
        self._cache_adapter: str | None = None
        # transformers renamed ``past_key_values`` to ``cache`` in 5.x; use whichever this version takes.
        forward = inspect.signature(loaded.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in forward else "past_key_values"

    @property
    def model_key(self) -> str:
        return self.loaded.key

    @property
    def adapter_version(self) -> str | None:
        return self.slot.version

    def submit(
        self, request: CompletionRequest, cancel: threading.Event | None = None
    ) -> concurrent.futures.Future[Completion | None]:
        """Queue a request on the inference thread; the future raises Cancelled if ``cancel`` is set."""
        return self._executor.submit(self.complete_now, request, cancel)

    def complete(
        self, request: CompletionRequest, cancel: threading.Event | None = None
    ) -> Completion | None:
        return self.submit(request, cancel).result()

    def swap_adapter(self, folder: Path | None, version: str | None) -> concurrent.futures.Future[None]:
        """Activate an adapter version (or the base, with None) between two requests."""
        return self._executor.submit(self._swap, folder, version)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _swap(self, folder: Path | None, version: str | None) -> None:
        with self._lock:
            if folder is None or version is None:
                self.slot.unload()
            else:
                self.slot.load(folder, version)
            self._cache = None
            self._cache_ids = []

    def complete_now(
        self, request: CompletionRequest, cancel: threading.Event | None = None
    ) -> Completion | None:
        """Run one request on the calling thread (the engine's own thread when called via ``submit``)."""
        import torch

        started = time.perf_counter()
        tokenizer = self.loaded.tokenizer
        prompt = build_prompt(
            tokenizer, request.prefix, request.suffix, request.context_tokens, self.loaded.fim
        )
        rule = StopRule(request.prefix, request.suffix, request.language)
        with self._lock, torch.inference_mode():
            try:
                if self.slot.prompt_learning:
                    generated, reason, cached, healed = self._generate_with_peft(
                        prompt, request, rule, cancel
                    )
                else:
                    generated, reason, cached, healed = self._decode(prompt, request, rule, cancel)
            except Cancelled:
                raise
            except Exception:
                self._cache = None
                self._cache_ids = []
                raise
        text = tokenizer.decode(generated, skip_special_tokens=True)[len(healed) :]
        decision = rule.check(text + "\n") if reason in ("eos", "length") else rule.check(text)
        if decision is not None:
            text = text[: decision.cut]
        elif reason == "length" and "\n" in text.strip("\n"):
            text = text[: text.rstrip("\n").rfind("\n")]  # keep whole lines of an unfinished block
        text = text.rstrip("\ufffd")
        cleaned = clean_suggestion(text, request.prefix, request.suffix)
        elapsed = time.perf_counter() - started
        if cleaned is None:
            log.debug("suggestion dropped by filters: %r", text[:80])
            return None
        return Completion(
            text=cleaned,
            model=self.loaded.spec,
            adapter=self.slot.version,
            tokens=len(generated),
            stop_reason=decision.reason if decision else reason,
            elapsed_s=elapsed,
            cached_tokens=cached,
            prompt_tokens=len(prompt),
        )

    def _decode(
        self, prompt: list[int], request: CompletionRequest, rule: StopRule, cancel: threading.Event | None
    ) -> tuple[list[int], str, int, str]:
        """Greedy or sampled decoding that reuses the cache: (tokens, stop reason, reused, healed text).

        Token healing: the prompt's last token is taken back and the first new token must start with
        its text. A prefix ending in ``return `` otherwise leaves the model a lone space token it
        rarely saw in training, and it answers with nonsense or nothing.
        """
        import torch
        from transformers import DynamicCache

        model = self.slot.model
        device = self.loaded.device
        tokenizer = self.loaded.tokenizer
        healed = _healable_text(tokenizer, prompt)
        if healed:
            prompt = prompt[:-1]
        reuse = 0
        if self._cache is not None and self._cache_adapter == self.slot.version:
            reuse = min(common_prefix_length(self._cache_ids, prompt), len(prompt) - 1)
        if reuse > 0:
            extra = self._cache.get_seq_length() - reuse
            if extra > 0:
                self._cache.crop(-extra)  # negative: drop that many (the only form transformers 5 keeps)
        else:
            self._cache = DynamicCache()
        self._cache_adapter = self.slot.version
        self._cache_ids = list(prompt[:reuse])
        feed = prompt[reuse:]
        generator = _generator(request.seed, device)
        eos = _eos_ids(self.loaded)
        generated: list[int] = []
        reason = "length"
        for step in range(request.max_new_tokens):
            _check(cancel)
            out = model(
                input_ids=torch.tensor([feed], device=device),
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_kwarg: self._cache},
            )
            self._cache_ids.extend(feed)
            if isinstance(cancel, CancelToken):
                cancel.step += 1
            logits = out.logits[0, -1]
            if step == 0 and healed:
                logits = _only_tokens_starting_with(logits, healed, tokenizer)
            token = _pick(logits, request, generator)
            if token in eos:
                reason = "eos"
                break
            generated.append(token)
            feed = [token]
            text = tokenizer.decode(generated, skip_special_tokens=True)
            decision = rule.check(text[len(healed) :])
            if decision is not None:
                reason = decision.reason
                break
        return generated, reason, reuse, healed

    def _generate_with_peft(
        self, prompt: list[int], request: CompletionRequest, rule: StopRule, cancel: threading.Event | None
    ) -> tuple[list[int], str, int, str]:
        """Prefix and prompt tuning own the cache and the inputs, so they go through ``generate``."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        tokenizer = self.loaded.tokenizer
        state = {"reason": "length"}

        class Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                if isinstance(cancel, CancelToken):
                    cancel.step += 1
                _check(cancel)
                new = input_ids[0, len(prompt) :].tolist()
                decision = rule.check(tokenizer.decode(new, skip_special_tokens=True))
                if decision is not None:
                    state["reason"] = decision.reason
                return decision is not None

        ids = torch.tensor([prompt], device=self.loaded.device)
        if request.seed is not None:
            torch.manual_seed(request.seed)
        output = self.slot.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=request.max_new_tokens,
            do_sample=request.temperature > 0,
            temperature=request.temperature or None,
            top_p=request.top_p if request.temperature > 0 else None,
            stopping_criteria=StoppingCriteriaList([Stop()]),
            pad_token_id=tokenizer.pad_token_id,
        )
        generated = output[0, len(prompt) :].tolist()
        eos = _eos_ids(self.loaded)
        if generated and generated[-1] in eos:
            return generated[:-1], "eos", 0, ""
        return generated, state["reason"], 0, ""


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        steps = cancel.steps_after_cancel if isinstance(cancel, CancelToken) else 0
        raise Cancelled("generation cancelled", steps_after_cancel=steps)


HEAL_CANDIDATES = 256


def _healable_text(tokenizer: Any, prompt: list[int]) -> str:
    """The text of the prompt's last token when healing it helps: a partial word or a trailing space.

    Indentation and newlines are left alone: models see them as whole tokens all the time.
    """
    if len(prompt) < 2 or prompt[-1] in tokenizer.all_special_ids:
        return ""
    text = tokenizer.decode(prompt[-1:])
    if not text or "\n" in text or (text.isspace() and len(text) > 1):
        return ""
    return text


def _only_tokens_starting_with(logits: Any, text: str, tokenizer: Any) -> Any:
    """Mask the logits to tokens whose text starts with ``text`` (among the likeliest candidates)."""
    import torch

    candidates = torch.topk(logits, min(HEAL_CANDIDATES, logits.shape[-1])).indices.tolist()
    allowed = [i for i in candidates if tokenizer.decode([i]).startswith(text)]
    allowed.extend(tokenizer(text, add_special_tokens=False).input_ids[:1])
    masked = torch.full_like(logits, float("-inf"))
    index = torch.tensor(allowed, device=logits.device)
    masked[index] = logits[index]
    return masked


def _eos_ids(loaded: LoadedModel) -> set[int]:
    ids = loaded.model.generation_config.eos_token_id if loaded.model.generation_config else None
    if ids is None:
        ids = loaded.tokenizer.eos_token_id
    result = set(ids if isinstance(ids, list) else [ids]) - {None}
    if loaded.tokenizer.eos_token_id is not None:
        result.add(loaded.tokenizer.eos_token_id)
    return result


def _generator(seed: int | None, device: Any) -> Any:
    import torch

    if seed is None:
        return None
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def _pick(logits: Any, request: CompletionRequest, generator: Any) -> int:
    """Greedy at temperature 0; otherwise nucleus sampling (Holtzman et al., 2020)."""
    import torch

    if request.temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / request.temperature, dim=-1)
    if request.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < request.top_p
        sorted_probs = sorted_probs * keep
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
