"""``hotfix serve`` and ``python -m hotfix_server``: options, errors, and the TCP transport."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from hotfix_engine.errors import ConfigError
from hotfix_server.cli import main
from hotfix_server.cli.serve import parse_address


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:2087") == ("127.0.0.1", 2087)
    assert parse_address(":2087") == ("127.0.0.1", 2087)
    for bad in ("2087", "localhost:", "host:port", "host:70000"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_address(bad)


def test_bad_tcp_address_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--tcp", "nowhere"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("hotfix: error: --tcp takes HOST:PORT")


def test_help_names_both_transports() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hotfix_server", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "--stdio" in done.stdout and "--tcp HOST:PORT" in done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.e2e
async def test_tcp_transport(tmp_path: Path) -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hotfix_server",
        "--tcp",
        f"127.0.0.1:{port}",
        "--data-dir",
        str(tmp_path),
    )
    client = LanguageClient("hotfix-test", "1")  # no `initialized`: the model is never loaded
    try:
        for _ in range(300):
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        result = await client.initialize_async(
            types.InitializeParams(capabilities=types.ClientCapabilities())
        )
        assert result.capabilities.inline_completion_provider is not None
        status = await client.protocol.send_request_async("hotfix/status", None)
        assert status.dataDir == str(tmp_path) and status.modelReady is False
        await client.shutdown_async(None)
        client.exit(None)
        assert await asyncio.wait_for(server.wait(), 30) == 0
    finally:
        if server.returncode is None:
            server.kill()
        await client.stop()


def test_tcp_listens_on_loopback_unless_remote_is_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_address("[::1]:2087") == ("::1", 2087)
    assert parse_address("localhost:2087") == ("localhost", 2087)
    assert parse_address("127.0.0.2:2087") == ("127.0.0.2", 2087)
    for remote in ("0.0.0.0:2087", "[::]:2087", "192.168.1.5:2087", "example.com:2087"):
        with pytest.raises(ConfigError, match="no authentication"):
            parse_address(remote)
    assert parse_address("0.0.0.0:2087", allow_remote=True) == ("0.0.0.0", 2087)
    assert main(["serve", "--tcp", "0.0.0.0:2087"]) == 1
    assert "SSH tunnel" in capsys.readouterr().err


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """One LSP message from a raw TCP connection; None once the server has closed it."""
    length = None
    while True:
        line = await asyncio.wait_for(reader.readline(), 30)
        if not line:
            return None
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        elif line == b"\r\n" and length is not None:
            return json.loads(await reader.readexactly(length))


def lsp_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


@pytest.mark.e2e
async def test_tcp_serves_one_client_and_refuses_a_second(tmp_path: Path) -> None:
    """A second connection took over the first one's session: it got the first client's answers,
    changed its data folder, and ended its session by disconnecting."""
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as stderr:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hotfix_server",
            "--tcp",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(tmp_path / "first"),
            stderr=stderr,
        )
    first = LanguageClient("first", "1")
    try:
        for _ in range(300):
            try:
                await first.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        await first.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        told = await read_frame(reader)
        assert told is not None and told["method"] == "window/showMessage"
        assert "one per process" in told["params"]["message"]
        options = {"dataDir": str(tmp_path / "second")}
        params = {"processId": None, "capabilities": {}, "initializationOptions": options}
        writer.write(lsp_frame({"id": 1, "method": "initialize", "params": params}))
        writer.write(lsp_frame({"id": 2, "method": "hotfix/status", "params": None}))
        refused = await read_frame(reader)
        assert refused is not None and refused["id"] == 1 and refused["error"]["code"] == -32600
        assert await read_frame(reader) is None  # closed: hotfix/status was never served
        writer.close()

        status = await first.protocol.send_request_async("hotfix/status", None)
        assert status.dataDir == str(tmp_path / "first")
        await first.shutdown_async(None)
        first.exit(None)
        assert await asyncio.wait_for(server.wait(), 30) == 0
        assert "refused the client at 127.0.0.1:" in log.read_text()
    finally:
        if server.returncode is None:
            server.kill()
        await first.stop()


def test_allow_remote_warns_at_every_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import hotfix_server.main

    monkeypatch.setattr(hotfix_server.main, "serve", lambda defaults, tcp: 0)
    assert main(["serve", "--tcp", "0.0.0.0:2087", "--allow-remote"]) == 0
    err = capsys.readouterr().err
    assert "LSP has no authentication" in err and "SSH tunnel" in err
    assert main(["serve", "--tcp", "127.0.0.1:2087"]) == 0
    assert "authentication" not in capsys.readouterr().err
