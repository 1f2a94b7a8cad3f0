"""The remote runtime: suggestions from an OpenAI-compatible server (llama.cpp, vLLM, Ollama, LM Studio).

A team can serve one larger model from one GPU machine to every editor:
``--model openai:http://HOST:PORT/v1#MODEL`` (options in ``models.RemoteSpec``). What users see is
still decided here, as for the local runtimes, so suggestions end and are cleaned the same way:

- The prompt comes from ``prompts.build_prompt`` (FIM form and other open files included), cut by
  characters since the server's tokenizer is not ours: ``CHARS_PER_TOKEN`` characters count as a
  token, and the start stays on the same character grid at a line start, so the server's prompt
  cache (llama.cpp's ``cache_prompt``, vLLM's prefix caching) is reused while the user types.
- ``POST /v1/completions`` streams; ``StopRule`` reads the text as it arrives and, once it ends the
  suggestion, the connection is closed, which stops the server decoding. A cancelled request closes
  it the same way, within one poll (20 ms). ``finish_suggestion`` then cuts and filters the text.
- No token healing: it needs the server's vocabulary. A prefix ending mid-word or in a space is sent
  as it is.
- Suppressions (``request.steer``) without logits: a suggestion whose first statement the user
  rejected is dropped after the fact, and one more request asks for ``CANDIDATES`` sampled ones
  (``n``; a server that ignores it gives one) and shows the first that is not rejected. A user's fix
  is shown as it is, without asking the server. No ``logit_bias``: the server's token ids are unknown
  here, and biasing every token of a statement by its text would also ban completions sharing them.
- Adapters are the server's, named per request (``adapters=`` in the spec, else asked of the server).
  vLLM: ``model`` names the LoRA, which :meth:`RemoteEngine.swap_adapter` first loads with
  ``POST /v1/load_lora_adapter`` (start vLLM with ``--enable-lora`` and
  ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; it must read the version's folder); requests use it only
  once the server confirmed; a rollback loads the older version the same way. llama.cpp's
  ``llama-server`` loads adapters only at its start (``--lora FILE`` for each version's
  ``adapter_model.gguf``, with ``--lora-init-without-apply``); :meth:`swap_adapter` finds the
  version's id in ``GET /lora-adapters`` and every request sends the whole ``lora`` list with explicit
  scales, 0 for the base model too: a global scale change was measured to reuse a prompt cache
  computed under the old scale. A version the server has not loaded is refused, naming the ``--lora``
  to add. Other servers (llama-cpp-python's, Ollama, LM Studio) serve the base model only.
- An unreachable server gives no suggestion rather than an error at each keystroke: ``remote_error``
  says why (``hotfix/status``'s ``backendError``), it is logged once per outage, and requests try
  again after a pause that grows to ``OUTAGE_MAX_S``, so serving resumes by itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import SimpleNamespace
from typing import Any

from hotfix_engine.completion import (
    Completion,
    CompletionRequest,
    EngineBase,
    _check,
    _count_step,
    finish_suggestion,
    suggestion_ends,
)
from hotfix_engine.errors import AdapterError, Cancelled
from hotfix_engine.models import FimTokens, ProgressFn, RemoteSpec, parse_remote, parse_spec
from hotfix_engine.prompts import CHARS_PER_TOKEN, build_prompt
from hotfix_engine.remote_http import Aborted, Connection, HttpError, Unreachable, request_json, stream_events
from hotfix_engine.stopping import CancelToken, StopRule

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
ASK_TIMEOUT_S = 5.0  # /v1/models, /props, /lora-adapters, /v1/load_lora_adapter (a LoRA load takes a while)
RETRY_DELAYS_S = (
    0.1,
    0.3,
)  # a refused connection is tried again within the request, while the server was fine
OUTAGE_FIRST_S = 0.25  # while unreachable: requests get no suggestion at once, one tries again after this,
OUTAGE_MAX_S = 5.0  # doubling up to this
CANDIDATES = 3
CANDIDATE_TEMPERATURE = 0.8  # for the candidates asked after a rejected greedy suggestion
MAX_STOPS = 4  # OpenAI's limit on stop sequences
API_KEY_ENV = "HOTFIX_API_KEY"  # sent as a bearer token, for servers started with --api-key


class CharTokenizer:
    """What ``prompts.build_prompt`` needs of a tokenizer, counting ``CHARS_PER_TOKEN`` characters as one.

    Ids index the pieces handed out, so :meth:`decode` gives back exactly the text the prompt keeps,
    which the server then tokenizes itself. One per prompt: the pieces are never forgotten.
    """

    bos_token_id = None

    def __init__(self) -> None:
        self._pieces: list[str] = []

    def _add(self, piece: str) -> int:
        self._pieces.append(piece)
        return len(self._pieces) - 1

    def __call__(self, text: str, add_special_tokens: bool = False) -> SimpleNamespace:
        step = CHARS_PER_TOKEN
        return SimpleNamespace(input_ids=[self._add(text[i : i + step]) for i in range(0, len(text), step)])

    def convert_tokens_to_ids(self, token: str) -> int:
        return self._add(token)

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(self._pieces[i] for i in ids)


@dataclass
class RemoteModel:
    """A model on an OpenAI-compatible server, as the server process sees a loaded model."""

    spec: str
    key: str
    remote: RemoteSpec
    fim: FimTokens | None
    device: str  # where it runs: the server's URL
    load_seconds: float = 0.0


def load_remote(spec: str | None, progress: ProgressFn | None = None) -> RemoteEngine:
    """An engine for ``openai:URL#MODEL``; a server that does not answer yet is not an error."""
    started = time.perf_counter()
    parsed = parse_spec(spec)
    remote = parse_remote(parsed.text)
    if progress:
        progress(f"asking {remote.url} about {remote.model}")
    loaded = RemoteModel(parsed.text, remote.key, remote, remote.fim_tokens, remote.url)
    engine = RemoteEngine(loaded)
    engine._executor.submit(engine._ready).result()
    loaded.load_seconds = time.perf_counter() - started
    return engine


