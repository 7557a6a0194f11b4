"""Token estimates made before a call is sent (for budgets, rate windows and routing)."""

from __future__ import annotations

import math

__all__ = ["estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters a token), made before a call is sent.

    Example:
        >>> estimate_tokens("What is the capital of France?")
        8
    """
    return max(1, math.ceil(len(text) / 4))
