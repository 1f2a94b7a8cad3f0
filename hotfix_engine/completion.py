"""The completion engine: one inference thread, stop rules, filters, cancellation and cache reuse.

Requests are queued onto a single dedicated thread, so the model is never run twice at once and
adapter swaps happen between requests. Decoding is a plain loop over the model rather than
``generate`` because it keeps the key/value cache of the last prompt: when the user types on, the new
prompt extends the old one and only the new tokens are computed. The prompt itself is fed in chunks
with a look at the cancel flag between them, so a request superseded by the next keystroke still
leaves the part of the prompt it computed in the cache for that keystroke.

``EngineBase`` holds all of this once; a runtime (transformers here, llama.cpp in ``llama_engine``)
supplies only its forward pass, its cache trimming and its adapter swap.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotfix_engine.adapters_slot import AdapterSlot
from hotfix_engine.errors import Cancelled, ConfigError
from hotfix_engine.filters import clean_suggestion
from hotfix_engine.model_facts import cache_argument, eos_ids
from hotfix_engine.models import LoadedModel
from hotfix_engine.picking import only_tokens_starting_with, pick_token, rng_for
from hotfix_engine.prompts import build_prompt, healable_text
from hotfix_engine.steering import Steer, Steering, is_banned
from hotfix_engine.stopping import CancelToken, StopRule

log = logging.getLogger(__name__)

# Extra model steps a steered request may spend going back to an earlier step (steering.py).
MAX_STEERED_STEPS = 32


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
    # Past this many ms of decoding, stop at the next complete line (0: no limit): a suggestion that
    # takes seconds arrives after the user typed on, and is never seen.
    budget_ms: int = 0
    # The file's path and other files of the project as (path, text), nearest first: models trained
    # on whole repositories see them before the file (prompts.repo_tokens); others ignore them.
    path: str = ""
    context_files: tuple[tuple[str, str], ...] = ()
    # Online hotfixing (steering.py): statements rejected here, and the user's fixes to prefer.
    steer: Steer = Steer()

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 1024:
            raise ConfigError(f"max_new_tokens must be in 1..1024, not {self.max_new_tokens}")
        if not 0.0 <= self.temperature <= 5.0:
            raise ConfigError(f"temperature must be in 0..5, not {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], not {self.top_p}")
        if not 16 <= self.context_tokens <= 32768:
            raise ConfigError(f"context_tokens must be in 16..32768, not {self.context_tokens}")
        if not 0 <= self.budget_ms <= 600_000:
            raise ConfigError(f"budget_ms must be in 0..600000, not {self.budget_ms}")


@dataclass(frozen=True)
class Completion:
    """A suggestion and how it was made."""

    text: str
    model: str
    adapter: str | None
    tokens: int
    stop_reason: str  # "statement" | "block" | "eos" | "length" | "budget"
    elapsed_s: float
    cached_tokens: int
    prompt_tokens: int


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class EngineBase:
    """What every runtime shares: one inference thread, the prompt, stop rules, filters, prefill.

    A runtime supplies the tokenizer (``self.tokenizer``), its forward pass (``_forward``), cache
    trimming (``_reuse``, ``_reset_cache``), end-of-sequence test (``_is_eos``) and adapter swap
    (``_swap``); the decoding loop and everything users see is decided here, once.
    """

    runtime = ""
    # Tokens computed between two looks at the cancel flag while prefilling: torch's GEMM runs 339 tok/s
    # in chunks of 64 and 773 in one pass of 1,500 on 2 cores; 512 keeps most of that, ~0.7 s a chunk.
    PREFILL_CHUNK = 512

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hotfix-inference")
        self._lock = threading.Lock()  # guards the cache when complete_now is called directly
        self._prefill_cancel: CancelToken | None = None

    tokenizer: Any

    @property
    def model_key(self) -> str:
        return str(self.loaded.key)

    @property
    def adapter_version(self) -> str | None:
        raise NotImplementedError

    def submit(
        self, request: CompletionRequest, cancel: threading.Event | None = None
    ) -> concurrent.futures.Future[Completion | None]:
        """Queue a request on the inference thread; the future raises Cancelled if ``cancel`` is set.

        A prefill still running stops at its next chunk: what it computed stays cached, and a request
        at the same place goes on from there.
        """
        self._stop_prefill()
        return self._executor.submit(self.complete_now, request, cancel)

    def complete(
        self, request: CompletionRequest, cancel: threading.Event | None = None
    ) -> Completion | None:
        return self.submit(request, cancel).result()

    def prefill(self, request: CompletionRequest) -> concurrent.futures.Future[int]:
        """Compute the cache for ``request``'s prompt ahead of the keystroke that will need it.

        Only the newest prefill matters: queueing one cancels the previous, which stops at its next
        chunk and keeps what it computed. Returns the number of prompt tokens now cached.
        """
        self._stop_prefill()
        cancel = self._prefill_cancel = CancelToken()
        return self._executor.submit(self._prefill_now, request, cancel)

    def swap_adapter(self, folder: Path | None, version: str | None) -> concurrent.futures.Future[None]:
        """Activate an adapter version (or the base, with None) between two requests."""
        return self._executor.submit(self._swap_locked, folder, version)

    def close(self) -> None:
        self._stop_prefill()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _stop_prefill(self) -> None:
        if self._prefill_cancel is not None:
            self._prefill_cancel.set()

    def _swap_locked(self, folder: Path | None, version: str | None) -> None:
        with self._lock:
            self._swap(folder, version)
            self._reset_cache()  # a prompt computed under the previous adapter is never served

    def _prompt(self, request: CompletionRequest) -> list[int]:
        return build_prompt(
            self.tokenizer,
            request.prefix,
            request.suffix,
            request.context_tokens,
            self.loaded.fim,
            request.path,
            request.context_files,
        )

    def _prefill_now(self, request: CompletionRequest, cancel: CancelToken) -> int:
        if cancel.is_set():
            return 0
        prompt, _ = self._take_back_healed(self._prompt(request))
        with self._lock:
            try:
                return self._fill(prompt[:-1], cancel)[0] if len(prompt) > 1 else 0
            except Cancelled:
                return 0

    def complete_now(
        self, request: CompletionRequest, cancel: threading.Event | None = None
    ) -> Completion | None:
        """Run one request on the calling thread (the engine's own thread when called via ``submit``)."""
        started = time.perf_counter()
        prompt = self._prompt(request)
        if not prompt:
            return None  # nothing to continue from: an empty file on a model without a BOS token
        rule = StopRule(request.prefix, request.suffix, request.language)
        with self._lock:
            try:
                generated, reason, cached, healed = self._generate(prompt, request, rule, cancel)
            except Cancelled:
                raise
            except Exception:
                self._reset_cache()
                raise
        text = self._text(generated)[len(healed) :]
        cleaned, stop_reason = finish_suggestion(text, reason, rule, request)
        elapsed = time.perf_counter() - started
        if cleaned is None:
            log.debug("suggestion dropped by filters: %r", text[:80])
            return None
        return Completion(
            text=cleaned,
            model=self.loaded.spec,
            adapter=self.adapter_version,
            tokens=len(generated),
            stop_reason=stop_reason,
            elapsed_s=elapsed,
            cached_tokens=cached,
            prompt_tokens=len(prompt),
        )

    def _text(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _generate(
        self, prompt: list[int], request: CompletionRequest, rule: StopRule, cancel: threading.Event | None
    ) -> tuple[list[int], str, int, str]:
        """Greedy or sampled decoding that reuses the cache: (tokens, stop reason, reused, healed text).

        Token healing: the prompt's last token is taken back and the first new token must start with
        its text. A prefix ending in ``return `` otherwise leaves the model a lone space token it
        rarely saw in training, and it answers with nonsense or nothing.
        """
        started = time.perf_counter()
        prompt, healed = self._take_back_healed(prompt)
        reuse, logits = self._fill(prompt, cancel)
        rng = rng_for(request.seed)
        generated: list[int] = []
        reason = "length"
        steering = None
        if request.steer:
            steering = Steering(
                request.steer,
                healed,
                self._text,
                self._is_eos,
                self._first_token,
                ending=lambda ids: _shown_if_ended(self._text(ids)[len(healed) :], rule),
            )
        # Steering back to an earlier step does not spend the suggestion's tokens, up to a bound.
        steps = request.max_new_tokens + (MAX_STEERED_STEPS if steering is not None else 0)
        for step in range(steps):
            if len(generated) >= request.max_new_tokens:
                break
            if step:
                _check(cancel)
                logits = self._forward([generated[-1]])
                _count_step(cancel)
            if len(generated) == 0 and healed:
                logits = only_tokens_starting_with(logits, healed, self._token_text, self._first_token)
            if steering is not None:
                token, position = steering.pick(
                    logits,
                    generated,
                    lambda row: pick_token(row, request.temperature, request.top_p, rng),
                    last=len(generated) == request.max_new_tokens - 1,
                )
                if position < len(generated):  # steered back to an earlier step: drop what followed
                    del generated[position:]
                    self._reuse(prompt + generated + [token])
            else:
                token = pick_token(logits, request.temperature, request.top_p, rng)
            if self._is_eos(token):
                reason = "eos"
                break
            generated.append(token)
            stop = self._stops(generated, healed, rule, request, started)
            if stop is not None:
                reason = stop
                break
        return generated, reason, reuse, healed

    def _take_back_healed(self, prompt: list[int]) -> tuple[list[int], str]:
        """The prompt without its last token when token healing takes it back, and that token's text."""
        healed = healable_text(self.tokenizer, prompt)
        return (prompt[:-1], healed) if healed else (prompt, "")

    def _fill(self, prompt: list[int], cancel: threading.Event | None) -> tuple[int, Any]:
        """Make the cache hold ``prompt``: (tokens reused, logits after its last token).

        The new part is fed in chunks with a look at ``cancel`` between them; what was computed
        before a cancel stays cached for the next request.
        """
        reuse = self._reuse(prompt)
        logits = None
        for start in range(reuse, len(prompt), self.PREFILL_CHUNK):
            _check(cancel)
            logits = self._forward(prompt[start : start + self.PREFILL_CHUNK])
            _count_step(cancel)
        return reuse, logits

    def _reuse(self, prompt: list[int]) -> int:
        """Trim the cache to its longest common prefix with ``prompt``, keeping one token to feed."""
        raise NotImplementedError

    def _forward(self, feed: list[int]) -> Any:
        """Run ``feed`` through the model after the cached tokens; the last position's logits (NumPy)."""
        raise NotImplementedError

    def _is_eos(self, token: int) -> bool:
        raise NotImplementedError

    def _token_text(self, token: int) -> str:
        return str(self.tokenizer.decode([token]))

    def _first_token(self, text: str) -> int | None:
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        return int(ids[0]) if ids else None

    def _swap(self, folder: Path | None, version: str | None) -> None:
        raise NotImplementedError

    def _reset_cache(self) -> None:
        raise NotImplementedError

    def _stops(
        self, generated: list[int], healed: str, rule: StopRule, request: CompletionRequest, started: float
    ) -> str | None:
        """The stop reason once the text so far ends the suggestion, or None to go on."""
        return suggestion_ends(self._text(generated)[len(healed) :], rule, request, started)


def suggestion_ends(text: str, rule: StopRule, request: CompletionRequest, started: float) -> str | None:
    """Why a suggestion ends at ``text`` (the stop rule, or the predict budget), or None to go on.

    Every runtime decides it here, the remote one included, so suggestions end the same everywhere.
    """
    decision = rule.check(text)
    if decision is not None:
        return decision.reason
    # The predict budget: past it, stop as soon as a line is complete (llama.vscode's t_max_predict_ms).
    if request.budget_ms and time.perf_counter() - started > request.budget_ms / 1000 and "\n" in text:
        return "budget"
    return None


def _shown_if_ended(text: str, rule: StopRule) -> str | None:
    """The suggestion as shown if the stop rule ends it at ``text`` (cut where it says), else None."""
    decision = rule.check(text)
    return text[: decision.cut] if decision is not None else None


def finish_suggestion(
    text: str, reason: str, rule: StopRule, request: CompletionRequest
) -> tuple[str | None, str]:
    """The text worth showing (or None) and why generation ended, from the raw decoded text."""
    decision = rule.check(text + "\n") if reason in ("eos", "length", "budget") else rule.check(text)
    if decision is not None:
        text = text[: decision.cut]
    elif reason in ("length", "budget") and "\n" in text.strip("\n"):
        text = text[: text.rstrip("\n").rfind("\n")]  # keep whole lines of an unfinished block
    text = text.rstrip("\ufffd")
    if is_banned(text, request.steer.banned, ended=True):
        return None, "suppressed"  # the loop could not steer around it (a length or budget end)
    cleaned = clean_suggestion(text, request.prefix, request.suffix, language=request.language)
    return cleaned, decision.reason if decision else reason


class CompletionEngine(EngineBase):
    """The transformers runtime: Hugging Face models, and every peft adapter method."""

    runtime = "transformers"

    def __init__(self, loaded: LoadedModel, slot: AdapterSlot | None = None) -> None:
        super().__init__(loaded)
        self.slot = slot or AdapterSlot(loaded)
        self.tokenizer = loaded.tokenizer
        self._cache: Any = None
        self._cache_ids: list[int] = []
        self._cache_adapter: str | None = None
        self._eos: set[int] | None = None
        self._cache_kwarg = cache_argument(loaded.model)

    @property
    def adapter_version(self) -> str | None:
        return self.slot.version

    def _swap(self, folder: Path | None, version: str | None) -> None:
        if folder is None or version is None:
            self.slot.unload()
        else:
            self.slot.load(folder, version)

    def _reset_cache(self) -> None:
        self._cache = None
        self._cache_ids = []

    def _generate(
        self, prompt: list[int], request: CompletionRequest, rule: StopRule, cancel: threading.Event | None
    ) -> tuple[list[int], str, int, str]:
        import torch

        with torch.inference_mode():
            if self.slot.prompt_learning:
                return self._generate_with_peft(prompt, request, rule, cancel)
            return super()._generate(prompt, request, rule, cancel)

    def _fill(self, prompt: list[int], cancel: threading.Event | None) -> tuple[int, Any]:
        import torch

        if self.slot.prompt_learning:
            return 0, None  # prefix and prompt tuning own the cache: nothing to compute ahead
        with torch.inference_mode():
            return super()._fill(prompt, cancel)

    def _reuse(self, prompt: list[int]) -> int:
        from transformers import DynamicCache

        reuse = 0
        if self._cache is not None and self._cache_adapter == self.slot.version:
            reuse = min(common_prefix_length(self._cache_ids, prompt), len(prompt) - 1)
        if reuse > 0:
            extra = self._cache.get_seq_length() - reuse
            if extra > 0:
                self._cache.crop(-extra)  # negative: drop that many (the only form transformers 5 keeps)
        else:
            # Built without the model's config, every layer (Gemma 3's sliding ones too) keeps all its
            # positions: sliding layers built from the config could not be cropped back to a prefix.
            self._cache = DynamicCache()
        self._cache_adapter = self.slot.version
        self._cache_ids = list(prompt[:reuse])
        return reuse

    def _forward(self, feed: list[int]) -> Any:
        import torch

        out = self.slot.model(
            input_ids=torch.tensor([feed], device=self.loaded.device),
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_kwarg: self._cache},
        )
        self._cache_ids.extend(feed)
        return out.logits[0, -1].detach().float().cpu().numpy()

    def _is_eos(self, token: int) -> bool:
        if self._eos is None:
            self._eos = eos_ids(self.loaded.model, self.loaded.tokenizer)
        return token in self._eos

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
        eos = eos_ids(self.loaded.model, self.loaded.tokenizer)
        if generated and generated[-1] in eos:
            return generated[:-1], "eos", 0, ""
        return generated, state["reason"], 0, ""


def _count_step(cancel: threading.Event | None) -> None:
    if isinstance(cancel, CancelToken):
        cancel.step += 1


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        steps = cancel.steps_after_cancel if isinstance(cancel, CancelToken) else 0
        raise Cancelled("generation cancelled", steps_after_cancel=steps)
