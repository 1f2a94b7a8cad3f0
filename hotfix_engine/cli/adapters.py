"""`hotfix adapters list | show V | rollback [V]`: the adapter versions and the current pointer."""

from __future__ import annotations

import argparse
import json
import sys
import time

ORDER = 50


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "adapters",
        parents=[common],
        help="list, inspect and roll back adapter versions",
        description="Adapter versions of the model (--model) and which one the server uses.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="all versions, newest last, with the gate's decision")
    show = actions.add_parser("show", parents=[common], help="a version's manifest as JSON")
    show.add_argument("version", help="e.g. v0003")
    back = actions.add_parser(
        "rollback", parents=[common], help="make the current version's parent (or VERSION, or none) current"
    )
    back.add_argument(
        "version", nargs="?", default=None, help="version to make current, or 'none' for the base"
    )
    p.set_defaults(func=run)


def _describe(version, current: str | None) -> str:
    manifest = version.manifest
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(manifest.get("created", 0)))
    state = "published" if version.published else "rejected"
    marker = "*" if version.version == current else " "
    reason = manifest.get("gate", {}).get("reason", "")
    return f"{marker} {version.version}  {created}  {manifest.get('method', '?'):6}  {state:9}  {reason}"


def run(args: argparse.Namespace) -> int:
    from hotfix_engine.adapters import AdapterRegistry
    from hotfix_engine.models import parse_spec
    from hotfix_engine.paths import data_dir

    registry = AdapterRegistry(data_dir(args.data_dir), parse_spec(args.model).key)
    if args.action == "list":
        versions = registry.versions()
        current = registry.current_name()
        if not versions:
            sys.stdout.write(f"no adapter versions in {registry.root}\n")
        for version in versions:
            sys.stdout.write(_describe(version, current) + "\n")
        sys.stdout.write(f"current: {current or 'none (base model)'}\n")
    elif args.action == "show":
        version = registry.get(args.version)
        data = {
            "path": str(version.path),
            "current": registry.current_name() == version.version,
            **version.manifest,
        }
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        now = registry.rollback(args.version)
        sys.stdout.write(f"current: {now.version if now else 'none (base model)'}\n")
    return 0
