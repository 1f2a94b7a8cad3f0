"""Discovery of the model's own bugs: bug-prone prompts with verified fixes.

Dataset pairs show the embedded model's buggy and fixed rates near zero, which makes hotfix effects
unmeasurable. Here the model completes reference solutions (MBPP, HumanEval, or any file of that
shape) from each line boundary, greedily and by sampling; each completion runs against the problem's
tests in the sandbox. Where a completion fails, the first statement where it departs from the
reference is the candidate bug and the reference statement its fix. A pair is kept only when it is
verified in the model's own context: the completion fails with the model's statement and passes with
the reference statement in its place. The pair records how often the model wrote that buggy
statement from that prefix, so the base model's buggy rate on these prompts is high by construction.

Statements are compared as Python sees them (:func:`canonical_statement`): ``s = (x)`` and
``s=x  # add`` are one bug written two ways, and one problem keeps one pair per bug.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hotfix_engine.evaluation.bugrates import contains_statement
from hotfix_engine.evaluation.problems import Problem, check_references
from hotfix_engine.evaluation.sampling import Sample, Sampling, check_protocol, generate_samples
from hotfix_engine.evaluation.sandbox import SandboxLimits, run_many
from hotfix_engine.pairs import BugFixPair, normalize_statement

log = logging.getLogger(__name__)

Completer = Callable[[Sequence[str], Sampling], list[list[Sample]]]
"""``complete(prompts, sampling)``: ``sampling.samples`` completions of each prompt, drawn as it says."""

# Lines at column 0 that end a generated solution: what small models write after the code (tests,
# prints, markdown fences, or prose such as "This function returns ...").
_TRAILERS = ("if __name__", "print(", "assert ", "#", "```", '"""', "'''")
_PROSE = re.compile(r"^[A-Z][a-z]+:?( [a-z]+|$)")


def is_trailer(line: str) -> bool:
    """Whether a generated line ends the code: a top-level test, print, fence, comment or prose."""
    if not line or line[0].isspace():
        return False
    return line.startswith(_TRAILERS) or bool(_PROSE.match(line))


def _code_done(text: str) -> bool:
    """Stop rule for generation: a complete line that is a trailer has been written."""
    return any(is_trailer(line) for line in text.split("\n")[1:-1])


def model_completer(model, tokenizer, *, protocol: str = "product") -> Completer:
    """A :data:`Completer` that samples from a model with the evaluation's batched sampler.

    ``protocol`` is the sampler's (prompted as served, or as the paper did); give
    :class:`DiscoveryConfig` the same one, which records it with each pair's rates.
    """

    def complete(prompts: Sequence[str], sampling: Sampling) -> list[list[Sample]]:
        return generate_samples(model, tokenizer, prompts, sampling, protocol=protocol, stop=_code_done)

    return complete


@dataclass(frozen=True)
class DiscoveryConfig:
    """Per line boundary, the greedy completion (``greedy``) and ``sampling.samples`` sampled ones
    (``sampled``; without them, greedy only).

    The greedy completion is drawn as ``sampling`` says but at temperature 0. ``protocol`` is how the
    completer prompts (:func:`model_completer`'s): each pair records it next to the rates measured
    with it.
    """

    sampling: Sampling = Sampling(max_new_tokens=96)
    greedy: bool = True
    sampled: bool = True
    timeout_s: float = 5.0
    memory_mb: int = 1024
    protocol: str = "product"

    def __post_init__(self) -> None:
        check_protocol(self.protocol)
        if not (self.greedy or self.sampled):
            raise ValueError("discovery needs greedy completions or samples >= 1")
        if self.sampled and self.sampling.greedy:
            raise ValueError(f"sampling needs a temperature above 0, got {self.sampling.temperature}")

    @property
    def limits(self) -> SandboxLimits:
        return SandboxLimits(timeout_s=self.timeout_s, memory_mb=self.memory_mb)

    @property
    def samples(self) -> int:
        """Sampled completions per line boundary (0: greedy only)."""
        return self.sampling.samples if self.sampled else 0

    @property
    def greedy_sampling(self) -> Sampling:
        return replace(self.sampling, samples=1, temperature=0.0)

    def to_json(self) -> dict[str, object]:
        """What decides the pairs a problem yields (the batch size does not: rows are seeded alone)."""
        return {
            "samples": self.samples,
            "greedy": self.greedy,
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
            "max_new_tokens": self.sampling.max_new_tokens,
            "seed": self.sampling.seed,
            "protocol": self.protocol,
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
        }


