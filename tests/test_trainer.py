"""Smoke training on the tiny model: every method moves its adapter and leaves the base frozen;
each objective term moves the adapter the right way; runs are reproducible; a run publishes
through the gate, and a failed or cancelled one leaves nothing half-written."""

from __future__ import annotations

import math
import os
import threading
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from tiny_model import build_model, build_tokenizer

from hotfix_engine import train_config, training_run
from hotfix_engine import trainer as tr
from hotfix_engine.adapters import AdapterRegistry
from hotfix_engine.adapters_slot import unwrap
from hotfix_engine.errors import Cancelled, TrainingError
from hotfix_engine.evaluation.retention_check import Retention
from hotfix_engine.gate import Measurement, PairScore
from hotfix_engine.pairs import BugFixPair, write_pairs
from hotfix_engine.train_data import build_training_data
from hotfix_engine.trainer_status import read_status, write_status

PAIRS = [
    BugFixPair(prefix="def add(a, b):\n", buggy="    return a - b", fixed="    return a + b", id="add"),
    BugFixPair(prefix="def find(items, target):\n", buggy="    return -2", fixed="    return -1", id="find"),
    BugFixPair(
        prefix="def is_none(value):\n",
        buggy="    if value == None:",
        fixed="    if value is None:",
        id="none",
    ),
]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def data(tok):
    return build_training_data(tok, PAIRS, retain_windows=4, window_tokens=24)


def config(**changes) -> train_config.TrainConfig:
    base = dict(epochs=1, batch_size=1, nice=0, threads=1, window_tokens=24, retain_positions=8, lr=2e-2)
    base.update(changes)
    return train_config.TrainConfig(**base)


def adapter_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("method", train_config.METHODS)
def test_every_method_moves_its_adapter_and_keeps_the_base_frozen(tok, data, method):
    cfg = config(method=method, lr=5e-2)
    initial = adapter_state(
        tr.wrap_model(build_model(tok), cfg)
    )  # same seed -> the run's own initial adapter
    model = build_model(tok)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = tr.train(model, tok, data, cfg, progress=False)
    assert result.steps == 3
    trained = adapter_state(result.model)
    assert trained.keys() == initial.keys() and trained
    moved = [name for name in trained if not torch.equal(trained[name], initial[name])]
    assert len(moved) == len(trained), f"{method}: unmoved {set(trained) - set(moved)}"
    base = result.model.get_base_model()
    for name, param in base.named_parameters():
        if name in base_before:
            assert not param.requires_grad and torch.equal(param, base_before[name]), name
    assert {"learn", "unlearn", "retain", "loss"} <= set(result.history[-1])


def test_same_seed_same_adapter_other_seed_other_adapter(tok, data):
    def run(seed):
        return adapter_state(tr.train(build_model(tok), tok, data, config(seed=seed), progress=False).model)

    first, again, other = run(0), run(0), run(1)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert any(not torch.equal(first[name], other[name]) for name in first)


