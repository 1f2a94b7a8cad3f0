"""Marking store records consumed survives a kill: a version lists its records inside its own folder,
published in the same rename, and the next run (or the daemon's next look) marks what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotfix_engine.adapters import CONSUMED, AdapterRegistry, consumed_records
from hotfix_engine.daemon import trainable_records
from hotfix_engine.pairs import BugFixPair
from hotfix_engine.store import Store

PAIRS = [
    BugFixPair(prefix="def add(a, b):\n", buggy="    return a - b", fixed="    return a + b", id="add"),
    BugFixPair(prefix="def find(items, target):\n", buggy="    return -2", fixed="    return -1", id="find"),
]


def publish(home: Path, key: str, consumed: list[str]) -> str:
    registry = AdapterRegistry(home, key)
    folder = registry.staging()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    return registry.add(folder, {"published": True}, make_current=True, consumed=consumed).version


def test_a_version_publishes_its_records_inside_its_folder(isolated_home: Path) -> None:
    version = publish(isolated_home, "tiny", ["pair:b", "pair:a"])
    folder = AdapterRegistry(isolated_home, "tiny").root / version
    assert json.loads((folder / CONSUMED).read_text()) == ["pair:a", "pair:b"]
    assert consumed_records(folder) == ["pair:a", "pair:b"]
    assert consumed_records(folder.parent) == []  # a version from before the list


def test_the_daemon_marks_what_a_killed_run_published_but_never_marked(isolated_home: Path) -> None:
    with Store.open(isolated_home) as store:
        store.add_pairs(PAIRS, origin="edit")
        ids = [p.record_id for p in store.training_records().pairs]
    assert trainable_records(isolated_home)[0] == 2
    publish(isolated_home, "tiny", ids)  # ...and the run was killed before store.mark_consumed
    assert trainable_records(isolated_home)[0] == 0
    with Store.open(isolated_home) as store:
        assert store.counts()["consumed"] == 2
        assert store.reconcile_consumed("v0001", ids) == 0  # nothing left to mark: no write at all


def test_a_train_run_killed_before_marking_does_not_train_on_the_same_records_again(
    tiny_model_dir: Path,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hotfix_engine.cli import main

    with Store.open(isolated_home) as store:
        store.add_pairs(PAIRS, origin="edit")
    argv = ["train", "--from-store", "--model", str(tiny_model_dir), "--data-dir", str(isolated_home)]
    argv += ["--epochs", "1", "--threads", "1", "--force"]

    def killed(*args: object, **kwargs: object) -> None:
        raise SystemExit(137)  # the process dies between publishing the version and marking its records

    with monkeypatch.context() as patch:
        patch.setattr(Store, "mark_consumed", killed)
        with pytest.raises(SystemExit):
            main(argv)
    capsys.readouterr()
    assert main(argv) == 1
    assert "no new" in capsys.readouterr().err
