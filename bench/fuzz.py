"""LSP fuzzing (issue 18): seeded, mutated messages against the real server over stdio.

A hand-written mutator (no dependency; the same seed gives the same bytes) starts from valid LSP
messages and breaks them the ways a buggy or hostile client does: wrong types and missing fields,
huge or negative positions, unknown methods, bad JSON, bad framing (absurd, negative or missing
``Content-Length``), lone surrogates, unknown documents, duplicate ids, notifications with ids,
requests without ids, batches and unsolicited responses. Every message that is a request (a valid
envelope with an id) must be answered, and never with an internal error (-32603): each one is a
handler that trusted its input. The server must not exit, must keep answering, and must still
serve a valid completion at the end.

Then memory: resident memory before and after 100,000 ``didChange`` notifications, after a warm-up
(pygls 2.1 kept a future per notification: about 1.8 kB each).

    python bench/fuzz.py [--messages 10000] [--notifications 100000] [--seed 0] [--model SPEC]

Without ``--model`` it builds the tiny random test model (tests/tiny_model.py). Writes
bench/results/fuzz.json. ``tests/test_lsp_fuzz.py`` runs the same mutator at a small size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INTERNAL_ERROR = -32603
ANSWER_TIMEOUT_S = 120.0  # a request unanswered this long after its batch was sent is a hang
BATCH = 25
# Settings that keep the fuzzed server fast; the fuzzer never changes the model or the data folder.
OPTIONS = {"maxNewTokens": 4, "debounceMs": 0, "record": "all", "predictBudgetMs": 200}

SNIPPETS = [
    "def add(a, b):\n    return a + b\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n        ",
    "import os\n\nfor name in os.listdir('.'):\n    if name.endswith('.py'):\n        ",
    "x = [i * i for i in range(10)]\r\nprint(x)\r\n",
    "s = 'caf\u00e9 \U0001f600 \u4e2d\u6587'\nt = s.upper()\n",
    "",
    "def f():\n\treturn None",
]
HUGE = [-1, -(2**31), 2**31, 2**31 - 1, 2**32, 2**53 + 1, 2**63, 2**64 + 1, 10**30, 1.5, -0.0, 1e308]
WRONG = [None, True, False, 0, -7, 3.25, "", "x", "\ud800", [], [1, "a"], {}, {"a": {"b": []}}]
ODD_URIS = [
    "file:///nowhere/missing.py",
    "",
    "not a uri",
    "file:///%",
    "file:///%ZZ/x.py",
    "untitled:Untitled-1",
    "file:///../../etc/passwd",
    "file:///work/with%20space.py",
    "http://example.com/x.py",
    "file:///\ud800.py",
    "file:" + "/a" * 2000 + ".py",
]
UNKNOWN_METHODS = [
    "hotfix/noSuchMethod",
    "textDocument/noSuch",
    "$/noSuchThing",
    "",
    "textDocument/",
    "/",
    "\ud800",
    "rpc.discover",
    "a" * 3000,
]
ABSURD_LENGTHS = [10**12, 2**63, 3 * 10**9, 2**64 + 1, 10**40, 64 * 1024 * 1024 + 1]


@dataclass
class Frame:
    """Bytes for the wire; ``expect``: the id the server must answer (JSON-encoded), if any."""

    data: bytes
    kind: str
    method: str = ""
    expect: list[str] = field(default_factory=list)


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def encode(message: Any) -> bytes:
    """JSON as a client writes it; lone surrogates become ``\\udXXX`` escapes (ensure_ascii)."""
    return json.dumps(message).encode()


def id_key(value: Any) -> str:
    return json.dumps(value)


class Mutator:
    """Valid LSP messages for a session, and seeded mutations of them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_id = 1
        self.open: dict[str, str] = {}  # uri -> text, as the server should have it
        self.versions: dict[str, int] = {}
        self.recent_ids: list[Any] = []
        self.documents = 0

    # Valid messages -------------------------------------------------------------------------

    def new_id(self) -> Any:
        self.next_id += 1
        value: Any = self.next_id if self.rng.random() < 0.7 else f"req-{self.next_id}"
        self.recent_ids = [*self.recent_ids[-9:], value]
        return value

    def request(self, method: str, params: Any) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": self.new_id(), "method": method, "params": params}

    @staticmethod
    def notification(method: str, params: Any) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "method": method, "params": params}

    def did_open(self) -> dict[str, Any]:
        self.documents += 1
        uri = f"file:///fuzz/doc{self.documents}.py"
        text = self.rng.choice(SNIPPETS)
        self.open[uri] = text
        self.versions[uri] = 1
        item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
        return self.notification("textDocument/didOpen", {"textDocument": item})

    def some_uri(self) -> str:
        return self.rng.choice(sorted(self.open)) if self.open else "file:///fuzz/none.py"

    def position(self, uri: str) -> dict[str, int]:
        lines = self.open.get(uri, "").split("\n")
        line = self.rng.randrange(len(lines))
        return {"line": line, "character": self.rng.randint(0, len(lines[line]))}

    def did_change(self) -> dict[str, Any]:
        uri = self.some_uri()
        self.versions[uri] = self.versions.get(uri, 1) + 1
        at = self.position(uri)
        new = self.rng.choice(["x", " ", "\n", "()", "return ", "\U0001f600", ""])
        change: dict[str, Any] = {"range": {"start": at, "end": at}, "text": new}
        if self.rng.random() < 0.1:
            change = {"text": self.open.get(uri, "")}  # a whole-document change
        elif uri in self.open:
            lines = self.open[uri].split("\n")
            lines[at["line"]] = (
                lines[at["line"]][: at["character"]] + new + lines[at["line"]][at["character"] :]
            )
            self.open[uri] = "\n".join(lines)  # exact for BMP text; a drifting copy only moves positions
        document = {"uri": uri, "version": self.versions[uri]}
        return self.notification(
            "textDocument/didChange", {"textDocument": document, "contentChanges": [change]}
        )

    def did_close(self) -> dict[str, Any]:
        uri = self.some_uri()
        self.open.pop(uri, None)
        return self.notification("textDocument/didClose", {"textDocument": {"uri": uri}})

    def inline(self) -> dict[str, Any]:
        uri = self.some_uri()
        params = {
            "textDocument": {"uri": uri},
            "position": self.position(uri),
            "context": {"triggerKind": self.rng.choice([1, 2])},
        }
        return self.request("textDocument/inlineCompletion", params)

    def completion(self) -> dict[str, Any]:
        uri = self.some_uri()
        params: dict[str, Any] = {"textDocument": {"uri": uri}, "position": self.position(uri)}
        if self.rng.random() < 0.5:
            params["context"] = {"triggerKind": self.rng.choice([1, 2, 3])}
        return self.request("textDocument/completion", params)

    def command(self) -> dict[str, Any]:
        name = self.rng.choice(["hotfix.accept", "hotfix.reject", "hotfix.rollback", "hotfix.nothing"])
        arguments: list[Any] = [] if name == "hotfix.rollback" else [f"{self.rng.getrandbits(64):016x}"]
        return self.request("workspace/executeCommand", {"command": name, "arguments": arguments})

    def cancel(self) -> dict[str, Any]:
        target = self.rng.choice(self.recent_ids) if self.recent_ids else 0
        return self.notification("$/cancelRequest", {"id": target})

    def configuration(self) -> dict[str, Any]:
        settings = {**OPTIONS, "temperature": self.rng.choice([0, 0.5])}
        return self.notification("workspace/didChangeConfiguration", {"settings": {"hotfix": settings}})

    def other(self) -> dict[str, Any]:
        choice = self.rng.randrange(6)
        if choice == 0:
            return self.notification("$/setTrace", {"value": "off"})
        if choice == 1:
            return self.notification("window/workDoneProgress/cancel", {"token": "nothing"})
        if choice == 2:
            event = {"added": [{"uri": "file:///fuzz", "name": "fuzz"}], "removed": []}
            return self.notification("workspace/didChangeWorkspaceFolders", {"event": event})
        if choice == 3:
            return self.notification("textDocument/didSave", {"textDocument": {"uri": self.some_uri()}})
        if choice == 4:
            return self.notification("initialized", {})
        return self.request("initialize", {"processId": None, "capabilities": {}})

    def valid(self) -> dict[str, Any]:
        if len(self.open) < 2:
            return self.did_open()
        makers = [
            (self.did_change, 30),
            (self.inline, 12),
            (self.completion, 8),
            (lambda: self.request("hotfix/status", None), 6),
            (self.did_open, 4),
            (self.did_close, 3),
            (self.command, 6),
            (self.cancel, 5),
            (self.configuration, 2),
            (self.other, 4),
        ]
        maker = self.rng.choices([m for m, _ in makers], [w for _, w in makers])[0]
        return maker()

    # Mutations ------------------------------------------------------------------------------

    def paths(self, value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        """Every path to a value inside ``value`` (dict keys and list indexes)."""
        if isinstance(value, dict):
            for key, item in value.items():
                yield (*prefix, key)
                yield from self.paths(item, (*prefix, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield (*prefix, index)
                yield from self.paths(item, (*prefix, index))

    @staticmethod
    def parent(message: dict[str, Any], path: tuple[Any, ...]) -> Any:
        node: Any = message
        for step in path[:-1]:
            node = node[step]
        return node

    def set_at(self, message: dict[str, Any], pick: str, value_of: Any) -> bool:
        """Replace a random value whose last key is in ``pick`` (any key when empty)."""
        paths = [p for p in self.paths(message.get("params")) if not pick or p[-1] in pick.split(",")]
        if not paths:
            return False
        path = self.rng.choice(paths)
        node = self.parent(message["params"], path)
        node[path[-1]] = value_of(node[path[-1]])
        return True

    def mutate(self, message: dict[str, Any]) -> tuple[str, Any]:
        """A mutated message (a dict, or raw bytes for the framing and JSON mutations) and its kind."""
        rng = self.rng
        kind = rng.choice(
            [
                "wrong_type",
                "wrong_type",
                "missing_field",
                "missing_field",
                "position",
                "position",
                "unknown_method",
                "method_type",
                "bad_json",
                "bad_header",
                "surrogate",
                "surrogate",
                "unknown_uri",
                "duplicate_id",
                "notification_with_id",
                "request_without_id",
                "bad_id",
                "bad_jsonrpc",
                "params_type",
                "batch",
                "response",
                "extra_fields",
                "huge_text",
            ]
        )
        if kind == "wrong_type":
            if not self.set_at(
                message, "", lambda old: rng.choice([w for w in WRONG if type(w) is not type(old)])
            ):
                message["params"] = rng.choice(WRONG)
        elif kind == "missing_field":
            paths = [p for p in self.paths(message.get("params")) if isinstance(p[-1], str)]
            if paths:
                path = rng.choice(paths)
                del self.parent(message["params"], path)[path[-1]]
            else:
                message.pop("params", None)
        elif kind == "position":
            if not self.set_at(message, "line,character", lambda old: rng.choice(HUGE)):
                message = self.inline()
                self.set_at(message, "line,character", lambda old: rng.choice(HUGE))
        elif kind == "unknown_method":
            message["method"] = rng.choice(UNKNOWN_METHODS)
        elif kind == "method_type":
            message["method"] = rng.choice([17, None, ["initialize"], {"m": 1}, True])
        elif kind == "bad_json":
            body = encode(message)
            cut = rng.randrange(max(1, len(body)))
            return kind, rng.choice(
                [
                    body[:cut],
                    body[:cut] + b"\xff\xfe" + body[cut:],
                    body.replace(b":", b"=", 1),
                    b"{this is not json",
                    b"[" * 100_000 + b"]" * 100_000,
                    b'{"jsonrpc": "2.0", "id": 1e999999, "method": "hotfix/status"}',
                    b'{"jsonrpc": "2.0", "id": ' + b"9" * 5000 + b', "method": "hotfix/status"}',
                    b'{"jsonrpc": "2.0", "id": NaN, "method": "hotfix/status"}',
                    b"",
                    b"null",
                    b"\xed\xa0\x80",
                ]
            )
        elif kind == "surrogate":
            lone = rng.choice(["\ud800", "\udfff", "\udc00x\ud83d", "a\ud83d"])
            if not self.set_at(
                message,
                "text,uri,languageId,command,method,value,message",
                lambda old: (
                    (old[: len(old) // 2] + lone + old[len(old) // 2 :]) if isinstance(old, str) else lone
                ),
            ):
                change = self.did_change()
                change["params"]["contentChanges"][-1]["text"] += lone
                message = change
        elif kind == "unknown_uri":
            if not self.set_at(message, "uri", lambda old: rng.choice(ODD_URIS)):
                message = self.inline()
                message["params"]["textDocument"]["uri"] = rng.choice(ODD_URIS)
        elif kind == "duplicate_id":
            if self.recent_ids:
                message = self.rng.choice(
                    [self.inline, self.completion, lambda: self.request("hotfix/status", None)]
                )()
                message["id"] = rng.choice(self.recent_ids)
        elif kind == "notification_with_id":
            if "id" not in message:
                message["id"] = self.new_id()
        elif kind == "request_without_id":
            message.pop("id", None)
        elif kind == "bad_id":
            message["id"] = rng.choice([None, 1.5, [1], {"id": 1}, True, 2**70, -(2**70), ""])
        elif kind == "bad_jsonrpc":
            if rng.random() < 0.3:
                message.pop("jsonrpc")
            else:
                message["jsonrpc"] = rng.choice(["1.0", "2", 2.0, None, ""])
        elif kind == "params_type":
            message["params"] = rng.choice([[], [1, 2], "params", 5, None, True])
            if rng.random() < 0.2:
                message.pop("params")
        elif kind == "batch":
            return kind, encode([message, self.request("hotfix/status", None)])
        elif kind == "response":
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": rng.choice([*self.recent_ids, 0, "x", None])}
            if rng.random() < 0.5:
                reply["result"] = rng.choice(WRONG)
            else:
                reply["error"] = rng.choice([{"code": -1, "message": "no"}, {"code": "x"}, None, 5])
            message = reply
        elif kind == "extra_fields":
            message["extra"] = {"nested": {"jsonrpc": "2.0", "id": 99, "method": "shutdown"}}
            self.set_at(message, "", lambda old: {"jsonrpc": "2.0", "id": 7, "method": "exit"})
        elif kind == "huge_text":
            message = self.did_open()
            message["params"]["textDocument"]["text"] = "x = 1\n" * rng.randint(10_000, 60_000)
        return kind, message

    def framed(self, kind: str, body: bytes) -> bytes:
        """A frame for ``body``, or one with a broken header when ``kind`` is bad_header."""
        if kind != "bad_header":
            return frame(body)
        rng = self.rng
        choice = rng.randrange(9)
        if choice == 0:
            return b"Content-Length: %d\r\n\r\n" % rng.choice(ABSURD_LENGTHS) + body
        if choice == 1:
            return b"Content-Length: -%d\r\n\r\n" % len(body) + body
        if choice == 2:
            return b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" + body
        if choice == 3:
            return b"Content-Length: banana\r\n\r\n" + body
        if choice == 4:  # too short: the rest of the body runs into the next header
            return b"Content-Length: %d\r\n\r\n" % max(1, len(body) // 2) + body
        if choice == 5:  # too long: the body is followed by that much junk
            extra = rng.randint(1, 50)
            return b"Content-Length: %d\r\n\r\n" % (len(body) + extra) + body + b"#" * extra
        if choice == 6:
            return b"content-length: %d\r\nX-Odd: 1\r\n\r\n" % len(body) + body
        if choice == 7:
            return b"Content-Length: %d\n\n" % len(body) + body
        return b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(body), len(body) + 1) + body

    def next(self) -> Frame:
        message = self.valid()
        kind = "valid"
        if self.rng.random() < 0.85:
            kind, message = self.mutate(message)
        if kind == "bad_header" and isinstance(message, dict) and "id" in message:
            message.pop("id")  # whether a broken frame's request is answered depends on the framing
        body = message if isinstance(message, bytes) else encode(message)
        expect: list[str] = []
        method = ""
        if isinstance(message, dict):
            method = message.get("method") if isinstance(message.get("method"), str) else ""
            if is_request(message):
                expect = [id_key(message["id"])]
        return Frame(self.framed(kind, body), kind, method, expect)


def is_request(message: dict[str, Any]) -> bool:
    """A message the server must answer: a JSON-RPC request envelope with a usable id."""
    msg_id = message.get("id")
    return (
        message.get("jsonrpc") == "2.0"
        and "id" in message
        and isinstance(msg_id, (int, str))
        and not isinstance(msg_id, bool)
        and "method" in message
    )


class Wire:
    """The server over pipes, in raw frames; answers are collected by id, the server's requests answered."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.answers: dict[str, list[dict[str, Any]]] = {}
        self.stray: list[bytes] = []  # anything on stdout that is not a protocol frame
        self.notifications: Counter[str] = Counter()
        self.arrived = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], log: Path | None = None) -> Wire:
        """``python -m hotfix_server``; its stderr goes to ``log`` (or nowhere)."""
        stderr = log.open("ab") if log is not None else asyncio.subprocess.DEVNULL
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hotfix_server",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
            limit=1 << 24,
        )
        return cls(process)

    async def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        length = None
        while True:
            line = await stdout.readline()
            if not line:
                return
            if line.startswith(b"Content-Length: "):
                length = int(line.split(b":")[1])
            elif line == b"\r\n" and length is not None:
                message = json.loads(await stdout.readexactly(length))
                length = None
                self._received(message)
            elif not line.startswith(b"Content-Type: "):
                self.stray.append(line[:200])

    def _received(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:  # the server asks (progress, configuration)
            reply = {"jsonrpc": "2.0", "id": message["id"], "result": None}
            assert self.process.stdin is not None
            self.process.stdin.write(frame(encode(reply)))
        elif "method" in message:
            self.notifications[message["method"]] += 1
        else:
            self.answers.setdefault(id_key(message.get("id")), []).append(message)
        self.arrived.set()

    async def wait_for(self, expected: Counter[str], timeout: float) -> Counter[str]:
        """Wait until every expected id has its answers; what is still missing after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            missing = Counter(
                {
                    k: n - len(self.answers.get(k, []))
                    for k, n in expected.items()
                    if len(self.answers.get(k, [])) < n
                }
            )
            if not missing or self.process.returncode is not None or time.monotonic() > deadline:
                return missing
            self.arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 1.0)

    async def call(self, message: dict[str, Any], timeout: float = ANSWER_TIMEOUT_S) -> dict[str, Any] | None:
        key = id_key(message["id"])
        before = len(self.answers.get(key, []))
        await self.send(frame(encode(message)))
        missing = await self.wait_for(Counter({key: before + 1}), timeout)
        return None if missing else self.answers[key][-1]

    async def close(self) -> int | None:
        if self.process.returncode is None:
            try:
                await self.call({"jsonrpc": "2.0", "id": "bye", "method": "shutdown"}, 30)
                await self.send(frame(encode({"jsonrpc": "2.0", "method": "exit"})))
                await asyncio.wait_for(self.process.wait(), 30)
            except (OSError, asyncio.TimeoutError):
                pass
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.reader.cancel()
        return self.process.returncode


def rss_kb(pid: int) -> int:
    """Resident memory of a process in kB (Linux's /proc, else psutil)."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    import psutil

    return int(psutil.Process(pid).memory_info().rss // 1024)


def server_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOTFIX_HOME": str(home / "home"),
        "HOTFIX_CACHE": str(home / "cache"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


async def start_session(
    env: dict[str, str], model: str, log: Path | None = None, ready_timeout: float = 300.0
) -> Wire:
    """A server over stdio, initialized with ``model`` and the fast settings, its model loaded."""
    wire = await Wire.start(env, log)
    init = {
        "jsonrpc": "2.0",
        "id": "init",
        "method": "initialize",
        "params": {
            "processId": None,
            "capabilities": {},
            "initializationOptions": {"model": model, **OPTIONS},
        },
    }
    answer = await wire.call(init)
    assert answer is not None and "result" in answer, answer
    await wire.send(frame(encode({"jsonrpc": "2.0", "method": "initialized", "params": {}})))
    deadline = time.monotonic() + ready_timeout
    while True:
        status = await wire.call({"jsonrpc": "2.0", "id": "ready", "method": "hotfix/status", "params": None})
        result = (status or {}).get("result") or {}
        if result.get("modelReady") or result.get("modelError"):
            assert result.get("modelReady"), result.get("modelError")
            return wire
        assert time.monotonic() < deadline, "the model did not load"
        await asyncio.sleep(0.2)


async def final_completion(wire: Wire) -> dict[str, Any] | None:
    """Open a fresh document and ask for an explicit inline completion at its end."""
    uri = "file:///fuzz/final.py"
    text = "def total(items):\n    return "
    item = {"uri": uri, "languageId": "python", "version": 1, "text": text}
    await wire.send(frame(encode(Mutator.notification("textDocument/didOpen", {"textDocument": item}))))
    params = {
        "textDocument": {"uri": uri},
        "position": {"line": 1, "character": 11},
        "context": {"triggerKind": 1},
    }
    return await wire.call(
        {"jsonrpc": "2.0", "id": "final", "method": "textDocument/inlineCompletion", "params": params}
    )


async def fuzz(wire: Wire, count: int, seed: int, timeout: float = ANSWER_TIMEOUT_S) -> dict[str, Any]:
    """Send ``count`` mutated messages in batches; count the answers by error code."""
    mutator = Mutator(seed)
    kinds: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    internal: Counter[str] = Counter()  # what was sent: the error's message
    sent_methods: dict[str, str] = {}
    hangs: list[str] = []
    for start in range(0, count, BATCH):
        batch = [mutator.next() for _ in range(min(BATCH, count - start))]
        for item in batch:
            kinds[item.kind] += 1
            for key in item.expect:
                expected[key] += 1
                sent_methods[key] = f"{item.kind} {item.method[:60]}"
            if wire.process.returncode is not None:
                break
            try:
                await wire.send(item.data)
            except (BrokenPipeError, ConnectionResetError):
                break
        missing = await wire.wait_for(expected, timeout)
        if wire.process.returncode is not None:
            break
        if missing:
            hangs.extend(f"{key}: {sent_methods.get(key)}" for key in missing)
            for key in missing:  # counted once; later answers to it are not waited for again
                expected[key] -= missing[key]
    codes: Counter[str] = Counter()
    for key, answers in wire.answers.items():
        for answer in answers:
            error = answer.get("error")
            code = "result" if error is None else str(error.get("code"))
            codes[code] += 1
            if error is not None and error.get("code") == INTERNAL_ERROR:
                internal[f"{sent_methods.get(key, key)}: {str(error.get('message'))[:160]}"] += 1
    return {
        "messages": count,
        "seed": seed,
        "kinds": dict(sorted(kinds.items())),
        "answers_by_code": dict(sorted(codes.items())),
        "internal_errors": sum(internal.values()),
        "internal_error_classes": dict(internal.most_common(30)),
        "hangs": len(hangs),
        "hang_examples": hangs[:20],
        "crashed": wire.process.returncode is not None,
        "exit_code": wire.process.returncode,
        "stray_stdout_lines": len(wire.stray),
        "notifications_from_server": dict(wire.notifications),
    }


async def memory(wire: Wire, notifications: int, warmup: int = 5_000) -> dict[str, Any]:
    """Resident memory around ``notifications`` didChange notifications to one document (size kept)."""
    uri = "file:///fuzz/memory.py"
    item = {"uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}
    await wire.send(frame(encode(Mutator.notification("textDocument/didOpen", {"textDocument": item}))))
    version = 1

    async def type_(n: int) -> None:
        nonlocal version
        chunk = bytearray()
        for i in range(n):
            version += 1
            at = {"line": 0, "character": 5}
            end = {"line": 0, "character": 6} if i % 2 else at
            change = {"range": {"start": at, "end": end}, "text": "" if i % 2 else "2"}
            params = {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}
            chunk += frame(encode(Mutator.notification("textDocument/didChange", params)))
            if len(chunk) > 1 << 16:
                await wire.send(bytes(chunk))
                chunk.clear()
        await wire.send(bytes(chunk))
        answer = await wire.call({"jsonrpc": "2.0", "id": f"sync-{version}", "method": "hotfix/status"})
        assert answer is not None, "the server stopped answering"

    await type_(warmup)
    await asyncio.sleep(1.0)
    before = rss_kb(wire.process.pid)
    started = time.monotonic()
    await type_(notifications)
    elapsed = time.monotonic() - started
    await asyncio.sleep(1.0)
    after = rss_kb(wire.process.pid)
    return {
        "notifications": notifications,
        "warmup_notifications": warmup,
        "rss_before_mb": round(before / 1024, 1),
        "rss_after_mb": round(after / 1024, 1),
        "growth_mb": round((after - before) / 1024, 2),
        "growth_percent": round(100 * (after - before) / before, 2),
        "bytes_per_notification": round((after - before) * 1024 / notifications, 1),
        "notifications_per_s": round(notifications / elapsed),
    }


def tiny_model(folder: Path) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tiny_model import save_tiny_model

    return str(save_tiny_model(folder))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hotfix-fuzz-") as tmp:
        home = Path(tmp)
        model = args.model or tiny_model(home / "model")
        env = server_env(home)
        wire = await start_session(env, model)
        try:
            result = await fuzz(wire, args.messages, args.seed)
            if not result["crashed"]:
                answer = await final_completion(wire)
                result["final_completion"] = (
                    "no answer" if answer is None else "error" if "error" in answer else "answered"
                )
                result["final_completion_items"] = len(((answer or {}).get("result") or {}).get("items", []))
        finally:
            result_code = await wire.close()
        result["exit_code_after_shutdown"] = result_code
        if args.notifications:
            wire = await start_session(env, model)
            try:
                result["memory"] = await memory(wire, args.notifications)
            finally:
                await wire.close()
        result["model"] = args.model or "tiny random test model"
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--notifications", type=int, default=100_000, help="0: skip the memory part")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="model spec (default: the tiny random test model)")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    sys.path.insert(0, str(Path(__file__).parent))
    from common import write_result

    path = write_result("fuzz", {"settings": vars(args), **result})
    print(json.dumps(result, indent=2))  # noqa: T201
    print(f"written to {path}")  # noqa: T201


if __name__ == "__main__":
    main()
