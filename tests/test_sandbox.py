"""The sandbox: bad programs end as failed samples, never as a hang or damage to the caller."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hotfix_engine.evaluation.sandbox import RunResult, SandboxLimits, run_many, run_python

FAST = SandboxLimits(timeout_s=2.0, memory_mb=256)


def test_passing_and_failing_programs():
    assert run_python("assert sum([1, 2]) == 3\nprint('ok')\n", FAST).passed
    failed = run_python("def f():\n    return 1\nassert f() == 2\n", FAST)
    assert failed.status == "failed" and "AssertionError" in failed.output
    assert run_python("def f(:\n", FAST).status == "failed"


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
