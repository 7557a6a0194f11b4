"""The one door for every model call: worker nodes, the boss, router models, checks, compaction.

One call goes through, in order:

1. the **response cache** (an identical earlier request answers at no cost) and the request's
   **idempotency key** (retries of one request share it; two requests never do);
2. **resilience** (`orchestra.models.resilience`): retries, fallbacks, breakers, hedging, the
   call's deadline; each request it makes to one model then goes through
3. **admission** (`orchestra.models.admission`): the model's priority queue, rate window,
   pause and effective concurrency, and the global cap;
4. a **budget reservation** (`orchestra.models.budget`): the request's estimated cost (prompt
   tokens plus the model's expected output, capped by `max_tokens`) held against every budget
   covering the call; one that does not fit is refused and never sent. A model without a price
   is refused under a USD budget (unknown is not free);
5. the **client** (litellm); then the reservation is **settled** with the provider's usage (or an
   estimate marked `estimated` when it reported none; unusable usage fails the call and charges
   the estimate), the model's token statistics learn from the answer, and a `model_called`
   event is emitted (the journal subscribes to events).

A 429 is scheduler input: the model's queue pauses for its Retry-After and the call waits its
turn again, spending the run's time but not the call's retries.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from orchestra._clock import utc_now
from orchestra.errors import ConfigError, ModelError
from orchestra.events import ConcurrencyRestored, EventSink, ModelCalled, RateLimited
from orchestra.models.admission import Admission, Ticket
from orchestra.models.budget import Account, Reservation
from orchestra.models.client import AnsweredEmpty, Completion, ModelClient, UsageInvalid
from orchestra.models.constellation import Constellation
from orchestra.models.resilience import CallContext, HedgePolicy, Resilience
from orchestra.models.spec import ModelSpec
from orchestra.models.tokens import TokenStats, prompt_tokens
from orchestra.results import Attempt, Usage

__all__ = ["AnswerCache", "CallKeys", "CallRequest", "CallSite", "ModelCalls"]


def _ignore(_event: object) -> None:
    return None


class AnswerCache(Protocol):
    """Where answers are looked up before a call and stored after it (`ResponseCache`)."""

    def get(
        self,
        spec: ModelSpec,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
    ) -> Completion | None:
        """The stored answer to this exact request, if any is fresh."""
        ...

    def put(
        self,
        spec: ModelSpec,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        completion: Completion,
    ) -> None:
        """Store the answer to this request."""
        ...


@dataclass
class CallKeys:
    """Idempotency keys of one node dispatch's requests.

    The first request carries the dispatch's key (`run_id:task_id:attempt`); later ones (tool
    loop, checks, compaction) carry `key/2`, `key/3`..., so no two different requests share a
    key while retries of one request do.

    Example:
        >>> keys = CallKeys("r1:draft:1")
        >>> keys.next(), keys.next()
        ('r1:draft:1', 'r1:draft:1/2')
    """

    key: str
    _requests: int = 0

    def next(self) -> str:
        """The key of the next request."""
        self._requests += 1
        return self.key if self._requests == 1 else f"{self.key}/{self._requests}"


@dataclass
class CallSite:
    """Who is calling: the run and task the calls are for, their priority and budget.

    One per node dispatch (and one per planning session for the boss); its `attempts` collect
    every request made, for the node's result.
    """

    run_id: str
    task_id: str
    agent: str | None = None
    priority: float = 0.0
    """The node's critical-path priority (`admission.PLANNING` for the boss)."""
    account: Account | None = None
    """The innermost budget covering the calls (None: unlimited)."""
    keys: CallKeys | None = None
    cache: AnswerCache | None = None
    emit: EventSink = _ignore
    attempts: list[Attempt] = field(default_factory=list[Attempt])
    spent: Usage = field(default_factory=Usage)
    """What the site's requests have cost so far (answered or charged), by model."""

    def charge(self, model: str, completion: Completion) -> None:
        """Count what one request cost in `spent`."""
        self.spent = self.spent + Usage.of(
            model,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cost_usd=completion.cost_usd,
            estimated=completion.estimated,
        )


@dataclass(frozen=True)
class CallRequest:
    """What to ask: the messages and options of one call, and why this model."""

    messages: Sequence[Mapping[str, Any]]
    reason: str
    """Why this model (the pin or the routing policy's reason), for events."""
    tools: Sequence[Mapping[str, Any]] = ()
    response_format: Callable[[ModelSpec], Mapping[str, Any] | None] | None = None
    """The structured output to ask each model for (a fallback may speak another dialect)."""
    on_text: Callable[[], Callable[[str], None]] | None = None
    """Makes a fresh consumer of streamed text for each request (a retried stream restarts)."""
    hedge: HedgePolicy | None = None
    step: int = 0
    """The call's step in the node's tool loop."""
    tool_choice: str | Mapping[str, Any] | None = None
    """OpenAI-style `tool_choice`, sent with the tools (None: the provider's default)."""


