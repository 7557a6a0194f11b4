"""Launching one run of an Orchestra: its context, its journal session, its recorder subscribed.

`Orchestra.run`, `execute` and `resume` check what they were given, then hand the run to a
`RunLauncher` built from the Orchestra's settings as they are at that moment; the launcher
opens the run and its `RunDriver` does the running.

- A run's budget is held inside the Orchestra's; a resumed run's account is charged first
  with what its earlier sessions spent.
- A run is recorded when the Orchestra has a journal or a response cache: the recorder is one
  of the Orchestra's event sinks exactly while the run's body runs, and guards it (the lease's
  heartbeat, how the run ended).
- A resumed run takes over its recorded session first; a stored run that cannot go on here (it
  stopped before its plan was recorded, its plan no longer fits the agents and models, or its
  task needs a boss this Orchestra does not have) is given back untouched, before any model
  call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from orchestra._clock import utc_now
from orchestra.errors import JournalError
from orchestra.events import RunStarted, Subscribers
from orchestra.execution.driver import Planned, RunContext, RunDriver
from orchestra.execution.runner import as_text
from orchestra.journal.cache import Cache
from orchestra.journal.recorder import RunRecorder
from orchestra.journal.store import Journal
from orchestra.models.budget import Account, Budget
from orchestra.plan import Plan
from orchestra.planning.boss import Planner
from orchestra.results import RunResult, Usage
from orchestra.validation import validate_plan

__all__ = ["RunLauncher"]

Body = Callable[[RunContext], Awaitable[RunResult]]


@dataclass(frozen=True)
class RunLauncher:
    """Opens the runs of one Orchestra (see the module docstring)."""

    budget: Budget
    """The Orchestra's budget: every run's is held inside it."""
    journal: Journal | None
    cache: Cache | None
    events: Subscribers
    """The Orchestra's event sinks, which a run's recorder joins while the run goes on."""
    driver: RunDriver

    async def plan_and_execute(
        self, run_id: str, planned: Planned, *, inputs: Mapping[str, Any], budget: Budget | None
    ) -> RunResult:
        """A run the boss plans (`Orchestra.run`)."""
        context = self._context(run_id, budget, inputs, planned)
        return await self._recorded(context, self.driver.plan_and_execute)

    async def execute(
        self, run_id: str, plan: Plan, *, inputs: Mapping[str, Any], budget: Budget | None
    ) -> RunResult:
        """A run of a validated plan (`Orchestra.execute`)."""
        context = self._context(run_id, budget, inputs)

        async def body(context: RunContext) -> RunResult:
            self.events.emit(RunStarted(run_id=run_id))
            return await self.driver.execute(context, plan)

        return await self._recorded(context, body)

    async def resume(
        self,
        run_id: str,
        *,
        journal: Journal,
        budget: Budget | None,
        boss: str | None,
        planner: Callable[[], Planner],
    ) -> RunResult:
        """The rest of a recorded run (`Orchestra.resume`); `planner` gives the Orchestra's
        planner, asked for when the run's task needs one (to plan it, or with a `boss`, to
        replan it).

        Raises:
            JournalError: no such run, another process is running it, or it stopped before
                its plan was recorded.
            PlanError, ConfigError: the stored run no longer fits this Orchestra.
        """
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
            if stored.task is not None and (stored.plan is None or boss is not None):
                planned = Planned(stored.task, planner())
            if stored.plan is not None:
                validate_plan(
                    stored.plan,
                    agents=self.driver.agents.keys(),
                    models=self.driver.models.names,
                    inputs=stored.inputs.keys(),
                )
        except BaseException:
            recorder.abandon()  # gives the run back as it was
            raise
        context = self._context(
            run_id,
            budget or stored.budget,
            stored.inputs,
            planned,
            replans=stored.replans,
            spent=stored.spent,
        )

        async def body(context: RunContext) -> RunResult:
            if stored.plan is None:
                return await self.driver.plan_and_execute(context)  # no plan was recorded
            self.events.emit(RunStarted(run_id=run_id, task=stored.task))
            seed = (stored.seed_tasks, stored.results)
            return await self.driver.execute(context, stored.plan, spent=stored.spent, seed=seed)

        return await self._recorded(context, body, recorder=recorder)

    def _context(
        self,
        run_id: str,
        budget: Budget | None,
        inputs: Mapping[str, Any],
        planned: Planned | None = None,
        *,
        replans: int = 0,
        spent: Usage | None = None,
    ) -> RunContext:
        """A run starting now: its budget held inside the Orchestra's, and its account."""
        effective = (budget or self.budget).within(self.budget)
        account = Account(f"run {run_id!r}", effective)
        if spent is not None:  # an earlier session's spending counts
            account.charge(usd=spent.cost_usd, tokens=spent.total_tokens, estimated=spent.estimated)
        return RunContext(
            run_id, effective, utc_now(), inputs, planned, replans=replans, account=account
        )

    async def _recorded(
        self, context: RunContext, body: Body, *, recorder: RunRecorder | None = None
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
                models=self.driver.models,
                agents=self.driver.agents.values(),
                budget=context.budget,
                started=context.started,
            )
        self.events.add(recorder)
        try:
            return await recorder.guard(lambda: body(replace(context, recorder=recorder)))
        finally:
            self.events.discard(recorder)
