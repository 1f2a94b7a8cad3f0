"""``hotfix status``: the model, its runtime, the current adapter, the store and the trainer, at a glance.

The keys are those of the server's ``hotfix/status`` that do not need a running server, so scripts can
read either. Nothing is loaded: the runtime is the one ``--runtime`` would choose, and a store that
does not exist yet is reported as such, not created.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hotfix_engine.cli import add_runtime_option
from hotfix_engine.errors import HotfixError

ORDER = 55


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "status",
        parents=[common],
        help="model, runtime, adapter, store and trainer at a glance",
        description="What hotfix would serve and what it holds, without loading the model.",
    )
    p.add_argument("--json", action="store_true", help="print the status as JSON (hotfix/status's keys)")
    add_runtime_option(p)
    p.set_defaults(func=run)


def collect(model: str | None, data: str | None, runtime: str) -> dict[str, Any]:
    from hotfix_engine import __version__
    from hotfix_engine.adapters import AdapterRegistry
    from hotfix_engine.daemon import read_daemon_state
    from hotfix_engine.gate import gate_summary
    from hotfix_engine.models import DEFAULT_MODEL, parse_spec
    from hotfix_engine.paths import data_dir, store_path
    from hotfix_engine.runtimes import choose_runtime
    from hotfix_engine.store import Store
    from hotfix_engine.trainer_status import read_status

    spec = parse_spec(model)
    folder = data_dir(data)
    registry = AdapterRegistry(folder, spec.key)
    status: dict[str, Any] = {
        "model": model or DEFAULT_MODEL,
        "modelKey": spec.key,
        "runtime": None,
        "adapter": None,
        "adapterError": None,
        "adapterGate": None,
        "dataDir": str(folder),
        "store": None,
        "storeError": None,
        "trainer": read_status(folder),
        "daemon": read_daemon_state(folder),
        "version": __version__,
    }
    current = None
    try:
        current = registry.current()
        status["adapter"] = current.version if current else None
        status["adapterGate"] = gate_summary(current.manifest) if current else None
    except HotfixError as exc:
        status["adapterError"] = str(exc)
    status["runtime"] = choose_runtime(runtime, model, current.path if current else None)
    if store_path(folder).exists():
        try:
            store = Store.open(folder)
            try:
                status["store"] = store.counts()
            finally:
                store.close()
        except HotfixError as exc:
            status["storeError"] = str(exc)
    return status


def run(args: argparse.Namespace) -> int:
    status = collect(args.model, args.data_dir, args.runtime)
    if args.json:
        sys.stdout.write(json.dumps(status, indent=2, sort_keys=True) + "\n")
        return 0
    trainer = status["trainer"] or {}
    store = status["store"]
    lines = [
        f"model:    {status['model']} (adapters under {status['modelKey']})",
        f"runtime:  {status['runtime']}",
        f"adapter:  {status['adapter'] or 'none (base model)'}"
        + (f"  [{status['adapterError']}]" if status["adapterError"] else ""),
        *(f"          {line}" for line in (status["adapterGate"] or {}).get("evidence", [])),
        f"data:     {status['dataDir']}",
        "store:    "
        + (
            ", ".join(f"{value} {key}" for key, value in store.items())
            if store is not None
            else status["storeError"] or "empty (nothing recorded yet)"
        ),
        f"trainer:  {trainer.get('state', 'idle')}"
        + (f" ({trainer['message']})" if trainer.get("message") else "")
        + (
            f"; the background trainer waits: {status['daemon']['waiting']}"
            if (status.get("daemon") or {}).get("waiting")
            else ""
        ),
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
