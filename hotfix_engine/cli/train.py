"""`hotfix train`: train an adapter version from pair files and/or the feedback store, gate it, publish it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hotfix_engine.errors import ConfigError, DataError
from hotfix_engine.train_config import DEFAULT_LR, METHODS, TrainConfig, default

if TYPE_CHECKING:
    from hotfix_engine.gate import GateConfig

ORDER = 40
# The objectives' names live in hotfix_engine.objectives, which imports torch, and `hotfix --help`
# must not: kept here, and tests check that they agree.
UNLEARN_LOSSES = ("unlikelihood", "gradient_ascent", "npo")
RETAIN_LOSSES = ("kl", "ce", "hidden")
# Below this many file pairs a 10 % hold-out is empty or one pair: all of them are trained on, and the
# gate judges the version on them (taught) and on retention, and never says that it generalises.
MIN_PAIRS_TO_SPLIT = 10


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "train",
        parents=[common],
        help="train, gate and publish an adapter version",
        description=(
            "Train a hotfix adapter (learn the fixed code, unlearn the buggy code, retain the rest), measure it "
            "against the current version, and make it current if the evidence says it is better: the statements "
            "it was taught, pairs it never saw (held-out) and retention (perplexity and ordinary suggestions). "
            f"With --pairs, files of {MIN_PAIRS_TO_SPLIT} or more pairs are split 80/10/10 (fixed seed): train on "
            "80 %, hold out the validation 10 %."
        ),
    )
    p.add_argument("--pairs", nargs="+", default=[], metavar="FILE", help="bug-fix pair files (JSON Lines)")
    p.add_argument("--from-store", action="store_true", help="also train on the feedback store's records")
    p.add_argument(
        "--scope",
        choices=("personal", "team"),
        default="personal",
        help="with --from-store on a team store (--store): your own records (default) or the whole team's",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default=default("method"),
        help=f"peft method (default: {default('method')})",
    )
    p.add_argument(
        "--objectives", default="learn,unlearn,retain", help="objectives to combine (default: all three)"
    )
    p.add_argument(
        "--weights",
        default="",
        help="NAME=WEIGHT,... for the chosen objectives (default: learn=1,unlearn=0.2,retain=50)",
    )
    p.add_argument("--unlearn-loss", choices=UNLEARN_LOSSES, default=default("unlearn_loss"))
    p.add_argument(
        "--retain-loss",
        choices=RETAIN_LOSSES,
        default=default("retain_loss"),
        help="KL to the base at a window's last positions (default), plain CE, or last-hidden-state distance",
    )
    p.add_argument("--epochs", type=int, default=default("epochs"))
    p.add_argument(
        "--lr",
        type=float,
        default=default("lr"),
        help="learning rate (default per method: "
        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items())
        + ")",
    )
    p.add_argument("--batch-size", type=int, default=default("batch_size"))
    p.add_argument(
        "--max-context",
        type=int,
        default=default("max_context"),
        help=f"prefix tokens kept per example (default {default('max_context')})",
    )
    p.add_argument("--seed", type=int, default=default("seed"))
    p.add_argument(
        "--threads",
        type=int,
        default=default("threads"),
        help="torch threads (default: every core, at low priority)",
    )
    p.add_argument("--workspace", nargs="*", default=[], metavar="DIR", help="folders whose code to retain")
    p.add_argument(
        "--publish",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="make the new version current if the gate accepts it (default: yes)",
    )
    p.add_argument("--force", action="store_true", help="publish even when the gate rejects the version")
    p.add_argument(
        "--adapter-base",
        choices=("current", "none"),
        default="current",
        help="continue training the current version, or start from the bare model (default: current)",
    )
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hotfix_engine import objectives
    from hotfix_engine.gate import GateConfig

    if not args.pairs and not args.from_store:
        raise ConfigError("nothing to train on: give --pairs FILE ... or --from-store")
    try:
        weights = objectives.parse_weights(args.objectives, args.weights)
        config = TrainConfig(
            method=args.method,
            weights=tuple(weights.items()),
            unlearn_loss=args.unlearn_loss,
            retain_loss=args.retain_loss,
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            max_context=args.max_context,
            seed=args.seed,
            threads=args.threads,
        )
        gate_config = GateConfig()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    # A SIGTERM (the daemon stopping a run) unwinds like Ctrl-C, through the handler that
    # hotfix_engine.cli.main installs: the staging folder is removed and the status says so.
    return _run(args, config, gate_config)


def _run(args: argparse.Namespace, config: TrainConfig, gate_config: GateConfig) -> int:
    from hotfix_engine.adapters import AdapterRegistry, consumed_records, kill_point
    from hotfix_engine.models import load_model, parse_spec
    from hotfix_engine.pairs import load_pair_files, rejected_statement, split_pairs
    from hotfix_engine.paths import data_dir
    from hotfix_engine.train_data import build_training_data, from_store
    from hotfix_engine.training_run import train_and_publish

    data = data_dir(args.data_dir)
    file_pairs = load_pair_files(args.pairs)
    if len(file_pairs) >= MIN_PAIRS_TO_SPLIT:
        split = split_pairs(file_pairs, seed=args.seed)
        train_pairs, held_out = split["train"], split["val"] or split["test"]
    else:
        train_pairs, held_out = list(file_pairs), []
    unlearn_only: list[tuple[str, str, str]] = []
    retain_texts: list[str] = []
    record_ids: list[str] = []
    store = None
    if args.from_store:
        from hotfix_engine.store import Store

        store = Store.open(data, scope=args.scope)
    try:
        if store is not None:
            # Continuing the current version: learn only what it has not seen, but record that the
            # new version has seen everything its parent had, so the next run can ask what is new.
            registry = AdapterRegistry(data, parse_spec(args.model).key)
            current = registry.current_name()
            if current is not None:  # a run killed after publishing, before marking: its version lists them
                from hotfix_engine.suppressions import Suppressions

                store.reconcile_consumed(current, consumed_records(registry.root / current))
                Suppressions(store).mark_learned(current)  # and what it learnt no longer needs a ban
            since = current if args.adapter_base == "current" else None
            stored = from_store(store, not_consumed_by=since)
            if not stored.pairs and not stored.unlearn_only and not file_pairs:
                raise DataError("the feedback store holds no new rejected or edited suggestions to train on")
            train_pairs += stored.pairs  # taught, never held out: the gate says so
            unlearn_only, retain_texts = stored.unlearn_only, stored.retain_texts
            record_ids = from_store(store).record_ids if since else stored.record_ids

        loaded = load_model(args.model)
        training = build_training_data(
            loaded.tokenizer,
            train_pairs,
            unlearn_only=unlearn_only,
            retain_texts=retain_texts,
            workspace=[Path(p) for p in args.workspace],
            record_ids=record_ids,
            fim=loaded.fim,
            **config.data_options(),
        )
        outcome = train_and_publish(
            loaded,
            training,
            held_out,
            config,
            taught=[*train_pairs, *(rejected_statement(prefix, text) for _, prefix, text in unlearn_only)],
            data_dir=data,
            publish=args.publish,
            adapter_base=args.adapter_base,
            gate_config=gate_config,
            force=args.force,
            progress=sys.stderr.isatty(),
            extra_manifest={
                "pair_files": [str(p) for p in args.pairs],
                "from_store": bool(args.from_store),
                **({"store_scope": args.scope} if store is not None else {}),
            },
        )
        if store is not None and outcome.made_current:
            from hotfix_engine.suppressions import Suppressions

            kill_point("mark")
            store.mark_consumed(outcome.version.version, training.record_ids)
            # The adapter carries the lesson now; the decode-time bans stand down while it is current.
            Suppressions(store).mark_learned(outcome.version.version)
    finally:
        if store is not None:
            store.close()

    manifest = outcome.version.manifest
    if args.json:
        sys.stdout.write(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        return 0
    train_metrics = manifest["metrics"]["train"]
    terms = ", ".join(
        f"{name} {train_metrics[name + '_first']:.3f} -> {train_metrics[name + '_last']:.3f}"
        for name in ("learn", "unlearn", "retain")
        if name + "_first" in train_metrics
    )
    state = (
        "current"
        if outcome.made_current
        else ("published, not current" if manifest["published"] else "rejected")
    )
    lines = [
        f"{outcome.version.version} ({config.method}, {len(train_pairs)} pairs, {outcome.result.steps} steps, "
        f"{manifest['time_s']['total']:.0f} s): {state}",
        f"  losses: {terms}",
        f"  gate: {manifest['gate']['reason']}",
        *(f"    {line}" for line in manifest["gate"].get("evidence", [])),
        f"  folder: {outcome.version.path}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
