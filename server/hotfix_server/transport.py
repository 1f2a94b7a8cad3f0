"""How bytes reach the protocol: LSP frames with a bounded length, over stdio or one TCP client.

pygls 2.1's reader believes any ``Content-Length``: 10**12 or 2**63 raises out of the event loop
(the server exits and the outcomes decided so far are lost), 3e9 waits for bytes that never come,
and after a header it does not recognise, or a body shorter than announced, it loses the messages
that follow. Here a length over ``MAX_BODY`` is refused with an error (id null) and a log line, and
after any broken frame the reader skips to the next ``Content-Length`` header: one bad frame costs
one message, never the session.

Over TCP the server serves one client, as over stdio. pygls gives every connection the same
protocol object, so a second client received the first one's answers, changed its settings and
data folder, and ended its session when it disconnected. A second connection is told why in a
``window/showMessage`` and an error answer to its first request, then closed; it sees nothing of the
first client's session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidRequest
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from hotfix_server.protocol import HotfixProtocol

log = logging.getLogger(__name__)

# The largest message accepted. A whole file opened in the editor is the largest a client sends;
# 64 MiB is far beyond what the model's prompt uses and still fits in memory.
MAX_BODY = 64 * 1024 * 1024
MAX_LINE = 8 * 1024  # a header line; a longer line is not a header
CHUNK = 1 << 16
REFUSED_CLIENT_WAIT_S = 5.0  # how long a refused TCP client has to send the request we answer
REFUSED_CLIENT_MAX_BODY = 1 << 20
ONE_CLIENT = (
    "hotfix: this language server already serves another client and serves one per process; "
    "start another `hotfix serve --tcp` on another port for this one"
)

_HEADER = re.compile(rb"([A-Za-z0-9-]+):[ \t]*([^\r\n]*?)[ \t]*\r?\n?")
_LENGTH_HEADER = b"content-length:"


class FrameReader:
    """LSP's ``Content-Length`` frames from a byte stream, with bounded memory."""

    def __init__(
        self,
        read_some: Callable[[int], Awaitable[bytes]],
        read_exactly: Callable[[int], Awaitable[bytes]],
        max_body: int = MAX_BODY,
    ) -> None:
        """``read_some(n)``: up to n bytes, b"" at the end; ``read_exactly(n)``: n bytes unless it ends."""
        self._read_some = read_some
        self._read_exactly = read_exactly
        self.max_body = max_body
        self._buffer = bytearray()
        self._ended = False

    async def next(self) -> bytes | str | None:
        """The next message's body, a line saying why a frame was refused, or None at the end."""
        length: int | None = None
        problem: str | None = None
        headers = 0
        skipped = 0
        while True:
            line = await self._line()
            if line is None:
                if skipped:
                    log.warning("skipped %d bytes that were not a message before the end", skipped)
                return None
            if not line.strip(b"\r\n"):
                if headers:
                    break
                skipped += len(line)  # between messages, or in the rest of a broken one
                continue
            at = line.lower().find(_LENGTH_HEADER)
            if at > 0:  # the rest of a broken message, then the next one's header
                skipped += at
                line = line[at:]
                length, problem, headers = None, None, 0
            header = _HEADER.fullmatch(line)
            if header is None:  # out of step: read on to the next message's header
                skipped += len(line)
                length, problem, headers = None, None, 0
                continue
            headers += 1
            name, value = header.groups()
            if name.lower() != _LENGTH_HEADER[:-1]:
                continue  # Content-Type, or a header LSP does not define
            if not value.isdigit():
                problem = f"Content-Length {value[:40]!r} is not a length"
            elif len(value) > 18 or int(value) > self.max_body:
                problem = f"Content-Length {value[:40].decode()} is over the limit of {self.max_body} bytes"
            elif length is not None and length != int(value):
                problem = "two different Content-Length headers"
            else:
                length = int(value)
        if skipped:
            log.warning("skipped %d bytes that were not a message", skipped)
        if problem is None and length is None:
            problem = "a message without Content-Length"
        if problem is not None:
            return problem  # its body, if any, is skipped as the search for the next header reads it
        assert length is not None
        return await self._body(length)

    async def _fill(self, size: int = CHUNK) -> bool:
        if self._ended:
            return False
        chunk = await self._read_some(size)
        if not chunk:
            self._ended = True
            return False
        self._buffer += chunk
        return True

    async def _line(self) -> bytes | None:
        """Up to and with the next newline; a longer stretch without one comes in pieces."""
        while True:
            end = self._buffer.find(b"\n", 0, MAX_LINE)
            if end >= 0:
                size = end + 1
                break
            if len(self._buffer) >= MAX_LINE:
                # Keep the tail: a header that starts in it must be found whole in the next piece.
                size = MAX_LINE - len(_LENGTH_HEADER)
                break
            if not await self._fill():
                size = len(self._buffer)
                if not size:
                    return None
                break
        line = bytes(self._buffer[:size])
        del self._buffer[:size]
        return line

    async def _body(self, length: int) -> bytes | None:
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        if len(body) < length and not self._ended:
            body += await self._read_exactly(length - len(body))
        if len(body) < length:
            self._ended = True
            return None
        return body


