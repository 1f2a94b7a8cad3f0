"""``hotfix daemon``: the background trainer (continuous hotfixing), normally started by the server."""

from __future__ import annotations

import argparse
import threading

from hotfix_engine.daemon import TrainingPolicy

ORDER = 35


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "daemon",
        parents=[common],
        help="train new adapter versions in the background from your feedback",
        description=(
            "Watch the feedback store and train a new adapter version when enough new feedback has "
            "arrived and the editor is idle. One daemon serves a data folder; a second one exits."
        ),
    )
    policy = TrainingPolicy()
    parser.add_argument(
        "--min-records",
        type=int,
        default=policy.min_records,
        help=f"new trainable records before a run ({policy.min_records})",
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=policy.idle_s,
        help=f"seconds without new feedback before a run ({policy.idle_s:g})",
    )
    parser.add_argument(
        "--min-interval",
        type=float,
        default=policy.min_interval_s,
        help=f"seconds between runs at least ({policy.min_interval_s:g})",
    )
    parser.add_argument("--parent-pid", type=int, help="exit when this process (the server) ends")
    parser.add_argument(
        "--train-arg",
        action="append",
        default=[],
        help="extra argument for each `hotfix train` run (repeatable)",
    )
    parser.set_defaults(func=run)


def _watch_parent(pid: int, stop: threading.Event) -> None:
    from hotfix_engine.processes import process_alive

    while not stop.wait(2.0):
        if not process_alive(pid):
            stop.set()


def run(args: argparse.Namespace) -> int:
    from hotfix_engine.daemon import Daemon
    from hotfix_engine.paths import data_dir

    policy = TrainingPolicy(min_records=args.min_records, idle_s=args.idle, min_interval_s=args.min_interval)
    daemon = Daemon(data_dir(args.data_dir), args.model, policy, train_args=args.train_arg)
    stop = threading.Event()
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid, stop), daemon=True).start()
    return daemon.run(stop)  # on SIGTERM its `finally` stops a running trainer and releases the lock
