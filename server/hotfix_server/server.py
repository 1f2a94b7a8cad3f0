"""The language server: thin LSP handlers over the runtime (docs/architecture.md).

Generation never runs on pygls's thread pool nor in ``@thread`` handlers (they cannot be stopped):
the async handlers await the engine's own inference thread, and ``$/cancelRequest`` or a newer
request for the same document sets the generation's cancel token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer

from hotfix_engine import __version__
from hotfix_engine.completion import CompletionRequest
from hotfix_engine.errors import Cancelled, HotfixError
from hotfix_engine.models import DEFAULT_MODEL
from hotfix_engine.outcomes import TextChange
from hotfix_engine.stopping import CancelToken
from hotfix_server import translate
from hotfix_server.config import ServerConfig, parse_config
from hotfix_server.continuous import ContinuousTraining
from hotfix_server.lifeline import watch_parent
from hotfix_server.progress import ServerProgress
from hotfix_server.protocol import HotfixProtocol, SuggestionId, converter
from hotfix_server.runtime import Backend, Runtime, load_backend
from hotfix_server.scheduler import DocumentScheduler
from hotfix_server.training import TrainerProcess
from hotfix_server.watch import AdapterWatcher

log = logging.getLogger(__name__)

TICK_S = 0.5  # how often outcome timeouts (expiry, edit windows) are applied
# A pause in typing this long computes the prompt at the last edit ahead of the request that will need
# it (llama.vscode's idle requests); shorter would spend the CPU on places the user only passes through.
PREFILL_PAUSE_S = 0.3


class HotfixServer(LanguageServer):
    """Serves suggestions and watches what becomes of them.

    The handlers registered with pygls annotate ``self``: that is how pygls knows to pass the server
    to a function registered from the class (:func:`create_server`).
    """

    protocol: HotfixProtocol

    def __init__(self, defaults: ServerConfig | None = None) -> None:
        super().__init__("hotfix", __version__, protocol_cls=HotfixProtocol, converter_factory=converter)
        self.runtime = Runtime()
        self.runtime.configure(defaults or ServerConfig())  # from the command line; the client may override
        self.scheduler = DocumentScheduler()
        self.trainer = TrainerProcess()
        self.continuous = ContinuousTraining()
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="hotfix-loader")
        self._background: set[asyncio.Future[Any]] = set()
        self._watcher: AdapterWatcher | None = None
        self._adapter_lock = asyncio.Lock()
        self._refused_adapter: str | None = None  # a version that failed to load, reported once
        self._progress_supported = False
        self._loads = 0
        # The command line's defaults, then initializationOptions over them: the base later changes apply over.
        self._initial_config = self.runtime.config
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._prefill_timer: asyncio.TimerHandle | None = None
        # A prefill asked for before the model was ready: (uri, edit), as _prefill takes them.
        self._prefill_waiting: tuple[str, tuple[types.Position, int] | None] | None = None

    # Lifecycle --------------------------------------------------------------------------------

    def on_initialize(self: HotfixServer, params: types.InitializeParams) -> None:
        self._loop = asyncio.get_running_loop()
        self._initial_config = self._configure(params.initialization_options)
        window = params.capabilities.window
        self._progress_supported = bool(window and window.work_done_progress)
        if params.process_id:
            self._spawn(watch_parent(params.process_id, self.die))

    def on_initialized(self: HotfixServer, params: types.InitializedParams) -> None:
        error = self.runtime.open_store()
        if error:
            self._tell(f"hotfix: feedback is not recorded: {error}", types.MessageType.Error)
        self._spawn(self._load())
        self._spawn(self._tick())

    def close(self: HotfixServer, params: None = None) -> None:
        """Stop everything and save the outcomes decided so far (``shutdown``, whose ``params`` are
        None, or the editor died)."""
        if self._closed:
            return
        self._closed = True
        if self._prefill_timer is not None:
            self._prefill_timer.cancel()
        self.scheduler.cancel_all()
        self.trainer.stop()
        self.continuous.stop()
        if self._watcher is not None:
            self._watcher.stop()
        for task in self._background:
            task.cancel()
        self.runtime.record(self.runtime.tracker.flush())
        self.runtime.close_store()
        if self.runtime.backend is not None:
            self.runtime.backend.engine.close()

    def die(self) -> None:
        self.close()
        logging.shutdown()
        os._exit(1)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)

    def _tell(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        log.warning("%s", message)
        self.window_show_message(translate.show_message(message, kind))

    def report_server_error(self, error: Exception, source: Any) -> None:
        # pygls would show every malformed message to the user; a client's bug is for the log.
        log.error("protocol error (%s): %s", getattr(source, "__name__", source), error)

    # Configuration ----------------------------------------------------------------------------

    def _configure(self, raw: Any) -> ServerConfig:
        """Apply client settings over the initialization options; bad values keep theirs, reported once."""
        config, problems = parse_config(raw, self._initial_config, self.runtime.config)
        if problems:
            self._tell("hotfix: ignored invalid settings: " + "; ".join(problems))
        self.runtime.configure(config)
        return config

    async def on_did_change_configuration(
        self: HotfixServer, params: types.DidChangeConfigurationParams
    ) -> None:
        settings = params.settings
        workspace = self.client_capabilities.workspace
        if settings is None and workspace is not None and workspace.configuration:
            items = [types.ConfigurationItem(section="hotfix")]
            settings = (await self.workspace_configuration_async(types.ConfigurationParams(items=items)))[0]
        before = self.runtime.config
        after = self._configure(settings)
        if (after.data_dir, after.record) != (before.data_dir, before.record):
            error = self.runtime.open_store()
            if error:
                self._tell(f"hotfix: feedback is not recorded: {error}", types.MessageType.Error)
        if (after.model, after.data_dir, after.runtime) != (before.model, before.data_dir, before.runtime):
            self._spawn(self._load())
        elif after.continuous_hotfixing != before.continuous_hotfixing:
            self._apply_continuous()

    def _apply_continuous(self) -> None:
        """Start or stop the background trainer to match ``continuousHotfixing``."""
        backend = self.runtime.backend
        if not self.runtime.config.continuous_hotfixing or backend is None:
            self.continuous.stop()
            return
        self.continuous.start(
            backend.engine.loaded.spec,
            self.runtime.data_dir,
            lambda: ServerProgress(self, "hotfix: training", self._progress_supported),
        )

    # Model ------------------------------------------------------------------------------------

    async def _load(self) -> None:
        """Load (or reload) the model in the background; requests meanwhile get empty answers."""
        self._loads += 1
        load = self._loads
        config = self.runtime.config
        progress = ServerProgress(self, "hotfix: loading the model", self._progress_supported)
        await progress.begin(config.model or DEFAULT_MODEL)
        loop = asyncio.get_running_loop()
        try:
            backend = await loop.run_in_executor(self._loader, load_backend, config, progress.report)
        except Exception as exc:  # a model that does not load must not take the server down
            if not isinstance(exc, HotfixError):
                log.exception("loading the model failed")
            self.runtime.model_error = str(exc)
            progress.end(f"failed: {exc}")
            self._tell(f"hotfix: the model could not be loaded: {exc}", types.MessageType.Error)
            return
        if load != self._loads or self._closed:  # a newer configuration asked for another model
            backend.engine.close()
            return
        previous, self.runtime.backend = self.runtime.backend, backend
        self.runtime.model_error = None
        if previous is not None:
            loop.run_in_executor(self._loader, previous.engine.close)
        self._watch_adapters(backend)
        self._apply_continuous()
        progress.end(f"ready: {backend.engine.loaded.spec} on {backend.device} ({backend.engine.runtime})")
        if self._prefill_waiting is not None:
            self._prefill(*self._prefill_waiting)
            self._prefill_waiting = None

    def _watch_adapters(self, backend: Backend) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        loop = asyncio.get_running_loop()

        def changed() -> None:  # on watchdog's thread
            loop.call_soon_threadsafe(lambda: self._spawn(self._sync_adapter()))

        try:
            self._watcher = AdapterWatcher(backend.registry.root, changed)
            self._watcher.start()
        except OSError as exc:
            log.error("adapters will not hot-swap: cannot watch %s: %s", backend.registry.root, exc)

    async def _sync_adapter(self) -> None:
        """Make the engine run the adapter the ``current`` pointer names, and tell the client."""
        backend = self.runtime.backend
        if backend is None:
            return
        async with self._adapter_lock:
            name: str | None = None
            try:
                name = backend.registry.current_name()
                current = backend.registry.current()
                version = current.version if current else None
                if version == backend.engine.adapter_version:
                    return
                await asyncio.wrap_future(
                    backend.engine.swap_adapter(current.path if current else None, version)
                )
            except HotfixError as exc:
                if name != self._refused_adapter:  # tell once, not at every file event
                    self._refused_adapter = name
                    self._tell(f"hotfix: keeping adapter {backend.engine.adapter_version or 'none'}: {exc}")
                return
            self._refused_adapter = None
        log.info("adapter now %s", version or "none (base model)")
        self.protocol.notify(translate.ADAPTER_CHANGED, {"version": version})

    # Documents and outcomes -------------------------------------------------------------------

    def on_did_open(self: HotfixServer, params: types.DidOpenTextDocumentParams) -> None:
        log.debug("opened %s (%d characters)", params.text_document.uri, len(params.text_document.text))
        # Where the user will type is unknown yet: the end of the file, where new code goes (and, for a
        # file within the prompt budget, every position's prompt starts the same way).
        self._schedule_prefill(params.text_document.uri, None, 0.0)

    def on_did_change(
        self: HotfixServer, params: types.DidChangeTextDocumentParams, edits: list[TextChange]
    ) -> None:
        """``edits``: the changes as HotfixProtocol applied them to our copy, in engine terms."""
        document = self._document(params.text_document.uri)
        if document is not None:
            self.runtime.record(self.runtime.tracker.changed(unquote(document.uri), edits))
            change = params.content_changes[-1] if params.content_changes else None
            if isinstance(change, types.TextDocumentContentChangePartial):
                # Only the last edit before a pause matters: its offset is found when the timer fires.
                edit = (change.range.start, len(change.text))
                self._schedule_prefill(document.uri, edit, PREFILL_PAUSE_S)

    def _schedule_prefill(self, uri: str, edit: tuple[types.Position, int] | None, delay_s: float) -> None:
        """Compute the prompt after ``edit`` (where it starts, what it inserted; None: the document's
        end) once typing has paused for ``delay_s``."""
        if self._prefill_timer is not None:
            self._prefill_timer.cancel()
        if self._loop is None:
            return
        self._prefill_timer = self._loop.call_later(delay_s, self._prefill, uri, edit)

    def _prefill(self, uri: str, edit: tuple[types.Position, int] | None) -> None:
        self._prefill_timer = None
        document = self._document(uri)
        backend = self.runtime.backend
        if backend is None:
            self._prefill_waiting = (uri, edit)
            return
        if document is None or self.scheduler.busy(unquote(uri)):
            return  # a request in flight computes the same prompt itself
        source = document.source
        offset: int | None = len(source)
        if edit is not None:
            start = translate.offset_at(document, edit[0])
            offset = None if start is None else min(start + edit[1], len(source))
        if offset is not None:
            backend.engine.prefill(self._request(document, offset))

    def _request(self, document: Any, offset: int) -> CompletionRequest:
        """The engine's request at ``offset``, with the other open documents of its language as context
        when the model reads them (repository tokens); for other models they are not gathered at all."""
        backend = self.runtime.backend
        fim = backend.engine.loaded.fim if backend is not None else None
        others = (
            translate.context_files(document, self.workspace.text_documents.values())
            if fim is not None and fim.file_sep is not None
            else ()
        )
        return translate.completion_request(
            document.source,
            offset,
            translate.language_of(document),
            self.runtime.config.completion,
            translate.path_of(document.uri),
            others,
        )

    def on_did_close(self: HotfixServer, params: types.DidCloseTextDocumentParams) -> None:
        self.runtime.record(self.runtime.tracker.closed(unquote(params.text_document.uri)))

    async def _tick(self) -> None:
        """Apply outcome timeouts until the server closes. A failure is logged, one outcome at a time:
        one bad outcome once stopped this loop, and nothing expired or was decided until shutdown."""
        while True:
            await asyncio.sleep(TICK_S)
            try:
                outcomes = self.runtime.tracker.tick()
            except Exception:
                log.exception("applying outcome timeouts failed")
                continue
            for outcome in outcomes:
                try:
                    self.runtime.record([outcome])
                except Exception:
                    log.exception("recording the outcome of %s failed", outcome.suggestion_id)

    def _workspace_of(self, uri: str) -> str:
        """The workspace folder holding ``uri`` (the deepest one), else ""; suppressions' scope."""
        inside = [f for f in self._workspace_folders() if uri.startswith(f + "/")]
        return max(inside, key=len) if inside else ""

    def _workspace_folders(self) -> list[str]:
        folders = {unquote(f.uri).rstrip("/") for f in self.workspace.folders.values()}
        if self.workspace.root_uri:
            folders.add(unquote(self.workspace.root_uri).rstrip("/"))
        return sorted(folders)

    def _document(self, uri: str) -> Any:
        """An open document, or None: unknown documents are never read from disk.

        pygls keys documents by their unquoted URI; clients may quote the same path differently.
        """
        return self.workspace.text_documents.get(unquote(uri))

    # Completion -------------------------------------------------------------------------------

    async def on_inline_completion(
        self: HotfixServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        explicit = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        suggestion_id, text = await self._suggest(params.text_document.uri, params.position, explicit)
        return translate.inline_items(suggestion_id, text, params.position)

    async def on_completion(self: HotfixServer, params: types.CompletionParams) -> types.CompletionList:
        explicit = (
            params.context is not None and params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        )
        suggestion_id, text = await self._suggest(params.text_document.uri, params.position, explicit)
        markdown = translate.supports_markdown(self.client_capabilities)
        return translate.completion_items(suggestion_id, text, params.position, markdown)

    async def _suggest(self, uri: str, position: types.Position, explicit: bool) -> tuple[str | None, str]:
        """A suggestion id and text for the cursor, or ``(None, "")`` when there is nothing to show."""
        document = self._document(uri)
        backend = self.runtime.backend
        if document is None or backend is None:
            log.debug("no suggestion: %s", "unknown document" if document is None else "model not ready")
            return None, ""
        offset = translate.offset_at(document, position)
        if offset is None:
            log.warning(
                "no suggestion: %s:%d:%d is outside the document", uri, position.line, position.character
            )
            return None, ""
        config = self.runtime.config.completion
        version = document.version
        key = unquote(uri)
        ticket = self.scheduler.begin(key)
        try:
            if not await ticket.settle(0 if explicit else config.debounce_ms / 1000):
                return None, ""
            if document.version != version:  # edited during the debounce: the position is stale
                self.runtime.stats.empty += 1
                return None, ""
            request = self._request(document, offset)
            request = dataclasses.replace(request, steer=self.runtime.steer(self._workspace_of(key), request))
            future = backend.engine.submit(request, ticket.cancel)
            try:
                completion = await asyncio.wrap_future(future)
            except asyncio.CancelledError:  # $/cancelRequest: pygls cancelled this handler
                ticket.cancel.set()
                future.add_done_callback(functools.partial(self._count_cancelled, ticket.cancel))
                raise
        except Cancelled:  # a newer request for the same document
            self.runtime.stats.cancelled_after(ticket.cancel)
            return None, ""
        except HotfixError as exc:
            self.runtime.stats.failed += 1
            log.error("no suggestion: %s", exc)
            return None, ""
        except Exception:  # the engine failed; the server keeps serving
            self.runtime.stats.failed += 1
            log.exception("generation failed")
            return None, ""
        finally:
            self.scheduler.end(key, ticket)
        if completion is None or document.version != version or ticket.superseded:
            self.runtime.stats.empty += 1
            return None, ""
        self.runtime.stats.completed += 1
        suggestion_id = uuid.uuid4().hex[:16]
        self.runtime.shown(suggestion_id, uri, request, completion, self._workspace_of(key))
        self.runtime.record(
            self.runtime.tracker.shown(suggestion_id, key, document.source, offset, completion.text)
        )
        return suggestion_id, completion.text

    def _count_cancelled(self, token: CancelToken, future: Future[Any]) -> None:
        """Called on the inference thread when a generation cancelled by the client has ended."""
        if future.cancelled() or isinstance(future.exception(), Cancelled):
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self.runtime.stats.cancelled_after, token)

    # Commands and status ----------------------------------------------------------------------

    def on_accept(self: HotfixServer, suggestion_id: SuggestionId) -> dict[str, Any]:
        outcomes = self.runtime.tracker.accept(suggestion_id)
        self.runtime.record(outcomes)
        return {"accepted": any(o.kind == "accepted" for o in outcomes)}

    def on_reject(self: HotfixServer, suggestion_id: SuggestionId) -> dict[str, Any]:
        outcomes = self.runtime.tracker.reject(suggestion_id)
        self.runtime.record(outcomes)
        return {"rejected": any(o.kind == "rejected" for o in outcomes)}

    def on_train(self: HotfixServer) -> dict[str, Any]:
        if self.continuous.active:
            return {"message": self.continuous.request(), "running": True}
        backend = self.runtime.backend
        model = backend.engine.loaded.spec if backend else self.runtime.config.model or DEFAULT_MODEL
        progress = ServerProgress(self, "hotfix: training", self._progress_supported)
        message = self.trainer.start(
            model, self.runtime.data_dir, progress, lambda text: self._tell(f"hotfix: {text}")
        )
        return {"message": message, "running": self.trainer.running}

    async def on_rollback(self: HotfixServer, *args: Any) -> dict[str, Any]:
        # Checked here: pygls's typed arguments have no optional ones (an empty list fails the count).
        if len(args) > 1 or (args and args[0] is not None and not isinstance(args[0], str)):
            raise JsonRpcInvalidParams(translate.usage(translate.ROLLBACK))
        backend = self.runtime.backend
        if backend is None:
            raise JsonRpcInvalidRequest("the model is still loading; try again in a moment")
        try:
            target = backend.registry.rollback(args[0] if args else None)
        except HotfixError as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        await self._sync_adapter()
        return {"version": target.version if target else None}

    def on_suppressions(self: HotfixServer, *args: Any) -> dict[str, Any]:
        """``hotfix.suppressions [list | remove ID... | clear]`` for this client's workspaces.

        Checked here: pygls's typed arguments have no optional ones, and pass ``*args`` unconverted.
        """
        action = args[0] if args else "list"
        if action not in ("list", "remove", "clear") or not all(isinstance(a, str) for a in args):
            raise JsonRpcInvalidParams(translate.usage(translate.SUPPRESSIONS))
        suppressions = self.runtime.suppressions
        if suppressions is None:
            raise JsonRpcInvalidRequest(
                f"the store is not open: {self.runtime.store_error or 'still starting'}"
            )
        folders = self._workspace_folders()
        scope = None if self.runtime.config.suppressions == "everywhere" or not folders else folders
        try:
            if action == "remove":
                return {"removed": suppressions.remove(list(args[1:]))}
            if action == "clear":
                return {
                    "removed": sum(suppressions.clear(f) for f in scope) if scope else suppressions.clear()
                }
            items = (
                suppressions.items() if scope is None else [i for f in scope for i in suppressions.items(f)]
            )
        except HotfixError as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        return {"suppressions": [item.to_json() for item in items]}

    def on_status(self: HotfixServer, params: Any = None) -> dict[str, Any]:
        return self.runtime.status(self.trainer.running)


