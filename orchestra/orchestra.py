"""`Orchestra`: wires the planner, router, scheduler and model client into runs."""

from __future__ import annotations

import math
import os
import statistics
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio

from orchestra._sync import run_sync
from orchestra.agents import Agent
from orchestra.errors import (
    BudgetExceeded,
    ConfigError,
    JournalError,
    NodeFailed,
    OrchestraError,
    PlanError,
)
from orchestra.execution.limits import Budget, ModelLimits, estimate_tokens
from orchestra.execution.runner import NodeRunner, as_text
from orchestra.execution.scheduler import Schedule, Scheduler
from orchestra.journal.cache import Cache
from orchestra.journal.recorder import RunRecorder
from orchestra.journal.records import RunRecord
from orchestra.journal.store import Journal, default_journal_path
from orchestra.models.breaker import CircuitBreakers
from orchestra.models.client import Completion, ModelClient
from orchestra.models.constellation import Constellation
from orchestra.models.resilience import Resilience
from orchestra.models.spec import ModelSpec
from orchestra.observe.events import (
    BudgetStopped,
    Event,
    EventSink,
    PlanReady,
    Replanned,
    RunFinished,
    RunStarted,
)
from orchestra.observe.stream import EventStream
from orchestra.plan import Plan, Task
from orchestra.planning.boss import Planner
from orchestra.planning.replan import LoopGuard
from orchestra.results import NodeResult, RunResult, Usage
from orchestra.routing.base import RoutingPolicy
from orchestra.routing.policies import Cheapest
from orchestra.validation import validate_plan

__all__ = ["DEFAULT_AGENT", "Orchestra"]

DEFAULT_AGENT = Agent(
    name="assistant",
    description="general-purpose agent: researches, analyses, writes, answers any sub-task",
)
"""The agent an Orchestra gets when it is given none."""

# What a typical worker answer costs in output tokens, for critical-path estimates.
_TYPICAL_OUTPUT_TOKENS = 300


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _usage_of(completions: Iterable[Completion]) -> Usage:
    total = Usage()
    for c in completions:
        total = total + Usage.of(
            c.model, input_tokens=c.input_tokens, output_tokens=c.output_tokens, cost_usd=c.cost_usd
        )
    return total


def _journal(journal: str | os.PathLike[str] | Journal | bool | None) -> Journal | None:
    if isinstance(journal, Journal):
        return journal
    if journal is True:
        path = default_journal_path()
        return None if path is None else Journal(path)
    if journal is None or journal is False:
        return None
    return Journal(journal)


def _cache(cache: bool | Cache | None) -> Cache | None:
    """The cache's settings with its path resolved: given, `$ORCHESTRA_CACHE`, or beside the
    default journal."""
    if cache is None or cache is False:
        return None
    settings = Cache() if cache is True else cache
    if settings.path is not None:
        return settings
    place = os.environ.get("ORCHESTRA_CACHE")
    if place is None:
        journal = default_journal_path()
        folder = journal.parent if journal is not None else Path.cwd() / ".orchestra"
        place = str(folder / "cache.sqlite")
    return settings.model_copy(update={"path": str(Path(place).expanduser().absolute())})


@dataclass(frozen=True)
class _Planned:
    """A run planned by the boss: its task, and the planner that can replan it."""

    task: str
    planner: Planner


@dataclass(frozen=True)
class _RunContext:
    """What one run is: its id, budget, start, inputs, how it was planned (if it was), and
    its journal writer."""

    run_id: str
    budget: Budget
    started: datetime
    inputs: Mapping[str, Any]
    planned: _Planned | None = None
    recorder: RunRecorder | None = None
    replans: int = 0
    """Replans the run made before this session (a resumed run)."""


