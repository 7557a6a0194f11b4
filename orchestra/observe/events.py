"""The event family: every step of a run is one frozen, serialisable event.

The core emits events to sinks (plain callables, `Orchestra(on_event=...)`); rendering, the
journal and tracing subscribe. `EVENTS` is the one TypeAdapter that (de)serialises them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "EVENTS",
    "Event",
    "EventSink",
    "ModelCalled",
    "NodeFinished",
    "NodeStarted",
    "PlanReady",
    "PlanRejected",
    "RunFinished",
    "RunStarted",
]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    at: datetime = Field(default_factory=_now)


class RunStarted(_Event):
    """A run began; `task` is the boss's task (None for a hand-written plan)."""

    kind: Literal["run_started"] = "run_started"
    task: str | None = None


class PlanRejected(_Event):
    """The boss's plan did not validate; it is asked again with these problems."""

    kind: Literal["plan_rejected"] = "plan_rejected"
    attempt: int
    problems: tuple[str, ...]


class PlanReady(_Event):
    """A validated plan is about to run."""

    kind: Literal["plan_ready"] = "plan_ready"
    task_ids: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]


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


Event = Annotated[
    RunStarted | PlanRejected | PlanReady | NodeStarted | ModelCalled | NodeFinished | RunFinished,
    Field(discriminator="kind"),
]
EVENTS: TypeAdapter[Event] = TypeAdapter(Event)
EventSink = Callable[[Event], None]
