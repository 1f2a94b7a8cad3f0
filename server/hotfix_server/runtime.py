"""What one server process holds besides the protocol: model, engine, store, patterns and tracker.

The model loads on a background thread; until it is ready ``backend`` is None and requests get an
empty answer. Recording (pattern checks, redaction, SQLite writes with a full fsync) runs on one
writer thread, in order, after the answer has gone: a suggestion never waits for its own record.
Suppressions are the exception: they are written at once, so the very next request sees them. A
failing part (store, pattern check) is logged and left out; it never takes completions down with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotfix_engine import __version__
from hotfix_engine.adapters import AdapterRegistry
from hotfix_engine.completion import Completion, CompletionRequest, EngineBase
from hotfix_engine.daemon import read_daemon_state
from hotfix_engine.errors import HotfixError
from hotfix_engine.gate import gate_summary
from hotfix_engine.known_bugs import load_catalogue
from hotfix_engine.models import DEFAULT_MODEL
from hotfix_engine.outcomes import OutcomeTracker
from hotfix_engine.paths import data_dir as resolve_data_dir
from hotfix_engine.patterns import Catalogue, PatternMatch
from hotfix_engine.steering import Steer
from hotfix_engine.stopping import CancelToken
from hotfix_engine.store import Store
from hotfix_engine.store_records import OutcomeRecord, SuggestionRecord
from hotfix_engine.suppressions import SUPPRESSING_REASONS, Suppressions, fixed_completion, site_of
from hotfix_engine.trainer_status import read_status
from hotfix_server.config import ServerConfig

log = logging.getLogger(__name__)

# Suggestions remembered (in memory) until their outcome is known, so a rejection can be suppressed.
RECENT_SUGGESTIONS = 256


@dataclass
class GenerationStats:
    """Counters behind ``hotfix/status``'s ``generations``: how requests ended."""

    completed: int = 0  # a suggestion was returned
    empty: int = 0  # the model's text was filtered out, or the document changed meanwhile
    cancelled: int = 0  # stopped by $/cancelRequest or a newer request for the same document
    cancelled_while_running: int = 0  # of those, the ones that had started running the model
    stopped_within_one_step: int = 0  # running ones that ran at most one step after the cancel
    max_steps_after_cancel: int = 0
    failed: int = 0  # the engine raised

    def cancelled_after(self, token: CancelToken) -> None:
        """Count a generation that ended with :class:`Cancelled`; ``token`` was its cancel flag."""
        self.cancelled += 1
        if token.step == 0:
            return  # still queued, or waiting for the model to be free: nothing to stop
        steps = token.steps_after_cancel
        self.cancelled_while_running += 1
        self.stopped_within_one_step += steps <= 1
        self.max_steps_after_cancel = max(self.max_steps_after_cancel, steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "empty": self.empty,
            "cancelled": self.cancelled,
            "cancelledWhileRunning": self.cancelled_while_running,
            "stoppedWithinOneStep": self.stopped_within_one_step,
            "maxStepsAfterCancel": self.max_steps_after_cancel,
            "failed": self.failed,
        }


@dataclass
class Backend:
    """A loaded model ready to serve, with what depends on its key."""

    engine: EngineBase
    registry: AdapterRegistry
    catalogue: Catalogue | None

    @property
    def device(self) -> str:
        return str(self.engine.loaded.device)


def load_backend(config: ServerConfig, progress: Callable[[str], None]) -> Backend:
    """Load the model, its current adapter and the pattern catalogue (slow: a background thread)."""
    from hotfix_engine.models import parse_spec
    from hotfix_engine.runtimes import load_engine

    data = resolve_data_dir(config.data_dir)
    registry = AdapterRegistry(data, parse_spec(config.model).key)
    try:
        current = registry.current()
    except HotfixError as exc:
        log.warning("running the base model: %s", exc)
        current = None
    engine = load_engine(
        config.model, config.runtime, adapter=current.path if current else None, progress=progress
    )
    try:
        if current is not None:
            progress(f"activating adapter {current.version}")
            engine.swap_adapter(current.path, current.version).result()
    except HotfixError as exc:
        log.warning("running the base model: %s", exc)
    progress("loading the known bug patterns")
    try:
        catalogue: Catalogue | None = load_catalogue(data)
    except (HotfixError, OSError) as exc:
        log.warning("pattern matching is off: %s", exc)
        catalogue = None
    return Backend(engine, registry, catalogue)


