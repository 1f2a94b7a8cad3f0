"""Batched sampling of K completions per prompt: the cost centre of every evaluation.

Why not ``model.generate``: the paper's protocol draws K samples from each prompt, and ``generate``
with repeated prompts re-reads every prompt K times. Here each distinct prompt is read once (one
left-padded pass over a group of prompts), its key/value cache is repeated K times, and all rows then
decode together; rows that finish are dropped from the batch so the rest run faster.

Reproducibility: row ``(prompt i, sample j)`` draws its random numbers from its own generator seeded
by ``(seed, i, j)``, so a sample does not depend on the batch it ran in, and two models evaluated with
the same seed see the same random numbers (common random numbers make paired comparisons sharper).

Two protocols. ``product`` (the default) prompts as suggestions are served, through
:func:`hotfix_engine.prompts.prompt_for` (the same budget, FIM form and token healing), so what is
measured is what users see. ``paper`` keeps Yang & Lo 2024's protocol as this module first ran it
(the raw text with the tokenizer's special tokens, its last tokens kept, no healing), so the paper's
numbers can be reproduced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from hotfix_engine.errors import ConfigError, EvaluationError
from hotfix_engine.model_facts import cache_argument, eos_ids, leading_bos
from hotfix_engine.models import FimTokens
from hotfix_engine.picking import nucleus_keep, only_tokens_starting_with
from hotfix_engine.prompts import Prompt, prompt_for

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` with counts of samples."""

# Top-p over a 262k-token vocabulary: a full sort per step costs more than the model's step on small
# batches (1 s against 0.05 s for the top 1024 of 20 rows), so the nucleus is looked for among the top
# candidates first, then more of them, and the full sort is the last resort.
_TOP_CANDIDATES = (1024, 16384)
# Rows decoded together by default: enough to amortise reading the weights, small enough that the
# key/value cache of a few hundred prompt tokens stays well under a gigabyte on the embedded model.
DEFAULT_BATCH_ROWS = 40
DEFAULT_PROMPT_TOKENS = 1536
PROTOCOLS = ("product", "paper")
"""``product``: prompted as suggestions are served; ``paper``: Yang & Lo 2024's protocol."""


def check_protocol(protocol: str) -> None:
    """Refuse an unknown protocol name: a typo would otherwise be measured as ``product``."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


@dataclass(frozen=True)
class Sampling:
    """How completions are drawn: how many per prompt, how randomly, how long, from which seed.

    One object instead of six keywords forwarded through every evaluation function, checked once
    here. The defaults are the paper's (Yang & Lo 2024): 10 samples at temperature 1 with top-p 0.95.
    ``temperature`` 0 decodes greedily (one run per prompt, copied ``samples`` times).
    ``batch_size`` counts rows (prompt x sample) decoded together; ``None`` (or 0) picks a default.
    """

    samples: int = 10
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 64
    seed: int = 0
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.samples < 1 or self.max_new_tokens < 1:
            raise ConfigError("samples and max_new_tokens must be at least 1")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


PAPER_SAMPLING = Sampling()
"""Yang & Lo 2024's sampling: 10 samples a prompt at temperature 1, top-p 0.95, 64 new tokens."""


@dataclass(frozen=True)
class Sample:
    """One completion, and whether it ended on its own (end of sequence) or at the token limit."""

    text: str
    finished: bool
    tokens: int


def sample_completions(
    model,
    tokenizer,
    prompts: Sequence[str],
    sampling: Sampling = PAPER_SAMPLING,
    *,
    progress: Progress | None = None,
    protocol: str = "product",
) -> list[list[str]]:
    """``sampling.samples`` completions for each prompt (texts only); see :func:`generate_samples`."""
    result = generate_samples(model, tokenizer, prompts, sampling, progress=progress, protocol=protocol)
    return [[s.text for s in row] for row in result]


