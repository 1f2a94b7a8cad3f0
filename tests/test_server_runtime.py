"""The server's runtime: a failing part is logged and left out, never fatal to completions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hotfix_engine.completion import Completion, CompletionRequest
from hotfix_engine.errors import StoreError
from hotfix_engine.stopping import CancelToken
from hotfix_engine.store_records import OutcomeRecord
from hotfix_server.config import ServerConfig
from hotfix_server.runtime import Backend, GenerationStats, Runtime


class BrokenCatalogue:
    def check(self, prefix: str, text: str) -> list:
        raise RuntimeError("a bug in a pattern rule")


class BrokenStore:
    def record_suggestion(self, record: object) -> bool:
        raise StoreError("disk full")

    def record_outcome(self, outcome: object) -> None:
        raise StoreError("disk full")

    def counts(self) -> dict:
        raise StoreError("disk full")


def completion(text: str = "return x") -> Completion:
    return Completion(text, "tiny", None, 3, "statement", 0.01, 0, 5)


def test_failing_patterns_and_store_are_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime()
    runtime.configure(ServerConfig(data_dir=str(tmp_path)))
    runtime.backend = Backend(engine=None, registry=None, catalogue=BrokenCatalogue())  # type: ignore[arg-type]
    runtime.store = BrokenStore()  # type: ignore[assignment]
    request = CompletionRequest(prefix="def f(x):\n    ")
    with caplog.at_level(logging.ERROR):
        assert runtime.check(request, "return x") == ()
        runtime.shown("s1", "file:///a.py", request, completion())
        runtime.record([OutcomeRecord("s1", "rejected", "dismissed")])
        runtime.flush_writes()  # recording runs on the writer thread, after the answer
    assert "pattern check failed" in caplog.text and "disk full" in caplog.text
    runtime.backend = None
    assert runtime.status(trainer_running=False)["store"] is None


def test_store_round_trip_and_status(tmp_path: Path) -> None:
    runtime = Runtime()
    runtime.configure(ServerConfig(data_dir=str(tmp_path), record="all"))
    assert runtime.open_store() is None
    request = CompletionRequest(prefix="def f(x):\n    ")
    runtime.shown("s1", "file:///a.py", request, completion())
    runtime.record([OutcomeRecord("s1", "accepted", "command")])
    runtime.flush_writes()
    status = runtime.status(trainer_running=False)
    assert status["store"]["suggestions"] == 1 and status["store"]["accepted"] == 1
    assert status["modelReady"] is False and status["model"] == "embedded:gemma3-270m"
    assert status["trainer"]["state"] == "idle" and status["dataDir"] == str(tmp_path)
    runtime.close_store()


def test_an_edit_teaches_the_catalogue_the_pair_the_store_returned(tmp_path: Path) -> None:
    """The pair comes back from ``record_outcome``; the store is not read again to find it."""
    stored = object()
    learnt: list[tuple[object, str]] = []

    class PairStore:  # nothing to read back: a reread would fail, and nothing would be learnt
        def record_outcome(self, outcome: object) -> object:
            return stored

    class Catalogue:
        def add_pair(self, pair: object, source: str) -> None:
            learnt.append((pair, source))

    runtime = Runtime()
    runtime.configure(ServerConfig(data_dir=str(tmp_path)))
    runtime.backend = Backend(engine=None, registry=None, catalogue=Catalogue())  # type: ignore[arg-type]
    runtime.store = PairStore()  # type: ignore[assignment]
    runtime.record([OutcomeRecord("s1", "edited", "edited", "    return x * 2")])
    runtime.flush_writes()
    assert learnt == [(stored, "edit")]


def test_store_that_cannot_open_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    runtime = Runtime()
    runtime.configure(ServerConfig(data_dir=str(blocker)))
    error = runtime.open_store()
    assert error and runtime.store is None and runtime.status(False)["storeError"] == error


def test_generation_stats_separate_queued_from_running() -> None:
    stats = GenerationStats()
    queued = CancelToken()
    queued.set()
    stats.cancelled_after(queued)
    running = CancelToken()
    running.step = 5
    running.set()
    running.step = 6
    stats.cancelled_after(running)
    late = CancelToken()
    late.step = 1
    late.set()
    late.step = 4
    stats.cancelled_after(late)
    assert stats.as_dict() == {
        "completed": 0,
        "empty": 0,
        "cancelled": 3,
        "cancelledWhileRunning": 2,
        "stoppedWithinOneStep": 1,
        "maxStepsAfterCancel": 3,
        "failed": 0,
    }
