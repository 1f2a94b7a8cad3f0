"""The engine's commands of ``hotfix``, and the machinery every command shares.

Each sub-command lives in its own module in this package and exposes ``register(subparsers, common)``,
which adds its parser and sets ``func`` to a function ``(args) -> int``. Modules are found
automatically, import nothing heavy at the top (torch is imported by the command that needs it), and
report problems by raising :class:`~hotfix_engine.errors.HotfixError`: ``main`` prints its message as
one line and exits 1, never with a traceback for bad input.

The engine never imports the server, so ``serve`` and ``demo`` are not here: they are the server
package's commands (``hotfix_server.cli``), and the installed ``hotfix`` script is
``hotfix_server.cli:main``, which adds them to these. ``python -m hotfix_engine`` runs the engine's
commands alone; that is how the server and the daemon start training runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import signal
import sys
from collections.abc import Sequence
from types import ModuleType

from hotfix_engine import __version__
from hotfix_engine.errors import HotfixError
from hotfix_engine.paths import PRIVATE_UMASK

log = logging.getLogger("hotfix")


def common_options() -> argparse.ArgumentParser:
    """Options every command takes, so they work before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--model",
        default=argparse.SUPPRESS,
        help="model spec: embedded:gemma3-270m (default), embedded:smollm2-135m, org/name, a folder or a .gguf file",
    )
    common.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        help="data folder (default: $HOTFIX_HOME, else $XDG_DATA_HOME/hotfix)",
    )
    common.add_argument(
        "--store",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="the team's shared feedback store, postgresql://USER@HOST/DB (default: $HOTFIX_STORE, else the "
        "data folder's own); the password comes from PGPASSWORD or ~/.pgpass",
    )
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
    common.add_argument("--log-file", default=argparse.SUPPRESS, help="also write the log to this file")
    return common


def add_runtime_option(parser: argparse.ArgumentParser) -> None:
    """``--runtime`` for the commands that run the model."""
    parser.add_argument(
        "--runtime",
        choices=("auto", "llama.cpp", "transformers"),
        default="auto",
        help="auto (default): llama.cpp for GGUF models such as the embedded ones, transformers for the rest",
    )


def engine_commands() -> list[ModuleType]:
    """This package's command modules."""
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]


def build_parser(commands: Sequence[ModuleType] | None = None) -> argparse.ArgumentParser:
    """The parser for ``commands`` (command modules; default: the engine's own)."""
    common = common_options()
    parser = argparse.ArgumentParser(
        prog="hotfix",
        description="A local code-completion language server whose model learns from the bugs you reject and fix.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"hotfix {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = engine_commands() if commands is None else commands
    for module in sorted(modules, key=lambda m: getattr(m, "ORDER", 100)):
        module.register(subparsers, common)
    return parser


def setup_logging(verbose: int, log_file: str | None) -> None:
    """Log to stderr (stdout is the LSP channel for ``serve``) and optionally to a file.

    Every record is redacted on its way out (log_redaction), and the file is its owner's only: at
    -vv it holds the protocol's traffic, documents included.
    """
    from hotfix_engine.log_redaction import install
    from hotfix_engine.paths import private_file

    level = logging.WARNING - 10 * min(verbose, 2) if verbose else logging.INFO
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(private_file(log_file), encoding="utf-8"))
    logging.basicConfig(
        level=level, handlers=handlers, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    install()
    # Third-party chatter is rarely what a user wants at -v.
    for noisy in ("urllib3", "filelock", "watchdog", "asyncio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # pygls logs every message at INFO: only -vv wants that.
    logging.getLogger("pygls").setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None, commands: Sequence[ModuleType] | None = None) -> int:
    """Run one command line; ``commands`` as for :func:`build_parser`."""
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    for name, default in (
        ("model", None),
        ("data_dir", None),
        ("store", None),
        ("verbose", 0),
        ("log_file", None),
    ):
        if not hasattr(args, name):
            setattr(args, name, default)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    # Private by default: whatever this process and its children create (the data folder, logs,
    # exports, adapters, locks) is its owner's only, whatever the user's umask (paths.py).
    umask = os.umask(PRIVATE_UMASK)
    # The store is chosen once for the command and whatever it starts (the daemon's training runs):
    # every Store.open reads $HOTFIX_STORE.
    store = os.environ.get("HOTFIX_STORE")
    if args.store is not None:
        os.environ["HOTFIX_STORE"] = args.store
    try:
        return _run(args)
    finally:
        os.umask(umask)
        if store is None:
            os.environ.pop("HOTFIX_STORE", None)
        else:
            os.environ["HOTFIX_STORE"] = store


def _run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.log_file)
    # A polite stop (the daemon ending a run, a service manager) unwinds like Ctrl-C, so every
    # `finally` runs: a trainer removes its staging folder, a store closes its connection.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return int(args.func(args) or 0)
    except HotfixError as exc:
        sys.stderr.write(f"hotfix: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("hotfix: interrupted\n")
        return 130