@dataclass
class DiscoveryStats:
    """Counts that say where candidates were lost, and the time taken."""

    problems: int = 0
    skipped_no_tests: int = 0
    skipped_broken: int = 0
    boundaries: int = 0
    completions: int = 0
    failing: int = 0
    departures: int = 0
    duplicates: int = 0  # departures repeating a bug already found on the problem (however written)
    verified: int = 0
    pairs: int = 0
    elapsed_s: float = 0.0

    @property
    def pairs_per_hour(self) -> float:
        return self.pairs * 3600 / self.elapsed_s if self.elapsed_s else 0.0

    def to_json(self) -> dict[str, object]:
        return {**self.__dict__, "pairs_per_hour": self.pairs_per_hour}

    def add(self, other: DiscoveryStats) -> None:
        """Add another run's (or problem's) counts and time to these."""
        for name, value in other.__dict__.items():
            setattr(self, name, getattr(self, name) + value)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DiscoveryStats:
        """Counts as :meth:`to_json` wrote them; unknown keys (and the derived rate) are ignored."""
        known = cls().__dict__
        return cls(**{k: type(known[k])(v) for k, v in data.items() if k in known})


@dataclass
class DiscoveryResult:
    pairs: list[BugFixPair] = field(default_factory=list)
    stats: DiscoveryStats = field(default_factory=DiscoveryStats)


def completion_lines(problem: Problem, index: int, sample: Sample) -> list[str]:
    """The code lines a completion from solution line ``index`` contributes, trailing chatter removed.

    A last line cut off by the token limit is dropped; the lines stop at the first top-level line
    that is commentary, a test or a print (small models append them), and are then shortened to the
    longest run that still compiles after the reference's lines above the boundary.
    """
    lines = sample.text.split("\n")
    if not sample.finished:
        lines = lines[:-1]
    kept = []
    for line in lines:
        if is_trailer(line):
            break
        kept.append(line)
    prefix = problem.cut(index)[0]
    while kept and not _compiles(prefix + "\n".join(kept) + "\n"):
        kept.pop()
    while kept and not kept[-1].strip():
        kept.pop()
    return kept


