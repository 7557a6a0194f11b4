"""What the journal tells about runs: one `RunRecord` per run, one `NodeRecord` per dispatch."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["NodeRecord", "NodeStatus", "RunRecord", "RunStatus"]

RunStatus = Literal["running", "succeeded", "failed", "budget_exceeded", "stopped", "interrupted"]
"""`running` (a live process holds it), the `RunResult` statuses, `stopped` (cancelled or
stopped by a signal, in-flight calls journaled as cancelled) and `interrupted` (its process
died: killed, crashed, or the machine went down)."""

NodeStatus = Literal["started", "succeeded", "failed", "cancelled"]
"""`started`: the call was about to be made (in flight, or lost in a crash)."""


class RunRecord(BaseModel):
    """A recorded run, as `Orchestra.runs()` and `orchestra runs` list it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    status: RunStatus
    task: str | None
    """The boss's task (None for a hand-written plan)."""
    nodes_done: int
    """Nodes with a recorded result."""
    nodes_total: int
    """Nodes known so far: the plan's tasks (after any replan) and the expanded map items."""
    cost_usd: float
    """USD recorded for the run so far, over every session."""
    started: datetime
    updated: datetime
    finished: datetime | None
    sessions: int
    """How many times the run was started or resumed."""

    @property
    def resumable(self) -> bool:
        """Whether `resume` has work left to do (anything but a succeeded or live run)."""
        return self.status not in ("succeeded", "running")


class NodeRecord(BaseModel):
    """One dispatch of a node: its attempt number, idempotency key and how it ended."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    task_id: str
    attempt: int
    """Counts the node's dispatches, from 1, across every session of the run."""
    status: NodeStatus
    idempotency_key: str
    model: str | None = None
    cost_usd: float = 0.0
    started: datetime
    finished: datetime | None = None
    error: str | None = None
    session: int
    """The session (1 for the first run, 2 for the first resume...) that dispatched it."""
