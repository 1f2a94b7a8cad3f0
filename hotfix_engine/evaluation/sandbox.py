"""Running generated code: in a child process, with limits, never in the calling process.

Generated code is untrusted: it loops, allocates without bound, deletes files or opens sockets, by
accident or on purpose, and evaluation runs it unattended on the user's machine. Where bubblewrap
works (:mod:`.bubblewrap`), each program runs in its own namespaces: no network, a read-only system
with neither the user's home nor the data folder in it, a tmpfs scratch folder as the only writable
place, and a process tree that ends with the run. Elsewhere it runs in a plain child, after one
warning, and only the guard below stands; :func:`isolation` says which one a run had.

Both ways, before the program starts, the child caps its address space, CPU time and file sizes
(``resource.setrlimit``), works in its scratch folder, and installs an audit hook (PEP 578) that
refuses sockets, new processes, native code loading and any write outside the scratch folder. The
parent kills the child's process group at the wall-clock limit. The hook is a guard against
accidents only: it lives in the program's own interpreter, where a determined program can undo it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from hotfix_engine.evaluation import bubblewrap

STATUSES = ("passed", "failed", "timeout", "memory", "blocked")

# The child's prelude. It reads the program from the file named in argv, so that the program's own
# text never passes through a format string.
_PRELUDE = r"""
import os, resource, signal, sys

def _limit(kind, value):
    try:
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):
        pass

_memory, _cpu, _fsize = (int(v) for v in sys.argv[2:5])
_limit(resource.RLIMIT_AS, _memory)
_limit(resource.RLIMIT_CPU, _cpu)
_limit(resource.RLIMIT_FSIZE, _fsize)
_limit(resource.RLIMIT_CORE, 0)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
if sys.flags.no_site:
    # Started with -S (stdlib only, no .pth files run): programs still expect exit() and quit().
    import site
    site.setquit()

_scratch = os.path.realpath(os.getcwd())
_program = sys.argv[1]
with open(_program, encoding="utf-8") as _handle:
    _source = _handle.read()

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink", "os.link",
    "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile", "os.removexattr",
    "os.setxattr",
}
_BLOCKED = {
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.startfile", "os.kill", "os.killpg", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
    "pty.spawn", "webbrowser.open", "urllib.Request", "http.client.connect", "ftplib.connect",
    "smtplib.connect", "os.chdir", "os.chroot",
}
_ALLOWED_FILES = {"/dev/null"}

def _inside(path):
    if isinstance(path, int):
        return True
    path = os.fsdecode(path)
    full = os.path.normpath(os.path.join(_scratch, path))
    if full in _ALLOWED_FILES:
        return True
    return full == _scratch or full.startswith(_scratch + os.sep)

def _hook(event, args):
    if event in _BLOCKED:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        if writing and not _inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the scratch folder is not allowed")
    elif event in _PATH_EVENTS:
        for value in args:
            if isinstance(value, (str, bytes, os.PathLike)) and not _inside(value):
                raise PermissionError(f"sandbox: {event} on {value!r} is not allowed")

_code = compile(_source, "<generated>", "exec")
sys.addaudithook(_hook)
del _handle, _source, _program
sys.argv = ["<generated>"]
_globals = {"__name__": "__main__", "__builtins__": __builtins__}
exec(_code, _globals)
"""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one run: wall-clock seconds, address space, and the size of any file or output."""

    timeout_s: float = 5.0
    memory_mb: int = 1024
    file_mb: int = 8

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.memory_mb < 64 or self.file_mb < 1:
            raise ValueError(f"sandbox limits out of range: {self}")


DEFAULT_LIMITS = SandboxLimits()


@dataclass(frozen=True)
class RunResult:
    """How one program ended; ``output`` is the tail of its stderr (then stdout) for diagnosis."""

    status: str
    returncode: int | None
    output: str
    elapsed_s: float

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; valid: {', '.join(STATUSES)}")

    @property
    def passed(self) -> bool:
        return self.status == "passed"


_TAIL = 2000


def isolation() -> str:
    """Which isolation generated code runs under here, for reports: "bubblewrap" or "audit-hook"."""
    return "audit-hook" if bubblewrap.sandbox() is None else "bubblewrap"


def run_python(code: str, limits: SandboxLimits = DEFAULT_LIMITS) -> RunResult:
    """Run ``code`` as a program in a sandboxed child; exit status 0 is "passed"."""
    started = time.perf_counter()
    wrap = bubblewrap.sandbox()
    with tempfile.TemporaryDirectory(prefix="hotfix-sandbox-") as folder:
        inputs = Path(folder) / "inputs"
        inputs.mkdir()
        (inputs / "program.py").write_text(code, encoding="utf-8")
        (inputs / "prelude.py").write_text(_PRELUDE, encoding="utf-8")
        out_path, err_path = Path(folder) / "stdout", Path(folder) / "stderr"
        cpu = int(limits.timeout_s) + 2
        numbers = [str(limits.memory_mb * 2**20), str(cpu), str(limits.file_mb * 2**20)]
        if wrap is None:
            scratch = Path(folder) / "work"
            scratch.mkdir()
            home = cwd = str(scratch)
            args = [sys.executable, "-I", "-B", str(inputs / "prelude.py"), str(inputs / "program.py")]
            args += numbers
        else:
            home, cwd = bubblewrap.SCRATCH, folder
            inside = [f"{bubblewrap.INPUTS}/prelude.py", f"{bubblewrap.INPUTS}/program.py", *numbers]
            # -S: the stdlib alone, without the prefix's site-packages or the .pth files they run.
            args = wrap.command(inputs, ["-I", "-B", "-S", *inside], limits.memory_mb)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "TMPDIR": home,
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
        }
        with out_path.open("wb") as out, err_path.open("wb") as err:
            # Output goes to files, not pipes, so that RLIMIT_FSIZE bounds a program that prints forever.
            child = subprocess.Popen(
                args,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            try:
                returncode: int | None = child.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                _kill_group(child)
        output = _tail(err_path) + _tail(out_path)
    if wrap is not None and returncode is not None and 128 < returncode <= 128 + 64:
        # bwrap reports a child killed by signal N as 128 + N, as a shell does (a program's own
        # exit(128 + N) reads the same; either way it did not pass).
        returncode = 128 - returncode
    elapsed = time.perf_counter() - started
    return RunResult(_status(returncode, output), returncode, output[-_TAIL:], elapsed)


def _kill_group(child: subprocess.Popen) -> None:
    """Kill the child and anything it left behind in its session (under bwrap: its whole namespace)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - _TAIL))
        return handle.read().decode("utf-8", errors="replace")


def _status(returncode: int | None, output: str) -> str:
    if returncode is None or returncode == -signal.SIGXCPU:
        return "timeout"
    if returncode == 0:
        return "passed"
    if "MemoryError" in output or returncode == -signal.SIGKILL:
        return "memory"
    if "PermissionError: sandbox:" in output:
        return "blocked"
    return "failed"


def run_many(
    programs: Sequence[str],
    limits: SandboxLimits = DEFAULT_LIMITS,
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[RunResult]:
    """Run programs in parallel children (threads only wait on them); results in input order."""
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    results: list[RunResult | None] = [None] * len(programs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_python, code, limits): index for index, code in enumerate(programs)}
        for done, future in enumerate(as_completed(futures), start=1):
            results[futures[future]] = future.result()
            if progress is not None:
                progress(done, len(programs))
    return results  # type: ignore[return-value]
