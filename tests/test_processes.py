"""Background children start at low priority without ``preexec_fn``, which can deadlock a child
forked from a multi-threaded server (the server has an inference thread, pygls's pool, watchers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hotfix_engine.processes import NICENESS, process_alive, spawn_low_priority

pytestmark = pytest.mark.skipif(os.name != "posix", reason="niceness is a POSIX notion")

REPORT = "import json, os, sys; print(json.dumps({'nice': os.nice(0), 'pid': os.getpid(), 'sid': os.getsid(0), 'argv': sys.argv[1:], 'env': os.environ.get('HOTFIX_PROBE')}))"


def run_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: bool) -> tuple[dict, dict, int]:
    """Spawn the reporting child; returns its report, the Popen keyword arguments and its pid."""
    seen: dict = {}
    real = subprocess.Popen

    def spy(*args: object, **kw: object) -> subprocess.Popen[bytes]:
        seen.update(kw)
        return real(*args, **kw)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "Popen", spy)
    monkeypatch.setenv("HOTFIX_PROBE", "kept")
    log_file = tmp_path / "child.log"
    child = spawn_low_priority([sys.executable, "-c", REPORT, "a b", "--flag"], log_file, **kwargs)
    assert child.wait(timeout=30) == 0
    return json.loads(log_file.read_text().splitlines()[-1]), seen, child.pid


def test_child_runs_at_the_lowered_niceness_without_preexec_fn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, kwargs, pid = run_child(tmp_path, monkeypatch)
    assert kwargs.get("preexec_fn") is None
    assert report["nice"] == min(19, os.nice(0) + NICENESS)
    # The Popen's pid is the command's own process (the daemon signals and polls it), with its
    # arguments and environment intact.
    assert report["pid"] == pid
    assert report["argv"] == ["a b", "--flag"]
    assert report["env"] == "kept"
    assert report["sid"] == os.getsid(0)


def test_new_session_child_is_niced_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report, kwargs, pid = run_child(tmp_path, monkeypatch, new_session=True)
    assert kwargs.get("preexec_fn") is None
    assert report["nice"] == min(19, os.nice(0) + NICENESS)
    assert report["sid"] == pid  # the editor's Ctrl-C, sent to its group, does not reach it


def test_spawning_from_many_threads_at_once(tmp_path: Path) -> None:
    """What the server does: spawn while other threads run (and hold locks) in the parent."""
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            json.dumps({"x": list(range(100))})  # takes and releases locks in the parent

    workers = [threading.Thread(target=busy) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        children = [
            spawn_low_priority([sys.executable, "-c", "import os; print(os.nice(0))"], tmp_path / f"{i}.log")
            for i in range(8)
        ]
        assert [child.wait(timeout=60) for child in children] == [0] * 8
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    expected = str(min(19, os.nice(0) + NICENESS))
    assert all((tmp_path / f"{i}.log").read_text().strip() == expected for i in range(8))


def test_a_missing_command_fails_in_the_child_and_says_so(tmp_path: Path) -> None:
    log_file = tmp_path / "missing.log"
    child = spawn_low_priority([str(tmp_path / "no-such-program")], log_file)
    assert child.wait(timeout=30) != 0
    assert "no-such-program" in log_file.read_text()
    assert not process_alive(child.pid)
