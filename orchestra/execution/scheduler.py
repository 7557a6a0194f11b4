"""The scheduler's driver: runs a (growing) DAG of tasks with one anyio task group.

Every node is dispatched the moment its own dependencies are done — there is no superstep
barrier — in critical-path priority order, at most `max_parallel` at a time. Node tasks report
their outcome as a value to the coordinating loop, which alone changes the state and decides:
on a failure or a spent budget it stops dispatching and lets in-flight nodes settle (their
results are kept); at the deadline it cancels them. Tasks may be added while the DAG runs
(`add`), until `close` says no more will come.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestra.errors import OrchestraError
from orchestra.events import EventSink, MapExpanded, NodeFinished, NodeStarted
from orchestra.execution.mapping import children, items_of
from orchestra.execution.priority import DISPATCH, Dispatch, NodeTiming, node_timings
from orchestra.execution.runner import NodeOutcome
from orchestra.execution.state import DagState
from orchestra.models.budget import Budget
from orchestra.plan import Task, dependencies_first
from orchestra.results import NodeResult, Usage

__all__ = ["Schedule", "Scheduler"]

RunNode = Callable[[Task, Mapping[str, Any]], Awaitable[NodeOutcome]]


@dataclass
class Schedule:
    """What the scheduler ended with: every settled node, and why it stopped early, if it did."""

    nodes: dict[str, NodeResult] = field(default_factory=dict[str, NodeResult])
    usage: Usage = field(default_factory=Usage)
    failed: str | None = None
    """Id of the first task that failed."""
    error: BaseException | None = None
    """The exception behind that failure."""
    stopped: str | None = None
    """The budget limit that stopped the run (`max_usd`, `max_tokens`, `max_seconds`)."""
    not_run: list[str] = field(default_factory=list[str])
    """Tasks that never finished: not dispatched, or cancelled at the deadline."""


@dataclass(frozen=True)
class _Added:
    """Wakes the loop when tasks are added or the DAG is closed."""


class Scheduler:
    """Runs tasks as their dependencies finish; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        run_id: str,
        run_node: RunNode,
        budget: Budget | None = None,
        max_parallel: int | None = None,
        weight: Callable[[Task], float] = lambda _task: 1.0,
        emit: EventSink = lambda _event: None,
        usage: Usage | None = None,
    ) -> None:
        self._run_id = run_id
        self._run_node = run_node
        self._budget = budget or Budget()
        self._cap = math.inf if max_parallel is None else max_parallel
        self._weight = weight
        self._emit = emit
        self._state = DagState()
        self._tasks: dict[str, Task] = {}
        self._closed = False
        self._expanded: dict[str, list[str]] = {}
        self._timings: dict[str, NodeTiming] | None = None  # None: recompute (the DAG grew)
        # Spending before the DAG (the boss's planning calls) counts towards the budget.
        self._result = Schedule(usage=usage or Usage())
        # The coordinator's inbox exists while `run` runs; before, the state holds everything.
        self._send: MemoryObjectSendStream[tuple[str, NodeOutcome] | _Added] | None = None

    @property
    def state(self) -> DagState:
        """The state machine (read it; do not change it)."""
        return self._state

    def add(self, tasks: Iterable[Task]) -> None:
        """Add tasks (in any order among themselves); each runs as soon as its dependencies are
        done. Dependencies outside the batch must have been added before.

        Raises:
            ValueError: the DAG was closed, a task id exists, or a dependency is unknown.
        """
        if self._closed:
            raise ValueError("the scheduler was closed; no tasks can be added")
        for task in dependencies_first(tasks, self._tasks.keys()):
            self._state.add(task.id, task.after, self._weight(task))
            self._tasks[task.id] = task
        self._timings = None
        self._wake()

    def seed(self, tasks: Iterable[Task], results: Mapping[str, NodeResult]) -> None:
        """Start from nodes that already ran (a replan or a resume): they are not run again,
        their outputs feed their dependents. `tasks` come dependencies first."""
        for task in tasks:
            result = results[task.id]
            self._state.add_settled(task.id, task.after, ok=result.ok)
            self._tasks[task.id] = task
            self._result.nodes[task.id] = result

    def charge(self, usage: Usage) -> None:
        """Count spending made beside the DAG (a streaming boss) towards the budget."""
        self._result.usage = self._result.usage + usage
        self._check_budget()

    @property
    def tasks(self) -> list[Task]:
        """Every task known so far, in the order added."""
        return list(self._tasks.values())

    def close(self) -> None:
        """Say that no more tasks will be added; `run` returns once the DAG has settled."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._send is not None:
            self._send.send_nowait(_Added())

    async def run(self) -> Schedule:
        """Run until every task has settled (or a failure, budget or deadline stops it)."""
        self._check_budget()
        send, receive = anyio.create_memory_object_stream["tuple[str, NodeOutcome] | _Added"](
            math.inf
        )
        self._send = send
        try:
            with (
                send,
                receive,
                anyio.move_on_after(self._budget.max_seconds or math.inf) as deadline,
            ):
                async with anyio.create_task_group() as group:
                    await self._loop(group, receive)
        finally:
            self._send = None
        if deadline.cancelled_caught:
            self._result.stopped = self._result.stopped or "max_seconds"
        settled = self._result.nodes.keys()
        self._result.not_run = [t for t in self._tasks if t not in settled]
        return self._result

    def _stopping(self) -> bool:
        return self._result.failed is not None or self._result.stopped is not None

    async def _loop(
        self,
        group: anyio.abc.TaskGroup,
        receive: MemoryObjectReceiveStream[tuple[str, NodeOutcome] | _Added],
    ) -> None:
        state = self._state
        while True:
            while not self._stopping() and len(state.running) < self._cap:
                node = state.pop()
                if node is None:
                    break
                task = self._tasks[node]
                if task.map is not None:
                    self._map(task, task.map)
                    continue
                outputs = {dep: self._result.nodes[dep].output for dep in task.after}
                self._emit(NodeStarted(run_id=self._run_id, task_id=node, agent=task.agent))
                group.start_soon(self._node, task, outputs, self._dispatch(node))
            if not state.running and (self._stopping() or (self._closed and state.finished)):
                return
            message = await receive.receive()
            if isinstance(message, tuple):
                self._settle(*message)

    def _map(self, task: Task, source: str) -> None:
        """Expand a map task into its items, or join them once they are all done."""
        now = datetime.now(timezone.utc)
        done = self._expanded.get(task.id)
        if done is not None:
            joined = [self._result.nodes[child].output for child in done]
            result = NodeResult(
                task_id=task.id, agent=task.agent, output=joined, started=now, finished=now
            )
            self._settle(task.id, NodeOutcome(result))
            return
        items = items_of(self._result.nodes[source].output)
        kids = children(task, items)
        problem = None
        if len(items) > task.max_items:
            problem = (
                f"task {task.id!r} maps over {len(items)} items of {source!r}, more than its "
                f"max_items={task.max_items}; raise max_items or shorten the list"
            )
        elif clash := [k.id for k in kids if k.id in self._tasks]:
            problem = f"task {task.id!r} cannot expand: ids {clash} exist already"
        if problem is not None:
            error = OrchestraError(problem)
            failed = NodeResult(
                task_id=task.id, agent=task.agent, started=now, finished=now, error=problem
            )
            self._settle(task.id, NodeOutcome(failed, error))
            return
        self._state.expand(task.id, [(k.id, k.after, self._weight(k)) for k in kids])
        for kid in kids:
            self._tasks[kid.id] = kid
        self._expanded[task.id] = [k.id for k in kids]
        self._timings = None
        self._emit(MapExpanded(run_id=self._run_id, task_id=task.id, items=len(kids)))

    def _dispatch(self, node: str) -> Dispatch:
        """The node's place on the estimated schedule, and the budget left, for routing."""
        if self._timings is None:
            self._timings = node_timings(self._state.deps, self._state.weights)
        left = self._budget.max_usd
        return Dispatch(
            timing=self._timings.get(node),
            budget_left_usd=None if left is None else left - self._result.usage.cost_usd,
        )

    async def _node(self, task: Task, outputs: Mapping[str, Any], dispatch: Dispatch) -> None:
        # Each node task runs in its own copy of the context: the router reads this there.
        DISPATCH.set(dispatch)
        try:
            outcome = await self._run_node(task, outputs)
        except Exception as exc:  # a bug in a policy or hook fails the node, not the task group
            now = datetime.now(timezone.utc)
            outcome = NodeOutcome(
                NodeResult(
                    task_id=task.id, agent=task.agent, started=now, finished=now, error=repr(exc)
                ),
                exc,
            )
        if self._send is not None:
            self._send.send_nowait((task.id, outcome))

    def _settle(self, node: str, outcome: NodeOutcome) -> None:
        result = outcome.result
        self._result.nodes[node] = result
        self._result.usage = self._result.usage + result.usage
        if result.ok:
            self._state.finish(node)
        else:
            self._state.fail(node)
            if self._result.failed is None:
                self._result.failed, self._result.error = node, outcome.error
        self._emit(
            NodeFinished(
                run_id=self._run_id,
                task_id=node,
                model=result.model,
                cost_usd=result.cost_usd,
                seconds=result.seconds,
                error=result.error,
            )
        )
        self._check_budget()

    def _check_budget(self) -> None:
        usage = self._result.usage
        limit = self._budget.exceeded(cost_usd=usage.cost_usd, tokens=usage.total_tokens)
        if limit is not None and self._result.stopped is None:
            self._result.stopped = limit
