"""The plan schema specialised to one Orchestra, for bosses that decode under a JSON schema.

`Plan.model_json_schema()` accepts any agent name and any task id, so a server that constrains
decoding to it still lets a small model write plans that cannot run. The specialised schema
narrows every name to what exists: `agent` is one of this Orchestra's agents, `model` one of its
models, task ids come from a fixed list (`t1`, `t2`... skipping ids already taken), and `after`,
`map` and `output` can only name those ids (or, when replanning, tasks that already finished).
At most `max_tasks` tasks. What a schema cannot say (no cycles, every `{placeholder}` resolved,
ids unique) is still checked afterwards, and repaired with the boss.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from orchestra.plan import Task

__all__ = ["MAX_TASKS", "plan_schema", "task_ids"]

MAX_TASKS = 8
"""The most tasks a constrained plan may hold (a small model writes long plans badly)."""


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
    description = Task.model_fields[name].description
    return {**schema, "description": description} if description else schema


def plan_schema(
    agents: Sequence[str],
    models: Sequence[str],
    *,
    taken: Collection[str] = (),
    finished: Collection[str] = (),
    max_tasks: int = MAX_TASKS,
) -> dict[str, Any]:
    """The JSON schema of a plan this Orchestra can run (see the module docstring).

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
    task = {
        "type": "object",
        "properties": {
            "id": _described("id", {"enum": ids}),
            "agent": _described("agent", {"enum": list(agents)}),
            "prompt": _described("prompt", {"type": "string", "minLength": 1}),
            "after": _described(
                "after", {"type": "array", "items": {"enum": names}, "uniqueItems": True}
            ),
            "model": _described("model", {"enum": list(models)}),
            "map": _described("map", {"enum": names}),
        },
        "required": ["id", "agent", "prompt", "after"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "description": "A DAG of tasks; independent tasks run in parallel.",
        "properties": {
            "tasks": {"type": "array", "items": task, "minItems": 1, "maxItems": max_tasks},
            "output": {
                "enum": ids,
                "description": "Id of the task whose output is the run's answer.",
            },
        },
        "required": ["tasks"],
        "additionalProperties": False,
    }
