"""`Orchestra`: wires the planner, router, scheduler and model client into runs."""

from __future__ import annotations

import copy
import os
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from orchestra._launch import RunLauncher
from orchestra._sync import run_sync
from orchestra._wiring import (
    agents_by_name,
    bound_backend,
    check_limits,
    resolve_cache,
    resolve_journal,
)
from orchestra.agents import Agent
from orchestra.batches import (
    DEFAULT_CONCURRENCY,
    MapResult,
    MapStream,
    collect,
    resume_batch,
    start_batch,
)
from orchestra.config import Config, read_config
from orchestra.errors import ConfigError, JournalError
from orchestra.events import EventSink, Subscribers
from orchestra.execution.backends import Backend
from orchestra.execution.driver import Planned, RunDriver
from orchestra.execution.durations import Durations, predictor
from orchestra.execution.runner import NodeRunner
from orchestra.journal.cache import Cache
from orchestra.journal.records import RunRecord
from orchestra.journal.store import Journal
from orchestra.models.admission import Admission
from orchestra.models.breaker import CircuitBreakers
from orchestra.models.budget import Budget
from orchestra.models.calls import ModelCalls
from orchestra.models.client import ModelClient
from orchestra.models.constellation import Constellation
from orchestra.models.loader import litellm_ready, warm_litellm
from orchestra.models.resilience import Resilience
from orchestra.models.spec import ModelSpec
from orchestra.observe.stream import EventStream
from orchestra.plan import Plan
from orchestra.planning.boss import Planner, require_task
from orchestra.results import RunResult
from orchestra.routing.base import RoutingPolicy
from orchestra.routing.policies import Cheapest
from orchestra.validation import run_id_or_new, validate_plan

