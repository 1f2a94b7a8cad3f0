"""JSON Lines files (pairs, problems): read whole, one object a line, errors naming file and line.

Written atomically and privately, with every text redacted: a pair file leaves hotfix's hands.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from hotfix_engine.errors import DataError


def read_objects(path: Path, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, object)`` for each non-blank line; ``where`` is ``"path:line: "`` for messages.

    ``what`` names the file in errors ("pair file"); a ``.gz`` file is read decompressed.
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                text = handle.read()
        else:
            text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"{path}: cannot read {what} ({exc})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}: "
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{where}expected a JSON object")
        yield where, obj


def _redacted(value: Any) -> Any:
    from hotfix_engine.redact import redact

    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def write_objects(path: Path, objects: Iterable[dict[str, Any]], *, redact: bool = True) -> int:
    """Write ``objects`` as JSON Lines; returns how many.

    A temporary file (0600, as is the result) is renamed into place, so a reader never sees half a
    file. With ``redact`` every string is redacted first, as the store would: files made from the
    user's code (exported or mined pairs, training data) carry no secret the store would not keep.
    """
    from hotfix_engine.paths import open_private

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    count = 0
    try:
        with open_private(tmp) as handle:
            for obj in objects:
                handle.write(json.dumps(_redacted(obj) if redact else obj, ensure_ascii=False) + "\n")
                count += 1
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
