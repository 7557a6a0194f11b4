"""The Ray backend's admission service: one named actor that every model call asks first.

It holds an `Admission` (per-model priority queues, rate windows, AIMD after 429s, the global
cap) and a ledger of budget accounts (each run's, and each task budget's inside it), so that
per-model concurrency, requests and tokens per minute, and budgets hold for the whole cluster,
not per process. Actors reach it through `ServiceAdmission`, the `Admission` their model-call
door uses, unchanged.

One call, as the service sees it:

1. `admit(call, owner, spec, priority, tie, tokens)` returns once the call may go: it waited in
   the model's queue here, by the calling node's critical-path priority;
2. `hold(call, accounts, usd, tokens)` (budget-limited calls only) reserves the estimated cost
   in the call's accounts, or raises `BudgetRefused`;
3. `release(call, tokens, answered, settled)` (not awaited by the caller) frees the slot,
   corrects the rate window with the tokens used, grows the model's concurrency back after an
   answer, and settles the reservation with what the call cost.

A call released before it was admitted (its node was cancelled) never takes a slot. Each actor
process is an *owner*; when Ray restarts an actor, its new process says so (`restarted`) and
the calls of its previous life are released, their reservations settled at the estimate (the
provider may have billed them).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from orchestra.models.admission import Admission, Sent, Ticket
from orchestra.models.budget import Account, Budget, Reservation
from orchestra.models.spec import ModelSpec

__all__ = ["AdmissionService", "RemoteTicket", "ServiceAdmission"]

AccountPath = tuple[tuple[str, Budget], ...]
"""An account and those enclosing it, outermost first, by name and budget."""


@dataclass
class _Call:
    """One call as the service tracks it: entered into admission by `admit`, left by
    `release` (an `Admission.admit` context held open between two requests)."""

    owner: str
    waiting: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    manager: AbstractAsyncContextManager[Ticket] | None = None
    ticket: Ticket | None = None
    held: Reservation | None = None


@dataclass
class _Ledger:
    """Budget accounts by path, and what each run spent outside the service (the driver's
    own calls: the boss planning)."""

    accounts: dict[tuple[str, ...], Account] = field(default_factory=dict[tuple[str, ...], Account])
    outside: dict[tuple[str, ...], tuple[float, int]] = field(
        default_factory=dict[tuple[str, ...], tuple[float, int]]
    )

    def account(self, path: AccountPath) -> Account:
        parent: Account | None = None
        names: tuple[str, ...] = ()
        for name, budget in path:
            names = (*names, name)
            account = self.accounts.get(names)
            if account is None:
                account = self.accounts[names] = Account(name, budget, parent=parent)
            parent = account
        if parent is None:
            raise ValueError("an account path needs at least one account")
        return parent


class AdmissionService:
    """The service actor (see the module docstring)."""

    def __init__(self, max_calls: int | None = None) -> None:
        self.admission = Admission(max_calls=max_calls)
        self.ledger = _Ledger()
        self._calls: dict[str, _Call] = {}
        self._gone: set[str] = set()
        self.admitted = 0
        """Calls admitted so far."""

    async def admit(
        self, call_id: str, owner: str, spec: ModelSpec, priority: float, tie: str, tokens: int
    ) -> bool:
        """Wait for the call's turn; False when the call was released before it came."""
        if call_id in self._gone:
            self._gone.discard(call_id)
            return False
        call = self._calls[call_id] = _Call(owner)
        manager = self.admission.admit(spec, priority=priority, tie=tie, tokens=tokens)
        with call.waiting:  # cancelled by a release that comes first
            # Entered here and left by `release`, in another request: the context holds no
            # cancel scope across its `yield`, so that is safe.
            ticket = await manager.__aenter__()
            call.manager, call.ticket = manager, ticket
            self.admitted += 1
        return call.ticket is not None

    def hold(self, call_id: str, path: AccountPath, usd: float, tokens: int) -> None:
        """Reserve an admitted call's estimated cost in its accounts.

        Raises:
            BudgetRefused: an account cannot fit it (nothing is held).
        """
        call = self._calls.get(call_id)
        if call is None:
            return  # released meanwhile: nothing will be sent
        call.held = self.ledger.account(path).reserve(usd=usd, tokens=tokens)

    def rate_limited(self, call_id: str, pause: float) -> None:
        """The provider answered the call 429: pause its model, halve its concurrency."""
        call = self._calls.get(call_id)
        if call is not None and call.ticket is not None:
            self.admission.rate_limited(call.ticket, pause)

    async def release(
        self,
        call_id: str,
        tokens: int | None = None,
        answered: bool = False,
        settled: tuple[float, int, bool] | None = None,
    ) -> None:
        """The call is over (or gave up waiting): free its slot, correct its rate window,
        settle its reservation (`settled`: usd, tokens, estimated; None: it cost nothing)."""
        call = self._calls.pop(call_id, None)
        if call is None:
            self._gone.add(call_id)  # its admit has not arrived yet
            return
        if call.held is not None:
            if settled is None:
                call.held.release()
            else:
                usd, spent, estimated = settled
                call.held.settle(usd=usd, tokens=spent, estimated=estimated)
        ticket, manager = call.ticket, call.manager
        if ticket is None or manager is None:
            call.waiting.cancel()  # still queued: it gives up its place
            return
        if tokens is not None and ticket.sent is not None:
            ticket.sent.tokens = tokens
        if answered:
            self.admission.succeeded(ticket)
        await manager.__aexit__(None, None, None)

    async def restarted(self, actor: str, owner: str) -> int:
        """An actor's new process (`owner`) started: release the calls of its earlier lives,
        their reservations settled at the estimate. Returns how many were released."""
        prefix = f"{actor}/"
        stale = [
            call_id
            for call_id, call in self._calls.items()
            if call.owner.startswith(prefix) and call.owner != owner
        ]
        for call_id in stale:
            held = self._calls[call_id].held
            await self.release(
                call_id, settled=None if held is None else (held.usd, held.tokens, True)
            )
        return len(stale)

    def base(self, path: AccountPath, usd: float, tokens: int) -> None:
        """Count what a run has spent outside the service so far (the driver's own calls:
        the boss planning): the part not counted yet is charged to its account."""
        account = self.ledger.account(path)
        names = tuple(name for name, _ in path)
        counted_usd, counted_tokens = self.ledger.outside.get(names, (0.0, 0))
        more_usd, more_tokens = max(usd - counted_usd, 0.0), max(tokens - counted_tokens, 0)
        if more_usd or more_tokens:
            account.charge(usd=more_usd, tokens=more_tokens)
            self.ledger.outside[names] = (counted_usd + more_usd, counted_tokens + more_tokens)

    def forget(self, name: str) -> None:
        """Drop a finished run's accounts."""
        for path in [p for p in self.ledger.accounts if p[0] == name]:
            del self.ledger.accounts[path]
        self.ledger.outside.pop((name,), None)

    def stats(self) -> dict[str, Any]:
        """Calls admitted so far, calls held now, calls in flight per model, ledger accounts,
        and the service's CPU seconds so far."""
        gates = self.admission.state.gates
        return {
            "cpu_seconds": time.process_time(),
            "admitted": self.admitted,
            "held": len(self._calls),
            "in_flight": {name: gate.in_flight for name, gate in gates.items()},
            "accounts": len(self.ledger.accounts),
        }