def _max_tokens(spec: ModelSpec) -> int | None:
    params = spec.litellm_params
    value = params.get("max_tokens", params.get("max_completion_tokens"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ModelCalls:
    """The door (see the module docstring); one per Orchestra, shared by all its runs."""

    def __init__(
        self,
        *,
        models: Constellation,
        client: ModelClient,
        admission: Admission,
        resilience: Resilience,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.models = models
        self.client = client
        self.admission = admission
        self.resilience = resilience
        self.tokens = TokenStats()
        self._clock = clock
        self._rng = rng or random.Random()

    async def call(self, site: CallSite, model: str, request: CallRequest) -> Completion:
        """One answer from `model` (or its fallbacks) for `site`.

        Raises:
            ModelError: every model of the chain failed (`.attempts` lists every attempt).
            BudgetRefused: the call does not fit in a budget covering it (nothing was sent).
            ConfigError: the model has no price and a USD budget covers the call.
        """
        metadata: dict[str, Any] = {
            "run_id": site.run_id,
            "task_id": site.task_id,
            "agent": site.agent,
            "step": request.step,
        }
        if site.keys is not None:
            metadata["idempotency_key"] = site.keys.next()
        cache = site.cache
        hit = cache.get(self.models[model], request.messages, request.tools) if cache else None
        if hit is not None:
            now = utc_now()
            site.attempts.append(Attempt(model=hit.model, started=now, finished=now, cached=True))
            site.emit(
                ModelCalled(
                    run_id=site.run_id,
                    task_id=site.task_id,
                    model=hit.model,
                    reason=f"cache hit (no request, no cost); {request.reason}",
                    cached=True,
                )
            )
            return hit
        estimate = prompt_tokens(request.messages, request.tools)
        context = CallContext(site.run_id, site.task_id, site.emit, site.attempts)

        async def send(spec: ModelSpec) -> Completion:
            return await self._send(site, context, spec, request, metadata, estimate)

        try:
            completion = await self.resilience.call(
                self.models, model, send, context, hedge=request.hedge
            )
        except BaseException:
            # A request cut off in flight (by the call's own deadline, or by the run's from
            # outside) was billed, and the budget charged it: so does the site, though the call
            # failed or was cancelled.
            site.spent = site.spent + context.extra
            raise
        if cache is not None and not completion.cached:
            cache.put(self.models[completion.model], request.messages, request.tools, completion)
        site.spent = site.spent + context.extra  # requests cancelled in flight were billed too
        return replace(completion, extra=completion.extra + context.extra)

    async def _send(
        self,
        site: CallSite,
        context: CallContext,
        spec: ModelSpec,
        request: CallRequest,
        metadata: Mapping[str, Any],
        estimate: int,
    ) -> Completion:
        """One request to one model: admitted, reserved, sent, settled."""
        account = site.account
        if account is not None and not spec.priced and account.usd_limited():
            missing = " and ".join(
                name
                for name, price in (
                    ("input_cost", spec.input_cost),
                    ("output_cost", spec.output_cost),
                )
                if price is None
            )
            raise ConfigError(
                f"model {spec.name!r} has no {missing}, and a USD budget covers "
                f"{site.task_id!r} of run {site.run_id!r}: its cost would be unknown, not free. "
                "Give the spec its prices (USD per 1M tokens; 0 is a price) or run without "
                "max_usd"
            )
        input_tokens = self.tokens.input_tokens(spec.name, estimate)
        output_tokens = self.tokens.expected_output(spec.name, max_tokens=_max_tokens(spec))
        tokens = input_tokens + output_tokens
        usd = spec.cost(input_tokens=input_tokens, output_tokens=output_tokens)
        limited = account is not None and account.limited()
        queued = self._clock()
        # A provider that keeps answering 429 eventually counts as failing: after the spec's
        # `rate_limit_waits`, the 429 goes to the retry policy like any transient error.
        patience = spec.retry.rate_limit_waits
        for waits in range(patience + 1):
            async with self.admission.admit(
                spec, priority=site.priority, tie=site.task_id, tokens=tokens
            ) as ticket:
                sent = self._clock()
                waited = sent - queued
                held = None
                if account is not None and limited:
                    held = await self.admission.hold(ticket, account, usd=usd, tokens=tokens)
                try:
                    completion = await self._request(
                        site, context, spec, request, metadata, held, input_tokens, usd
                    )
                except ModelError as exc:
                    if exc.status_code == 429 and waits < patience:
                        self._rate_limited(site, spec, ticket, exc, waits)
                        continue
                    self._failed(site, spec, request, exc, waited, self._clock() - sent)
                    raise
                if ticket.sent is not None:
                    ticket.sent.tokens = completion.total_tokens
                if self.admission.succeeded(ticket):
                    site.emit(
                        ConcurrencyRestored(
                            run_id=site.run_id, model=spec.name, concurrency=spec.max_concurrency
                        )
                    )
            site.charge(spec.name, completion)
            if not completion.estimated:
                self.tokens.observe(
                    spec.name,
                    estimated_input=estimate,
                    input_tokens=completion.input_tokens,
                    output_tokens=completion.output_tokens,
                )
            site.emit(
                ModelCalled(
                    run_id=site.run_id,
                    task_id=site.task_id,
                    model=spec.name,
                    reason=request.reason,
                    input_tokens=completion.input_tokens,
                    output_tokens=completion.output_tokens,
                    cost_usd=completion.cost_usd,
                    seconds=completion.seconds,
                    estimated=completion.estimated,
                    waited=waited,
                    finish_reason=completion.finish_reason,
                )
            )
            return completion
        raise AssertionError("unreachable: the last 429 is raised")  # pragma: no cover

    async def _request(
        self,
        site: CallSite,
        context: CallContext,
        spec: ModelSpec,
        request: CallRequest,
        metadata: Mapping[str, Any],
        held: Reservation | None,
        input_tokens: int,
        usd: float,
    ) -> Completion:
        """The client call, with the reservation settled however it ends (and a request
        cancelled in flight charged its prompt in `context.extra`)."""
        try:
            completion = await self.client.complete(
                spec,
                request.messages,
                tools=request.tools,
                metadata=metadata,
                on_text=request.on_text() if request.on_text is not None else None,
                response_format=None
                if request.response_format is None
                else request.response_format(spec),
                tool_choice=request.tool_choice,
            )
        except AnsweredEmpty as empty:
            # An empty answer is a failed call, but the provider billed it.
            if held is not None:
                held.settle(
                    usd=empty.cost_usd,
                    tokens=empty.input_tokens + empty.output_tokens,
                    estimated=empty.estimated,
                )
            site.spent = site.spent + Usage.of(
                spec.name,
                input_tokens=empty.input_tokens,
                output_tokens=empty.output_tokens,
                cost_usd=empty.cost_usd,
                estimated=empty.estimated,
            )
            raise
        except UsageInvalid:
            # Answered, so paid: charge the estimate, never a refund.
            if held is not None:
                held.settle(usd=held.usd, tokens=held.tokens, estimated=True)
            site.spent = site.spent + Usage.of(
                spec.name, input_tokens=0, output_tokens=0, cost_usd=usd, estimated=True
            )
            raise
        except Exception:
            if held is not None:  # no answer: nothing to pay
                held.release()
            raise
        except BaseException:
            # Cancelled in flight (a hedge that lost its race): the prompt was likely billed.
            # Charged here, where the request is known to have been sent, in the budget and in
            # the call's spending alike; one cancelled while it waited its turn costs nothing.
            prompt_usd = spec.cost(input_tokens=input_tokens, output_tokens=0)
            if held is not None:
                held.settle(usd=prompt_usd, tokens=held.tokens, estimated=True)
            context.extra = context.extra + Usage.of(
                spec.name,
                input_tokens=input_tokens,
                output_tokens=0,
                cost_usd=prompt_usd,
                estimated=True,
            )
            raise
        if held is not None:
            held.settle(
                usd=completion.cost_usd,
                tokens=completion.total_tokens,
                estimated=completion.estimated,
            )
        return completion

    def _rate_limited(
        self, site: CallSite, spec: ModelSpec, ticket: Ticket, exc: ModelError, waits: int
    ) -> None:
        policy = spec.retry
        if exc.retry_after is not None:
            pause = min(exc.retry_after, policy.max_retry_after)
        else:  # no Retry-After: back off as the retry policy would
            base = policy.backoff * policy.multiplier**waits
            pause = min(policy.max_backoff, base) * (
                1 + self._rng.uniform(-policy.jitter, policy.jitter)
            )
        self.admission.rate_limited(ticket, pause)
        now = utc_now()
        site.attempts.append(
            Attempt(
                model=spec.name,
                started=now,
                finished=now,
                error=f"rate limited (429): waiting {pause:.2f} s, then trying again",
                status_code=429,
            )
        )
        effective = self.admission.effective(spec.name)
        site.emit(
            RateLimited(
                run_id=site.run_id,
                task_id=site.task_id,
                model=spec.name,
                pause=pause,
                concurrency=None if math.isinf(effective) else int(effective),
            )
        )

    @staticmethod
    def _failed(
        site: CallSite,
        spec: ModelSpec,
        request: CallRequest,
        exc: ModelError,
        waited: float,
        seconds: float,
    ) -> None:
        site.emit(
            ModelCalled(
                run_id=site.run_id,
                task_id=site.task_id,
                model=spec.name,
                reason=request.reason,
                error=str(exc),
                error_type=str(exc.status_code or type(exc.__cause__ or exc).__name__),
                seconds=seconds,
                waited=waited,
            )
        )
