"""GGUF LoRA export: llama.cpp applies an exported peft LoRA as peft does, for attention and MLP
targets and through the ``llama`` architecture's Q/K interleaving; what llama.cpp cannot apply is
refused with one clear line; versions convert once, atomically, and torn files are redone.

Tolerance: logits are compared at 1e-3 absolute (they reach about +-30). Measured with an F32 KV
cache: ~1e-5 between llama.cpp and transformers for the base, 1e-5 to 3e-5 with a LoRA applied.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tiny_gguf import save_tiny_gguf

from hotfix_engine import gguf_lora
from hotfix_engine.errors import AdapterError
from hotfix_engine.gguf_lora import GGUF_LORA_FILE, check_gguf_lora, ensure_gguf_lora, export_gguf_lora

TOLERANCE = 1e-3
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]
CODE = "def add(a, b):\n    return a + b\n\n\nclass Stack:\n    def push(self, item):\n        self.items.append(item)\n"
F32 = 0  # GGML_TYPE_F32: llama.cpp's default F16 KV cache alone moves logits by ~6e-3


@pytest.fixture(scope="module")
def models(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimpleNamespace]:
    """The tiny qwen2 GGUF and a llama one (whose Q/K rows are interleaved), each loaded in transformers."""
    from hotfix_engine.models import load_model

    files = {
        "qwen2": tiny_gguf,
        "llama": save_tiny_gguf(tmp_path_factory.mktemp("llama") / "tiny-llama.gguf", arch="llama"),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOTFIX_CACHE", str(tmp_path_factory.mktemp("cache")))
        return {
            arch: SimpleNamespace(path=path, loaded=load_model(str(path), device="cpu"))
            for arch, path in files.items()
        }


def token_ids(models) -> list[int]:
    return models["qwen2"].loaded.tokenizer(CODE)["input_ids"][:48]


def save_lora(
    loaded, folder: Path, targets: list[str], ids: list[int], seed: int = 1, **options
) -> np.ndarray:
    """Wrap the model in a LoRA with random non-zero B, save it to ``folder``, and return peft's logits."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    peft_model = get_peft_model(
        loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules=targets, **options)
    )
    try:
        with torch.no_grad():
            for name, parameter in peft_model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0.0, 0.1)
            logits = peft_model(torch.tensor([ids])).logits[0].numpy()
        peft_model.save_pretrained(str(folder))
    finally:
        peft_model.unload()
    return logits


def llama_cpp_logits(model_path: Path, ids: list[int], lora: Path | None = None) -> np.ndarray:
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(
        model_path=str(model_path),
        lora_path=str(lora) if lora else None,
        n_ctx=256,
        logits_all=True,
        type_k=F32,
        type_v=F32,
        verbose=False,
    )
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        llm.close()


