"""Which runtime serves a model: llama.cpp for GGUF models, transformers for the rest, a server for
``openai:`` specs.

``auto`` takes llama.cpp whenever it can: the model is a GGUF file (the embedded ones are), the
library is installed, and the adapter to serve is a LoRA (IA3, prefix and prompt tuning have no
llama.cpp form). Anything else goes to transformers, which serves every model and adapter. A model
on an OpenAI-compatible server (``openai:URL#MODEL``) is served there whatever the choice says.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hotfix_engine.completion import EngineBase
from hotfix_engine.errors import ConfigError
from hotfix_engine.models import OPENAI_SCHEME, ProgressFn, parse_spec

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "llama.cpp", "transformers", "openai")


def choose_runtime(choice: str | None, spec: str | None, adapter: Path | None = None) -> str:
    """The runtime ``choice`` means for this model and adapter folder (None: the base model)."""
    from hotfix_engine.llama_engine import adapter_method, llama_cpp_available

    choice = (choice or "auto").strip().lower()
    if choice not in RUNTIMES:
        raise ConfigError(f"unknown runtime {choice!r}; choose one of: {', '.join(RUNTIMES)}")
    remote = (spec or "").strip().startswith(OPENAI_SCHEME)
    if remote or choice == "openai":
        if not remote:
            raise ConfigError("the openai runtime serves openai:http://HOST:PORT/v1#MODEL specs only")
        if choice not in ("auto", "openai"):
            log.info("%s runs on its server, not on %s", spec, choice)
        return "openai"
    if choice != "auto":
        return choice
    if parse_spec(spec).kind not in ("embedded", "gguf"):
        return "transformers"
    if not llama_cpp_available():
        log.warning("llama-cpp-python is not installed: serving with transformers (slower)")
        return "transformers"
    method = adapter_method(adapter) if adapter is not None else "LORA"
    if method != "LORA":
        log.info("the current adapter is %s, which only transformers serves", method)
        return "transformers"
    return "llama.cpp"


def load_engine(
    spec: str | None,
    runtime: str | None = "auto",
    *,
    adapter: Path | None = None,
    device: str | None = "auto",
    progress: ProgressFn | None = None,
) -> EngineBase:
    """Load the model in the chosen runtime; ``adapter`` only informs the choice, it is not activated."""
    chosen = choose_runtime(runtime, spec, adapter)
    if chosen == "openai":
        from hotfix_engine.remote_engine import load_remote

        return load_remote(spec, progress)
    if chosen == "llama.cpp":
        from hotfix_engine.llama_engine import LlamaCppEngine, load_llama

        return LlamaCppEngine(load_llama(spec, progress))
    from hotfix_engine.completion import CompletionEngine
    from hotfix_engine.models import load_model

    return CompletionEngine(load_model(spec, device=device, progress=progress))
