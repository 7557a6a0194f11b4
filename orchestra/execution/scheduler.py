"""The scheduler's driver: runs a (growing) DAG of tasks with one anyio task group.

Every node is dispatched the moment its own dependencies are done — there is no superstep
barrier — in critical-path priority order, at most `max_parallel` at a time, as a `NodeWork`
handed to the run's backend; its priority travels with it, so its model calls wait in admission
queues in the same order. Node tasks report their outcome as a value to the coordinating loop,
which alone changes the state and decides: on a failure or a spent budget (a call refused by its
reservation, or spending at a limit) it stops dispatching and lets in-flight nodes settle (their
results are kept); at the deadline it cancels them. Tasks may be added while the DAG runs
(`add`), until `close` says no more will come. Observed node durations sharpen the priorities
of the nodes still to run (`Durations`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestra._clock import utc_now
from orchestra.errors import OrchestraError
from orchestra.events import EventSink, MapExpanded, NodeFinished, NodeStarted
from orchestra.execution.durations import Durations
from orchestra.execution.mapping import children, items_of
from orchestra.execution.state import DagState
from orchestra.execution.work import NodeOutcome, NodeWork
from orchestra.models.budget import Account, Budget, BudgetRefused
from orchestra.plan import Task, dependencies_first
from orchestra.priority import NodeTiming
from orchestra.results import NodeResult, Usage

__all__ = ["RunNode", "Schedule", "Scheduler"]

RunNode = Callable[[NodeWork], Awaitable[NodeOutcome]]

# How far an agent's learned duration must move before priorities are recomputed with it.
_REWEIGH = 0.25


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
        account: Account | None = None,
        deadline: float | None = None,
        inputs: Mapping[str, str] | None = None,
        max_parallel: int | None = None,
        durations: Durations | None = None,
        emit: EventSink = lambda _event: None,
        usage: Usage | None = None,
    ) -> None:
        """Args:
        run_id: the run's id.
        run_node: runs one node to its outcome (the backend, wrapped by the journal).
        account: the run's budget account (None: no limits).
        deadline: seconds the DAG may run before in-flight nodes are cancelled.
        inputs: the run's inputs, as text, handed to every node.
        max_parallel: at most this many nodes in flight.
        durations: estimated node durations, learned as nodes finish.
        emit: the event sink.
        usage: spending made before the DAG (the boss's planning, an earlier session).
        """
        self._run_id = run_id
        self._run_node = run_node
        self._account = account or Account(f"run {run_id}", Budget())
        self._deadline = deadline
        self._inputs = dict(inputs or {})
        self._cap = math.inf if max_parallel is None else max_parallel
        self._durations = durations or Durations()
        self._emit = emit
        self._state = DagState()
        self._tasks: dict[str, Task] = {}
        self._closed = False
        self._expanded: dict[str, list[str]] = {}
        self._timings: dict[str, NodeTiming] | None = None  # None: recompute (the DAG grew)
        self._budgets: dict[str, tuple[tuple[str, Budget], ...]] = {}  # map items: their map's
        self._attempts: dict[str, int] = {}
        self._weighed: dict[str, float] = {}  # agent -> learned ratio the priorities use
        self._settled = 0
        self._next_reweigh = 0
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
            self._state.add(task.id, task.after, self._durations.weight(task))
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
        """Count spending made beside the DAG (a streaming boss) in the run's usage (the
        door charged its budget account already)."""
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
                anyio.move_on_after(self._deadline or math.inf) as deadline,
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
                self._emit(NodeStarted(run_id=self._run_id, task_id=node, agent=task.agent))
                group.start_soon(self._node, self._work(task))
            if not state.running and (self._stopping() or (self._closed and state.finished)):
                return
            message = await receive.receive()
            if isinstance(message, tuple):
                self._settle(*message)

    def _map(self, task: Task, source: str) -> None:
        """Expand a map task into its items, or join them once they are all done."""
        now = utc_now()
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
        self._state.expand(task.id, [(k.id, k.after, self._durations.weight(k)) for k in kids])
        for kid in kids:
            self._tasks[kid.id] = kid
            self._budgets[kid.id] = self._budgets_of(task)
        self._expanded[task.id] = [k.id for k in kids]
        self._timings = None
        self._emit(MapExpanded(run_id=self._run_id, task_id=task.id, items=len(kids)))

    def _work(self, task: Task) -> NodeWork:
        """The node as the backend gets it: inputs, priority, place on the schedule, budget."""
        if self._timings is None:
            self._timings = self._state.timings()
        attempt = self._attempts.get(task.id, 0) + 1
        self._attempts[task.id] = attempt
        return NodeWork(
            run_id=self._run_id,
            task=task,
            priority=self._state.priority(task.id),
            outputs={dep: self._result.nodes[dep].output for dep in task.after},
            inputs=self._inputs,
            timing=self._timings.get(task.id),
            budget_left_usd=self._account.left_usd(),
            attempt=attempt,
            budgets=self._budgets_of(task),
        )

    def _budgets_of(self, task: Task) -> tuple[tuple[str, Budget], ...]:
        """The task budgets covering `task`, outermost first (its map task's, then its own)."""
        own = ((task.id, task.budget),) if task.budget is not None else ()
        return self._budgets.get(task.id, ()) + own

    async def _node(self, work: NodeWork) -> None:
        try:
            outcome = await self._run_node(work)
        except Exception as exc:  # a bug in a policy or hook fails the node, not the task group
            now = utc_now()
            task = work.task
            outcome = NodeOutcome(
                NodeResult(
                    task_id=task.id, agent=task.agent, started=now, finished=now, error=repr(exc)
                ),
                exc,
            )
        if self._send is not None:
            self._send.send_nowait((work.task.id, outcome))

    def _settle(self, node: str, outcome: NodeOutcome) -> None:
        result = outcome.result
        if not outcome.counted:
            self._result.usage = self._result.usage + result.usage
        refused = outcome.error if isinstance(outcome.error, BudgetRefused) else None
        if refused is not None and not refused.account.startswith("task "):
            # The run's budget (not the task's own) refused a call: a stop, not a failure.
            # The node did not finish; what it spent is in the run's usage.
            self._state.abandon(node)
            self._result.stopped = self._result.stopped or refused.limit
        elif result.ok:
            self._result.nodes[node] = result
            self._state.finish(node)
        else:
            self._result.nodes[node] = result
            self._state.fail(node)
            if self._result.failed is None:
                self._result.failed, self._result.error = node, outcome.error
        task = self._tasks[node]
        if result.model is not None and result.ok and task.map is None:
            self._learn(task, result)
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

    def _learn(self, task: Task, result: NodeResult) -> None:
        """Learn the node's duration; when the agent's correction has moved by more than a
        quarter since priorities were last computed with it, recompute them (a full pass)."""
        self._durations.observe(task, result.model, result.seconds)
        self._settled += 1
        now = self._durations.ratio(task.agent)
        used = self._weighed.get(task.agent)
        moved = now is not None and (used is None or abs(now - used) > _REWEIGH * used)
        # A recomputation is a pass over the whole DAG: at most one per eighth of it settling,
        # so a long run pays a bounded number of them.
        if moved and self._settled >= self._next_reweigh:
            self._weighed[task.agent] = now or 1.0
            self._next_reweigh = self._settled + max(8, len(self._tasks) // 8)
            self._reweigh(task.agent)

    def _reweigh(self, agent: str) -> None:
        """New estimates for every node of `agent` (finished ones too, so the schedule's
        proportions, and each node's slack, stay consistent)."""
        for node, task in self._tasks.items():
            if task.agent == agent and task.map is None:
                self._state.reweight(node, self._durations.weight(task))
        self._timings = None

    def _check_budget(self) -> None:
        for account in self._account.chain():
            limit = account.budget.exceeded(cost_usd=account.spent_usd, tokens=account.spent_tokens)
            if limit is not None and self._result.stopped is None:
                self._result.stopped = limit
