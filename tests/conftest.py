"""Shared fixtures: a tiny random model saved once per session, and an isolated data folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_model import save_tiny_model, silence_unprintable  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a tiny random Llama and its tokenizer (a valid ``--model`` spec)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def printable_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, unable to emit undecodable bytes, control characters, newlines or special tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)

    silence_unprintable(model, tokenizer)
    folder = tmp_path_factory.mktemp("printable-model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir: Path):
    """The tiny model loaded through the engine's own loader, shared by read-only tests."""
    from hotfix_engine.models import load_model

    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data and cache folder: nothing touches the user's real ones."""
    home = tmp_path / "hotfix-home"
    monkeypatch.setenv("HOTFIX_HOME", str(home))
    monkeypatch.setenv("HOTFIX_CACHE", str(tmp_path / "hotfix-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # A developer's team store is never written by the tests: each test says which store it opens.
    monkeypatch.delenv("HOTFIX_STORE", raising=False)
    monkeypatch.delenv("HOTFIX_USER", raising=False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return home


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random qwen2 model (with FIM tokens) as an F32 GGUF file, for llama.cpp and GGUF paths."""
    from tiny_gguf import save_tiny_gguf

    return save_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny-qwen2.gguf")


@pytest.fixture(scope="session")
def printable_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GGUF unable to emit unprintable text: a visible suggestion on llama.cpp and transformers."""
    from tiny_gguf import save_tiny_gguf

    return save_tiny_gguf(tmp_path_factory.mktemp("printable-gguf") / "printable-qwen2.gguf", printable=True)