async def serve_frames(frames: FrameReader, protocol: HotfixProtocol, stop: threading.Event) -> None:
    """Hand each frame to the protocol until the stream ends (or ``stop``); a bad frame is answered."""
    while not stop.is_set():
        body = await frames.next()
        if body is None:
            return
        if isinstance(body, str):
            log.error("refused a message: %s", body)
            protocol.refuse(None, JsonRpcInvalidRequest(f"Invalid request: {body}; the message was skipped"))
            continue
        protocol.receive(body)


def serve_stdio(server: LanguageServer, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """pygls's ``start_io`` with our frame reader: until ``exit`` or the end of stdin."""
    protocol = server.protocol
    assert isinstance(protocol, HotfixProtocol)
    server._stop_event = stop = threading.Event()
    protocol.set_writer(StdoutWriter(stdout))
    read_some = getattr(stdin, "read1", None) or (lambda _size: stdin.readline())

    # Its own thread: pygls's shutdown waits for its pool, and a read may be blocked in stdin.
    reading = ThreadPoolExecutor(1, thread_name_prefix="hotfix-stdin")

    async def run() -> None:
        loop = asyncio.get_running_loop()
        frames = FrameReader(
            lambda size: loop.run_in_executor(reading, read_some, size),
            lambda size: loop.run_in_executor(reading, stdin.read, size),
        )
        await serve_frames(frames, protocol, stop)

    try:
        asyncio.run(run())
    except OSError as exc:  # a broken pipe
        log.error("the client is gone: %s", exc)
    except (KeyboardInterrupt, SystemExit):  # ``exit`` ends the session with sys.exit
        pass
    finally:
        reading.shutdown(wait=False)
        server.shutdown()


def serve_tcp(server: LanguageServer, host: str, port: int) -> None:
    """Listen on ``host:port`` and serve the first client to connect, until it exits or disconnects."""
    protocol = server.protocol
    assert isinstance(protocol, HotfixProtocol)
    server._stop_event = stop = threading.Event()

    async def run() -> None:
        finished = asyncio.get_running_loop().create_future()
        served: list[str] = []

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = _peer(writer)
            if served:
                await _refuse(reader, writer, peer, served[0])
                return
            served.append(peer)
            log.info("serving the client at %s", peer)
            protocol.set_writer(writer)
            try:
                await serve_frames(FrameReader(reader.read, _exactly(reader)), protocol, stop)
            except SystemExit:  # ``exit``
                pass
            except ConnectionError as exc:
                log.error("the client at %s is gone: %s", peer, exc)
            finally:
                if not finished.done():
                    finished.set_result(None)

        listener = await asyncio.start_server(connected, host, port)
        server._server = listener
        log.info("listening on %s", ", ".join(str(s.getsockname()) for s in listener.sockets))
        async with listener:
            await finished

    try:
        asyncio.run(run())
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


def _exactly(reader: asyncio.StreamReader) -> Callable[[int], Awaitable[bytes]]:
    async def read(size: int) -> bytes:
        try:
            return await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            return exc.partial

    return read


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str, served: str) -> None:
    """Tell a second client why it is not served (a message, and an error for its first request)."""
    log.warning("refused the client at %s: already serving the client at %s", peer, served)
    params = {"type": types.MessageType.Error.value, "message": ONE_CLIENT}
    try:
        writer.write(_frame({"jsonrpc": "2.0", "method": types.WINDOW_SHOW_MESSAGE, "params": params}))
        frames = FrameReader(reader.read, _exactly(reader), REFUSED_CLIENT_MAX_BODY)
        body = await asyncio.wait_for(frames.next(), REFUSED_CLIENT_WAIT_S)
        message = json.loads(body) if isinstance(body, bytes) else None
        if isinstance(message, dict) and "method" in message and isinstance(message.get("id"), (int, str)):
            error = {"code": JsonRpcInvalidRequest.CODE, "message": ONE_CLIENT}
            writer.write(_frame({"jsonrpc": "2.0", "id": message["id"], "error": error}))
        await writer.drain()
    except (asyncio.TimeoutError, ValueError, RecursionError, ConnectionError):
        pass
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()