def _compiles(code: str) -> bool:
    try:
        compile(code, "<candidate>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Departure:
    """Where a completion from boundary ``start`` first differs from the reference."""

    start: int
    reference_index: int  # index of the reference solution line the model replaced
    model_index: int  # index in the completion's lines of the model's statement
    buggy: str
    fixed: str


def _is_code(line: str) -> bool:
    """Blank and comment-only lines are not statements: a different comment is not a bug."""
    text = line.strip()
    return bool(text) and not text.startswith("#")


def canonical_statement(text: str) -> str:
    """A statement as Python parses it, so that spacing, quotes, parentheses and comments do not count.

    ``ast.dump`` of the statement (a block header such as ``elif x:`` is parsed inside a wrapper);
    text that does not parse falls back to :func:`normalize_statement`. Names are kept as written: a
    different variable is a different bug (the SStuB class ``change_identifier``).
    """
    from hotfix_engine.patterns.fragments import parse_statement

    stripped = text.strip()
    if not stripped:
        return ""
    tree = parse_statement(stripped)
    return ast.dump(tree) if tree is not None else normalize_statement(stripped)


def bug_key(problem_id: str, buggy: str, fixed: str) -> tuple[str, str, str]:
    """Two pairs with the same key are one bug: same problem, same statements up to how they are written."""
    return (problem_id, canonical_statement(buggy), canonical_statement(fixed))


def find_departure(problem: Problem, start: int, lines: Sequence[str]) -> Departure | None:
    """The first statement where ``lines`` (from boundary ``start``) differ from the reference.

    None when the completion agrees with the reference until one of them ends: a missing or extra
    tail is not a single-statement bug. Statements that differ only in how they are written (see
    :func:`canonical_statement`) agree.
    """
    reference = problem.solution.split("\n")
    ref = [i for i in range(start, len(reference)) if _is_code(reference[i])]
    mine = [i for i, line in enumerate(lines) if _is_code(line)]
    for r, m in zip(ref, mine, strict=False):
        if normalize_statement(reference[r]) == normalize_statement(lines[m]):
            continue
        if canonical_statement(reference[r]) != canonical_statement(lines[m]):
            return Departure(start, r, m, lines[m], reference[r])
    return None


def _substitute(problem: Problem, departure: Departure, lines: Sequence[str], statement: str) -> str:
    """The completion's program with its departing statement replaced by ``statement``."""
    prefix = problem.cut(departure.start)[0]
    body = list(lines)
    body[departure.model_index] = statement
    return problem.program(prefix + "\n".join(body))


def _reference_with(problem: Problem, index: int, statement: str) -> str:
    prefix, _, suffix = problem.cut(index)
    return problem.program(f"{prefix}{statement}\n{suffix}")


def _pair_id(problem: Problem, index: int, buggy: str) -> str:
    digest = hashlib.sha1(f"{problem.id}\0{index}\0{normalize_statement(buggy)}".encode()).hexdigest()[:8]
    return f"discovered/{problem.id}/{index}/{digest}"


def _classify(buggy: str, fixed: str) -> str:
    try:
        from hotfix_engine.patterns import classify_pair
    except ImportError:
        return ""
    return classify_pair(buggy.strip(), fixed.strip())


def discover_problem(
    problem: Problem, complete: Completer, config: DiscoveryConfig, stats: DiscoveryStats
) -> list[BugFixPair]:
    """Verified pairs of the model's own bugs on one problem whose reference passes its tests."""
    boundaries = problem.boundaries()
    if not boundaries:
        return []
    stats.problems += 1
    stats.boundaries += len(boundaries)
    prompts = [problem.cut(i)[0] for i in boundaries]
    # Each boundary's completions, tagged with how they were drawn; sampled ones also give the rates.
    drawn: dict[int, list[tuple[str, Sample]]] = defaultdict(list)
    sampled: dict[int, list[Sample]] = {}
    if config.greedy:
        for index, row in zip(boundaries, complete(prompts, config.greedy_sampling), strict=True):
            drawn[index].append(("greedy", row[0]))
    if config.sampled:
        for index, row in zip(boundaries, complete(prompts, config.sampling), strict=True):
            drawn[index].extend(("sampled", s) for s in row)
            sampled[index] = list(row)
    candidates = []
    for index in boundaries:
        for origin, sample in drawn[index]:
            lines = completion_lines(problem, index, sample)
            candidates.append((index, origin, sample, lines))
    stats.completions += len(candidates)
    programs = sorted(
        {problem.program(problem.cut(i)[0] + "\n".join(lines)) for i, _, _, lines in candidates}
    )
    outcome = dict(zip(programs, (r.passed for r in run_many(programs, config.limits)), strict=True))
    single = set(boundaries)
    found: dict[tuple[str, str, str], tuple[Departure, list[str], str]] = {}
    for index, origin, _, lines in candidates:
        if outcome[problem.program(problem.cut(index)[0] + "\n".join(lines))]:
            continue
        stats.failing += 1
        departure = find_departure(problem, index, lines)
        if departure is None or departure.reference_index not in single:
            continue
        stats.departures += 1
        key = bug_key(problem.id, departure.buggy, departure.fixed)
        if key in found:
            stats.duplicates += 1
            continue
        found[key] = (departure, list(lines), origin)
    checks = [_substitute(problem, d, lines, d.fixed) for d, lines, _ in found.values()]
    in_reference = [_reference_with(problem, d.reference_index, d.buggy) for d, _, _ in found.values()]
    results = run_many(checks + in_reference, config.limits)
    verified_fix, fails_in_reference = results[: len(checks)], results[len(checks) :]
    pairs = []
    for (departure, lines, origin), fix_result, ref_result in zip(
        found.values(), verified_fix, fails_in_reference, strict=True
    ):
        if not fix_result.passed:
            continue
        stats.verified += 1
        index = departure.reference_index
        prefix = problem.cut(index)[0]
        rows = sampled.get(index, [])
        buggy_rate = (
            sum(contains_statement(prefix, s, departure.buggy) for s in rows) / len(rows) if rows else None
        )
        fixed_rate = (
            sum(contains_statement(prefix, s, departure.fixed) for s in rows) / len(rows) if rows else None
        )
        pairs.append(
            BugFixPair(
                id=_pair_id(problem, index, departure.buggy),
                source=f"discovered-{problem.source or 'problems'}",
                prefix=prefix,
                buggy=departure.buggy,
                fixed=departure.fixed,
                suffix="\n".join(lines[departure.model_index + 1 :]) + "\n",
                pattern=_classify(departure.buggy, departure.fixed),
                tests=problem.tests,
                extra={
                    "problem": problem.id,
                    "line": index,
                    "found_from_line": departure.start,
                    "found_by": origin,
                    "buggy_rate": buggy_rate,
                    "fixed_rate": fixed_rate,
                    "rate_samples": len(rows),
                    "protocol": config.protocol,
                    "fails_in_reference": not ref_result.passed,
                },
            )
        )
    stats.pairs += len(pairs)
    return pairs


def discover(
    problems: Sequence[Problem],
    complete: Completer,
    config: DiscoveryConfig = DiscoveryConfig(),
    *,
    progress: Callable[[int, int, DiscoveryStats], None] | None = None,
    on_pairs: Callable[[list[BugFixPair]], None] | None = None,
) -> DiscoveryResult:
    """Run discovery over ``problems``; problems without tests or with a failing reference are skipped.

    ``progress(done, total, stats)`` follows each problem; ``on_pairs(all_pairs_so_far)`` is called
    when a problem adds pairs, so that a long run can save as it goes.
    """
    started = time.perf_counter()
    result = DiscoveryResult()
    checked = check_references(problems, config.limits)
    result.stats.skipped_no_tests = len(checked.no_tests)
    result.stats.skipped_broken = len(checked.broken)
    if checked.no_tests or checked.broken:
        log.info(
            "skipped %d problems without tests and %d whose reference fails its tests",
            len(checked.no_tests),
            len(checked.broken),
        )
    for done, problem in enumerate(checked.usable, start=1):
        pairs = discover_problem(problem, complete, config, result.stats)
        result.stats.elapsed_s = time.perf_counter() - started
        if pairs:
            result.pairs.extend(pairs)
            if on_pairs is not None:
                on_pairs(result.pairs)
        if progress is not None:
            progress(done, len(checked.usable), result.stats)
    result.stats.elapsed_s = time.perf_counter() - started
    return result