def generate_samples(
    model,
    tokenizer,
    prompts: Sequence[str],
    sampling: Sampling = PAPER_SAMPLING,
    *,
    suffixes: Sequence[str] | None = None,
    fim: FimTokens | None = None,
    protocol: str = "product",
    max_prompt_tokens: int = DEFAULT_PROMPT_TOKENS,
    stop: Callable[[str], bool] | None = None,
    progress: Progress | None = None,
) -> list[list[Sample]]:
    """Sample ``sampling.samples`` completions of each prompt, decoding up to ``sampling.batch_size``
    rows at once.

    ``prompts`` are the texts before the cursor and ``suffixes`` (product protocol only) the texts
    after it, which reach the model in the FIM form when ``fim`` (the model's FIM tokens) is given.
    Under the product protocol, a prompt whose last token is healed has its first new token restricted
    to tokens starting with that text, and ``Sample.text`` leaves the healed text out: it is what
    follows the prompt, as a suggestion is; ``Sample.tokens`` counts the healed token too.
    ``stop(text)`` sees that same text.

    Prompts longer than ``max_prompt_tokens`` keep their end, which is what the completion continues.
    """
    samples, greedy = sampling.samples, sampling.greedy
    runs = 1 if greedy else samples
    rows = max(sampling.batch_size or DEFAULT_BATCH_ROWS, 1)
    encoded = encode_prompts(
        tokenizer, prompts, suffixes, protocol=protocol, budget=max_prompt_tokens, fim=fim
    )
    eos = eos_ids(model, tokenizer)
    if not eos:
        raise EvaluationError("the tokenizer has no end-of-sequence token")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos)
    device = _device(model)
    heal = _healer(tokenizer)

    # Work items: (prompt index, first sample, number of samples). Prompts are grouped by length so
    # that little padding is read; a prompt with more samples than rows is split over batches.
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i].ids))
    per_prompt = min(runs, rows)
    items = [(i, start, min(per_prompt, runs - start)) for i in order for start in range(0, runs, per_prompt)]
    results: list[list[Sample | None]] = [[None] * runs for _ in prompts]
    total = len(prompts) * samples
    done = 0
    batch: list[tuple[int, int, int]] = []
    for position, item in enumerate(items):
        batch.append(item)
        nxt = items[position + 1] if position + 1 < len(items) else None
        if nxt is not None and sum(n for _, _, n in batch) + nxt[2] <= rows and nxt[2] == batch[0][2]:
            continue
        healed = [encoded[i].healed for i, _, _ in batch]
        outputs = _decode_batch(
            model,
            [encoded[i].ids for i, _, _ in batch],
            batch[0][2],
            [[_row_generator(sampling.seed, i, start + j) for j in range(n)] for i, start, n in batch],
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_new_tokens=sampling.max_new_tokens,
            eos=eos,
            pad=pad,
            device=device,
            stop=_row_stop(tokenizer, stop, healed),
            healed=healed,
            heal=heal,
        )
        for (i, start, n), group, cut in zip(batch, outputs, healed, strict=True):
            for j, (ids, finished) in enumerate(group):
                text = _decode(tokenizer, ids)[len(cut) :]
                results[i][start + j] = Sample(text=text, finished=finished, tokens=len(ids))
            done += n * (samples if greedy else 1)
        if progress is not None:
            progress(done, total)
        batch = []
    if greedy:
        return [[row[0]] * samples for row in results]  # type: ignore[list-item]
    return results  # type: ignore[return-value]


