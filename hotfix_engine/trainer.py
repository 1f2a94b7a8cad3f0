"""The hotfix training loop: one flat pass over learn / unlearn / retain batches (nanoGPT style).

Every hyperparameter lives in :class:`~hotfix_engine.train_config.TrainConfig` with a default and a
one-line reason. The base model stays frozen; peft wraps it with a LoRA (default), IA3, prefix or
prompt adapter, and the retain term's reference is the same model with the adapter disabled, so there
is never a second copy in memory. Losses are computed only at the positions that need them (Gemma's
262k-word output layer makes full logits the time and memory hog). A whole run (measure the current
version, train, gate, publish) is ``training_run.py``; this module only trains.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hotfix_engine import objectives
from hotfix_engine.adapters_slot import unwrap
from hotfix_engine.errors import Cancelled, TrainingError
from hotfix_engine.model_facts import cache_argument
from hotfix_engine.paths import private_dir
from hotfix_engine.train_config import TrainConfig
from hotfix_engine.train_data import Example, TokenSpan, TrainingData

log = logging.getLogger(__name__)

ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass
class TrainResult:
    """The trained adapter (still attached to the model) and how the run went."""

    model: Any  # the PeftModel
    steps: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)  # one row per step, every term apart

    def summary(self) -> dict[str, float]:
        """Mean of each logged term over the first and the last third of the steps: did each one move?"""
        if not self.history:
            return {}
        span = max(1, len(self.history) // 3)
        out: dict[str, float] = {"steps": float(self.steps), "seconds": round(self.seconds, 2)}
        for name in self.history[0]:
            if name in ("step", "epoch"):
                continue
            first = [row[name] for row in self.history[:span] if name in row]
            last = [row[name] for row in self.history[-span:] if name in row]
            if first and last:
                out[f"{name}_first"] = round(sum(first) / len(first), 5)
                out[f"{name}_last"] = round(sum(last) / len(last), 5)
        return out


_niced = False  # os.nice adds up: lower the priority once per process


def lower_priority(config: TrainConfig) -> int:
    """Bound torch's threads and lower the process priority; returns the thread count used.

    A niced run takes every core: the scheduler hands them to completions first (measured with a
    completion every few seconds: 1.03x their idle latency), and a run between them goes faster.
    Without nice it keeps to half the cores.
    """
    global _niced
    cores = os.cpu_count() or 2
    threads = config.threads or (cores if config.nice > 0 else max(1, cores // 2))
    torch.set_num_threads(threads)
    if config.nice > 0 and not _niced:
        try:
            os.nice(config.nice)
            _niced = True
        except OSError:  # not permitted on some systems; training still works, just at full priority
            log.warning("could not lower the training process's priority")
    return threads


def target_modules_for(model: Any, method: str) -> tuple[list[str], list[str]]:
    """(target modules, IA3 feed-forward modules) for this architecture.

    LoRA takes all four attention projections when the model names them the Llama/Gemma way (peft's
    own default is only q and v, which learnt single-line fixes more slowly here); otherwise peft's
    per-architecture table; otherwise every linear layer except the output head.
    """
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as IA3_FF,
    )
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as IA3_TARGETS,
    )
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as LORA_TARGETS,
    )

    model_type = getattr(model.config, "model_type", "")
    leaves = {
        name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)
    }
    leaves.discard("lm_head")
    if method == "ia3":
        if model_type in IA3_TARGETS:
            return list(IA3_TARGETS[model_type]), list(IA3_FF[model_type])
        ff = [name for name in ("down_proj", "fc2", "c_proj") if name in leaves][:1]
        targets = [name for name in ("k_proj", "v_proj") if name in leaves] + ff
        if not targets:
            raise TrainingError(f"no known IA3 target modules for model type {model_type!r}")
        return targets, ff
    if all(name in leaves for name in ATTENTION_PROJECTIONS):
        return list(ATTENTION_PROJECTIONS), []
    if model_type in LORA_TARGETS and isinstance(LORA_TARGETS[model_type], list):
        return list(LORA_TARGETS[model_type]), []
    if not leaves:
        raise TrainingError(f"model type {model_type!r} has no linear layers to adapt")
    return sorted(leaves), []


def peft_config_for(model: Any, config: TrainConfig) -> Any:
    """The peft config of the chosen method, with targets found for this architecture."""
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig, TaskType

    if config.method in ("lora", "ia3"):
        targets, ff = target_modules_for(model, config.method)
        if config.target_modules:
            targets = list(config.target_modules)
            ff = [name for name in ff if name in targets]
        if config.method == "lora":
            return LoraConfig(
                task_type=TaskType.CAUSAL_LM,
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                lora_dropout=0.0,  # no dropout: a run is deterministic for its seed
                target_modules=targets,
            )
        return IA3Config(task_type=TaskType.CAUSAL_LM, target_modules=targets, feedforward_modules=ff)
    if config.method == "prefix":
        return PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens)
    return PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=config.num_virtual_tokens,
        prompt_tuning_init="SAMPLE_VOCAB",  # real token embeddings start on the embedding manifold
    )


def wrap_model(model: Any, config: TrainConfig, init_adapter: Path | None = None) -> Any:
    """Freeze the base and attach a fresh adapter, or continue training ``init_adapter``."""
    from peft import PeftConfig, PeftModel, get_peft_model

    torch.manual_seed(config.seed)  # the adapter's random initialisation is part of the run's seed
    if init_adapter is not None:
        try:
            method = PeftConfig.from_pretrained(str(init_adapter)).peft_type.value.lower()
        except Exception as exc:
            raise TrainingError(f"cannot read the adapter to continue from ({init_adapter}): {exc}") from None
        expected = {"lora": "lora", "ia3": "ia3", "prefix": "prefix_tuning", "prompt": "prompt_tuning"}
        if method != expected[config.method]:
            raise TrainingError(
                f"the current adapter is {method}, not {config.method}; train from the base (--adapter-base none)"
            )
        return PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
    return get_peft_model(model, peft_config_for(model, config))


def trainable_parameters(model: Any) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


@dataclass
class _Batch:
    """Left-padded sequences and, per sequence, which trailing positions are scored and with which token."""

    ids: torch.Tensor  # (B, T)
    attention: torch.Tensor  # (B, T)
    keep: torch.Tensor  # (B, T) bool: positions whose logits are needed (they predict the next token)
    targets: torch.Tensor  # (N,) the next token at each kept position, in row-major order
    masks: dict[str, torch.Tensor]  # name -> (N,) which kept rows count for that term


def _spans_batch(spans: Sequence[tuple[TokenSpan, dict[str, bool]]], pad_id: int) -> _Batch:
    """Left-pad so every sequence ends at the last column; keep only positions that some term scores.

    Each span comes with flags saying, per term, whether it scores all target tokens (True) or only
    the changed ones (False). A sequence is cut after its last scored token, and unscored positions
    never reach the output head: for unlearning only the changed tokens, that is most of the saving.
    """
    scored: list[list[int]] = []
    for span, flags in spans:
        scored.append(
            [i for i in range(len(span.target)) if any(whole or span.changed[i] for whole in flags.values())]
        )
    kept = [(span, flags, idx) for (span, flags), idx in zip(spans, scored, strict=True) if idx]
    lengths = [span.start + idx[-1] + 1 for span, _flags, idx in kept]
    width = max(lengths)
    ids = torch.full((len(kept), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(kept), width), dtype=torch.long)
    keep = torch.zeros((len(kept), width), dtype=torch.bool)
    targets: list[int] = []
    names = sorted({name for _, flags in spans for name in flags})
    rows: dict[str, list[bool]] = {name: [] for name in names}
    for b, ((span, flags, idx), length) in enumerate(zip(kept, lengths, strict=True)):
        offset = width - length
        ids[b, offset:] = torch.tensor(span.ids[:length])
        attention[b, offset:] = 1
        for i in idx:
            keep[b, offset + span.start + i - 1] = True  # logits here predict target token i
            targets.append(span.target[i])
            for name in names:
                rows[name].append(name in flags and (flags[name] or span.changed[i]))
    return _Batch(
        ids,
        attention,
        keep,
        torch.tensor(targets, dtype=torch.long),
        {name: torch.tensor(values, dtype=torch.bool) for name, values in rows.items()},
    )


def _windows_batch(windows: Sequence[tuple[int, ...]], positions: int) -> _Batch:
    ids = torch.tensor([list(w) for w in windows], dtype=torch.long)
    keep = torch.zeros_like(ids, dtype=torch.bool)
    keep[:, -positions - 1 : -1] = True
    targets = ids[:, -positions:].reshape(-1)
    return _Batch(
        ids, torch.ones_like(ids), keep, targets, {"retain": torch.ones(len(targets), dtype=torch.bool)}
    )


def _on(batch: _Batch, model: Any) -> _Batch:
    """The loss-side tensors on the model's device (inputs are moved in :func:`_rows`)."""
    device = next(model.parameters()).device
    batch.targets = batch.targets.to(device)
    batch.masks = {name: mask.to(device) for name, mask in batch.masks.items()}
    return batch


