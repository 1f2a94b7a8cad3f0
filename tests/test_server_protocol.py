"""The JSON-RPC gate and the frame reader in one process: what a hostile or buggy client sends (issue 18).

Each case was found by fuzzing the server (bench/fuzz.py): an internal error (-32603) or no answer
where LSP asks for an invalid request (-32600), invalid params (-32602) or "not initialized" (-32002),
a length that killed the server, a lone surrogate that stopped the outcome timer, and a future kept
for every notification.
"""

from __future__ import annotations

import asyncio
import io
import json
from types import SimpleNamespace
from typing import Any

import pytest
from lsprotocol import types
from pygls.workspace import TextDocument

from hotfix_server import server as server_module
from hotfix_server import translate
from hotfix_server.config import ServerConfig
from hotfix_server.protocol import clean_text
from hotfix_server.server import HotfixServer, create_server
from hotfix_server.transport import MAX_BODY, FrameReader


class Capture:
    """pygls's writer interface, keeping what the server sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.sent.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))

    def close(self) -> None:
        pass


class Session:
    def __init__(self) -> None:
        self.server: HotfixServer = create_server(ServerConfig())
        self.out = Capture()
        self.server.protocol.set_writer(self.out)

    @property
    def protocol(self) -> Any:
        return self.server.protocol

    def send(self, message: Any) -> None:
        self.protocol.receive(message if isinstance(message, bytes) else json.dumps(message).encode())

    def answer(self, message: Any) -> dict[str, Any]:
        """Send a message and return the one answer it got."""
        before = len(self.out.sent)
        self.send(message)
        [answer] = self.out.sent[before:]
        return answer

    def request(self, msg_id: Any, method: Any, params: Any = None) -> dict[str, Any]:
        return self.answer({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def initialize(self) -> None:
        assert "result" in self.request(0, "initialize", {"processId": None, "capabilities": {}})

    def open(self, uri: str, text: str) -> None:
        item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": item})

    def text(self, uri: str) -> str:
        return self.protocol.workspace.text_documents[uri].source


def code(answer: dict[str, Any]) -> int | None:
    return answer["error"]["code"] if "error" in answer else None


async def test_a_method_that_is_not_a_string_is_an_invalid_request() -> None:
    s = Session()
    s.initialize()
    for method in (17, None, True, ["initialize"], {"m": 1}):  # was -32603: str + method, unhashable
        assert code(s.request(1, method)) == -32600


async def test_an_id_that_is_not_an_integer_or_a_string_is_an_invalid_request() -> None:
    s = Session()
    s.initialize()
    for bad in (b'{"id": 1}', b"[1]", b"1.5", b"NaN", b"Infinity", b"true", b"null"):  # was -32603
        answer = s.answer(b'{"jsonrpc": "2.0", "id": %s, "method": "hotfix/status"}' % bad)
        assert code(answer) == -32600 and answer["id"] is None


async def test_requests_without_params_or_with_message_shaped_params_are_answered() -> None:
    s = Session()
    s.initialize()
    # was -32603: pygls's generic request needs a params field
    assert "result" in s.answer({"jsonrpc": "2.0", "id": 1, "method": "hotfix/status"})
    assert "result" in s.request(2, "hotfix/status", "not an object")
    # was -32603 or a stray answer: pygls parsed every nested object that looked like a message
    nested = {"jsonrpc": "2.0", "id": 99, "method": "shutdown"}
    answer = s.answer(
        {"jsonrpc": "2.0", "id": 3, "method": "hotfix/status", "params": nested, "extra": nested}
    )
    assert answer["id"] == 3 and "result" in answer
    assert not s.protocol.shut_down


async def test_bad_params_are_invalid_params_with_where() -> None:
    s = Session()
    s.initialize()
    params = {"textDocument": {"uri": "file:///a.py"}, "position": {"line": "x", "character": 0}}
    answer = s.request(1, "textDocument/completion", params)
    assert code(answer) == -32602 and "position.line" in answer["error"]["message"]
    assert code(s.request(2, "textDocument/inlineCompletion", [1, 2])) == -32602
    assert code(s.answer({"jsonrpc": "2.0", "id": 3, "method": "textDocument/completion"})) == -32602


async def test_envelopes_lsp_does_not_have() -> None:
    s = Session()
    s.initialize()
    assert code(s.answer(b"{this is not json")) == -32700
    assert code(s.answer(b"[" * 100_000)) == -32700  # was: a RecursionError in the reader
    assert code(s.answer(b'{"jsonrpc": "2.0", "id": ' + b"9" * 5000 + b', "method": "x"}')) == -32700
    batch = s.answer(json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "hotfix/status"}]).encode())
    assert code(batch) == -32600 and batch["id"] is None
    for version in ("1.0", None, 2):  # was: silently dropped, the request never answered
        assert code(s.answer({"jsonrpc": version, "id": 4, "method": "hotfix/status"})) == -32600
    assert code(s.answer({"id": 5, "method": "hotfix/status"})) == -32600
    assert code(s.answer({"jsonrpc": "2.0", "id": 6})) == -32600
    assert code(s.request(7, "hotfix/noSuchMethod")) == -32601


async def test_a_notification_sent_with_an_id_is_answered_not_run() -> None:
    s = Session()
    s.initialize()
    s.open("file:///a.py", "x = 1\n")
    # was: run as a notification and never answered (and a didClose of an unknown document: -32603)
    answer = s.request(1, "textDocument/didClose", {"textDocument": {"uri": "file:///a.py"}})
    assert code(answer) == -32600 and "notification" in answer["error"]["message"]
    assert "file:///a.py" in s.protocol.workspace.text_documents
    s.notify("textDocument/completion", {"textDocument": {"uri": "file:///a.py"}, "position": {}})
    assert len(s.out.sent) == 2  # a request's method without an id: dropped, not answered


async def test_answers_only_count_for_requests_of_ours(caplog: pytest.LogCaptureFixture) -> None:
    s = Session()
    s.initialize()
    s.open("file:///a.py", "x = 1\n")
    params = {"textDocument": {"uri": "file:///a.py"}, "position": {"line": 0, "character": 5}}
    s.send({"jsonrpc": "2.0", "id": 5, "method": "textDocument/completion", "params": params})
    # was: taken for the answer to our own request 5, which took the client's request off the books
    s.send({"jsonrpc": "2.0", "id": 5, "result": None})
    s.notify("$/cancelRequest", {"id": 5})
    s.notify("$/cancelRequest", {"id": {"a": 1}})  # was: a TypeError (unhashable)
    s.notify("window/workDoneProgress/cancel", {"token": [1]})
    await asyncio.sleep(0.05)
    [answer] = [m for m in s.out.sent if m.get("id") == 5]
    assert code(answer) == -32800  # cancelled: still known when the cancel came
    assert not [r for r in caplog.records if r.levelname == "ERROR"]

    future = s.protocol.send_request("workspace/configuration", types.ConfigurationParams(items=[]))
    [request] = [m for m in s.out.sent if m.get("method") == "workspace/configuration"]
    s.send({"jsonrpc": "2.0", "id": request["id"], "result": 5})  # not a list: does not parse
    with pytest.raises(Exception, match="does not parse"):
        future.result(timeout=1)


async def test_the_lifecycle_rules() -> None:
    s = Session()
    assert code(s.request(1, "hotfix/status")) == -32002  # was: -32603 (no workspace yet)
    s.open("file:///early.py", "x")  # dropped: notifications before initialize
    s.initialize()
    assert "file:///early.py" not in s.protocol.workspace.text_documents
    # was: a second workspace, the open documents lost
    assert code(s.request(2, "initialize", {"processId": None, "capabilities": {}})) == -32600
    assert s.request(3, "shutdown")["result"] is None
    # was: never answered
    assert code(s.request(4, "hotfix/status")) == -32600
    assert code(s.request(5, "textDocument/completion", {})) == -32600


async def test_lone_surrogates_become_replacement_characters() -> None:
    s = Session()
    s.initialize()
    s.open("file:///a\ud800.py", "s = '\ud800'\n")
    assert s.text("file:///a\ufffd.py") == "s = '\ufffd'\n"
    change = {
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
        "text": "\udfff",
    }
    document = {"uri": "file:///a\ufffd.py", "version": 2}
    s.notify("textDocument/didChange", {"textDocument": document, "contentChanges": [change]})
    assert s.text("file:///a\ufffd.py") == "\ufffds = '\ufffd'\n"
    text = s.text("file:///a\ufffd.py")
    text.encode("utf-8")  # what the store and the tokenizer do with it
    assert clean_text("\ud83d\ude00 \ud800") == "\U0001f600 \ufffd"  # split pairs are joined
    item = b'{"uri": "file:///b.py", "languageId": "python", "version": 1, "text": "a\xed\xa0\x80\xffb"}'
    s.send(b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": %s}}' % item)
    assert "\ufffd" in s.text("file:///b.py") and s.text("file:///b.py").encode("utf-8")  # bytes not UTF-8


def test_didchange_ranges_are_clamped_to_the_document() -> None:
    def edited(text: str, start: tuple[int, int], end: tuple[int, int], new: str) -> str:
        document = TextDocument("file:///a.py", text, version=1)
        rng = types.Range(types.Position(*start), types.Position(*end))
        translate.apply_change(document, types.TextDocumentContentChangePartial(range=rng, text=new))
        return document.source

    assert edited("ab\ncd", (0, 1), (0, 1), "X") == "aXb\ncd"
    assert edited("ab\ncd", (0, 99), (0, 99), "X") == "abX\ncd"  # past the line: its end, not the next line
    assert edited("ab\ncd", (1, 99), (1, 99), "X") == "ab\ncdX"  # pygls: "ab\ncXd"
    assert edited("ab\ncd", (7, 0), (9, 9), "X") == "ab\ncdX"  # past the document: its end
    assert edited("\U0001f600ab", (0, 1), (0, 1), "X") == "X\U0001f600ab"  # inside a pair: its start
    assert edited("ab\ncd", (1, 1), (0, 1), "") == "ad"  # a reversed range
    assert edited("ab\r\ncd", (0, 5), (0, 5), "X") == "abX\r\ncd"
    document = TextDocument("file:///a.py", "ab", version=1)
    translate.apply_change(document, types.TextDocumentContentChangeWholeDocument(text="new"))
    assert document.source == "new"
    assert translate.offset_at(TextDocument("file:///a.py", "\U0001f600ab"), types.Position(0, 1)) == 0


def test_a_language_id_that_is_not_a_string_is_guessed_from_the_extension() -> None:
    for odd in (7, 1.5, [], {}):  # was: "generation failed" ('int' object has no attribute 'lower')
        document = TextDocument("file:///a.ts", "x", version=1, language_id=odd)  # type: ignore[arg-type]
        assert translate.language_of(document) == "typescript"


async def test_changes_to_unknown_documents_are_dropped() -> None:
    s = Session()
    s.initialize()
    change = {"text": "x"}
    s.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": "file:///none.py", "version": 2}, "contentChanges": [change]},
    )
    assert "file:///none.py" not in s.protocol.workspace.text_documents


async def test_notifications_leave_no_futures_behind() -> None:
    """pygls 2.1.1 kept a finished future for every didOpen, didChange and didClose (about 1.8 kB each)."""
    s = Session()
    s.initialize()
    for i in range(500):
        uri = f"file:///doc{i % 5}.py"
        s.open(uri, "x = 1\n")
        at = {"line": 0, "character": 1}
        change = {"range": {"start": at, "end": at}, "text": "y"}
        s.notify(
            "textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [change]}
        )
        s.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    s.notify(
        "workspace/didChangeConfiguration", {"settings": {"hotfix": {"debounceMs": 10}}}
    )  # an async handler
    assert "result" in s.request(
        1, "workspace/executeCommand", {"command": "hotfix.accept", "arguments": ["x"]}
    )
    await asyncio.sleep(0.05)
    assert s.protocol._request_futures == {}


async def test_command_arguments_that_do_not_fit_say_what_the_command_takes() -> None:
    """pygls converts a command's arguments to its handler's annotations: one that does not fit, or is
    missing, is -32602 naming what the command takes, never an internal error (-32603)."""
    s = Session()
    s.initialize()

    def run(msg_id: int, command: str, *arguments: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"command": command}
        if arguments != (None,):  # None: no "arguments" key at all
            params["arguments"] = list(arguments)
        return s.request(msg_id, "workspace/executeCommand", params)

    for msg_id, (command, arguments) in enumerate(
        [
            ("hotfix.accept", ({"not": "an id"},)),
            ("hotfix.accept", (5,)),
            ("hotfix.accept", ("",)),
            ("hotfix.accept", ()),
            ("hotfix.accept", (None,)),
            ("hotfix.accept", ("a", "b")),
            ("hotfix.reject", (None, None)),
        ]
    ):
        answer = run(msg_id, command, *arguments)
        assert code(answer) == -32602, (command, arguments, answer)
        assert answer["error"]["message"].startswith(f"{command} takes one argument, the suggestion id")
    answer = run(20, "hotfix.train", "now")
    assert code(answer) == -32602 and answer["error"]["message"].startswith("hotfix.train takes no arguments")
    answer = run(21, "hotfix.suppressions", "everything")
    assert code(answer) == -32602 and "takes list, remove ID..., or clear" in answer["error"]["message"]
    assert code(run(22, "hotfix.noSuchCommand")) == -32602
    assert run(23, "hotfix.accept", "no-such-suggestion")["result"] == {"accepted": False}
    assert run(24, "hotfix.reject", "no-such-suggestion")["result"] == {"rejected": False}


async def test_the_outcome_timer_survives_a_failing_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone surrogate once made recording an outcome raise outside the store's error handling, which
    ended the timer: nothing expired or was decided until shutdown."""
    monkeypatch.setattr(server_module, "TICK_S", 0.001)
    s = Session()
    ticks: list[int] = []
    recorded: list[str] = []

    def tick() -> list[Any]:
        ticks.append(1)
        if len(ticks) == 2:
            raise RuntimeError("the tracker failed once")
        return [SimpleNamespace(suggestion_id="bad"), SimpleNamespace(suggestion_id=f"good{len(ticks)}")]

    def record(outcomes: Any) -> None:
        for outcome in outcomes:
            if outcome.suggestion_id == "bad":
                raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
            recorded.append(outcome.suggestion_id)

    monkeypatch.setattr(s.server.runtime.tracker, "tick", tick)
    monkeypatch.setattr(s.server.runtime, "record", record)
    task = asyncio.ensure_future(s.server._tick())
    while len(ticks) < 4:
        await asyncio.sleep(0.01)
    task.cancel()
    assert recorded[:2] == ["good1", "good3"]


