"""``hotfix demo``: completions from the embedded model on a few sample files, in the terminal."""

from __future__ import annotations

import argparse
import sys

ORDER = 10

SAMPLES = [
    ("fibonacci.py", "def fibonacci(n):\n    "),
    ("files.py", "import os\n\n\ndef read_lines(path):\n    with open(path) as handle:\n        "),
    ("search.py", "def find(items, target):\n    for index, item in enumerate(items):\n        "),
    ("config.py", "def load_config(path, defaults=None):\n    if defaults is None:\n        "),
]


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="see hotfix complete code with the embedded model",
        description="Complete a few sample files with the model (and current adapter) and show the suggestions.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hotfix_engine.adapter_choice import activate_adapter
    from hotfix_engine.completion import CompletionEngine, CompletionRequest
    from hotfix_engine.models import load_model

    out = sys.stdout
    out.write("hotfix demo: loading the model (the first start converts it once, about a minute)\n")

    def progress(message: str) -> None:
        out.write(f"  {message}\n")

    loaded = load_model(args.model, progress=progress)
    engine = CompletionEngine(loaded)
    try:
        version = activate_adapter(engine, "current", args.data_dir)
        out.write(f"model {loaded.spec} on {loaded.device}, adapter {version or 'none'}\n\n")
        for name, prefix in SAMPLES:
            result = engine.complete(CompletionRequest(prefix=prefix))
            out.write(f"── {name} " + "─" * (60 - len(name)) + "\n")
            out.write(prefix)
            suggestion = result.text if result else ""
            out.write(f"\033[2m{suggestion}\033[0m\n" if out.isatty() else f"{suggestion}\n")
            if result:
                out.write(
                    f"   [{result.tokens} tokens, {result.elapsed_s:.1f} s, stop: {result.stop_reason}]\n\n"
                )
            else:
                out.write("   [no suggestion worth showing]\n\n")
    finally:
        engine.close()
    return 0
