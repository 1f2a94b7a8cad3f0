"""What a training run is made of: :class:`TrainConfig`, every field with its default and the reason.

Kept apart from the training loop so that the command line can show these defaults (and `hotfix
--help` list every command) without importing torch; the loop (``trainer.py``) and the objectives
are imported only when a config is made and checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

METHODS = ("lora", "ia3", "prefix", "prompt")
# Learning rates that move each method visibly within a few dozen steps: prompt-style methods train
# a handful of embedding vectors and need a far higher rate than low-rank weight updates.
DEFAULT_LR = {"lora": 1e-3, "ia3": 5e-3, "prefix": 1e-2, "prompt": 3e-2}


def _default_weights() -> tuple[tuple[str, float], ...]:
    from hotfix_engine import objectives  # torch: only once a config is made, never for --help

    return tuple(objectives.DEFAULT_WEIGHTS.items())  # measured: see there


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run produces. Defaults are what `hotfix train` uses."""

    method: str = "lora"  # LoRA: the paper's choice; small, hot-swappable between requests
    weights: tuple[tuple[str, float], ...] = field(default_factory=_default_weights)
    learn_tokens: str = "whole"  # the whole fixed line: the model must write all of it, not just the diff
    unlearn_loss: str = "unlikelihood"  # bounded; gradient ascent runs away (docs/architecture.md, Contracts)
    unlearn_tokens: str = "changed"  # shared tokens fight the learn term (docs/architecture.md, Contracts)
    retain_loss: str = "kl"  # at weight 50 over 32 positions: +0.7 % held-out perplexity (hidden: +3.4 %)
    epochs: int = 3  # the paper's small data converges in a few passes; more memorises the prompt
    lr: float | None = None  # None: DEFAULT_LR for the method
    batch_size: int = 4  # pairs per step; each pair is two sequences (fixed and buggy)
    max_context: int = 64  # prefix tokens kept: the line's function is usually all the context it needs
    max_target: int = 48  # tokens of a statement; longer lines are truncated
    retain_windows: int = 32  # distinct windows of ordinary code for the retain term
    window_tokens: int = 64  # tokens per retain window: short, so the base pass stays cheap
    retain_positions: int = 32  # trailing positions of a window scored (full-vocabulary KL is costly)
    retain_batch: int = 4  # windows per step: with fewer, held-out perplexity drifted past the 2 % gate
    lora_r: int = 8  # rank 8 fixes single statements; keep fixed so peft hot-swap stays valid
    lora_alpha: int = 16  # alpha = 2r, the usual scale
    target_modules: tuple[str, ...] | None = None  # None: found per architecture (target_modules_for)
    num_virtual_tokens: int = 8  # prefix/prompt length: a few vectors suffice for a narrow behaviour
    share_context: bool = (
        True  # run a pair's shared context once for both sides (LoRA/IA3): ~40 % fewer tokens
    )
    grad_clip: float = 1.0  # keeps one odd batch from undoing the rest
    ga_max_nll: float = 6.0  # gradient-ascent stop rule: a token with p < e^-6 is unlearnt enough
    npo_beta: float = 0.1  # NPO temperature from Zhang et al. 2024
    seed: int = 0  # same data + config + seed -> same adapter
    threads: int | None = None  # None: every core when niced (completions come first), else half
    nice: int = 10  # lower CPU priority of the training process (0 leaves it alone)

    def __post_init__(self) -> None:
        from hotfix_engine import objectives

        def check(name: str, value: str, valid: Sequence[str]) -> None:
            if value not in valid:
                raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")

        check("method", self.method, METHODS)
        check("learn_tokens", self.learn_tokens, objectives.LEARN_TOKENS)
        check("unlearn_tokens", self.unlearn_tokens, objectives.LEARN_TOKENS)
        check("unlearn_loss", self.unlearn_loss, objectives.UNLEARN_LOSSES)
        check("retain_loss", self.retain_loss, objectives.RETAIN_LOSSES)
        object.__setattr__(self, "weights", tuple(objectives.validate_weights(dict(self.weights)).items()))
        positive = ["epochs", "batch_size", "max_context", "max_target", "window_tokens", "retain_positions"]
        positive += ["retain_batch", "lora_r", "lora_alpha", "num_virtual_tokens"]
        bad = [name for name in positive if getattr(self, name) < 1]
        if (
            bad
            or (self.lr is not None and not self.lr > 0)
            or (self.threads is not None and self.threads < 1)
        ):
            raise ValueError(f"must be positive: {', '.join(bad) or 'lr/threads'}")
        if self.retain_positions > self.window_tokens - 1:
            raise ValueError("retain_positions must be smaller than window_tokens")

    @property
    def weight_map(self) -> dict[str, float]:
        return dict(self.weights)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]

    def data_options(self) -> dict[str, int]:
        """What ``train_data.build_training_data`` takes from the config: examples cut as training reads them."""
        return {
            "retain_windows": self.retain_windows,
            "window_tokens": self.window_tokens,
            "max_context": self.max_context,
            "max_target": self.max_target,
            "seed": self.seed,
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["weights"] = self.weight_map
        data["lr"] = self.learning_rate
        return data


def default(name: str) -> Any:
    """A field's default without making a config (which would import torch): for the command line."""
    for item in fields(TrainConfig):
        if item.name == name:
            return item.default
    raise KeyError(name)
