"""The shared token sampler: greedy, nucleus sampling without a full sort, and token healing's mask."""

from __future__ import annotations

import numpy as np

from hotfix_engine.picking import TOP_P_SHORTLIST, nucleus_keep, only_tokens_starting_with, pick_token


def test_greedy_takes_the_largest_logit() -> None:
    logits = np.array([0.1, 3.0, -2.0, 2.9], dtype=np.float32)
    assert pick_token(logits, 0.0, 1.0, None) == 1


def test_nucleus_sampling_draws_only_inside_the_nucleus() -> None:
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    logits = np.log(probs).astype(np.float32)
    rng = np.random.default_rng(0)
    drawn = {pick_token(logits, 1.0, 0.75, rng) for _ in range(400)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reach 0.75; the tail is never drawn


def test_nucleus_larger_than_the_shortlist_falls_back_to_the_whole_vocabulary() -> None:
    # A flat distribution over 3x the shortlist: the shortlist's mass is a third, short of top_p.
    logits = np.zeros(3 * TOP_P_SHORTLIST, dtype=np.float32)
    rng = np.random.default_rng(1)
    drawn = [pick_token(logits, 1.0, 0.95, rng) for _ in range(300)]
    assert max(drawn) >= TOP_P_SHORTLIST  # tokens outside the shortlist are reachable


def test_the_nucleus_rule_is_one_for_numpy_rows_and_torch_batches() -> None:
    """Serving (NumPy, one row) and evaluation (torch, a batch) cut the nucleus by the same rule."""
    import torch

    rows = np.array([[0.5, 0.3, 0.15, 0.05], [0.9, 0.05, 0.03, 0.02], [0.25, 0.25, 0.25, 0.25]])
    expected = [[True, True, False, False], [True, False, False, False], [True, True, True, False]]
    assert [nucleus_keep(row, 0.75).tolist() for row in rows] == expected
    assert nucleus_keep(torch.from_numpy(rows), 0.75).tolist() == expected
    assert nucleus_keep(rows, 1.0).all() and nucleus_keep(rows, 1e-9).sum() == len(rows)


def test_the_same_seed_draws_the_same_tokens() -> None:
    logits = np.random.default_rng(2).standard_normal(50_000).astype(np.float32)
    first = [pick_token(logits, 0.8, 0.95, np.random.default_rng(7)) for _ in range(3)]
    again = [pick_token(logits, 0.8, 0.95, np.random.default_rng(7)) for _ in range(3)]
    assert first == again


def test_healing_keeps_only_tokens_that_start_with_the_text_and_always_its_own() -> None:
    vocab = ["re", "ret", "return", "x", " ", "r"]
    logits = np.array([1.0, 2.0, 3.0, 9.0, 8.0, 0.5], dtype=np.float32)
    masked = only_tokens_starting_with(logits, "re", vocab.__getitem__, lambda text: vocab.index(text))
    kept = {vocab[i] for i in np.flatnonzero(np.isfinite(masked))}
    assert kept == {"re", "ret", "return"}
    assert pick_token(masked, 0.0, 1.0, None) == vocab.index("return")