def peft_leftovers(model) -> list[str]:
    """What peft put into a base model: its tuner layers and its ``peft_config``."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    found = [name for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]
    return found + (["peft_config"] if hasattr(model, "peft_config") else [])


def fail_at_step(step, total, row):
    raise RuntimeError("simulated failure mid-run")


@pytest.mark.parametrize("method", train_config.METHODS)
def test_a_failed_run_leaves_the_base_model_as_it_was(tok, data, method):
    model = build_model(tok)
    modules = [name for name, _ in model.named_modules()]
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(Cancelled):
        tr.train(model, tok, data, config(method=method), cancel=cancelled, progress=False)
    assert peft_leftovers(model) == [] and [name for name, _ in model.named_modules()] == modules
    with pytest.raises(RuntimeError, match="simulated"):
        tr.train(model, tok, data, config(method=method), on_step=fail_at_step, progress=False)
    assert peft_leftovers(model) == [] and [name for name, _ in model.named_modules()] == modules
    # The same base trains again exactly as a fresh one: nothing of the failed runs is left in it.
    again = adapter_state(tr.train(model, tok, data, config(method=method), progress=False).model)
    fresh = adapter_state(tr.train(build_model(tok), tok, data, config(method=method), progress=False).model)
    assert again.keys() == fresh.keys() and all(torch.equal(again[k], fresh[k]) for k in fresh)


def test_unwrapping_a_trained_adapter_gives_the_base_back(tok, data):
    model = build_model(tok)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    result = tr.train(model, tok, data, config(), progress=False)
    assert peft_leftovers(model)  # LoRA wraps the base's layers in place
    assert unwrap(result.model) is model and peft_leftovers(model) == []
    after = dict(model.named_parameters())
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def measure_terms(model, tok, data, cfg) -> dict[str, float]:
    with torch.no_grad():
        terms = tr.step_terms(model, list(data.examples), list(data.retain[:2]), cfg, tok.pad_token_id)
    return {name: value.item() for name, value in terms.items()}


def test_each_term_moves_the_adapter_the_right_way(tok, data, tmp_path):
    all_terms = (("learn", 1.0), ("unlearn", 1.0), ("retain", 1.0))
    probe = config(weights=all_terms)

    # learn alone lowers the fixed code's cross-entropy.
    result = tr.train(
        build_model(tok), tok, data, config(weights=(("learn", 1.0),), epochs=3), progress=False
    )
    with torch.no_grad(), result.model.disable_adapter():
        base_terms = measure_terms(result.model, tok, data, probe)
    learnt = measure_terms(result.model, tok, data, probe)
    assert learnt["learn"] < base_terms["learn"]
    assert learnt["retain"] > 0.0  # the adapter moved away from the base on ordinary code

    # retain alone, continuing from there, pulls the adapter back toward the base.
    folder = tmp_path / "learnt"
    tr.save_adapter(result.model, folder)
    retained = tr.train(
        build_model(tok),
        tok,
        data,
        config(weights=(("retain", 1.0),), epochs=3),
        init_adapter=folder,
        progress=False,
    )
    assert measure_terms(retained.model, tok, data, probe)["retain"] < learnt["retain"]
    hidden_probe = config(weights=(("retain", 1.0),), retain_loss="hidden")
    held = tr.train(
        build_model(tok),
        tok,
        data,
        config(weights=(("retain", 1.0),), retain_loss="hidden", epochs=3),
        init_adapter=folder,
        progress=False,
    )
    assert (
        measure_terms(held.model, tok, data, hidden_probe)["retain"]
        < measure_terms(result.model, tok, data, hidden_probe)["retain"]
    )

    # Teach the model the buggy lines, then unlearn alone (unlikelihood) makes them less likely.
    swapped = [BugFixPair(prefix=p.prefix, buggy=p.fixed, fixed=p.buggy, id=p.id) for p in PAIRS]
    buggy_data = build_training_data(tok, swapped, retain_windows=2, window_tokens=24)
    taught = tr.train(
        build_model(tok), tok, buggy_data, config(weights=(("learn", 1.0),), epochs=6), progress=False
    )
    tr.save_adapter(taught.model, tmp_path / "taught")
    before = measure_terms(taught.model, tok, data, probe)["unlearn"]
    unlearnt = tr.train(
        build_model(tok),
        tok,
        data,
        config(weights=(("unlearn", 1.0),), epochs=3),
        init_adapter=tmp_path / "taught",
        progress=False,
    )
    assert measure_terms(unlearnt.model, tok, data, probe)["unlearn"] < before


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_sharing_the_context_gives_the_same_losses_as_two_full_sequences(tok, data, method):
    result = tr.train(build_model(tok), tok, data, config(method=method, lr=5e-2, epochs=2), progress=False)
    all_terms = (("learn", 1.0), ("unlearn", 1.0), ("retain", 1.0))
    shared = measure_terms(result.model, tok, data, config(method=method, weights=all_terms))
    plain = measure_terms(
        result.model, tok, data, config(method=method, weights=all_terms, share_context=False)
    )
    assert shared.keys() == plain.keys() == {"learn", "unlearn", "retain"}
    for name in shared:
        assert shared[name] == pytest.approx(plain[name], rel=1e-4, abs=1e-6), name


def test_config_is_validated_by_name():
    with pytest.raises(ValueError, match="valid: lora, ia3, prefix, prompt"):
        train_config.TrainConfig(method="qlora")
    with pytest.raises(ValueError, match="valid: learn, unlearn, retain"):
        train_config.TrainConfig(weights=(("forget", 1.0),))
    with pytest.raises(ValueError, match="valid: unlikelihood, gradient_ascent, npo"):
        train_config.TrainConfig(unlearn_loss="ascent")
    with pytest.raises(ValueError, match="positive"):
        train_config.TrainConfig(epochs=0)
    assert train_config.TrainConfig().learning_rate == train_config.DEFAULT_LR["lora"]
    assert train_config.TrainConfig(method="prompt", lr=0.5).to_json()["lr"] == 0.5


def test_the_command_line_takes_its_defaults_from_the_config(capsys):
    from hotfix_engine.cli import main
    from hotfix_engine.cli import train as cli_train
    from hotfix_engine.objectives import RETAIN_LOSSES, UNLEARN_LOSSES

    # The objectives' names are copied (their module imports torch, `hotfix --help` must not).
    assert (cli_train.RETAIN_LOSSES, cli_train.UNLEARN_LOSSES) == (RETAIN_LOSSES, UNLEARN_LOSSES)
    seen = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli_train, "_run", lambda args, config, gate_config: seen.append(config) or 0)
        assert main(["train", "--pairs", "unused.jsonl"]) == 0
    # Every option left out gives exactly the config's default, and the help says which.
    assert seen == [train_config.TrainConfig()]
    weights = ",".join(f"{name}={weight:g}" for name, weight in tr.objectives.DEFAULT_WEIGHTS.items())
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert f"(default: {weights})" in " ".join(capsys.readouterr().out.split())


def test_the_command_lines_help_never_imports_torch():
    import subprocess
    import sys

    program = (
        "import contextlib, io, sys\n"
        "from hotfix_engine.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['train', '--help'])\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_target_modules_are_found_per_architecture(tok):
    model = build_model(tok)
    assert tr.target_modules_for(model, "lora") == (["q_proj", "k_proj", "v_proj", "o_proj"], [])
    targets, feedforward = tr.target_modules_for(model, "ia3")
    assert "down_proj" in targets and feedforward == ["down_proj"]


def test_a_diverging_or_empty_run_is_a_training_error(tok, data):
    from hotfix_engine.train_data import TrainingData

    with pytest.raises(TrainingError, match="no training examples"):
        tr.train(build_model(tok), tok, TrainingData((), ()), config(), progress=False)


# --- the whole run: gate, publish, failures ------------------------------------------------


class FakeMeasure:
    """Scores the current version first, then the candidate, with the given measurements."""

    def __init__(self, current: Measurement, candidate: Measurement):
        self.results = [current, candidate]
        self.calls = 0

    def __call__(self, model, tokenizer, *, taught, held_out, probes, config, retention=None, fim=None):
        assert (taught or held_out) and probes
        self.calls += 1
        if self.calls == 1:  # the current version's measurement; the candidate's is always fresh
            self.retention_given = retention
        return self.results[self.calls - 1]


def scored(buggy: float, fixed: float, prompts: int = 3, ppl: float = 10.0) -> Measurement:
    """Every taught prompt with these probabilities of the buggy and the fixed statement."""
    pair = PairScore("p", math.log(buggy), math.log(fixed))
    return Measurement(tuple(replace(pair, key=f"p{i}") for i in range(prompts)), (), Retention(ppl))


def better(current=(0.3, 0.1)):
    return FakeMeasure(scored(*current), scored(0.1, 0.4, ppl=10.1))


def worse():
    return FakeMeasure(scored(0.3, 0.1), scored(0.4, 0.1))


def loaded(tok):
    return SimpleNamespace(model=build_model(tok), tokenizer=tok, key="tiny", spec="tiny-spec")


def publish(tok, data, home, measure, **kwargs):
    return training_run.train_and_publish(
        loaded(tok),
        data,
        (),
        config(),
        taught=PAIRS,
        data_dir=home,
        measure=measure,
        progress=False,
        **kwargs,
    )


def test_a_better_version_is_published_and_a_worse_one_kept_unpublished(tok, data, tmp_path):
    home = tmp_path / "home"
    first = publish(tok, data, home, better())
    registry = AdapterRegistry(home, "tiny")
    assert first.made_current and first.version.version == "v0001"
    assert registry.current().version == "v0001"
    manifest = first.version.manifest
    assert manifest["published"] and manifest["gate"]["accepted"] and "improved" in manifest["gate"]["reason"]
    assert any(line.startswith("taught: pass") for line in manifest["gate"]["evidence"])
    assert manifest["parent"] is None and manifest["objectives"] == {
        "learn": 1.0,
        "unlearn": 0.2,
        "retain": 50.0,
    }
    assert manifest["config"]["method"] == "lora" and manifest["data"]["n_pairs"] == 3
    assert set(manifest["time_s"]) >= {"train", "total"} and manifest["metrics"]["train"]["steps"] == 3
    assert manifest["metrics"]["gate"]["candidate"]["taught"]["fixed_rate"] == pytest.approx(0.4)
    assert read_status(home)["state"] == "idle" and read_status(home)["last_result"]["version"] == "v0001"

    second = publish(tok, data, home, worse())
    assert not second.made_current and second.version.version == "v0002"
    assert not second.version.published and "no clear improvement" in second.version.reason
    assert second.version.manifest["parent"] == "v0001"
    assert second.version.manifest["continued_from"] == "v0001"
    assert registry.current().version == "v0001"

    forced = publish(tok, data, home, worse(), force=True, adapter_base="none")
    assert forced.made_current and "--force" in forced.version.reason
    assert forced.version.manifest["continued_from"] is None


def test_the_current_versions_retention_is_measured_once_and_reused(tok, data, tmp_path):
    home = tmp_path / "home"
    first = better()
    publish(tok, data, home, first)
    assert first.retention_given is None  # nothing cached for the bare model yet
    second = worse()
    publish(tok, data, home, second)  # against v0001, measured for the first time; not published
    assert second.retention_given is None
    third = worse()
    publish(tok, data, home, third)  # against v0001 again: its retention comes from the second run
    assert third.retention_given == Retention(10.0)


def test_no_publish_keeps_current_and_no_pairs_skip_the_gate(tok, data, tmp_path):
    home = tmp_path / "home"
    outcome = publish(tok, data, home, better(), publish=False)
    assert outcome.version.published and not outcome.made_current
    assert AdapterRegistry(home, "tiny").current() is None
    ungated = training_run.train_and_publish(loaded(tok), data, [], config(), data_dir=home, progress=False)
    assert (
        ungated.decision is None and not ungated.version.published and "not gated" in ungated.version.reason
    )


def test_a_cancelled_run_leaves_no_version_and_current_untouched(tok, data, tmp_path):
    home = tmp_path / "home"
    publish(tok, data, home, better())
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        publish(tok, data, home, better(), cancel=cancel)
    registry = AdapterRegistry(home, "tiny")
    assert [v.version for v in registry.versions()] == ["v0001"]
    assert registry.current().version == "v0001"
    assert not list(registry.root.glob(".tmp-*"))
    assert read_status(home)["state"] == "failed"


def test_one_run_at_a_time_per_data_folder(tok, data, tmp_path):
    from filelock import FileLock

    home = tmp_path / "home"
    (home / "trainer").mkdir(parents=True)
    with FileLock(str(home / "trainer" / "train.lock")), pytest.raises(TrainingError, match="in progress"):
        publish(tok, data, home, better())


def test_status_round_trips_and_a_dead_trainer_reads_as_failed(tmp_path):
    assert read_status(tmp_path)["state"] == "idle"
    write_status(tmp_path, state="training", progress=0.5, message="step 5/10", pid=os.getpid())
    status = read_status(tmp_path)
    assert status["state"] == "training" and status["progress"] == 0.5 and status["pid"] == os.getpid()
    write_status(tmp_path, pid=2**22 + 12345)  # no such process
    assert read_status(tmp_path)["state"] == "failed"
    with pytest.raises(ValueError, match="valid:"):
        write_status(tmp_path, colour="red")
    with pytest.raises(ValueError, match="valid:"):
        write_status(tmp_path, state="sleeping")


def test_hotfix_train_command_end_to_end(tiny_model_dir, tmp_path, capsys):
    from hotfix_engine.cli import main

    pairs = tmp_path / "pairs.jsonl"
    write_pairs(pairs, PAIRS)
    home = tmp_path / "home"
    argv = ["train", "--model", str(tiny_model_dir), "--data-dir", str(home), "--pairs", str(pairs)]
    code = main(argv + ["--epochs", "1", "--threads", "1", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and '"version": "v0001"' in out
    assert main(["adapters", "list", "--model", str(tiny_model_dir), "--data-dir", str(home)]) == 0
    assert "v0001" in capsys.readouterr().out


def test_hotfix_train_needs_data(tmp_path, capsys):
    from hotfix_engine.cli import main

    assert main(["train", "--data-dir", str(tmp_path)]) == 1
    assert "--pairs" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["train", "--data-dir", str(tmp_path), "--pairs", str(empty)]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["train", "--data-dir", str(tmp_path), "--pairs", str(empty), "--objectives", "forget"]) == 1
    assert "valid: learn, unlearn, retain" in capsys.readouterr().err


def test_hotfix_train_from_store_consumes_what_it_learnt(tiny_model_dir, tmp_path, capsys):
    from hotfix_engine.cli import main
    from hotfix_engine.store import Store

    home = tmp_path / "home"
    with Store.open(home) as store:
        assert store.add_pairs(PAIRS[:2], origin="edit") == 2
    argv = ["train", "--from-store", "--model", str(tiny_model_dir), "--data-dir", str(home)]
    argv += ["--epochs", "1", "--threads", "1"]
    assert main(argv + ["--force"]) == 0
    assert "v0001" in capsys.readouterr().out
    assert AdapterRegistry(home, tr_key(tiny_model_dir)).current_name() == "v0001"
    # Nothing new since v0001: continuing it has nothing to learn; a fresh adapter still can.
    assert main(argv) == 1
    assert "no new" in capsys.readouterr().err
    assert main(argv + ["--adapter-base", "none", "--no-publish"]) == 0


def tr_key(model_dir) -> str:
    from hotfix_engine.models import parse_spec

    return parse_spec(str(model_dir)).key


@pytest.mark.slow
def test_sigterm_mid_training_leaves_no_version_and_says_so(tiny_model_dir, tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    pairs = tmp_path / "pairs.jsonl"
    write_pairs(pairs, PAIRS)
    home = tmp_path / "home"
    command = [
        sys.executable,
        "-m",
        "hotfix_engine",
        "train",
        "--pairs",
        str(pairs),
        "--model",
        str(tiny_model_dir),
    ]
    command += ["--data-dir", str(home), "--epochs", "5000", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    status_file = home / "trainer" / "status.json"
    deadline = time.monotonic() + 120
    try:
        while True:
            assert child.poll() is None, child.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "training never started"
            if status_file.exists() and json.loads(status_file.read_text()).get("state") == "training":
                break
            time.sleep(0.1)
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    # 130: main() caught the interrupt. -SIGINT: it landed while the interpreter was already exiting
    # (seen once in CI); Python then exits by SIGINT. Either way the run was stopped, not finished.
    assert child.returncode in (130, -signal.SIGINT), child.returncode
    status = read_status(home)
    assert status["state"] == "failed" and status["message"] == "interrupted"
    registry = AdapterRegistry(home, tr_key(tiny_model_dir))
    assert registry.versions() == [] and registry.current() is None
    assert not registry.root.exists() or not list(registry.root.glob(".tmp-*"))


def test_objectives_that_fit_no_example_are_a_training_error(tok):
    deletions = [BugFixPair(prefix="x = 1\n", buggy="print(x)", fixed="", id="deleted")]
    data = build_training_data(tok, deletions, retain_windows=0, window_tokens=24)
    with pytest.raises(TrainingError, match="no step had anything to train"):
        tr.train(build_model(tok), tok, data, config(weights=(("learn", 1.0),)), progress=False)
