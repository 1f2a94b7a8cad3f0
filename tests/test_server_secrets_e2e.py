"""The secret corpus through the real language server: documents holding secrets are opened, typed
into in pieces, completed, accepted and edited, with ``record: all`` and ``-vv`` logging to a file;
then the store's files and the log are searched for every secret value. None may be there."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp.client import LanguageClient, make_test_lsp_client
from secret_corpus import Case, corpus, secrets_of
from test_server_e2e import READY_TIMEOUT_S, SHARED_OPTIONS, Doc, command, server_env, until

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="function")]

# Every category, a few cases each: the server runs the tiny model once a case.
CASES = [case for i, case in enumerate(corpus()) if i % 3 == 0 or case.pieces]


async def _start(home: Path, model: Path, log_file: Path) -> LanguageClient:
    client = make_test_lsp_client()
    await client.start_io(
        sys.executable, "-m", "hotfix_server", "-vv", "--log-file", str(log_file), env=server_env(home)
    )
    options = {"model": str(model), **SHARED_OPTIONS, "editWindowSeconds": 30, "suggestionExpirySeconds": 30}
    await client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities(), initialization_options=options)
    )
    await until(client, lambda s: s["modelReady"] or s["modelError"], READY_TIMEOUT_S)
    return client


async def _suggest(doc: Doc) -> tuple[str, str] | None:
    result = await doc.inline()
    if not result.items:
        return None
    item = result.items[0]
    return item.command.arguments[0], item.insert_text


async def _exercise(client: LanguageClient, i: int, case: Case) -> None:
    if case.pieces:
        # Typed in pieces, a suggestion asked for (and passed over) after each.
        doc = Doc(client, f"pieces{i}", case.pieces[0])
        for piece in case.pieces[1:]:
            await _suggest(doc)
            doc.insert(doc.end(), piece)
        return
    doc = Doc(client, f"case{i}", "import os\n\n" + case.text)
    suggested = await _suggest(doc)  # the secret is in the code before the cursor
    if suggested is None:
        return
    sid, text = suggested
    at = doc.end()
    doc.insert(at, text)
    await command(client, "hotfix.accept", sid)
    # The user replaces the accepted line with the secret's line: an edit pair holding it.
    line = case.text.rstrip("\n").split("\n")[-1]
    end = types.Position(at.line, at.character + len(text.split("\n")[0]))
    doc.edit(types.Position(at.line, 0), end, line)
    doc.insert(doc.end(), "\nprint('done')\n")


def _found(haystack: bytes, secrets: list[str]) -> list[str]:
    forms = [(s, {s.encode(), json.dumps(s)[1:-1].encode()}) for s in secrets]
    return [s for s, encoded in forms if any(e in haystack for e in encoded)]


async def test_the_server_keeps_no_secret_in_its_store_or_its_log(
    printable_model: Path, tmp_path: Path
) -> None:
    log_file = tmp_path / "server.log"
    client = await _start(tmp_path, printable_model, log_file)
    try:
        for i, case in enumerate(CASES):
            await _exercise(client, i, case)
        await asyncio.sleep(0.5)
        status: dict[str, Any] = await client.protocol.send_request_async("hotfix/status", None)
        assert status is not None
    finally:
        await client.shutdown_session()
        await client.stop()
    home = tmp_path / "home"
    store = b"".join(p.read_bytes() for p in home.iterdir() if p.name.startswith("store.sqlite3"))
    assert store, "nothing was recorded"
    secrets = secrets_of(CASES)
    log = log_file.read_bytes()
    assert b"Sending data" in log or b"insertText" in log  # -vv: the protocol traffic was logged
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600 and stat.S_IMODE(home.stat().st_mode) == 0o700
    # The suppressions table included: rejected suggestions there are redacted with the code above.
    assert {"store": _found(store, secrets), "log": _found(log, secrets)} == {"store": [], "log": []}
