"""One answer to "which language is this file?" for the server and ``hotfix complete``."""

from __future__ import annotations

from hotfix_engine.languages import language_of


def test_the_editors_language_id_wins() -> None:
    assert language_of("/w/a.py", "rust") == "rust"
    assert language_of("/w/a", "typescriptreact") == "typescriptreact"


def test_otherwise_the_extension_decides() -> None:
    assert language_of("/w/a.py") == "python"
    assert language_of("/w/A.PYI") == "python"
    assert language_of("/w/app.ts") == "typescript"
    assert language_of("main.rs") == "rust"
    # Not a language id: lsprotocol lets any JSON value through.
    for odd in (7, 1.5, [], {}, ""):
        assert language_of("/w/app.ts", odd) == "typescript"


def test_unknown_extensions_are_not_python_and_no_extension_is() -> None:
    assert language_of("/w/build.kts") == "kts"  # judged by brackets, as any language but Python
    assert language_of("/w/Makefile.d/notes") == "python"
    assert language_of("untitled:Untitled-1") == "python"
