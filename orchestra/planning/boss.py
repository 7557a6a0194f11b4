"""The planner: ask the boss for a plan, repair it with precise feedback, stream it, replan.

- `plan`: ask, parse (fenced or bare JSON, prose around it), validate; every problem goes back
  to the boss numbered; at most `max_attempts` answers, then `PlanError` with every answer.
- `plan_streaming`: the boss streams its JSON; each task is dispatched as soon as it and its
  dependencies are known and valid, before the plan is finished. If the finished plan has
  problems, the boss repairs it (the dispatched tasks must stay as they are).
- `replan`: after a node failed, the boss plans only the remaining work (see `replan.py`).
- `plan_alone`: `plan` outside any run (`Orchestra.plan`), on a planning account of its own.
- `require_task`: a blank task is refused before any boss call (the boss is not paid to plan
  nothing).

Where the boss's server decodes under a JSON schema (its spec's `structured_output`, or what
litellm knows of the model), the boss is shown the plan schema specialised to this Orchestra
(`orchestra.planning.schema`: agent names, model names and task ids as enums, few tasks) and
its server decodes under the same plan written by position, where a task may only wait for
the tasks before it; the answer's placeholders are then tied to its dependencies. An answer so
decoded is a valid plan (unless cut at `max_tokens`); on a server that only takes the schema as
guidance, problems are still found and repaired as above.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestra.agents import Agent
from orchestra.errors import PlanError
from orchestra.events import PLAN_TASK, EventSink, PlanRejected
from orchestra.models.admission import PLANNING
from orchestra.models.budget import Account, Budget
from orchestra.models.calls import CallRequest, CallSite, ModelCalls
from orchestra.models.client import Completion
from orchestra.models.constellation import Constellation
from orchestra.models.spec import ModelSpec
from orchestra.models.structured import dialect, response_format
from orchestra.plan import Plan, Task, dependencies_first, placeholders
from orchestra.planning.parse import parse_plan
from orchestra.planning.prompt import boss_messages, repair_message
from orchestra.planning.replan import replan_message, replan_problems, survivors
from orchestra.planning.schema import MAX_TASKS, PlanSchemas, plan_schemas
from orchestra.planning.stream import PlanStream
from orchestra.results import NodeResult
from orchestra.validation import plan_problems

__all__ = ["PLAN_TASK", "Planner", "require_task"]

Dispatch = Callable[[Task], None]


def require_task(task: str) -> str:
    """The task, unless it is blank: the boss is not paid to plan nothing."""
    if not task.strip():
        raise PlanError("the task is empty; say what the boss should plan")
    return task


@dataclass
class _Streamed:
    """What a streamed plan has dispatched so far, and what is waiting for dependencies."""

    agents: Collection[str]
    models: Collection[str]
    inputs: Collection[str]
    dispatch: Dispatch
    accepted: dict[str, Task]
    waiting: list[Task]

    def consider(self, item: Mapping[str, Any]) -> None:
        try:
            task = Task.model_validate(item)
        except PlanError:
            return  # reported with the whole plan's problems
        if task.id in self.accepted or any(t.id == task.id for t in self.waiting):
            return  # a re-streamed task (after a retry) or a duplicate, reported at the end
        self.waiting.append(task)
        self._release()

    def _ready(self, task: Task) -> bool:
        return (
            task.agent in self.agents
            and (task.model is None or task.model in self.models)
            and all(dep in self.accepted for dep in task.after)
            and all(name in task.after or name in self.inputs for name in placeholders(task.prompt))
        )

    def _release(self) -> None:
        progress = True
        while progress:
            progress = False
            for task in list(self.waiting):
                if self._ready(task):
                    self.waiting.remove(task)
                    self.accepted[task.id] = task
                    self.dispatch(task)
                    progress = True


@dataclass
class Planner:
    """Gets valid plans from the boss model (see the module docstring)."""

    boss: str
    constellation: Constellation
    agents: Sequence[Agent]
    calls: ModelCalls
    emit: EventSink
    max_attempts: int = 2
    max_tasks: int = MAX_TASKS
    """With a constrained boss, the most tasks a plan may have."""

    def schemas(
        self, *, taken: Collection[str] = (), finished: Collection[str] = ()
    ) -> PlanSchemas | None:
        """The plan schemas specialised to this Orchestra, when the boss's server can decode
        under one (None: it cannot; the boss is shown the general plan schema)."""
        if dialect(self.constellation[self.boss]) == "none":
            return None
        return plan_schemas(
            [a.name for a in self.agents],
            self.constellation.names,
            taken=taken,
            finished=finished,
            max_tasks=self.max_tasks,
        )

    async def ask(
        self,
        messages: list[dict[str, Any]],
        site: CallSite,
        on_text: Callable[[], Callable[[str], None]] | None = None,
        *,
        schemas: PlanSchemas | None = None,
    ) -> Completion:
        """One boss answer, through the model-call door (the boss spec's retries and
        fallbacks, admission first in line, the run's budget).

        `on_text`, when given, makes a fresh text consumer for each request (a retried stream
        starts over). `schemas`, when given, constrain the answer on servers that can.
        """

        def constrained(spec: ModelSpec) -> dict[str, Any] | None:
            if schemas is None:
                return None
            return response_format(spec, schemas.decoded, name="plan")

        request = CallRequest(
            messages=messages, reason="boss", response_format=constrained, on_text=on_text
        )
        return await self.calls.call(site, self.boss, request)

    def problems(
        self,
        answer: str,
        inputs: Collection[str],
        fixed: Mapping[str, Task] | None = None,
        *,
        schemas: PlanSchemas | None = None,
    ) -> tuple[Plan | None, list[PlanError]]:
        """Parse and validate an answer (tied, when `schemas` constrained it); `fixed` tasks
        (already dispatched) must be unchanged."""
        try:
            plan = parse_plan(answer)
        except PlanError as exc:
            return None, [exc]
        if schemas is not None:
            plan = schemas.tie(plan, inputs)
        problems = plan_problems(
            plan,
            agents=[a.name for a in self.agents],
            models=self.constellation.names,
            inputs=inputs,
        )
        for task_id, task in (fixed or {}).items():
            mine = next((t for t in plan.tasks if t.id == task_id), None)
            if mine != task:
                problems.append(
                    PlanError(
                        f"task {task_id!r} is already running; keep it exactly as it was: "
                        f"{task.model_dump_json(exclude_defaults=True)}",
                        task_id=task_id,
                    )
                )
        return plan, problems

    async def plan(
        self, task: str, *, site: CallSite, inputs: Collection[str] = ()
    ) -> tuple[Plan, list[Completion]]:
        """Plan `task`; returns the valid plan and the boss's completions (for their cost).

        Raises:
            PlanError: no valid plan after `max_attempts` answers (`.attempts` holds them all).
            ModelError: the boss model failed.
        """
        schemas = self.schemas()
        messages: list[dict[str, Any]] = boss_messages(
            task, self.agents, self.constellation, inputs, schema=schemas and schemas.shown
        )
        return await self._converge(
            messages,
            site,
            lambda answer: self.problems(answer, inputs, schemas=schemas),
            first=None,
            schemas=schemas,
        )

    async def plan_alone(self, task: str, *, budget: Budget, inputs: Collection[str] = ()) -> Plan:
        """Plan `task` outside any run: the boss's calls first in line, on a planning account
        of `budget`, under a run id of their own (`plan-...`) in events.

        Raises:
            PlanError, ModelError: as for `plan`.
        """
        site = CallSite(
            run_id=f"plan-{uuid.uuid4().hex[:8]}",
            task_id=PLAN_TASK,
            agent="plan",
            priority=PLANNING,
            account=Account("planning", budget),
            emit=self.emit,
        )
        plan, _ = await self.plan(task, site=site, inputs=inputs)
        return plan

    async def plan_streaming(
        self, task: str, *, site: CallSite, dispatch: Dispatch, inputs: Collection[str] = ()
    ) -> tuple[Plan, list[Completion]]:
        """Plan `task` from a streamed answer, dispatching each task as soon as it can run.

        Raises:
            PlanError: no valid plan after `max_attempts` answers.
            ModelError: the boss model failed.
        """
        schemas = self.schemas()
        messages: list[dict[str, Any]] = boss_messages(
            task, self.agents, self.constellation, inputs, schema=schemas and schemas.shown
        )
        streamed = _Streamed(
            agents=[a.name for a in self.agents],
            models=self.constellation.names,
            inputs=inputs,
            dispatch=dispatch,
            accepted={},
            waiting=[],
        )

        def consumer() -> Callable[[str], None]:
            reader = PlanStream()
            streamed.waiting.clear()

            def feed(piece: str) -> None:
                for item in reader.feed(piece):
                    streamed.consider(item)

            return feed

        first = await self.ask(messages, site, on_text=consumer, schemas=schemas)
        fixed = streamed.accepted
        plan, completions = await self._converge(
            messages,
            site,
            lambda answer: self.problems(answer, inputs, fixed, schemas=schemas),
            first=first,
            schemas=schemas,
        )
        for rest in dependencies_first(plan.tasks):
            if rest.id not in fixed:  # the rest, once the whole plan is known and valid
                fixed[rest.id] = rest
                dispatch(rest)
        return plan, completions

    async def replan(
        self,
        task: str,
        *,
        plan: Plan,
        nodes: Mapping[str, NodeResult],
        failed: str,
        error: str,
        not_run: Sequence[str],
        site: CallSite,
        inputs: Collection[str] = (),
    ) -> tuple[Plan, list[Completion]]:
        """New tasks for the work left after `failed` failed (only new tasks; see replan.py).

        Raises:
            PlanError: no valid replan after `max_attempts` answers.
            ModelError: the boss model failed.
        """
        finished = [task_id for task_id, result in nodes.items() if result.ok]
        schemas = self.schemas(taken=[t.id for t in plan.tasks], finished=finished)
        shown = schemas and schemas.shown
        messages: list[dict[str, Any]] = [
            *boss_messages(task, self.agents, self.constellation, inputs, schema=shown),
            replan_message(plan, nodes, failed, error, not_run),
        ]
        alive = survivors(plan, nodes)

        def check(answer: str) -> tuple[Plan | None, list[PlanError]]:
            try:
                new = parse_plan(answer)
            except PlanError as exc:
                return None, [exc]
            if schemas is not None:
                new = schemas.tie(new, inputs)
            return new, replan_problems(
                new,
                plan=plan,
                finished=finished,
                agents=[a.name for a in self.agents],
                models=self.constellation.names,
                inputs=inputs,
                surviving=alive,
            )

        return await self._converge(messages, site, check, first=None, schemas=schemas)

    async def _converge(
        self,
        messages: list[dict[str, Any]],
        site: CallSite,
        check: Callable[[str], tuple[Plan | None, list[PlanError]]],
        *,
        first: Completion | None,
        schemas: PlanSchemas | None,
    ) -> tuple[Plan, list[Completion]]:
        """Ask (and repair with numbered problems) until an answer passes `check`."""
        completions: list[Completion] = []
        answers: list[str] = []
        problems: list[PlanError] = []
        for attempt in range(1, self.max_attempts + 1):
            completion = (
                first if attempt == 1 and first else await self.ask(messages, site, schemas=schemas)
            )
            completions.append(completion)
            answer = completion.content or ""
            answers.append(answer)
            plan, problems = check(answer)
            if plan is not None and not problems:
                return plan, completions
            self.emit(
                PlanRejected(
                    run_id=site.run_id, attempt=attempt, problems=tuple(str(p) for p in problems)
                )
            )
            messages = [
                *messages,
                {"role": "assistant", "content": answer},
                repair_message(problems),
            ]
        listed = "\n".join(f"  {i}. {p}" for i, p in enumerate(problems, 1))
        raise PlanError(
            f"the boss {self.boss!r} gave no valid plan in {self.max_attempts} attempts; "
            f"last problems:\n{listed}",
            task_id=problems[0].task_id,
            problems=tuple(problems),
            attempts=tuple(answers),
        )
