"""`hotfix data`: delete or export what the feedback store holds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hotfix_engine.errors import ConfigError, StoreError

ORDER = 85


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "data",
        parents=[common],
        help="purge or export the feedback store",
        description="The feedback store keeps suggestion outcomes and bug-fix pairs (redacted) in the data folder.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    purge = actions.add_parser(
        "purge",
        parents=[common],
        help="delete everything the store holds",
        description="Delete every stored suggestion, outcome and pair. A store too corrupt to open is deleted "
        "as files. Adapters already trained are kept (see `hotfix adapters`).",
    )
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=run_purge)
    export = actions.add_parser(
        "export",
        parents=[common],
        help="write the stored bug-fix pairs as JSON Lines",
        description="Write the stored bug-fix pairs (edits, mined, derived from rules) as a pair file, each "
        "exactly as the store keeps it: redacted, with only the code around the line that training and "
        "evaluation read, and its origin.",
    )
    export.add_argument("--out", metavar="FILE", help="output file (default: standard output)")
    export.add_argument(
        "--scope",
        choices=("personal", "team"),
        default="personal",
        help="on a team store (--store): your own pairs (default) or the whole team's",
    )
    export.set_defaults(func=run_export)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise ConfigError("refusing to purge without confirmation; pass --yes")
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def run_purge(args: argparse.Namespace) -> int:
    from hotfix_engine.paths import data_dir, store_path
    from hotfix_engine.store import Store, store_url
    from hotfix_engine.store_sqlite import remove_store_files

    folder = data_dir(args.data_dir)
    shared = store_url()
    path = store_path(folder)
    if shared is None and not path.exists():
        sys.stderr.write(f"nothing to purge: no store at {path}\n")
        return 0
    # A team store: what this user recorded there (their scope), nobody else's.
    what = "everything you recorded in the team store" if shared else f"everything stored in {path}"
    if not args.yes and not _confirm(f"Delete {what}?"):
        sys.stderr.write("nothing deleted\n")
        return 1
    try:
        store = Store.open(folder)
    except StoreError as exc:
        if shared is not None or "corrupt" not in str(exc):
            raise
        removed = remove_store_files(folder)
        sys.stderr.write(
            f"the store could not be opened, so its files were deleted: {', '.join(map(str, removed))}\n"
        )
        return 0
    with store:
        counts = store.counts()
        store.purge()
    sys.stderr.write(
        f"purged {counts['suggestions']} suggestions, {counts['outcomes']} outcomes and {counts['pairs']} pairs "
        f"from {store.location}\n"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from hotfix_engine.paths import data_dir, open_private, store_path
    from hotfix_engine.store import Store, store_url

    folder = data_dir(args.data_dir)
    if store_url() is None and not store_path(folder).exists():
        raise StoreError(f"no store at {store_path(folder)}: nothing to export")
    with Store.open(folder, scope=args.scope) as store:
        if args.out is None:
            count = store.export_pairs(sys.stdout)
        else:
            out = Path(args.out)
            tmp = out.with_name(out.name + ".tmp")
            try:
                # The user's code, redacted but still theirs: readable by its owner only.
                with open_private(tmp) as handle:
                    count = store.export_pairs(handle)
                tmp.replace(out)
            except OSError as exc:
                raise StoreError(f"cannot write {out}: {exc.strerror or exc}") from None
    sys.stderr.write(f"exported {count} pairs{'' if args.out is None else ' to ' + args.out}\n")
    return 0
