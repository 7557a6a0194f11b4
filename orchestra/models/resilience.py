"""Resilience: the one owner of retries, fallbacks, circuit breakers, deadlines and hedging.

A node's model call goes through `Resilience.call`:

1. **Fallback chain**: the chosen model, then its spec's `fallbacks` in order. A model is given
   up when its retries are spent, at once for errors a retry cannot fix (400, 401, 403, 404),
   or when its circuit is open. After a context-window overflow only models with a larger
   `max_context` are tried.
2. **Retries** (tenacity) per model, for transient errors only (5xx, timeouts, connection
   failures, malformed or empty answers, cut or stalled streams): exponential backoff with
   jitter, or the provider's `Retry-After` (capped). `max_retries=N` sends at most N+1 requests
   that fail this way. A 429 is waited out before it gets here (`orchestra.models.calls`): the
   model's queue pauses and the request goes again, up to `rate_limit_waits` times.
3. **Circuit breaker** per model (`orchestra.models.breaker`), shared across nodes and runs.
4. **Hedging** (opt-in): if the first call is slower than a set delay or the model's observed
   p95 latency, a second call starts (same or another model); the first good answer wins, the
   loser is cancelled and its cost counted.
5. **Deadline**: `RetryPolicy.deadline` bounds everything one node spends on one call.

Every retry, fallback, breaker transition, hedge and timeout is an event. Time, sleeping and
randomness are injected so tests can drive all of it without waiting.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import anyio
from pydantic import Field

from orchestra._base import Frozen
from orchestra._clock import utc_now
from orchestra.errors import ModelError
from orchestra.events import (
    BreakerChanged,
    CallTimedOut,
    EventSink,
    FallbackUsed,
    HedgeStarted,
    HedgeWon,
    LoserEnded,
    RetryScheduled,
)
from orchestra.models.breaker import CircuitBreaker, CircuitBreakers
from orchestra.results import Attempt, Usage

if TYPE_CHECKING:
    from orchestra.models.client import Completion
    from orchestra.models.constellation import Constellation
    from orchestra.models.spec import ModelSpec

__all__ = ["CallContext", "HedgePolicy", "Resilience", "RetryPolicy", "within"]

Sleep = Callable[[float], Awaitable[None]]
Send = Callable[["ModelSpec"], Awaitable["Completion"]]


class RetryPolicy(Frozen):
    """How a model's failed calls are retried.

    Example:
        >>> RetryPolicy(max_retries=4, backoff=0.2).max_retries
        4
    """

    max_retries: int = Field(default=2, ge=0)
    """Retries after the first request: at most `max_retries + 1` requests per model."""
    backoff: float = Field(default=0.5, ge=0)
    """Seconds before the first retry; each later wait is `multiplier` times longer."""
    multiplier: float = Field(default=2.0, ge=1)
    max_backoff: float = Field(default=10.0, ge=0)
    """The longest backoff wait, in seconds."""
    jitter: float = Field(default=0.2, ge=0, le=1)
    """Each backoff is spread by up to this fraction, so clients do not retry in lockstep."""
    max_retry_after: float = Field(default=30.0, ge=0)
    """The longest `Retry-After` honoured, in seconds (longer ones are capped)."""
    deadline: float | None = Field(default=None, gt=0)
    """Seconds one node may spend on one call, over every retry and fallback (None: no limit)."""
    rate_limit_waits: int = Field(default=20, ge=0)
    """Times one request waits out a 429 (the model's queue pauses, the request goes again)
    before the 429 counts as a failed attempt. Waiting spends the run's time, not retries."""


class HedgePolicy(Frozen):
    """When to start a second, hedging call for a slow first one.

    Example:
        >>> HedgePolicy(after=0.8, model="fast-wafer").model
        'fast-wafer'
    """

    after: float | None = Field(default=None, gt=0)
    """Seconds before hedging; None: the model's observed p95 latency."""
    model: str | None = None
    """Spec name of the hedging model; None: the same model."""
    min_samples: int = Field(default=20, ge=1)
    """Calls observed before the p95 is trusted (no hedging until then)."""


def within(seconds: float | None) -> AbstractContextManager[object]:
    """A deadline of `seconds` (TimeoutError when it passes), or nothing when there is none:
    most calls have no deadline, and a cancel scope on every call is not free."""
    if seconds is None or math.isinf(seconds):
        return nullcontext()
    return anyio.fail_after(seconds)


@dataclass
class CallContext:
    """What one node's calls share: who they are for, and what they tried and spent."""

    run_id: str
    task_id: str
    emit: EventSink
    attempts: list[Attempt] = field(default_factory=list[Attempt])
    extra: Usage = field(default_factory=Usage)
    """Spending beyond the answer: requests cancelled in flight (a hedge race's loser)."""


@dataclass(frozen=True)
class _Call:
    """One call's fixed parts, shared by its retries, fallbacks and hedges."""

    models: Constellation
    send: Send
    context: CallContext
    hedge: HedgePolicy | None


class Resilience:
    """Retries, fallbacks, breakers and hedging around single model calls (see module doc)."""

    def __init__(
        self,
        *,
        breakers: CircuitBreakers,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = anyio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.breakers = breakers
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._latencies: dict[str, deque[float]] = {}

    async def call(
        self,
        models: Constellation,
        first: str,
        send: Send,
        context: CallContext,
        *,
        hedge: HedgePolicy | None = None,
    ) -> Completion:
        """Get an answer from `first` or its fallbacks; `send` makes one request to a spec.

        Raises:
            ModelError: every model of the chain failed (`.attempts` lists every attempt).
        """
        spec = models[first]
        chain = [first, *(name for name in spec.fallbacks if name != first)]
        call = _Call(models, send, context, hedge)
        errors: list[ModelError] = []
        try:
            with within(spec.retry.deadline):
                for index, name in enumerate(chain):
                    candidate = models[name]
                    overflowed = errors and errors[-1].context_overflow
                    if overflowed and not _larger(candidate, models[chain[index - 1]]):
                        continue
                    last_resort = _next_usable(chain, index, models, None) is None
                    try:
                        return await self._retrying(call, candidate, last_resort)
                    except ModelError as exc:
                        errors.append(exc)
                        following = _next_usable(chain, index, models, exc)
                        if following is not None:
                            context.emit(
                                FallbackUsed(
                                    run_id=context.run_id,
                                    task_id=context.task_id,
                                    from_model=name,
                                    to_model=following,
                                    reason=str(exc)[:300],
                                )
                            )
        except TimeoutError:
            raise ModelError(
                f"task {context.task_id!r}: no answer within the deadline of "
                f"{spec.retry.deadline} s (models tried: {', '.join(chain)})",
                model=first,
                status_code=408,
                attempts=tuple(context.attempts),
                transient=True,
            ) from None
        last = errors[-1]
        tried = ", ".join(dict.fromkeys(a.model for a in context.attempts)) or first
        raise ModelError(
            f"{last} (every model failed: {tried}; {len(context.attempts)} attempt(s))",
            model=last.model,
            status_code=last.status_code,
            attempts=tuple(context.attempts),
            transient=last.transient,
            context_overflow=last.context_overflow,
        ) from last

    async def _retrying(self, call: _Call, spec: ModelSpec, last_resort: bool) -> Completion:
        # Imported here: tenacity (and the concurrent.futures and logging it pulls in) would
        # otherwise weigh on every `import orchestra`.
        from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

        policy, context = spec.retry, call.context

        def backoff(exc: ModelError, attempt: int) -> float:
            if exc.retry_after is not None:
                return min(exc.retry_after, policy.max_retry_after)
            base = min(policy.max_backoff, policy.backoff * policy.multiplier ** (attempt - 1))
            return base * (1 + self._rng.uniform(-policy.jitter, policy.jitter))

        def announce(exc: ModelError, attempt: int, wait: float) -> None:
            context.emit(
                RetryScheduled(
                    run_id=context.run_id,
                    task_id=context.task_id,
                    model=spec.name,
                    attempt=attempt,
                    wait=wait,
                    error=str(exc)[:300],
                )
            )

        # Most calls answer the first time: only a failure pays for tenacity's machinery.
        try:
            return await self._attempt(call, spec, last_resort)
        except ModelError as exc:
            if not exc.transient or policy.max_retries == 0:
                raise
            wait = backoff(exc, 1)
            announce(exc, 1, wait)
        await self._sleep(wait)

        def wait_for(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            assert isinstance(exc, ModelError)  # only transient ModelErrors are retried
            return backoff(exc, state.attempt_number + 1)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            assert isinstance(exc, ModelError)
            announce(exc, state.attempt_number + 1, state.upcoming_sleep)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_retries),
            retry=retry_if_exception(lambda exc: isinstance(exc, ModelError) and exc.transient),
            wait=wait_for,
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(call, spec, last_resort)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _attempt(self, call: _Call, spec: ModelSpec, last_resort: bool) -> Completion:
        context = call.context
        breaker = self.breakers.get(spec.name, spec.breaker)
        before = breaker.state
        if not breaker.allow():
            self._record(context, spec.name, utc_now(), "circuit open: skipped", None)
            # With a fallback left, skip to it at once; as the last model, wait for the probe
            # instead of failing the node (a retry after the rest of the cool-down).
            wait = max(breaker.cooldown_left(), spec.breaker.cooldown * 0.1)
            raise ModelError(
                f"model {spec.name!r}: circuit open after repeated failures; skipped",
                model=spec.name,
                transient=last_resort,
                retry_after=wait if last_resort else None,
            )
        self._breaker_event(context, spec.name, breaker, before)
        started, clock = utc_now(), self._clock()
        try:
            if call.hedge is None:
                completion = await call.send(spec)
            else:
                completion = await self._hedged(call, spec, call.hedge)
        except ModelError as exc:
            before = breaker.state
            # Rate limits say the provider is busy, not broken: Retry-After handles them.
            if exc.transient and exc.status_code != 429:
                breaker.failure()
            else:
                breaker.release()
            self._breaker_event(context, spec.name, breaker, before)
            self._record(context, spec.name, started, str(exc), exc.status_code)
            if exc.status_code == 408:
                context.emit(
                    CallTimedOut(
                        run_id=context.run_id,
                        task_id=context.task_id,
                        model=spec.name,
                        seconds=self._clock() - clock,
                    )
                )
            raise
        except BaseException:
            breaker.release()  # cancelled mid-probe: no verdict on the model
            raise
        before = breaker.state
        breaker.success()
        self._breaker_event(context, spec.name, breaker, before)
        self._latencies.setdefault(completion.model, deque(maxlen=200)).append(completion.seconds)
        self._record(context, completion.model, started, None, None, completion.finish_reason)
        return completion

    async def _hedged(self, call: _Call, spec: ModelSpec, hedge: HedgePolicy) -> Completion:
        send, context = call.send, call.context
        delay = hedge.after if hedge.after is not None else self.p95(spec.name, hedge.min_samples)
        if delay is None:
            return await send(spec)
        second = call.models[hedge.model] if hedge.model is not None else spec
        answers: dict[str, Completion] = {}
        errors: dict[str, Exception] = {}
        started: list[str] = ["primary"]
        settled = anyio.Event()
        charged = context.extra  # what requests cancelled in flight cost before the race

        async def run(role: str, target: ModelSpec) -> None:
            try:
                answers[role] = await send(target)
            except Exception as exc:
                # Every error is a value of the race, a refused reservation (BudgetRefused) or
                # an unpriced model (ConfigError) too: raised inside the task group, it would
                # leave it as an ExceptionGroup that nobody above catches.
                errors[role] = exc
                if len(errors) < len(started):
                    return
            settled.set()

        async with anyio.create_task_group() as group:
            group.start_soon(run, "primary", spec)
            with anyio.move_on_after(delay):
                await settled.wait()
            if not settled.is_set():
                started.append("hedge")
                context.emit(
                    HedgeStarted(
                        run_id=context.run_id,
                        task_id=context.task_id,
                        model=spec.name,
                        hedge_model=second.name,
                        after=delay,
                    )
                )
                group.start_soon(run, "hedge", second)
                await settled.wait()
            group.cancel_scope.cancel()
        if not answers:
            raise errors.get("hedge") or errors["primary"]
        winner = "primary" if "primary" in answers else "hedge"
        if len(started) == 2:
            loser, loser_spec = ("hedge", second) if winner == "primary" else ("primary", spec)
            late = answers.get(loser)
            ended: LoserEnded
            if late is not None:
                ended, cost = "answered", late.cost_usd  # the door charged it like any answer
            elif loser in errors:
                ended, cost = "failed", 0.0  # a failed request costs nothing, as everywhere
            elif context.extra.calls > charged.calls:
                # Cancelled in flight: the door charged its prompt, estimated.
                ended, cost = "cancelled", context.extra.cost_usd - charged.cost_usd
            else:
                ended, cost = "unsent", 0.0  # cancelled while it waited its turn
            self._record(
                context, loser_spec.name, utc_now(), "cancelled: the hedge race was lost", None
            )
            context.emit(
                HedgeWon(
                    run_id=context.run_id,
                    task_id=context.task_id,
                    winner=winner,
                    model=answers[winner].model,
                    loser_cost_usd=cost,
                    loser=ended,
                )
            )
        return answers[winner]

    def p95(self, model: str, min_samples: int = 20) -> float | None:
        """The model's observed p95 call latency (None until `min_samples` calls answered)."""
        seen = sorted(self._latencies.get(model, ()))
        if len(seen) < min_samples:
            return None
        return seen[math.ceil(0.95 * len(seen)) - 1]

    @staticmethod
    def _record(
        context: CallContext,
        model: str,
        started: datetime,
        error: str | None,
        status: int | None,
        finish_reason: str | None = None,
    ) -> None:
        context.attempts.append(
            Attempt(
                model=model,
                started=started,
                finished=utc_now(),
                error=error,
                status_code=status,
                finish_reason=finish_reason,
            )
        )

    @staticmethod
    def _breaker_event(
        context: CallContext, model: str, breaker: CircuitBreaker, before: str
    ) -> None:
        if breaker.state != before:
            context.emit(BreakerChanged(run_id=context.run_id, model=model, state=breaker.state))


def _larger(candidate: ModelSpec, previous: ModelSpec) -> bool:
    """After a context overflow, only a model with a known larger window can help."""
    if candidate.max_context is None:
        return False
    return previous.max_context is None or candidate.max_context > previous.max_context


def _next_usable(
    chain: Sequence[str], index: int, models: Constellation, exc: ModelError | None
) -> str | None:
    """The model the chain moves to after `chain[index]` failed with `exc` (None: any error)."""
    previous = models[chain[index]]
    for name in chain[index + 1 :]:
        if exc is None or not exc.context_overflow or _larger(models[name], previous):
            return name
    return None