@pytest.fixture(scope="module")
def lora_folder(models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real peft LoRA (attention targets) for the qwen2 model; tests copy it before changing it."""
    folder = tmp_path_factory.mktemp("lora")
    save_lora(models["qwen2"].loaded, folder, ATTENTION, token_ids(models))
    return folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "adapter"))


# --- The tiny GGUF itself --------------------------------------------------------------------------


def test_tiny_gguf_reads_the_same_in_llama_cpp_and_transformers(models):
    llama_cpp = pytest.importorskip("llama_cpp")
    for arch, model in models.items():
        ids = token_ids(models)
        with torch.no_grad():
            expected = model.loaded.model(torch.tensor([ids])).logits[0].numpy()
        got = llama_cpp_logits(model.path, ids)
        assert np.abs(got - expected).max() < TOLERANCE, arch
        assert np.abs(expected).max() > 5  # the comparison is not between near-zero logits
        vocab = llama_cpp.Llama(model_path=str(model.path), vocab_only=True, verbose=False)
        tokenizer = model.loaded.tokenizer
        for line in CODE.splitlines(keepends=True) + ["x = {'k': [1, 22, 333]}\t# done\r\n"]:
            assert tokenizer(line)["input_ids"] == vocab.tokenize(line.encode(), add_bos=False), line
        fim = "<|fim_prefix|>def f(x):<|fim_suffix|>\n<|fim_middle|>"
        assert tokenizer(fim)["input_ids"] == vocab.tokenize(fim.encode(), add_bos=False, special=True)
        vocab.close()
    assert models["qwen2"].loaded.fim is not None


def test_writing_the_tiny_gguf_is_quick(tmp_path):
    import time

    save_tiny_gguf(tmp_path / "warm.gguf")
    started = time.perf_counter()
    save_tiny_gguf(tmp_path / "again.gguf", seed=3)
    assert time.perf_counter() - started < 2.0


# --- llama.cpp applies the export as peft does -----------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "targets"),
    [("qwen2", ATTENTION), ("qwen2", MLP), ("llama", ATTENTION)],
    ids=["qwen2-attention", "qwen2-mlp", "llama-attention-interleaved-qk"],
)
def test_llama_cpp_applies_the_exported_lora_as_peft_does(models, tmp_path, arch, targets):
    pytest.importorskip("llama_cpp")
    model, ids = models[arch], token_ids(models)
    expected = save_lora(model.loaded, tmp_path / "adapter", targets, ids)
    out = export_gguf_lora(tmp_path / "adapter", model.path, tmp_path / "adapter" / GGUF_LORA_FILE)
    base = llama_cpp_logits(model.path, ids)
    with_lora = llama_cpp_logits(model.path, ids, lora=out)
    assert np.abs(with_lora - expected).max() < TOLERANCE
    assert np.abs(with_lora - base).max() > 100 * TOLERANCE  # the adapter is applied at all


def test_half_precision_adapters_export_like_f32_ones(lora_folder, models, tmp_path):
    import gguf
    from safetensors.torch import load_file, save_file

    def exported(folder: Path) -> dict[str, np.ndarray]:
        out = export_gguf_lora(folder, models["qwen2"].path, tmp_path / f"{folder.name}.gguf")
        return {t.name: np.array(t.data) for t in gguf.GGUFReader(out).tensors}

    reference = exported(lora_folder)
    tensors = load_file(lora_folder / "adapter_model.safetensors")
    for dtype, tolerance in ((torch.float16, 1e-3), (torch.bfloat16, 1e-2)):
        folder = tmp_path / str(dtype).split(".")[-1]
        folder.mkdir()
        shutil.copy(lora_folder / "adapter_config.json", folder)
        save_file({k: v.to(dtype) for k, v in tensors.items()}, folder / "adapter_model.safetensors")
        got = exported(folder)
        assert got.keys() == reference.keys()
        for name, array in got.items():
            assert array.dtype == np.float32
            np.testing.assert_allclose(array, reference[name], rtol=tolerance, atol=tolerance, err_msg=name)


# --- What llama.cpp cannot apply is refused --------------------------------------------------------


def edit_config(folder: Path, **changes) -> None:
    path = folder / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def add_tensors(folder: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import load_file, save_file

    path = folder / "adapter_model.safetensors"
    save_file({**load_file(path), **tensors}, path)


def drop_tensors(folder: Path, fragment: str) -> None:
    from safetensors.numpy import load_file, save_file

    path = folder / "adapter_model.safetensors"
    save_file({k: v for k, v in load_file(path).items() if fragment not in k}, path)


def lora_pair(
    module: str, n_in: int = 64, n_out: int = 64, a: str = "lora_A.weight", b: str = "lora_B.weight"
):
    """Rank-4 A and B matrices for ``module``, named as peft names them."""
    return {
        f"base_model.model.{module}.{a}": np.ones((4, n_in), np.float32),
        f"base_model.model.{module}.{b}": np.ones((n_out, 4), np.float32),
    }


EMBEDDING = lora_pair("model.embed_tokens", n_in=405, a="lora_embedding_A", b="lora_embedding_B")
WRONG_A = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": np.ones((4, 32), np.float32)}
REFUSALS = {
    "ia3": (lambda f: edit_config(f, peft_type="IA3"), "peft type IA3 is not LoRA"),
    "prefix": (lambda f: edit_config(f, peft_type="PREFIX_TUNING"), "peft type PREFIX_TUNING is not LoRA"),
    "prompt": (lambda f: edit_config(f, peft_type="PROMPT_TUNING"), "peft type PROMPT_TUNING is not LoRA"),
    "rslora": (lambda f: edit_config(f, use_rslora=True), r"rsLoRA \(use_rslora\)"),
    "dora": (lambda f: edit_config(f, use_dora=True), r"DoRA \(use_dora\)"),
    "modules_to_save": (lambda f: edit_config(f, modules_to_save=["lm_head"]), "modules_to_save"),
    "alpha_pattern": (lambda f: edit_config(f, alpha_pattern={"q_proj": 16}), "alpha_pattern"),
    "embedding": (lambda f: add_tensors(f, EMBEDDING), "LoRA on an embedding"),
    "lm_head": (
        lambda f: add_tensors(f, lora_pair("lm_head", n_out=405)),
        r"lm_head \(embeddings or lm_head\) is not supported",
    ),
    "saved_module": (
        lambda f: add_tensors(f, {"base_model.model.lm_head.weight": np.ones((405, 64), np.float32)}),
        "is not a LoRA A/B matrix",
    ),
    "no_such_layer": (
        lambda f: add_tensors(f, lora_pair("model.layers.7.self_attn.q_proj")),
        "target model.layers.7.self_attn.q_proj has no tensor in tiny-qwen2.gguf",
    ),
    "unknown_module": (
        lambda f: add_tensors(f, lora_pair("model.layers.0.self_attn.gate")),
        "self_attn.gate has no tensor",
    ),
    "half_a_pair": (lambda f: drop_tensors(f, "layers.1.self_attn.v_proj.lora_B"), "v_proj lacks its lora_B"),
    "wrong_shape": (lambda f: add_tensors(f, WRONG_A), r"do not fit blk.0.attn_q.weight \(64 x 64\)"),
    "not_a_folder": (
        lambda f: (f / "adapter_model.safetensors").unlink(),
        "missing adapter_model.safetensors",
    ),
    "corrupt_weights": (
        lambda f: (f / "adapter_model.safetensors").write_bytes(b"\x00" * 3),
        "not a safetensors",
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_what_llama_cpp_cannot_apply_is_refused_with_one_clear_line(lora_folder, models, tmp_path, case):
    change, message = REFUSALS[case]
    folder = copy_of(lora_folder, tmp_path)
    change(folder)
    with pytest.raises(AdapterError, match=message) as caught:
        export_gguf_lora(folder, models["qwen2"].path, folder / GGUF_LORA_FILE)
    assert "\n" not in str(caught.value)
    assert not list(folder.glob("*.gguf*")), "nothing written, not even a temporary file"


def test_a_base_of_an_unknown_architecture_is_refused(lora_folder, tmp_path):
    import gguf

    writer = gguf.GGUFWriter(tmp_path / "odd.gguf", "no-such-arch")
    writer.add_block_count(2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    with pytest.raises(AdapterError, match="does not know the architecture 'no-such-arch'"):
        export_gguf_lora(lora_folder, tmp_path / "odd.gguf", tmp_path / "out.gguf")
    with pytest.raises(AdapterError, match="not a GGUF file"):
        export_gguf_lora(lora_folder, lora_folder / "adapter_config.json", tmp_path / "out.gguf")


# --- Versions: convert once, atomically; torn files are redone, corrupt ones reported -------------


def test_an_old_version_is_converted_once_and_then_reused(lora_folder, models, tmp_path, monkeypatch):
    version = copy_of(lora_folder, tmp_path)
    path = ensure_gguf_lora(version, models["qwen2"].path)
    assert path == version / GGUF_LORA_FILE and path.is_file()
    check_gguf_lora(path)
    before = path.stat()

    def no_second_conversion(*args):
        raise AssertionError("converted again")

    monkeypatch.setattr(gguf_lora, "export_gguf_lora", no_second_conversion)
    assert ensure_gguf_lora(version, models["qwen2"].path) == path
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in version.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("torn", ["empty", "half"])
def test_a_torn_gguf_lora_is_converted_again(lora_folder, models, tmp_path, caplog, torn):
    version = copy_of(lora_folder, tmp_path)
    whole = ensure_gguf_lora(version, models["qwen2"].path).read_bytes()
    (version / GGUF_LORA_FILE).write_bytes(b"" if torn == "empty" else whole[: len(whole) // 2])
    with caplog.at_level(logging.WARNING, logger="hotfix_engine.gguf_lora"):
        path = ensure_gguf_lora(version, models["qwen2"].path)
    assert path.read_bytes() == whole
    assert "torn" in caplog.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04 not a gguf at all" * 10, "is not a GGUF file"),
        ("base", "not a LoRA adapter"),
    ],
    ids=["garbage", "a-model-not-an-adapter"],
)
def test_a_corrupt_gguf_lora_is_reported_not_overwritten(lora_folder, models, tmp_path, content, message):
    version = copy_of(lora_folder, tmp_path)
    bad = models["qwen2"].path.read_bytes() if content == "base" else content
    (version / GGUF_LORA_FILE).write_bytes(bad)
    with pytest.raises(AdapterError, match=message):
        ensure_gguf_lora(version, models["qwen2"].path)
    assert (version / GGUF_LORA_FILE).read_bytes() == bad


def test_exporting_needs_no_torch(lora_folder, models, tmp_path):
    code = (
        "import sys; from pathlib import Path; import hotfix_engine.gguf_lora as g; "
        f"g.export_gguf_lora(Path({str(lora_folder)!r}), Path({str(models['qwen2'].path)!r}), "
        f"Path({str(tmp_path / 'out.gguf')!r})); "
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    check_gguf_lora(tmp_path / "out.gguf")


# --- The trainer publishes the GGUF form with the version ------------------------------------------


@pytest.mark.parametrize("fails", [False, True], ids=["written", "conversion-fails"])
def test_a_trained_lora_version_carries_its_gguf_form(tiny_gguf, tmp_path, monkeypatch, fails):
    from hotfix_engine.adapters import AdapterRegistry
    from hotfix_engine.models import load_model
    from hotfix_engine.pairs import BugFixPair
    from hotfix_engine.train_config import TrainConfig
    from hotfix_engine.train_data import build_training_data
    from hotfix_engine.training_run import train_and_publish

    if fails:

        def broken(*args):
            raise AdapterError("simulated conversion failure")

        monkeypatch.setattr(gguf_lora, "export_gguf_lora", broken)
    loaded = load_model(str(tiny_gguf), device="cpu")
    pair = BugFixPair(prefix="def add(a, b):\n", buggy="    return a - b", fixed="    return a + b", id="add")
    data = build_training_data(loaded.tokenizer, [pair], retain_windows=2, window_tokens=24)
    config = TrainConfig(epochs=1, batch_size=1, nice=0, threads=1, window_tokens=24, retain_positions=8)
    outcome = train_and_publish(loaded, data, [], config, data_dir=tmp_path / "home", progress=False)
    version = AdapterRegistry(tmp_path / "home", loaded.key).get(outcome.version.version)
    assert (version.path / "adapter_model.safetensors").is_file()
    if fails:
        assert not (version.path / GGUF_LORA_FILE).exists()
        assert version.manifest["gguf_lora"] == "simulated conversion failure"
    else:
        check_gguf_lora(version.path / GGUF_LORA_FILE)
        assert "gguf_lora" not in version.manifest
