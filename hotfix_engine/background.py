"""hotfix's own background processes, started one way: a training run and the continuous daemon.

The server's ``hotfix.train``, the server's continuous mode and the daemon all start these. Each is
``python -m hotfix_engine <command>`` at low priority (``processes.spawn_low_priority``: completions
come first), its output in a log file under ``logs/`` (stdout may be the LSP channel), and a training
run takes the extra options of ``HOTFIX_TRAIN_ARGS`` whoever starts it.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hotfix_engine.paths import logs_dir, private_dir
from hotfix_engine.processes import spawn_low_priority

log = logging.getLogger(__name__)

TRAIN_ARGS_ENV = "HOTFIX_TRAIN_ARGS"  # extra `hotfix train` options for every run, e.g. "--epochs 5"


def _log_file(data_dir: Path, name: str) -> Path:
    folder = logs_dir(data_dir)
    private_dir(folder)
    return folder / name


def _start(
    command: str, data_dir: Path, model: str | None, log_file: Path, options: Sequence[str], detached: bool
) -> subprocess.Popen[bytes]:
    """The options come last, so that a caller's (or HOTFIX_TRAIN_ARGS's) choice wins."""
    argv = [sys.executable, "-m", "hotfix_engine", command, "--data-dir", str(data_dir)]
    argv += ["--model", model] if model else []
    argv += ["--log-file", str(log_file), *options]
    log.info("starting: %s", shlex.join(argv))
    return spawn_low_priority(argv, log_file, new_session=detached)


def start_training_run(
    data_dir: Path, model: str | None, *, extra_args: Sequence[str] = (), detached: bool = False
) -> tuple[subprocess.Popen[bytes], Path]:
    """``hotfix train --from-store`` in its own process; returns it and its log file.

    ``model`` None: the command's default model. ``detached`` (a new session) keeps an editor's
    Ctrl-C away from a run that is writing a version.
    """
    log_file = _log_file(data_dir, f"train-{time.strftime('%Y%m%d-%H%M%S')}.log")
    options = ["--from-store", *extra_args, *shlex.split(os.environ.get(TRAIN_ARGS_ENV, ""))]
    return _start("train", data_dir, model, log_file, options, detached), log_file


def start_daemon(data_dir: Path, model: str, *, parent_pid: int) -> tuple[subprocess.Popen[bytes], Path]:
    """``hotfix daemon`` for ``data_dir``, ending with ``parent_pid``; returns it and its log file.

    Detached like a run: the daemon stops its own trainer cleanly when told to.
    """
    log_file = _log_file(data_dir, "daemon.log")
    options = ["--parent-pid", str(parent_pid)]
    return _start("daemon", data_dir, model, log_file, options, detached=True), log_file
