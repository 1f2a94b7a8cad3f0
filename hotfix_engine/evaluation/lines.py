"""Line-level functional retention: complete one line of a reference solution, run the tests.

Small models score near zero on whole-function HumanEval, which then says nothing about what a hotfix
did to them. Completing a single line inside an otherwise correct reference solution is a task they
can do (Gemma 3 270M: about a third of HumanEval's lines), so a drop in that share is visible.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hotfix_engine.errors import EvaluationError
from hotfix_engine.evaluation.problems import Problem
from hotfix_engine.evaluation.sampling import Progress, Sampling, generate_samples
from hotfix_engine.evaluation.sandbox import DEFAULT_LIMITS, SandboxLimits, run_many
from hotfix_engine.pairs import normalize_statement

# One greedy line per task: the line the product would suggest.
LINE_SAMPLING = Sampling(samples=1, temperature=0.0, max_new_tokens=48)


@dataclass(frozen=True)
class LineTask:
    """Solution line ``index`` of ``problem`` to be completed from the code above it."""

    problem: Problem
    index: int

    @property
    def id(self) -> str:
        return f"{self.problem.id}:{self.index}"

    def parts(self) -> tuple[str, str, str]:
        return self.problem.cut(self.index)

    def program(self, line: str) -> str:
        prefix, _, suffix = self.parts()
        return self.problem.program(f"{prefix}{line}\n{suffix}")


def line_tasks(problems: Sequence[Problem], limit: int | None = None, seed: int = 0) -> list[LineTask]:
    """Line tasks spread over problems: one random line of each problem, then a second, and so on.

    So ``limit`` below the number of problems still samples many problems rather than every line of
    the first few.
    """
    rng = random.Random(seed)
    per_problem = []
    for problem in problems:
        indexes = problem.boundaries()
        rng.shuffle(indexes)
        per_problem.append([LineTask(problem, i) for i in indexes])
    tasks: list[LineTask] = []
    depth = 0
    while any(depth < len(group) for group in per_problem):
        tasks.extend(group[depth] for group in per_problem if depth < len(group))
        depth += 1
    return tasks[:limit]


def first_line(prefix: str, completion: str) -> str:
    """The line a completion writes at a line boundary: its first non-blank line."""
    head = prefix.rsplit("\n", 1)[-1]
    for line in (head + completion).split("\n"):
        if line.strip():
            return line
    return ""


def _line_done(text: str) -> bool:
    return any(line.strip() for line in text.split("\n")[:-1])


@dataclass(frozen=True)
class LineOutcome:
    id: str
    reference: str
    completed: str
    exact: bool
    status: str


@dataclass(frozen=True)
class LineResult:
    per_task: tuple[LineOutcome, ...]

    @property
    def pass_rate(self) -> float:
        return sum(o.status == "passed" for o in self.per_task) / len(self.per_task) if self.per_task else 0.0

    @property
    def exact_rate(self) -> float:
        return sum(o.exact for o in self.per_task) / len(self.per_task) if self.per_task else 0.0

    def passed(self) -> list[bool]:
        return [o.status == "passed" for o in self.per_task]

    def to_json(self) -> dict[str, object]:
        return {
            "tasks": len(self.per_task),
            "pass_rate": self.pass_rate,
            "exact_rate": self.exact_rate,
            "per_task": [o.__dict__ for o in self.per_task],
        }


def line_completion_rate(
    model,
    tokenizer,
    tasks: Sequence[LineTask],
    sampling: Sampling = LINE_SAMPLING,
    *,
    limits: SandboxLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    run_progress: Callable[[int, int], None] | None = None,
    protocol: str = "product",
) -> LineResult:
    """Complete each task's line (greedy by default), put it back, and run the problem's tests.

    One completion a task: ``sampling.samples`` must be 1.
    """
    if sampling.samples != 1:
        raise EvaluationError(f"the line-level metric completes each line once, not {sampling.samples} times")
    prefixes = [task.parts()[0] for task in tasks]
    generated = generate_samples(
        model,
        tokenizer,
        prefixes,
        sampling,
        protocol=protocol,
        stop=_line_done,
        progress=progress,
    )
    return score_lines(
        tasks,
        [first_line(p, row[0].text) for p, row in zip(prefixes, generated, strict=True)],
        limits,
        run_progress,
    )


def score_lines(
    tasks: Sequence[LineTask],
    lines: Sequence[str],
    limits: SandboxLimits = DEFAULT_LIMITS,
    progress: Callable[[int, int], None] | None = None,
) -> LineResult:
    """Put each completed line back into its reference solution and run the tests in the sandbox."""
    results = run_many(
        [task.program(line) for task, line in zip(tasks, lines, strict=True)], limits, progress=progress
    )
    outcomes = []
    for task, line, result in zip(tasks, lines, results, strict=True):
        reference = task.parts()[1]
        exact = normalize_statement(line) == normalize_statement(reference)
        outcomes.append(LineOutcome(task.id, reference, line, exact, result.status))
    return LineResult(tuple(outcomes))
