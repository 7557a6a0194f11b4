"""Map nodes: a task that fans out over the list its dependency produced.

When a map task is dispatched, it expands into one child task per item (`{item}` filled in),
with the map task's own dependencies; the map task then waits for its children and joins
them: its output is the list of their outputs, in item order. No model is called for the join.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

from orchestra._untrusted import load_json
from orchestra.plan import Task, substitute

__all__ = ["children", "items_of"]

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def items_of(output: Any) -> list[str]:
    """The items of a dependency's output: a list, a JSON array, or one item per line (bullets
    and numbering stripped, blank lines skipped).

    Example:
        >>> items_of("1. apples\\n2. pears\\n\\n- plums")
        ['apples', 'pears', 'plums']
    """
    if isinstance(output, str):
        text = output.strip()
        if text.startswith("["):
            # A model's text: bounded in size and nesting before it is parsed.
            with contextlib.suppress(ValueError):
                output = load_json(text, what="the list to map over")
    if isinstance(output, list):
        values: list[Any] = output  # pyright: ignore[reportUnknownVariableType]
        return [v if isinstance(v, str) else json.dumps(v, default=str) for v in values]
    lines = str(output).splitlines()
    return [_BULLET.sub("", line).strip() for line in lines if line.strip()]


def children(task: Task, items: Sequence[str]) -> list[Task]:
    """One task per item: `<id>__<n>`, the item in place of `{item}`, the same dependencies."""
    return [
        Task(
            id=f"{task.id}__{index}",
            agent=task.agent,
            prompt=substitute(task.prompt, {"item": item}),
            after=task.after,
            model=task.model,
        )
        for index, item in enumerate(items)
    ]