def encode_prompts(
    tokenizer,
    prompts: Sequence[str],
    suffixes: Sequence[str] | None = None,
    *,
    protocol: str = "product",
    budget: int = DEFAULT_PROMPT_TOKENS,
    fim: FimTokens | None = None,
) -> list[Prompt]:
    """The ids each prompt is read as, and the text its first new token must start with (if any)."""
    check_protocol(protocol)
    if suffixes is not None and len(suffixes) != len(prompts):
        raise EvaluationError(f"{len(prompts)} prompts but {len(suffixes)} suffixes")
    if protocol == "paper":
        if fim is not None or any(s.strip() for s in suffixes or ()):
            raise EvaluationError("the paper's protocol prompts with the prefix only: no suffix, no FIM")
        return [Prompt(_encode(tokenizer, prompt, budget)) for prompt in prompts]
    encoded = []
    for index, prompt in enumerate(prompts):
        suffix = suffixes[index] if suffixes is not None else ""
        built = prompt_for(tokenizer, prompt, suffix, budget=budget, fim=fim)
        encoded.append(built if built.ids else Prompt([_start_token(tokenizer)]))
    return encoded


def _row_stop(
    tokenizer, stop: Callable[[str], bool] | None, healed: list[str]
) -> Callable[[int, list[int]], bool] | None:
    """``stop`` on a row's text without its prompt's healed text, as serving's stop rules read it."""
    if stop is None:
        return None
    return lambda group, ids: stop(_decode(tokenizer, ids)[len(healed[group]) :])


def _healer(tokenizer) -> Callable[[torch.Tensor, str], torch.Tensor]:
    """Token healing's mask for one row of logits: serving's own (:func:`only_tokens_starting_with`)."""
    texts: dict[int, str] = {}

    def token_text(token: int) -> str:
        if token not in texts:
            texts[token] = str(tokenizer.decode([token]))
        return texts[token]

    def first_token(text: str) -> int | None:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        return int(ids[0]) if ids else None

    def heal(logits: torch.Tensor, healed: str) -> torch.Tensor:
        masked = only_tokens_starting_with(logits.float().cpu().numpy(), healed, token_text, first_token)
        return torch.from_numpy(masked).to(logits.device)

    return heal


def _decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def _start_token(tokenizer) -> int:
    """Unconditional sampling starts from the start-of-text token, or end-of-text without one."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    return int(start)


def _encode(tokenizer, prompt: str, limit: int) -> list[int]:
    """The paper protocol's prompt: the raw text with special tokens, its last ``limit`` tokens."""
    ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    if not ids:
        return [_start_token(tokenizer)]
    if len(ids) <= limit:
        return ids
    bos = leading_bos(tokenizer)  # kept in front: the text was read after it
    return bos + ids[len(ids) - limit + len(bos) :]


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _row_generator(seed: int, prompt: int, sample: int) -> torch.Generator:
    generator = torch.Generator()
    # Distinct, well-mixed seeds per row; Python's hash of a tuple of ints is stable across runs.
    generator.manual_seed(hash((seed, prompt, sample)) & 0x7FFF_FFFF_FFFF_FFFF)
    return generator


def _new_cache(model):
    from transformers import DynamicCache

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return DynamicCache(config=base.config)