__all__ = ["Orchestra"]


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
        max_concurrent_calls: int | None = None,
        backend: Backend | None = None,
    ) -> None:
        """Configure the system.

        Args:
            models: the constellation (or its specs).
            agents: the roles tasks are given to; with none, one general `assistant`.
            boss: spec name of the planning model; needed by `run`, not by `execute`.
            router: places agents that pin no model (default: `routing.Cheapest()`).
            budget: limits of every run: a run's own budget (`run`/`execute` `budget=`) and
                a task's (`Task(budget=)`) are held inside it. See docs/budgets.md.
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
            max_concurrent_calls: at most this many model calls in flight over every model
                and run of this Orchestra; waiting calls go in critical-path priority order
                (None: only each model's `max_concurrency`).
            backend: where nodes run (default: in this process; see `orchestra.backends`).

        Raises:
            ConfigError: an unknown boss or pinned model, duplicate agent names, or bad limits.
        """
        self.models = models if isinstance(models, Constellation) else Constellation(models)
        self.agents: dict[str, Agent] = agents_by_name(agents, self.models)
        if boss is not None and boss not in self.models:
            raise ConfigError(
                f"boss {boss!r} is not a model of the constellation; "
                f"known models: {', '.join(self.models.names)}"
            )
        check_limits(
            max_parallel=max_parallel,
            max_concurrent_calls=max_concurrent_calls,
            plan_attempts=plan_attempts,
            max_replans=max_replans,
        )
        self.boss = boss
        self.router: RoutingPolicy = router or Cheapest()
        self.budget = budget or Budget()
        self.max_parallel = max_parallel
        self.plan_attempts = plan_attempts
        self.max_replans = max_replans
        self.journal: Journal | None = resolve_journal(journal)
        """Where runs are recorded (None: nowhere, and runs cannot be resumed)."""
        self.cache: Cache | None = resolve_cache(cache)
        """The response cache's settings (None: no cache)."""
        self._events = Subscribers([on_event] if on_event is not None else [])
        # litellm takes seconds to import: start now, off the critical path; runs wait for it
        # before their clock starts, so no node, run or max_seconds ever pays for it.
        warm_litellm()
        # Breakers, admission queues and learned token counts and durations outlive runs: a
        # provider that failed or rate limited the last run is still suspect.
        self.breakers = CircuitBreakers()
        self.admission = Admission(max_calls=max_concurrent_calls)
        """Where this Orchestra's model calls wait their turn (see docs/budgets.md)."""
        self._calls = ModelCalls(
            models=self.models,
            client=ModelClient(),
            admission=self.admission,
            resilience=Resilience(breakers=self.breakers),
        )
        self._durations = Durations(predict=predictor(self.models, self.agents))
        self._runner = NodeRunner(
            constellation=self.models,
            agents=self.agents,
            router=self.router,
            calls=self._calls,
            breakers=self.breakers,
        )
        self.backend: Backend = bound_backend(backend, self._runner)
        """Where nodes run (default: this process)."""

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
            calls=self._calls,
            emit=self._events.emit,
            max_attempts=self.plan_attempts,
        )

    async def plan(self, task: str, *, inputs: Mapping[str, Any] | None = None) -> Plan:
        """Ask the boss for a validated plan of `task`, without running it.

        Raises:
            ConfigError: the Orchestra has no boss.
            PlanError: the task is empty, or the boss gave no valid plan (`.attempts` holds
                its answers).
            ModelError: the boss model failed.
        """
        planner = self._planner()
        require_task(task)
        await litellm_ready()
        return await planner.plan_alone(task, budget=self.budget, inputs=list(inputs or {}))

    def plan_sync(self, task: str, *, inputs: Mapping[str, Any] | None = None) -> Plan:
        """`plan` for synchronous code (not inside an event loop)."""
        return run_sync(lambda: self.plan(task, inputs=inputs), name="plan")

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, on_event: EventSink | None = None
    ) -> Orchestra:
        """An Orchestra configured by a TOML file (models, agents, boss, budget, router).

        See `orchestra.config` for the file's shape.

        Raises:
            ConfigError: missing file, bad TOML, unknown keys, or invalid models, agents,
                budget or router; the message names the file and the field.
        """
        return cls.from_config(read_config(path), on_event=on_event)

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        on_event: EventSink | None = None,
        budget: Budget | None = None,
        router: Mapping[str, Any] | None = None,
    ) -> Orchestra:
        """The Orchestra a read `orchestra.toml` describes; `budget` and `router` (a `[router]`
        table) replace the file's.

        Raises:
            ConfigError: an invalid router, or agents and boss that do not fit the models.
        """
        policy = config.policy(router)
        with config.named():
            return cls(
                models=config.models,
                agents=config.agents,
                boss=config.boss,
                router=policy,
                budget=budget or config.budget,
                max_parallel=config.max_parallel,
                on_event=on_event,
            )

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
        run_id = run_id_or_new(run_id)
        planned = Planned(require_task(task), self._planner())
        await litellm_ready()
        launcher = self._launcher()
        return await launcher.plan_and_execute(run_id, planned, inputs=inputs or {}, budget=budget)

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
        run_id = run_id_or_new(run_id)

        def start() -> Awaitable[RunResult]:
            if isinstance(task, Plan):
                return self.execute(task, inputs=inputs, run_id=run_id, budget=budget)
            return self.run(task, inputs=inputs, run_id=run_id, budget=budget)

        return EventStream(start, sinks=self._events, run_id=run_id)

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
        run_id = run_id_or_new(run_id)
        validate_plan(
            plan, agents=self.agents.keys(), models=self.models.names, inputs=(inputs or {}).keys()
        )
        await litellm_ready()
        return await self._launcher().execute(run_id, plan, inputs=inputs or {}, budget=budget)

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

    def with_backend(self, backend: Backend) -> Orchestra:
        """This Orchestra running its nodes on `backend`: models, agents, router, journal,
        admission and event sinks are shared with this one (`map(backend=...)` uses it)."""
        twin = copy.copy(self)
        twin.backend = bound_backend(backend, self._runner)
        return twin

    # -- batches ----------------------------------------------------------------------------

    def map(
        self,
        work: Plan | str,
        *,
        inputs: Iterable[Mapping[str, Any]],
        concurrency: int = DEFAULT_CONCURRENCY,
        batch_id: str | None = None,
        budget: Budget | None = None,
        progress: bool | None = None,
        backend: Backend | None = None,
    ) -> MapStream:
        """Run `work` once per row of `inputs`: many runs, yielded as they finish.

        Each run is journaled as `BATCH:INDEX`; a failed run is reported (status `failed`
        or `budget_exceeded`, its error in `.errors`), never fatal to the batch. Not a plan's
        map *node* (`Task(map=...)`), which fans a task out inside one run. See
        docs/scale.md.

            async with orch.map(plan, inputs=rows, concurrency=64) as results:
                async for result in results:
                    ...

        Args:
            work: a `Plan` (each run executes it) or a task in words (the boss plans each run).
            inputs: one mapping of input names to values per run.
            concurrency: runs in flight at a time.
            batch_id: a name for the batch, to resume it by (default: a random id).
            budget: limits of each run (default: the Orchestra's).
            progress: a progress bar on standard error (None: when it is a terminal).
            backend: where the batch's nodes run (default: the Orchestra's), e.g.
                `oc.backends.Ray(actors=8)`.

        Raises:
            ConfigError: bad inputs or concurrency; a task in words without a boss.
            PlanError: the plan cannot run on some row of inputs (checked before any run).
            JournalError: when entered: the journal holds this batch id already.
        """
        return start_batch(
            self if backend is None else self.with_backend(backend),
            work,
            inputs=inputs,
            concurrency=concurrency,
            batch_id=batch_id,
            budget=budget,
            progress=progress,
        )

    def map_sync(
        self,
        work: Plan | str,
        *,
        inputs: Iterable[Mapping[str, Any]],
        concurrency: int = DEFAULT_CONCURRENCY,
        batch_id: str | None = None,
        budget: Budget | None = None,
        progress: bool | None = None,
        backend: Backend | None = None,
    ) -> MapResult:
        """`map` for synchronous code: every run's result, in input order, and the summary."""
        stream = self.map(
            work,
            inputs=inputs,
            concurrency=concurrency,
            batch_id=batch_id,
            budget=budget,
            progress=progress,
            backend=backend,
        )
        return run_sync(lambda: collect(stream), name="map")

    def resume_map(
        self,
        batch_id: str,
        *,
        concurrency: int | None = None,
        budget: Budget | None = None,
        retry_failed: bool = False,
        progress: bool | None = None,
        backend: Backend | None = None,
    ) -> MapStream:
        """Finish a recorded batch (after a crash or a stop): only its unfinished runs run.

        Runs that succeeded are not run again, nor those that failed unless `retry_failed`;
        runs in flight at the crash resume from their journal; runs never started start.

        Args:
            batch_id: the batch to finish.
            concurrency: runs in flight at a time (default: the batch's).
            budget: limits of each run (default: the batch's).
            retry_failed: run the failed runs again too (resumed: their finished nodes kept).
            progress, backend: as for `map`.

        Raises:
            JournalError: no journal; when entered: no such batch, or another process
                drives it.
        """
        return resume_batch(
            self if backend is None else self.with_backend(backend),
            batch_id,
            concurrency=concurrency,
            budget=budget,
            retry_failed=retry_failed,
            progress=progress,
        )

    def resume_map_sync(
        self,
        batch_id: str,
        *,
        concurrency: int | None = None,
        budget: Budget | None = None,
        retry_failed: bool = False,
        progress: bool | None = None,
        backend: Backend | None = None,
    ) -> MapResult:
        """`resume_map` for synchronous code: the runs of this session, in input order."""
        stream = self.resume_map(
            batch_id,
            concurrency=concurrency,
            budget=budget,
            retry_failed=retry_failed,
            progress=progress,
            backend=backend,
        )
        return run_sync(lambda: collect(stream), name="resume_map")

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
        await litellm_ready()
        return await self._launcher().resume(
            run_id, journal=journal, budget=budget, boss=self.boss, planner=self._planner
        )

    def resume_sync(self, run_id: str, *, budget: Budget | None = None) -> RunResult:
        """`resume` for synchronous code (not inside an event loop)."""
        return run_sync(lambda: self.resume(run_id, budget=budget), name="resume")

    def _launcher(self) -> RunLauncher:
        # Built per run from the current settings: users may change max_replans.
        driver = RunDriver(
            models=self.models,
            agents=self.agents,
            backend=self.backend,
            emit=self._events.emit,
            max_parallel=self.max_parallel,
            max_replans=self.max_replans,
            durations=self._durations,
        )
        return RunLauncher(
            budget=self.budget,
            journal=self.journal,
            cache=self.cache,
            events=self._events,
            driver=driver,
        )

    def __repr__(self) -> str:
        return f"Orchestra(models={self.models!r}, agents={list(self.agents)}, boss={self.boss!r})"
