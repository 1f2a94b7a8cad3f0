"""The demo's LSP client: it talks to ``python -m hotfix_server`` over stdio as an editor would.

One document per prompt, inline completions, commands, status, the server's progress and its
``hotfix/adapterChanged`` notification; what it receives is shown on the demo's :class:`Screen`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from hotfix_server.cli.screen import Screen

READY_TIMEOUT_S = 300.0  # the first start converts the embedded model (about a minute on 2 cores)


@dataclass
class Suggestion:
    id: str
    text: str


def _plain(value: Any) -> Any:
    """pygls's client turns untyped JSON objects into namedtuples; the demo wants dicts."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class DemoClient:
    """A small LSP client: one document per prompt, inline completions, commands and status."""

    def __init__(self, screen: Screen) -> None:
        self.screen = screen
        self.client = LanguageClient("hotfix-demo", "1")
        self.adapter_changed = asyncio.Event()
        self.adapter_version: str | None = None
        self.progress_titles: dict[str, str] = {}
        self.documents = 0
        client = self.client

        @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def create_progress(params: types.WorkDoneProgressCreateParams) -> None:
            return None

        @client.feature(types.PROGRESS)
        def progress(params: Any) -> None:
            value = _plain(params.value)
            token = str(params.token)
            if value.get("kind") == "begin":
                self.progress_titles[token] = value.get("title", "")
            title = self.progress_titles.get(token, "")
            if "training" not in title:
                return  # loading is reported by the step line; only training gets a bar
            if value.get("kind") == "end":
                # The run's end can arrive after the swap was shown and the demo moved on: no new bar then.
                if self.screen.bar is not None:
                    self.screen.progress(title, value.get("message") or "done", 1.0)
                    self.screen.close_bar()
            else:
                fraction = value.get("percentage")
                self.screen.progress(
                    title, value.get("message") or "", None if fraction is None else fraction / 100
                )

        @client.feature(types.WINDOW_SHOW_MESSAGE)
        def show_message(params: types.ShowMessageParams) -> None:
            self.screen.line(self.screen.style(f"  server: {params.message}", "33"))

        @client.feature("hotfix/adapterChanged")
        def adapter_changed(params: Any) -> None:
            self.adapter_version = _plain(params).get("version")
            self.adapter_changed.set()

    async def start(self, options: dict[str, Any], env: dict[str, str]) -> None:
        await self.client.start_io(sys.executable, "-m", "hotfix_server", env=env)
        capabilities = types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=True),
            workspace=types.WorkspaceClientCapabilities(
                execute_command=types.ExecuteCommandClientCapabilities()
            ),
        )
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=capabilities, initialization_options=options, process_id=os.getpid()
            )
        )
        self.client.initialized(types.InitializedParams())

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.client.shutdown_async(None), 30)
            self.client.exit(None)
        finally:
            await self.client.stop()

    async def status(self) -> dict[str, Any]:
        return _plain(await self.client.protocol.send_request_async("hotfix/status", None))

    async def wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            status = await self.status()
            if status["modelReady"] or status["modelError"]:
                return status
            await asyncio.sleep(0.5)
        raise TimeoutError("the model did not load in time")

    async def command(self, name: str, *arguments: Any) -> Any:
        params = types.ExecuteCommandParams(command=name, arguments=list(arguments))
        return _plain(await self.client.workspace_execute_command_async(params))

    def open(self, text: str) -> str:
        self.documents += 1
        uri = f"file:///hotfix-demo/example_{self.documents}.py"
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text))
        )
        return uri

    def change(self, uri: str, version: int, line: int, start: int, end: int, text: str) -> None:
        change = types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(line, start), types.Position(line, end)), text=text
        )
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=version, uri=uri), [change]
            )
        )

    async def suggest(self, uri: str, text: str) -> Suggestion | None:
        lines = text.split("\n")
        params = types.InlineCompletionParams(
            context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Invoked),
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(len(lines) - 1, len(lines[-1])),
        )
        result = await self.client.text_document_inline_completion_async(params)
        items = result.items if isinstance(result, types.InlineCompletionList) else list(result or [])
        command = items[0].command if items else None
        if command is None or not command.arguments:
            return None
        insert = items[0].insert_text
        return Suggestion(str(command.arguments[0]), insert if isinstance(insert, str) else insert.value)
