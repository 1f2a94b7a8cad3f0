"""Adapter versions: atomic publishing (even when killed mid-way), the current pointer, rollback,
corrupt folders, and the `hotfix adapters` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hotfix_engine.adapters import AdapterRegistry
from hotfix_engine.errors import AdapterError

KEY = "gemma3-270m"  # the key of the default spec, so the CLI needs no --model


def stage(registry: AdapterRegistry, content: bytes = b"weights") -> Path:
    folder = registry.staging()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (folder / "adapter_model.safetensors").write_bytes(content)
    return folder


def add(
    registry: AdapterRegistry,
    published: bool = True,
    parent: str | None = None,
    current: bool = True,
    gate: dict | None = None,
):
    reason = "better" if published else "no improvement: buggy 0.0% -> 0.0%"
    manifest = {
        "published": published,
        "parent": parent,
        "method": "lora",
        "gate": gate or {"reason": reason},
    }
    return registry.add(stage(registry), manifest, make_current=current and published)


@pytest.fixture
def registry(tmp_path: Path) -> AdapterRegistry:
    return AdapterRegistry(tmp_path / "home", KEY)


def test_versions_are_numbered_and_current_follows_publishing(registry):
    assert registry.versions() == [] and registry.current() is None
    v1 = add(registry)
    v2 = add(registry, parent="v0001")
    assert [v.version for v in registry.versions()] == ["v0001", "v0002"]
    assert v1.path == registry.root / "v0001" and v2.parent == "v0001"
    assert registry.current().version == "v0002"
    assert (registry.root / "current").read_text().strip() == "v0002"
    assert registry.get("v0001").manifest["version"] == "v0001"
    assert not list(registry.root.glob(".tmp-*"))


def test_a_rejected_version_is_kept_but_cannot_become_current(registry):
    add(registry)
    rejected = add(registry, published=False, parent="v0001")
    assert not rejected.published and "no improvement" in rejected.reason
    assert registry.current().version == "v0001"
    with pytest.raises(AdapterError, match="not published"):
        registry.set_current("v0002")
    registry.set_current("v0002", force=True)
    assert registry.current_name() == "v0002"


def test_rollback_goes_to_the_parent_then_the_base(registry):
    add(registry)
    add(registry, parent="v0001")
    assert registry.rollback().version == "v0001"
    assert registry.rollback() is None
    assert registry.current() is None
    assert (registry.root / "current").read_text().strip() == "none"
    with pytest.raises(AdapterError, match="nothing to roll back"):
        registry.rollback()
    assert registry.rollback("v0002").version == "v0002"
    assert registry.rollback("none") is None
    with pytest.raises(AdapterError, match="no adapter version v0009"):
        registry.rollback("v0009")
    with pytest.raises(AdapterError, match="not a version name"):
        registry.get("latest")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda p: (p / "manifest.json").write_text("{not json"), "cannot read manifest.json"),
        (lambda p: (p / "adapter_model.safetensors").unlink(), "missing adapter_model.safetensors"),
    ],
)
def test_a_corrupt_version_folder_is_an_adapter_error(registry, damage, message):
    add(registry)
    add(registry, parent="v0001")
    damage(registry.root / "v0002")
    with pytest.raises(AdapterError, match=message):
        registry.get("v0002")
    with pytest.raises(AdapterError, match="corrupt"):
        registry.current()
    assert [v.version for v in registry.versions()] == ["v0001"]  # listed without the corrupt one
    with pytest.raises(AdapterError):
        registry.set_current("v0002")


def test_adding_an_incomplete_staging_folder_is_refused(registry):
    folder = registry.staging()
    with pytest.raises(AdapterError, match="missing"):
        registry.add(folder, {"published": True})
    assert registry.versions() == []


PUBLISHER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from hotfix_engine import adapters

    registry = adapters.AdapterRegistry(Path(sys.argv[1]), sys.argv[2])
    where = sys.argv[3]
    marker = Path(sys.argv[4])

    def pause(*args):
        marker.write_text("ready")
        time.sleep(60)

    if where == "rename":      # staged and manifest written, the version rename not yet done
        real_rename = os.rename
        os.rename = lambda *a: (pause(), real_rename(*a))
    elif where == "manifest":  # killed while writing the manifest
        real_dump = json.dump
        def dump(obj, handle, **kw):
            handle.write('{"half": ')
            handle.flush()
            pause()
        adapters.json.dump = dump
    elif where == "pointer":   # the version is in place, the pointer's temporary file half-written
        real_replace = os.replace
        def replace(src, dst):
            if str(dst).endswith("current"):
                pause()
            return real_replace(src, dst)
        os.replace = replace

    folder = registry.staging()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"x" * 1000)
    registry.add(folder, {"published": True, "parent": "v0001"}, make_current=True)
    """
)


@pytest.mark.parametrize("where", ["manifest", "rename", "pointer"])
def test_killing_a_publish_leaves_no_half_version_and_current_untouched(registry, tmp_path, where):
    add(registry)
    marker = tmp_path / "marker"
    script = tmp_path / "publisher.py"
    script.write_text(PUBLISHER)
    child = subprocess.Popen(
        [sys.executable, str(script), str(registry.root.parent.parent), KEY, where, str(marker)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert child.poll() is None, "the publisher exited before reaching the pause"
            assert time.monotonic() < deadline, "the publisher never reached the pause"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    names = [v.version for v in registry.versions()]
    if where == "pointer":
        assert names == ["v0001", "v0002"]  # the version landed whole; only the pointer move was lost
    else:
        assert names == ["v0001"]
    assert registry.current_name() == "v0001"
    # The next publish cleans the dead writer's leftovers and takes the next free number.
    nxt = add(registry, parent="v0001")
    assert nxt.version == f"v{len(names) + 1:04d}"
    assert not [p for p in registry.root.glob(".tmp-*")]
    assert registry.current_name() == nxt.version


def test_hotfix_adapters_command(registry, capsys):
    from hotfix_engine.cli import main

    add(registry)
    add(registry, published=False, parent="v0001")
    data = ["--data-dir", str(registry.root.parent.parent)]
    assert main(["adapters", "list", *data]) == 0
    out = capsys.readouterr().out
    assert "* v0001" in out and "v0002" in out and "rejected" in out and "current: v0001" in out
    assert main(["adapters", "show", "v0002", "--json", *data]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == "v0002" and shown["current"] is False
    assert main(["adapters", "rollback", *data]) == 0
    assert "none (base model)" in capsys.readouterr().out
    assert main(["adapters", "show", "v0042", *data]) == 1
    assert "no adapter version v0042" in capsys.readouterr().err
    assert main(["adapters", "rollback", "v0002", *data]) == 1
    assert "not published" in capsys.readouterr().err
    evidence = ["taught: pass - buggy 40.0% -> 5.0%", "held-out: none - no prompts of this kind"]
    gated = add(
        registry, parent="v0001", gate={"accepted": True, "reason": "taught improved", "evidence": evidence}
    )
    assert main(["adapters", "show", gated.version, *data]) == 0
    text = capsys.readouterr().out
    assert "gate: accepted - taught improved" in text and "    taught: pass - buggy 40.0% -> 5.0%" in text
