"""Child processes: whether one is still alive (the editor, a trainer, a daemon's parent), and
starting a background one (daemon, trainer) at low priority with its output in a log file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from hotfix_engine.paths import open_private

NICENESS = 10  # background training yields the CPU to completions

# Lowers its own priority, then becomes the command (exec: same pid, so the caller's Popen polls and
# signals the command itself). A failed os.nice (some sandboxes forbid it) still runs the command;
# a command that cannot start exits 1 with one line in the log, as a failed run would.
_NICE_THEN_EXEC = """\
import os, sys
try:
    os.nice(int(sys.argv[1]))
except OSError:
    pass
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    sys.exit(f"cannot start {sys.argv[2]}: {exc.strerror or exc}")
"""


def low_priority_command(command: Sequence[str]) -> list[str]:
    """``command`` run at NICENESS, through a small Python program that lowers its own priority.

    Not ``preexec_fn=os.nice``: it runs Python between fork and exec, which can deadlock the child
    of a multi-threaded parent such as the server (the subprocess docs warn against it). Not
    ``nice -n``: not every system has it on PATH, and Python is always at hand. Not
    ``os.setpriority`` on the child's pid after the spawn: that races the child, and on Linux it
    lowers only the main thread, not threads started before it. ``-I -S``: the program needs only
    ``os``; the command still gets the environment unchanged.
    """
    if os.name != "posix":
        return list(command)
    return [sys.executable, "-I", "-S", "-c", _NICE_THEN_EXEC, str(NICENESS), *command]


def spawn_low_priority(
    command: Sequence[str], log_file: Path, *, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``command`` niced, stdout and stderr appended to ``log_file``, no stdin.

    ``new_session`` keeps an editor's Ctrl-C (sent to its process group) away from the child.
    """
    with open_private(log_file, "ab") as output:
        return subprocess.Popen(
            low_priority_command(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=new_session,
        )


def process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate the process on Windows
        import ctypes

        synchronize, wait_timeout = 0x00100000, 0x102
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(synchronize, False, pid)
        if not handle:
            return False
        try:
            return bool(kernel32.WaitForSingleObject(handle, 0) == wait_timeout)
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True
