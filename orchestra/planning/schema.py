"""The plan schema specialised to one Orchestra, for bosses that decode under a JSON schema.

`Plan.model_json_schema()` accepts any agent name and any task id, so a server that constrains
decoding to it still lets a small model write plans that cannot run. Two narrower schemas:

- `plan_schema`, the one the boss is shown: `agent` is one of this Orchestra's agents, `model`
  one of its models, task ids come from a fixed list (`t1`, `t2`... skipping ids already
  taken), `after` can only name those ids (or, when replanning, tasks that already finished),
  at most `max_tasks` tasks, each prompt at most `PROMPT_CHARS` characters.
- `decoding_schema`, the one the server decodes under: the same plan written by position. The
  task at position i has id `ti` and may only wait for the tasks before it (or finished ones),
  so ids are unique, every dependency exists and there is no cycle — by construction, not by
  luck. Bounded prompts, dependency lists and task count bound the whole answer, so a boss
  given enough `max_tokens` is never cut mid-plan. (`map` and `output` are left out of both: a
  schema cannot tie a map to its dependency, or name only the tasks that end up written.)

What no schema can tie is a prompt's `{placeholder}` to the task's `after`: `tied` settles
that after parsing (a placeholder naming an earlier task joins `after`; one naming nothing
becomes literal text), so an answer decoded under `decoding_schema` is always a valid plan.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from orchestra.memory import NOTES
from orchestra.plan import Plan, Task, placeholders, substitute

__all__ = [
    "MAX_TASKS",
    "PROMPT_CHARS",
    "PlanSchemas",
    "decoding_schema",
    "plan_schema",
    "plan_schemas",
    "task_ids",
    "tied",
]

MAX_TASKS = 8
"""The most tasks a constrained plan may hold (a small model writes long plans badly)."""
PROMPT_CHARS = 400
"""The longest prompt of a constrained plan's task (it bounds the answer; a task's prompt
grows with its dependencies' outputs at run time, not here)."""
_PROMPT_PATTERN = rf'^[^"\\\x00-\x1f]{{1,{PROMPT_CHARS}}}$'
"""A prompt as the server decodes it: 1 to PROMPT_CHARS characters, none of them a quote, a
backslash or a control character. (llama-cpp-python's grammar for a JSON string lets a raw
newline through, which is no JSON; a pattern is the one string form it follows exactly, and it
cannot be combined with `maxLength` there.)"""


def task_ids(count: int, *, taken: Collection[str] = ()) -> list[str]:
    """`count` task ids `t1`, `t2`... that are not in `taken`.

    Example:
        >>> task_ids(3, taken={"t2"})
        ['t1', 't3', 't4']
    """
    ids: list[str] = []
    n = 0
    while len(ids) < count:
        n += 1
        if f"t{n}" not in taken:
            ids.append(f"t{n}")
    return ids


