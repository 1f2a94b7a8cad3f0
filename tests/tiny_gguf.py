"""A tiny random model written as a GGUF file: what llama.cpp and the GGUF paths are tested on.

The weights come from a Hugging Face model built from a config (as in ``tiny_model``) and are written
F32 with gguf's own writer and tensor-name map, so transformers (which converts the file on load)
and llama.cpp read the same numbers.

Measured agreement, default qwen2 model, 40 tokens: logits from llama.cpp and transformers for the
same ids differ by at most ~1e-5 with an F32 KV cache (``type_k=type_v=0``) and ~6e-3 with llama.cpp's
default F16 KV cache, on logits that reach about +-26. Tests compare at 1e-3 (F32 cache).

Tokenizers: identical ids on ~8,600 lines of standard-library source, tabs, CRLF, digits, NFC
accents, CJK and emoji, with and without the FIM sentinels (parsed as special on both sides). They
differ only on text not in Unicode NFC form: transformers' ``Qwen2Tokenizer`` (what ``load_model``
gives for a qwen2 GGUF) NFC-normalises first and llama.cpp does not, so ``e`` followed by U+0301
becomes ``é`` (two byte tokens) in one and stays ``e`` + U+0301 in the other. Real Qwen2 GGUFs too.
``tokenizer.ggml.pre`` is ``qwen2`` because transformers always splits a qwen2 GGUF's text with
Qwen2's regex; with ``gpt-2`` llama.cpp would split a newline followed by indentation differently.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from tiny_model import build_model, build_tokenizer, silence_unprintable

FIM_TOKENS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>", "<|repo_name|>")
NORMAL, CONTROL = 1, 3  # llama.cpp's token types


@functools.cache
def _tokenizer(fim: bool) -> Any:
    tokenizer = build_tokenizer()
    if fim:
        tokenizer.add_special_tokens({"additional_special_tokens": list(FIM_TOKENS)})
    return tokenizer


def _permute_qk(weight: Any, n_head: int) -> Any:
    """llama.cpp's ``llama`` architecture pairs rotary dimensions (i, i+1); Hugging Face pairs
    (i, i + d/2). The GGUF therefore holds Q and K with each head's rows interleaved."""
    rows = weight.shape[0]
    return (
        weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def save_tiny_gguf(
    path: Path,
    seed: int = 0,
    *,
    layers: int = 2,
    hidden: int = 64,
    fim: bool = True,
    arch: str = "qwen2",
    printable: bool = False,
) -> Path:
    """Write a tiny random ``qwen2`` (or ``llama``) model with its byte-level BPE vocabulary to ``path``.

    With ``fim`` the vocabulary ends with Qwen2.5-Coder's sentinels as control tokens. The file
    loads in llama.cpp and through ``hotfix_engine.models.load_model(str(path))``. ``printable``
    silences undecodable bytes, control characters, newlines and special tokens (as conftest's
    ``printable_model``), so greedy decoding gives a visible suggestion the filters keep.
    """
    import gguf
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(fim)
    model = build_model(tokenizer, seed, layers, hidden, arch)
    config = model.config
    if printable:
        silence_unprintable(model, tokenizer)

    writer = gguf.GGUFWriter(path, arch)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(f"hotfix-tiny-{arch}-{seed}")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    specials = set(tokenizer.all_special_ids)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")
    # transformers splits a qwen2 GGUF's text with Qwen2's regex whatever this says; llama.cpp follows it.
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([CONTROL if i in specials else NORMAL for i in range(len(tokens))])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    if fim:
        ids = tokenizer.convert_tokens_to_ids(list(FIM_TOKENS))
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_PRE_ID, ids[0])
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_SUF_ID, ids[1])
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_MID_ID, ids[2])
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_SEP_ID, ids[3])
        writer.add_uint32(gguf.Keys.Tokenizer.FIM_REP_ID, ids[4])

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], config.num_hidden_layers)
    for hf_name, tensor in model.state_dict().items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ValueError(f"gguf has no tensor name for {hf_name}")
        data = tensor.detach().numpy().astype(np.float32)
        if arch == "llama" and name.endswith("attn_q.weight"):
            data = _permute_qk(data, config.num_attention_heads)
        elif arch == "llama" and name.endswith("attn_k.weight"):
            data = _permute_qk(data, config.num_key_value_heads)
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
