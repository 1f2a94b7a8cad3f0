"""Protocol <-> engine translation and per-document scheduling, without a server process."""

from __future__ import annotations

import asyncio

from lsprotocol import types
from pygls.workspace import TextDocument

from hotfix_engine.prompts import chars_read
from hotfix_engine.stopping import CancelToken
from hotfix_server import translate
from hotfix_server.config import CompletionConfig
from hotfix_server.scheduler import DocumentScheduler


def doc(text: str, uri: str = "file:///w/a.py", language: str | None = "python") -> TextDocument:
    return TextDocument(uri, text, version=1, language_id=language)


def test_offset_at_accepts_positions_inside_and_at_the_end() -> None:
    d = doc("ab\ncd\n")
    assert translate.offset_at(d, types.Position(0, 0)) == 0
    assert translate.offset_at(d, types.Position(0, 2)) == 2
    assert translate.offset_at(d, types.Position(1, 1)) == 4
    assert translate.offset_at(d, types.Position(2, 0)) == 6  # the empty line after the final newline
    assert translate.offset_at(doc(""), types.Position(0, 0)) == 0


def test_offset_at_rejects_positions_outside() -> None:
    d = doc("ab\ncd")
    assert translate.offset_at(d, types.Position(0, 3)) is None
    assert translate.offset_at(d, types.Position(2, 0)) is None  # no final newline: no line 2
    assert translate.offset_at(d, types.Position(9, 0)) is None
    assert translate.offset_at(doc("ab\n"), types.Position(1, 1)) is None


def test_offset_at_counts_utf16_units() -> None:
    d = doc("s = '\U0001f600x'\n")
    assert translate.offset_at(d, types.Position(0, 7)) == 6  # the emoji is two UTF-16 units, one code point


def test_completion_request_cuts_long_documents_on_a_fixed_grid() -> None:
    config = CompletionConfig(max_new_tokens=7, temperature=0.2, context_tokens=64, debounce_ms=0)
    text = "x = 1\n" * 200_000
    offset = len(text) // 2
    request = translate.completion_request(text, offset, "python", config)
    assert text[:offset].endswith(request.prefix)
    assert chars_read(64) <= len(request.prefix) <= chars_read(64) + translate.CUT_GRID
    assert text[offset:].startswith(request.suffix) and request.suffix
    assert (request.max_new_tokens, request.temperature, request.context_tokens) == (7, 0.2, 64)
    # Typing on does not move the start of the prompt, so the engine can reuse its cache.
    later = translate.completion_request(text, offset + 3, "python", config)
    assert later.prefix.startswith(request.prefix)
    short = translate.completion_request("def f():\n    ", 13, "python", config)
    assert short.prefix == "def f():\n    " and short.suffix == ""


def test_the_cut_keeps_everything_the_prompt_reads() -> None:
    """The server cuts the document before the engine cuts the prompt: the prompt must not change."""
    from tiny_model import build_tokenizer

    from hotfix_engine.prompts import build_prompt

    tokenizer = build_tokenizer()
    config = CompletionConfig(context_tokens=1536)
    text = "".join(f"value_{i} = compute({i}, {i % 7})\n" for i in range(12_000))
    for offset in (len(text) // 3, len(text) // 3 + 5, translate.CUT_GRID * 3 + 10):
        request = translate.completion_request(text, offset, "python", config)
        assert len(request.prefix) < offset  # cut
        whole = build_prompt(tokenizer, text[:offset], text[offset:], config.context_tokens, None)
        assert build_prompt(tokenizer, request.prefix, request.suffix, config.context_tokens, None) == whole


def test_language_from_the_client_or_the_extension() -> None:
    assert translate.language_of(doc("", language="rust")) == "rust"
    assert translate.language_of(doc("", uri="file:///w/app.ts", language=None)) == "typescript"
    assert translate.language_of(doc("", uri="file:///w/My%20App.TS", language=None)) == "typescript"
    assert translate.language_of(doc("", uri="untitled:Untitled-1", language=None)) == "python"


def test_items_carry_the_accept_command_and_an_edit_at_the_cursor() -> None:
    at = types.Position(3, 4)
    inline = translate.inline_items("id1", "return x", at)
    [item] = inline.items
    assert item.insert_text == "return x" and item.range == types.Range(at, at)
    assert item.command.command == "hotfix.accept" and item.command.arguments == ["id1"]
    classic = translate.completion_items("id2", "return x\n    y", at, markdown=True)
    [entry] = classic.items
    assert classic.is_incomplete is True
    assert entry.label == "return x" and entry.text_edit.new_text == "return x\n    y"
    assert entry.documentation.kind == types.MarkupKind.Markdown
    assert translate.completion_items("id3", "z", at).items[0].documentation == "z"
    assert not translate.inline_items(None, "", at).items
    assert not translate.completion_items(None, "", at).items


def test_markdown_support_comes_from_the_client_capabilities() -> None:
    assert not translate.supports_markdown(types.ClientCapabilities())
    item = types.ClientCompletionItemOptions(documentation_format=[types.MarkupKind.Markdown])
    capabilities = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            completion=types.CompletionClientCapabilities(completion_item=item)
        )
    )
    assert translate.supports_markdown(capabilities)


async def test_a_newer_ticket_supersedes_the_older_one_at_once() -> None:
    scheduler = DocumentScheduler()
    first = scheduler.begin("a")
    waiting = asyncio.ensure_future(first.settle(30.0))
    await asyncio.sleep(0)
    other = scheduler.begin("b")  # another document does not interfere
    second = scheduler.begin("a")
    assert await asyncio.wait_for(waiting, 1.0) is False  # woken at once, not after 30 s
    assert isinstance(first.cancel, CancelToken) and first.cancel.is_set()
    assert await second.settle(0.01) is True and await other.settle(0) is True
    scheduler.end("a", first)  # the old ticket's end does not drop the new one
    third = scheduler.begin("a")
    assert second.superseded and not third.superseded
    scheduler.cancel_all()
    assert third.cancel.is_set() and other.cancel.is_set()


def test_context_files_are_other_open_documents_of_the_language_nearest_first() -> None:
    here = doc("x = 1\n", "file:///w/app/main.py")
    documents = [
        here,
        doc("Z = 1\n", "file:///w/zzz.py"),
        doc("B = 1\n", "file:///w/app/b%20c.py"),
        doc("A = 1\n", "file:///w/app/a.py"),
        doc("{}", "file:///w/app/data.json", "json"),
        doc("D = 1\n", "file:///w/app/sub/d.py"),
    ]
    files = translate.context_files(here, documents, limit=3)
    assert files == (("/w/app/a.py", "A = 1\n"), ("/w/app/b c.py", "B = 1\n"), ("/w/app/sub/d.py", "D = 1\n"))
    assert translate.context_files(here, documents[::-1], limit=3) == files  # an order that stays put


def test_completion_request_carries_the_path_and_the_heads_of_other_files() -> None:
    config = CompletionConfig(context_tokens=64)
    big = "y = 2\n" * 1000
    request = translate.completion_request("x = 1\n", 6, "python", config, "/w/a.py", (("/w/b.py", big),))
    assert request.path == "/w/a.py"
    ((path, text),) = request.context_files
    assert path == "/w/b.py" and big.startswith(text) and 0 < len(text) < len(big)
    assert translate.completion_request("x = 1\n", 6, "python", config).context_files == ()