def _rows(model: Any, batch: _Batch, virtual_tokens: int = 0) -> torch.Tensor:
    """Logits at the kept positions only, as (N, V): the output head never sees the other positions."""
    keep = batch.keep
    if virtual_tokens:  # prompt tuning prepends its virtual tokens to the sequence
        keep = torch.cat([torch.zeros((keep.shape[0], virtual_tokens), dtype=torch.bool), keep], dim=1)
    device = next(model.parameters()).device
    out = model(
        input_ids=batch.ids.to(device),
        attention_mask=batch.attention.to(device),
        logits_to_keep=keep.to(device),
        use_cache=False,
    )
    logits = out.logits
    if logits.dim() == 3:  # an architecture that ignores a mask-valued logits_to_keep
        logits = logits[keep.to(device)]
    return logits


def _last_hidden(model: Any, batch: _Batch, virtual_tokens: int = 0) -> torch.Tensor:
    """The last decoder layer's output at every position, as (B*T, H), with no output-layer work."""
    device = next(model.parameters()).device
    out = model(
        input_ids=batch.ids.to(device),
        attention_mask=batch.attention.to(device),
        output_hidden_states=True,
        logits_to_keep=1,
        use_cache=False,
    )
    hidden = out.hidden_states[-1][:, virtual_tokens:]
    return hidden.reshape(-1, hidden.shape[-1])


