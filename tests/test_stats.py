"""Statistics on fixed inputs with known answers."""

from __future__ import annotations

import pytest

from hotfix_engine.evaluation import stats

SCIPY_EXAMPLE = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]


def test_wilcoxon_exact_matches_published_values():
    # scipy.stats.wilcoxon's documented example: statistic 24, p = 0.041259765625.
    assert stats.wilcoxon_signed_rank([0] * 15, SCIPY_EXAMPLE) == pytest.approx(0.041259765625)
    # All ten differences positive: only 2 of 1024 sign assignments are as extreme.
    assert stats.wilcoxon_signed_rank([0] * 10, list(range(1, 11))) == pytest.approx(2 / 1024)
    assert stats.wilcoxon_signed_rank([1, 2], [1, 2]) == 1.0


def test_wilcoxon_normal_approximation_is_close_to_exact():
    diffs = [((i * 7) % 13 + 1) * (1 if i % 3 else -1) + i / 100 for i in range(25)]
    exact = stats.wilcoxon_signed_rank([0] * 25, diffs)
    tied = diffs + [diffs[0]]  # one tie forces the approximation
    approx = stats.wilcoxon_signed_rank([0] * 26, tied)
    assert abs(exact - approx) < 0.1
    # Mostly tied zero/one rates, as per-pair bug rates often are.
    p = stats.wilcoxon_signed_rank([0.0] * 30, [0.1] * 12 + [0.0] * 18)
    assert 0 < p < 0.01


def test_sign_flip_exact_and_sampled():
    assert stats.sign_flip_test([0, 0, 0], [1, 2, 3]) == pytest.approx(2 / 8)
    assert stats.sign_flip_test([0, 0, 0, 0], [1, -1, 1, -1]) == pytest.approx(1.0)
    assert stats.sign_flip_test([0.5] * 5, [0.5] * 5) == 1.0
    many = stats.sign_flip_test([0.0] * 40, [0.3] * 30 + [-0.1] * 10, seed=1)
    assert many < 0.001
    assert many == stats.sign_flip_test([0.0] * 40, [0.3] * 30 + [-0.1] * 10, seed=1)


def test_mcnemar_exact():
    assert stats.mcnemar_exact([False] * 10, [True] * 10) == pytest.approx(2 / 1024)
    assert stats.mcnemar_exact(
        [False, False, False, True, True], [True, True, True, False, True]
    ) == pytest.approx(10 / 16)
    assert stats.mcnemar_exact([True, False], [True, False]) == 1.0
    with pytest.raises(ValueError, match="length"):
        stats.mcnemar_exact([True], [True, False])


def test_bootstrap_interval():
    assert stats.bootstrap_ci([0.25] * 8) == (0.25, 0.25)
    values = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    low, high = stats.bootstrap_ci(values, seed=3)
    assert low < stats.mean(values) < high
    assert 0.2 < low < 0.45 and 0.55 < high < 0.8
    assert stats.bootstrap_ci(values, seed=3) == (low, high)
    assert stats.bootstrap_ci([]) == (0.0, 0.0)


def test_compare_paired_and_relative_change():
    before = [0.0, 0.1, 0.0, 0.2]
    after = [0.2, 0.3, 0.1, 0.4]
    result = stats.compare_paired(before, after)
    assert result.n == 4
    assert result.difference == pytest.approx(0.175)
    assert result.relative == pytest.approx(0.175 / 0.075)
    assert result.ci_low <= result.difference <= result.ci_high
    assert result.p_sign_flip == pytest.approx(2 / 16)
    assert stats.relative_change(0.0, 0.5) is None
    assert stats.relative_change(0.5, 0.25) == pytest.approx(-0.5)
