"""Training data: bug-fix pairs tokenised into learn / unlearn examples, and retain windows.

A pair becomes two token sequences sharing one context (the tail of ``prefix``): context + fixed
statement, and context + buggy statement. Each target carries a mask of the tokens that differ
between the two (a token diff), because unlearning the shared tokens fights learning the fix
(docs/architecture.md, Contracts). Retain windows are slices of ordinary code: the user's workspace files and, always
available, the Python standard library's own sources.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import random
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotfix_engine.errors import DataError
from hotfix_engine.models import FimTokens
from hotfix_engine.pairs import BugFixPair, normalize_statement
from hotfix_engine.prompts import prompt_for

log = logging.getLogger(__name__)

# Held out of the retain windows: the retention probe (gate.py) measures perplexity on these, so
# the adapter is never trained on the text it is judged by.
PROBE_MODULES = ("heapq", "bisect", "fnmatch", "colorsys", "graphlib", "textwrap", "shlex", "calendar")


@dataclass(frozen=True)
class TokenSpan:
    """Context then target tokens; ``changed[i]`` marks target token i as differing from the other side."""

    ids: tuple[int, ...]
    start: int  # index of the first target token in ids
    changed: tuple[bool, ...]

    @property
    def target(self) -> tuple[int, ...]:
        return self.ids[self.start :]


@dataclass(frozen=True)
class Example:
    """One learn/unlearn example: a pair (both sides) or an unlearn-only rejection (``fixed`` None)."""

    key: str
    fixed: TokenSpan | None
    buggy: TokenSpan | None


@dataclass(frozen=True)
class TrainingData:
    """Everything one training run consumes, with content hashes for the manifest."""

    examples: tuple[Example, ...]
    retain: tuple[tuple[int, ...], ...]
    hashes: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    record_ids: tuple[str, ...] = ()  # store records consumed, marked after publishing


def statement(line: str) -> str:
    """A statement as a target: one line, newline-terminated (the model must also learn to end it)."""
    return line.rstrip() + "\n"


def tokenize_target(
    tokenizer: Any,
    prefix: str,
    target: str,
    *,
    max_context: int,
    max_target: int,
    suffix: str = "",
    fim: FimTokens | None = None,
) -> tuple[list[int], list[int]]:
    """The prompt served for a completion at the end of ``prefix``, and ``target`` as written after it.

    Built by :func:`hotfix_engine.prompts.prompt_for`, the one prompt function (same budget rules,
    same FIM form, same token healing as serving): when healing takes the prompt's last token back,
    the target starts with its text, exactly as the model writes it when serving.
    """
    prompt = prompt_for(tokenizer, prefix, suffix, budget=max_context, fim=fim)
    ids = list(tokenizer(prompt.healed + target, add_special_tokens=False).input_ids)
    return list(prompt.ids), ids[:max_target]


def changed_mask(this: Sequence[int], other: Sequence[int]) -> list[bool]:
    """Tokens of ``this`` not matched in a diff against ``other``.

    Where ``other`` only inserts (``x`` -> ``x and y``), no token of ``this`` is replaced, yet the
    token at the insertion point is where the two diverge: it is marked, so an insertion fix still
    has something to unlearn.
    """
    mask = [False] * len(this)
    matcher = difflib.SequenceMatcher(a=list(this), b=list(other), autojunk=False)
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag == "equal" or not this:
            continue
        for index in range(i1, i2) if i2 > i1 else [min(i1, len(this) - 1)]:
            mask[index] = True
    return mask


def pair_example(
    tokenizer: Any,
    pair: BugFixPair,
    *,
    max_context: int = 128,
    max_target: int = 48,
    fim: FimTokens | None = None,
) -> Example:
    """Tokenise one pair; a side whose statement is empty (a deleted or added line) is left out."""
    if normalize_statement(pair.buggy) == normalize_statement(pair.fixed):
        raise DataError("buggy and fixed statements are the same (whitespace aside)")
    sides: dict[str, tuple[list[int], list[int]] | None] = {}
    for name, line in (("fixed", pair.fixed), ("buggy", pair.buggy)):
        sides[name] = (
            tokenize_target(
                tokenizer,
                pair.prefix,
                statement(line),
                max_context=max_context,
                max_target=max_target,
                suffix=pair.suffix,
                fim=fim,
            )
            if line.strip()
            else None
        )
    fixed, buggy = sides["fixed"], sides["buggy"]

    def span(
        side: tuple[list[int], list[int]] | None, other: tuple[list[int], list[int]] | None
    ) -> TokenSpan | None:
        if side is None:
            return None
        context, target = side
        changed = changed_mask(target, other[1]) if other else [True] * len(target)
        return TokenSpan(tuple(context + target), len(context), tuple(changed))

    return Example(pair.key, span(fixed, buggy), span(buggy, fixed))


def unlearn_example(
    tokenizer: Any,
    key: str,
    prefix: str,
    text: str,
    *,
    max_context: int = 128,
    max_target: int = 48,
    fim: FimTokens | None = None,
) -> Example:
    """A rejected suggestion with no known fix: unlearn its first statement, every token of it."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise DataError("empty rejected suggestion")
    context, target = tokenize_target(
        tokenizer, prefix, statement(first), max_context=max_context, max_target=max_target, fim=fim
    )
    return Example(key, None, TokenSpan(tuple(context + target), len(context), (True,) * len(target)))


