"""Between the protocol and the engine: documents and positions in, suggestions out.

This is the only module that knows both lsprotocol's types and the engine's dataclasses, so the
handlers stay short and the engine never sees LSP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.workspace import PositionCodec, TextDocument

from hotfix_engine import languages
from hotfix_engine.completion import CompletionRequest
from hotfix_engine.outcomes import TextChange
from hotfix_engine.prompts import chars_read
from hotfix_server.config import CompletionConfig

ACCEPT = "hotfix.accept"
REJECT = "hotfix.reject"
TRAIN = "hotfix.train"
ROLLBACK = "hotfix.rollback"
SUPPRESSIONS = "hotfix.suppressions"
# What each command takes, as a bad argument's error says it.
COMMAND_ARGUMENTS = {
    ACCEPT: "one argument, the suggestion id",
    REJECT: "one argument, the suggestion id",
    TRAIN: "no arguments",
    ROLLBACK: "an optional version name, e.g. v0001",
    SUPPRESSIONS: "list, remove ID..., or clear",
}
STATUS = "hotfix/status"
ADAPTER_CHANGED = "hotfix/adapterChanged"

# The engine cuts the prompt to ``context_tokens`` itself, on a grid that keeps the prompt's start
# still while the user types (so its key/value cache is reused). Cutting the text first, to what a
# prompt of that budget can read (prompts.chars_read), keeps a multi-MB document out of every
# request; the cut moves only in large steps (a multiple of prompts.ANCHOR_GRID) for the same reason.
CUT_GRID = 1 << 16
LABEL_CHARS = 60
# Other open documents offered to a model trained on whole repositories: a third of the prompt
# budget rarely holds more, and each one is tokenized on every request.
CONTEXT_FILES = 4


def usage(command: str) -> str:
    return f"{command} takes {COMMAND_ARGUMENTS[command]}"


def language_of(document: TextDocument) -> str:
    """The engine's language for an open document: its language id, else its file name's."""
    return languages.language_of(path_of(document.uri), document.language_id)


def offset_at(document: TextDocument, position: types.Position) -> int | None:
    """The code-point offset of ``position``, or None when it lies outside the document.

    pygls clamps such positions silently; a position past the end means the client and the server
    disagree about the text, and any suggestion made there would be wrong.
    """
    lines = document.lines
    if position.line > len(lines) or position.line < 0 or position.character < 0:
        return None
    if position.line == len(lines):
        # The empty last line after a final newline (or of an empty document).
        if position.character != 0 or (lines and not lines[-1].endswith(("\n", "\r"))):
            return None
        return len(document.source)
    line = _without_end(lines[position.line])
    codec = document.position_codec
    if position.character > codec.client_num_units(line):
        return None
    # pygls's offset_at_position would split the whole document into lines a second time.
    return sum(map(len, lines[: position.line])) + _column(codec, line, position.character)


def _without_end(line: str) -> str:
    """One of ``TextDocument.lines`` without its line end (pygls splits as ``str.splitlines`` does)."""
    return line.splitlines()[0] if line else line


def _column(codec: PositionCodec, line: str, units: int) -> int:
    """The code points of ``line`` that fit in ``units`` client units (UTF-16 by default).

    A position past the end of the line is its end; one inside a character (between the halves of
    a surrogate pair) is that character's start. pygls would count a pair's first half as the whole
    pair, and put a position past the end one character before it.
    """
    if units >= codec.client_num_units(line):
        return len(line)
    if line.isascii():
        return units
    count = 0
    for index, char in enumerate(line):
        count += codec.impl.code_units_for_char(char)
        if count > units:
            return index
    return len(line)


def clamped_offset(document: TextDocument, lines: Sequence[str], position: types.Position) -> int:
    """The code-point offset of ``position``, moved into the document: a line past the last is the end."""
    if position.line >= len(lines):
        return sum(map(len, lines))
    line = lines[position.line]
    return sum(map(len, lines[: position.line])) + _column(
        document.position_codec, _without_end(line), position.character
    )


def apply_change(document: TextDocument, change: types.TextDocumentContentChangeEvent) -> TextChange:
    """Apply one ``didChange`` event, its range clamped to the document (issue 18); returns it as the
    engine's :class:`TextChange`, in code points of the text before it, for the outcome tracker.

    pygls applies a range past a line's end one character early, reads the client's units as code
    points past the last line, and drops the text of a range whose end comes before its start; a
    client whose copy has drifted would make ours drift further.
    """
    if isinstance(change, types.TextDocumentContentChangePartial):
        lines = document.lines
        start = clamped_offset(document, lines, change.range.start)
        end = clamped_offset(document, lines, change.range.end)
        start, end = min(start, end), max(start, end)
        source = document.source
        document.apply_change(
            types.TextDocumentContentChangeWholeDocument(text=source[:start] + change.text + source[end:])
        )
        return TextChange(change.text, (start, end))
    document.apply_change(types.TextDocumentContentChangeWholeDocument(text=change.text))
    return TextChange(change.text)


def path_of(uri: str) -> str:
    return unquote(urlparse(uri).path)


def _shared_folders(a: str, b: str) -> int:
    count = 0
    for x, y in zip(a.split("/")[:-1], b.split("/")[:-1], strict=False):
        if x != y:
            break
        count += 1
    return count


def context_files(
    document: TextDocument, documents: Iterable[TextDocument], limit: int = CONTEXT_FILES
) -> tuple[tuple[str, str], ...]:
    """Up to ``limit`` other open documents of ``document``'s language as ``(path, text)``, nearest first.

    Nearest: most folders in common with ``document``, then by path, so the order (and with it the
    start of the prompt, and its cache) stays the same from one keystroke to the next.
    """
    here = path_of(document.uri)
    language = language_of(document)
    others = [d for d in documents if d.uri != document.uri and language_of(d) == language]
    others.sort(key=lambda d: (-_shared_folders(here, path_of(d.uri)), path_of(d.uri)))
    return tuple((path_of(d.uri), d.source) for d in others[:limit])


def completion_request(
    source: str,
    offset: int,
    language: str,
    config: CompletionConfig,
    path: str = "",
    context_files: tuple[tuple[str, str], ...] = (),
) -> CompletionRequest:
    """The engine's request for a cursor at ``offset`` in ``source``, within the configured budget.

    The prefix keeps at least its end, and the suffix and other files their head, that the prompt reads.
    """
    reach = chars_read(config.context_tokens)
    start = max(0, (offset - reach) // CUT_GRID * CUT_GRID)
    return CompletionRequest(
        prefix=source[start:offset],
        suffix=source[offset : offset + reach],
        language=language,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        context_tokens=config.context_tokens,
        budget_ms=config.predict_budget_ms,
        path=path,
        context_files=tuple((other, text[:reach]) for other, text in context_files),
    )


def _accept_command(suggestion_id: str) -> types.Command:
    return types.Command(title="Accept suggestion", command=ACCEPT, arguments=[suggestion_id])


def inline_items(
    suggestion_id: str | None, text: str, position: types.Position
) -> types.InlineCompletionList:
    """Ghost text at the cursor; the client runs the accept command after inserting it."""
    if suggestion_id is None:
        return types.InlineCompletionList(items=[])
    item = types.InlineCompletionItem(
        insert_text=text,
        range=types.Range(start=position, end=position),
        command=_accept_command(suggestion_id),
    )
    return types.InlineCompletionList(items=[item])


def completion_items(
    suggestion_id: str | None, text: str, position: types.Position, markdown: bool = False
) -> types.CompletionList:
    """The same suggestion for clients with only classic completion: one item editing from the cursor.

    The list is always incomplete so that the client asks again as the user types instead of
    filtering a suggestion made for an older cursor. The documentation shows the whole suggestion,
    as a code block for clients that render Markdown.
    """
    if suggestion_id is None:
        return types.CompletionList(is_incomplete=True, items=[])
    first_line = text.strip().split("\n", 1)[0]
    label = first_line if len(first_line) <= LABEL_CHARS else first_line[: LABEL_CHARS - 1] + "…"
    item = types.CompletionItem(
        label=label or text,
        kind=types.CompletionItemKind.Snippet,
        detail="hotfix",
        documentation=(
            types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{text}\n```")
            if markdown
            else text
        ),
        sort_text="0",
        preselect=True,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=types.Range(start=position, end=position), new_text=text),
        command=_accept_command(suggestion_id),
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def supports_markdown(capabilities: types.ClientCapabilities) -> bool:
    """Whether the client renders Markdown in completion item documentation."""
    completion = capabilities.text_document.completion if capabilities.text_document else None
    item = completion.completion_item if completion else None
    return bool(item and item.documentation_format and types.MarkupKind.Markdown in item.documentation_format)


def progress_begin(
    title: str, message: str | None = None, cancellable: bool = False
) -> types.WorkDoneProgressBegin:
    return types.WorkDoneProgressBegin(title=title, message=message, percentage=0, cancellable=cancellable)


def progress_report(message: str | None, fraction: float | None = None) -> types.WorkDoneProgressReport:
    percentage = None if fraction is None else max(0, min(100, round(fraction * 100)))
    return types.WorkDoneProgressReport(message=message, percentage=percentage)


def progress_end(message: str | None = None) -> types.WorkDoneProgressEnd:
    return types.WorkDoneProgressEnd(message=message)


def show_message(
    message: str, kind: types.MessageType = types.MessageType.Warning
) -> types.ShowMessageParams:
    return types.ShowMessageParams(type=kind, message=message)
