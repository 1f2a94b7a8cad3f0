"""``hotfix complete``: one completion at a position in a file, for scripts and quick checks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hotfix_engine.cli import add_runtime_option
from hotfix_engine.errors import DataError
from hotfix_engine.languages import language_of

ORDER = 20


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "complete",
        parents=[common],
        help="complete code at a position in a file",
        description="Complete the code at a 0-based LINE and COLumn of FILE with the model (and adapter).",
    )
    parser.add_argument("file", type=Path, help="the source file")
    parser.add_argument("--line", type=int, required=True, help="0-based line of the cursor")
    parser.add_argument("--col", type=int, required=True, help="0-based column of the cursor (characters)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--adapter",
        default="current",
        help="adapter: 'current' (the published one, if any), 'none', a version like v0003, or a folder",
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=64, help="longest suggestion in tokens (default 64)"
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda (transformers only)")
    add_runtime_option(parser)
    parser.set_defaults(func=run)


def split_at(text: str, line: int, col: int, path: Path) -> tuple[str, str]:
    """The text before and after a 0-based (line, column) position; a clear error when it is outside."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        raise DataError(
            f"{path}: line {line} is outside the file (it has {len(lines)} lines, counted from 0)"
        )
    if not 0 <= col <= len(lines[line]):
        raise DataError(f"{path}:{line}: column {col} is outside the line ({len(lines[line])} characters)")
    offset = sum(len(row) + 1 for row in lines[:line]) + col
    return text[:offset], text[offset:]


def run(args: argparse.Namespace) -> int:
    from hotfix_engine.adapter_choice import activate_adapter, resolve_adapter
    from hotfix_engine.completion import CompletionRequest
    from hotfix_engine.models import parse_spec
    from hotfix_engine.runtimes import load_engine

    try:
        text = args.file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{args.file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{args.file}: cannot read it as UTF-8 text ({exc})") from None
    prefix, suffix = split_at(text, args.line, args.col, args.file)
    request = CompletionRequest(
        prefix=prefix,
        suffix=suffix,
        language=language_of(args.file.name),
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
    )
    folder, _ = resolve_adapter(args.adapter, parse_spec(args.model).key, args.data_dir)
    engine = load_engine(args.model, args.runtime, adapter=folder, device=args.device)
    try:
        activate_adapter(engine, args.adapter, args.data_dir)
        result = engine.complete(request)
    finally:
        engine.close()
    if args.json:
        payload = {
            "text": result.text if result else "",
            "model": engine.loaded.spec,
            "adapter": engine.adapter_version,
            "runtime": engine.runtime,
            "stopReason": result.stop_reason if result else "filtered",
            "tokens": result.tokens if result else 0,
            "seconds": round(result.elapsed_s, 3) if result else 0.0,
        }
        sys.stdout.write(json.dumps(payload) + "\n")
    elif result is None:
        sys.stderr.write("hotfix: no suggestion worth showing at this position\n")
    else:
        sys.stdout.write(result.text + "\n")
    return 0