def _check_tokens(tokenizer: Any, example: Example) -> None:
    for span in (example.fixed, example.buggy):
        if span is None:
            continue
        if not span.target:
            raise DataError("the statement produced no tokens")
        unk = getattr(tokenizer, "unk_token_id", None)
        if unk is not None and unk in span.target:
            raise DataError("the statement contains text the tokenizer cannot represent")


def build_examples(
    tokenizer: Any,
    pairs: Sequence[BugFixPair],
    unlearn_only: Iterable[tuple[str, str, str]] = (),
    *,
    max_context: int = 128,
    max_target: int = 48,
    fim: FimTokens | None = None,
) -> list[Example]:
    """Tokenise pairs and unlearn-only texts (key, prefix, text); all failures are reported together."""
    examples: list[Example] = []
    failures: list[str] = []
    for pair in pairs:
        try:
            example = pair_example(tokenizer, pair, max_context=max_context, max_target=max_target, fim=fim)
            _check_tokens(tokenizer, example)
            examples.append(example)
        except DataError as exc:
            failures.append(f"{pair.key} ({exc})")
        except Exception as exc:  # a tokenizer's own failure on odd text is data, not a crash
            failures.append(f"{pair.key} ({type(exc).__name__}: {exc})")
    for key, prefix, text in unlearn_only:
        try:
            example = unlearn_example(
                tokenizer, key, prefix, text, max_context=max_context, max_target=max_target, fim=fim
            )
            _check_tokens(tokenizer, example)
            examples.append(example)
        except DataError as exc:
            failures.append(f"{key} ({exc})")
    if failures:
        shown = "; ".join(failures[:5]) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else "")
        raise DataError(f"{len(failures)} training example(s) do not tokenize: {shown}")
    return examples


def stdlib_files(exclude: Sequence[str] = PROBE_MODULES) -> list[Path]:
    """The standard library's top-level modules: ordinary, always-present Python to retain."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.glob("*.py") if p.stem not in exclude and not p.stem.startswith("_"))


def code_windows(
    tokenizer: Any, files: Sequence[Path], *, count: int, tokens: int = 64, seed: int = 0
) -> list[tuple[int, ...]]:
    """``count`` windows of exactly ``tokens`` tokens from random places in random files (seeded).

    All windows have one length so that a batch needs no padding and the retain loss can score the
    same trailing positions of each.
    """
    rng = random.Random(seed)
    candidates = list(files)
    rng.shuffle(candidates)
    windows: list[tuple[int, ...]] = []
    attempts = 0
    while candidates and len(windows) < count and attempts < count * 4:
        path = candidates[attempts % len(candidates)]
        attempts += 1
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if len(text) <= tokens * 8:
            continue
        # Start at a line boundary: a window cut mid-line teaches nothing a completion prompt shows.
        start = text.rfind("\n", 0, rng.randrange(0, len(text) - tokens * 8)) + 1
        ids = tokenizer(text[start : start + tokens * 12], add_special_tokens=False)["input_ids"]
        if len(ids) >= tokens:
            windows.append(tuple(ids[:tokens]))
    return windows


def retention_probe_texts(count: int = 8, chars: int = 1500) -> list[str]:
    """Held-out ordinary code for the retention probe: the start of each probe module's source."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for name in PROBE_MODULES[:count]:
        path = root / f"{name}.py"
        if path.exists():
            text = path.read_text(encoding="utf-8")
            # Skip the module docstring and imports: the body is the ordinary code we must keep.
            body = text.find("\ndef ")
            texts.append(text[max(0, body) :][:chars])
    return texts


