"""Online hotfixing end to end: a suggestion rejected over LSP is not suggested again at its place.

A real client talks to ``hotfix serve`` over stdio, on llama.cpp with a tiny GGUF model: reject a
suggestion, ask again at the same place and get another one; elsewhere nothing changes; the
suppression is listed and, once removed, the first suggestion comes back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

pytest.importorskip("llama_cpp")

from test_llama_server_e2e import open_and_ask  # noqa: E402
from test_server_e2e import plain, start, status  # noqa: E402

from hotfix_engine.steering import first_statement  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="function")]

OPTIONS = {"maxNewTokens": 12, "debounceMs": 0, "record": "all"}
HERE = "import os\n\n\ndef append(item, items="
ELSEWHERE = [
    "class Stack:\n    def push(self, item):\n        ",
    "def area(r):\n    return ",
    "x = [i for i in ",
]


async def suggest(client, params: types.InlineCompletionParams) -> tuple[str | None, str]:
    answer = await client.text_document_inline_completion_async(params)
    if not answer or not answer.items:
        return None, ""
    item = answer.items[0]
    return item.command.arguments[0], item.insert_text


async def command(client, name: str, *args: str):
    return plain(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(args))
        )
    )


async def test_a_rejected_suggestion_gives_way_to_another_at_once(
    printable_gguf: Path, tmp_path: Path
) -> None:
    client = await start(tmp_path, {**OPTIONS, "model": str(printable_gguf)})
    try:
        assert (await status(client))["runtime"] == "llama.cpp"
        others = [open_and_ask(client, f"file:///work/other{i}.py", text) for i, text in enumerate(ELSEWHERE)]
        before = [await suggest(client, params) for params in others]
        here = open_and_ask(client, "file:///work/a.py", HERE)
        suggestion_id, first = await suggest(client, here)
        assert suggestion_id is not None and first_statement(first) is not None

        assert (await command(client, "hotfix.reject", suggestion_id)) == {"rejected": True}
        for _ in range(3):  # the next request, and every one after it
            _, again = await suggest(client, here)
            assert first_statement(again) != first_statement(first), again
        after = [text for _, text in [await suggest(client, params) for params in others]]
        assert after == [text for _, text in before]  # other places are untouched

        listed = (await command(client, "hotfix.suppressions", "list"))["suppressions"]
        assert [item["statement"] for item in listed] == [first_statement(first)[0][1]]
        assert await command(client, "hotfix.suppressions", "remove", listed[0]["id"]) == {"removed": 1}
        _, restored = await suggest(client, here)
        assert restored == first
    finally:
        await client.shutdown_session()
        await client.stop()
