"""Bubblewrap (``bwrap``): the operating-system sandbox that generated code runs in where it can.

An audit hook inside the child is Python code that the program can reach and undo, so the real
boundary is the kernel's: bwrap starts the child in fresh namespaces (no network, its own process
tree that dies with it, no capabilities) on an empty root where only the system libraries and the
interpreter's own prefix are mounted, read-only. The user's home and the hotfix data folder are
never mounted; the only writable place is a size-capped tmpfs scratch folder.

Whether bwrap works is found out once per process by starting the real sandbox on a trivial
program. Where it does not (not installed, user namespaces refused), :func:`sandbox` returns None
after one warning that says how to fix it, and the caller falls back to the audit hook alone.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hotfix_engine.paths import data_dir

log = logging.getLogger(__name__)

BWRAP = "bwrap"
"""The bubblewrap command (a name on PATH or a path); tests point it at a missing file."""

INPUTS = "/run/hotfix"
"""Where the folder holding the prelude and the program appears inside, read-only."""

SCRATCH = "/scratch"
"""The child's working folder, home and TMPDIR inside: a tmpfs, the only writable place."""

# Top-level folders that hold the system's libraries; each is mirrored (a symlink stays a symlink).
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

_HOW_TO_FIX = (
    "install bubblewrap (Debian and Ubuntu: apt install bubblewrap) and allow unprivileged user "
    "namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 and later, an AppArmor "
    "profile that lets bwrap create them)"
)


@dataclass(frozen=True)
class Bubblewrap:
    """A bwrap that started a sandbox on this machine: its fixed options and the interpreter inside."""

    options: tuple[str, ...]
    python: str
    sized: bool
    """Whether this bwrap can cap a tmpfs's size (``--size``, bubblewrap 0.7 and later)."""

    def command(self, inputs: Path, args: Sequence[str], scratch_mb: int) -> list[str]:
        """The command that runs ``python *args`` inside, with ``inputs`` mounted at :data:`INPUTS`."""
        size = ["--size", str(scratch_mb * 2**20)] if self.sized else []
        return [
            *self.options,
            *size,
            "--tmpfs",
            SCRATCH,
            "--ro-bind",
            str(inputs),
            INPUTS,
            # Last, once every mount point exists: bwrap's own root stays read-only too.
            "--remount-ro",
            "/",
            "--chdir",
            SCRATCH,
            "--",
            self.python,
            *args,
        ]


def _options(bwrap: str, python: str) -> tuple[str, ...] | str:
    """bwrap's fixed options, or why the interpreter cannot be mounted without exposing private files."""
    options = [
        bwrap,
        "--unshare-all",  # network, processes, IPC, hostname; user and cgroup where allowed
        "--unshare-net",
        "--unshare-pid",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        # No /proc: Python does not need it, and some containers refuse to mount one.
        "--dev",
        "/dev",
        "--remount-ro",
        "/dev",
    ]
    mounted: list[str] = []
    for top in _SYSTEM:
        if os.path.islink(top):
            options += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            options += ["--ro-bind", top, top]
            mounted.append(top)
    # The interpreter's prefix holds the stdlib and the libraries it links; it alone, not the venv:
    # generated programs and their tests use the stdlib only.
    for path in (os.path.realpath(sys.base_prefix), python):
        if not any(_within(path, top) for top in mounted):
            options += ["--ro-bind", path, path]
            mounted.append(path)
    private = [os.path.realpath(os.path.expanduser("~")), os.path.realpath(data_dir())]
    for path in mounted:
        for secret in private:
            if _within(secret, path):
                return f"{path}, which the sandbox would mount, holds the private {secret}"
    options += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return tuple(options)


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _probe(bwrap: str) -> Bubblewrap | str:
    """Start the real sandbox once on a trivial program; the setup that worked, or why none did."""
    if not sys.platform.startswith("linux"):
        return "bubblewrap isolates programs only on Linux"
    found = shutil.which(bwrap)
    if found is None:
        return f"bubblewrap ({bwrap}) is not installed"
    python = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    options = _options(found, python)
    if isinstance(options, str):
        return options
    try:
        usage = subprocess.run([found, "--help"], capture_output=True, text=True, timeout=30).stdout
        setup = Bubblewrap(options, python, "--size" in usage)
        with tempfile.TemporaryDirectory(prefix="hotfix-sandbox-probe-") as folder:
            done = subprocess.run(
                setup.command(Path(folder), ["-I", "-B", "-S", "-c", "import os; os.listdir('.')"], 64),
                env={"PATH": "/usr/bin:/bin", "HOME": SCRATCH, "LANG": "C.UTF-8"},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
            )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{found} did not run: {exc}"
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"{found} cannot start a sandbox here ({detail})"
    return setup


_lock = threading.Lock()
_probed: dict[str, Bubblewrap | str] = {}


def probe() -> Bubblewrap | str:
    """The working setup for :data:`BWRAP`, or why there is none; probed once, warned about once."""
    with _lock:
        if BWRAP not in _probed:
            _probed[BWRAP] = found = _probe(BWRAP)
            if isinstance(found, str):
                log.warning(
                    "sandbox: %s, so generated code runs guarded only by an audit hook, which a "
                    "determined program can undo; to isolate it, %s",
                    found,
                    _HOW_TO_FIX,
                )
        return _probed[BWRAP]


def sandbox() -> Bubblewrap | None:
    """The working bubblewrap setup, or None where the caller must fall back to the audit hook."""
    found = probe()
    return None if isinstance(found, str) else found
