"""Replanning: after a node failed for good, the boss plans only the work that is left.

What the failure left is in three parts: tasks that *finished* (kept, never run again), tasks
*blocked* because they need the failed task's output (the boss replaces them), and unstarted
tasks that do not need it: the *survivors*, kept as they are and dispatched with the new tasks
(a failure early in a run must not drop its independent branches). The boss sees the task, the
plan, what finished (outputs summarised), what failed and why, what survives and what is
blocked. It answers with *new* tasks only; they may use finished and surviving tasks' outputs
(`{id}` with the id in `after`). Restating a survivor as it is changes nothing; planning its
work again under another id is refused, with the id to use instead.

Deterministic loop guards stop a boss that proposes no new work, or proposes again work
already attempted (the same agent with the same prompt, finished or failed), instead of burning
money. Work that was planned but never attempted (blocked or surviving) is not a loop.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from orchestra.errors import PlanError
from orchestra.plan import Plan, Task, dependencies_first
from orchestra.results import NodeResult
from orchestra.validation import plan_problems

__all__ = ["LoopGuard", "replan_message", "replan_problems", "restated", "survivors"]

_SUMMARY_CHARS = 400


def _summary(output: object) -> str:
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    return text if len(text) <= _SUMMARY_CHARS else text[:_SUMMARY_CHARS] + " [...]"


def survivors(plan: Plan, nodes: Mapping[str, NodeResult]) -> list[Task]:
    """The plan's unstarted tasks that can still run: every dependency finished or survives
    too (none needs a failed task). In plan order, dependencies first."""
    ok = {task_id for task_id, result in nodes.items() if result.ok}
    alive: list[Task] = []
    usable = set(ok)
    for task in dependencies_first((t for t in plan.tasks if t.id not in nodes), nodes.keys()):
        if all(dep in usable for dep in task.after):
            alive.append(task)
            usable.add(task.id)
    return alive


def restated(new: Plan, kept: Sequence[Task]) -> list[Task]:
    """The new tasks that are really new: a survivor restated exactly is left out."""
    same = {task.id: task for task in kept}
    return [task for task in new.tasks if same.get(task.id) != task]


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
    alive = [task.id for task in survivors(plan, nodes)]
    blocked = [task_id for task_id in not_run if task_id not in alive]
    lines = [
        "The plan ran but a task failed for good. Plan ONLY the remaining work.",
        "Plan so far: " + json.dumps(plan.model_dump(exclude_defaults=True), separators=(",", ":")),
        "Finished (reuse their outputs as {id} with the id in `after`; never re-run them):",
        *(finished or ["- (none)"]),
        f"Failed: {failed}: {error[:500]}",
        "Not started, kept as they are and run next (use their outputs as {id} with the id "
        f"in `after`; do not plan them again): {', '.join(alive) or '(none)'}",
        f"Blocked by the failure (replace what is still needed): {', '.join(blocked) or '(none)'}",
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
    surviving: Sequence[Task] = (),
) -> list[PlanError]:
    """Why the new tasks cannot extend the plan: the merged plan's problems (finished and
    `surviving` tasks included), ids reused, a survivor's work planned again under a new id,
    and an answer with several final tasks but no `output`."""
    kept = [t for t in plan.tasks if t.id in finished] + list(surviving)
    existing = {t.id for t in plan.tasks}
    candidates = restated(new, surviving)
    problems = [
        PlanError(f"task id {t.id!r} is taken by the plan so far; use a new id", task_id=t.id)
        for t in candidates
        if t.id in existing
    ]
    fresh = [t for t in candidates if t.id not in existing]
    planned = {canonical(t): t.id for t in surviving}
    problems += [
        PlanError(
            f"task {t.id!r} repeats task {planned[canonical(t)]!r}, which is not started yet "
            f"and will run as it is; use {{{planned[canonical(t)]}}} instead",
            task_id=t.id,
        )
        for t in fresh
        if canonical(t) in planned
    ]
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
    """Remembers every piece of work attempted in a run; refuses a replan that repeats it."""

    seen: set[tuple[str, str]] = field(default_factory=set[tuple[str, str]])

    def remember(self, tasks: Iterable[Task]) -> None:
        """Record attempted work (finished or failed; not work that never started)."""
        self.seen.update(canonical(t) for t in tasks)

    def check(self, new: Sequence[Task]) -> str | None:
        """Why `new` would loop (None when it is new work)."""
        if not new:
            return "the replan added no new work"
        repeated = [t.id for t in new if canonical(t) in self.seen]
        if repeated:
            return f"the replan proposes work already attempted ({', '.join(repeated)})"
        return None
