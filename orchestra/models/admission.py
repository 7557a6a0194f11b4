"""Admission: per-model concurrency and request/token rates, shared by every run.

Rates use a sliding 60-second window of what was sent. Time and sleeping are injected so the
limits can be tested without waiting.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from orchestra.models.spec import ModelSpec

__all__ = ["ModelLimits", "RateWindow", "Sent"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
WINDOW = 60.0


@dataclass
class Sent:
    """One request in the rate window; `tokens` is corrected once the provider reports usage."""

    at: float
    tokens: int


@dataclass
class RateWindow:
    """Requests and tokens sent in the last minute, and how long to wait for room.

    Example:
        >>> now = [0.0]
        >>> window = RateWindow(rpm=2, tpm=None, clock=lambda: now[0])
        >>> _ = window.record(10); _ = window.record(10)
        >>> window.wait_time(10)
        60.0
    """

    rpm: int | None
    tpm: int | None
    clock: Clock = time.monotonic
    _sent: deque[Sent] = field(default_factory=deque[Sent])

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0].at <= now - WINDOW:
            self._sent.popleft()

    def wait_time(self, tokens: int) -> float:
        """Seconds until a request of `tokens` fits in both limits (0 if it fits now)."""
        now = self.clock()
        self._expire(now)
        waits = [0.0]
        if self.rpm is not None and len(self._sent) >= self.rpm:
            waits.append(self._sent[len(self._sent) - self.rpm].at + WINDOW - now)
        if self.tpm is not None and self._sent:
            # A request larger than the whole limit is let through alone rather than never.
            need = min(tokens, self.tpm)
            used = sum(sent.tokens for sent in self._sent)
            for sent in self._sent:
                if used + need <= self.tpm:
                    break
                used -= sent.tokens
                waits.append(sent.at + WINDOW - now)
        return max(waits)

    def record(self, tokens: int) -> Sent:
        """Count a request of `tokens` as sent now."""
        sent = Sent(self.clock(), tokens)
        self._sent.append(sent)
        return sent


@dataclass
class _ModelSlot:
    limiter: anyio.CapacityLimiter
    rate: RateWindow


class ModelLimits:
    """Per-model concurrency and rate limits, shared by every run of one Orchestra.

    A swapped spec's new limits apply to the calls that start after the swap.
    """

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = anyio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._slots: dict[str, _ModelSlot] = {}

    def _slot(self, spec: ModelSpec) -> _ModelSlot:
        slot = self._slots.get(spec.name)
        if slot is None:
            slot = _ModelSlot(
                anyio.CapacityLimiter(spec.concurrency), RateWindow(spec.rpm, spec.tpm, self._clock)
            )
            self._slots[spec.name] = slot
        else:
            if slot.limiter.total_tokens != spec.concurrency:
                slot.limiter.total_tokens = spec.concurrency
            slot.rate.rpm, slot.rate.tpm = spec.rpm, spec.tpm
        return slot

    @asynccontextmanager
    async def acquire(self, spec: ModelSpec, *, tokens: int) -> AsyncGenerator[Sent, None]:
        """Hold one of the model's concurrency slots and room in its rate window.

        Yields the request's entry in the window, whose `tokens` the caller sets to the
        provider's count once the call answers.
        """
        slot = self._slot(spec)
        async with slot.limiter:
            while (wait := slot.rate.wait_time(tokens)) > 0:
                await self._sleep(wait)
            yield slot.rate.record(tokens)

    def in_use(self, name: str) -> int:
        """Calls currently in flight to the model `name`."""
        slot = self._slots.get(name)
        return 0 if slot is None else int(slot.limiter.borrowed_tokens)
