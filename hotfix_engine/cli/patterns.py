"""`hotfix patterns`: the known bug patterns, and the matches in files with their fixes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hotfix_engine.errors import DataError

ORDER = 60


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "patterns",
        parents=[common],
        help="list the known bug patterns or scan files for them",
        description="The bug patterns hotfix checks every suggestion against: rule detectors (with a fix "
        "where one is deterministic) and known bug-fix pairs from files, mined history and your edits.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[common], help="list the rules and count the known pairs")
    listing.add_argument("--pairs", nargs="*", default=[], metavar="FILE", help="also count these pair files")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=run_list)
    scan = actions.add_parser(
        "scan",
        parents=[common],
        help="report rule matches in Python files, with fixes",
        description="Check Python files with the rule detectors. Prints FILE:LINE:COL: ID message, then the "
        "fixed line where a fix is known. Files with syntax errors are still checked line by line.",
    )
    scan.add_argument("files", nargs="+", metavar="FILE", help="Python files, or folders to scan for *.py")
    scan.add_argument("--json", action="store_true", help="print JSON Lines, one finding a line")
    scan.add_argument("--fail-on-findings", action="store_true", help="exit 1 when anything is found")
    scan.set_defaults(func=run_scan)


def run_list(args: argparse.Namespace) -> int:
    from hotfix_engine.known_bugs import load_catalogue
    from hotfix_engine.paths import data_dir

    catalogue = load_catalogue(data_dir(args.data_dir), [Path(f) for f in args.pairs])
    rules = catalogue.rules()
    counts = catalogue.counts()
    if args.json:
        out = {
            "rules": [{"id": r.id, "description": r.description, "fix": r.fixable} for r in rules],
            "pairs": counts["pairs"],
            "edits": counts["edits"],
        }
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return 0
    width = max(len(r.id) for r in rules)
    for r in rules:
        sys.stdout.write(f"{r.id:<{width}}  {'fix' if r.fixable else '   '}  {r.description}\n")
    sys.stdout.write(
        f"\n{len(rules)} rules; {counts['pairs']} known pairs from files and mining, {counts['edits']} from your edits\n"
    )
    return 0


def _expand(names: list[str]) -> list[Path]:
    """Files as given; folders become their ``*.py`` files, hidden folders and virtualenvs aside."""
    files: list[Path] = []
    for name in names:
        path = Path(name)
        if not path.is_dir():
            files.append(path)
            continue
        for found in sorted(path.rglob("*.py")):
            parts = found.relative_to(path).parts[:-1]
            if not any(
                part.startswith(".") or part in ("__pycache__", "node_modules", "venv") for part in parts
            ):
                files.append(found)
    return files


def run_scan(args: argparse.Namespace) -> int:
    from hotfix_engine.patterns import scan_source

    total = 0
    files = _expand(args.files)
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        if b"\0" in data:
            raise DataError(f"{path}: a binary file, not Python source")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        for finding in scan_source(text.replace("\r\n", "\n"), str(path)):
            total += 1
            if args.json:
                sys.stdout.write(json.dumps(finding.__dict__) + "\n")
                continue
            sys.stdout.write(
                f"{finding.path}:{finding.line}:{finding.col}: {finding.pattern_id} {finding.message}\n"
            )
            if finding.fix is not None:
                sys.stdout.write(f"    fix: {finding.fix.strip()}\n")
    if not args.json:
        sys.stderr.write(f"{total} finding{'s' if total != 1 else ''} in {len(files)} file(s)\n")
    return 1 if args.fail_on_findings and total else 0
