"""``hotfix demo``: the guided end-to-end loop in a terminal, through the real language server."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

ORDER = 10


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="watch the model learn from a rejected bug, in a few minutes",
        description=(
            "Start the language server, let the model suggest a known bug, fix and reject it as a user "
            "would, train a hotfix, hot-swap it and complete the same prompts again. Runs in its own "
            "folder (DATA_DIR/demo), emptied at the start, so your own store and adapters are untouched."
        ),
    )
    parser.add_argument("--keep", action="store_true", help="keep the demo folder from an earlier run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hotfix_engine.paths import data_dir
    from hotfix_server.cli.demo_story import run_demo

    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)  # the demo's own output tells the story
    folder = Path(data_dir(args.data_dir)) / "demo"
    return run_demo(args.model, folder, fresh=not args.keep)
