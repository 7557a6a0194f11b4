"""The event family: every step of a run is one frozen, serialisable event.

The core emits events to sinks (plain callables, `Orchestra(on_event=...)`); rendering, the
journal and tracing subscribe (`Subscribers`). `EVENTS` is the one TypeAdapter that
(de)serialises them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Literal, final

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from orchestra._clock import utc_now

__all__ = [
    "EVENTS",
    "PLAN_TASK",
    "BreakerChanged",
    "BudgetStopped",
    "CallTimedOut",
    "CheckFailed",
    "ConcurrencyRestored",
    "Escalated",
    "Event",
    "EventSink",
    "FallbackUsed",
    "HedgeStarted",
    "HedgeWon",
    "LoserEnded",
    "MapExpanded",
    "ModelCalled",
    "NodeFinished",
    "NodeRouted",
    "NodeStarted",
    "PlanReady",
    "PlanRejected",
    "RateLimited",
    "Replanned",
    "RetryScheduled",
    "RunFinished",
    "RunStarted",
    "Subscribers",
]


PLAN_TASK = "(plan)"
"""The task id the boss's planning calls carry in events (no task of a plan can have it)."""


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    at: datetime = Field(default_factory=utc_now)


class RunStarted(_Event):
    """A run began; `task` is the boss's task (None for a hand-written plan)."""

    kind: Literal["run_started"] = "run_started"
    task: str | None = None


class PlanRejected(_Event):
    """The boss's plan did not validate; it is asked again with these problems."""

    kind: Literal["plan_rejected"] = "plan_rejected"
    attempt: int
    problems: tuple[str, ...]


class Replanned(_Event):
    """A node failed for good; the boss planned the remaining work as `new_tasks`."""

    kind: Literal["replanned"] = "replanned"
    attempt: int
    failed_task: str
    new_tasks: tuple[str, ...]


class PlanReady(_Event):
    """A validated plan is about to run."""

    kind: Literal["plan_ready"] = "plan_ready"
    task_ids: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]


class MapExpanded(_Event):
    """A map task fanned out into `items` child tasks (`<task_id>__<n>`)."""

    kind: Literal["map_expanded"] = "map_expanded"
    task_id: str
    items: int


class NodeStarted(_Event):
    """A task was dispatched."""

    kind: Literal["node_started"] = "node_started"
    task_id: str
    agent: str


class ModelCalled(_Event):
    """A node's model call answered (or failed, with `error`)."""

    kind: Literal["model_called"] = "model_called"
    task_id: str
    model: str
    reason: str
    """Why this model: pinned, or the routing policy's reason."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    error: str | None = None
    error_type: str | None = None
    """A short, low-cardinality class of the error (`ModelError`, `429`...), for tracing."""
    cached: bool = False
    """True when the response cache answered: no request was sent and nothing was charged."""
    estimated: bool = False
    """True when the provider reported no usage: the tokens and cost are orchestra's estimate."""
    waited: float = 0.0
    """Seconds the call waited for admission (its model's queue, rate window or pause)."""
    finish_reason: str | None = None
    """Why the model stopped (`stop`, `length`, `tool_calls`...); None for a failed call."""

    @property
    def truncated(self) -> bool:
        """True when the answer was cut at the token limit (`finish_reason` `length`)."""
        return self.finish_reason == "length"


class NodeFinished(_Event):
    """A task ended: `error` is None when it produced an output."""

    kind: Literal["node_finished"] = "node_finished"
    task_id: str
    model: str | None
    cost_usd: float
    seconds: float
    error: str | None = None


class RunFinished(_Event):
    """A run ended with `status` (succeeded, failed, budget_exceeded)."""

    kind: Literal["run_finished"] = "run_finished"
    status: str
    cost_usd: float
    seconds: float


class RetryScheduled(_Event):
    """A model call failed with a transient error and will be tried again after `wait` s."""

    kind: Literal["retry_scheduled"] = "retry_scheduled"
    task_id: str
    model: str
    attempt: int
    """The attempt that failed, from 1."""
    wait: float
    error: str


class FallbackUsed(_Event):
    """A model was given up (retries spent, an error retries cannot fix, or an open circuit);
    the call moves to the next model of the chain."""

    kind: Literal["fallback_used"] = "fallback_used"
    task_id: str
    from_model: str
    to_model: str
    reason: str


class BreakerChanged(_Event):
    """A model's circuit breaker changed state: `open` (calls skip the model), `half_open`
    (one probe call allowed), `closed` (healthy)."""

    kind: Literal["breaker_changed"] = "breaker_changed"
    model: str
    state: Literal["closed", "open", "half_open"]


class HedgeStarted(_Event):
    """The first call was slower than `after` seconds: a second, hedging call was started."""

    kind: Literal["hedge_started"] = "hedge_started"
    task_id: str
    model: str
    hedge_model: str
    after: float


