"""``hotfix serve``: the language server, over stdio (the default) or TCP."""

from __future__ import annotations

import argparse
import logging

from hotfix_engine.cli import add_runtime_option
from hotfix_engine.errors import ConfigError

ORDER = 10


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "serve",
        parents=[common],
        help="run the language server (for editors)",
        description=(
            "Run the hotfix language server. Editors start it as `hotfix serve --stdio`. --model and "
            "--data-dir give defaults that the client's initializationOptions may override. Logs go to "
            "stderr (and --log-file); stdout carries only protocol messages."
        ),
    )
    transport = p.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (the default)")
    transport.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="listen on a TCP socket for one client (loopback only, e.g. [::1]:2087)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="let --tcp listen on an address other machines can reach; LSP has no authentication",
    )
    add_runtime_option(p)
    p.set_defaults(func=run)


def parse_address(text: str, allow_remote: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT`` too; no host: 127.0.0.1), refused off loopback unless allowed.

    Anyone who can connect can read the code the editor sends and run the server's commands: a
    remote editor should reach a loopback port through an SSH tunnel instead.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--tcp takes HOST:PORT, e.g. 127.0.0.1:2087 or [::1]:2087, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host or "127.0.0.1"
    if not allow_remote and not _is_loopback(host):
        raise ConfigError(
            f"--tcp {host} can be reached from other machines, and the language server has no "
            "authentication: anyone who connects reads your code and runs its commands. Listen on "
            "127.0.0.1 and use an SSH tunnel (ssh -L 2087:127.0.0.1:2087 host), or pass --allow-remote"
        )
    return host, int(port)


def remote_warning(host: str) -> str:
    """Said on every start with --allow-remote: the choice stays visible in the logs."""
    return (
        f"--tcp {host} can be reached from other machines, and LSP has no authentication: anyone who "
        "connects first reads the code your editor sends and runs the server's commands. Prefer "
        "127.0.0.1 and an SSH tunnel (ssh -L 2087:127.0.0.1:2087 host)"
    )


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost: it may resolve anywhere


def run(args: argparse.Namespace) -> int:
    from hotfix_server.config import ServerConfig
    from hotfix_server.main import serve

    tcp = parse_address(args.tcp, args.allow_remote) if args.tcp else None
    if tcp is not None and not _is_loopback(tcp[0]):
        logging.getLogger("hotfix").warning("%s", remote_warning(tcp[0]))
    return serve(ServerConfig(model=args.model, data_dir=args.data_dir, runtime=args.runtime), tcp)
