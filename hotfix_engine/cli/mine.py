"""`hotfix mine`: single-statement bug fixes from a git history, as pairs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ORDER = 65
STATE_FILE = "mining-state.json"


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "mine",
        parents=[common],
        help="extract single-statement bug fixes from a git history",
        description="Walk a git repository's history and keep each commit that says it fixes something and "
        "replaces exactly one statement of a Python file, as a bug-fix pair with its pattern classified. "
        "Pairs go to the feedback store (where completions are checked against them) or, with --out, to a "
        "pair file. Needs the git executable.",
    )
    p.add_argument("repo", metavar="REPO", help="a folder inside a git repository")
    p.add_argument(
        "--out", metavar="FILE", help="write the pairs to this JSON Lines file instead of the store"
    )
    p.add_argument(
        "--since-last",
        action="store_true",
        help="only commits added since the previous run on this repository",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hotfix_engine.mining import count_commits, last_mined, mine, remember
    from hotfix_engine.pairs import write_pairs
    from hotfix_engine.paths import data_dir
    from hotfix_engine.store import Store

    folder = data_dir(args.data_dir)
    state_file = folder / STATE_FILE
    repo = Path(args.repo)
    since = last_mined(repo, state_file) if args.since_last else None
    total = count_commits(repo, since)
    with tqdm(total=total, unit="commit", desc="mining", file=sys.stderr, disable=total < 50) as bar:
        result = mine(repo, since=since, progress=bar.update)
    if args.out:
        write_pairs(args.out, result.pairs)
        where = args.out
    else:
        with Store.open(folder) as store:
            added = store.add_pairs(result.pairs, origin="mined")
        where = f"the store ({added} new)"
    remember(repo, state_file, result)
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(result.skipped.items())) or "none"
    sys.stderr.write(
        f"{len(result.pairs)} pairs from {result.fix_commits} fix commits of {result.commits} walked "
        f"in {result.elapsed_s:.1f} s -> {where}; files passed over: {skipped}\n"
    )
    return 0
