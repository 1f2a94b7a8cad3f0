"""``hotfix suppressions``: list, remove or clear the rejected statements the server no longer suggests.

A running server picks a change up on its next request; nothing needs restarting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from urllib.parse import unquote

from hotfix_engine.errors import ConfigError

ORDER = 45


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "suppressions",
        parents=[common],
        help="list, remove or clear suppressed suggestions",
        description=(
            "A suggestion you reject (or fix) is not suggested again at the same place, from the next request "
            "on and before any training. These commands show and undo that. Suppressions end by themselves "
            "once an adapter that learnt them is current."
        ),
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("list", parents=[common], help="show suppressions, newest first")
    show.add_argument("--workspace", metavar="DIR", help="only this workspace folder")
    show.add_argument("--json", action="store_true", help="print them as JSON")
    remove = actions.add_parser("remove", parents=[common], help="remove suppressions by id")
    remove.add_argument("ids", nargs="+", metavar="ID", help="ids (or unique starts) from `list`")
    clear = actions.add_parser("clear", parents=[common], help="remove every suppression")
    clear.add_argument("--workspace", metavar="DIR", help="only this workspace folder")
    clear.add_argument("--yes", action="store_true", help="do it (without this, say what would go)")
    p.set_defaults(func=run, action=None)


def _workspace(folder: str | None) -> str | None:
    """A folder as the server names workspaces: its file URI, without a trailing slash."""
    return None if folder is None else unquote(Path(folder).resolve().as_uri()).rstrip("/")


def run(args: argparse.Namespace) -> int:
    from hotfix_engine.paths import data_dir
    from hotfix_engine.store import Store
    from hotfix_engine.suppressions import Suppressions

    if args.action is None:
        args.action, args.workspace, args.json = "list", None, False
    with Store.open(data_dir(args.data_dir)) as store:
        suppressions = Suppressions(store)
        workspace = _workspace(getattr(args, "workspace", None))
        if args.action == "remove":
            removed = suppressions.remove(args.ids)
            if removed < len(args.ids):
                raise ConfigError(f"removed {removed} of {len(args.ids)}: an id matched none or several")
            sys.stdout.write(f"removed {removed}\n")
            return 0
        items = suppressions.items(workspace)
        if args.action == "clear":
            if not args.yes:
                sys.stdout.write(f"{len(items)} suppressions would be removed; add --yes to remove them\n")
                return 0
            sys.stdout.write(f"removed {suppressions.clear(workspace)}\n")
            return 0
    if args.json:
        sys.stdout.write(json.dumps([item.to_json() for item in items], indent=2) + "\n")
        return 0
    if not items:
        sys.stdout.write("no suppressions\n")
        return 0
    for item in items:
        data = item.to_json()
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(item.created))
        state = f"learnt by {item.learned_by}" if item.learned_by else item.reason
        fix = f"  ->  {item.fix.strip()!r}" if item.fix else ""
        sys.stdout.write(f"{item.id}  {when}  {state:<12} {data['statement']!r}{fix}\n")
        sys.stdout.write(f"    after {item.site.context!r} in {item.workspace or '(no workspace)'}\n")
    return 0
