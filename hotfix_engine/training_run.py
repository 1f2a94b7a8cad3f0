"""One hotfix run, start to end: measure the current version, train, gate, publish.

`hotfix train` calls :func:`train_and_publish`; the daemon and the server start that command in a
process of its own (``background.py``). The training itself is ``trainer.py``, the gate's evidence
``gate.py``, versions and the ``current`` pointer ``adapters.py``. This module holds the order they
run in, the data folder's training lock for the whole run, the status other processes read
(``trainer_status.py``), and the cleanup that leaves no half-written version and no adapter layers on
the base model whatever fails.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from hotfix_engine import gate, gguf_lora
from hotfix_engine.adapters import AdapterRegistry, kill_point
from hotfix_engine.adapters_slot import unwrap
from hotfix_engine.errors import TrainingError
from hotfix_engine.gate_cache import GateCache
from hotfix_engine.models import gguf_file
from hotfix_engine.paths import private_dir
from hotfix_engine.train_config import TrainConfig
from hotfix_engine.train_data import TrainingData, pairs_hash, retention_probe_texts
from hotfix_engine.trainer import TrainResult, lower_priority, save_adapter, train
from hotfix_engine.trainer_status import TRAIN_BUSY, train_lock_path, write_status

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """What a run produced: the new version (published or not), the gate's decision, the training log."""

    version: Any  # AdapterVersion
    decision: Any  # GateDecision | None (None: not gated)
    made_current: bool
    result: TrainResult


def measure_version(
    model: Any,
    tokenizer: Any,
    folder: Path | None,
    measure: Any,
    **kwargs: Any,
) -> Any:
    """Measure the base model with the adapter in ``folder`` (None: no adapter), leaving the base as it was."""
    if folder is None:
        return measure(model, tokenizer, **kwargs)
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, str(folder))
    except Exception as exc:
        raise TrainingError(f"cannot load the current adapter ({folder}): {exc}") from None
    try:
        peft_model.eval()
        return measure(peft_model, tokenizer, **kwargs)
    finally:
        unwrap(peft_model)


