"""The llama.cpp runtime: GGUF models served through llama-cpp-python, hotfix adapters as GGUF LoRA.

llama.cpp decodes the embedded Gemma's Q4_K_M weights straight from the file, without the
dequantised fp32 copy transformers needs, and never imports torch: a server on this runtime starts
in about a second and stays small. Everything users see (prompts, healing, stop rules, filters,
cancellation) is :class:`~hotfix_engine.completion.EngineBase`'s, shared with transformers; this
module supplies the forward pass, the cache trimming and the adapter swap.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from hotfix_engine.completion import CompletionRequest, EngineBase, common_prefix_length
from hotfix_engine.errors import AdapterError, ModelError
from hotfix_engine.models import FimTokens, ProgressFn, gguf_file, parse_spec

log = logging.getLogger(__name__)

CONTEXT_TOKENS = 4096  # the KV cache's size: the prompt budget (1536) and a long suggestion fit twice
BATCH_TOKENS = 512  # llama.cpp's batch: prompt chunks up to this size run as one matrix product


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


native_log = logging.getLogger("hotfix_engine.llama_cpp")
_native_log_callback: Any = None  # kept referenced: llama.cpp calls it from C for the process's life


def route_native_log() -> None:
    """Send llama.cpp's own messages to our log: errors as errors, the rest (a dozen lines each time an
    adapter loads) at debug level, instead of straight to stderr."""
    global _native_log_callback
    import llama_cpp

    if _native_log_callback is not None:
        return

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: Any) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            native_log.log(logging.ERROR if level == 3 else logging.DEBUG, "%s", message)

    _native_log_callback = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


class LlamaTokenizer:
    """llama.cpp's own tokenizer, with the small part of the Hugging Face interface prompts use."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp

        self._llm = llm
        self._lib = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        bos = llama_cpp.llama_vocab_bos(self._vocab)
        self.bos_token_id = bos if bos != llama_cpp.LLAMA_TOKEN_NULL else None
        eos = llama_cpp.llama_vocab_eos(self._vocab)
        self.eos_token_id = eos if eos != llama_cpp.LLAMA_TOKEN_NULL else None
        self.all_special_ids = _ControlTokens(llama_cpp, self._vocab)

    def __call__(self, text: str, add_special_tokens: bool = True) -> SimpleNamespace:
        data = text.encode("utf-8", errors="replace")  # a lone surrogate becomes '?', never an error
        return SimpleNamespace(input_ids=self._llm.tokenize(data, add_bos=add_special_tokens, special=False))

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        data: bytes = self._llm.detokenize(list(ids), special=not skip_special_tokens)
        return data.decode("utf-8", errors="replace")

    def convert_tokens_to_ids(self, token: str) -> int:
        ids = self._llm.tokenize(token.encode("utf-8"), add_bos=False, special=True)
        if len(ids) != 1:
            raise ModelError(f"{token!r} is not a single token of this model")
        return int(ids[0])

    def is_eog(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def fim(self) -> FimTokens | None:
        """The model's fill-in-the-middle tokens, when its vocabulary declares all three, with the
        file separator and repository name tokens when it declares both."""
        lib, vocab = self._lib, self._vocab
        ids = (lib.llama_vocab_fim_pre(vocab), lib.llama_vocab_fim_suf(vocab), lib.llama_vocab_fim_mid(vocab))
        if any(i == lib.LLAMA_TOKEN_NULL for i in ids):
            return None
        texts = [self.decode([i], skip_special_tokens=False) for i in ids]
        repo = (lib.llama_vocab_fim_sep(vocab), lib.llama_vocab_fim_rep(vocab))
        if all(i != lib.LLAMA_TOKEN_NULL for i in repo):
            texts += [self.decode([i], skip_special_tokens=False) for i in repo]
        return FimTokens(*texts)


class _ControlTokens:
    """``token in all_special_ids`` without listing 262k vocabulary entries up front."""

    def __init__(self, lib: Any, vocab: Any) -> None:
        self._lib = lib
        self._vocab = vocab

    def __contains__(self, token: object) -> bool:
        return isinstance(token, int) and bool(self._lib.llama_vocab_is_control(self._vocab, token))


@dataclass
class LlamaModel:
    """A GGUF model opened by llama.cpp, and where it came from."""

    llm: Any
    tokenizer: LlamaTokenizer
    spec: str
    key: str
    path: Path
    fim: FimTokens | None
    load_seconds: float
    device: str = "cpu"


def load_llama(
    spec: str | None, progress: ProgressFn | None = None, threads: int | None = None
) -> LlamaModel:
    """Open a GGUF model in llama.cpp; any failure is one :class:`ModelError` that says how to fix it."""
    started = time.perf_counter()
    parsed = parse_spec(spec)
    path = gguf_file(parsed.text, progress)
    if path is None:
        raise ModelError(
            f"llama.cpp serves GGUF models; {parsed.text} is a Hugging Face model: use the transformers runtime"
        )
    if not llama_cpp_available():
        raise ModelError(
            "the llama.cpp runtime needs llama-cpp-python (make install builds it); or use the transformers runtime"
        )
    import llama_cpp

    if progress:
        progress(f"loading {parsed.text} in llama.cpp")
    threads = threads or os.cpu_count() or 1
    route_native_log()
    try:
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=CONTEXT_TOKENS,
            n_batch=BATCH_TOKENS,
            n_threads=threads,  # llama-cpp-python's default is half the cores: decoding is then 2x slower
            n_threads_batch=threads,
            swa_full=True,  # Gemma 3's sliding layers keep every position, so a cached prefix can be reused
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelError(f"llama.cpp cannot load {path}: {exc}") from None
    tokenizer = LlamaTokenizer(llm)
    seconds = time.perf_counter() - started
    log.info("loaded %s in llama.cpp (%d threads) in %.1f s", parsed.text, threads, seconds)
    return LlamaModel(llm, tokenizer, parsed.text, parsed.key, path, tokenizer.fim(), seconds)


class LlamaCppEngine(EngineBase):
    """Serves completions from a GGUF model, with the current hotfix as a GGUF LoRA."""

    runtime = "llama.cpp"
    PREFILL_CHUNK = 128  # ~0.3 s of prompt on 2 cores between looks at the cancel flag

    def __init__(self, loaded: LlamaModel) -> None:
        import llama_cpp

        super().__init__(loaded)
        self._lib = llama_cpp
        self.llm = loaded.llm
        self.tokenizer = loaded.tokenizer
        self._n_vocab = int(self.llm.n_vocab())
        self._adapter: Any = None  # the active llama_adapter_lora pointer
        self._version: str | None = None

    @property
    def adapter_version(self) -> str | None:
        return self._version

    def close(self) -> None:
        super().close()
        self._detach_adapter()

    def _prompt(self, request: CompletionRequest) -> list[int]:
        # The prompt and the suggestion must both fit the context.
        room = CONTEXT_TOKENS - request.max_new_tokens - 8
        if request.context_tokens > room:
            request = dataclasses.replace(request, context_tokens=max(16, room))
        return super()._prompt(request)

    def _reuse(self, prompt: list[int]) -> int:
        llm = self.llm
        cached = llm.input_ids[: llm.n_tokens].tolist()
        reuse = min(common_prefix_length(cached, prompt), len(prompt) - 1)
        if reuse < llm.n_tokens and not llm._ctx.kv_cache_seq_rm(-1, reuse, -1):
            reuse = 0  # the cache cannot drop a suffix: start afresh
            self._reset_cache()
        llm.n_tokens = reuse
        return reuse

    def _forward(self, feed: list[int]) -> Any:
        self.llm.eval(feed)
        logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self._n_vocab,))
        return logits.copy()  # the buffer is overwritten by the next step

    def _is_eos(self, token: int) -> bool:
        return self.tokenizer.is_eog(token)

    def _reset_cache(self) -> None:
        self.llm.n_tokens = 0
        memory = self._lib.llama_get_memory(self.llm._ctx.ctx)
        if memory is not None:
            self._lib.llama_memory_clear(memory, True)

    def _swap(self, folder: Path | None, version: str | None) -> None:
        lib, ctx = self._lib, self.llm._ctx.ctx
        if folder is None or version is None:
            self._detach_adapter()
            self._version = None
            return
        gguf = gguf_lora_for(Path(folder), self.loaded.path, version)
        adapter = lib.llama_adapter_lora_init(self.llm.model, str(gguf).encode("utf-8"))
        if not adapter:
            raise AdapterError(
                f"llama.cpp cannot load adapter {version} ({gguf}): corrupt, or made for another model"
            )
        adapters = (lib.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(1.0)
        if lib.llama_set_adapters_lora(ctx, adapters, 1, scales) != 0:
            lib.llama_adapter_lora_free(adapter)
            raise AdapterError(f"llama.cpp refused adapter {version}")
        self._free_adapter()
        self._adapter = adapter
        self._version = version
        log.info("adapter %s active in llama.cpp (from %s)", version, gguf)

    def _detach_adapter(self) -> None:
        """Run the base model again and free the adapter's weights."""
        if self._adapter is not None:
            self._lib.llama_set_adapters_lora(self.llm._ctx.ctx, None, 0, None)
            self._free_adapter()

    def _free_adapter(self) -> None:
        if self._adapter is not None:
            self._lib.llama_adapter_lora_free(self._adapter)
            self._adapter = None


def gguf_lora_for(folder: Path, base_gguf: Path, version: str) -> Path:
    """The GGUF form of a peft adapter version, converted on first use; AdapterError if it has none."""
    from hotfix_engine.adapters_slot import check_adapter_folder
    from hotfix_engine.gguf_lora import ensure_gguf_lora

    kind = peft_type(check_adapter_folder(folder))
    if kind != "LORA":
        raise AdapterError(
            f"adapter {version} is {kind or 'not LoRA'}; llama.cpp serves LoRA adapters only: "
            "use the transformers runtime for it"
        )
    return ensure_gguf_lora(folder, base_gguf)


def adapter_method(folder: Path) -> str | None:
    """The peft type of an adapter folder (``LORA``, ``IA3``, ...), or None when it cannot be read."""
    try:
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    return peft_type(config) or None


def peft_type(config: dict[str, Any]) -> str:
    return str(config.get("peft_type", "")).upper()
