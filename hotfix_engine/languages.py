"""Which language a file is written in, for the engine's ``CompletionRequest.language``.

The editor's language id wins when it sends one; otherwise the file name decides. Both the server (a
document's URI and ``languageId``) and ``hotfix complete`` (a path) ask here, so a file is judged the
same way from either. The engine only distinguishes Python (parsed, indentation ends statements) from
the rest (brackets), so an unknown extension is passed on as it is: not Python.
"""

from __future__ import annotations

import posixpath

EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".go": "go",
    ".rs": "rust",
    ".rb": "ruby",
}
# A name without an extension (an untitled buffer, a script) is taken for Python, the language the
# product is built for.
DEFAULT = "python"


def language_of(name: str, language_id: object = None) -> str:
    """The language of the file ``name`` (a path or a URI's path), or ``language_id`` when it is one.

    ``language_id`` is an object, not a string: lsprotocol lets any JSON value through as a language id
    (its type is a union), and 7 once reached the engine, which failed on it.
    """
    if isinstance(language_id, str) and language_id:
        return language_id
    extension = posixpath.splitext(name)[1].lower()
    if not extension:
        return DEFAULT
    return EXTENSIONS.get(extension, extension.lstrip("."))
