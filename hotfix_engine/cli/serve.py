"""``hotfix serve``: the language server, over stdio (the default) or TCP."""

from __future__ import annotations

import argparse

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
    transport.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP socket for one client")
    add_runtime_option(p)
    p.set_defaults(func=run)


def add_runtime_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime",
        choices=("auto", "llama.cpp", "transformers"),
        default="auto",
        help="auto (default): llama.cpp for GGUF models such as the embedded ones, transformers for the rest",
    )


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--tcp takes HOST:PORT, e.g. 127.0.0.1:2087, not {text!r}")
    return host or "127.0.0.1", int(port)


def run(args: argparse.Namespace) -> int:
    from hotfix_server.config import ServerConfig
    from hotfix_server.main import serve

    tcp = parse_address(args.tcp) if args.tcp else None
    return serve(ServerConfig(model=args.model, data_dir=args.data_dir, runtime=args.runtime), tcp)
