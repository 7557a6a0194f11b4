"""Admission: where model calls wait, highest critical-path priority first.

Every call asks for admission before it is sent. Each model has a queue ordered by the calling
node's priority (planning first, then the longest remaining critical path, ties by task id), and
an optional global cap orders calls across models the same way. A call is admitted when its
model has a free slot, is not paused, and has room in its rate window (requests and tokens per
minute, counting input and expected output tokens, corrected by the provider's usage).

Rate limits are scheduler input, not errors: a 429 pauses the model's queue until its
Retry-After and halves the model's effective concurrency, which then grows back by one per
success up to `max_concurrency` (AIMD). Only calls sent after the last decrease can halve it
again, so one burst of 429s counts as one signal.

`AdmissionState` is the pure core (no I/O, no time of its own), driven by property tests;
`Admission` puts it behind async waits. Time and sleeping are injected.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from orchestra.models.budget import Account, Reservation
from orchestra.models.spec import ModelSpec

__all__ = [
    "PLANNING",
    "Admission",
    "AdmissionState",
    "ModelGate",
    "RateWindow",
    "Sent",
    "Ticket",
]

Clock = Callable[[], float]
WINDOW = 60.0

PLANNING = math.inf
"""The priority of the boss's calls: planning unblocks everything, so it goes first."""


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
        if self.rpm is None and self.tpm is None:
            return 0.0
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
        if self.rpm is not None or self.tpm is not None:
            self._sent.append(sent)
        return sent


@dataclass
class Ticket:
    """One call's place in admission: queued, then admitted, then released."""

    model: str
    key: tuple[float, str, int]
    """(-priority, tie, arrival): the queue's order."""
    tokens: int
    sent: Sent | None = None
    """The call's entry in its model's rate window, once admitted."""
    order: int = -1
    """When it was admitted, counted in admissions (-1 while it waits)."""
    admitted: bool = False
    done: bool = False
    wake: anyio.Event | None = None
    """Set when the ticket is admitted (`Admission` gives each waiting ticket one)."""

    @property
    def priority(self) -> float:
        """The calling node's priority (higher goes first)."""
        return -self.key[0]


@dataclass
class ModelGate:
    """One model's queue, slots, pause and rate window."""

    name: str
    max_concurrency: float
    rate: RateWindow
    limit: float = math.inf
    """Effective concurrency: `max_concurrency`, lowered by 429s (AIMD)."""
    in_flight: int = 0
    paused_until: float = -math.inf
    decreased_after: int = -1
    """Admissions counted when the concurrency was last halved: calls admitted up to then
    belong to the burst that caused it."""
    queue: list[tuple[tuple[float, str, int], Ticket]] = field(
        default_factory=list[tuple[tuple[float, str, int], Ticket]]
    )

    def head(self) -> Ticket | None:
        """The waiting ticket that goes next (cancelled tickets are dropped on the way)."""
        while self.queue and self.queue[0][1].done:
            heapq.heappop(self.queue)
        return self.queue[0][1] if self.queue else None

    def room(self) -> bool:
        """True when another call may be in flight (concurrency only)."""
        return self.in_flight < min(self.limit, self.max_concurrency)


