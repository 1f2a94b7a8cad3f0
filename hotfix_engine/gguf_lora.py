"""Hotfix adapters as GGUF LoRA files, the form llama.cpp loads next to a GGUF base model.

A peft LoRA stores, per targeted linear layer, ``lora_A`` (r x in) and ``lora_B`` (out x r), and adds
``(alpha / r) * B @ A`` to the layer's weight. llama.cpp's adapter file holds the same two matrices
under the base tensor's GGUF name, ``<name>.lora_a`` and ``<name>.lora_b``, in the same numpy
orientation (GGUF lists dimensions innermost first, so they read as ``[in, r]`` and ``[r, out]``), and
one ``adapter.lora.alpha``; llama.cpp scales by alpha over each pair's own rank, as peft does.

One difference is real: for the ``llama`` architecture the GGUF stores Q and K with each head's rows
interleaved (llama.cpp rotates dimension pairs (i, i+1), Hugging Face (i, i + d/2)), and transformers
undoes that when it loads the file. A delta learnt on the loaded model must be interleaved the same
way; ``delta = B @ A``, so only B's rows move.

Nothing here imports torch: the server converts adapters without it.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotfix_engine.errors import AdapterError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

GGUF_LORA_FILE = "adapter_model.gguf"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"

# Architectures whose GGUF interleaves Q/K rows relative to Hugging Face (transformers un-permutes
# exactly these when it loads a GGUF).
INTERLEAVED_QK = {"llama"}

# peft options that change what the adapter computes beyond ``(alpha / r) * B @ A``.
UNSUPPORTED_OPTIONS = {
    "use_dora": "DoRA (use_dora)",
    "use_rslora": "rsLoRA (use_rslora)",
    "alpha_pattern": "per-module alpha (alpha_pattern)",
    "lora_bias": "trained LoRA biases (lora_bias)",
    "modules_to_save": "fully trained modules (modules_to_save)",
    "trainable_token_indices": "trained token embeddings (trainable_token_indices)",
    "target_parameters": "LoRA on parameters (target_parameters)",
    "layer_replication": "layer replication",
    "alora_invocation_tokens": "aLoRA",
    "use_qalora": "QALoRA",
    "use_bdlora": "BD-LoRA",
    "kasa_config": "KaSA",
    "monteclora_config": "MonteCLoRA",
    "arrow_config": "Arrow routing",
}

LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<which>[AB])\.weight$")


def export_gguf_lora(adapter_folder: Path, base_gguf: Path, out: Path) -> Path:
    """Write the peft LoRA in ``adapter_folder`` as a GGUF LoRA for ``base_gguf`` at ``out``, atomically.

    Raises :class:`AdapterError` for adapters llama.cpp cannot apply as they are (other peft types,
    rsLoRA, DoRA, embedding or lm_head targets, saved modules) and for targets the base lacks.
    """
    import gguf
    import numpy as np

    adapter_folder, out = Path(adapter_folder), Path(out)
    config = _read_lora_config(adapter_folder)
    header = read_gguf_header(Path(base_gguf))
    arch = str(header.kv.get("general.architecture", ""))
    known = {name: model_arch for model_arch, name in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in known:
        raise AdapterError(f"{base_gguf}: the gguf package does not know the architecture {arch!r}")
    blocks = header.kv.get(f"{arch}.block_count")
    if blocks is None:
        raise AdapterError(f"{base_gguf} is not a model: it has no {arch}.block_count")
    names = gguf.get_tensor_name_map(known[arch], int(blocks))

    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, array in _read_safetensors(adapter_folder / ADAPTER_WEIGHTS):
        if "lora_embedding_" in key:
            raise AdapterError(
                f"{adapter_folder}: LoRA on an embedding ({key}) cannot be served by llama.cpp"
            )
        match = LORA_KEY.match(key)
        if match is None:
            raise AdapterError(f"{adapter_folder}: {key} is not a LoRA A/B matrix; llama.cpp cannot apply it")
        pairs.setdefault(match["module"], {})[match["which"]] = array

    writer_tensors: list[tuple[str, np.ndarray]] = []
    for module, pair in sorted(pairs.items()):
        found = names.get_type_and_name(module + ".weight", try_suffixes=(".weight",))
        if found is None or found[1] not in header.tensors:
            raise AdapterError(f"{adapter_folder}: target {module} has no tensor in {Path(base_gguf).name}")
        kind, name = found
        if kind in (gguf.MODEL_TENSOR.TOKEN_EMBD, gguf.MODEL_TENSOR.OUTPUT):
            raise AdapterError(f"{adapter_folder}: LoRA on {module} (embeddings or lm_head) is not supported")
        if set(pair) != {"A", "B"}:
            raise AdapterError(
                f"{adapter_folder}: {module} lacks its lora_{'B' if 'A' in pair else 'A'} matrix"
            )
        a, b = pair["A"], pair["B"]
        n_in, n_out = header.tensors[name][0][:2]
        if a.shape[1] != n_in or b.shape[0] != n_out or a.shape[0] != b.shape[1]:
            raise AdapterError(
                f"{adapter_folder}: {module} has A {a.shape} and B {b.shape}, which do not fit {name} "
                f"({n_out} x {n_in}); was it trained on another model?"
            )
        if arch in INTERLEAVED_QK and kind in (gguf.MODEL_TENSOR.ATTN_Q, gguf.MODEL_TENSOR.ATTN_K):
            heads = int(header.kv[f"{arch}.attention.head_count"])
            if kind == gguf.MODEL_TENSOR.ATTN_K:
                heads = int(header.kv.get(f"{arch}.attention.head_count_kv", heads))
            b = _interleave_rows(b, heads)
        writer_tensors.append((name + ".lora_a", np.ascontiguousarray(a, dtype=np.float32)))
        writer_tensors.append((name + ".lora_b", np.ascontiguousarray(b, dtype=np.float32)))
    if not writer_tensors:
        raise AdapterError(f"{adapter_folder}: the adapter holds no LoRA matrices")

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(scratch, arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
        for name, array in writer_tensors:
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(scratch, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(scratch, out)
    finally:
        if os.path.exists(scratch):
            os.unlink(scratch)
    _fsync_dir(out.parent)
    log.info("wrote %s (%d LoRA pairs, alpha %s)", out, len(writer_tensors) // 2, config["lora_alpha"])
    return out


def ensure_gguf_lora(version_folder: Path, base_gguf: Path) -> Path:
    """The GGUF LoRA of an adapter version, converted on first use (versions before it have none).

    A file that ends early (a crash while writing it) is converted again; any other damage raises
    :class:`AdapterError`, since a published file is not ours to overwrite silently.
    """
    path = Path(version_folder) / GGUF_LORA_FILE
    if path.exists():
        try:
            check_gguf_lora(path)
            return path
        except TruncatedGGUF as exc:
            log.warning("%s is torn (%s), likely from a crash while writing it; converting again", path, exc)
    return export_gguf_lora(Path(version_folder), Path(base_gguf), path)


def check_gguf_lora(path: Path) -> None:
    """Raise :class:`AdapterError` unless ``path`` is a whole GGUF LoRA adapter file."""
    header = read_gguf_header(path, check_data=True)
    if header.kv.get("general.type") != "adapter" or header.kv.get("adapter.type") != "lora":
        raise AdapterError(f"{path} is a GGUF file but not a LoRA adapter")
    if not any(name.endswith(".lora_a") for name in header.tensors):
        raise AdapterError(f"{path} holds no LoRA tensors")


def _read_lora_config(folder: Path) -> dict[str, Any]:
    missing = [name for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS) if not (folder / name).is_file()]
    if missing:
        raise AdapterError(f"{folder} is not a peft adapter folder: missing {', '.join(missing)}")
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text())
    except (OSError, ValueError) as exc:
        raise AdapterError(f"cannot read {folder / ADAPTER_CONFIG}: {exc}") from None
    kind = config.get("peft_type")
    if kind != "LORA":
        raise AdapterError(f"{folder}: peft type {kind} is not LoRA; llama.cpp serves only LoRA adapters")
    used = [label for option, label in UNSUPPORTED_OPTIONS.items() if config.get(option)]
    if config.get("bias", "none") != "none":
        used.append(f"trained biases (bias={config['bias']!r})")
    if used:
        raise AdapterError(f"{folder}: llama.cpp cannot apply LoRA with {', '.join(used)}")
    return dict(config)


def _interleave_rows(b: np.ndarray, heads: int) -> np.ndarray:
    """Reorder each head's output rows from halves (i, i + d/2) to pairs (2i, 2i + 1)."""
    rows = b.shape[0]
    return b.reshape(heads, 2, rows // heads // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def _read_safetensors(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """The tensors of a safetensors file as float32 numpy arrays (F32, F16, BF16, F64), without torch."""
    import numpy as np

    data = path.read_bytes()
    try:
        (size,) = struct.unpack_from("<Q", data, 0)
        index = json.loads(data[8 : 8 + size])
        entries = [
            (key, info["dtype"], tuple(info["shape"]), *info["data_offsets"])
            for key, info in index.items()
            if key != "__metadata__"
        ]
    except (struct.error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AdapterError(f"{path} is not a safetensors file ({exc!r})") from None
    start = 8 + size
    for key, kind, shape, begin, end in entries:
        dtype = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2"}.get(kind)
        if dtype is None:
            raise AdapterError(f"{path}: {key} has dtype {kind}; expected a float type")
        raw = data[start + begin : start + end]
        if len(raw) != int(np.prod(shape)) * np.dtype(dtype).itemsize:
            raise AdapterError(f"{path} is truncated or corrupt at {key}")
        array = np.frombuffer(raw, dtype=dtype)
        if kind == "BF16":  # bfloat16 is the top half of a float32
            array = (array.astype(np.uint32) << 16).view(np.float32)
        yield key, array.astype(np.float32).reshape(shape)


# --- A GGUF header reader --------------------------------------------------------------------------
# gguf.GGUFReader parses every array element into its own view: 19 s for Gemma 3's 262k-token
# vocabulary on two cores. Only scalars and tensor shapes are needed here, so arrays are skipped.


class TruncatedGGUF(AdapterError):
    """The file ends before its header or tensor data does: written in part."""


@dataclass(frozen=True)
class GGUFHeader:
    kv: dict[str, Any]  # scalar values only; arrays are left out
    tensors: dict[str, tuple[tuple[int, ...], int, int]]  # name: (dims innermost first, ggml type, offset)


_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9


def read_gguf_header(path: Path, *, check_data: bool = False) -> GGUFHeader:
    """A GGUF file's scalar metadata and tensor list; ``check_data`` also checks the data is all there."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                raise TruncatedGGUF(f"{path} is empty")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                return _parse_header(path, view, check_data)
    except OSError as exc:
        raise AdapterError(f"cannot read {path}: {exc}") from None


def _parse_header(path: Path, data: mmap.mmap, check_data: bool) -> GGUFHeader:
    import gguf

    pos = 0

    def take(fmt: str) -> Any:
        nonlocal pos
        try:
            (value,) = struct.unpack_from(fmt, data, pos)
        except struct.error:
            raise TruncatedGGUF(f"{path} ends inside its header") from None
        pos += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal pos
        size = take("<Q")
        if pos + size > len(data):
            raise TruncatedGGUF(f"{path} ends inside its header")
        pos += size
        return data[pos - size : pos].decode("utf-8", errors="replace")

    def skip(kind: int) -> None:
        nonlocal pos
        if kind == _STRING:
            size = take("<Q")
            pos += size
        elif kind == _ARRAY:
            inner, count = take("<I"), take("<Q")
            if inner in _SCALARS:
                pos += count * struct.calcsize(_SCALARS[inner])
            else:
                for _ in range(count):
                    skip(inner)
        elif kind in _SCALARS:
            pos += struct.calcsize(_SCALARS[kind])
        else:
            raise AdapterError(f"{path} is corrupt: unknown metadata type {kind}")

    if data[:4] != b"GGUF":
        raise AdapterError(f"{path} is not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
    if version not in (2, 3):
        raise AdapterError(f"{path}: unsupported GGUF version {version}")
    kv: dict[str, Any] = {}
    for _ in range(n_kv):
        key, kind = string(), take("<I")
        if kind == _STRING:
            kv[key] = string()
        elif kind in _SCALARS:
            kv[key] = take(_SCALARS[kind])
        else:
            skip(kind)
    tensors: dict[str, tuple[tuple[int, ...], int, int]] = {}
    for _ in range(n_tensors):
        name = string()
        dims = tuple(take("<Q") for _ in range(take("<I")))
        tensors[name] = (dims, take("<I"), take("<Q"))
    if pos > len(data):
        raise TruncatedGGUF(f"{path} ends inside its header")
    if check_data:
        alignment = int(kv.get("general.alignment", 32))
        start = -(-pos // alignment) * alignment
        for name, (dims, kind, offset) in tensors.items():
            try:
                block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(kind)]
            except (ValueError, KeyError):
                raise AdapterError(f"{path} is corrupt: {name} has unknown type {kind}") from None
            count = 1
            for dim in dims:
                count *= dim
            if start + offset + count // block * size > len(data):
                raise TruncatedGGUF(f"{path} ends inside the data of {name}")
    return GGUFHeader(kv, tensors)


def _fsync_dir(path: Path) -> None:
    """Make the rename durable: without it a crash can lose the new directory entry."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no directory handles (Windows)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
