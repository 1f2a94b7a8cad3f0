"""Running the server: guard stdout, start the transport, and leave promptly when the client is gone."""

from __future__ import annotations

import logging
import os
import sys

from hotfix_server.config import ServerConfig

log = logging.getLogger(__name__)


def _protocol_stdout() -> object:
    """The real stdout for protocol messages; anything else written to fd 1 goes to stderr.

    A stray print or a native library writing to stdout would corrupt the LSP stream, so the
    protocol gets a private duplicate of the descriptor and fd 1 itself now points at stderr.
    """
    sys.stdout.flush()
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return channel


def serve(defaults: ServerConfig, tcp: tuple[str, int] | None = None) -> int:
    """Serve one client; returns 0 after a clean ``shutdown``/``exit``, 1 otherwise (LSP's rule)."""
    channel = None if tcp is not None else _protocol_stdout()  # first, before anything can print
    from hotfix_engine.log_redaction import install
    from hotfix_engine.paths import PRIVATE_UMASK
    from hotfix_server.server import create_server
    from hotfix_server.transport import serve_stdio, serve_tcp

    # The CLI did both already; a server started another way must not log or create files in the open.
    os.umask(PRIVATE_UMASK)
    install()

    # pygls logs every message at INFO: far too much on stderr, which some clients show to users.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("pygls").setLevel(logging.WARNING)
    server = create_server(defaults)
    # Our transports, not pygls's: bounded frames, and one client per TCP server (transport.py).
    if tcp is not None:
        serve_tcp(server, *tcp)
    else:
        serve_stdio(server, sys.stdin.buffer, channel)  # type: ignore[arg-type]
    code = 0 if server.protocol.shut_down else 1
    server.close()
    logging.shutdown()
    # Worker threads (a generation, a model still loading) must not keep a finished server alive.
    os._exit(code)