@dataclass
class AdmissionState:
    """The pure core: which queued calls may go now, and until when the others wait."""

    clock: Clock = time.monotonic
    max_calls: int | None = None
    """At most this many calls in flight over every model (None: no global cap)."""
    gates: dict[str, ModelGate] = field(default_factory=dict[str, ModelGate])
    in_flight: int = 0
    admitted: int = 0
    """Calls admitted so far."""
    _arrivals: Iterator[int] = field(default_factory=itertools.count)

    def configure(self, spec: ModelSpec) -> ModelGate:
        """The model's gate, with the spec's current limits (a hot swap applies from here)."""
        gate = self.gates.get(spec.name)
        if gate is None:
            gate = ModelGate(
                spec.name, spec.concurrency, RateWindow(spec.rpm, spec.tpm, self.clock)
            )
            self.gates[spec.name] = gate
        else:
            gate.max_concurrency = spec.concurrency
            gate.rate.rpm, gate.rate.tpm = spec.rpm, spec.tpm
        return gate

    def enqueue(self, spec: ModelSpec, *, priority: float, tie: str, tokens: int) -> Ticket:
        """Queue a call to `spec` of the node with `priority` (ties: `tie`, then arrival)."""
        gate = self.configure(spec)
        key = (-priority, tie, next(self._arrivals))
        ticket = Ticket(spec.name, key, tokens)
        heapq.heappush(gate.queue, (key, ticket))
        return ticket

    def _ready(self, gate: ModelGate, now: float) -> Ticket | None:
        head = gate.head()
        if head is None or not gate.room() or now < gate.paused_until:
            return None
        return head if gate.rate.wait_time(head.tokens) <= 0 else None

    def admit(self) -> list[Ticket]:
        """Admit every call that may go now, highest priority first; returns them."""
        now = self.clock()
        admitted: list[Ticket] = []
        while self.max_calls is None or self.in_flight < self.max_calls:
            ready = [t for g in self.gates.values() if (t := self._ready(g, now)) is not None]
            if not ready:
                break
            # Without a global cap every model's head goes; with one, the best head first.
            for ticket in sorted(ready, key=lambda t: t.key):
                if self.max_calls is not None and self.in_flight >= self.max_calls:
                    break
                gate = self.gates[ticket.model]
                heapq.heappop(gate.queue)
                gate.in_flight += 1
                self.in_flight += 1
                ticket.admitted = True
                ticket.order = self.admitted
                self.admitted += 1
                ticket.sent = gate.rate.record(ticket.tokens)
                admitted.append(ticket)
        return admitted

    def next_wake(self, ticket: Ticket) -> float:
        """When a queued ticket that heads its model's queue should look again (inf: only
        when a slot frees up)."""
        gate = self.gates[ticket.model]
        if gate.head() is not ticket:
            return math.inf
        now = self.clock()
        wake = max(now, gate.paused_until)
        wait = gate.rate.wait_time(ticket.tokens)
        return wake + wait if wait > 0 else (wake if wake > now else math.inf)

    def release(self, ticket: Ticket) -> None:
        """A call is over (answered, failed or cancelled), or a queued one gave up."""
        if ticket.done:
            return
        ticket.done = True
        if ticket.admitted:
            self.gates[ticket.model].in_flight -= 1
            self.in_flight -= 1

    def rate_limited(self, ticket: Ticket, pause: float) -> None:
        """The provider answered 429: pause the model for `pause` s and halve its
        effective concurrency (once per burst: only calls sent after the last decrease)."""
        gate = self.gates[ticket.model]
        gate.paused_until = max(gate.paused_until, self.clock() + pause)
        if ticket.order > gate.decreased_after:
            current = min(gate.limit, gate.max_concurrency, max(gate.in_flight, 1))
            gate.limit = max(1.0, math.floor(current / 2))
            gate.decreased_after = self.admitted - 1

    def succeeded(self, ticket: Ticket) -> bool:
        """The provider answered: grow the model's effective concurrency back by one.

        Returns True when that brought the model back to its full concurrency.
        """
        gate = self.gates[ticket.model]
        if gate.limit >= gate.max_concurrency:
            return False
        gate.limit = gate.limit + 1
        if gate.limit >= gate.max_concurrency:
            gate.limit = math.inf  # back to the spec's own limit
            return True
        return False

    def effective(self, model: str) -> float:
        """The model's effective concurrency now (inf: unlimited)."""
        gate = self.gates.get(model)
        return math.inf if gate is None else min(gate.limit, gate.max_concurrency)


class Admission:
    """Where every model call of one Orchestra waits for its turn (see the module docstring).

    Example:
        >>> import anyio
        >>> from orchestra.models.spec import ModelSpec
        >>> async def one_call() -> bool:
        ...     admission = Admission()
        ...     spec = ModelSpec(name="m", model="x/m", max_concurrency=2)
        ...     async with admission.admit(spec, priority=3.0, tie="draft", tokens=50) as ticket:
        ...         return ticket.admitted
        >>> anyio.run(one_call)
        True
    """

    def __init__(self, *, clock: Clock = time.monotonic, max_calls: int | None = None) -> None:
        self.state = AdmissionState(clock=clock, max_calls=max_calls)
        self._clock = clock

    @asynccontextmanager
    async def admit(
        self, spec: ModelSpec, *, priority: float, tie: str, tokens: int
    ) -> AsyncGenerator[Ticket, None]:
        """Wait for the call's turn, hold its slot while the body runs, then release it.

        Args:
            spec: the model called (its current limits apply).
            priority: the calling node's critical-path priority (`PLANNING` for the boss).
            tie: orders equal priorities (the task id).
            tokens: input plus expected output tokens, for the rate window; correct
                `ticket.sent.tokens` once the provider reports usage.
        """
        state = self.state
        ticket = state.enqueue(spec, priority=priority, tie=tie, tokens=tokens)
        ticket.wake = woken = anyio.Event()
        try:
            self._wake(state.admit())
            while not ticket.admitted:
                wake = state.next_wake(ticket)
                with anyio.move_on_after(wake - self._clock() if wake < math.inf else math.inf):
                    await woken.wait()
                if not ticket.admitted:
                    self._wake(state.admit())
            yield ticket
        finally:
            state.release(ticket)
            self._wake(state.admit())

    async def hold(
        self, ticket: Ticket, account: Account, *, usd: float, tokens: int
    ) -> Reservation:
        """Reserve an admitted call's estimated cost in `account` and every account enclosing
        it: the budget half of admission (a cluster's admission service holds it remotely).

        Raises:
            BudgetRefused: some account cannot fit the call (nothing is held then).
        """
        return account.reserve(usd=usd, tokens=tokens)

    @staticmethod
    def _wake(tickets: list[Ticket]) -> None:
        for ticket in tickets:
            if ticket.wake is not None:
                ticket.wake.set()

    def rate_limited(self, ticket: Ticket, pause: float) -> None:
        """See `AdmissionState.rate_limited`."""
        self.state.rate_limited(ticket, pause)

    def succeeded(self, ticket: Ticket) -> bool:
        """See `AdmissionState.succeeded`."""
        restored = self.state.succeeded(ticket)
        self._wake(self.state.admit())
        return restored

    def in_use(self, name: str) -> int:
        """Calls currently in flight to the model `name`."""
        gate = self.state.gates.get(name)
        return 0 if gate is None else gate.in_flight

    def effective(self, name: str) -> float:
        """The model's effective concurrency now (inf: unlimited)."""
        return self.state.effective(name)