@torch.inference_mode()
def _decode_batch(
    model,
    prompts: list[list[int]],
    repeats: int,
    generators: list[list[torch.Generator]],
    *,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    eos: set[int],
    pad: int,
    device: torch.device,
    stop: Callable[[int, list[int]], bool] | None,
    healed: list[str],
    heal: Callable[[torch.Tensor, str], torch.Tensor],
) -> list[list[tuple[list[int], bool]]]:
    """Read each prompt once, repeat its cache ``repeats`` times, decode all rows to the end.

    ``healed[p]`` (when not empty) restricts the first token of prompt ``p``'s rows; ``stop(p, ids)``
    ends a row of prompt ``p`` early.
    """
    width = max(len(ids) for ids in prompts)
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = _new_cache(model)
    cache_kw = cache_argument(model)
    out = model(
        input_ids=input_ids.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        use_cache=True,
        logits_to_keep=1,
        **{cache_kw: cache},
    )
    logits = out.logits[:, -1, :].float()
    for row, text in enumerate(healed):
        if text:  # token healing, before the rows of one prompt part: the mask is the same for all
            logits[row] = heal(logits[row], text)
    if repeats > 1:
        cache.batch_repeat_interleave(repeats)
        logits = logits.repeat_interleave(repeats, dim=0)
        mask = mask.repeat_interleave(repeats, dim=0)
        positions = positions.repeat_interleave(repeats, dim=0)
    next_position = positions[:, -1] + 1
    flat_generators = [g for group in generators for g in group]
    alive = list(range(len(flat_generators)))
    tokens_out: list[list[int]] = [[] for _ in flat_generators]
    finished = [False] * len(flat_generators)
    mask = mask.to(device)
    for step in range(max_new_tokens):
        chosen = _choose(logits, [flat_generators[r] for r in alive], temperature, top_p).tolist()
        keep = []
        for index, (row, token) in enumerate(zip(alive, chosen, strict=True)):
            if token in eos:
                finished[row] = True
            else:
                tokens_out[row].append(token)
                if stop is not None and stop(row // repeats, tokens_out[row]):
                    finished[row] = True
                else:
                    keep.append(index)
        if step == max_new_tokens - 1 or not keep:
            break
        if len(keep) < len(alive):
            selected = torch.tensor(keep, dtype=torch.long)
            cache.batch_select_indices(selected.to(device))
            mask = mask[selected.to(device)]
            next_position = next_position[selected]
            alive = [alive[i] for i in keep]
            chosen = [chosen[i] for i in keep]
        mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
        out = model(
            input_ids=torch.tensor(chosen, dtype=torch.long, device=device)[:, None],
            attention_mask=mask,
            position_ids=next_position[:, None].to(device),
            use_cache=True,
            **{cache_kw: cache},
        )
        logits = out.logits[:, -1, :].float()
        next_position = next_position + 1
    grouped = []
    start = 0
    for group in generators:
        grouped.append([(tokens_out[r], finished[r]) for r in range(start, start + len(group))])
        start += len(group)
    return grouped


def _choose(logits: torch.Tensor, generators: list[torch.Generator], temperature: float, top_p: float):
    """One token per row: greedy, or nucleus sampling by inverse CDF with each row's own uniform draw.

    The nucleus is cut by serving's rule (:func:`hotfix_engine.picking.nucleus_keep`); the rest is not
    serving's :func:`~hotfix_engine.picking.pick_token`, on purpose. Serving draws one row from a NumPy
    generator; here every row of a torch batch draws from its own ``torch.Generator`` seeded by
    ``(seed, prompt, sample)``, which is what makes a sample independent of its batch and keeps past
    evaluations reproducible; and one batched ``topk`` over all rows costs a fraction of a partial
    sort per row.
    """
    if temperature <= 0:
        return logits.argmax(dim=-1).cpu()
    probs = torch.softmax(logits / temperature, dim=-1).cpu()
    uniforms = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generators])
    if top_p >= 1.0:
        candidates = probs.double()
        index = None
    else:
        for k in _TOP_CANDIDATES:
            values, index = probs.topk(min(k, probs.shape[-1]), dim=-1)
            if not bool((values.sum(dim=-1) < top_p).any()):
                break
        else:
            values, index = probs.sort(dim=-1, descending=True)
        values = values.double()
        candidates = torch.where(nucleus_keep(values, top_p), values, torch.zeros_like(values))
    cdf = candidates.cumsum(dim=-1)
    targets = (uniforms * cdf[:, -1])[:, None]
    picks = torch.searchsorted(cdf, targets, right=True).clamp(max=cdf.shape[-1] - 1)[:, 0]
    # A zero-probability token can only be picked at the clamp edge; step back to the last real one.
    last_real = (candidates > 0).long().cumsum(dim=-1).argmax(dim=-1)
    picks = torch.minimum(picks, last_real)
    if index is None:
        return picks
    return index.gather(1, picks[:, None])[:, 0]
