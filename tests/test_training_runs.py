"""Training runs, started one way and followed one way.

Every starter (the server's ``hotfix.train``, its continuous mode, the daemon) goes through
``hotfix_engine.background``; every follower (``hotfix.train``'s bar, continuous mode's bars) through
``hotfix_server.run_progress``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hotfix_engine import background
from hotfix_engine.processes import low_priority_command
from hotfix_engine.trainer_status import write_status
from hotfix_server.run_progress import RunProgress


class Started:
    """Stands in for subprocess.Popen: records what would have run."""

    calls: list[tuple[list[str], dict[str, Any]]] = []

    def __init__(self, argv: list[str], **kwargs: Any) -> None:
        Started.calls.append((list(argv), kwargs))
        self.pid = 4242


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, Any]]]:
    Started.calls = []
    monkeypatch.setattr(subprocess, "Popen", Started)
    return Started.calls


def test_a_training_run_is_hotfix_train_at_low_priority_with_its_own_log(
    started: list[tuple[list[str], dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(background.TRAIN_ARGS_ENV, "--epochs 5 --lr 0.01")
    process, log_file = background.start_training_run(tmp_path, "some-model", extra_args=["--epochs", "2"])
    [(argv, kwargs)] = started
    assert log_file.parent == tmp_path / "logs" and log_file.name.startswith("train-") and log_file.is_file()
    command = [sys.executable, "-m", "hotfix_engine", "train", "--data-dir", str(tmp_path)]
    command += ["--model", "some-model", "--log-file", str(log_file), "--from-store", "--epochs", "2"]
    command += ["--epochs", "5", "--lr", "0.01"]  # the environment's options come last: they win
    assert argv == low_priority_command(command)
    assert kwargs["stdin"] == subprocess.DEVNULL and kwargs["start_new_session"] is False
    assert (
        kwargs["stdout"] is kwargs["stderr"] and log_file.stat().st_mode & 0o777 == 0o600
    )  # output: its log

    background.start_training_run(tmp_path, None, detached=True)  # the command's default model
    argv, kwargs = started[-1]
    assert "--model" not in argv and kwargs["start_new_session"] is True


def test_the_daemon_is_started_for_its_folder_and_parent(
    started: list[tuple[list[str], dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(background.TRAIN_ARGS_ENV, "--epochs 5")  # for its runs, which read it themselves
    process, log_file = background.start_daemon(tmp_path, "some-model", parent_pid=77)
    [(argv, kwargs)] = started
    command = [sys.executable, "-m", "hotfix_engine", "daemon", "--data-dir", str(tmp_path)]
    command += ["--model", "some-model", "--log-file", str(log_file), "--parent-pid", "77"]
    assert argv == low_priority_command(command) and log_file == tmp_path / "logs" / "daemon.log"
    assert kwargs["start_new_session"] is True


# --- the relay ------------------------------------------------------------------------------------


class Bars:
    """Stands in for the client: every bar's begin, reports and end, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def new(self) -> Any:
        bars = self

        class Bar:
            async def begin(self, message: str | None = None) -> None:
                bars.events.append(("begin", message))

            def report(self, message: str | None, fraction: float | None = None) -> None:
                bars.events.append(("report", message, fraction))

            def end(self, message: str | None = None) -> None:
                bars.events.append(("end", message))

        return Bar()

    def take(self) -> list[tuple[Any, ...]]:
        events, self.events = self.events, []
        return events


def run_started(home: Path, started: float, **fields: Any) -> None:
    """A run writes its first status, as ``training_run.train_and_publish`` does."""
    write_status(home, started=started, pid=os.getpid(), **fields)


async def test_each_run_found_is_one_bar_from_its_first_status_to_its_last(tmp_path: Path) -> None:
    run_started(tmp_path, 1.0, state="idle", message="an old run")
    bars = Bars()
    relay = RunProgress(tmp_path, bars.new)
    await relay.look()
    assert bars.take() == []  # a run that ended before we followed is old news

    run_started(tmp_path, 2.0, state="evaluating", progress=0.0, message="measuring the current version")
    await relay.look()
    write_status(tmp_path, state="training", progress=0.5, message="step 5/10, loss 1.000")
    await relay.look()
    await relay.look()  # the same status again: the bar itself drops repeats (ServerProgress)
    write_status(tmp_path, state="idle", progress=None, message="v0001 is current", pid=None)
    await relay.look()
    await relay.look()
    assert bars.take() == [
        ("begin", "background run"),
        ("report", "evaluating: measuring the current version", 0.0),
        ("report", "training: step 5/10, loss 1.000", 0.5),
        ("report", "training: step 5/10, loss 1.000", 0.5),
        ("end", "v0001 is current"),
    ]

    # A run shorter than a poll is seen only once it has ended: it still gets its bar.
    run_started(tmp_path, 3.0, state="failed", message="out of memory")
    await relay.look()
    assert bars.take() == [("begin", "background run"), ("end", "out of memory")]

    # A run whose end was never seen is closed when the next one appears.
    run_started(tmp_path, 4.0, state="training", progress=0.1, message="step 1/10")
    await relay.look()
    run_started(tmp_path, 5.0, state="training", progress=0.2, message="step 2/10")
    await relay.look()
    assert bars.take() == [
        ("begin", "background run"),
        ("report", "training: step 1/10", 0.1),
        ("end", None),
        ("begin", "background run"),
        ("report", "training: step 2/10", 0.2),
    ]


async def test_a_run_we_start_has_its_bar_at_once_and_its_starter_closes_it(tmp_path: Path) -> None:
    run_started(tmp_path, 1.0, state="training", progress=0.9, message="an earlier run's last words")
    bars = Bars()
    relay = RunProgress(tmp_path, bars.new)
    await relay.expect("starting")
    await relay.look()  # the earlier run's status is not ours: nothing reported under our bar
    assert bars.take() == [("begin", "starting")]

    run_started(tmp_path, 2.0, state="training", progress=0.25, message="step 1/4")
    await relay.look()
    write_status(tmp_path, state="failed", progress=None, message="diverged", pid=None)
    status = await relay.look()
    assert status["state"] == "failed"
    assert bars.take() == [("report", "training: step 1/4", 0.25)]  # the starter knows how it ended
    relay.end("training failed: diverged (log: train.log)")
    relay.end("twice")
    assert bars.take() == [("end", "training failed: diverged (log: train.log)")]