class RemoteEngine(EngineBase):
    """Serves completions from a remote server, with prompts, stop rules and filters of our own."""

    runtime = "openai"

    def __init__(self, loaded: RemoteModel) -> None:
        super().__init__(loaded)
        self.remote: RemoteSpec = loaded.remote
        self.server: str | None = None  # "vllm" | "llama.cpp" | "other", once the server was asked
        self.context_limit: int | None = None  # the server's context, when it tells
        self.remote_error: str | None = None  # why suggestions are not coming, while they are not
        self._error_kind: str | None = None
        self._pause = 0.0
        self._retry_at = 0.0
        self._known = False  # the server was asked what it is since it last answered
        self._version: str | None = None
        self._folder: Path | None = None
        self._vllm_name: str | None = None
        self._lora_id: int | None = None
        self._lora_ids: list[int] = []  # every adapter a llama.cpp server loaded
        self._closing = threading.Event()
        key = os.environ.get(API_KEY_ENV, "")
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}

    @property
    def adapter_version(self) -> str | None:
        return self._version

    @property
    def adapters(self) -> str:
        """How requests name their adapter: "vllm", "llama" or "none"."""
        if self.remote.adapters != "auto":
            return self.remote.adapters
        return {"vllm": "vllm", "llama.cpp": "llama"}.get(self.server or "", "none")

    def close(self) -> None:
        self._closing.set()
        super().close()

    # Requests -------------------------------------------------------------------------------------

    def complete_now(
        self, request: CompletionRequest, cancel: threading.Event | None = None
    ) -> Completion | None:
        started = time.perf_counter()
        rule = StopRule(request.prefix, request.suffix, request.language)
        if request.steer.preferred:  # the user's own fix for this site: shown as it is
            text, reason = finish_suggestion(request.steer.preferred[0], "eos", rule, request)
            return self._completion(text, reason, 0, 0, started) if text is not None else None
        _check(cancel)  # superseded while it waited in the queue: nothing to ask
        if not self._ready():
            return None
        prompt = self._prompt_text(request)
        if not prompt:
            return None
        try:
            shown, reason, tokens = self._suggest(prompt, request, rule, cancel, started)
        except Aborted:
            _check(cancel)
            raise Cancelled("the engine is closing") from None
        except (Unreachable, HttpError) as exc:
            self._failed(exc)
            return None
        self._answered()
        if shown is None:
            log.debug("remote suggestion dropped (%s)", reason)
            return None
        return self._completion(shown, reason, tokens, len(prompt), started)

    def _suggest(
        self,
        prompt: str,
        request: CompletionRequest,
        rule: StopRule,
        cancel: threading.Event | None,
        started: float,
    ) -> tuple[str | None, str, int]:
        """The suggestion as shown (None: nothing worth showing), why it ended, and its chunks."""
        text, reason, chunks = self._ask(self._body(prompt, request), rule, request, cancel, started)[0]
        shown, stop = finish_suggestion(text, reason, rule, request)
        if stop != "suppressed":
            return shown, stop, chunks
        # Rejected here before: the next candidates the server samples, the first one not rejected.
        body = self._body(prompt, request, candidates=True)
        for text, reason, chunks in self._ask(body, rule, request, cancel, started):
            shown, stop = finish_suggestion(text, reason, rule, request)
            if shown is not None:
                return shown, stop, chunks
        return None, "suppressed", 0

    def _ask(
        self,
        body: dict[str, Any],
        rule: StopRule,
        request: CompletionRequest,
        cancel: threading.Event | None,
        started: float,
    ) -> list[tuple[str, str, int]]:
        """Stream one request: each choice's raw text, why it ended, and the chunks it took.

        The stream is closed as soon as every choice has ended, which stops the server decoding.
        """
        count = int(body.get("n", 1))
        texts = [""] * count
        reasons: list[str | None] = [None] * count
        chunks = [0] * count
        with self._connect(cancel) as conn:
            for event in stream_events(conn, body, self._headers):
                _check(cancel)
                for choice in (event.get("choices") if isinstance(event, dict) else None) or ():
                    i = int(choice.get("index") or 0) if isinstance(choice, dict) else -1
                    if not 0 <= i < count or reasons[i] is not None:
                        continue
                    piece = str(choice.get("text") or "")
                    texts[i] += piece
                    chunks[i] += bool(piece)
                    finish = choice.get("finish_reason")
                    reasons[i] = suggestion_ends(texts[i], rule, request, started) or (
                        ("length" if finish == "length" else "eos") if finish else None
                    )
                _count_step(cancel)
                if all(reason is not None for reason in reasons):
                    break
        return [(t, r or "eos", c) for t, r, c in zip(texts, reasons, chunks, strict=True)]

    def _connect(self, cancel: threading.Event | None) -> Connection:
        """A connection for one completion; a refused connect is tried again while the server was fine."""

        def stop() -> bool:
            return self._closing.is_set() or (cancel is not None and cancel.is_set())

        attempts = 1 if self._error_kind == "unreachable" else 1 + len(RETRY_DELAYS_S)
        for attempt in range(attempts):
            try:
                return Connection(
                    self.remote.url + "/completions", CONNECT_TIMEOUT_S, self.remote.timeout_s, stop
                )
            except Unreachable:
                if attempt == attempts - 1:
                    raise
                (cancel or self._closing).wait(RETRY_DELAYS_S[attempt])
                if stop():
                    raise Aborted from None
        raise AssertionError("unreachable")

    def _body(self, prompt: str, request: CompletionRequest, *, candidates: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._vllm_name if self.adapters == "vllm" and self._vllm_name else self.remote.model,
            "prompt": prompt,
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stream": True,
        }
        stops = self._stop_strings(request)
        if stops:
            body["stop"] = stops
        if request.seed is not None:
            body["seed"] = request.seed
        if self.server != "vllm":
            body["repeat_penalty"] = 1.0  # llama-cpp-python's server penalises repeats (1.1) unless told
        if self.server == "llama.cpp":
            body.update(cache_prompt=True, top_k=0, min_p=0.0)
        if self.adapters == "llama":
            body["lora"] = [{"id": i, "scale": 1.0 if i == self._lora_id else 0.0} for i in self._lora_ids]
        if candidates:
            body["temperature"] = request.temperature or CANDIDATE_TEMPERATURE
            body["seed"] = request.seed if request.seed is not None else 0
            if self.server != "llama.cpp":  # llama-server allows one choice per completion request
                body["n"] = CANDIDATES
        return body

    def _stop_strings(self, request: CompletionRequest) -> list[str]:
        """Where the server may stop by itself; the stop rule still decides the rest as text arrives."""
        stops = []
        if request.suffix.split("\n", 1)[0].strip():
            stops.append("\n")  # code after the cursor: only this line is finished
        fim = self.loaded.fim
        if fim is not None and request.suffix.strip():  # sentinels a server renders as text
            stops += [t for t in (fim.file_sep, fim.prefix, fim.suffix, fim.middle) if t]
        return stops[:MAX_STOPS]

    def _prompt_text(self, request: CompletionRequest) -> str:
        budget = request.context_tokens
        if self.context_limit:  # the prompt and the suggestion must both fit the server's context
            budget = min(budget, max(16, self.context_limit - request.max_new_tokens - 8))
        tokenizer = CharTokenizer()
        ids = build_prompt(
            tokenizer,
            request.prefix,
            request.suffix,
            budget,
            self.loaded.fim,
            request.path,
            request.context_files,
        )
        return tokenizer.decode(ids)

    def _completion(
        self, text: str, reason: str, tokens: int, prompt_chars: int, started: float
    ) -> Completion:
        return Completion(
            text=text,
            model=self.loaded.spec,
            adapter=self._version,
            tokens=tokens,
            stop_reason=reason,
            elapsed_s=time.perf_counter() - started,
            cached_tokens=0,  # the server's own prompt cache is not reported in a stream
            prompt_tokens=prompt_chars // CHARS_PER_TOKEN,  # an estimate: the tokenizer is the server's
        )

    def _prefill_now(self, request: CompletionRequest, cancel: CancelToken) -> int:
        """Warm the server's prompt cache with a one-token request; a real request closes it at once."""
        if cancel.is_set() or not self._ready():
            return 0
        prompt = self._prompt_text(request)
        if not prompt:
            return 0
        body = {**self._body(prompt, request), "max_tokens": 1, "temperature": 0.0}
        body.pop("stop", None)
        try:
            with self._connect(cancel) as conn:
                for _ in stream_events(conn, body, self._headers):
                    break
        except Aborted:
            return 0
        except Unreachable as exc:
            self._failed(exc)
            return 0
        except HttpError as exc:
            log.debug("prefill refused: %s", exc)
            return 0
        self._answered()
        return 0  # what the server cached is its own to know

    # The server's state ---------------------------------------------------------------------------

    def _ready(self) -> bool:
        """False while a pause after a failed contact lasts; asks the server what it is when needed."""
        if self._error_kind == "unreachable" and time.monotonic() < self._retry_at:
            return False
        if not self._known:
            try:
                self._discover()
            except (Unreachable, HttpError) as exc:
                self._failed(exc)
                return False
            except Aborted:  # the engine is closing
                return False
        return True

    def _get(self, url: str) -> Any:
        return request_json(
            "GET",
            url,
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=ASK_TIMEOUT_S,
            headers=self._headers,
            stop=self._closing.is_set,
        )

    def _discover(self) -> None:
        """Which server this is, its context size, and (after a restart) the adapter again.

        vLLM and llama.cpp say who owns their models in ``/v1/models``; an older llama.cpp is known
        by its ``/props``. Anything else is served as a plain OpenAI-compatible server.
        """
        try:
            models = self._get(self.remote.url + "/models")
        except HttpError as exc:
            log.info("%s/models: %s; serving %s without asking more", self.remote.url, exc, self.remote.model)
            models = {}
        entries = [
            e for e in (models.get("data") or [] if isinstance(models, dict) else []) if isinstance(e, dict)
        ]
        owners = {str(e.get("owned_by", "")).lower() for e in entries}
        server = "vllm" if "vllm" in owners else "llama.cpp" if "llamacpp" in owners else None
        limit = next(
            (
                int(e["max_model_len"])
                for e in entries
                if e.get("id") == self.remote.model and e.get("max_model_len")
            ),
            None,
        )
        if server in (None, "llama.cpp"):
            props = self._optional(self.remote.root + "/props")
            if isinstance(props, dict) and "default_generation_settings" in props:
                server = "llama.cpp"
                settings = props.get("default_generation_settings") or {}
                n_ctx = settings.get("n_ctx") or props.get("n_ctx")
                limit = int(n_ctx) if n_ctx else limit
        self.server = server or "other"
        self.context_limit = limit
        if self.adapters == "llama":
            self._read_lora()
        if self._version is not None and self._folder is not None:
            # A restarted server forgot adapters loaded at run time, and may number its own anew.
            try:
                self._activate(self._folder, self._version)
            except AdapterError as exc:
                log.error("serving the base model: %s", exc)
                self._forget_adapter()
        self._known = True
        log.info(
            "completion server at %s: %s, adapters: %s, context: %s",
            self.remote.url,
            self.server,
            self.adapters,
            limit or "unknown",
        )

    def _optional(self, url: str) -> Any:
        try:
            return self._get(url)
        except HttpError:
            return None

    def _failed(self, exc: Unreachable | HttpError) -> None:
        kind = "unreachable" if isinstance(exc, Unreachable) else f"http {exc.status}"
        message = f"{self.remote.url}: {exc}"
        if kind != self._error_kind:  # once per outage (or per kind of refusal), not per keystroke
            log.warning("no suggestions from the completion server %s", message)
        else:
            log.debug("completion server still failing: %s", message)
        self.remote_error, self._error_kind = message, kind
        if isinstance(exc, Unreachable):
            self._pause = min(max(self._pause * 2, OUTAGE_FIRST_S), OUTAGE_MAX_S)
            self._retry_at = time.monotonic() + self._pause
            self._known = False  # it may come back as another server, or with other adapters

    def _answered(self) -> None:
        if self.remote_error is not None:
            log.warning("the completion server at %s answers again", self.remote.url)
        self.remote_error = self._error_kind = None
        self._pause = 0.0

    # Adapters -------------------------------------------------------------------------------------

    def _swap(self, folder: Path | None, version: str | None) -> None:
        if folder is None or version is None:
            self._forget_adapter()
            log.info("serving the base model of %s", self.remote.url)
            return
        try:
            if not self._known:
                self._discover()
            self._activate(Path(folder), version)
        except (Unreachable, HttpError) as exc:
            raise AdapterError(f"adapter {version} not activated: {self.remote.url}: {exc}") from None
        log.info("adapter %s active on %s", version, self.remote.url)

    def _reset_cache(self) -> None:
        """Nothing cached here: the server's cache is keyed by the adapter each request names."""

    def _forget_adapter(self) -> None:
        self._version = self._folder = self._vllm_name = self._lora_id = None

    def _activate(self, folder: Path, version: str) -> None:
        """Make ``version`` the adapter requests name, once the server has it; the current one stays otherwise."""
        mode = self.adapters
        if mode == "vllm":
            # The folder's digest keeps two users' v0001 apart on one server; one folder shares a name.
            name = f"{version}-{hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:8]}"
            try:
                request_json(
                    "POST",
                    self.remote.url + "/load_lora_adapter",
                    {"lora_name": name, "lora_path": str(folder)},
                    connect_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=max(ASK_TIMEOUT_S, self.remote.timeout_s),
                    headers=self._headers,
                    stop=self._closing.is_set,
                )
            except HttpError as exc:
                if "already" not in exc.message.lower():  # loaded before: the same folder, the same name
                    raise AdapterError(
                        f"vLLM at {self.remote.url} did not load adapter {version} ({exc}); start it with "
                        f"--enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, and let it read {folder}"
                    ) from None
            self._version, self._folder, self._vllm_name = version, folder, name
        elif mode == "llama":
            from hotfix_engine.gguf_lora import GGUF_LORA_FILE

            paths = self._read_lora()
            found = _lora_id(paths, folder / GGUF_LORA_FILE, version)
            if found is None:
                raise AdapterError(
                    f"the llama.cpp server at {self.remote.root} has not loaded adapter {version}: it loads "
                    f"adapters at its start; restart it with --lora {folder / GGUF_LORA_FILE} added "
                    "(and --lora-init-without-apply)"
                )
            self._version, self._folder, self._lora_id = version, folder, found
        else:
            raise AdapterError(
                f"the server at {self.remote.url} cannot switch adapters per request ({self.server or 'unknown'}"
                "): serve the model with vLLM (--enable-lora) or llama.cpp's llama-server (--lora), or add "
                "?adapters=vllm or ?adapters=llama to the model spec if it is one of them"
            )

    def _read_lora(self) -> dict[str, int]:
        """llama.cpp's loaded adapters as {path: id}; every request lists them all with a scale."""
        try:
            data = self._get(self.remote.root + "/lora-adapters")
        except HttpError as exc:
            log.warning("%s/lora-adapters: %s; requests name no adapter", self.remote.root, exc)
            data = []
        entries = [e for e in data if isinstance(e, dict) and "id" in e] if isinstance(data, list) else []
        self._lora_ids = [int(e["id"]) for e in entries]
        return {str(e.get("path", "")): int(e["id"]) for e in entries}


def _lora_id(paths: dict[str, int], wanted: Path, version: str) -> int | None:
    """The id of the adapter loaded from ``wanted``: the same file, else the one file that ends in
    ``VERSION/adapter_model.gguf`` (the server may see the adapters folder under another mount)."""
    real = os.path.realpath(wanted)
    for path, found in paths.items():
        if os.path.realpath(path) == real:
            return found
    tails = [found for path, found in paths.items() if PurePath(path).parts[-2:] == (version, wanted.name)]
    return tails[0] if len(tails) == 1 else None
