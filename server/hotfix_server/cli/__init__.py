"""The ``hotfix`` command: the engine's commands plus the two that need the language server.

``serve`` runs the server; ``demo`` drives it as an editor would. They live here, above the engine,
so that imports point one way: this package imports the server and the engine, the server imports
the engine, and the engine imports neither (docs/architecture.md, "Layers").
"""

from __future__ import annotations

from collections.abc import Sequence

from hotfix_engine import cli as engine_cli
from hotfix_server.cli import demo, serve


def main(argv: Sequence[str] | None = None) -> int:
    """The installed ``hotfix`` script."""
    return engine_cli.main(argv, [*engine_cli.engine_commands(), serve, demo])