class Orchestra:
    """A system of models: a boss plans, agents on the constellation's models execute.

    Example:
        >>> import orchestra as oc
        >>> from orchestra.testing import FakeModel, fake_constellation
        >>> fake = FakeModel(responses={"writer": "Dear team, ..."})
        >>> orch = oc.Orchestra(models=fake_constellation(fake),
        ...                     agents=[oc.Agent(name="writer", description="writes prose")])
        >>> plan = oc.Plan(tasks=[oc.Task(id="memo", agent="writer", prompt="Memo on {topic}")])
        >>> orch.execute_sync(plan, inputs={"topic": "GPUs"}).output
        'Dear team, ...'
    """

    def __init__(
        self,
        *,
        models: Constellation | Iterable[ModelSpec],
        agents: Iterable[Agent] = (),
        boss: str | None = None,
        router: RoutingPolicy | None = None,
        budget: Budget | None = None,
        max_parallel: int | None = None,
        on_event: EventSink | None = None,
        plan_attempts: int = 2,
        max_replans: int = 2,
        journal: str | os.PathLike[str] | Journal | bool | None = True,
        cache: bool | Cache | None = None,
    ) -> None:
        """Configure the system.

        Args:
            models: the constellation (or its specs).
            agents: the roles tasks are given to; with none, one general `assistant`.
            boss: spec name of the planning model; needed by `run`, not by `execute`.
            router: places agents that pin no model (default: `routing.Cheapest()`).
            budget: default limits of every run.
            max_parallel: at most this many nodes in flight in a run (None: no cap beyond
                each model's `max_concurrency`).
            on_event: called with every event of every run.
            plan_attempts: boss answers allowed before planning fails (one re-ask by default).
            max_replans: times a planned run may ask the boss to replan the work left after
                a node failed for good (0: never).
            journal: where runs are recorded so they can be resumed: a path or a `Journal`;
                True (the default): `$ORCHESTRA_JOURNAL`, else `./.orchestra/runs.sqlite`;
                None or False: not recorded. See docs/durability.md.
            cache: answer identical requests from a response cache: True, or a `Cache` with
                its TTL and agents (default: off).

        Raises:
            ConfigError: an unknown boss or pinned model, duplicate agent names, or bad limits.
        """
        self.models = models if isinstance(models, Constellation) else Constellation(models)
        self.agents: dict[str, Agent] = {}
        for agent in agents or (DEFAULT_AGENT,):
            if agent.name in self.agents:
                raise ConfigError(f"two agents are named {agent.name!r}; names must be unique")
            if agent.model is not None and agent.model not in self.models:
                raise ConfigError(
                    f"agent {agent.name!r} is pinned to unknown model {agent.model!r}; "
                    f"known models: {', '.join(self.models.names)}"
                )
            self.agents[agent.name] = agent
        if not self.agents:
            self.agents[DEFAULT_AGENT.name] = DEFAULT_AGENT
        if boss is not None and boss not in self.models:
            raise ConfigError(
                f"boss {boss!r} is not a model of the constellation; "
                f"known models: {', '.join(self.models.names)}"
            )
        if max_parallel is not None and max_parallel < 1:
            raise ConfigError(f"max_parallel must be at least 1, not {max_parallel}")
        if plan_attempts < 1:
            raise ConfigError(f"plan_attempts must be at least 1, not {plan_attempts}")
        self.boss = boss
        self.router: RoutingPolicy = router or Cheapest()
        self.budget = budget or Budget()
        self.max_parallel = max_parallel
        self.plan_attempts = plan_attempts
        if max_replans < 0:
            raise ConfigError(f"max_replans must be 0 or more, not {max_replans}")
        self.max_replans = max_replans
        self.journal: Journal | None = _journal(journal)
        """Where runs are recorded (None: nowhere, and runs cannot be resumed)."""
        self.cache: Cache | None = _cache(cache)
        """The response cache's settings (None: no cache)."""
        self._sinks: list[EventSink] = [on_event] if on_event is not None else []
        self._client = ModelClient()
        self._limits = ModelLimits()
        # Breakers outlive runs: a provider that failed in the last run is still suspect.
        self.breakers = CircuitBreakers()
        self._resilience = Resilience(breakers=self.breakers)

    # -- events -----------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
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

    # -- planning ---------------------------------------------------------------------------

    def _planner(self) -> Planner:
        if self.boss is None:
            raise ConfigError(
                "this Orchestra has no boss model; pass boss=<spec name> to plan tasks, or "
                "write a Plan and call execute()"
            )
        return Planner(
            boss=self.boss,
            constellation=self.models,
            agents=list(self.agents.values()),
            client=self._client,
            limits=self._limits,
            resilience=self._resilience,
            emit=self._emit,
            max_attempts=self.plan_attempts,
        )

    async def plan(self, task: str, *, inputs: Mapping[str, Any] | None = None) -> Plan:
        """Ask the boss for a validated plan of `task`, without running it.

        Raises:
            ConfigError: the Orchestra has no boss.
            PlanError: the boss gave no valid plan (`.attempts` holds its answers).
            ModelError: the boss model failed.
        """
        plan, _ = await self._planner().plan(task, inputs=list(inputs or {}))
        return plan

    def plan_sync(self, task: str, *, inputs: Mapping[str, Any] | None = None) -> Plan:
        """`plan` for synchronous code (not inside an event loop)."""
        return run_sync(lambda: self.plan(task, inputs=inputs), name="plan")

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, on_event: EventSink | None = None
    ) -> Orchestra:
        """An Orchestra configured by a TOML file (models, agents, boss, budget).

        See `orchestra.config` for the file's shape.
        """
        from orchestra.config import load_orchestra

        return load_orchestra(path, on_event=on_event)

    async def run(
        self,
        task: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        budget: Budget | None = None,
    ) -> RunResult:
        """Plan `task` with the boss, then execute the plan.

        The boss's calls count towards the budget and the run's usage.

        Raises:
            PlanError, ModelError, NodeFailed, BudgetExceeded: see `execute` and `plan`.
        """
        run_id = run_id or uuid.uuid4().hex[:12]
        planned = _Planned(task, self._planner())
        context = _RunContext(run_id, budget or self.budget, _now(), inputs or {}, planned)
        return await self._recorded(context, self._planned_run)

    async def _planned_run(self, context: _RunContext) -> RunResult:
        """The body of `run`: the boss plans the task, then the plan runs."""
        run_id, budget, started = context.run_id, context.budget, context.started
        if context.planned is None:  # pragma: no cover - `run` and `resume` set it
            raise ConfigError("a planned run needs its task")
        task, planner = context.planned.task, context.planned.planner
        planned = context.planned
        self._emit(RunStarted(run_id=run_id, task=task))
        if self.models[planner.boss].stream:
            return await self._execute(context, planned)
        answer = None
        with anyio.move_on_after(budget.max_seconds or math.inf):
            try:
                answer = await planner.plan(task, inputs=list(context.inputs), run_id=run_id)
            except OrchestraError:
                self._emit(
                    RunFinished(
                        run_id=run_id,
                        status="failed",
                        cost_usd=0.0,
                        seconds=(_now() - started).total_seconds(),
                    )
                )
                raise
        if answer is None:
            result = self._result(run_id, None, Schedule(stopped="max_seconds"), started)
            raise BudgetExceeded(
                f"run {run_id} hit max_seconds={budget.max_seconds} while the boss was planning",
                limit="max_seconds",
                result=result,
            )
        plan, completions = answer
        return await self._execute(context, plan, spent=_usage_of(completions))

    def run_sync(
        self,
        task: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        budget: Budget | None = None,
    ) -> RunResult:
        """`run` for synchronous code (not inside an event loop)."""
        return run_sync(
            lambda: self.run(task, inputs=inputs, run_id=run_id, budget=budget), name="run"
        )

    # -- streaming --------------------------------------------------------------------------

    def stream(
        self,
        task: str | Plan,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        budget: Budget | None = None,
    ) -> EventStream:
        """Run a task (planned by the boss) or a `Plan`, and iterate over its events as they come.

        The run lives inside the `async with` block: leaving it early cancels the run. The
        run's error is raised by the iteration after its last event; `.result` holds the
        `RunResult` of a run that succeeded.

        Example:
            >>> import anyio
            >>> import orchestra as oc
            >>> async def kinds() -> list[str]:
            ...     orch = oc.simulated.orchestra(time_scale=0.0)
            ...     async with orch.stream("Compare small and large models") as events:
            ...         return [event.kind async for event in events]
            >>> anyio.run(kinds, backend="asyncio")[-1]
            'run_finished'

        Args:
            task: the task in words (`run`), or a plan (`execute`).
            inputs, run_id, budget: as for `run` and `execute`.
        """
        run_id = run_id or uuid.uuid4().hex[:12]

        def start() -> Awaitable[RunResult]:
            if isinstance(task, Plan):
                return self.execute(task, inputs=inputs, run_id=run_id, budget=budget)
            return self.run(task, inputs=inputs, run_id=run_id, budget=budget)

        return EventStream(start, sinks=self._sinks, run_id=run_id)

    # -- execution --------------------------------------------------------------------------

    async def execute(
        self,
        plan: Plan,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        budget: Budget | None = None,
    ) -> RunResult:
        """Run a plan: every task as soon as its dependencies are done.

        Args:
            plan: the plan, e.g. written by hand.
            inputs: values for the prompts' `{placeholders}` that are not task ids.
            run_id: a name for the run (default: a random id).
            budget: limits for this run (default: the Orchestra's).

        Raises:
            PlanError: the plan cannot run (checked before any model call).
            NodeFailed: a task failed; `.result` holds every node that finished.
            BudgetExceeded: a budget limit stopped the run; `.result` likewise.
        """
        run_id = run_id or uuid.uuid4().hex[:12]
        started = _now()
        validate_plan(
            plan, agents=self.agents.keys(), models=self.models.names, inputs=(inputs or {}).keys()
        )
        context = _RunContext(run_id, budget or self.budget, started, inputs or {})

        async def body(context: _RunContext) -> RunResult:
            self._emit(RunStarted(run_id=run_id))
            return await self._execute(context, plan)

        return await self._recorded(context, body)

    def execute_sync(
        self,
        plan: Plan,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        budget: Budget | None = None,
    ) -> RunResult:
        """`execute` for synchronous code (not inside an event loop)."""
        return run_sync(
            lambda: self.execute(plan, inputs=inputs, run_id=run_id, budget=budget),
            name="execute",
        )

    # -- durability -------------------------------------------------------------------------

    def _require_journal(self) -> Journal:
        if self.journal is None:
            raise JournalError(
                "this Orchestra records no runs (journal=None); give it a journal path, or "
                "leave journal at its default, to list and resume runs"
            )
        return self.journal

    def runs(self, *, limit: int | None = 50) -> list[RunRecord]:
        """The recorded runs, newest first: id, status, nodes done/total, cost, started.

        Raises:
            JournalError: the Orchestra has no journal, or it cannot be read.
        """
        return self._require_journal().runs(limit=limit)

    async def resume(self, run_id: str, *, budget: Budget | None = None) -> RunResult:
        """Continue a recorded run (after a crash, a stop or a failure) from its journal.

        The stored plan runs (the boss is not asked again once a plan was recorded); every
        node with a recorded result is kept, not run again; the nodes in flight when the run
        stopped, those that failed and those never started run now. A run that already
        succeeded returns its recorded result. See docs/durability.md.

        Args:
            run_id: the run to resume (`orch.runs()` lists them).
            budget: limits for the rest of the run (default: the run's own). USD and tokens
                count the whole run's spending; `max_seconds` counts from the resume.

        Raises:
            JournalError: no journal, no such run, or another process is running it.
            PlanError, ConfigError: the stored plan no longer fits this Orchestra's agents
                and models (checked before any model call).
            NodeFailed, BudgetExceeded: as for `execute`.
        """
        journal = self._require_journal()
        recorder, stored = RunRecorder.resume(journal=journal, cache=self.cache, run_id=run_id)
        try:
            if stored.plan is None and stored.task is None:
                raise JournalError(
                    f"run {run_id!r} stopped before its plan was recorded, so none of it ran; "
                    "execute the plan again",
                    run_id=run_id,
                    path=str(journal.path),
                )
            planned = None
            if stored.task is not None and (stored.plan is None or self.boss is not None):
                planned = _Planned(stored.task, self._planner())
            if stored.plan is not None:
                validate_plan(
                    stored.plan,
                    agents=self.agents.keys(),
                    models=self.models.names,
                    inputs=stored.inputs.keys(),
                )
        except BaseException:
            recorder.abandon()  # gives the run back as it was
            raise
        context = _RunContext(
            run_id,
            budget or stored.budget,
            _now(),
            stored.inputs,
            planned,
            replans=stored.replans,
        )

        async def body(context: _RunContext) -> RunResult:
            if stored.plan is None:
                return await self._planned_run(context)  # stopped before the plan was recorded
            self._emit(RunStarted(run_id=run_id, task=stored.task))
            seed = (stored.seed_tasks, stored.results)
            return await self._execute(context, stored.plan, spent=stored.spent, seed=seed)

        return await self._recorded(context, body, recorder=recorder)

    def resume_sync(self, run_id: str, *, budget: Budget | None = None) -> RunResult:
        """`resume` for synchronous code (not inside an event loop)."""
        return run_sync(lambda: self.resume(run_id, budget=budget), name="resume")

    async def _recorded(
        self,
        context: _RunContext,
        body: Callable[[_RunContext], Awaitable[RunResult]],
        *,
        recorder: RunRecorder | None = None,
    ) -> RunResult:
        """Run `body` with the run recorded in the journal (and the response cache open)."""
        if recorder is None:
            if self.journal is None and self.cache is None:
                return await body(context)
            recorder = RunRecorder.begin(
                journal=self.journal,
                cache=self.cache,
                run_id=context.run_id,
                task=context.planned.task if context.planned is not None else None,
                inputs={name: as_text(value) for name, value in context.inputs.items()},
                models=self.models,
                agents=self.agents.values(),
                budget=context.budget,
                started=context.started,
            )
        self._sinks.append(recorder)
        try:
            return await recorder.guard(lambda: body(replace(context, recorder=recorder)))
        finally:
            if recorder in self._sinks:
                self._sinks.remove(recorder)

    def _weight(self, task: Task) -> float:
        """Estimated seconds of a task, for critical-path priorities."""
        pinned = task.model or self.agents[task.agent].model
        specs = [self.models[pinned]] if pinned is not None else list(self.models)
        prompt_tokens = estimate_tokens(task.prompt)
        return statistics.fmean(
            s.predict_latency(prompt_tokens=prompt_tokens, output_tokens=_TYPICAL_OUTPUT_TOKENS)
            for s in specs
        )

    def _scheduler(self, context: _RunContext, runner: NodeRunner, spent: Usage) -> Scheduler:
        left = context.budget.max_seconds
        if left is not None:
            left = max(left - (_now() - context.started).total_seconds(), 1e-3)
        recorder = context.recorder
        return Scheduler(
            run_id=context.run_id,
            run_node=runner.run if recorder is None else recorder.wrap(runner.run),
            budget=context.budget.model_copy(update={"max_seconds": left}),
            max_parallel=self.max_parallel,
            weight=self._weight,
            emit=self._emit,
            usage=spent,
        )

    def _plan_ready(self, context: _RunContext, plan: Plan) -> None:
        if context.recorder is not None:
            context.recorder.record_plan(plan)  # before any of its nodes can start
        self._emit(
            PlanReady(
                run_id=context.run_id,
                task_ids=tuple(t.id for t in plan.tasks),
                edges=tuple((d, t.id) for t in plan.tasks for d in t.after),
            )
        )

    async def _stream_plan(
        self, context: _RunContext, planned: _Planned, scheduler: Scheduler
    ) -> tuple[Plan | None, Schedule]:
        """Plan while running: the streaming boss's tasks are dispatched as they arrive.

        Returns the plan (None if the run stopped before the boss finished it) and the schedule.
        """
        schedule = Schedule()
        plan: Plan | None = None

        async with anyio.create_task_group() as group:

            async def drive() -> None:
                nonlocal schedule
                schedule = await scheduler.run()
                # A run that stopped early (failure, budget) needs no more of the plan.
                group.cancel_scope.cancel()

            group.start_soon(drive)
            try:
                plan, completions = await planned.planner.plan_streaming(
                    planned.task,
                    dispatch=lambda task: scheduler.add([task]),
                    inputs=list(context.inputs),
                    run_id=context.run_id,
                )
            except BaseException:
                group.cancel_scope.cancel()  # the plan never validated: stop its tasks
                raise
            finally:
                scheduler.close()
            scheduler.charge(_usage_of(completions))
            self._plan_ready(context, plan)
        if plan is None and scheduler.tasks:
            plan = Plan(tasks=scheduler.tasks)
        return plan, schedule

    async def _execute(
        self,
        context: _RunContext,
        plan: Plan | _Planned,
        *,
        spent: Usage | None = None,
        seed: tuple[Sequence[Task], Mapping[str, NodeResult]] = ((), {}),
    ) -> RunResult:
        runner = NodeRunner(
            run_id=context.run_id,
            constellation=self.models,
            agents=self.agents,
            router=self.router,
            client=self._client,
            limits=self._limits,
            inputs={name: as_text(value) for name, value in context.inputs.items()},
            emit=self._emit,
            resilience=self._resilience,
        )
        scheduler = self._scheduler(context, runner, spent or Usage())
        if isinstance(plan, _Planned):
            streamed, schedule = await self._stream_plan(context, plan, scheduler)
            if streamed is None:
                return self._finish(context, None, schedule)
            plan = streamed
        else:
            self._plan_ready(context, plan)
            done, results = seed  # a resumed run: what finished does not run again
            scheduler.seed(done, results)
            scheduler.add([t for t in plan.tasks if t.id not in results])
            scheduler.close()
            schedule = await scheduler.run()
        guard = LoopGuard()
        guard.remember(plan.tasks)
        for attempt in range(context.replans + 1, self.max_replans + 1):
            if schedule.failed is None or context.planned is None:
                break
            if context.recorder is not None and context.recorder.broken is not None:
                break  # no boss call whose plan could not be recorded
            failed = schedule.nodes[schedule.failed]
            new, completions = await context.planned.planner.replan(
                context.planned.task,
                plan=plan,
                nodes=schedule.nodes,
                failed=schedule.failed,
                error=failed.error or "",
                not_run=schedule.not_run,
                inputs=list(context.inputs),
                run_id=context.run_id,
            )
            loop = guard.check(new.tasks)
            if loop is not None:
                schedule.error = PlanError(f"loop guard: {loop}; the run stops here")
                break
            guard.remember(new.tasks)
            self._emit(
                Replanned(
                    run_id=context.run_id,
                    attempt=attempt,
                    failed_task=schedule.failed,
                    new_tasks=tuple(t.id for t in new.tasks),
                )
            )
            ran = [t for t in plan.tasks if t.id in schedule.nodes]
            answer = new.output or (new.sinks()[0] if len(new.sinks()) == 1 else None)
            plan = Plan(tasks=(*ran, *new.tasks), output=answer)
            if context.recorder is not None:
                context.recorder.record_plan(plan, failed_task=schedule.failed)
            scheduler = self._scheduler(context, runner, schedule.usage + _usage_of(completions))
            scheduler.seed(ran, schedule.nodes)
            scheduler.add(new.tasks)
            scheduler.close()
            schedule = await scheduler.run()
        return self._finish(context, plan, schedule)

    def _finish(self, context: _RunContext, plan: Plan | None, schedule: Schedule) -> RunResult:
        run_id, budget = context.run_id, context.budget
        result = self._result(run_id, plan, schedule, context.started)
        if schedule.stopped is not None:
            self._emit(
                BudgetStopped(
                    run_id=run_id,
                    limit=schedule.stopped,
                    cost_usd=result.cost_usd,
                    tokens=result.usage.total_tokens,
                )
            )
        self._emit(
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

    def _result(
        self, run_id: str, plan: Plan | None, schedule: Schedule, started: datetime
    ) -> RunResult:
        complete = plan is not None and not schedule.not_run and schedule.failed is None
        if schedule.failed is not None:
            status = "failed"
        elif complete:
            status = "succeeded"  # a limit reached by the very last calls stopped nothing
        else:
            status = "budget_exceeded"
        output: Any = None
        if complete and plan is not None:
            ids = plan.answer_ids()
            if len(ids) == 1:
                output = schedule.nodes[ids[0]].output
            else:
                output = "\n\n".join(f"## {i}\n\n{as_text(schedule.nodes[i].output)}" for i in ids)
        return RunResult(
            run_id=run_id,
            status=status,
            output=output,
            plan=plan,
            nodes=schedule.nodes,
            usage=schedule.usage,
            started=started,
            finished=_now(),
        )

    def __repr__(self) -> str:
        return f"Orchestra(models={self.models!r}, agents={list(self.agents)}, boss={self.boss!r})"
