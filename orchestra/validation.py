"""Checks on what a run is given, before any model is called: its plan and its id.

Each problem of a plan is a `PlanError` naming the task and the fix: duplicate ids, unknown
agents or models, unknown dependencies (with a did-you-mean), placeholders that name neither a
dependency nor an input, and cycles (named in full). `plan_problems` lists them all, in plan
order, so the boss can be told everything at once; `validate_plan` raises the first, carrying
the rest. Validation is linear in the plan's size, so a hostile plan cannot stall it.

`run_id_or_new` checks a caller's run id where it enters: it travels in events, the journal,
terminals and HTTP headers (`Idempotency-Key`), so line breaks and control characters are
refused there rather than failing every call of the run later.
"""

from __future__ import annotations

import difflib
import heapq
import unicodedata
import uuid
from collections.abc import Collection, Iterable, Iterator

from orchestra.errors import ConfigError, PlanError
from orchestra.memory import NOTES
from orchestra.plan import Plan, Task, placeholders

__all__ = ["MAX_RUN_ID_CHARS", "plan_problems", "run_id_or_new", "validate_plan"]

MAX_RUN_ID_CHARS = 200
"""The longest run id accepted."""


def run_id_or_new(run_id: str | None) -> str:
    """`run_id` once checked, or a new random id when it is None.

    Any printable text works (`"nightly-2026-11-23"`, `"café-报告-2026"`); it is sent
    percent-encoded where HTTP needs ASCII.

    Example:
        >>> run_id_or_new("nightly-2026-11-23")
        'nightly-2026-11-23'
        >>> run_id_or_new("a\\r\\nInjected: 1")
        Traceback (most recent call last):
        ...
        orchestra.errors.ConfigError: run id 'a\\r\\nInjected: 1' holds a control character ...

    Raises:
        ConfigError: an empty id, one longer than `MAX_RUN_ID_CHARS`, one that is not a
            string, or one holding control characters, line breaks or surrounding spaces.
    """
    if run_id is None:
        return uuid.uuid4().hex[:12]
    if not isinstance(run_id, str):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ConfigError(f"a run id is a string, not {type(run_id).__name__}")
    if not run_id or run_id != run_id.strip():
        raise ConfigError(
            f"run id {run_id!r} is empty or starts or ends with spaces; give a visible name"
        )
    if len(run_id) > MAX_RUN_ID_CHARS:
        raise ConfigError(
            f"a run id is at most {MAX_RUN_ID_CHARS} characters; this one has {len(run_id)}"
        )
    # Cc: control characters (CR, LF, NUL...); Cf, Zl, Zp, Cs: invisible formatting, line and
    # paragraph separators, lone surrogates.
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs") for char in run_id):
        raise ConfigError(
            f"run id {run_id!r} holds a control character or a line break; use letters, "
            "digits and punctuation"
        )
    return run_id


# A plan may hold thousands of misspelt names (a broken or hostile boss): hints are computed
# for the first few only, each over the names sharing the most character pairs with it, so
# validation stays linear in the plan's size.
_MAX_HINTS = 25
_SHORTLIST = 30


def _pairs(name: str) -> set[str]:
    return {name[i : i + 2] for i in range(len(name) - 1)} or {name}


class _Hints:
    """Did-you-mean hints for one validation, bounded in number and in cost."""

    def __init__(self) -> None:
        self.left = _MAX_HINTS
        self._indexes: dict[int, tuple[list[str], dict[str, list[str]]]] = {}

    def _shortlist(self, name: str, known: Collection[str]) -> list[str]:
        """The known names most alike `name` by shared character pairs (all, if few)."""
        if len(known) <= _SHORTLIST:
            return sorted(known)
        # Indexed once per collection: every call of one validation passes the same objects.
        ordered, index = self._indexes.get(id(known), ([], {}))
        if not ordered:
            ordered = sorted(known)
            for candidate in ordered:
                for pair in _pairs(candidate):
                    index.setdefault(pair, []).append(candidate)
            self._indexes[id(known)] = (ordered, index)
        shared: dict[str, int] = {}
        for pair in _pairs(name):
            for candidate in index.get(pair, ()):
                shared[candidate] = shared.get(candidate, 0) + 1
        # Ties go to the candidate met first: deterministic, as the index lists are sorted.
        return heapq.nlargest(_SHORTLIST, shared, key=shared.__getitem__) or ordered[:12]

    def __call__(self, name: str, known: Collection[str], *, besides: str | None = None) -> str:
        """ "; did you mean 'x'?" (or the known names) for an unknown `name`; `besides` is a
        name never to suggest (a task's own id)."""
        if not known or self.left <= 0:
            return ""
        self.left -= 1
        shortlist = [k for k in self._shortlist(name, known) if k != besides]
        close = difflib.get_close_matches(name, shortlist, n=1, cutoff=0.6)
        if close:
            return f"; did you mean {close[0]!r}?"
        listed = sorted(k for k in known if k != besides)
        if not listed:
            return ""
        shown = ", ".join(repr(k) for k in listed[:12]) + (", ..." if len(listed) > 12 else "")
        return f"; known: {shown}"


def _task_problems(
    task: Task,
    ids: Collection[str],
    agents: Collection[str],
    models: Collection[str],
    inputs: Collection[str],
    hints: _Hints,
) -> Iterable[PlanError]:
    if task.agent not in agents:
        hint = hints(task.agent, agents)
        yield PlanError(
            f"task {task.id!r} uses unknown agent {task.agent!r}{hint}",
            task_id=task.id,
        )
    if task.model is not None and task.model not in models:
        yield PlanError(
            f"task {task.id!r} is pinned to unknown model {task.model!r}"
            f"{hints(task.model, models)}",
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
                f"{hints(dep, ids, besides=task.id)}",
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
                f"{hints(name, known)}"
            )
        yield PlanError(message, task_id=task.id)


def _find_cycle(plan: Plan) -> list[str] | None:
    """A cycle among the tasks' dependencies (iterative depth-first search), if any."""
    deps = {task.id: task.after for task in plan.tasks}
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in deps:
        if root in state:
            continue
        state[root] = 1
        path: list[str] = [root]
        # One iterator per node on the path: each edge is looked at once (linear time).
        stack: list[Iterator[str]] = [iter(deps[root])]
        while stack:
            child = next((d for d in stack[-1] if d in deps), None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return path[path.index(child) :]
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(deps[child]))
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
    hints = _Hints()
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
        problems.extend(_task_problems(task, seen, agents, models, inputs, hints))
    if plan.output is not None and plan.output not in seen:
        problems.append(
            PlanError(
                f"the plan's output names unknown task {plan.output!r}{hints(plan.output, seen)}",
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
