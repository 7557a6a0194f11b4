"""What a call is predicted to cost and how long it should take, before it is made.

Routers decide before any token is generated, so they work from estimates: the prompt's tokens
(about four characters a token) and a typical answer length. Prices and speeds come from the
spec; see `ModelSpec.cost` and `ModelSpec.predict_latency`.
"""

from __future__ import annotations

import math

from orchestra.models.spec import ModelSpec
from orchestra.models.tokens import TYPICAL_OUTPUT_TOKENS, estimate_tokens

__all__ = ["TYPICAL_OUTPUT_TOKENS", "predicted_cost", "predicted_latency", "price"]


def price(spec: ModelSpec) -> float:
    """A model's price as one number: USD per 1M tokens of a 3:1 prompt:answer call
    (infinity for an unpriced model: unknown is not free)."""
    if spec.input_cost is None or spec.output_cost is None:
        return math.inf
    # A typical call reads more than it writes.
    return 3 * spec.input_cost + spec.output_cost


def predicted_cost(
    spec: ModelSpec, prompt: str, *, output_tokens: int = TYPICAL_OUTPUT_TOKENS
) -> float:
    """USD a call of `prompt` to `spec` should cost (infinity when the spec has no price).

    Example:
        >>> spec = ModelSpec(name="m", model="x/m", input_cost=1.0, output_cost=2.0)
        >>> predicted_cost(spec, "x" * 4000, output_tokens=500)
        0.002
    """
    if not spec.priced:
        return math.inf
    return spec.cost(input_tokens=estimate_tokens(prompt), output_tokens=output_tokens)


def predicted_latency(
    spec: ModelSpec, prompt: str, *, output_tokens: int = TYPICAL_OUTPUT_TOKENS
) -> float:
    """Seconds a call of `prompt` to `spec` should take (first token, prefill, decode)."""
    return spec.predict_latency(prompt_tokens=estimate_tokens(prompt), output_tokens=output_tokens)
