"""A tiny random causal LM and a tokenizer trained on the spot: what every model test runs on.

No test may load a real model or reach a hub; this builds a 2-layer Llama from a config and a small
byte-level BPE tokenizer trained on a few kB of the standard library's own source, in about a second.
"""

from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path

import torch

CODE_SAMPLES = [
    textwrap.dedent(
        '''
        def add(a, b):
            """Return the sum."""
            return a + b


        def find(items, target):
            for index, item in enumerate(items):
                if item == target:
                    return index
            return -1


        class Stack:
            def __init__(self):
                self.items = []

            def push(self, item):
                self.items.append(item)

            def pop(self):
                if not self.items:
                    raise IndexError("pop from empty stack")
                return self.items.pop()


        def is_none(value):
            if value is None:
                return True
            return False
        '''
    ),
]


def training_corpus() -> list[str]:
    import json as json_module
    import shlex
    import textwrap as textwrap_module

    sources = [inspect.getsource(module) for module in (textwrap_module, shlex, json_module.decoder)]
    return CODE_SAMPLES * 4 + [source[:6000] for source in sources]


def build_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def build_model(tokenizer, seed: int = 0, layers: int = 2, hidden: int = 64, arch: str = "llama"):
    """A tiny random Llama (or Qwen2, the architecture ``tiny_gguf`` writes) for ``tokenizer``."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_class, model_class = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    }[arch]
    torch.manual_seed(seed)
    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = model_class(config)
    # Random weights give near-uniform logits; a larger output scale makes greedy decoding
    # decisive and sampling varied, like a real model, so stop rules and filters get exercised.
    with torch.no_grad():
        model.lm_head.weight.mul_(40.0)
        # Biases (Qwen2's attention) start at zero; random ones show they are written and read right.
        for name, parameter in model.named_parameters():
            if name.endswith(".bias"):
                parameter.normal_(0.0, 0.02)
    model.eval()
    return model


def silence_unprintable(model, tokenizer) -> None:
    """Make the model unable to emit undecodable bytes, control characters, newlines or special tokens,
    so that greedy decoding gives a visible suggestion the engine's filters keep."""

    def unprintable(token_id: int) -> bool:
        text = tokenizer.decode([token_id])
        return not text or "\ufffd" in text or any(ord(c) < 32 and c != " " for c in text)

    silenced = [i for i in range(len(tokenizer)) if unprintable(i)] + list(tokenizer.all_special_ids)
    with torch.no_grad():
        model.lm_head.weight[silenced] = 0.0


def save_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Build and save a tiny model folder that ``hotfix_engine.models.load_model`` can open."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed=seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "hotfix-test-model.json").write_text(json.dumps({"seed": seed}))
    return folder
