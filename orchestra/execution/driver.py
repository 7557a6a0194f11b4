"""The run driver: one run's planning, its DAG through the scheduler, replanning, and its
outcome.

The `Orchestra` is configuration and entry points; this module does the running: it has the
boss plan a task (and reports what a failed planning cost), builds the scheduler, streams a
plan into a running DAG, replans what is left after a failure (with loop guards), and turns
the schedule into a `RunResult` or a typed error.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import anyio

from orchestra._clock import utc_now
from orchestra.agents import Agent
from orchestra.errors import (
    BudgetExceeded,
    ConfigError,
    JournalError,
    ModelError,
    NodeFailed,
    OrchestraError,
    PlanError,
)
from orchestra.events import (
    PLAN_TASK,
    BudgetStopped,
    EventSink,
    PlanReady,
    Replanned,
    RunFinished,
    RunStarted,
)
from orchestra.execution.backends import Backend
from orchestra.execution.durations import Durations
from orchestra.execution.runner import as_text
from orchestra.execution.scheduler import RunNode, Schedule, Scheduler
from orchestra.execution.work import NodeOutcome, NodeWork, RunScope
from orchestra.memory import Notes
from orchestra.models.admission import PLANNING
from orchestra.models.budget import Account, Budget, BudgetRefused
from orchestra.models.calls import AnswerCache, CallKeys, CallSite
from orchestra.models.client import Completion
from orchestra.models.constellation import Constellation
from orchestra.plan import Plan, Task
from orchestra.planning.boss import Planner
from orchestra.planning.replan import LoopGuard, restated, survivors
from orchestra.results import NodeResult, RunResult, Usage

__all__ = ["Planned", "RunContext", "RunDriver", "RunJournal", "final_output", "usage_of"]


def usage_of(completions: Iterable[Completion]) -> Usage:
    """What a list of completions cost, by model."""
    total = Usage()
    for c in completions:
        total = total + Usage.of(
            c.model,
            input_tokens=c.input_tokens,
            output_tokens=c.output_tokens,
            cost_usd=c.cost_usd,
            estimated=c.estimated,
        )
    return total


class RunJournal(Protocol):
    """What the driver needs of a run's journal writer (`orchestra.journal.RunRecorder`)."""

    @property
    def broken(self) -> JournalError | None:
        """Why the journal stopped accepting writes (None while it works)."""
        ...

    @property
    def cache(self) -> AnswerCache | None:
        """The response cache of this session (None: no cache)."""
        ...

    def caches(self, agent: str) -> bool:
        """Whether the response cache applies to `agent`'s calls."""
        ...

    def wrap(self, run_node: RunNode) -> RunNode:
        """`run_node` with each dispatch and result recorded around it."""
        ...

    def record_plan(self, plan: Plan, *, failed_task: str | None = None) -> None:
        """Record a plan, or a replan merged into the plan so far."""
        ...


@dataclass(frozen=True)
class Planned:
    """A run planned by the boss: its task, and the planner that can replan it."""

    task: str
    planner: Planner


@dataclass(frozen=True)
class RunContext:
    """What one run is: its id, budget (and the account spending it), start, inputs, how it
    was planned (if it was), and its journal writer."""

    run_id: str
    budget: Budget
    started: datetime
    inputs: Mapping[str, Any]
    planned: Planned | None = None
    recorder: RunJournal | None = None
    replans: int = 0
    """Replans the run made before this session (a resumed run)."""
    account: Account = field(default_factory=lambda: Account("run", Budget()))
    """The run's budget account: every model call of the run reserves and settles here."""

    def planning_site(self, emit: EventSink) -> CallSite:
        """Where the boss's calls for this run come from: first in line, on the run's budget."""
        recorder = self.recorder
        return CallSite(
            run_id=self.run_id,
            task_id=PLAN_TASK,
            agent="plan",
            priority=PLANNING,
            account=self.account,
            # Retries of one boss request share a key; each planning session has its own.
            keys=CallKeys(f"{self.run_id}:{PLAN_TASK}:{uuid.uuid4().hex[:8]}"),
            cache=recorder.cache if recorder is not None and recorder.caches("plan") else None,
            emit=emit,
        )


