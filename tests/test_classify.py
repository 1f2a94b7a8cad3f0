"""The SStuB-style classifier, on pairs written after those in QuixBugs and BugsInPy."""

from __future__ import annotations

import pytest

from hotfix_engine.patterns import CATEGORIES, classify_pair

# Hand-copied (buggy, fixed) statements from the shared QuixBugs and BugsInPy pair files.
FIXTURES = [
    ("quixbugs/bitcount", "n ^= n - 1", "n &= n - 1", "change_operator"),
    ("quixbugs/knapsack", "if weight < j:", "if weight <= j:", "change_operator"),
    ("bugsinpy/tornado-14", "if IOLoop.current(instance=False) is None:", "if IOLoop.current(instance=False) is not None:", "change_operator"),
    ("quixbugs/gcd", "return gcd(a % b, b)", "return gcd(b, a % b)", "swap_arguments"),
    ("bugsinpy/spacy-5", "docs = _pipe(pipe, docs, kwargs)", "docs = _pipe(docs, pipe, kwargs)", "swap_arguments"),
    ("quixbugs/to_base", "result = result + alphabet[i]", "result = alphabet[i] + result", "swap_operands"),
    ("quixbugs/hanoi", "steps.append((start, helper))", "steps.append((start, end))", "change_identifier"),
    ("bugsinpy/pandas-28", "return [Series(others._values, index=others)]", "return [Series(others._values, index=idx)]", "change_identifier"),
    ("bugsinpy/scrapy-13", "EXPIRES = 0", "EXPIRES = 90", "change_numeric_literal"),
    ("bugsinpy/black-3", "exists=False, file_okay=True, dir_okay=False", "exists=True, file_okay=True, dir_okay=False", "change_boolean_literal"),
    ("bugsinpy/thefuck-19", "return replace_argument(command.script, 'push', 'push --force')", "return replace_argument(command.script, 'push', 'push --force-with-lease')", "change_string_literal"),
    ("bugsinpy/pandas-116", "left_keys = [self.left.index.values]", "left_keys = [self.left.index._values]", "change_attribute"),
    ("bugsinpy/luigi-17", "return scheduler.CentralPlannerScheduler(prune_on_get_work=True)", "return scheduler.CentralPlannerScheduler(prune_on_get_work=True, record_task_history=False)", "more_arguments"),
    ("bugsinpy/cookiecutter-1", "with open(context_file) as file_handle:", "with open(context_file, encoding='utf-8') as file_handle:", "more_arguments"),
    ("bugsinpy/luigi-13", "self.fs.mkdir(d)", "self.mkdir(d)", "change_caller"),
    ("quixbugs/sieve", "if any(n % p > 0 for p in primes):", "if all(n % p > 0 for p in primes):", "wrong_function_name"),
    ("bugsinpy/sanic-1", "self.named_response_middleware[_rn].append(middleware)", "self.named_response_middleware[_rn].appendleft(middleware)", "wrong_function_name"),
    ("bugsinpy/luigi-19", "if new_status == FAILED and task.can_disable():", "if new_status == FAILED and task.can_disable() and task.status != DISABLED:", "more_specific_condition"),
    ("bugsinpy/pandas-74", "if isinstance(data, TimedeltaArray):", "if isinstance(data, TimedeltaArray) and freq is None:", "more_specific_condition"),
    ("bugsinpy/ansible-15", "if needs_update('state') and not needs_update('vrf'):", "if needs_update('state'):", "less_specific_condition"),
    ("quixbugs/detect_cycle", "if hare.successor is None:", "if hare is None or hare.successor is None:", "less_specific_condition"),
    ("quixbugs/max_sublist_sum", "max_ending_here = max_ending_here + x", "max_ending_here = max(0, max_ending_here + x)", "add_function_around_expression"),
    ("bugsinpy/matplotlib-27", "self._label = str(label)", "self._label = label", "remove_function_around_expression"),
    ("bugsinpy/luigi-28", "return stdout and table in stdout", "return stdout and table.lower() in stdout", "add_method_call"),
    ("bugsinpy/luigi-25", "path = self.s3_load_path()", "path = self.s3_load_path", "remove_method_call"),
    ("quixbugs/pascal", "for c in range(0, r):", "for c in range(0, r + 1):", "extend_expression"),
    ("quixbugs/levenshtein", "return 1 + levenshtein(source[1:], target[1:])", "return levenshtein(source[1:], target[1:])", "reduce_expression"),
    ("bugsinpy/pandas-48", "except ValueError:", "except (ValueError, TypeError):", "add_elements"),
    ("quixbugs/get_factors", "return []", "return [n]", "add_elements"),
    ("bugsinpy/keras-38", "input_shape = (input_shape[0], input_shape[1], output_dim)", "input_shape = (input_shape[0], output_dim)", "remove_elements"),
    ("bugsinpy/scrapy-4", "exc_info = failure.value, failure.type, failure.getTracebackObject()", "exc_info = failure.type, failure.value, failure.getTracebackObject()", "swap_elements"),
]  # fmt: skip


@pytest.mark.parametrize(("pair_id", "buggy", "fixed", "expected"), FIXTURES, ids=[f[0] for f in FIXTURES])
def test_classifies_known_pairs(pair_id: str, buggy: str, fixed: str, expected: str) -> None:
    assert expected in CATEGORIES
    assert classify_pair(buggy, fixed) == expected


@pytest.mark.parametrize(
    ("buggy", "fixed", "expected"),
    [
        ("x = a  +  b", "x = a + b  # tidy", "same"),
        ("if not ready:", "if ready:", "change_unary_operator"),
        ("while True:", "while queue:", "other"),
        # Fragments that do not parse fall back to tokens.
        ("current < self.target):", "current <= self.target):", "change_operator"),
        ("foo(a, b", "foo(a, c", "change_identifier"),
        ("(?:[^#?]*\\#!/)?", "(?:[^#]*?\\#!/)?", "other"),
    ],
)
def test_edge_cases(buggy: str, fixed: str, expected: str) -> None:
    assert classify_pair(buggy, fixed) == expected


def test_condition_categories_apply_only_to_conditions() -> None:
    assert classify_pair("ok = a and b", "ok = a") == "reduce_expression"
