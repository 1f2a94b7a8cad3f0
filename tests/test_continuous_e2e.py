"""Continuous hotfixing end to end: feedback through the server becomes an adapter it swaps in live.

Runs the real server over stdio with the tiny model, the real daemon, the real trainer and the real
gate: the version is published because the gate accepts it, as a user's would be.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from lsprotocol import types
from test_server_e2e import SHARED_OPTIONS, Doc, add_lora_version, command, start, status, until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def daemons(home: Path) -> list[int]:
    """Pids of the daemons serving ``home``."""
    found = subprocess.run(
        ["pgrep", "-f", f"hotfix_engine daemon .*--data-dir {home}"], capture_output=True, text=True
    ).stdout.split()
    return [int(pid) for pid in found]


async def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return result


async def test_feedback_becomes_a_live_adapter_and_continuous_mode_follows_its_setting(
    printable_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTFIX_TRAIN_ARGS", "--epochs 4")
    home = tmp_path / "home"
    options = {"model": str(printable_model), **SHARED_OPTIONS, "continuousHotfixing": True}
    client = await start(tmp_path, options)
    others = []
    try:
        await wait_for(lambda: daemons(home), 30, "the daemon")
        # Two more windows on the same data folder: still one daemon.
        others = [await start(tmp_path, options) for _ in range(2)]
        await asyncio.sleep(3)
        assert len(daemons(home)) == 1

        # The user accepts a suggestion and edits it into another statement: an edit pair.
        doc = Doc(client, "loop", "def f(x):\n    return \n")
        at = types.Position(1, len("    return "))
        [item] = (await doc.inline(at)).items
        doc.insert(at, item.insert_text)
        await command(client, "hotfix.accept", item.command.arguments[0])
        doc.edit(at, types.Position(1, len("    return ") + len(item.insert_text)), "x * 2")
        doc.insert(types.Position(2, 0), "print(f(2))\n")
        deadline = time.monotonic() + 20
        while (await status(client))["store"]["edit_pairs"] < 1:
            assert time.monotonic() < deadline, "the edit pair was not recorded"
            await asyncio.sleep(0.2)

        reply = await command(client, "hotfix.train")
        assert reply["message"] == "training requested from the background trainer"
        changes = await wait_for(lambda: client.adapter_changes, 240, "hotfix/adapterChanged")
        assert changes[0]["version"] == "v0001"
        current = await status(client)
        assert current["adapter"] == "v0001" and current["trainer"]["state"] == "idle"
        # The run reached the client as progress, and completion goes on with the new adapter.
        await wait_for(
            lambda: any(r[0].title == "hotfix: training" for r in client.progress_reports.values() if r),
            10,
            "the run's progress (the server polls the trainer's status once a second)",
        )
        after = Doc(client, "after-the-swap", "def f(x):\n    return ")
        assert len((await after.inline()).items) == 1

        # Turning the setting off stops the daemon; the adapter stays.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={**options, "continuousHotfixing": False})
        )
        for other in others:
            await other.shutdown_session()
            await other.stop()
        others = []
        await wait_for(lambda: not daemons(home), 30, "the daemon to stop")
        assert (await status(client))["adapter"] == "v0001"
    finally:
        for other in others:
            await other.shutdown_session()
            await other.stop()
        await client.shutdown_session()
        await client.stop()
    for pid in daemons(home):
        os.kill(pid, 15)


async def test_a_corrupt_or_deleted_newest_adapter_leaves_the_server_serving(
    printable_model: Path, tmp_path: Path
) -> None:
    from hotfix_engine.adapters import AdapterRegistry

    client = await start(tmp_path, {"model": str(printable_model), **SHARED_OPTIONS})
    try:
        registry = AdapterRegistry(tmp_path / "home", (await status(client))["modelKey"])
        good = add_lora_version(printable_model, registry)
        registry.set_current(good)
        await until(client, lambda s: s["adapter"] == good)

        bad = add_lora_version(printable_model, registry)
        (registry.root / bad / "adapter_model.safetensors").write_bytes(b"torn write")
        # The pointer names it (written whole, as the registry does): the server must keep what it has.
        (registry.root / "current.new").write_text(bad)
        os.replace(registry.root / "current.new", registry.root / "current")
        await wait_for(
            lambda: any("keeping adapter" in m.message for m in client.messages), 30, "the warning"
        )
        assert (await status(client))["adapter"] == good
        await asyncio.sleep(2)  # more file events arrive; the user is told once, not once per event
        assert sum("keeping adapter" in m.message for m in client.messages) == 1
        doc = Doc(client, "still-serving", "def f(x):\n    return ")
        assert len((await doc.inline()).items) == 1

        shutil.rmtree(registry.root / good)  # deleted under the running server: its weights are loaded
        assert len((await doc.inline()).items) == 1
        assert (await status(client))["adapter"] == good
    finally:
        await client.shutdown_session()
        await client.stop()
