"""A small HTTP/1.1 client whose streaming reads stop the moment a request is cancelled.

The remote runtime must close a completion's stream at once when the user types on, so that the
server stops decoding for nobody. ``http.client`` reads through a buffered file that cannot be
polled, and after one read timeout it refuses to read again; so this client reads the socket itself,
in short polls that look at a stop flag between them (a poll returns as soon as bytes arrive, so it
adds no latency). It speaks just what OpenAI-compatible servers answer: a status line and headers,
then a body with Content-Length, chunked, or until close, and server-sent events on top of that.
The standard library only: serving needs no HTTP package.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

POLL_S = 0.02  # how long a read waits between looks at the stop flag
MAX_HEAD = 64 * 1024
MAX_ERROR_BODY = 16 * 1024


class Unreachable(Exception):
    """The server could not be reached, hung up, or said it cannot serve now (502-504)."""

    def __init__(self, message: str, *, before_sending: bool = False) -> None:
        super().__init__(message)
        self.before_sending = before_sending  # nothing reached the server: safe to try again


class HttpError(Exception):
    """The server answered with an error status (or an error event in a stream)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message


class Aborted(Exception):
    """The caller's stop flag was set: the connection has been closed."""


StopFn = Callable[[], bool]


def _never() -> bool:
    return False


