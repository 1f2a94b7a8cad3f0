"""The adapter slot gives the base model back clean when its last adapter goes (peft's ``unload``)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import torch
from tiny_model import build_model, build_tokenizer

from hotfix_engine.adapters_slot import AdapterSlot
from hotfix_engine.train_config import TrainConfig
from hotfix_engine.trainer import wrap_model


def peft_leftovers(model) -> list[str]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    found = [name for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]
    return found + (["peft_config"] if hasattr(model, "peft_config") else [])


def test_unloading_the_last_adapter_leaves_the_base_as_it_was(tmp_path):
    tokenizer = build_tokenizer()
    for method, name in (("lora", "v0001"), ("prompt", "v0002")):
        adapter = wrap_model(build_model(tokenizer), TrainConfig(method=method, nice=0))
        adapter.save_pretrained(tmp_path / name)
    base = build_model(tokenizer)
    weights = {name: param.detach().clone() for name, param in base.named_parameters()}
    slot = AdapterSlot(SimpleNamespace(model=base))  # type: ignore[arg-type]
    slot.load(tmp_path / "v0001", "v0001")
    assert peft_leftovers(base)  # LoRA wraps the base's layers in place
    slot.unload()
    assert slot.model is base and peft_leftovers(base) == []
    now = dict(base.named_parameters())
    assert now.keys() == weights.keys() and all(torch.equal(now[k], weights[k]) for k in weights)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # peft warns when it finds an old peft_config
        slot.load(tmp_path / "v0001", "v0001")
    slot.unload()
    slot.load(tmp_path / "v0002", "v0002")  # a prompt adapter on the same base, none of LoRA's left
    assert slot.version == "v0002" and slot.prompt_learning and peft_leftovers(base) == []
    slot.unload()
    assert slot.model is base and peft_leftovers(base) == []