def create_server(defaults: ServerConfig | None = None) -> HotfixServer:
    """A server with its handlers registered.

    pygls hands the server to a handler whose first parameter is annotated with the server's class,
    so the handlers are :class:`HotfixServer`'s methods with ``self`` annotated. They are registered
    from the class, not bound to the instance: pygls marks each handler with attributes, which a
    bound method cannot take (pygls has no registration of methods: openlawlibrary/pygls#263).
    """
    server = HotfixServer(defaults)
    features: list[tuple[str, Callable[..., Any], Any]] = [
        (types.INITIALIZE, HotfixServer.on_initialize, None),
        (types.INITIALIZED, HotfixServer.on_initialized, None),
        (types.SHUTDOWN, HotfixServer.close, None),
        (types.TEXT_DOCUMENT_DID_OPEN, HotfixServer.on_did_open, None),
        (types.TEXT_DOCUMENT_DID_CHANGE, HotfixServer.on_did_change, None),
        (types.TEXT_DOCUMENT_DID_CLOSE, HotfixServer.on_did_close, None),
        (types.WORKSPACE_DID_CHANGE_CONFIGURATION, HotfixServer.on_did_change_configuration, None),
        (
            types.TEXT_DOCUMENT_INLINE_COMPLETION,
            HotfixServer.on_inline_completion,
            types.InlineCompletionOptions(),
        ),
        (
            types.TEXT_DOCUMENT_COMPLETION,
            HotfixServer.on_completion,
            types.CompletionOptions(resolve_provider=False),
        ),
        (translate.STATUS, HotfixServer.on_status, None),
    ]
    for method, handler, options in features:
        server.feature(method, options)(handler)
    commands: dict[str, Callable[..., Any]] = {
        translate.ACCEPT: HotfixServer.on_accept,
        translate.REJECT: HotfixServer.on_reject,
        translate.TRAIN: HotfixServer.on_train,
        translate.ROLLBACK: HotfixServer.on_rollback,
        translate.SUPPRESSIONS: HotfixServer.on_suppressions,
    }
    for name, command in commands.items():
        server.command(name)(command)
    return server


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())
