"""Circuit breakers: stop calling a model that keeps failing, probe it again after a cool-down.

States: `closed` (healthy: calls go through), `open` (calls skip the model and go to its
fallbacks), `half_open` (the cool-down has passed: one probe call is let through; its success
closes the breaker, its failure opens it again). Only transient failures count (rate limits,
5xx, timeouts, broken answers): a bad request says nothing about the model's health.
Time comes from an injected clock, so tests never wait.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from orchestra._base import Frozen

__all__ = ["BreakerPolicy", "BreakerState", "CircuitBreaker", "CircuitBreakers"]

BreakerState = Literal["closed", "open", "half_open"]


class BreakerPolicy(Frozen):
    """When a model's circuit opens and how long it stays open.

    Example:
        >>> BreakerPolicy(failures=3, window=10, cooldown=5).failures
        3
    """

    failures: int = Field(default=5, ge=1)
    """Transient failures within `window` seconds that open the circuit."""
    window: float = Field(default=30.0, gt=0)
    """Seconds over which failures are counted."""
    cooldown: float = Field(default=15.0, gt=0)
    """Seconds the circuit stays open before one probe call is let through."""


@dataclass
class CircuitBreaker:
    """One model's breaker."""

    policy: BreakerPolicy
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = "closed"
    _failures: deque[float] = field(default_factory=deque[float])
    _opened_at: float = 0.0
    _probing: bool = False

    def _set(self, state: BreakerState) -> None:
        self.state = state

    def peek(self) -> BreakerState:
        """The state a call arriving now would see (an open circuit past its cool-down is
        half-open), without changing anything."""
        if self.state == "open" and self.clock() - self._opened_at >= self.policy.cooldown:
            return "half_open"
        return self.state

    def cooldown_left(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.policy.cooldown - (self.clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call go to the model now? (Half-open lets exactly one probe through.)"""
        if self.state == "closed":
            return True
        if self.state == "open":
            if self.clock() - self._opened_at < self.policy.cooldown:
                return False
            self._set("half_open")
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        """A call answered: the model is healthy."""
        self._failures.clear()
        self._probing = False
        self._set("closed")

    def failure(self) -> None:
        """A call failed transiently."""
        now = self.clock()
        if self.state == "half_open":
            self._probing = False
            self._opened_at = now
            self._set("open")
            return
        self._failures.append(now)
        while self._failures and self._failures[0] <= now - self.policy.window:
            self._failures.popleft()
        if self.state == "closed" and len(self._failures) >= self.policy.failures:
            self._opened_at = now
            self._failures.clear()
            self._set("open")

    def release(self) -> None:
        """A probe ended without a verdict (cancelled): let the next call probe."""
        self._probing = False


class CircuitBreakers:
    """The breakers of every model, shared by the nodes of a run and across runs."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, model: str, policy: BreakerPolicy) -> CircuitBreaker:
        """The breaker of `model` (created closed on first use; a new policy applies at once)."""
        breaker = self._breakers.get(model)
        if breaker is None:
            breaker = CircuitBreaker(policy, self._clock)
            self._breakers[model] = breaker
        breaker.policy = policy
        return breaker

    def state(self, model: str) -> BreakerState:
        """The breaker state of `model` as a call would see it (`closed` if never called)."""
        breaker = self._breakers.get(model)
        return "closed" if breaker is None else breaker.peek()

    def unavailable(self) -> frozenset[str]:
        """Models whose circuit is open right now (routers should avoid them)."""
        return frozenset(name for name in self._breakers if self.state(name) == "open")
