"""`Orchestra`: wires the planner, router, scheduler and model client into runs."""

from __future__ import annotations

import os
import statistics
import uuid
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import anyio

from orchestra._sync import run_sync
from orchestra.agents import Agent
from orchestra.errors import BudgetExceeded, ConfigError, NodeFailed
from orchestra.execution.limits import Budget, ModelLimits, estimate_tokens
from orchestra.execution.runner import NodeRunner, as_text
from orchestra.execution.scheduler import Schedule, Scheduler
from orchestra.models.breaker import CircuitBreakers
from orchestra.models.client import ModelClient
from orchestra.models.constellation import Constellation
from orchestra.models.resilience import Resilience
from orchestra.models.spec import ModelSpec
from orchestra.observe.events import Event, EventSink, PlanReady, RunFinished, RunStarted
from orchestra.plan import Plan, Task
from orchestra.planning.boss import Planner
from orchestra.results import RunResult, Usage
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
        budget = budget or self.budget
        started = _now()
        self._emit(RunStarted(run_id=run_id, task=task))
        planner = self._planner()
        planned = None
        with anyio.move_on_after(budget.max_seconds or float("inf")):
            planned = await planner.plan(task, inputs=list(inputs or {}), run_id=run_id)
        if planned is None:
            result = self._result(run_id, None, Schedule(stopped="max_seconds"), started)
            raise BudgetExceeded(
                f"run {run_id} hit max_seconds={budget.max_seconds} while the boss was planning",
                limit="max_seconds",
                result=result,
            )
        plan, completions = planned
        spent = Usage()
        for c in completions:
            spent = spent + Usage.of(
                c.model,
                input_tokens=c.input_tokens,
                output_tokens=c.output_tokens,
                cost_usd=c.cost_usd,
            )
        remaining = budget.model_copy(
            update={
                "max_seconds": None
                if budget.max_seconds is None
                else max(budget.max_seconds - (_now() - started).total_seconds(), 1e-3)
            }
        )
        return await self._execute(plan, inputs, run_id, remaining, started, spent)

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
        self._emit(RunStarted(run_id=run_id))
        return await self._execute(plan, inputs, run_id, budget or self.budget, started, Usage())

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

    def _weight(self, task: Task) -> float:
        """Estimated seconds of a task, for critical-path priorities."""
        pinned = task.model or self.agents[task.agent].model
        specs = [self.models[pinned]] if pinned is not None else list(self.models)
        prompt_tokens = estimate_tokens(task.prompt)
        return statistics.fmean(
            s.predict_latency(prompt_tokens=prompt_tokens, output_tokens=_TYPICAL_OUTPUT_TOKENS)
            for s in specs
        )

    async def _execute(
        self,
        plan: Plan,
        inputs: Mapping[str, Any] | None,
        run_id: str,
        budget: Budget,
        started: datetime,
        spent: Usage,
    ) -> RunResult:
        runner = NodeRunner(
            run_id=run_id,
            constellation=self.models,
            agents=self.agents,
            router=self.router,
            client=self._client,
            limits=self._limits,
            inputs={name: as_text(value) for name, value in (inputs or {}).items()},
            emit=self._emit,
            resilience=self._resilience,
        )
        scheduler = Scheduler(
            run_id=run_id,
            run_node=runner.run,
            budget=budget,
            max_parallel=self.max_parallel,
            weight=self._weight,
            emit=self._emit,
            usage=spent,
        )
        self._emit(
            PlanReady(
                run_id=run_id,
                task_ids=tuple(t.id for t in plan.tasks),
                edges=tuple((d, t.id) for t in plan.tasks for d in t.after),
            )
        )
        scheduler.add(plan.tasks)
        scheduler.close()
        schedule = await scheduler.run()
        result = self._result(run_id, plan, schedule, started)
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
            raise NodeFailed(
                f"task {schedule.failed!r} failed: {failed.error}\n"
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
