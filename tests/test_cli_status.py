"""``hotfix status``: what would be served and what is held, read without loading the model."""

from __future__ import annotations

import json
from pathlib import Path

from hotfix_engine.cli import main


def status_json(capsys, *args: str) -> dict:
    assert main(["status", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_fresh_data_folder_reports_defaults_and_creates_nothing(capsys, isolated_home: Path) -> None:
    status = status_json(capsys)
    assert status["model"] == "embedded:gemma3-270m" and status["modelKey"] == "gemma3-270m"
    assert status["adapter"] is None and status["store"] is None and status["storeError"] is None
    assert status["trainer"]["state"] == "idle"
    assert status["runtime"] in ("llama.cpp", "transformers")
    assert not (isolated_home / "store.sqlite3").exists()


def test_the_store_counts_the_current_adapter_and_the_runtime_choice(
    capsys, isolated_home: Path, tiny_model_dir: Path
) -> None:
    from hotfix_engine.adapters import AdapterRegistry
    from hotfix_engine.models import parse_spec
    from hotfix_engine.store import Store

    Store.open(isolated_home).close()
    registry = AdapterRegistry(isolated_home, parse_spec(str(tiny_model_dir)).key)
    staged = registry.staging()
    (staged / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (staged / "adapter_model.safetensors").write_bytes(b"")
    registry.add(staged, {"published": True}, make_current=True)

    status = status_json(capsys, "--model", str(tiny_model_dir))
    assert status["adapter"] == "v0001"
    assert status["runtime"] == "transformers"  # a Hugging Face folder
    assert status["store"] is not None and all(v == 0 for v in status["store"].values())

    assert main(["status", "--model", str(tiny_model_dir)]) == 0
    text = capsys.readouterr().out
    assert "adapter:  v0001" in text and "runtime:  transformers" in text


def test_a_broken_current_pointer_is_reported_not_raised(capsys, isolated_home: Path) -> None:
    root = isolated_home / "adapters" / "gemma3-270m"
    root.mkdir(parents=True)
    (root / "current").write_text("v0009\n")
    status = status_json(capsys)
    assert status["adapter"] is None and "v0009" in status["adapterError"]
