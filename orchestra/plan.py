"""Plans: tasks, their dependencies, and the prompts' `{placeholders}`.

A `Plan` is data (a pydantic model, so a boss model can write one as JSON valid against
`Plan.model_json_schema()`); `orchestra.validation` checks that it can run, and `Plan.graph()`
gives the DAG as a networkx graph.

Placeholders: in a prompt, `{name}` is replaced by the output of the task `name` (which must be
in `after`) or by the run's input `name`; in a map task, `{item}` is the item. Only
`{identifier}` forms are placeholders, so JSON and code in prompts need no escaping; write
`{{name}}` for a literal `{name}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from orchestra._base import Frozen, Names, describe_validation_error, described
from orchestra.errors import OrchestraError, PlanError
from orchestra.models.budget import Budget

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["Plan", "Task", "dependencies_first", "placeholders", "render_prompt", "substitute"]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_-]*)\}")
TASK_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


def placeholders(template: str) -> list[str]:
    """The placeholder names of a prompt template, in order of first use.

    Example:
        >>> placeholders("Compare {a} with {b}, then {a} again; {{literal}} and {not json}")
        ['a', 'b']
    """
    names: dict[str, None] = {}
    for match in _PLACEHOLDER.finditer(template):
        if match.group(1):
            names.setdefault(match.group(1), None)
    return list(names)


def as_text(output: Any) -> str:
    """An output as it enters a dependent's prompt: strings as they are, models and other
    values as JSON.

    Example:
        >>> as_text({"price": 2.5})
        '{"price": 2.5}'
    """
    if isinstance(output, str):
        return output
    if isinstance(output, BaseModel):
        return output.model_dump_json()
    return json.dumps(output, default=str)


def render_prompt(template: str, values: Mapping[str, str]) -> str:
    """Fill a prompt template's placeholders from `values`; `{{`/`}}` become single braces.

    Raises:
        KeyError: a placeholder has no value (validation rules this out before a run).
    """

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return values[match.group(1)]

    return _PLACEHOLDER.sub(fill, template)


def substitute(template: str, values: Mapping[str, str]) -> str:
    """Fill some placeholders, leaving the others (and escapes) for later; the values are
    escaped so their own braces stay literal.

    Example:
        >>> substitute("Check {item} against {facts}", {"item": "a {b}"})
        'Check a {{b}} against {facts}'
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name and name in values:
            return values[name].replace("{", "{{").replace("}", "}}")
        return match.group(0)

    return _PLACEHOLDER.sub(fill, template)


def dependencies_first(tasks: Iterable[Task], known: Collection[str] = ()) -> list[Task]:
    """The tasks ordered so each follows its dependencies (stable otherwise); `known` ids count
    as placed already. Tasks whose dependencies never appear (or that form a cycle) come last,
    in their given order, for validation to report.

    Example:
        >>> b = Task(id="b", agent="w", prompt="{a}", after=["a"])
        >>> [t.id for t in dependencies_first([b, Task(id="a", agent="w", prompt="x")])]
        ['a', 'b']
    """
    given = list(tasks)
    placed: set[str] = set(known)
    needs = [set(task.after) - placed for task in given]
    waiting: dict[str, list[int]] = {}
    for index, deps in enumerate(needs):
        for dep in deps:
            waiting.setdefault(dep, []).append(index)
    # In rounds, as a boss's plan is read: every task whose dependencies are placed, in the
    # given order; each dependency edge is looked at once, so thousands of tasks stay fast.
    ready: list[int] = [index for index, deps in enumerate(needs) if not deps]
    taken = [False] * len(given)
    ordered: list[Task] = []
    while ready:
        round_ = sorted(ready)
        ready = []
        for index in round_:
            taken[index] = True
            ordered.append(given[index])
        for index in round_:
            task_id = given[index].id
            if task_id in placed:
                continue
            placed.add(task_id)
            for waiter in waiting.pop(task_id, ()):
                needs[waiter].discard(task_id)
                if not needs[waiter]:
                    ready.append(waiter)
    return ordered + [task for index, task in enumerate(given) if not taken[index]]