class Runtime:
    """The state behind the handlers."""

    def __init__(self) -> None:
        self.config = ServerConfig()
        self.backend: Backend | None = None
        self.model_error: str | None = None
        self.store: Store | None = None
        self.store_error: str | None = None
        self.suppressions: Suppressions | None = None
        # suggestion id -> (workspace, prefix, text): what a rejection suppresses, and where.
        self._recent: OrderedDict[str, tuple[str, str, str]] = OrderedDict()
        self.tracker = OutcomeTracker()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="hotfix-store")
        self._catalogue_lock = threading.Lock()  # checks on the writer, learning from edits too
        self.stats = GenerationStats()
        self.last_completion: dict[str, Any] | None = None  # timings of the last suggestion, for diagnosis

    @property
    def data_dir(self) -> Path:
        return resolve_data_dir(self.config.data_dir)

    def configure(self, config: ServerConfig) -> None:
        self.config = config
        self.tracker.expiry_s = config.outcomes.expiry_s
        self.tracker.edit_window_s = config.outcomes.edit_window_s

    def open_store(self) -> str | None:
        """(Re)open the store for the configured folder and record mode; the error line on failure."""
        self.close_store()
        try:
            # The team's shared store when $HOTFIX_STORE names one (a URL stays out of the settings:
            # they are synced and shown; its password, if any, is never logged).
            self.store = Store.open(self.data_dir, record=self.config.record)
            self.suppressions = Suppressions(self.store)
            self.store_error = None
            log.info("recording feedback (%s) in %s", self.config.record, self.store.location)
        except HotfixError as exc:
            self.store_error = str(exc)
            log.error("feedback is not recorded: %s", exc)
        return self.store_error

    def flush_writes(self) -> None:
        """Wait until everything handed to the writer thread is stored."""
        self._writer.submit(lambda: None).result()

    def close_store(self) -> None:
        self.flush_writes()
        self.suppressions = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def check(self, request: CompletionRequest, text: str) -> tuple[PatternMatch, ...]:
        catalogue = self.backend.catalogue if self.backend else None
        if catalogue is None:
            return ()
        try:
            with self._catalogue_lock:
                return tuple(catalogue.check(request.prefix, text))
        except Exception:
            log.exception("pattern check failed; the suggestion is kept without matches")
            return ()

    def steer(self, workspace: str, request: CompletionRequest) -> Steer:
        """What the user rejected (and fixed) at this request's site: online hotfixing, no training."""
        scope = self.config.suppressions
        if self.suppressions is None or scope == "off":
            return Steer()
        adapter = self.backend.engine.adapter_version if self.backend else None
        try:
            return self.suppressions.steer(
                workspace if scope == "workspace" else None, request.prefix, request.suffix, adapter
            )
        except HotfixError as exc:
            log.error("suppressions are not applied: %s", exc)
            return Steer()

    def shown(
        self,
        suggestion_id: str,
        uri: str,
        request: CompletionRequest,
        completion: Completion,
        workspace: str = "",
    ) -> None:
        """Record a suggestion that is being returned to the client, with the patterns it matches."""
        self._recent[suggestion_id] = (workspace, request.prefix, completion.text)
        while len(self._recent) > RECENT_SUGGESTIONS:
            self._recent.popitem(last=False)
        self.last_completion = {
            "id": suggestion_id,
            "elapsedMs": round(completion.elapsed_s * 1000, 1),
            "tokens": completion.tokens,
            "promptTokens": completion.prompt_tokens,
            "cachedTokens": completion.cached_tokens,
            "stopReason": completion.stop_reason,
        }
        store = self.store
        if store is None:
            return
        created = time.time()

        def write() -> None:
            record = SuggestionRecord(
                id=suggestion_id,
                created=created,
                language=request.language,
                uri=uri,
                prefix=request.prefix,
                suffix=request.suffix,
                text=completion.text,
                model=completion.model,
                adapter=completion.adapter,
                matches=self.check(request, completion.text),
            )
            try:
                store.record_suggestion(record)
            except HotfixError as exc:
                log.error("could not record a suggestion: %s", exc)

        self._writer.submit(_logged, write)

    def record(self, outcomes: Iterable[OutcomeRecord]) -> None:
        """Store outcomes; the pair an edit yields also teaches the pattern matcher at once."""
        for outcome in outcomes:
            log.info("suggestion %s: %s (%s)", outcome.suggestion_id, outcome.kind, outcome.reason)
            if self.store is None:
                continue
            self._writer.submit(_logged, self._store_outcome, self.store, outcome)
            self._suppress(outcome)

    def _store_outcome(self, store: Store, outcome: OutcomeRecord) -> None:
        """On the writer thread: store an outcome; the pair an edit yields teaches the catalogue."""
        try:
            pair = store.record_outcome(outcome)
        except HotfixError as exc:
            log.error("could not record an outcome: %s", exc)
            return
        catalogue = self.backend.catalogue if self.backend else None
        if pair is not None and catalogue is not None:
            with self._catalogue_lock:
                catalogue.add_pair(pair, source="edit")
            log.info("learnt an edit pair from suggestion %s", outcome.suggestion_id)
            log.debug("the pair: %r -> %r", pair.buggy.strip(), pair.fixed.strip())

    def _suppress(self, outcome: OutcomeRecord) -> None:
        """A rejection (or the user's fix) applies from the next request on, before any training."""
        verdict = outcome.kind == "edited" or (
            outcome.kind == "rejected" and outcome.reason in SUPPRESSING_REASONS
        )
        shown = self._recent.pop(outcome.suggestion_id, None) if verdict else None
        if shown is None or self.suppressions is None:
            return
        workspace, prefix, text = shown
        fix = None
        if outcome.kind == "edited" and outcome.final_text is not None:
            fix = fixed_completion(site_of(prefix).line_prefix, outcome.final_text, text)
        try:
            self.suppressions.add(
                workspace, prefix, text, fix=fix, suggestion_id=outcome.suggestion_id, reason=outcome.reason
            )
        except HotfixError as exc:
            log.error("could not suppress a rejected suggestion: %s", exc)

    def _adapter_gate(self) -> dict[str, Any] | None:
        """What the serving adapter was checked on (the gate's evidence), from its manifest."""
        backend = self.backend
        version = backend.engine.adapter_version if backend else None
        if backend is None or version is None:
            return None
        try:
            return gate_summary(backend.registry.get(version).manifest)
        except HotfixError as exc:
            log.warning("cannot read the adapter's manifest: %s", exc)
            return None

    def status(self, trainer_running: bool) -> dict[str, Any]:
        """The content of ``hotfix/status`` (the same as ``hotfix status --json``)."""
        backend = self.backend
        store_counts = None
        if self.store is not None:
            try:
                store_counts = self.store.counts()
            except HotfixError as exc:
                log.error("could not count the store: %s", exc)
        return {
            "model": backend.engine.loaded.spec if backend else self.config.model or DEFAULT_MODEL,
            "modelKey": backend.engine.model_key if backend else None,
            "modelReady": backend is not None,
            "modelError": self.model_error,
            # A remote backend (openai: specs) that is loaded but not answering: why (remote_engine.py).
            "backendError": getattr(backend.engine, "remote_error", None) if backend else None,
            "device": backend.device if backend else None,
            "runtime": backend.engine.runtime if backend else None,
            "adapter": backend.engine.adapter_version if backend else None,
            "adapterGate": self._adapter_gate(),
            "record": self.config.record,
            "dataDir": str(self.data_dir),
            "store": store_counts,
            "storeError": self.store_error,
            "trainer": read_status(self.data_dir),
            "daemon": read_daemon_state(self.data_dir),
            "trainerRunning": trainer_running,
            "continuousHotfixing": self.config.continuous_hotfixing,
            "generations": self.stats.as_dict(),
            "lastCompletion": self.last_completion,
            "version": __version__,
        }


def _logged(work: Callable[..., None], *args: Any) -> None:
    """Run a write on the writer thread; a failure is logged, never lost in a future nobody reads."""
    try:
        work(*args)
    except Exception:
        log.exception("recording failed")