# Frames --------------------------------------------------------------------------------------


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def frames(data: bytes, max_body: int = MAX_BODY) -> list[bytes | str]:
    """Everything a FrameReader reads from ``data``, fed in small pieces."""
    stream = io.BytesIO(data)

    async def some(size: int) -> bytes:
        return stream.read(min(size, 7))

    async def exactly(size: int) -> bytes:
        return stream.read(size)

    reader = FrameReader(some, exactly, max_body)
    found: list[bytes | str] = []
    while (item := await reader.next()) is not None:
        found.append(item)
    return found


BODY = b'{"jsonrpc": "2.0", "id": 1, "method": "hotfix/status"}'
NEXT = b'{"jsonrpc": "2.0", "id": 2, "method": "hotfix/status"}'


@pytest.mark.parametrize("length", [10**12, 2**63, 3 * 10**9, 10**40, MAX_BODY + 1])
async def test_absurd_lengths_are_refused_and_the_stream_goes_on(length: int) -> None:
    """10**12 and 2**63 killed the server (exit 1, outcomes lost); 3e9 hung it."""
    found = await frames(b"Content-Length: %d\r\n\r\n" % length + BODY + frame(NEXT))
    assert isinstance(found[0], str) and "over the limit" in found[0]
    assert found[1:] == [NEXT]


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b"Content-Length: -5\r\n", "not a length"),
        (b"Content-Length: banana\r\n", "not a length"),
        (b"Content-Type: application/vscode-jsonrpc\r\n", "without Content-Length"),
        (b"Content-Length: 3\r\nContent-Length: 4\r\n", "two different"),
    ],
)
async def test_bad_headers_are_refused_and_the_stream_goes_on(header: bytes, problem: str) -> None:
    found = await frames(header + b"\r\n" + BODY + frame(NEXT))
    assert isinstance(found[0], str) and problem in found[0]
    assert found[1:] == [NEXT]


async def test_wrong_lengths_cost_one_message() -> None:
    short = b"Content-Length: 10\r\n\r\n" + BODY  # the rest of the body runs into the next header
    assert await frames(short + frame(NEXT)) == [BODY[:10], NEXT]
    long = b"Content-Length: %d\r\n\r\n" % (len(BODY) + 3) + BODY + b"###"
    assert await frames(long + frame(NEXT)) == [BODY + b"###", NEXT]
    junk = b"x" * 20_000  # a long stretch without a newline, then a message
    assert await frames(junk + frame(NEXT)) == [NEXT]
    assert await frames(b"content-length: %d\nX-Other: 1\n\n" % len(BODY) + BODY) == [BODY]
    assert await frames(b"Content-Length: 100\r\n\r\n" + BODY) == []  # the stream ends inside the body
