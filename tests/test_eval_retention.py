"""Retention metrics: problems, HumanEval pass@k, the line-level metric, with known answers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from tiny_model import build_model, build_tokenizer

from hotfix_engine.errors import DataError, EvaluationError
from hotfix_engine.evaluation.humaneval import humaneval, pass_at_k, score_humaneval, truncate_completion
from hotfix_engine.evaluation.lines import (
    LINE_SAMPLING,
    first_line,
    line_completion_rate,
    line_tasks,
    score_lines,
)
from hotfix_engine.evaluation.problems import Problem, check_references, humaneval_problems, load_problems
from hotfix_engine.evaluation.sampling import Sampling
from hotfix_engine.evaluation.sandbox import SandboxLimits

LIMITS = SandboxLimits(timeout_s=3.0, memory_mb=512)

MBPP_ROWS = [
    {
        "task_id": 1,
        "text": "Write a function to add up a list.",
        "code": "def total(xs):\r\n    s = 0\r\n    for x in xs:\r\n        s += x\r\n    return s",
        "test_setup_code": "",
        "test_list": ["assert total([1, 2, 3]) == 6", "assert total([]) == 0"],
    },
    {"task_id": 2, "text": "No tests here.", "code": "def f():\n    return 1", "test_list": []},
    {
        "task_id": 3,
        "text": "Broken reference.",
        "code": "def g(x):\n    return x + 2",
        "test_list": ["assert g(1) == 2"],
    },
]


@pytest.fixture()
def mbpp_file(tmp_path: Path) -> Path:
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in MBPP_ROWS))
    return path


def test_pass_at_k_unbiased_estimator():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 3, 10) == 1.0
    # 1 - C(8, 2) / C(10, 2) = 1 - 28/45
    assert pass_at_k(10, 2, 2) == pytest.approx(1 - 28 / 45)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_truncate_completion_at_stop_sequences():
    assert truncate_completion("    return x\n\ndef other():\n    pass") == "    return x\n"
    assert truncate_completion("    return x\n# test\nprint(1)") == "    return x"
    assert truncate_completion("    return x") == "    return x"


def test_load_mbpp_shape_and_reference_check(mbpp_file: Path):
    problems = load_problems(mbpp_file)
    assert [p.id for p in problems] == ["mbpp/1", "mbpp/2", "mbpp/3"]
    first = problems[0]
    assert "\r" not in first.solution and first.header.startswith("# Write a function")
    assert first.boundaries() == [0, 1, 2, 3, 4]
    prefix, line, suffix = first.cut(3)
    assert prefix.endswith("    for x in xs:\n") and line == "        s += x" and suffix == "    return s"
    check = check_references(problems, LIMITS)
    assert [p.id for p in check.usable] == ["mbpp/1"]
    assert check.no_tests == ("mbpp/2",) and check.broken == ("mbpp/3",)


def test_bad_problem_files(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no code"}\n')
    with pytest.raises(DataError, match="bad.jsonl:1: expected MBPP fields"):
        load_problems(bad)
    with pytest.raises(DataError, match="no such problems file"):
        load_problems(tmp_path / "missing.jsonl")


def test_boundaries_skip_multi_line_statements():
    problem = Problem("p", "", "def f():\n    x = (1,\n         2)\n    return x", "assert f() == (1, 2)")
    assert problem.boundaries() == [0, 3]


def test_line_metric_known_by_construction(mbpp_file: Path):
    problem = load_problems(mbpp_file)[0]
    tasks = line_tasks([problem])
    assert sorted(t.index for t in tasks) == [0, 1, 2, 3, 4]
    right = score_lines(tasks, [t.parts()[1] for t in tasks], LIMITS)
    assert right.pass_rate == 1.0 and right.exact_rate == 1.0
    wrong = score_lines(tasks, ["    pass"] * len(tasks), LIMITS)
    assert wrong.pass_rate == 0.0 and wrong.exact_rate == 0.0
    spaced = score_lines(tasks[:1], [tasks[0].parts()[1].replace(" ", "  ")], LIMITS)
    assert spaced.exact_rate == 1.0


def test_line_tasks_spread_over_problems(mbpp_file: Path):
    problems = [p for p in load_problems(mbpp_file) if p.tests]
    tasks = line_tasks(problems, limit=2)
    assert {t.problem.id for t in tasks} == {"mbpp/1", "mbpp/3"}


def test_first_line():
    assert first_line("def f():\n", "\n    return 1\n    x") == "    return 1"
    assert first_line("def f():\n    return ", "1\n") == "    return 1"
    assert first_line("x\n", "") == ""


def test_humaneval_scores_canonical_solutions_as_passing():
    problems = humaneval_problems(limit=3)
    assert [p.id for p in problems] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    canonical = [[p.solution + "\n", "    return None\n"] for p in problems]
    result = score_humaneval(problems, canonical, ks=(1, 2), limits=LIMITS)
    assert [o.correct for o in result.per_problem] == [1, 1, 1]
    assert result.pass_at == {1: pytest.approx(0.5), 2: 1.0}
    assert result.passed_first() == [True, True, True]


@pytest.fixture(scope="module")
def tiny():
    tokenizer = build_tokenizer()
    return build_model(tokenizer, seed=0), tokenizer


def test_tiny_model_end_to_end(tiny, mbpp_file: Path):
    model, tok = tiny
    problems = humaneval_problems(limit=2)
    result = humaneval(
        model, tok, problems, Sampling(samples=2, temperature=1.0, max_new_tokens=16), ks=(1,), limits=LIMITS
    )
    assert len(result.per_problem) == 2 and 0.0 <= result.pass_at[1] <= 1.0
    assert all(
        s in ("passed", "failed", "timeout", "memory", "blocked")
        for o in result.per_problem
        for s in o.statuses
    )
    tasks = line_tasks(load_problems(mbpp_file)[:1], limit=3)
    lines = line_completion_rate(model, tok, tasks, replace(LINE_SAMPLING, max_new_tokens=12), limits=LIMITS)
    assert len(lines.per_task) == 3 and 0.0 <= lines.pass_rate <= 1.0
    with pytest.raises(EvaluationError, match="once"):
        line_completion_rate(model, tok, tasks, Sampling(samples=2), limits=LIMITS)
