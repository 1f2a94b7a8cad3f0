"""Child processes: whether one is still alive (the editor, a trainer, a daemon's parent), and
starting a background one (daemon, trainer) at low priority with its output in a log file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

NICENESS = 10  # background training yields the CPU to completions


def spawn_low_priority(
    command: Sequence[str], log_file: Path, *, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``command`` niced, stdout and stderr appended to ``log_file``, no stdin.

    ``new_session`` keeps an editor's Ctrl-C (sent to its process group) away from the child.
    """
    with open(log_file, "ab") as output:
        return subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            preexec_fn=(lambda: os.nice(NICENESS)) if os.name == "posix" else None,
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
