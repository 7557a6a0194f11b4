"""Budgets: how much a run may spend (USD, tokens, wall time)."""

from __future__ import annotations

from pydantic import Field

from orchestra._base import Frozen

__all__ = ["Budget"]


class Budget(Frozen):
    """How much a run may spend: USD, tokens and wall time. None means no limit.

    When a limit is hit the run stops dispatching and raises `BudgetExceeded` with every
    finished node. USD and tokens are checked as calls finish, so calls already in flight may
    take the total a little past the limit; `max_seconds` cancels what is in flight.

    Example:
        >>> Budget(max_usd=0.50, max_seconds=120).max_tokens is None
        True
    """

    max_usd: float | None = Field(default=None, gt=0)
    """Stop once the run has spent this many US dollars."""
    max_tokens: int | None = Field(default=None, gt=0)
    """Stop once the run has used this many tokens (input plus output)."""
    max_seconds: float | None = Field(default=None, gt=0)
    """Stop the run (cancelling calls in flight) after this many seconds."""

    def exceeded(self, *, cost_usd: float, tokens: int) -> str | None:
        """The name of the spending limit reached, if any (`max_seconds` is a deadline)."""
        if self.max_usd is not None and cost_usd >= self.max_usd:
            return "max_usd"
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return "max_tokens"
        return None