class Task(Frozen):
    """One call of an agent: a node of the plan.

    Example:
        >>> task = Task(id="draft", agent="writer", prompt="Memo from {facts}", after=["facts"])
        >>> task.after
        ('facts',)
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra=described("One call of an agent: a node of the plan."),
    )
    error_type: ClassVar[type[OrchestraError]] = PlanError

    id: str = Field(pattern=TASK_ID_PATTERN)
    """Unique name of the task; other tasks refer to its output as `{id}`."""
    agent: str = Field(min_length=1)
    """Name of the agent that performs the task."""
    prompt: str = Field(min_length=1)
    """What the agent is asked; `{placeholders}` name dependencies or run inputs."""
    after: Names = ()
    """Ids of the tasks whose outputs this task needs."""
    model: str | None = None
    """Pin this task to a model spec of the constellation (overrides the agent and router)."""
    map: str | None = None
    """Fan out over the list output by this dependency: the prompt (with `{item}`) runs once per
    item, and the task's own output is the list of their outputs."""
    max_items: int = Field(default=50, ge=1, le=1000)
    """With `map`: at most this many items (more fail the task rather than run up a bill)."""
    budget: Budget | None = None
    """Limits of this task's own calls (with `map`: of all its items together), held inside
    the run's budget. A call that would not fit fails the task (it can be replanned)."""

    @classmethod
    def invalid(cls, data: Any, exc: ValidationError) -> OrchestraError:
        """The `PlanError` for `data` that is not a valid task, naming the task if it can."""
        task_id = cast(Mapping[str, Any], data).get("id") if isinstance(data, Mapping) else None
        label = f"task {task_id!r}" if isinstance(task_id, str) else "a task"
        return PlanError(
            describe_validation_error(label, exc, cls.model_fields),
            task_id=task_id if isinstance(task_id, str) else None,
        )


class Plan(Frozen):
    """A DAG of tasks. Write one by hand, or let the boss write it as JSON.

    The answer of the run is the output of `output` (a task id); when `output` is not set and
    the plan has one sink (a task nothing depends on), it is that sink's output, and with
    several sinks their outputs are joined under `## <task id>` headings in plan order.

    Example:
        >>> plan = Plan(tasks=[
        ...     Task(id="facts", agent="researcher", prompt="List facts about {topic}"),
        ...     Task(id="draft", agent="writer", prompt="Memo from {facts}", after=["facts"]),
        ... ])
        >>> sorted(plan.graph().edges)
        [('facts', 'draft')]
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra=described("A DAG of tasks; independent tasks run in parallel."),
    )
    error_type: ClassVar[type[OrchestraError]] = PlanError

    tasks: Annotated[Sequence[Task], AfterValidator(tuple)] = Field(min_length=1)
    """The tasks, in any order (listing dependencies first reads best)."""
    output: str | None = None
    """Id of the task whose output is the run's answer (default: the single sink)."""

    @classmethod
    def invalid(cls, data: Any, exc: ValidationError) -> OrchestraError:
        """The `PlanError` for `data` that is not a valid plan (`Plan(...)`, `model_validate`
        and `model_validate_json` all raise it: untrusted plans need one `except`)."""
        return PlanError(describe_validation_error("the plan", exc, cls.model_fields))

    def task(self, task_id: str) -> Task:
        """The task with this id.

        Raises:
            PlanError: no task has this id.
        """
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise PlanError(f"the plan has no task {task_id!r}", task_id=task_id)

    def graph(self) -> nx.DiGraph[str]:
        """The plan as a networkx DiGraph: nodes keyed by task id (attribute `task`), edges
        from each dependency to its dependent. Unknown dependencies are left out."""
        import networkx as nx  # ~0.1 s to import: only when a graph is asked for

        graph: nx.DiGraph[str] = nx.DiGraph()
        for task in self.tasks:
            graph.add_node(task.id, task=task)
        for task in self.tasks:
            for dep in task.after:
                if dep in graph:
                    graph.add_edge(dep, task.id)
        return graph

    def sinks(self) -> list[str]:
        """Ids of the tasks no other task depends on, in plan order."""
        needed = {dep for task in self.tasks for dep in task.after}
        return [task.id for task in self.tasks if task.id not in needed]

    def answer_ids(self) -> list[str]:
        """Ids of the tasks whose outputs make the run's answer."""
        return [self.output] if self.output is not None else self.sinks()

    def extended(self, tasks: list[Task]) -> Plan:
        """A copy of this plan with `tasks` added (a plan that grows while it runs)."""
        return Plan(tasks=(*self.tasks, *tasks), output=self.output)