def final_output(plan: Plan, nodes: Mapping[str, NodeResult]) -> Any:
    """The run's answer: the output of `plan.output`, else of its one sink, else its sinks'
    outputs under `## <task id>` headings."""
    ids = plan.answer_ids()
    if len(ids) == 1:
        return nodes[ids[0]].output
    return "\n\n".join(f"## {i}\n\n{as_text(nodes[i].output)}" for i in ids)


@dataclass
class RunDriver:
    """Runs plans with one Orchestra's models, agents, backend and shared durations."""

    models: Constellation
    agents: Mapping[str, Agent]
    backend: Backend
    emit: EventSink
    max_parallel: int | None
    max_replans: int
    durations: Durations

    def _scope(self, context: RunContext) -> RunScope:
        recorder = context.recorder
        return RunScope(
            run_id=context.run_id,
            account=context.account,
            emit=self.emit,
            notes=Notes(),
            cache=recorder.cache if recorder is not None else None,
            caches=recorder.caches if recorder is not None else (lambda _agent: True),
        )

    def _scheduler(
        self,
        context: RunContext,
        scope: RunScope,
        spent: Usage,
        kept: Mapping[str, NodeResult] | None = None,
    ) -> Scheduler:
        """The run's scheduler; `kept` holds map items that finished before a replan (their
        cost is in `spent`): a map dispatched again gets them back instead of calling again."""
        left = context.budget.max_seconds
        if left is not None:
            left = max(left - (utc_now() - context.started).total_seconds(), 1e-3)
        backend = self.backend

        async def run_node(work: NodeWork) -> Any:
            return await backend.run(work, scope)

        recorder = context.recorder
        recorded: RunNode = run_node if recorder is None else recorder.wrap(run_node)
        finished = dict(kept or {})

        async def run_or_keep(work: NodeWork) -> NodeOutcome:
            done = finished.pop(work.task.id, None)
            if done is not None:
                return NodeOutcome(done, counted=True)  # recorded already, if recorded
            return await recorded(work)

        return Scheduler(
            run_id=context.run_id,
            run_node=run_or_keep if finished else recorded,
            account=context.account,
            deadline=left,
            inputs={name: as_text(value) for name, value in context.inputs.items()},
            max_parallel=self.max_parallel,
            durations=self.durations,
            emit=self.emit,
            usage=spent,
        )

    def _plan_ready(self, context: RunContext, plan: Plan) -> None:
        if context.recorder is not None:
            context.recorder.record_plan(plan)  # before any of its nodes can start
        self.emit(
            PlanReady(
                run_id=context.run_id,
                task_ids=tuple(t.id for t in plan.tasks),
                edges=tuple((d, t.id) for t in plan.tasks for d in t.after),
            )
        )

    async def _stream_plan(
        self, context: RunContext, planned: Planned, scheduler: Scheduler
    ) -> tuple[Plan | None, Schedule]:
        """Plan while running: the streaming boss's tasks are dispatched as they arrive.

        Returns the plan (None if the run stopped before the boss finished it) and the schedule.
        """
        schedule = Schedule()
        plan: Plan | None = None
        failure: Exception | None = None
        ended = False  # the schedule stopped (a failure, a budget) before the boss finished
        site = context.planning_site(self.emit)

        async with anyio.create_task_group() as group:

            async def drive() -> None:
                nonlocal schedule, ended
                schedule = await scheduler.run()
                ended = True
                # The boss's call in flight settles like every node's (its reservation is held,
                # and it is counted); only the run's deadline cuts it off.
                if schedule.stopped == "max_seconds":
                    group.cancel_scope.cancel()

            group.start_soon(drive)
            try:
                plan, completions = await planned.planner.plan_streaming(
                    planned.task,
                    site=site,
                    dispatch=lambda task: scheduler.add([task]),
                    inputs=list(context.inputs),
                )
            except Exception as exc:
                if ended:  # the run stopped already; that is its outcome, with the boss's cost
                    scheduler.charge(site.spent)
                else:
                    # The plan never validated: stop its tasks, and raise the error itself once
                    # the task group is closed (not wrapped in an exception group).
                    failure = exc
                    group.cancel_scope.cancel()
            else:
                scheduler.charge(usage_of(completions))
                self._plan_ready(context, plan)
            finally:
                scheduler.close()
        if failure is not None:
            raise failure
        if plan is not None and ended:  # the plan grew after the schedule stopped
            schedule.not_run = [t.id for t in plan.tasks if t.id not in schedule.nodes]
        if plan is None and scheduler.tasks:
            plan = Plan(tasks=scheduler.tasks)
        return plan, schedule

    async def execute(
        self,
        context: RunContext,
        plan: Plan | Planned,
        *,
        spent: Usage | None = None,
        seed: tuple[Sequence[Task], Mapping[str, NodeResult]] = ((), {}),
    ) -> RunResult:
        scope = self._scope(context)
        scheduler = self._scheduler(context, scope, spent or Usage())
        if isinstance(plan, Planned):
            streamed, schedule = await self._stream_plan(context, plan, scheduler)
            if streamed is None:
                return self._finish(context, None, schedule, scope)
            plan = streamed
        else:
            self._plan_ready(context, plan)
            done, results = seed  # a resumed run: what finished does not run again
            scheduler.seed(done, results)
            scheduler.add([t for t in plan.tasks if t.id not in results])
            scheduler.close()
            schedule = await scheduler.run()
        guard = LoopGuard()
        kept: dict[str, NodeResult] = {}  # map items finished before a replan, by id
        for attempt in range(context.replans + 1, self.max_replans + 1):
            if schedule.failed is None or context.planned is None:
                break
            guard.remember(t for t in plan.tasks if t.id in schedule.nodes)  # attempted work
            if context.recorder is not None and context.recorder.broken is not None:
                break  # no boss call whose plan could not be recorded
            failed = schedule.nodes[schedule.failed]
            site = context.planning_site(self.emit)
            try:
                new, completions = await context.planned.planner.replan(
                    context.planned.task,
                    plan=plan,
                    nodes=schedule.nodes,
                    failed=schedule.failed,
                    error=failed.error or "",
                    not_run=schedule.not_run,
                    site=site,
                    inputs=list(context.inputs),
                )
            except BudgetRefused as exc:
                # No budget left to ask the boss: the run ends on its failure, with what the
                # boss cost so far (an answer it rejected) counted and the stop reported.
                schedule.usage = schedule.usage + site.spent
                schedule.stopped = exc.limit
                break
            except (PlanError, ModelError) as exc:
                # The boss could not replan: the run still ends on the node's failure, as a
                # result with every finished node and the boss's cost, saying why.
                schedule.usage = schedule.usage + site.spent
                schedule.error = PlanError(f"replanning failed: {exc}")
                schedule.error.__cause__ = exc
                break
            # Unstarted work that does not need the failure runs as planned, with the new.
            alive = survivors(plan, schedule.nodes)
            fresh = restated(new, alive)
            loop = guard.check(fresh)
            if loop is not None:
                schedule.error = PlanError(f"loop guard: {loop}; the run stops here")
                break
            self.emit(
                Replanned(
                    run_id=context.run_id,
                    attempt=attempt,
                    failed_task=schedule.failed,
                    new_tasks=tuple(t.id for t in fresh),
                )
            )
            ran = [t for t in plan.tasks if t.id in schedule.nodes]
            answer = new.output or (new.sinks()[0] if len(new.sinks()) == 1 else None)
            plan = Plan(tasks=(*ran, *alive, *fresh), output=answer)
            if context.recorder is not None:
                context.recorder.record_plan(plan, failed_task=schedule.failed)
            tasks = {t.id for t in plan.tasks}
            kept.update((i, r) for i, r in schedule.nodes.items() if r.ok and i not in tasks)
            spent = schedule.usage + usage_of(completions)
            scheduler = self._scheduler(context, scope, spent, kept=kept)
            scheduler.seed(ran, schedule.nodes)
            scheduler.add([*alive, *fresh])
            scheduler.close()
            schedule = await scheduler.run()
        for item, result in kept.items():  # kept even when their map did not run again
            schedule.nodes.setdefault(item, result)
        return self._finish(context, plan, schedule, scope)

    async def plan_and_execute(self, context: RunContext) -> RunResult:
        """A planned run: the boss plans `context.planned.task`, then the plan runs. A run that
        ends while the boss plans reports what the boss cost (a spent budget: `BudgetExceeded`).
        """
        run_id, budget = context.run_id, context.budget
        if context.planned is None:  # pragma: no cover - `run` and `resume` set it
            raise ConfigError("a planned run needs its task")
        task, planner = context.planned.task, context.planned.planner
        self.emit(RunStarted(run_id=run_id, task=task))
        if self.models[planner.boss].stream:
            try:
                return await self.execute(context, context.planned)
            except (NodeFailed, BudgetExceeded):
                raise  # the run's end is reported
            except OrchestraError as exc:
                raise self._planning_failed(context, Usage(), exc) from exc.__cause__
        site = context.planning_site(self.emit)
        answer = None
        with anyio.move_on_after(budget.max_seconds or math.inf):
            try:
                answer = await planner.plan(task, site=site, inputs=list(context.inputs))
            except OrchestraError as exc:
                raise self._planning_failed(context, site.spent, exc) from exc.__cause__
        if answer is None:
            stopped = BudgetRefused(
                f"run {run_id} hit max_seconds={budget.max_seconds} while the boss was planning",
                limit="max_seconds",
                account=f"run {run_id}",
            )
            raise self._planning_failed(context, site.spent, stopped)
        plan, completions = answer
        return await self.execute(context, plan, spent=usage_of(completions))

    def _planning_failed(
        self, context: RunContext, spent: Usage, exc: OrchestraError
    ) -> OrchestraError:
        """The error to raise for a run that ended while the boss was planning, with what the
        boss cost reported (a spent budget becomes `BudgetExceeded`)."""
        run_id, started = context.run_id, context.started
        cost = max(spent.cost_usd, context.account.spent_usd)
        seconds = (utc_now() - started).total_seconds()
        if not isinstance(exc, BudgetRefused):
            self.emit(RunFinished(run_id=run_id, status="failed", cost_usd=cost, seconds=seconds))
            return exc
        result = self.result(run_id, None, Schedule(usage=spent, stopped=exc.limit), started)
        self.emit(
            BudgetStopped(run_id=run_id, limit=exc.limit, cost_usd=cost, tokens=spent.total_tokens)
        )
        self.emit(
            RunFinished(run_id=run_id, status="budget_exceeded", cost_usd=cost, seconds=seconds)
        )
        return BudgetExceeded(
            f"run {run_id} stopped while the boss was planning: {exc}",
            limit=exc.limit,
            result=result,
        )

    def _finish(
        self, context: RunContext, plan: Plan | None, schedule: Schedule, scope: RunScope
    ) -> RunResult:
        run_id, budget = context.run_id, context.budget
        schedule.usage = schedule.usage + scope.cut  # nodes cancelled in flight paid too
        result = self.result(run_id, plan, schedule, context.started)
        if schedule.stopped is not None:
            self.emit(
                BudgetStopped(
                    run_id=run_id,
                    limit=schedule.stopped,
                    cost_usd=result.cost_usd,
                    tokens=result.usage.total_tokens,
                )
            )
        self.emit(
            RunFinished(
                run_id=run_id,
                status=result.status,
                cost_usd=result.cost_usd,
                seconds=result.seconds,
            )
        )
        if schedule.failed is not None:
            failed = schedule.nodes[schedule.failed]
            guard = f"\n{schedule.error}" if isinstance(schedule.error, PlanError) else ""
            raise NodeFailed(
                f"task {schedule.failed!r} failed: {failed.error}{guard}\n"
                f"{sum(n.ok for n in schedule.nodes.values())} finished node(s) are kept in "
                ".result.nodes",
                task_id=schedule.failed,
                result=result,
            ) from schedule.error
        if result.status == "budget_exceeded":
            limit = schedule.stopped or "budget"
            raise BudgetExceeded(
                f"run {run_id} hit its budget ({limit}={getattr(budget, limit, None)}) after "
                f"spending ${result.cost_usd:.4f} and {result.usage.total_tokens} tokens; "
                f"{len(schedule.not_run)} task(s) did not run: {', '.join(schedule.not_run)}",
                limit=limit,
                result=result,
            )
        return result

    def result(
        self, run_id: str, plan: Plan | None, schedule: Schedule, started: datetime
    ) -> RunResult:
        complete = plan is not None and not schedule.not_run and schedule.failed is None
        if schedule.failed is not None:
            status = "failed"
        elif complete:
            status = "succeeded"  # a limit reached by the very last calls stopped nothing
        else:
            status = "budget_exceeded"
        output = final_output(plan, schedule.nodes) if complete and plan is not None else None
        return RunResult(
            run_id=run_id,
            status=status,
            output=output,
            plan=plan,
            nodes=schedule.nodes,
            usage=schedule.usage,
            started=started,
            finished=utc_now(),
        )
