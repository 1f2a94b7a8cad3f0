"""The sandbox: bad programs end as failed samples, never as a hang or damage to the caller."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from hotfix_engine.evaluation import bubblewrap
from hotfix_engine.evaluation.sandbox import RunResult, SandboxLimits, isolation, run_many, run_python

FAST = SandboxLimits(timeout_s=2.0, memory_mb=256)

# What a hostile program does first: empty the audit hook's lists and let every path through. The
# hook lives in the program's own interpreter (the prelude is ``__main__``), so this always works.
UNHOOK = (
    "import __main__\n"
    "__main__._BLOCKED.clear()\n"
    "__main__._PATH_EVENTS.clear()\n"
    "__main__._inside = lambda path: True\n"
)


@pytest.fixture
def isolated() -> None:
    """Skip where bubblewrap cannot run: these programs escape the audit hook alone by design."""
    found = bubblewrap.probe()
    if isinstance(found, str):
        pytest.skip(f"no operating-system sandbox here: {found}")


def test_passing_and_failing_programs():
    assert run_python("assert sum([1, 2]) == 3\nprint('ok')\n", FAST).passed
    failed = run_python("def f():\n    return 1\nassert f() == 2\n", FAST)
    assert failed.status == "failed" and "AssertionError" in failed.output
    assert run_python("def f(:\n", FAST).status == "failed"
    assert run_python("exit(0)\n", FAST).passed
    assert run_python("quit(3)\n", FAST).returncode == 3


def test_infinite_loop_times_out():
    result = run_python("while True:\n    pass\n", SandboxLimits(timeout_s=1.0, memory_mb=256))
    assert result.status == "timeout"
    assert result.elapsed_s < 10


def test_unbounded_allocation_hits_the_memory_limit():
    result = run_python("chunks = []\nwhile True:\n    chunks.append(bytearray(50_000_000))\n", FAST)
    assert result.status == "memory"


def test_sockets_are_refused():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}))\ns.sendall(b'leak')\n"
    result = run_python(code, FAST)
    # A connection, had one been made, would wait in the backlog.
    listener.settimeout(0.2)
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()
    assert result.status == "blocked" and "socket" in result.output


def test_writes_outside_the_scratch_folder_are_refused(tmp_path: Path):
    target = tmp_path / "outside.txt"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    result = run_python(f"open({str(target)!r}, 'w').write('x')\n", FAST)
    assert result.status == "blocked" and not target.exists()
    result = run_python(f"import os\nos.remove({str(victim)!r})\n", FAST)
    assert result.status == "blocked" and victim.read_text() == "keep me"
    result = run_python(f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n", FAST)
    assert result.status == "blocked" and victim.exists()
    # Inside the scratch folder a program may write and read back what it wrote.
    inside = run_python("open('notes.txt', 'w').write('x')\nassert open('notes.txt').read() == 'x'\n", FAST)
    assert inside.passed, inside.output


def test_processes_are_refused():
    result = run_python("import subprocess\nsubprocess.run(['true'])\n", FAST)
    assert result.status == "blocked"
    assert run_python("import os\nos.system('true')\n", FAST).status == "blocked"


def test_endless_output_is_bounded():
    result = run_python(
        "while True:\n    print('x' * 1000)\n", SandboxLimits(timeout_s=2.0, memory_mb=256, file_mb=1)
    )
    assert result.status in ("failed", "timeout")
    assert len(result.output) <= 2000


def test_run_many_keeps_order():
    results = run_many(["assert True\n", "assert False\n", "raise SystemExit(0)\n"], FAST, workers=2)
    assert [r.status for r in results] == ["passed", "failed", "passed"]


def test_limits_and_statuses_are_validated():
    with pytest.raises(ValueError, match="limits"):
        SandboxLimits(timeout_s=0)
    with pytest.raises(ValueError, match="valid"):
        RunResult("exploded", 1, "", 0.0)


def test_a_program_that_undoes_the_hook_still_has_no_network(isolated):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    code = UNHOOK + f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
    result = run_python(code + "s.sendall(b'leak')\n", FAST)
    listener.settimeout(0.2)
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()
    assert result.status == "failed", result.output


def test_dir_fd_does_not_reach_folders_outside(isolated, tmp_path: Path):
    # The hook sees only the relative name, which looks as if it were inside the scratch folder.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me")
    code = (
        "import os\n"
        f"folder = os.open({str(outside)!r}, os.O_RDONLY | os.O_DIRECTORY)\n"
        "os.write(os.open('planted.txt', os.O_WRONLY | os.O_CREAT, dir_fd=folder), b'x')\n"
        "os.unlink('victim.txt', dir_fd=folder)\n"
    )
    result = run_python(code, FAST)
    assert not result.passed
    assert sorted(os.listdir(outside)) == ["victim.txt"]
    assert (outside / "victim.txt").read_text() == "keep me"


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def test_no_process_outlives_the_run(isolated, tmp_path: Path):
    # subprocess with start_new_session calls _posixsubprocess.fork_exec with setsid: the new session
    # leaves the process group that the parent kills.
    late = tmp_path / "late.txt"
    marker = f"hotfix-survivor-{uuid.uuid4().hex}"
    script = "import sys, time; time.sleep(1.5); open(sys.argv[1], 'w').write('escaped')"
    code = UNHOOK + (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {script!r}, {str(late)!r}, {marker!r}], "
        "start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    )
    result = run_python(code, FAST)
    assert result.passed, result.output
    survivors = _processes_with(marker)
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    assert survivors == []
    time.sleep(2.5)  # past the survivor's sleep: had it lived, it would have written by now
    assert not late.exists()


def test_private_files_cannot_be_read(isolated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("SECRET-KEY")
    (tmp_path / "notes.txt").write_text("SECRET-NOTES")
    monkeypatch.setenv("HOME", str(home))
    paths = [str(home / ".ssh" / "id_ed25519"), str(tmp_path / "notes.txt"), "/etc/shadow", "/etc/passwd"]
    # The program names what it could read, never the content: a failure must not leak it to a log.
    code = (
        "import sys\nread = []\n"
        f"for path in {paths!r}:\n"
        "    try:\n        open(path).read()\n        read.append(path)\n    except OSError:\n        pass\n"
        "print(read)\nsys.exit(1 if read else 0)\n"
    )
    result = run_python(code, FAST)
    assert result.passed, result.output


def test_only_the_scratch_folder_is_writable(isolated, tmp_path: Path):
    name = f"hotfix-sandbox-planted-{uuid.uuid4().hex}"
    targets = [f"/{name}", f"/usr/{name}", f"/dev/{name}", f"/proc/{name}", f"/run/hotfix/{name}"]
    targets.append(str(tmp_path / name))
    code = UNHOOK + (
        "import sys\nwritten = []\n"
        f"for path in {targets!r}:\n"
        "    try:\n        open(path, 'w').write('x')\n        written.append(path)\n"
        "    except OSError:\n        pass\n"
        "open('mine.txt', 'w').write('x')\n"
        "print(written)\nsys.exit(1 if written else 0)\n"
    )
    result = run_python(code, FAST)
    for path in targets:  # a broken sandbox must not leave files on the machine running the tests
        with contextlib.suppress(OSError):
            os.remove(path)
    assert result.passed, result.output
    assert isolation() == "bubblewrap"


def test_a_signal_reads_the_same_with_either_isolation():
    # bwrap reports a killed child as 128 + N, as a shell does; the sandbox maps it back to -N.
    result = run_python(UNHOOK + "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", FAST)
    assert result.returncode == -9 and result.status == "memory"


def test_without_bubblewrap_the_hook_guards_and_one_warning_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setattr(bubblewrap, "BWRAP", str(tmp_path / "missing" / "bwrap"))
    with caplog.at_level(logging.WARNING, logger=bubblewrap.__name__):
        assert isolation() == "audit-hook"
        blocked = run_python("import socket\nsocket.socket()\n", FAST)
        passed = run_python("print('ok')\n", FAST)
        assert isolation() == "audit-hook"
    warnings = [r.getMessage() for r in caplog.records if r.name == bubblewrap.__name__]
    assert len(warnings) == 1
    assert "not installed" in warnings[0] and "apt install bubblewrap" in warnings[0]
    assert "user namespaces" in warnings[0]
    assert blocked.status == "blocked"
    assert passed.passed and "ok" in passed.output


def test_a_bwrap_that_cannot_create_namespaces_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    refusing = tmp_path / "bwrap"
    refusing.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    refusing.chmod(0o755)
    monkeypatch.setattr(bubblewrap, "BWRAP", str(refusing))
    with caplog.at_level(logging.WARNING, logger=bubblewrap.__name__):
        assert isolation() == "audit-hook"
        assert run_python("print('ok')\n", FAST).passed
    (warning,) = [r.getMessage() for r in caplog.records if r.name == bubblewrap.__name__]
    assert "No permissions to create new namespace" in warning and "user namespaces" in warning