LoserEnded = Literal["answered", "failed", "cancelled", "unsent"]


class HedgeWon(_Event):
    """One of two hedged calls answered first; the other was cancelled (its cost counted)."""

    kind: Literal["hedge_won"] = "hedge_won"
    task_id: str
    winner: str
    """`primary` or `hedge`."""
    model: str
    loser_cost_usd: float
    """What the losing request cost: its answer (`answered`), its prompt, estimated
    (`cancelled` in flight), or nothing (`failed`, or `unsent`: cancelled while it waited
    its turn in admission, never sent)."""
    loser: LoserEnded | None = None
    """How the losing request ended (None in events recorded before it was reported)."""


class CallTimedOut(_Event):
    """A model call took longer than its spec's `timeout` (or stalled mid-stream)."""

    kind: Literal["call_timed_out"] = "call_timed_out"
    task_id: str
    model: str
    seconds: float


class NodeRouted(_Event):
    """A task was placed on a model: a pin, or the routing policy's choice and its reason."""

    kind: Literal["node_routed"] = "node_routed"
    task_id: str
    model: str
    reason: str
    candidates: tuple[str, ...] = ()
    """The models the policy chose among (empty for a pinned task)."""


class BudgetStopped(_Event):
    """A budget limit was reached: nothing more is dispatched (`max_seconds` also cancels
    the calls in flight)."""

    kind: Literal["budget_stopped"] = "budget_stopped"
    limit: str
    """`max_usd`, `max_tokens` or `max_seconds`."""
    cost_usd: float = 0.0
    tokens: int = 0


class CheckFailed(_Event):
    """A check rejected a node's answers (the node escalates, or keeps the best guess)."""

    kind: Literal["check_failed"] = "check_failed"
    task_id: str
    stage: int
    """The round of models whose answers were judged, from 0."""
    reason: str


class Escalated(_Event):
    """A node asks more models after a check rejected its answers."""

    kind: Literal["escalated"] = "escalated"
    task_id: str
    stage: int
    """The new round of models, from 1."""
    models: tuple[str, ...]
    reason: str
    """The routing policy's reason for these models."""


class RateLimited(_Event):
    """A model answered 429: its queue pauses for `pause` s and its effective concurrency
    drops to `concurrency` (AIMD: it grows back by one per answered call). The call waits and
    is sent again; this spends the run's time, not the call's retries."""

    kind: Literal["rate_limited"] = "rate_limited"
    task_id: str
    model: str
    pause: float
    concurrency: int | None
    """Calls the model may now have in flight (None: unlimited)."""


class ConcurrencyRestored(_Event):
    """A model that was rate limited is back to its full concurrency (`max_concurrency`, None:
    unlimited)."""

    kind: Literal["concurrency_restored"] = "concurrency_restored"
    model: str
    concurrency: int | None


Event = Annotated[
    RunStarted
    | PlanRejected
    | PlanReady
    | Replanned
    | NodeStarted
    | MapExpanded
    | ModelCalled
    | NodeFinished
    | RunFinished
    | RetryScheduled
    | FallbackUsed
    | BreakerChanged
    | HedgeStarted
    | HedgeWon
    | CallTimedOut
    | NodeRouted
    | BudgetStopped
    | CheckFailed
    | Escalated
    | RateLimited
    | ConcurrencyRestored,
    Field(discriminator="kind"),
]
EVENTS: TypeAdapter[Event] = TypeAdapter(Event, config=ConfigDict(defer_build=True))
EventSink = Callable[[Event], None]


@final
class Subscribers:
    """The sinks subscribed to one Orchestra's events: each event goes to every one, in order.

    A sink that raises is unsubscribed with a `RuntimeWarning`: a broken subscriber must not
    lose a run's work.
    """

    def __init__(self, sinks: Iterable[EventSink] = ()) -> None:
        self._sinks = list(sinks)

    @property
    def sinks(self) -> tuple[EventSink, ...]:
        """The sinks subscribed now, in order."""
        return tuple(self._sinks)

    def add(self, sink: EventSink) -> None:
        """Subscribe `sink` (after the sinks subscribed already)."""
        self._sinks.append(sink)

    def discard(self, sink: EventSink) -> None:
        """Unsubscribe `sink`, if it is subscribed."""
        if sink in self._sinks:
            self._sinks.remove(sink)

    def emit(self, event: Event) -> None:
        """Give `event` to every sink (an `EventSink` itself)."""
        for sink in list(self._sinks):
            try:
                sink(event)
            except Exception as exc:  # a broken subscriber must not lose the run's work
                self._sinks.remove(sink)
                warnings.warn(
                    f"event sink {sink!r} raised {exc!r} and was unsubscribed",
                    RuntimeWarning,
                    stacklevel=2,
                )
