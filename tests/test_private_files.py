"""Private by default: the data folder, logs, exports, adapters and locks are their owner's only
(folders 0700, files 0600), whatever the umask, and folders an older hotfix left open are tightened."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotfix_engine.adapters import AdapterRegistry
from hotfix_engine.cli import main
from hotfix_engine.jsonl import write_objects
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.paths import open_private, private_dir
from hotfix_engine.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The usual umask, under which files are created 0644 and folders 0755 unless hotfix says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_data_folder_is_created_private_and_an_open_one_is_tightened(tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "hotfix"
    Store.open(fresh).close()
    assert mode(fresh) == 0o700 and mode(fresh.parent) == 0o700
    assert mode(fresh / "store.sqlite3") == 0o600
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    os.chmod(old, 0o755)
    Store.open(old).close()
    assert mode(old) == 0o700


def test_adapter_versions_their_files_and_locks_are_private(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "data", "tiny")
    staged = registry.staging()
    (staged / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (staged / "adapter_model.safetensors").write_bytes(b"weights")
    assert mode(staged / "adapter_model.safetensors") == 0o644  # as peft writes it under this umask
    version = registry.add(staged, {"published": True}, make_current=True)
    assert mode(tmp_path / "data") == 0o700 and mode(registry.root) == 0o700
    assert mode(version.path) == 0o700
    assert {p.name: mode(p) for p in version.path.iterdir()} == dict.fromkeys(
        ("adapter_config.json", "adapter_model.safetensors", "manifest.json"), 0o600
    )
    assert mode(registry.root / "current") == 0o600
    assert mode(registry.root.parent / ".tiny.lock") == 0o600


def test_the_cli_exports_and_logs_privately_and_restores_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store.open(data) as store:
        store.add_pairs([BugFixPair("import os\n", "x = 1", "x = 2", "", id="p1", source="import")], "import")
    log_file, out = tmp_path / "hotfix.log", tmp_path / "pairs.jsonl"
    log_file.write_text("")
    os.chmod(log_file, 0o644)
    assert (
        main(["data", "export", "--out", str(out), "--data-dir", str(data), "--log-file", str(log_file)]) == 0
    )
    assert mode(out) == 0o600 and mode(log_file) == 0o600
    assert json.loads(out.read_text())["id"] == "p1"
    assert os.umask(0o022) == 0o022  # main set its own umask and gave the caller's back


def test_whatever_the_cli_creates_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The umask the entry point sets covers what the commands create without saying so."""
    import argparse

    import hotfix_engine.cli.data as data_command

    made: dict[str, int] = {}

    def command(args: argparse.Namespace) -> int:
        folder = tmp_path / "made-by-a-command"
        folder.mkdir()
        (folder / "file").write_text("x")
        made.update(folder=mode(folder), file=mode(folder / "file"))
        return 0

    monkeypatch.setattr(data_command, "run_export", command)
    assert main(["data", "export"]) == 0
    assert made == {"folder": 0o700, "file": 0o600}


def test_helpers_create_and_tighten(tmp_path: Path) -> None:
    folder = private_dir(tmp_path / "a" / "b")
    assert mode(folder) == 0o700 and mode(folder.parent) == 0o700
    existing = tmp_path / "existing.txt"
    existing.write_text("old")
    os.chmod(existing, 0o644)
    with open_private(existing) as handle:
        handle.write("new")
    assert mode(existing) == 0o600 and existing.read_text() == "new"


def test_pair_files_are_written_private_and_redacted(tmp_path: Path) -> None:
    path = tmp_path / "out" / "pairs.jsonl"
    count = write_objects(path, [{"prefix": 'password = "Tundra5853_uI4x"\n', "buggy": "x", "n": 1}])
    assert count == 1 and mode(path) == 0o600
    assert "Tundra5853" not in path.read_text() and json.loads(path.read_text())["n"] == 1
