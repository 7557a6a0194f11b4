"""Token estimates made before a call is sent (for budgets, rate windows and routing).

A prompt's tokens are estimated from its characters (about four a token), corrected per model
by how the provider's reported counts compared with that estimate so far; a call's output is
expected to be as long as that model's recent answers (300 tokens until it has answered), never
more than the request's `max_tokens`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TYPICAL_OUTPUT_TOKENS", "TokenStats", "estimate_tokens", "prompt_tokens"]

TYPICAL_OUTPUT_TOKENS = 300
"""Output tokens assumed for a call whose answer length is unknown."""

# How much of each new observation moves the running estimates (an exponential average).
_WEIGHT = 0.2


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters a token), made before a call is sent.

    Example:
        >>> estimate_tokens("What is the capital of France?")
        8
    """
    return max(1, math.ceil(len(text) / 4))


def prompt_tokens(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] = ()
) -> int:
    """Estimated prompt tokens of a request: its messages' contents and tool definitions."""
    total = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
    if tools:
        total += estimate_tokens(str(tools))
    return total


@dataclass
class _Model:
    output: float = TYPICAL_OUTPUT_TOKENS
    input_ratio: float = 1.0
    answers: int = 0


@dataclass
class TokenStats:
    """What each model's answers have taught about its token counts.

    Example:
        >>> stats = TokenStats()
        >>> stats.expected_output("fast", max_tokens=None)
        300
        >>> stats.observe("fast", estimated_input=100, input_tokens=150, output_tokens=40)
        >>> stats.expected_output("fast", max_tokens=None), stats.input_tokens("fast", 100)
        (40, 150)
        >>> stats.expected_output("fast", max_tokens=16)
        16
    """

    _models: dict[str, _Model] = field(default_factory=dict[str, _Model])

    def expected_output(self, model: str, *, max_tokens: int | None) -> int:
        """Output tokens a call to `model` is expected to produce."""
        seen = self._models.get(model)
        expected = math.ceil(seen.output) if seen is not None else TYPICAL_OUTPUT_TOKENS
        return expected if max_tokens is None else min(expected, max_tokens)

    def input_tokens(self, model: str, estimated: int) -> int:
        """`estimated` prompt tokens corrected by how `model`'s counts compared so far."""
        seen = self._models.get(model)
        return estimated if seen is None else math.ceil(estimated * seen.input_ratio)

    def observe(
        self, model: str, *, estimated_input: int, input_tokens: int, output_tokens: int
    ) -> None:
        """Learn from an answered call's reported counts."""
        seen = self._models.setdefault(model, _Model())
        ratio = input_tokens / max(estimated_input, 1)
        if seen.answers == 0:
            seen.output, seen.input_ratio = float(output_tokens), ratio
        else:
            seen.output += _WEIGHT * (output_tokens - seen.output)
            seen.input_ratio += _WEIGHT * (ratio - seen.input_ratio)
        seen.answers += 1