def _shared_rows(
    model: Any, spans: Sequence[tuple[TokenSpan, dict[str, bool]]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Like :func:`_spans_batch` + :func:`_rows`, but each context runs once for both of its targets.

    A pair's fixed and buggy sequences share their context, which is most of their tokens: the
    contexts run first with the KV cache on (gradients flow through the cache), the cache is
    repeated per target, and only the targets run a second time. Rows come out ordered as
    (first target token of every span) then (the other scored tokens, span by span).
    """
    device = next(model.parameters()).device
    contexts: list[tuple[int, ...]] = []
    owner: list[int] = []
    for span, _flags in spans:
        context = span.ids[: span.start]
        if not contexts or contexts[-1] != context:
            contexts.append(context)
        owner.append(len(contexts) - 1)
    width = max(len(c) for c in contexts)
    ctx_ids = torch.full((len(contexts), width), pad_id, dtype=torch.long)
    ctx_mask = torch.zeros((len(contexts), width), dtype=torch.long)
    for b, context in enumerate(contexts):
        ctx_ids[b, width - len(context) :] = torch.tensor(context)
        ctx_mask[b, width - len(context) :] = 1
    ctx_ids, ctx_mask = ctx_ids.to(device), ctx_mask.to(device)
    first = model(input_ids=ctx_ids, attention_mask=ctx_mask, use_cache=True, logits_to_keep=1)
    names = sorted({name for _, flags in spans for name in flags})
    scored = [
        [i for i in range(len(span.target)) if any(whole or span.changed[i] for whole in flags.values())]
        for span, flags in spans
    ]
    first_rows: list[int] = []
    first_targets: list[int] = []
    rest_targets: list[int] = []
    first_masks: dict[str, list[bool]] = {name: [] for name in names}
    rest_masks: dict[str, list[bool]] = {name: [] for name in names}
    for m, ((span, flags), idx) in enumerate(zip(spans, scored, strict=True)):
        for i in idx:
            is_first = i == 0
            (first_targets if is_first else rest_targets).append(span.target[i])
            for name in names:
                use = name in flags and (flags[name] or span.changed[i])
                (first_masks if is_first else rest_masks)[name].append(use)
            if is_first:
                first_rows.append(owner[m])
    logits = [first.logits[first_rows, -1]] if first_rows else []
    length = max(
        (idx[-1] for idx in scored if idx), default=0
    )  # inputs: target tokens before the last scored
    if length:
        cont = torch.full((len(spans), length), pad_id, dtype=torch.long)
        cont_mask = torch.zeros((len(spans), length), dtype=torch.long)
        keep = torch.zeros((len(spans), length), dtype=torch.bool)
        for m, ((span, _flags), idx) in enumerate(zip(spans, scored, strict=True)):
            n = idx[-1] if idx else 0
            cont[m, :n] = torch.tensor(span.target[:n])
            cont_mask[m, :n] = 1
            for i in idx:
                if i:
                    keep[m, i - 1] = True  # the input at i - 1 predicts target token i
        cache_name = cache_argument(model)
        cache = getattr(first, cache_name)
        cache.batch_select_indices(torch.tensor(owner, device=device))
        attention = torch.cat([ctx_mask[owner], cont_mask.to(device)], dim=1)
        second = model(
            input_ids=cont.to(device),
            attention_mask=attention,
            use_cache=True,
            logits_to_keep=keep.to(device),
            **{cache_name: cache},
        )
        rest = second.logits if second.logits.dim() == 2 else second.logits[keep.to(device)]
        logits.append(rest)
    targets = torch.tensor(first_targets + rest_targets, dtype=torch.long, device=device)
    masks = {
        name: torch.tensor(first_masks[name] + rest_masks[name], dtype=torch.bool, device=device)
        for name in names
    }
    return torch.cat(logits, dim=0), targets, masks


def step_terms(
    model: Any, pairs: Sequence[Example], windows: Sequence[tuple[int, ...]], config: TrainConfig, pad_id: int
) -> dict[str, torch.Tensor]:
    """The objective terms for one step: one forward over both sides of the pairs, one over retain windows."""
    weights = config.weight_map
    virtual = config.num_virtual_tokens if config.method == "prompt" else 0
    terms: dict[str, torch.Tensor] = {}
    spans: list[tuple[TokenSpan, dict[str, bool]]] = []
    for example in pairs:
        if weights.get("learn") and example.fixed is not None:
            spans.append((example.fixed, {"learn": config.learn_tokens == "whole"}))
        if weights.get("unlearn") and example.buggy is not None:
            # An unlearn-only rejection marks every token changed, so "changed" covers its whole line.
            spans.append((example.buggy, {"unlearn": config.unlearn_tokens == "whole"}))
    spans = [(span, flags) for span, flags in spans if any(f or any(span.changed) for f in flags.values())]
    if spans:
        # Prefix tuning owns the KV cache and prompt tuning shifts positions: they take the plain path.
        if config.share_context and config.method in ("lora", "ia3"):

            def forward(m: Any, adapted: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
                return _shared_rows(m, spans, pad_id)
        else:
            batch = _on(_spans_batch(spans, pad_id), model)

            def forward(m: Any, adapted: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
                return _rows(m, batch, virtual if adapted else 0), batch.targets, batch.masks

        logits, targets, masks = forward(model, True)
        if "learn" in masks and masks["learn"].any():
            terms["learn"] = objectives.learn_ce(logits, targets, masks["learn"])
        if "unlearn" in masks and masks["unlearn"].any():
            mask = masks["unlearn"]
            if config.unlearn_loss == "unlikelihood":
                terms["unlearn"] = objectives.unlearn_unlikelihood(logits, targets, mask)
            elif config.unlearn_loss == "gradient_ascent":
                terms["unlearn"] = objectives.unlearn_gradient_ascent(
                    logits, targets, mask, config.ga_max_nll
                )
            else:
                with torch.no_grad(), model.disable_adapter():
                    ref = objectives.token_logprobs(forward(model, False)[0], targets)
                terms["unlearn"] = objectives.unlearn_npo(logits, ref, targets, mask, config.npo_beta)
    if weights.get("retain") and windows and config.retain_loss == "hidden":
        batch = _on(_windows_batch(windows, config.retain_positions), model)
        hidden = _last_hidden(model, batch, virtual)
        with torch.no_grad(), model.disable_adapter():
            base_hidden = _last_hidden(model, batch)
        everywhere = torch.ones(hidden.shape[0], dtype=torch.bool, device=hidden.device)
        terms["retain"] = objectives.retain_hidden(hidden, base_hidden, everywhere)
    elif weights.get("retain") and windows:
        batch = _on(_windows_batch(windows, config.retain_positions), model)
        logits = _rows(model, batch, virtual)
        if config.retain_loss == "kl":
            with torch.no_grad(), model.disable_adapter():
                base = _rows(model, batch)
            terms["retain"] = objectives.retain_kl(logits, base, batch.masks["retain"])
        else:
            terms["retain"] = objectives.retain_ce(logits, batch.targets, batch.masks["retain"])
    return terms


def train(
    model: Any,
    tokenizer: Any,
    data: TrainingData,
    config: TrainConfig,
    *,
    init_adapter: Path | None = None,
    progress: bool = True,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    cancel: threading.Event | None = None,
) -> TrainResult:
    """Train an adapter on ``data``; the base ``model`` is frozen and wrapped in place by peft.

    A run that fails (cancelled, out of memory, nothing to train, diverged, interrupted) takes its
    adapter layers off again, so the caller's base model is left as it was given.
    """
    if not data.examples:
        raise TrainingError("no training examples")
    threads = lower_priority(config)
    peft_model = wrap_model(model, config, init_adapter)
    try:
        history, seconds = _optimise(peft_model, tokenizer, data, config, threads, progress, on_step, cancel)
    except BaseException:
        unwrap(peft_model)
        raise
    return TrainResult(peft_model, len(history), seconds, history)


def _optimise(
    peft_model: Any,
    tokenizer: Any,
    data: TrainingData,
    config: TrainConfig,
    threads: int,
    progress: bool,
    on_step: Callable[[int, int, dict[str, float]], None] | None,
    cancel: threading.Event | None,
) -> tuple[list[dict[str, float]], float]:
    """The flat loop over epochs and batches; returns one history row per step and the seconds it took."""
    from tqdm import tqdm

    rng = random.Random(config.seed)
    peft_model.eval()  # no dropout anywhere: gradients still flow, and runs are reproducible
    params = trainable_parameters(peft_model)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    weights = config.weight_map
    examples = list(data.examples)
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total = steps_per_epoch * config.epochs
    log.info(
        "training %s on %d examples, %d retain windows: %d steps, lr %g, %d thread(s)",
        config.method,
        len(examples),
        len(data.retain),
        total,
        config.learning_rate,
        threads,
    )
    history: list[dict[str, float]] = []
    started = time.monotonic()
    step = 0
    bar = tqdm(total=total, desc="hotfix train", unit="step", disable=not progress, leave=False)
    try:
        for epoch in range(config.epochs):
            rng.shuffle(examples)
            for first in range(0, len(examples), config.batch_size):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("training cancelled")
                batch = examples[first : first + config.batch_size]
                windows = (
                    [
                        data.retain[(step * config.retain_batch + i) % len(data.retain)]
                        for i in range(config.retain_batch)
                    ]
                    if data.retain
                    else []
                )
                terms = step_terms(peft_model, batch, windows, config, pad_id)
                active = {name: weights[name] for name in terms if weights.get(name)}
                if not active:
                    continue  # e.g. a batch of unlearn-only examples while only learn is weighted
                loss = objectives.compose(terms, active)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                optimizer.step()
                step += 1
                row = {"step": float(step), "epoch": float(epoch), "loss": loss.item()}
                row.update({name: value.item() for name, value in terms.items()})
                history.append(row)
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k not in ("step", "epoch")})
                log.debug("step %d/%d %s", step, total, row)
                if on_step is not None:
                    on_step(step, total, row)
    except (torch.OutOfMemoryError, MemoryError):
        raise TrainingError(
            f"ran out of memory at batch size {config.batch_size}; try a smaller batch or --max-context"
        ) from None
    finally:
        bar.close()
    if not history:
        raise TrainingError("no step had anything to train: the chosen objectives do not fit the data")
    if not all(math.isfinite(row["loss"]) for row in history[-3:]):
        raise TrainingError("the loss diverged (not finite); lower the learning rate")
    return history, time.monotonic() - started


def save_adapter(peft_model: Any, folder: Path) -> None:
    """Write the peft files (adapter_config.json, adapter_model.safetensors) into ``folder``."""
    private_dir(folder)
    peft_model.save_pretrained(str(folder), safe_serialization=True)
