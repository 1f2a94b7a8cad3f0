"""The objectives on hand-made tensors: each term has a gradient on the adapter and moves it the right way.

The "adapter" here is a trainable matrix added to fixed base logits, the smallest stand-in for a
LoRA update: logits = base + features @ adapter.
"""

from __future__ import annotations

import pytest
import torch

from hotfix_engine import objectives as obj

VOCAB = 6


def make(seed: int = 0, rows: int = 3):
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(rows, VOCAB, generator=generator)
    features = torch.randn(rows, 4, generator=generator)
    adapter = torch.nn.Parameter(torch.zeros(4, VOCAB))
    return base, features, adapter


def step(adapter: torch.nn.Parameter, loss: torch.Tensor, lr: float = 0.5) -> torch.Tensor:
    (grad,) = torch.autograd.grad(loss, adapter)
    with torch.no_grad():
        adapter -= lr * grad
    return grad


def probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return obj.token_logprobs(logits, targets).exp()


TARGETS = torch.tensor([1, 2, 3])
ALL = torch.tensor([True, True, True])


def test_learn_raises_the_probability_of_the_fixed_tokens():
    base, features, adapter = make()
    before = probs(base, TARGETS)
    grad = step(adapter, obj.learn_ce(base + features @ adapter, TARGETS, ALL))
    assert grad.abs().sum() > 0
    after = probs(base + features @ adapter, TARGETS).detach()
    assert (after > before).all()


def test_learn_ignores_masked_out_positions():
    base, _features, _adapter = make()
    logits = base.clone().requires_grad_(True)
    mask = torch.tensor([False, True, False])
    (grad,) = torch.autograd.grad(obj.learn_ce(logits, TARGETS, mask), logits)
    assert grad[0].abs().sum() == 0 and grad[2].abs().sum() == 0 and grad[1].abs().sum() > 0


def test_unlikelihood_lowers_the_probability_of_the_buggy_tokens():
    base, features, adapter = make(1)
    before = probs(base, TARGETS)
    grad = step(adapter, obj.unlearn_unlikelihood(base + features @ adapter, TARGETS, ALL), lr=2.0)
    assert grad.abs().sum() > 0
    assert (probs(base + features @ adapter, TARGETS).detach() < before).all()


def test_unlikelihood_is_finite_when_the_model_is_certain():
    logits = torch.full((1, VOCAB), -50.0)
    logits[0, 2] = 50.0
    logits.requires_grad_(True)
    loss = obj.unlearn_unlikelihood(logits, torch.tensor([2]), torch.tensor([True]))
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_gradient_ascent_lowers_the_probability_and_stops_at_the_floor():
    base, features, adapter = make(2)
    before = probs(base, TARGETS)
    step(adapter, obj.unlearn_gradient_ascent(base + features @ adapter, TARGETS, ALL), lr=1.0)
    assert (probs(base + features @ adapter, TARGETS).detach() < before).all()
    # A token already below the floor (nll > max_nll) contributes no gradient: the stop rule.
    logits = torch.zeros(1, VOCAB)
    logits[0, 0] = 20.0
    logits.requires_grad_(True)
    loss = obj.unlearn_gradient_ascent(logits, torch.tensor([3]), torch.tensor([True]), max_nll=6.0)
    (grad,) = torch.autograd.grad(loss, logits)
    assert grad.abs().sum() == 0


def test_npo_lowers_the_probability_and_its_gradient_fades_below_the_reference():
    base, features, adapter = make(3)
    ref = obj.token_logprobs(base, TARGETS)
    before = ref.exp()
    step(adapter, obj.unlearn_npo(base + features @ adapter, ref, TARGETS, ALL), lr=1.0)
    assert (probs(base + features @ adapter, TARGETS).detach() < before).all()

    def grad_norm(shift: float) -> float:
        logits = base.clone()
        logits[torch.arange(3), TARGETS] += shift
        logits.requires_grad_(True)
        (grad,) = torch.autograd.grad(obj.unlearn_npo(logits, ref, TARGETS, ALL, beta=1.0), logits)
        return float(grad.norm())

    assert grad_norm(-10.0) < 0.1 * grad_norm(0.0)  # bounded: far below the reference, it stops pushing


def test_retain_kl_pulls_the_adapter_back_toward_the_base():
    base, features, adapter = make(4)
    with torch.no_grad():
        adapter += torch.randn(4, VOCAB, generator=torch.Generator().manual_seed(9))
    kl_before = obj.retain_kl(base + features @ adapter, base, ALL).item()
    grad = step(adapter, obj.retain_kl(base + features @ adapter, base, ALL), lr=0.2)
    assert grad.abs().sum() > 0  # the paper's own code had a retain term with no gradient
    assert obj.retain_kl(base + features @ adapter, base, ALL).item() < kl_before


def test_retain_kl_is_zero_at_the_base_and_sends_no_gradient_to_the_reference():
    base, _features, _adapter = make(5)
    reference = base.clone().requires_grad_(True)
    logits = base.clone().requires_grad_(True)
    loss = obj.retain_kl(logits, reference, ALL)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert reference.grad is None


def test_retain_ce_raises_the_probability_of_ordinary_code():
    base, features, adapter = make(6)
    before = probs(base, TARGETS)
    step(adapter, obj.retain_ce(base + features @ adapter, TARGETS, ALL))
    assert (probs(base + features @ adapter, TARGETS).detach() > before).all()


def test_weights_are_validated_by_name():
    with pytest.raises(ValueError, match="valid: learn, unlearn, retain"):
        obj.validate_weights({"learn": 1.0, "forget": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        obj.validate_weights({"learn": -1.0})
    with pytest.raises(ValueError, match="zero"):
        obj.validate_weights({"learn": 0.0})
    assert obj.parse_weights("learn,unlearn") == {"learn": 1.0, "unlearn": 0.2}
    assert obj.parse_weights("learn,retain", "retain=0.25") == {"learn": 1.0, "retain": 0.25}
    with pytest.raises(ValueError, match="NAME=NUMBER"):
        obj.parse_weights("learn", "learn:1")
    with pytest.raises(ValueError, match="not selected"):
        obj.parse_weights("learn", "unlearn=1")


def test_compose_is_the_weighted_sum_and_refuses_a_missing_term():
    terms = {"learn": torch.tensor(2.0), "unlearn": torch.tensor(4.0)}
    assert obj.compose(terms, {"learn": 1.0, "unlearn": 0.5}).item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="retain"):
        obj.compose(terms, {"learn": 1.0, "retain": 1.0})


def test_retain_hidden_pulls_hidden_states_back_toward_the_base():
    generator = torch.Generator().manual_seed(11)
    base_hidden = torch.randn(3, 8, generator=generator)
    features = torch.randn(3, 4, generator=generator)
    adapter = torch.nn.Parameter(torch.randn(4, 8, generator=generator))
    before = obj.retain_hidden(base_hidden + features @ adapter, base_hidden, ALL).item()
    grad = step(adapter, obj.retain_hidden(base_hidden + features @ adapter, base_hidden, ALL), lr=0.1)
    assert grad.abs().sum() > 0
    assert obj.retain_hidden(base_hidden + features @ adapter, base_hidden, ALL).item() < before
    assert obj.retain_hidden(base_hidden, base_hidden, ALL).item() == 0.0