class Connection:
    """One request on its own socket (``Connection: close``): nothing to pool, nothing half-read to reuse."""

    def __init__(self, url: str, connect_timeout: float, read_timeout: float, stop: StopFn = _never) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.netloc = parts.netloc
        self.read_timeout = read_timeout
        self.stop = stop
        self._buffer = bytearray()
        self._eof = False
        try:
            sock = socket.create_connection((self.host, self.port), timeout=connect_timeout)
        except OSError as exc:
            raise Unreachable(
                f"cannot connect to {self.host}:{self.port}: {_reason(exc)}", before_sending=True
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "https":
            try:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise Unreachable(f"TLS with {self.host}:{self.port} failed: {_reason(exc)}") from None
        self.sock = sock

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, method: str, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        lines = [
            f"{method} {self.target} HTTP/1.1",
            f"Host: {self.netloc}",
            "Connection: close",
            "Accept-Encoding: identity",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
        ]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        try:
            self.sock.settimeout(self.read_timeout)
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        except OSError as exc:
            raise Unreachable(f"sending to {self.host}:{self.port} failed: {_reason(exc)}") from None

    # Reading --------------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read what the socket has into the buffer; False at end of stream."""
        if self._eof:
            return False
        self.sock.settimeout(POLL_S)
        waited_since = time.monotonic()
        while True:
            if self.stop():
                self.close()
                raise Aborted
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                if time.monotonic() - waited_since > self.read_timeout:
                    raise Unreachable(
                        f"no answer from {self.host}:{self.port} in {self.read_timeout:g} s"
                    ) from None
                continue
            except ssl.SSLWantReadError:
                continue
            except OSError as exc:
                raise Unreachable(f"{self.host}:{self.port} dropped the connection: {_reason(exc)}") from None
            if not data:
                self._eof = True
                return False
            self._buffer += data
            return True

    def _read_until(self, delimiter: bytes, limit: int) -> bytes | None:
        """Bytes up to and including ``delimiter``, or None when the stream ends first."""
        start = 0
        while True:
            found = self._buffer.find(delimiter, start)
            if found >= 0:
                end = found + len(delimiter)
                out = bytes(self._buffer[:end])
                del self._buffer[:end]
                return out
            if len(self._buffer) > limit:
                raise HttpError(0, "malformed answer: a header or chunk line is too long")
            start = max(0, len(self._buffer) - len(delimiter) + 1)
            if not self._fill():
                return None

    def _read_exact(self, count: int) -> Iterator[bytes]:
        while count > 0:
            if not self._buffer and not self._fill():
                raise Unreachable(f"{self.host}:{self.port} closed the connection mid-answer")
            piece = bytes(self._buffer[:count])
            del self._buffer[: len(piece)]
            count -= len(piece)
            yield piece

    def response(self) -> tuple[int, dict[str, str], Iterator[bytes]]:
        """The status, the headers (lower-case names) and the body as it arrives."""
        head = self._read_until(b"\r\n\r\n", MAX_HEAD)
        if head is None:
            raise Unreachable(f"{self.host}:{self.port} closed the connection without an answer")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(status_line.split(" ", 2)[1])
        except (IndexError, ValueError):
            raise HttpError(0, f"not an HTTP answer: {status_line[:80]!r}") from None
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return status, headers, self._body(headers)

    def _body(self, headers: dict[str, str]) -> Iterator[bytes]:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                line = self._read_until(b"\r\n", 1024)
                if line is None:
                    raise Unreachable(f"{self.host}:{self.port} closed the connection mid-answer")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise HttpError(0, "malformed chunked answer") from None
                if size == 0:
                    return
                yield from self._read_exact(size)
                for _ in self._read_exact(2):  # the CRLF that ends each chunk
                    pass
        elif "content-length" in headers:
            yield from self._read_exact(int(headers["content-length"]))
        else:
            while self._buffer or self._fill():
                piece = bytes(self._buffer)
                self._buffer.clear()
                yield piece


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__


def _error_text(status: int, body: bytes) -> str:
    """The message of an error answer: OpenAI's ``{"error": {"message"}}``, vLLM's and llama.cpp's forms."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or f"status {status}"
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error:
            return str(error)[:300]
    return text[:300]


def _check_status(status: int, body: Iterator[bytes]) -> None:
    if 200 <= status < 300:
        return
    data = b""
    try:
        for piece in body:
            data += piece
            if len(data) > MAX_ERROR_BODY:
                break
    except (Unreachable, HttpError):
        pass
    message = _error_text(status, data)
    if status in (502, 503, 504):  # a proxy without its backend, or llama.cpp still loading the model
        raise Unreachable(f"server not ready (HTTP {status}: {message})")
    raise HttpError(status, message)


def request_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    connect_timeout: float,
    read_timeout: float,
    headers: dict[str, str] | None = None,
    stop: StopFn = _never,
) -> Any:
    """One plain request: its JSON answer (or its text, when it is not JSON)."""
    with Connection(url, connect_timeout, read_timeout, stop) as conn:
        conn.send(method, body, headers)
        status, _, content = conn.response()
        _check_status(status, content)
        data = b"".join(content)
    text = data.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def stream_events(conn: Connection, body: Any, headers: dict[str, str] | None = None) -> Iterator[Any]:
    """POST ``body`` and yield the JSON of each server-sent event until ``[DONE]`` or the end.

    Closing the connection (the caller's ``with``, or the stop flag) ends the request on the server.
    """
    conn.send("POST", body, {"Accept": "text/event-stream", **(headers or {})})
    status, _, content = conn.response()
    _check_status(status, content)
    pending = b""
    data: list[str] = []
    for piece in content:
        pending += piece
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if line:
                field, _, value = line.partition(":")
                if field == "data":
                    data.append(value[1:] if value.startswith(" ") else value)
                elif field == "error":  # llama.cpp's server reports a failed stream this way
                    raise HttpError(0, f"the server failed the request: {value.strip()[:300]}")
                continue
            if not data:
                continue
            event = "\n".join(data)
            data = []
            if event.strip() == "[DONE]":
                return
            yield _event_json(event)
    if data and "\n".join(data).strip() != "[DONE]":
        yield _event_json("\n".join(data))


def _event_json(event: str) -> Any:
    try:
        value = json.loads(event)
    except ValueError:
        raise HttpError(0, f"not a JSON event: {event[:120]!r}") from None
    if isinstance(value, dict) and value.get("error"):
        error = value["error"]
        raise HttpError(0, str(error.get("message", error) if isinstance(error, dict) else error)[:300])
    return value
