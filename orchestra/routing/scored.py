"""A learned check: accept the answer a fitted scorer trusts, escalate when it trusts none enough.

`Agree(2)` knows one thing about two answers: whether they match. What was learned on recorded
answers knows more: that gpt-4o-mini is right more often than deepseek on one kind of task,
that a short reasoning usually means an easy question, that an answer two models reached is
safer than either alone. `Scored` puts that into a logistic scorer over each distinct answer
(a *candidate*) of the stage's models:

- `support`: the share of the stage's models giving the candidate;
- per model (in `models` order): whether it gives the candidate, and, if so, the log of its
  output tokens (0 if not).

The check keeps the candidate with the highest probability of being right and accepts it when
that probability is at least `threshold`; otherwise it rejects (a cascade then asks its next
stage, usually one strong model). `orchestra.routing.fit_cascades` fits the scorer and the
threshold on recorded answers, within a cost budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from orchestra.checks import (
    Answer,
    AnswerKey,
    CheckContext,
    Verdict,
    answer_key,
    latest_answer,
    shorten,
)
from orchestra.errors import ConfigError
from orchestra.routing.logistic import Logistic

__all__ = ["Candidate", "Said", "Scored", "candidate_features"]


@dataclass(frozen=True)
class Said:
    """What one model said, as a scorer sees it."""

    model: str
    key: str | None
    """The answer's key (None: no final answer, or no answer at all)."""
    output_tokens: int = 0


@dataclass(frozen=True)
class Candidate:
    """One distinct answer, scored."""

    key: str
    probability: float
    index: int
    """Position (among what was said) of the latest model giving it."""
    support: int
    """How many of the stage's models give it."""


def candidate_features(models: Sequence[str], said: Sequence[Said], key: str) -> list[float]:
    """The scorer's feature row for candidate `key` (see the module docstring)."""
    tokens = {s.model: s.output_tokens for s in said if s.key == key and s.model in models}
    gives = [1.0 if m in tokens else 0.0 for m in models]
    lengths = [math.log1p(tokens[m]) if m in tokens else 0.0 for m in models]
    return [sum(gives) / len(models), *gives, *lengths]


@dataclass(frozen=True)
class Scored:
    """Accept the best-scored answer when its modelled probability is at least `threshold`.

    Example:
        >>> import orchestra as oc
        >>> from orchestra.routing.logistic import Logistic
        >>> flat = Logistic((0.0,) * 5, 0.0, (0.0,) * 5, (1.0,) * 5)  # every answer: 0.5
        >>> pair = ("cheap-a", "cheap-b")
        >>> stage = oc.routing.Stage(pair, Scored(pair, flat, threshold=0.6))
        >>> stage.check.decide([]).accepted
        False
    """

    models: Sequence[str]
    """The models whose answers the scorer reads, in its feature order (stored as a tuple)."""
    scorer: Logistic
    threshold: float
    """Least probability to accept; below it the check rejects."""
    key: AnswerKey = answer_key

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        if not self.models:
            raise ConfigError("a Scored check needs at least one model")
        width = 1 + 2 * len(self.models)
        if len(self.scorer.weights) != width:
            raise ConfigError(
                f"a Scored check over {len(self.models)} models needs a scorer of {width} "
                f"features, got {len(self.scorer.weights)}"
            )

    def rank(self, said: Sequence[Said]) -> Candidate | None:
        """The best-scored candidate (ties: the latest one given); None when none was given
        by the check's models."""
        best: Candidate | None = None
        seen: set[str] = set()
        for index in range(len(said) - 1, -1, -1):
            key = said[index].key
            if key is None or key in seen or said[index].model not in self.models:
                continue
            seen.add(key)
            features = candidate_features(self.models, said, key)
            probability = self.scorer.probability(features)
            if best is None or probability > best.probability:
                support = sum(1 for s in said if s.key == key and s.model in self.models)
                best = Candidate(key, probability, index, support)
        return best

    def decide(self, answers: Sequence[Answer]) -> Verdict:
        """The verdict, computed without any model call."""
        said = [
            Said(
                a.asked or a.model,
                self.key(a.text) if a.ok and a.text is not None else None,
                a.output_tokens,
            )
            for a in answers
        ]
        best = self.rank(said)
        if best is None:
            return Verdict(
                False,
                latest_answer(answers),
                "no answer of the scored models states a final answer",
            )
        reason = (
            f"scored {shorten(best.key)!r} {best.probability:.2f} "
            f"({best.support} of {len(self.models)} agree; threshold {self.threshold:.2f})"
        )
        return Verdict(best.probability >= self.threshold, answers[best.index], reason)

    async def judge(self, answers: Sequence[Answer], context: CheckContext) -> Verdict:
        """Accept the best-scored answer if it clears the threshold."""
        return self.decide(answers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (see `from_dict`); the answer key is not saved (the default)."""
        return {
            "kind": "scored",
            "models": list(self.models),
            "threshold": self.threshold,
            "scorer": self.scorer.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scored:
        """Build the check from `to_dict`'s form.

        Raises:
            ConfigError: a field is missing or malformed.
        """
        try:
            models = cast(list[Any], data["models"])
            scorer = cast(Mapping[str, Any], data["scorer"])
            return cls(
                tuple(str(m) for m in models), Logistic.from_dict(scorer), float(data["threshold"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"a scored check needs 'models', 'scorer', 'threshold': {exc}"
            ) from exc
