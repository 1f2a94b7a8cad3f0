"""The ablation plan and runner at tiny scale: each configuration trains what its row says, a step
trains for every one on the tiny model, and a run writes its table, resumes, and survives a failure."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from tiny_model import build_model, build_tokenizer

from hotfix_engine import ablations as ab
from hotfix_engine import objectives
from hotfix_engine.errors import TrainingError
from hotfix_engine.evaluation.bugrates import BugRates, PairRates
from hotfix_engine.evaluation.evaluate import EvalConfig, EvalRun
from hotfix_engine.evaluation.lines import LineTask
from hotfix_engine.evaluation.problems import Problem
from hotfix_engine.evaluation.sampling import Sampling
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.train_config import DEFAULT_LR, TrainConfig

TINY = TrainConfig(
    epochs=1,
    batch_size=8,
    nice=0,
    threads=1,
    window_tokens=24,
    retain_positions=8,
    retain_windows=4,
    max_context=32,
)
TESTS = "assert add(1, 2) == 3"
TRAIN = [
    BugFixPair(prefix="def add(a, b):\n", buggy="    return a - b", fixed="    return a + b", id="t1",
               extra={"problem": "p/add"}),
    BugFixPair(prefix="def is_none(value):\n", buggy="    if value == None:", fixed="    if value is None:",
               id="t2", extra={"problem": "p/none"}),
]  # fmt: skip
TEST = [
    BugFixPair(prefix="def add(a, b):\n", buggy="    return a * b", fixed="    return a + b", id="h1",
               tests=TESTS, extra={"problem": "p/held"}),
    BugFixPair(prefix="def find(items, target):\n", buggy="    return -2", fixed="    return -1", id="h2",
               extra={"problem": "p/find"}),
]  # fmt: skip
ADD = Problem(id="p/add", header="", solution="def add(a, b):\n    return a + b", tests=TESTS)
EVAL = EvalConfig(
    Sampling(samples=2, max_new_tokens=6),
    humaneval_max_new_tokens=8,
    perplexity_texts=1,
    perplexity_tokens=48,
)


def test_each_configuration_trains_what_its_row_says():
    plan = ab.ablations(TINY)
    by = {(a.group, a.name): a.config for a in plan}
    d = objectives.DEFAULT_WEIGHTS
    assert by["objectives", "learn"].weight_map == {"learn": 1.0}
    assert by["objectives", "learn+unlearn"].weight_map == {"learn": 1.0, "unlearn": d["unlearn"]}
    assert by["objectives", "learn+retain"].weight_map == {"learn": 1.0, "retain": d["retain"]}
    assert by["objectives", "learn+unlearn+retain"].weight_map == d
    assert all(by["objectives", n].method == "lora" for n in ab.OBJECTIVE_SETS)
    for method in ("lora", "ia3", "prefix"):
        config = by["methods", method]
        assert (config.method, config.lr, config.weight_map) == (method, DEFAULT_LR[method], d)
    grid = [a.config for a in plan if a.group == "lora-grid"]
    assert sorted((c.lora_r, c.lora_alpha, c.lr) for c in grid) == sorted(
        (r, 2 * r, lr) for r in ab.RANKS for lr in ab.LEARNING_RATES
    )
    assert all(c.method == "lora" and c.weight_map == d for c in grid)
    # The product's configuration is one training, whichever groups name it.
    main = by["main", ab.PRIMARY]
    assert main == by["objectives", ab.PRIMARY] == by["methods", "lora"] == by["lora-grid", "r8 lr0.001"]
    assert main == replace(TINY, lr=DEFAULT_LR["lora"])
    unique = {a.config for a in plan}
    assert len(unique) == 4 + 2 + 8
    assert len({ab.slug(c) for c in unique}) == len(unique)
    assert [a.name for a in ab.ablations(TINY, groups=["main"])] == [ab.PRIMARY]
    with pytest.raises(ValueError, match="unknown group"):
        ab.ablations(TINY, groups=["rank"])


def test_one_step_trains_for_every_configuration_on_the_tiny_model():
    from peft.tuners.tuners_utils import BaseTunerLayer

    tokenizer = build_tokenizer()
    model = build_model(tokenizer)
    cache: dict = {}
    for config in dict.fromkeys(a.config for a in ab.ablations(TINY)):
        result = ab.train_configuration(model, tokenizer, TRAIN, config, data_cache=cache)
        assert result.steps == 1
        logged = {k for k in result.history[-1] if k in objectives.OBJECTIVES}
        assert logged == set(config.weight_map), ab.slug(config)
        peft_config = result.model.peft_config["default"]
        assert peft_config.peft_type.value.lower().startswith(config.method)
        if config.method == "lora":
            assert (peft_config.r, peft_config.lora_alpha) == (config.lora_r, config.lora_alpha)
        model = result.model
        from hotfix_engine.adapters_slot import unwrap

        model = unwrap(model)
        assert not any(isinstance(m, BaseTunerLayer) for m in model.modules())
    assert len(cache) == 1  # every configuration trains on the same tokenised data


def test_compare_measurements_pairs_items_and_reads_as_evaluate_compare():
    from hotfix_engine.starter import decide_starter

    def m(label, buggy, fixed, he, ppl):
        return {
            "label": label,
            "pair_set": "test",
            "pairs": [{"key": f"k{i}", "samples": 10, "buggy": b, "fixed": f} for i, (b, f) in enumerate(zip(buggy, fixed, strict=True))],
            "tests": [{"key": "k0", "samples": 10, "passed": fixed[0]}],
            "humaneval": [{"id": f"h{i}", "passed": p} for i, p in enumerate(he)],
            "lines": [{"id": f"l{i}", "passed": p, "exact": p} for i, p in enumerate(he)],
            "perplexity": ppl,
        }  # fmt: skip

    base = m("base", [5] * 8, [1] * 8, [True, False] * 4, 7.0)
    after = m("after", [1] * 8, [6] * 8, [True, False] * 4, 7.1)
    after["pairs"].reverse()  # matched by key, not by position
    c = ab.compare_measurements(base, after)
    assert c["pair_sets"]["test"]["buggy"]["difference"] == pytest.approx(-0.4)
    assert c["pair_sets"]["test"]["fixed"]["after"] == pytest.approx(0.6)
    assert c["tests"]["after"] == pytest.approx(0.6)
    assert c["humaneval"]["p_mcnemar"] == 1.0 and c["lines"]["pass_rate"]["difference"] == 0
    assert c["perplexity"]["relative"] == pytest.approx(0.1 / 7.0)
    decision = decide_starter(c, train_pairs=300)
    assert decision.failed() == ["evidence"]  # 8 pairs, every pair improved: exact sign-flip p = 1/128
    summary = ab.summarise(after)
    assert summary["buggy"]["rate"] == pytest.approx(0.1) and summary["humaneval_pass@1"]["n"] == 8
    other = dict(after, pairs=after["pairs"][:-1])
    with pytest.raises(ValueError, match="cannot be paired"):
        ab.compare_measurements(base, other)


def test_a_run_writes_its_table_and_the_next_one_reads_it_back(tmp_path, monkeypatch):
    tokenizer = build_tokenizer()
    model = build_model(tokenizer)
    plan = ab.ablations(TINY, groups=["main", "methods"], methods=["lora", "ia3"])
    said: list[str] = []
    kwargs = dict(
        eval_config=EVAL,
        humaneval_problems=[ADD],
        line_tasks=[LineTask(ADD, 1)],
        settings={"model": "tiny"},
        say=said.append,
    )
    table = ab.run_ablations(model, tokenizer, plan, TRAIN, TEST, tmp_path, **kwargs)
    assert (
        sum(line.startswith("[") and "training" in line for line in said) == 2
    )  # main is lora: trained once
    assert [(r["group"], r["name"], r["primary"]) for r in table["rows"]] == [
        ("main", ab.PRIMARY, True),
        ("methods", "lora", False),
        ("methods", "ia3", False),
    ]
    row = table["rows"][0]
    assert row["slug"] == table["rows"][1]["slug"]
    assert (tmp_path / "adapters" / row["slug"] / "adapter_config.json").exists()
    assert set(row["comparison"]) >= {"pair_sets", "tests", "humaneval", "lines", "perplexity"}
    assert row["summary"]["buggy"]["n"] == 2 and row["summary"]["tests_pass"]["n"] == 1
    assert row["starter"]["meets"] is False and "evidence" in row["starter"]["failed"]
    assert table["settings"]["test_problems"] == 2 and table["settings"]["model"] == "tiny"
    written = json.loads((tmp_path / "ablations.json").read_text())
    assert [r["name"] for r in written["rows"]] == [r["name"] for r in table["rows"]]
    md = (tmp_path / "ablations.md").read_text()
    assert "| methods | ia3" in md and "## Starter decision (primary row)" in md

    def no_training(*args, **kwargs):
        raise AssertionError("a configuration measured before was trained again")

    monkeypatch.setattr(ab, "train_configuration", no_training)
    again = ab.run_ablations(model, tokenizer, plan, TRAIN, TEST, tmp_path, **kwargs)
    assert [r["summary"] for r in again["rows"]] == [r["summary"] for r in table["rows"]]


def fake_evaluate(model, tokenizer, pair_sets, config, *, label="base", **kwargs):
    """Rates from the label alone: the base writes the bug half the time, an adapter a tenth."""
    buggy = 5 if label == "base" else 1
    rows = [PairRates(p.key, p.source, p.pattern, 10, buggy, 10 - buggy) for p in pair_sets["test"]]
    run = EvalRun(label=label, rates={"test": BugRates.from_pairs(rows)})
    run.perplexity = 7.0
    return run


def test_a_configuration_that_fails_to_train_is_recorded_and_the_rest_run(tmp_path, monkeypatch):
    from peft.tuners.tuners_utils import BaseTunerLayer

    from hotfix_engine import trainer
    from hotfix_engine.evaluation import evaluate as evaluate_module

    real_train = trainer.train

    def diverge(step, total, row):
        raise TrainingError("the loss diverged (not finite); lower the learning rate")

    def train(model, tokenizer, data, config, **kwargs):
        if config.lr == 3e-3:  # dies at its first step, with the base wrapped in place
            kwargs["on_step"] = diverge
        return real_train(model, tokenizer, data, config, **kwargs)

    monkeypatch.setattr(trainer, "train", train)
    monkeypatch.setattr(evaluate_module, "evaluate", fake_evaluate)
    monkeypatch.setattr(ab, "adapter_reaches_sampler", lambda *a: True)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer)
    plan = ab.ablations(TINY, groups=["lora-grid"], ranks=[4], learning_rates=[1e-3, 3e-3, 1e-2])
    table = ab.run_ablations(
        model, tokenizer, plan, TRAIN, TEST, tmp_path, eval_config=EVAL, say=lambda _: None
    )
    failed = [r for r in table["rows"] if "error" in r]
    assert [r["name"] for r in failed] == ["r4 lr0.003"] and "diverged" in failed[0]["error"]
    assert [r["summary"]["buggy"]["rate"] for r in table["rows"] if "error" not in r] == [0.1, 0.1]
    assert not any(isinstance(m, BaseTunerLayer) for m in model.modules())
    assert "training failed: the loss diverged" in (tmp_path / "ablations.md").read_text()
