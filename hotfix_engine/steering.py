"""Online hotfixing at decode time: a rejected statement is not suggested again, a user's fix is.

A hotfix adapter takes minutes to train; until then a rejected suggestion would come back on the
next keystroke. Here the decoding loop itself is steered, with no weight change (the online half of
the seed paper's method): a token that would *complete* a rejected statement is masked and the
model's next-best token is taken instead, so a different suggestion appears rather than none. Only
the whole statement is banned: the same start going on to another statement (``foo(a) + 1`` after
rejecting ``foo(a)``) is still allowed. Where the user fixed the statement, its fixed text is
produced instead, token by token, and the model decodes on from there.

Both runtimes decode through :class:`hotfix_engine.completion.EngineBase`, which calls
:meth:`Steering.pick`; statements are compared as text, so a different tokenisation of the same
statement is banned too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Candidates tried at one step before giving up on steering it: the next-best after the banned ones.
MAX_MASKED = 32


@dataclass(frozen=True)
class Steer:
    """What one request must avoid and prefer, as completions of the text at the cursor."""

    banned: tuple[str, ...] = ()
    preferred: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.banned or self.preferred)


def first_statement(text: str) -> tuple[tuple[bool, str], bool] | None:
    """``((starts on a new line, first line stripped), line complete)`` of a completion, or None if blank.

    Two completions that differ only in spacing around the statement are the same suggestion.
    """
    body = text.lstrip()
    if not body:
        return None
    new_line = "\n" in text[: len(text) - len(body)]
    end = body.find("\n")
    line = body if end < 0 else body[:end]
    return (new_line, line.strip()), end >= 0


def is_banned(completion: str, banned: Sequence[str], *, ended: bool = False) -> bool:
    """Whether ``completion``'s first statement is complete (or the text ``ended``) and was rejected."""
    found = first_statement(completion)
    if found is None:
        return False
    key, complete = found
    if not (complete or ended):
        return False
    return any((ban := first_statement(b)) is not None and ban[0] == key for b in banned)


class Steering:
    """Steers one request's decoding; the engine hands it each step's logits.

    Masking the token that would complete a rejected statement can leave the model at a dead end: at
    ``[]):`` with the newline banned it has nothing sensible left to say. So the steps spent on the
    way to a banned statement are remembered, and where the model's best remaining token there is
    less likely than taking another way at an earlier step (comparing the two paths' probabilities),
    decoding goes back to that step and takes the other way: the next-best *suggestion*, not the
    next-best token.
    """

    def __init__(
        self,
        steer: Steer,
        healed: str,
        text_of: Callable[[list[int]], str],
        is_eos: Callable[[int], bool],
        first_token: Callable[[str], int | None],
        ending: Callable[[list[int]], str | None] | None = None,
    ) -> None:
        self.steer = steer
        # The suggestion as it would be shown if the engine's stop rules end it after these ids, else
        # None: a statement they judge complete (and cut) ends it as surely as a newline does.
        self._ending = ending
        self.healed = healed
        self._text_of = text_of  # decoded text of generated ids, healed part included
        self._is_eos = is_eos
        self._first_token = first_token
        self._banned_lines = [b.strip().split("\n")[0] for b in steer.banned]
        # Per generated position while on the way to a banned statement: (log-probabilities, taken).
        self._path: list[tuple[np.ndarray, int] | None] = []
        self._last = False
        self.masked = 0  # tokens refused, for diagnosis
        self.rewinds = 0
        self.forced = 0  # tokens taken from a preferred fix

    def pick(
        self,
        logits: np.ndarray,
        generated: list[int],
        choose: Callable[[np.ndarray], int],
        *,
        last: bool = False,
    ) -> tuple[int, int]:
        """``(token, position)``: the token goes at ``generated[position]``, which is the end of
        ``generated`` unless decoding goes back to an earlier step (the engine then drops the rest).

        ``last``: no token follows this one (the length limit), so it ends the suggestion.
        """
        self._last = last
        step = len(generated)
        del self._path[step:]
        forced = self._preferred_token(generated)
        if forced is not None:
            self.forced += 1
            return forced, step
        token = choose(logits)
        if not self.steer.banned:
            return token, step
        logp = _log_softmax(logits)
        row = logits
        for _ in range(MAX_MASKED):
            if not self._completes_banned(generated, token):
                break
            self.masked += 1
            row = row.copy() if row is logits else row
            row[token] = -np.inf
            if not np.isfinite(row).any():
                break
            token = choose(row)
            back = self._way_back(generated, float(logp[token]), choose)
            if back is not None:
                self.rewinds += 1
                return back
        self._remember(generated, step, logp, token)
        return token, step

    def _remember(self, generated: list[int], step: int, logp: np.ndarray, token: int) -> None:
        on_way = self._on_way(self._suggestion(generated))
        self._path.extend([None] * (step - len(self._path)))
        self._path.append((logp, token) if on_way else None)

    def _way_back(
        self, generated: list[int], here: float, choose: Callable[[np.ndarray], int]
    ) -> tuple[int, int] | None:
        """An earlier step and another token there, when that path is likelier than going on from here."""
        best: tuple[float, int, int] | None = None
        spent = 0.0  # log-probability of the tokens taken since the candidate step
        for j in range(len(generated) - 1, -1, -1):
            entry = self._path[j] if j < len(self._path) else None
            if entry is None:
                break
            logp, taken = entry
            spent += float(logp[taken])
            row = logp.copy()
            row[taken] = -np.inf
            other = choose(row)
            if not np.isfinite(row[other]) or self._completes_banned(generated[:j], other):
                continue
            score = float(row[other]) - spent
            if score > here and (best is None or score > best[0]):
                best = (score, j, other)
        if best is None:
            return None
        _, j, other = best
        logp, taken = self._path[j]  # type: ignore[misc]
        masked = logp.copy()
        masked[taken] = -np.inf
        self._path[j] = (masked, other)  # going back here again never retakes the abandoned token
        del self._path[j + 1 :]
        return other, j

    def _on_way(self, suggestion: str) -> bool:
        body = suggestion.strip()
        return "\n" not in body and any(line.startswith(body) for line in self._banned_lines)

    def _suggestion(self, ids: list[int]) -> str:
        return self._text_of(ids)[len(self.healed) :]

    def _completes_banned(self, generated: list[int], token: int) -> bool:
        if self._is_eos(token):
            return is_banned(self._suggestion(generated), self.steer.banned, ended=True)
        ids = [*generated, token]
        if is_banned(self._suggestion(ids), self.steer.banned, ended=self._last):
            return True
        shown = self._ending(ids) if self._ending is not None else None
        return shown is not None and is_banned(shown, self.steer.banned, ended=True)

    def _preferred_token(self, generated: list[int]) -> int | None:
        """The next token of a preferred fix while the text so far follows it."""
        if not self.steer.preferred:
            return None
        raw = self._text_of(generated)
        for fix in self.steer.preferred:
            target = self.healed + fix
            if not (target.startswith(raw) and len(target) > len(raw)):
                continue
            token = self._first_token(target[len(raw) :])
            if token is not None and target.startswith(self._text_of([*generated, token])):
                return token
        return None


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    row = logits.astype(np.float32, copy=True)
    row -= row[np.isfinite(row)].max()
    row -= np.log(np.exp(row).sum())
    return row