def train_and_publish(
    loaded: Any,
    data: TrainingData,
    held_out: Sequence[Any],
    config: TrainConfig,
    *,
    taught: Sequence[Any] = (),
    data_dir: Path,
    publish: bool = True,
    adapter_base: str = "current",
    gate_config: Any = None,
    measure: Any = None,
    force: bool = False,
    progress: bool = True,
    cancel: threading.Event | None = None,
    extra_manifest: dict[str, Any] | None = None,
) -> RunOutcome:
    """The whole `hotfix train`: one run at a time per data folder, status kept for other processes.

    The gate (hotfix_engine.gate) weighs the ``taught`` pairs (what the version was trained on), the
    ``held_out`` ones (never seen) and retention; with neither kind of pair the gate is skipped and
    the version is kept unpublished. The current version's retention is measured once and reused by
    later runs (``gate_cache.py``). ``measure`` replaces :func:`hotfix_engine.gate.measure` (tests
    inject a fake). Any failure leaves no version behind and ``current`` untouched.
    """
    if adapter_base not in ("current", "none"):
        raise ValueError(f"unknown adapter base {adapter_base!r}; valid: current, none")
    gate_config = gate_config or gate.GateConfig()
    measure = measure or gate.measure
    model, tokenizer = loaded.model, loaded.tokenizer
    registry = AdapterRegistry(data_dir, loaded.key)
    lock_path = train_lock_path(Path(data_dir))
    private_dir(lock_path.parent)
    lock = FileLock(str(lock_path), mode=0o600)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TrainingError(TRAIN_BUSY) from None  # the daemon recognises this line and waits
    lower_priority(config)  # the gate's measurements too: they are most of a small run
    started = time.time()
    staged: Path | None = None
    peft_model = None
    try:
        write_status(
            data_dir,
            state="evaluating",
            progress=0.0,
            message="measuring the current version",
            pid=os.getpid(),
            started=started,
        )
        current = registry.current()
        probes = retention_probe_texts(gate_config.probe_texts)
        before = None
        gated = bool(held_out or taught)
        common = {
            "taught": taught,
            "held_out": held_out,
            "probes": probes,
            "config": gate_config,
            "fim": getattr(loaded, "fim", None),
        }
        cache = GateCache(data_dir, loaded.key, current.version if current else None, gate_config, probes)
        t0 = time.monotonic()
        if gated:
            before = measure_version(
                model, tokenizer, current.path if current else None, measure, retention=cache.load(), **common
            )
            cache.save(before.retention)
        measure_before_s = time.monotonic() - t0

        def on_step(step: int, total: int, row: dict[str, float]) -> None:
            kill_point("train")
            if step == 1 or step == total or step % 5 == 0:
                write_status(
                    data_dir,
                    state="training",
                    progress=step / total,
                    message=f"step {step}/{total}, loss {row['loss']:.3f}",
                )

        write_status(data_dir, state="training", progress=0.0, message="training")
        init = current.path if (adapter_base == "current" and current is not None) else None
        result = train(
            model,
            tokenizer,
            data,
            config,
            init_adapter=init,
            progress=progress,
            on_step=on_step,
            cancel=cancel,
        )
        peft_model = result.model
        decision = None
        t0 = time.monotonic()
        if gated and before is not None:
            write_status(data_dir, state="evaluating", progress=None, message="measuring the new version")
            peft_model.eval()
            after = measure(peft_model, tokenizer, **common)
            decision = gate.decide(after, before, gate_config)
        measure_after_s = time.monotonic() - t0
        accepted = bool(decision and decision.accepted) or force
        if decision is None:
            reason = "not gated (no pairs to judge it on)" + ("; published with --force" if force else "")
        else:
            reason = decision.reason + ("; published with --force" if force and not decision.accepted else "")
        write_status(data_dir, state="publishing", progress=None, message="writing the new version")
        staged = registry.staging()
        save_adapter(peft_model, staged)
        gguf_error = None
        if config.method == "lora":
            # Written inside the staged folder, so the version appears with its llama.cpp form or not at all.
            try:
                base_gguf = gguf_file(loaded.spec)
                if base_gguf is not None:
                    gguf_lora.export_gguf_lora(staged, base_gguf, staged / gguf_lora.GGUF_LORA_FILE)
            except Exception as exc:  # the peft form is the version; llama.cpp can convert it later
                log.warning("could not write the GGUF form of the adapter: %s", exc)
                gguf_error = str(exc) or type(exc).__name__
        manifest = {
            "model": loaded.spec,
            "model_key": loaded.key,
            "method": config.method,
            "config": config.to_json(),
            "objectives": config.weight_map,
            "data": {
                **data.hashes,
                "held_out": pairs_hash(held_out),
                "taught": pairs_hash(taught),
                "n_taught": len(taught),
                **{f"n_{k}": v for k, v in data.counts.items()},
                "n_held_out": len(held_out),
            },
            "metrics": {"train": result.summary(), "gate": decision.to_json() if decision else None},
            "parent": current.version if current else None,
            "continued_from": current.version if (init is not None and current is not None) else None,
            "time_s": {
                "train": round(result.seconds, 2),
                "measure_current": round(measure_before_s, 2),
                "measure_new": round(measure_after_s, 2),
                "total": round(time.time() - started, 2),
            },
            "gate": {
                "accepted": bool(decision and decision.accepted),
                "reason": reason,
                "forced": force,
                "evidence": [e.line() for e in decision.evidence] if decision else [],
                "seconds": round(measure_before_s + measure_after_s, 2),
            },
            "published": accepted,
            **({"gguf_lora": gguf_error} if gguf_error else {}),
            **(extra_manifest or {}),
        }
        kill_point("staged")
        # The records go inside the version, so that marking them consumed survives a kill after the rename.
        version = registry.add(staged, manifest, make_current=publish and accepted, consumed=data.record_ids)
        staged = None
        made_current = publish and accepted
        summary = {
            "version": version.version,
            "published": accepted,
            "current": made_current,
            "reason": reason,
        }
        write_status(data_dir, state="idle", progress=None, message=reason, pid=None, last_result=summary)
        return RunOutcome(version, decision, made_current, result)
    except BaseException as exc:
        message = str(exc) if isinstance(exc, Exception) else "interrupted"
        write_status(data_dir, state="failed", progress=None, message=message or type(exc).__name__, pid=None)
        raise
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        if peft_model is not None:
            unwrap(peft_model)
        lock.release()
