"""Replanning: after a node failed for good, the boss plans only the work that is left.

The boss sees the original task, the plan, what finished (outputs summarised), what failed and
why, and what could not run. It answers with *new* tasks only; they may use finished tasks'
outputs (`{id}` with the id in `after`) but never re-run them. Deterministic loop guards stop a
boss that proposes no new work, or proposes again work already planned (the same agent with
the same prompt), instead of burning money.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from orchestra.errors import PlanError
from orchestra.plan import Plan, Task
from orchestra.results import NodeResult
from orchestra.validation import plan_problems

__all__ = ["LoopGuard", "replan_message", "replan_problems"]

_SUMMARY_CHARS = 400


def _summary(output: object) -> str:
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    return text if len(text) <= _SUMMARY_CHARS else text[:_SUMMARY_CHARS] + " [...]"


def replan_message(
    plan: Plan,
    nodes: Mapping[str, NodeResult],
    failed: str,
    error: str,
    not_run: Sequence[str],
) -> dict[str, str]:
    """The user message asking the boss to plan the remaining work."""
    finished = [
        f"- {task_id}: {_summary(result.output)}" for task_id, result in nodes.items() if result.ok
    ]
    lines = [
        "The plan ran but a task failed for good. Plan ONLY the remaining work.",
        "Plan so far: " + json.dumps(plan.model_dump(exclude_defaults=True), separators=(",", ":")),
        "Finished (reuse their outputs as {id} with the id in `after`; never re-run them):",
        *(finished or ["- (none)"]),
        f"Failed: {failed}: {error[:500]}",
        f"Could not run: {', '.join(not_run) or '(none)'}",
        "Answer with one JSON object of NEW tasks only, with new ids; do not repeat the failed "
        "task unchanged (try another agent, model or approach); set `output` to the task that "
        "gives the final answer.",
    ]
    return {"role": "user", "content": "\n".join(lines)}


def replan_problems(
    new: Plan,
    *,
    plan: Plan,
    finished: Collection[str],
    agents: Collection[str],
    models: Collection[str],
    inputs: Collection[str],
) -> list[PlanError]:
    """Why the new tasks cannot extend the plan: the merged plan's problems, ids reused, and
    an answer with several final tasks but no `output`."""
    kept = [t for t in plan.tasks if t.id in finished]
    existing = {t.id for t in plan.tasks}
    problems = [
        PlanError(f"task id {t.id!r} is taken by the plan so far; use a new id", task_id=t.id)
        for t in new.tasks
        if t.id in existing
    ]
    fresh = [t for t in new.tasks if t.id not in existing]
    if fresh:
        merged = Plan(tasks=(*kept, *fresh))
        problems += plan_problems(merged, agents=agents, models=models, inputs=inputs)
    if new.output is None and len(new.sinks()) > 1:
        problems.append(
            PlanError("several new tasks end the plan; set `output` to the one with the answer")
        )
    return problems


def canonical(task: Task) -> tuple[str, str]:
    """What counts as "the same work": the agent and the prompt, case and spacing ignored."""
    return task.agent, " ".join(task.prompt.lower().split())


@dataclass
class LoopGuard:
    """Remembers every piece of work planned in a run; refuses a replan that repeats it."""

    seen: set[tuple[str, str]] = field(default_factory=set[tuple[str, str]])

    def remember(self, tasks: Iterable[Task]) -> None:
        """Record planned work."""
        self.seen.update(canonical(t) for t in tasks)

    def check(self, new: Sequence[Task]) -> str | None:
        """Why `new` would loop (None when it is new work)."""
        if not new:
            return "the replan added no new work"
        repeated = [t.id for t in new if canonical(t) in self.seen]
        if repeated:
            return f"the replan proposes work already planned ({', '.join(repeated)})"
        return None
