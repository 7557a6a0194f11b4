"""Checks that a plan can run, before any model is called.

Each problem is a `PlanError` naming the task and the fix: duplicate ids, unknown agents or
models, unknown dependencies (with a did-you-mean), placeholders that name neither a dependency
nor an input, and cycles (named in full). `plan_problems` lists them all, in plan order, so the
boss can be told everything at once; `validate_plan` raises the first, carrying the rest.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

from orchestra.errors import PlanError
from orchestra.memory import NOTES
from orchestra.plan import Plan, Task, placeholders

__all__ = ["plan_problems", "validate_plan"]


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    if not known:
        return ""
    listed = ", ".join(repr(k) for k in known[:12]) + (", ..." if len(known) > 12 else "")
    return f"; known: {listed}"


def _task_problems(
    task: Task,
    ids: Collection[str],
    agents: Collection[str],
    models: Collection[str],
    inputs: Collection[str],
) -> Iterable[PlanError]:
    if task.agent not in agents:
        hint = _did_you_mean(task.agent, agents)
        yield PlanError(
            f"task {task.id!r} uses unknown agent {task.agent!r}{hint}",
            task_id=task.id,
        )
    if task.model is not None and task.model not in models:
        yield PlanError(
            f"task {task.id!r} is pinned to unknown model {task.model!r}"
            f"{_did_you_mean(task.model, models)}",
            task_id=task.id,
        )
    for dep in task.after:
        if dep == task.id:
            yield PlanError(
                f"task {task.id!r} depends on itself; remove {dep!r} from its after list",
                task_id=task.id,
            )
        elif dep not in ids:
            yield PlanError(
                f"task {task.id!r} depends on unknown task {dep!r}"
                f"{_did_you_mean(dep, [i for i in ids if i != task.id])}",
                task_id=task.id,
            )
    if task.map is not None:
        if task.map not in task.after:
            yield PlanError(
                f"task {task.id!r} maps over {task.map!r} but does not wait for it; add "
                f"{task.map!r} to its after list",
                task_id=task.id,
            )
        if "item" not in placeholders(task.prompt):
            yield PlanError(
                f"task {task.id!r} maps over {task.map!r} but its prompt has no {{item}}; "
                "say where each item goes",
                task_id=task.id,
            )
    for name in placeholders(task.prompt):
        if name in task.after or name in inputs or name == NOTES:
            continue
        if name == "item" and task.map is not None:
            continue
        if name in ids:
            message = (
                f"task {task.id!r} uses {{{name}}}, the output of task {name!r}, but does not "
                f"wait for it; add {name!r} to its after list"
            )
        else:
            known = [dep for dep in task.after if dep in ids] + list(inputs)
            message = (
                f"task {task.id!r} uses {{{name}}}, which is neither a dependency nor an input: "
                f"pass it in inputs, or write {{{{{name}}}}} for a literal brace"
                f"{_did_you_mean(name, known)}"
            )
        yield PlanError(message, task_id=task.id)


def _find_cycle(plan: Plan) -> list[str] | None:
    """A cycle among the tasks' dependencies (iterative depth-first search), if any."""
    deps = {task.id: task.after for task in plan.tasks}
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in deps:
        if root in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            children = [d for d in deps.get(node, ()) if d in deps]
            if index < len(children):
                stack.append((node, index + 1))
                child = children[index]
                if state.get(child) == 1:
                    return path[path.index(child) :]
                if child not in state:
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def _cycle_problem(plan: Plan) -> PlanError | None:
    found = _find_cycle(plan)
    if found is None:
        return None
    # The search walks from a task to its dependencies; a cycle reads better the other way.
    cycle = list(reversed(found))
    start = cycle.index(min(cycle))
    cycle = cycle[start:] + cycle[:start]
    path = " -> ".join([*cycle, cycle[0]])
    return PlanError(
        f"tasks form a cycle: {path}; remove one of these dependencies", task_id=cycle[0]
    )


def plan_problems(
    plan: Plan,
    *,
    agents: Collection[str],
    models: Collection[str] = (),
    inputs: Collection[str] = (),
) -> list[PlanError]:
    """Every reason `plan` cannot run, in plan order (empty when it can).

    Args:
        plan: the plan to check.
        agents: names of the agents tasks may use.
        models: names of the constellation's model specs tasks may be pinned to.
        inputs: names of the run's inputs, usable as `{placeholders}`.
    """
    problems: list[PlanError] = []
    seen: set[str] = set()
    for task in plan.tasks:
        if task.id in seen:
            problems.append(
                PlanError(
                    f"duplicate task id {task.id!r}; give each task its own id",
                    task_id=task.id,
                )
            )
        seen.add(task.id)
    for task in plan.tasks:
        problems.extend(_task_problems(task, seen, agents, models, inputs))
    if plan.output is not None and plan.output not in seen:
        problems.append(
            PlanError(
                f"the plan's output names unknown task {plan.output!r}"
                f"{_did_you_mean(plan.output, seen)}",
                task_id=None,
            )
        )
    if not problems:
        cycle = _cycle_problem(plan)
        if cycle is not None:
            problems.append(cycle)
    return problems


def validate_plan(
    plan: Plan,
    *,
    agents: Collection[str],
    models: Collection[str] = (),
    inputs: Collection[str] = (),
) -> None:
    """Raise the first problem of `plan` (carrying all of them in `.problems`), if any.

    Raises:
        PlanError: the plan cannot run; the message names the task and the fix.
    """
    problems = plan_problems(plan, agents=agents, models=models, inputs=inputs)
    if not problems:
        return
    first = problems[0]
    if len(problems) == 1:
        raise first
    more = "\n".join(f"  {i}. {p}" for i, p in enumerate(problems, 1))
    raise PlanError(
        f"{first} (and {len(problems) - 1} more problem(s)):\n{more}",
        task_id=first.task_id,
        problems=tuple(problems),
    )