@dataclass
class RemoteTicket(Ticket):
    """A ticket of the admission service, as the calling actor holds it."""

    call_id: str = ""
    answered: bool = False
    settled: tuple[float, int, bool] | None = None


@dataclass
class _RemoteHold(Reservation):
    """A reservation the service holds; settling it here records what the call cost, sent
    to the service when the call releases its slot."""

    ticket: RemoteTicket | None = None

    def settle(self, *, usd: float, tokens: int, estimated: bool = False) -> None:
        if self.open and self.ticket is not None:
            self.open = False
            self.ticket.settled = (usd, tokens, estimated)


def _cause(error: BaseException, ray: Any) -> BaseException:
    """The error a remote call raised, as itself (Ray wraps it in a RayTaskError)."""
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return error


class ServiceAdmission(Admission):
    """The admission an actor's model calls go through: every decision is the service's.

    Args:
        service: the service's actor handle.
        owner: this process's owner token (`ACTOR_ID/RANDOM`).
        ray: the `ray` module.
    """

    def __init__(self, service: Any, owner: str, ray: Any) -> None:
        super().__init__()
        self._service = service
        self._owner = owner
        self._ray = ray
        self._ids = 0

    @asynccontextmanager
    async def admit(
        self, spec: ModelSpec, *, priority: float, tie: str, tokens: int
    ) -> AsyncGenerator[Ticket, None]:
        """Wait for the service to admit the call; release it there when the body ends."""
        self._ids += 1
        call_id = f"{self._owner}/{self._ids}"
        ticket = RemoteTicket(spec.name, (-priority, tie, self._ids), tokens, call_id=call_id)
        try:
            await self._service.admit.remote(call_id, self._owner, spec, priority, tie, tokens)
            ticket.admitted = True
            ticket.sent = Sent(0.0, tokens)  # its tokens, corrected by the caller, go back
            yield ticket
        finally:
            sent = ticket.sent.tokens if ticket.sent is not None else None
            self._service.release.remote(call_id, sent, ticket.answered, ticket.settled)

    async def hold(
        self, ticket: Ticket, account: Account, *, usd: float, tokens: int
    ) -> Reservation:
        """Reserve the call's estimated cost in the service's ledger.

        Raises:
            BudgetRefused: an account of the cluster's ledger cannot fit it.
        """
        if not isinstance(ticket, RemoteTicket):  # pragma: no cover - admit made it
            raise TypeError("a ticket of another admission")
        path: AccountPath = tuple((a.name, a.budget) for a in reversed(account.chain()))
        try:
            await self._service.hold.remote(ticket.call_id, path, usd, tokens)
        except Exception as exc:
            raise _cause(exc, self._ray) from None
        return _RemoteHold((), usd, tokens, ticket=ticket)

    def rate_limited(self, ticket: Ticket, pause: float) -> None:
        """Tell the service the provider answered 429 (it pauses the model for everyone)."""
        if isinstance(ticket, RemoteTicket):
            self._service.rate_limited.remote(ticket.call_id, pause)

    def succeeded(self, ticket: Ticket) -> bool:
        """Note the answer; the service grows the model's concurrency back on release."""
        if isinstance(ticket, RemoteTicket):
            ticket.answered = True
        return False

    def in_use(self, name: str) -> int:
        """Unknown here: the service counts calls in flight."""
        return 0

    def effective(self, name: str) -> float:
        """Unknown here: the service holds each model's effective concurrency."""
        return math.inf
