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
    show = actions.add_parser(
        "show", parents=[common], help="a version: what it was trained on and the evidence the gate weighed"
    )
    show.add_argument("version", help="e.g. v0003")
    show.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
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


def show_lines(version, current: bool) -> list[str]:
    """A version for people: what it learnt from, and the gate's evidence line by line."""
    manifest = version.manifest
    data = manifest.get("data", {})
    gate = manifest.get("gate", {})
    state = "current" if current else ("published" if version.published else "rejected by the gate")
    lines = [
        f"{version.version}: {manifest.get('method', '?')} adapter of {manifest.get('model', '?')}, {state}",
        f"  trained on {data.get('n_pairs', 0)} pairs and {data.get('n_unlearn_only', 0)} rejected suggestions"
        f" (parent {manifest.get('parent') or 'the base model'})",
        f"  gate: {'accepted' if gate.get('accepted') else 'rejected'} - {gate.get('reason', 'not recorded')}"
        + (" (published with --force)" if gate.get("forced") and not gate.get("accepted") else ""),
    ]
    lines += [f"    {line}" for line in gate.get("evidence", [])]
    if "seconds" in gate:
        lines.append(
            f"  the gate took {gate['seconds']:.0f} s of the run's {manifest.get('time_s', {}).get('total', 0):.0f} s"
        )
    lines.append(f"  folder: {version.path}")
    return lines


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
        is_current = registry.current_name() == version.version
        if args.json:
            data = {"path": str(version.path), "current": is_current, **version.manifest}
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        else:
            sys.stdout.write("\n".join(show_lines(version, is_current)) + "\n")
    else:
        now = registry.rollback(args.version)
        sys.stdout.write(f"current: {now.version if now else 'none (base model)'}\n")
    return 0
