"""The language server on the llama.cpp runtime, end to end over stdio with a real LSP client.

A GGUF model is served by llama.cpp by default: the status says so, suggestions arrive, a published
adapter version is converted to GGUF LoRA and hot-swapped, and the server process never imports torch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lsprotocol import types

pytest.importorskip("llama_cpp")

from test_server_e2e import start, status, until  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="function")]

OPTIONS = {"maxNewTokens": 8, "debounceMs": 0, "record": "all"}


def open_and_ask(client, uri: str, text: str) -> types.InlineCompletionParams:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text))
    )
    lines = text.split("\n")
    return types.InlineCompletionParams(
        context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Invoked),
        text_document=types.TextDocumentIdentifier(uri),
        position=types.Position(len(lines) - 1, len(lines[-1])),
    )


async def test_a_gguf_model_is_served_by_llama_cpp_and_hot_swaps_an_adapter(
    printable_gguf: Path, tmp_path: Path
) -> None:
    from test_llama_engine import make_lora

    from hotfix_engine.adapters import AdapterRegistry
    from hotfix_engine.models import parse_spec
    from hotfix_engine.runtimes import load_engine

    client = await start(tmp_path, {**OPTIONS, "model": str(printable_gguf)})
    try:
        ready = await status(client)
        assert ready["modelReady"], ready["modelError"]
        assert ready["runtime"] == "llama.cpp"
        pid = client._server.pid
        modules = Path(f"/proc/{pid}/maps").read_text()
        assert "libtorch" not in modules  # the server process never loaded torch

        params = open_and_ask(
            client, "file:///work/a.py", "class Stack:\n    def push(self, item):\n        "
        )
        first = await client.text_document_inline_completion_async(params)
        assert first.items and first.items[0].insert_text.strip()

        # Publish a version the way the trainer does; the server converts it and swaps it in.
        trainer_side = load_engine(str(printable_gguf), "transformers", device="cpu")
        staged = make_lora(trainer_side, tmp_path / "staged")
        trainer_side.close()
        registry = AdapterRegistry(tmp_path / "home", parse_spec(str(printable_gguf)).key)
        stage = registry.staging()
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copy(staged / name, stage / name)
        registry.add(stage, {"published": True}, make_current=True)
        await until(client, lambda s: s["adapter"] == "v0001", 60)
        assert client.adapter_changes[-1] == {"version": "v0001"}
        second = await client.text_document_inline_completion_async(params)
        assert second.items is not None
        assert "libtorch" not in Path(f"/proc/{pid}/maps").read_text()
    finally:
        await client.shutdown_session()
        await client.stop()
