"""A long discovery run: resumable, incremental, and spread over processes.

Discovery on all of MBPP takes days on a 2-core CPU. Each finished problem goes into the corpus
(:mod:`hotfix_engine.corpus`) at once, so a run cut short keeps what it verified and the next run
skips the problems done. Every problem is sampled with the same seeds wherever and whenever it runs
(each prompt's random numbers depend only on the seed and its place in the problem), so a resumed
or parallel run finds the pairs one uninterrupted run would.

With ``jobs`` above 1 each worker process loads the model once (``factory``, called in the worker:
it must pickle) and takes problems one at a time; the parent alone writes the corpus. Workers ignore
Ctrl-C: the parent stops them, and what is written stays.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hotfix_engine.corpus import Corpus
from hotfix_engine.discovery import Completer, DiscoveryConfig, DiscoveryStats, discover_problem
from hotfix_engine.errors import HotfixError
from hotfix_engine.evaluation.problems import Problem, check_references
from hotfix_engine.pairs import BugFixPair

log = logging.getLogger(__name__)

CompleterFactory = Callable[[], Completer]
"""Builds a :data:`Completer` (loads the model); called once per process that completes."""

Progress = Callable[[int, int, DiscoveryStats], None]
"""``progress(done, total, this_run)``: problems done of all given (earlier runs included)."""


@dataclass
class RunSummary:
    """What one run did (``this_run``) and what the corpus holds after it (``totals``)."""

    this_run: DiscoveryStats = field(default_factory=DiscoveryStats)
    totals: DiscoveryStats = field(default_factory=DiscoveryStats)
    already_done: int = 0
    problems: int = 0
    added: int = 0
    wall_s: float = 0.0


def solve(
    problem: Problem, complete: Completer, config: DiscoveryConfig
) -> tuple[list[BugFixPair], DiscoveryStats]:
    """One problem's verified pairs and its own counts, timed."""
    stats = DiscoveryStats()
    started = time.perf_counter()
    pairs = discover_problem(problem, complete, config, stats)
    stats.pairs = len(pairs)
    stats.elapsed_s = time.perf_counter() - started
    return pairs, stats


class ProblemFailed(HotfixError):
    """Discovery failed on one problem (or a worker could not start): the run stops there.

    The problems done so far stay in the corpus; the same command continues from this one, or
    ``--offset`` moves past it.
    """


def _solve_or_fail(
    problem: Problem, complete: Completer, config: DiscoveryConfig
) -> tuple[list[BugFixPair], DiscoveryStats]:
    try:
        return solve(problem, complete, config)
    except Exception as exc:
        log.exception("discovery failed on %s", problem.id)
        raise ProblemFailed(f"discovery failed on {problem.id}: {exc}") from None


_worker: tuple[Completer, DiscoveryConfig] | None = None
_worker_error: str | None = None


def _start_worker(factory: CompleterFactory, config: DiscoveryConfig) -> None:
    """Load the model once per worker. A failure is kept and reported by the first task: a Pool
    whose initializer raises starts new workers for ever."""
    global _worker, _worker_error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _worker = (factory(), config)
    except Exception as exc:
        log.exception("a discovery worker could not start")
        _worker_error = f"a discovery worker could not start: {exc}"


def _work(problem: Problem) -> tuple[str, list[BugFixPair], DiscoveryStats]:
    if _worker is None:
        raise ProblemFailed(_worker_error or "a discovery worker could not start")
    pairs, stats = _solve_or_fail(problem, *_worker)
    return problem.id, pairs, stats


def run_discovery(
    problems: Sequence[Problem],
    factory: CompleterFactory,
    config: DiscoveryConfig,
    corpus: Corpus,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
) -> RunSummary:
    """Discover on the problems the corpus has not done yet, adding each to it as it finishes."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    started = time.perf_counter()
    unique = list({p.id: p for p in reversed(problems)}.values())[::-1]  # first of each id, in order
    todo = [p for p in unique if p.id not in corpus.done]
    summary = RunSummary(already_done=len(unique) - len(todo), problems=len(unique))
    run = summary.this_run
    if todo:
        log.info("checking the reference solutions of %d problems", len(todo))
    checked = check_references(todo, config.limits)
    for problem_id in checked.no_tests:
        corpus.skip(problem_id, "no_tests")
    for problem_id in checked.broken:
        corpus.skip(problem_id, "broken")
    run.skipped_no_tests, run.skipped_broken = len(checked.no_tests), len(checked.broken)
    if checked.no_tests or checked.broken:
        log.info(
            "skipped %d problems without tests and %d whose reference fails its tests",
            len(checked.no_tests),
            len(checked.broken),
        )
    done = summary.already_done + len(checked.no_tests) + len(checked.broken)

    def record(problem_id: str, pairs: list[BugFixPair], stats: DiscoveryStats) -> None:
        nonlocal done
        added = corpus.add(problem_id, pairs, stats)
        stats.duplicates += len(pairs) - added
        stats.pairs = added
        run.add(stats)
        summary.added += added
        done += 1
        if progress is not None:
            progress(done, len(unique), run)

    if progress is not None:
        progress(done, len(unique), run)
    usable = list(checked.usable)
    try:
        if jobs == 1 or len(usable) <= 1:
            complete = factory() if usable else None
            for problem in usable:
                assert complete is not None
                record(problem.id, *_solve_or_fail(problem, complete, config))
        else:
            _parallel(usable, factory, config, min(jobs, len(usable)), record)
    finally:
        summary.wall_s = time.perf_counter() - started
        summary.totals = corpus.totals()
    return summary


def _parallel(
    problems: Sequence[Problem],
    factory: CompleterFactory,
    config: DiscoveryConfig,
    jobs: int,
    record: Callable[[str, list[BugFixPair], DiscoveryStats], None],
) -> None:
    # spawn, not fork: a forked copy of a process that has run torch's thread pools can hang.
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(jobs, initializer=_start_worker, initargs=(factory, config))
    try:
        for problem_id, pairs, stats in pool.imap_unordered(_work, problems, chunksize=1):
            record(problem_id, pairs, stats)
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()