def workspace_files(folders: Sequence[Path], limit: int = 200) -> list[Path]:
    """Python files under the user's workspace folders, skipping virtual environments and caches."""
    skip = {".venv", "venv", "node_modules", "__pycache__", ".git", "site-packages", "build", "dist"}
    found: list[Path] = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*.py")):
            if skip.isdisjoint(path.parts) and path.is_file():
                found.append(path)
                if len(found) >= limit:
                    return found
    return found


def content_hash(items: Iterable[Any]) -> str:
    """A short sha256 of JSON-serialisable items, in order, for the manifest's data hashes."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(item, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def pairs_hash(pairs: Sequence[BugFixPair]) -> str:
    return content_hash(sorted((p.prefix, p.buggy, p.fixed) for p in pairs))


def build_training_data(
    tokenizer: Any,
    pairs: Sequence[BugFixPair],
    *,
    unlearn_only: Sequence[tuple[str, str, str]] = (),
    retain_texts: Sequence[str] = (),
    workspace: Sequence[Path] = (),
    retain_windows: int = 32,
    window_tokens: int = 64,
    max_context: int = 128,
    max_target: int = 48,
    seed: int = 0,
    record_ids: Sequence[str] = (),
    fim: FimTokens | None = None,
) -> TrainingData:
    """Tokenise everything a run needs; retain windows come from the workspace first, then the stdlib."""
    if not pairs and not unlearn_only:
        raise DataError("no training data: give pair files or collect feedback first")
    examples = build_examples(
        tokenizer, pairs, unlearn_only, max_context=max_context, max_target=max_target, fim=fim
    )
    retain: list[tuple[int, ...]] = []
    for text in retain_texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        retain.extend(
            tuple(ids[i : i + window_tokens]) for i in range(0, len(ids) - window_tokens + 1, window_tokens)
        )
    retain = retain[:retain_windows]
    if workspace:
        wanted = (retain_windows - len(retain)) // 2
        retain += code_windows(
            tokenizer, workspace_files(workspace), count=wanted, tokens=window_tokens, seed=seed
        )
    retain += code_windows(
        tokenizer, stdlib_files(), count=retain_windows - len(retain), tokens=window_tokens, seed=seed
    )
    return TrainingData(
        examples=tuple(examples),
        retain=tuple(retain),
        hashes={
            "pairs": pairs_hash(pairs),
            "unlearn_only": content_hash(sorted(text for _k, _p, text in unlearn_only)),
            "retain": content_hash(retain),
        },
        counts={"pairs": len(pairs), "unlearn_only": len(unlearn_only), "retain_windows": len(retain)},
        record_ids=tuple(record_ids),
    )


@dataclass(frozen=True)
class StoreData:
    """What the store contributes: pairs, unlearn-only rejections, retain texts and their record ids."""

    pairs: list[BugFixPair]
    unlearn_only: list[tuple[str, str, str]]
    retain_texts: list[str]
    record_ids: list[str]


def from_store(store: Any, *, not_consumed_by: str | None = None) -> StoreData:
    """Training material from the feedback store (hotfix_engine.store.Store.training_records).

    Rejected suggestions with a rule fix and the user's own edits arrive as pairs; rejections with
    no known fix become unlearn-only examples; accepted clean suggestions become retain text.
    """
    records = store.training_records(not_consumed_by=not_consumed_by)
    pairs = [stored.pair for stored in records.pairs]
    unlearn = [(item.record_id, item.prefix, item.text) for item in records.unlearn_only]
    retain = [item.prefix[-2000:] + item.text for item in records.retain]
    ids = [s.record_id for s in records.pairs] + [u.record_id for u in records.unlearn_only]
    ids += [r.record_id for r in records.retain]
    return StoreData(pairs, unlearn, retain, ids)
