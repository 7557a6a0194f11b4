"""Hypothesis strategies for plans and DAG shapes, shared by our tests and our users'.

Example:
    >>> from hypothesis import given
    >>> from orchestra.testing.strategies import plans
    >>> @given(plans(agents=("a", "b")))
    ... def test_plans_have_tasks(plan): assert plan.tasks
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from orchestra.plan import Plan, Task

__all__ = ["dag_shapes", "plans"]


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
