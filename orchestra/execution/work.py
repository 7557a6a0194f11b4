"""What the scheduler hands a backend: one fully described node, and what comes back.

`NodeWork` is plain, picklable data: a backend may run it in this process or ship it to another
machine. `RunScope` is the driver's side of a run (its budget account, event sink, notes and
response cache), which a local backend uses directly and a remote one stands in for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestra.events import EventSink
from orchestra.memory import Notes
from orchestra.models.budget import Account, Budget
from orchestra.models.calls import AnswerCache
from orchestra.plan import Task
from orchestra.priority import NodeTiming
from orchestra.results import NodeResult, Usage

__all__ = ["NodeOutcome", "NodeWork", "RunScope"]


@dataclass(frozen=True)
class NodeWork:
    """One node to run, with everything needed to run it anywhere.

    Example:
        >>> from orchestra.plan import Task
        >>> work = NodeWork(run_id="r1", task=Task(id="a", agent="w", prompt="hi"), priority=2.0)
        >>> work.key is None, work.attempt
        (True, 1)
    """

    run_id: str
    task: Task
    priority: float
    """The node's critical-path priority: its calls wait in admission queues by it."""
    outputs: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """The outputs of the tasks it depends on, by task id."""
    inputs: Mapping[str, str] = field(default_factory=dict[str, str])
    """The run's inputs, as text."""
    timing: NodeTiming | None = None
    """The node's place on the estimated schedule (for routing policies)."""
    budget_left_usd: float | None = None
    """USD the run could still spend when the node was dispatched (None: no USD limit)."""
    key: str | None = None
    """The dispatch's idempotency key (`run:task:attempt`; None when the run is not recorded)."""
    attempt: int = 1
    """How many times this node has been dispatched, this one included (across resumes)."""
    budgets: tuple[tuple[str, Budget], ...] = ()
    """The task budgets covering this node, outermost first, by task id: a map item's map
    task's, then its own (`Task.budget`)."""


@dataclass(frozen=True)
class NodeOutcome:
    """A node's result, and the exception behind its failure (None when it succeeded)."""

    result: NodeResult
    error: BaseException | None = None
    counted: bool = False
    """Its usage is in the run's spending already: a map item's result recorded in an earlier
    session (replayed from the journal) or finished before a replan (given back)."""


@dataclass
class RunScope:
    """The driver's side of one run: its budget, events, notes and response cache."""

    run_id: str
    account: Account
    """The run's budget account (inside the Orchestra's)."""
    emit: EventSink
    notes: Notes = field(default_factory=Notes)
    cache: AnswerCache | None = None
    caches: Callable[[str], bool] = lambda _agent: True
    """Whether the cache applies to an agent's calls."""
    cut: Usage = field(default_factory=Usage)
    """What nodes cancelled in flight (the deadline, a stop) had spent: paid and charged to the
    budget, in no node's result; the run's usage counts it."""
    _tasks: dict[str, Account] = field(default_factory=dict[str, Account])

    def account_for(self, work: NodeWork) -> Account:
        """The innermost account covering the node's calls: its task budgets (each made once
        and shared, so a map task's budget covers all its items) inside the run's."""
        account = self.account
        for task_id, budget in work.budgets:
            inner = self._tasks.get(task_id)
            if inner is None:
                inner = self._tasks[task_id] = account.child(f"task {task_id!r}", budget)
            account = inner
        return account
