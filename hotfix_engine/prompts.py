r"""The one way a prompt is built: cut to a token budget, fill-in-the-middle where the model was
trained for it, and token healing. Serving, training examples, the gate and ``hotfix eval`` all call
:func:`prompt_for`, so what the gate measures is what users are shown.

Only the end of a long prefix matters to the next line, so the prefix is cut by characters first
(cheap on a document of several MB), at a line start so the model never sees half a line first.

Models trained on whole repositories (Qwen2.5-Coder) also get the other files the user has open,
before the file being completed, in the layout of Qwen2.5-Coder's README ("Repository Level Code
Infilling"): ``<|repo_name|>name\n<|file_sep|>path\ntext\n ... <|file_sep|>path\n<|fim_prefix|>...``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from hotfix_engine.model_facts import leading_bos
from hotfix_engine.models import FimTokens

CHARS_PER_TOKEN = 3  # code averages 3-4 characters a token: aim a little under the budget
ANCHOR_GRID = 1024  # characters; the prompt start moves only in steps of this (or a quarter window)
HEAD_CHARS_PER_TOKEN = 12  # generous upper bound when cutting the suffix
SUFFIX_SHARE = 0.25  # of the budget, when the model can use the suffix at all
SUFFIX_LINES = 20
# Other files get at most this share of the budget, and it does not grow when the prefix is short: the
# code around the cursor predicts the next line best, and what other files add (names, signatures)
# fits in a few hundred tokens. A fixed cap also keeps that part of the prompt, which comes first,
# unchanged while the user types, so its key/value cache is computed once per set of open files.
CONTEXT_SHARE = 1 / 3


def chars_read(budget: int) -> int:
    """The most characters a prompt of ``budget`` tokens reads from any one text: the end of the
    prefix (:func:`tail_tokens`), the start of the suffix or the head of another file
    (:func:`head_tokens`, :func:`repo_tokens`). A caller may cut its texts to this much first, so a
    document of several MB is never handed over whole; the server does (``translate.py``)."""
    return max(
        budget * CHARS_PER_TOKEN,
        int(budget * SUFFIX_SHARE) * HEAD_CHARS_PER_TOKEN,
        int(budget * CONTEXT_SHARE) * HEAD_CHARS_PER_TOKEN,
    )


def tail_tokens(tokenizer: Any, text: str, budget: int) -> list[int]:
    """The last tokens of ``text`` within ``budget``, starting at a line boundary.

    The start is anchored to a grid of characters, so while the user types on it stays put and the
    new prompt extends the previous one token for token: that is what lets the engine reuse its
    key/value cache instead of recomputing the whole prompt.
    """
    if budget <= 0 or not text:
        return []
    window = budget * CHARS_PER_TOKEN
    grid = max(1, min(ANCHOR_GRID, window // 4))
    start = 0
    if len(text) > window:
        start = -(-(len(text) - window) // grid) * grid
    while True:
        cut = start
        if start:
            newline = text.find("\n", start - 1)
            cut = newline + 1 if newline >= 0 else start
        ids: list[int] = tokenizer(text[cut:], add_special_tokens=False).input_ids
        if len(ids) <= budget or start >= len(text):
            return ids[-budget:]
        start += grid


def head_tokens(tokenizer: Any, text: str, budget: int) -> list[int]:
    if budget <= 0 or not text:
        return []
    ids: list[int] = tokenizer(text[: budget * HEAD_CHARS_PER_TOKEN], add_special_tokens=False).input_ids
    return ids[:budget]


def build_prompt(
    tokenizer: Any,
    prefix: str,
    suffix: str,
    budget: int,
    fim: FimTokens | None,
    path: str = "",
    context_files: tuple[tuple[str, str], ...] = (),
) -> list[int]:
    """Token ids for the model: ``[bos] prefix`` or the FIM form ``[bos] <pre> prefix <suf> suffix <mid>``.

    The FIM form of a model with repository tokens starts with :func:`repo_tokens` for ``path`` (the
    file being completed) and ``context_files`` (``(path, text)`` of other files, nearest first).
    """
    bos = leading_bos(tokenizer)
    if fim is None or not suffix.strip():
        return bos + tail_tokens(tokenizer, prefix, budget)
    head = repo_tokens(tokenizer, fim, path, context_files, int(budget * CONTEXT_SHARE))
    near_suffix = "\n".join(suffix.split("\n")[:SUFFIX_LINES])
    suffix_ids = head_tokens(tokenizer, near_suffix, int(budget * SUFFIX_SHARE))
    prefix_ids = tail_tokens(tokenizer, prefix, budget - len(head) - len(suffix_ids))
    vocab = tokenizer.convert_tokens_to_ids
    return (
        bos + head + [vocab(fim.prefix)] + prefix_ids + [vocab(fim.suffix)] + suffix_ids + [vocab(fim.middle)]
    )


@dataclass(frozen=True)
class Prompt:
    """What the model reads, and the text its first token must start with (token healing)."""

    ids: list[int]
    healed: str = ""


def prompt_for(
    tokenizer: Any,
    prefix: str,
    suffix: str = "",
    *,
    budget: int,
    fim: FimTokens | None = None,
    path: str = "",
    context_files: tuple[tuple[str, str], ...] = (),
) -> Prompt:
    """The prompt for a completion at the end of ``prefix``: :func:`build_prompt`, then healing.

    Token healing: the prompt's last token is taken back when it is a partial word or a trailing
    space, and the completion must start with its text. A prefix ending in ``return `` otherwise
    leaves the model a lone space token it rarely saw in training. A learner or a scorer reads
    ``ids`` and then ``healed + completion`` as the model would write it.
    """
    ids = build_prompt(tokenizer, prefix, suffix, budget, fim, path, context_files)
    healed = healable_text(tokenizer, ids)
    return Prompt(ids[:-1], healed) if healed else Prompt(ids)


def healable_text(tokenizer: Any, ids: list[int]) -> str:
    """The text of the prompt's last token when healing it helps: a partial word or a trailing space.

    Indentation and newlines are left alone: models see them as whole tokens all the time.
    """
    if len(ids) < 2 or ids[-1] in tokenizer.all_special_ids:
        return ""
    text = str(tokenizer.decode(ids[-1:]))
    if not text or "\n" in text or (text.isspace() and len(text) > 1):
        return ""
    return text


def repo_tokens(
    tokenizer: Any, fim: FimTokens, path: str, files: tuple[tuple[str, str], ...], budget: int
) -> list[int]:
    r"""``<|repo_name|>name\n`` then other files, then ``<|file_sep|>path\n``, in at most ``budget`` tokens.

    Files are taken nearest first, each whole or, when it no longer fits, its first lines (a module's
    head holds the imports, classes and signatures that callers use); the files after it are left
    out. They are laid out nearest last, next to the code being completed. Empty when the model has
    no repository tokens, ``path`` is unknown, there are no other files, or not even the two header
    lines fit. The path alone is not worth the form: on 20 of HumanEval's line tasks,
    Qwen2.5-Coder-0.5B-Instruct passed 8 with it and 11 with plain FIM.
    """
    if fim.file_sep is None or fim.repo_name is None or not path or not files:
        return []
    vocab = tokenizer.convert_tokens_to_ids
    sep = vocab(fim.file_sep)
    name, paths = _repository([path, *(other for other, _ in files)])
    head = [vocab(fim.repo_name), *tokenizer(f"{name}\n", add_special_tokens=False).input_ids]
    tail = [sep, *tokenizer(f"{paths[0]}\n", add_special_tokens=False).input_ids]
    room = budget - len(head) - len(tail)
    if room < 0:
        return []
    blocks: list[list[int]] = []
    for other, (_, text) in zip(paths[1:], files, strict=True):
        block = _file_tokens(tokenizer, sep, other, text, room)
        if not block:
            break
        blocks.append(block)
        room -= len(block)
    return head + [token for block in reversed(blocks) for token in block] + tail


def _repository(paths: list[str]) -> tuple[str, list[str]]:
    """The repository's name and each path in it: the folder all the files share, and what follows it."""
    try:
        root = posixpath.commonpath([posixpath.dirname(p) for p in paths])
    except ValueError:  # absolute and relative paths mixed: no common folder
        return "", paths
    if not root:
        return "", paths
    return posixpath.basename(root), [posixpath.relpath(p, root) for p in paths]


def _file_tokens(tokenizer: Any, sep: int, path: str, text: str, room: int) -> list[int]:
    r"""``<|file_sep|>path\ntext\n`` in at most ``room`` tokens: the whole file or its first lines, or []."""
    cut = text[: room * HEAD_CHARS_PER_TOKEN]
    lines = cut.split("\n")
    if len(cut) < len(text):
        lines.pop()  # cut by characters: the last line is partial
    count = len(lines)
    while count > 0:
        body = "\n".join(lines[:count])
        ids = [sep, *tokenizer(f"{path}\n{body}\n", add_special_tokens=False).input_ids]
        if len(ids) <= room:
            return ids
        count = min(count - 1, count * room // len(ids))
    return []
