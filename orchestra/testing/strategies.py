"""Hypothesis strategies for plans, DAG shapes and hostile input, shared by our tests and our
users'.

Example:
    >>> from hypothesis import given
    >>> from orchestra.testing.strategies import plans
    >>> @given(plans(agents=("a", "b")))
    ... def test_plans_have_tasks(plan): assert plan.tasks
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from hypothesis import strategies as st

from orchestra.plan import Plan, Task

__all__ = ["any_text", "dag_shapes", "hostile_text", "json_values", "plans"]


@st.composite
def dag_shapes(
    draw: st.DrawFn, *, min_nodes: int = 1, max_nodes: int = 12
) -> dict[str, tuple[str, ...]]:
    """A random DAG as `{node: dependencies}`, nodes `t00`, `t01`... listed dependencies first."""
    count = draw(st.integers(min_value=min_nodes, max_value=max_nodes))
    names = [f"t{i:02d}" for i in range(count)]
    shape: dict[str, tuple[str, ...]] = {}
    for i, name in enumerate(names):
        deps = draw(st.sets(st.sampled_from(names[:i]), max_size=min(i, 3))) if i else set[str]()
        shape[name] = tuple(sorted(deps))
    return shape


@st.composite
def plans(
    draw: st.DrawFn,
    *,
    agents: Sequence[str] = ("worker",),
    inputs: Sequence[str] = (),
    min_tasks: int = 1,
    max_tasks: int = 12,
) -> Plan:
    """A random valid plan: a DAG whose prompts use some dependencies' outputs and inputs."""
    shape = draw(dag_shapes(min_nodes=min_tasks, max_nodes=max_tasks))
    tasks: list[Task] = []
    for node, deps in shape.items():
        used = (
            draw(st.lists(st.sampled_from([*deps, *inputs]), unique=True)) if deps or inputs else []
        )
        prompt = f"Do step {node}." + "".join(f" Use {{{name}}}." for name in used)
        tasks.append(
            Task(id=node, agent=draw(st.sampled_from(list(agents))), prompt=prompt, after=deps)
        )
    order = draw(st.permutations(tasks))
    return Plan(tasks=tuple(order))


def any_text(*, max_size: int = 40) -> st.SearchStrategy[str]:
    """Text of any code points: control characters and lone surrogates included."""
    return st.text(st.characters(exclude_categories=()), max_size=max_size)


def json_values(*, max_leaves: int = 30) -> st.SearchStrategy[object]:
    """JSON values of any shape and depth, with any text in their strings and keys."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | any_text()
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text(), inner, max_size=4),
        max_leaves=max_leaves,
    )


@st.composite
def hostile_text(draw: st.DrawFn, *, max_chars: int = 3_000_000) -> str:
    """What a broken or hostile model may send: JSON of any shape, any text, up to 100,000
    nested brackets, or megabytes (up to `max_chars`)."""
    kind = draw(st.sampled_from(["json", "text", "deep", "huge"]))
    if kind == "json":
        return json.dumps(draw(json_values()), ensure_ascii=draw(st.booleans()))
    if kind == "text":
        return draw(any_text(max_size=400))
    if kind == "deep":
        opener = draw(st.sampled_from(["[", '{"a":', '{"tasks": [']))
        return opener * draw(st.integers(1, 100_000))
    unit = draw(any_text(max_size=20).filter(bool))
    size = draw(st.integers(100_000, max_chars))
    return (unit * (size // len(unit) + 1))[:size]