def _described(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with the Task field's own description, so the model knows what it is for."""
    # From the JSON schema: field docstrings are read when a schema is built, not at import.
    field: dict[str, Any] = Task.model_json_schema()["properties"][name]
    description = field.get("description")
    return {**schema, "description": description} if description else schema


def _task(
    ids: Sequence[str] | str,
    agents: Sequence[str],
    models: Sequence[str],
    deps: Sequence[str],
    *,
    decoded: bool,
) -> dict[str, Any]:
    """One task's schema: its id (one of `ids`, or exactly `ids` when a string), an agent, a
    bounded prompt, and at most `len(deps)` distinct dependencies among `deps`. The form a
    server `decoded` under carries no descriptions, and spells the prompt as a pattern."""
    after: dict[str, Any] = (
        {"type": "array", "items": {"enum": list(deps)}, "maxItems": len(deps)}
        if deps
        else {"const": []}  # an empty enum makes no grammar: say "nothing" outright
    )
    fields: dict[str, dict[str, Any]] = {
        "id": {"const": ids} if isinstance(ids, str) else {"enum": list(ids)},
        "agent": {"enum": list(agents)},
        "prompt": (
            {"type": "string", "pattern": _PROMPT_PATTERN}
            if decoded
            else {"type": "string", "minLength": 1, "maxLength": PROMPT_CHARS}
        ),
        "after": after,
        "model": {"enum": list(models)},
    }
    if not decoded:
        fields = {name: _described(name, schema) for name, schema in fields.items()}
    return {
        "type": "object",
        "properties": fields,
        "required": ["id", "agent", "prompt", "after"],
        "additionalProperties": False,
    }


def _plan(tasks: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A DAG of tasks; independent tasks run in parallel.",
        "properties": {"tasks": tasks},
        "required": ["tasks"],
        "additionalProperties": False,
    }


def plan_schema(
    agents: Sequence[str],
    models: Sequence[str],
    *,
    taken: Collection[str] = (),
    finished: Collection[str] = (),
    max_tasks: int = MAX_TASKS,
) -> dict[str, Any]:
    """The JSON schema of a plan this Orchestra can run, as the boss is shown it (see the
    module docstring).

    Args:
        agents: the agents' names.
        models: the model specs' names.
        taken: ids the new tasks must not use (a replan's existing tasks).
        finished: ids of finished tasks the new ones may depend on (when replanning).
        max_tasks: at most this many tasks.

    Example:
        >>> schema = plan_schema(["writer"], ["fast"], max_tasks=2)
        >>> task = schema["properties"]["tasks"]["items"]["properties"]
        >>> task["id"]["enum"], task["agent"]["enum"]
        (['t1', 't2'], ['writer'])
    """
    ids = task_ids(max_tasks, taken=taken)
    names = [*ids, *sorted(set(finished) - set(ids))]
    task = _task(ids, agents, models, names, decoded=False)
    return _plan({"type": "array", "items": task, "minItems": 1, "maxItems": max_tasks})


def decoding_schema(
    agents: Sequence[str],
    models: Sequence[str],
    *,
    taken: Collection[str] = (),
    finished: Collection[str] = (),
    max_tasks: int = MAX_TASKS,
) -> dict[str, Any]:
    """The schema a constrained boss's server decodes under: `plan_schema` written by
    position, so that every plan it allows runs (arguments as for `plan_schema`).

    The task at position i is `$defs/ti`; `tasks` is one of the prefixes `[t1]`, `[t1, t2]`...
    spelt as `anyOf` of closed `prefixItems` tuples, the form llama.cpp's grammar converter
    follows (it ignores `minItems`/`maxItems` next to `prefixItems`).

    Example:
        >>> schema = decoding_schema(["w"], ["fast"], max_tasks=2)
        >>> [t["prefixItems"] for t in schema["properties"]["tasks"]["anyOf"]]
        [[{'$ref': '#/$defs/t1'}], [{'$ref': '#/$defs/t1'}, {'$ref': '#/$defs/t2'}]]
        >>> schema["$defs"]["t2"]["properties"]["after"]["items"]
        {'enum': ['t1']}
    """
    ids = task_ids(max_tasks, taken=taken)
    done = sorted(set(finished) - set(ids))
    defs = {
        task_id: _task(task_id, agents, models, [*ids[:i], *done], decoded=True)
        for i, task_id in enumerate(ids)
    }
    refs = [{"$ref": f"#/$defs/{task_id}"} for task_id in ids]
    prefixes = [
        {"type": "array", "prefixItems": refs[:n], "items": False} for n in range(1, max_tasks + 1)
    ]
    return {**_plan({"anyOf": prefixes}), "$defs": defs}


@dataclass(frozen=True)
class PlanSchemas:
    """The two schemas of a constrained boss (see the module docstring)."""

    shown: dict[str, Any]
    """`plan_schema`: what the boss reads in its prompt."""
    decoded: dict[str, Any]
    """`decoding_schema`: what its server decodes under."""
    finished: tuple[str, ...] = ()
    """Finished tasks the plan may depend on (when replanning)."""

    def tie(self, plan: Plan, inputs: Collection[str]) -> Plan:
        """`tied(plan)` for this boss's run inputs and finished tasks."""
        return tied(plan, inputs=inputs, finished=self.finished)


def plan_schemas(
    agents: Sequence[str],
    models: Sequence[str],
    *,
    taken: Collection[str] = (),
    finished: Collection[str] = (),
    max_tasks: int = MAX_TASKS,
) -> PlanSchemas:
    """Both schemas of a constrained boss (arguments as for `plan_schema`)."""
    return PlanSchemas(
        shown=plan_schema(agents, models, taken=taken, finished=finished, max_tasks=max_tasks),
        decoded=decoding_schema(
            agents, models, taken=taken, finished=finished, max_tasks=max_tasks
        ),
        finished=tuple(finished),
    )


def tied(plan: Plan, *, inputs: Collection[str] = (), finished: Collection[str] = ()) -> Plan:
    """`plan` with every `{placeholder}` made valid, for a boss whose server decoded it.

    A placeholder naming a task of the plan (or a finished one) joins the task's `after`,
    unless that would close a cycle; a placeholder that then names no dependency, run input
    or notes becomes the literal text `{name}` (escaped `{{name}}`). Under `decoding_schema`
    nothing else can make a plan invalid, so the answer is always a valid plan.

    Example:
        >>> plan = Plan.model_validate({"tasks": [
        ...     {"id": "t1", "agent": "w", "prompt": "list {topic} but not {t1}"},
        ...     {"id": "t2", "agent": "w", "prompt": "sum up {t1}"}]})
        >>> [(t.prompt, t.after) for t in tied(plan).tasks]
        [('list {{topic}} but not {{t1}}', ()), ('sum up {t1}', ('t1',))]
    """
    waits = {task.id: list(task.after) for task in plan.tasks}

    def reaches(start: str, goal: str) -> bool:
        """Whether `start` waits, directly or not, for `goal`."""
        seen, todo = {start}, [start]
        while todo:
            for dep in waits.get(todo.pop(), ()):
                if dep == goal:
                    return True
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return start == goal

    tasks: list[Task] = []
    for task in plan.tasks:
        literal: list[str] = []
        for name in placeholders(task.prompt):
            if name in waits[task.id] or name in inputs or name == NOTES:
                continue
            if name == "item" and task.map is not None:
                continue
            if name in finished or (name in waits and not reaches(name, task.id)):
                waits[task.id].append(name)
            else:
                literal.append(name)
        prompt = substitute(task.prompt, {name: f"{{{name}}}" for name in literal})
        tasks.append(task.model_copy(update={"prompt": prompt, "after": tuple(waits[task.id])}))
    return Plan(tasks=tasks, output=plan.output)
