"""The planner: ask the boss for a plan, validate it, and ask once more with the errors."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from orchestra.agents import Agent
from orchestra.errors import PlanError
from orchestra.execution.limits import ModelLimits, complete_within
from orchestra.models.client import Completion, ModelClient
from orchestra.models.constellation import Constellation
from orchestra.models.resilience import CallContext, Resilience
from orchestra.models.spec import ModelSpec
from orchestra.observe.events import EventSink, ModelCalled, PlanRejected
from orchestra.plan import Plan
from orchestra.planning.parse import parse_plan
from orchestra.planning.prompt import boss_messages, repair_message
from orchestra.validation import plan_problems

__all__ = ["PLAN_TASK", "Planner"]

PLAN_TASK = "(plan)"
"""The task id the boss's planning calls carry in events (no task of a plan can have it)."""


@dataclass
class Planner:
    """Gets a valid plan from the boss model in at most `max_attempts` answers."""

    boss: str
    constellation: Constellation
    agents: Sequence[Agent]
    client: ModelClient
    limits: ModelLimits
    resilience: Resilience
    emit: EventSink
    max_attempts: int = 2

    async def _ask(self, messages: list[dict[str, Any]], run_id: str, attempt: int) -> Completion:
        """One boss answer, with the boss spec's retries and fallbacks."""
        metadata = {"run_id": run_id, "agent": "plan", "attempt": attempt}

        async def send(spec: ModelSpec) -> Completion:
            completion = await complete_within(
                self.limits, self.client, spec, messages, metadata=metadata
            )
            self.emit(
                ModelCalled(
                    run_id=run_id,
                    task_id=PLAN_TASK,
                    model=spec.name,
                    reason="boss",
                    input_tokens=completion.input_tokens,
                    output_tokens=completion.output_tokens,
                    cost_usd=completion.cost_usd,
                    seconds=completion.seconds,
                )
            )
            return completion

        context = CallContext(run_id, PLAN_TASK, self.emit)
        return await self.resilience.call(self.constellation, self.boss, send, context)

    async def plan(
        self, task: str, *, inputs: Collection[str] = (), run_id: str = ""
    ) -> tuple[Plan, list[Completion]]:
        """Plan `task`; returns the valid plan and the boss's completions (for their cost).

        Raises:
            PlanError: no valid plan after `max_attempts` answers (`.attempts` holds them all).
            ModelError: the boss model failed.
        """
        messages: list[dict[str, Any]] = boss_messages(
            task, self.agents, self.constellation, inputs
        )
        completions: list[Completion] = []
        answers: list[str] = []
        problems: list[PlanError] = []
        for attempt in range(1, self.max_attempts + 1):
            completion = await self._ask(messages, run_id, attempt)
            completions.append(completion)
            answer = completion.content or ""
            answers.append(answer)
            try:
                plan = parse_plan(answer)
            except PlanError as exc:
                problems = [exc]
            else:
                problems = plan_problems(
                    plan,
                    agents=[a.name for a in self.agents],
                    models=self.constellation.names,
                    inputs=inputs,
                )
                if not problems:
                    return plan, completions
            self.emit(
                PlanRejected(
                    run_id=run_id, attempt=attempt, problems=tuple(str(p) for p in problems)
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
