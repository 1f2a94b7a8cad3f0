"""Imports point one way: command line -> server -> engine, and no module imports itself back.

Read from the source with ``ast``, every ``import`` counts, those inside functions included: a
deferred import is still a dependency, and a cycle through one is still a cycle a reader must untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"hotfix_engine": ROOT / "hotfix_engine", "hotfix_server": ROOT / "server" / "hotfix_server"}


def _module_files() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _module_files()


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports; ``from package import submodule`` names the submodule."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    # Importing ``a.b.c`` runs ``a/b/__init__.py`` first: from outside ``a.b`` that is a dependency too.
    for target in list(found):
        parts = target.split(".")
        found.update(
            parent
            for parent in (".".join(parts[:n]) for n in range(1, len(parts)))
            if parent in MODULES and not _within(name, parent)
        )
    return found


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}
# ``python -m`` entry points sit above everything: they only start the command line.
ENTRY_POINTS = {"hotfix_engine.__main__", "hotfix_server.__main__"}


@pytest.mark.parametrize(
    "importer, forbidden",
    [
        # The engine is the library: no LSP, no server, no command line of the layer above.
        ("hotfix_engine", ("hotfix_server", "pygls", "lsprotocol")),
        # The server never reaches up into the command line that starts it.
        ("hotfix_server", ("hotfix_server.cli",)),
    ],
)
def test_layers_import_only_downwards(importer: str, forbidden: tuple[str, ...]) -> None:
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in IMPORTS.items()
        if _within(name, importer) and name not in ENTRY_POINTS and not _within(name, "hotfix_server.cli")
        for target in targets
        if any(_within(target, f) for f in forbidden)
    )
    assert not wrong, "\n".join(wrong)


def test_the_engine_library_never_imports_its_command_line() -> None:
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in IMPORTS.items()
        if _within(name, "hotfix_engine")
        and not _within(name, "hotfix_engine.cli")
        and name not in ENTRY_POINTS
        for target in targets
        if _within(target, "hotfix_engine.cli")
    )
    assert not wrong, "\n".join(wrong)


def _cycles() -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iteratively)."""
    graph = {
        name: sorted(t for t in targets if t in MODULES and t != name) for name, targets in IMPORTS.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if child < len(graph[node]):
                work.append((node, child + 1))
                target = graph[node][child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            for target in graph[node]:
                if target in on_stack:
                    low[node] = min(low[node], low[target])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_module_imports_itself_back() -> None:
    assert _cycles() == []


def test_the_checks_see_real_imports() -> None:
    """The checks above would pass on an empty graph: make sure they read what is there."""
    assert "hotfix_engine.store" in IMPORTS["hotfix_server.runtime"]
    assert "hotfix_engine.cli.serve" not in MODULES
    assert "hotfix_server.cli.serve" in IMPORTS["hotfix_server.cli"]
