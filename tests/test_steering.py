"""Online hotfixing at decode time (hotfix_engine.steering) on a model whose preferences are known.

The toy model below spells, character by character, the likeliest of a ranked list of completions
that still fits what it wrote so far, so its next-best suggestion is known exactly and every check
here can fail.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hotfix_engine.completion import CompletionRequest, EngineBase, common_prefix_length
from hotfix_engine.steering import Steer, first_statement, is_banned

EOS = 0


class CharTokenizer:
    """One token a character (ids 1..127 are ASCII), 0 is end of sequence; no BOS."""

    bos_token_id = None
    eos_token_id = EOS
    all_special_ids = [EOS]

    def __call__(self, text: str, add_special_tokens: bool = True) -> SimpleNamespace:
        return SimpleNamespace(input_ids=[ord(c) for c in text if 0 < ord(c) < 128])

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids if i != EOS)

    def __len__(self) -> int:
        return 128


class RankedEngine(EngineBase):
    """Writes the first of ``ranked`` that extends the text so far; a lower rank scores lower."""

    runtime = "ranked"

    def __init__(self, ranked: list[str]) -> None:
        super().__init__(SimpleNamespace(spec="ranked", key="ranked", fim=None))
        self.tokenizer = CharTokenizer()
        self.ranked = ranked
        self.cached: list[int] = []
        self.prompt_length = 0
        self.healed = ""

    @property
    def adapter_version(self) -> str | None:
        return None

    def _take_back_healed(self, prompt: list[int]) -> tuple[list[int], str]:
        prompt, self.healed = super()._take_back_healed(prompt)
        return prompt, self.healed

    def _fill(self, prompt, cancel):
        self.prompt_length = len(prompt)
        return super()._fill(prompt, cancel)

    def _reuse(self, prompt: list[int]) -> int:
        reuse = min(common_prefix_length(self.cached, prompt), len(prompt) - 1)
        self.cached = self.cached[:reuse]
        return reuse

    def _forward(self, feed: list[int]) -> np.ndarray:
        self.cached.extend(feed)
        written = self.tokenizer.decode(self.cached[self.prompt_length :])
        logits = np.full(128, -20.0, dtype=np.float32)
        if len(written) < len(self.healed):  # token healing: the prompt's last character comes first
            logits[ord(self.healed[len(written)])] = 10.0
            return logits
        written = written[len(self.healed) :]
        for rank, text in enumerate(self.ranked):
            if text.startswith(written):
                token = ord(text[len(written)]) if len(text) > len(written) else EOS
                logits[token] = max(logits[token], 10.0 - rank)
        logits[EOS] = max(logits[EOS], -5.0)
        return logits

    def _is_eos(self, token: int) -> bool:
        return token == EOS

    def _swap(self, folder, version) -> None:
        pass

    def _reset_cache(self) -> None:
        self.cached = []


@pytest.fixture()
def ranked():
    engines: list[RankedEngine] = []

    def make(*texts: str) -> RankedEngine:
        engines.append(RankedEngine(list(texts)))
        return engines[-1]

    yield make
    for engine in engines:
        engine.close()


PREFIX = "def append(x, lst="


def _complete(engine: EngineBase, steer: Steer | None = None, prefix: str = PREFIX) -> str | None:
    done = engine.complete(CompletionRequest(prefix=prefix, steer=steer or Steer(), max_new_tokens=32))
    return done.text if done else None


def test_the_model_alone_writes_its_first_choice(ranked):
    assert _complete(ranked("[]):\n", "None):\n")) == "[]):"


def test_a_banned_statement_gives_way_to_the_next_best(ranked):
    engine = ranked("[]):\n", "None):\n")
    assert _complete(engine, Steer(banned=("[]):",))) == "None):"


def test_a_banned_statement_never_appears_whatever_its_spacing(ranked):
    engine = ranked("[]):   \n", "[]) :\n", "None):\n")
    assert _complete(engine, Steer(banned=("[]):\n",))) == "[]) :"  # a different statement: kept
    assert _complete(engine, Steer(banned=("[]):", "[]) :"))) == "None):"


def test_a_longer_statement_with_the_same_start_still_shows(ranked):
    engine = ranked("foo(a)\n", "foo(a) + 1\n", "bar()\n")
    assert _complete(engine, Steer(banned=("foo(a)",)), prefix="x = ") == "foo(a) + 1"


def test_a_statement_cut_by_length_is_dropped_not_shown(ranked):
    engine = ranked("[]):")  # ends without a newline, then the end of sequence
    assert _complete(engine, Steer(banned=("[]):",))) is None


def test_a_preferred_fix_is_written_instead(ranked):
    engine = ranked("[]):\n", "None):\n")
    steer = Steer(banned=("[]):",), preferred=("set()):\n",))
    assert _complete(engine, steer) == "set()):"


def test_a_preferred_fix_survives_token_healing(ranked):
    # The prompt ends in a space, which healing takes back and the model writes again first.
    engine = ranked(" []\n", " None\n")
    assert _complete(engine, Steer(preferred=("None\n",)), prefix="x = ") == "None"


def test_statement_keys_and_bans():
    assert first_statement("  foo(a)  \n  bar") == ((False, "foo(a)"), True)
    assert first_statement("\n    return x") == ((True, "return x"), False)
    assert first_statement(" \n ") is None
    assert is_banned("foo(a)\n", ["foo(a)"])
    assert not is_banned("foo(a)", ["foo(a)"])  # not finished: it may still become foo(a) + 1
    assert is_banned("foo(a)", ["foo(a)"], ended=True)
    assert not is_banned("\nfoo(a)\n", ["foo(a)"])  # on the next line: another place


def test_a_statement_the_length_limit_would_end_is_steered_too(ranked):
    engine = ranked("abcdef", "abxyz")
    # Token healing spends the first of the 4 tokens on the space the prompt ended with.
    done = engine.complete(CompletionRequest(prefix="x = ", max_new_tokens=4, steer=Steer(banned=("abc",))))
    assert done is not None and done.text == "abx"
