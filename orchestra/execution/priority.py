"""Critical-path priorities: which ready node to dispatch first.

A node's priority is the length of the longest path from it to the end of the DAG, counting
its own estimated duration (its "remaining critical path"). Dispatching the node with the
longest remaining path first keeps the makespan short when slots are scarce; ties go to the
smaller task id so the order is deterministic. Computed apart from execution (as in dask's
`order.py`), over a DAG that may have grown since the last call.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

__all__ = ["critical_path_priorities", "slack"]


def _topological(dependents: Mapping[str, Set[str]], deps: Mapping[str, Set[str]]) -> list[str]:
    pending = {node: len(deps[node]) for node in deps}
    order = sorted(node for node, count in pending.items() if count == 0)
    for node in order:  # the list grows while iterated: Kahn's algorithm
        for child in sorted(dependents.get(node, ())):
            pending[child] -= 1
            if pending[child] == 0:
                order.append(child)
    if len(order) != len(deps):
        raise ValueError("the graph has a cycle")
    return order


def critical_path_priorities(
    deps: Mapping[str, Set[str]], weights: Mapping[str, float]
) -> dict[str, float]:
    """Longest weighted path from each node to a sink, its own weight included.

    Args:
        deps: each node's dependencies (every node is a key).
        weights: each node's estimated duration.

    Example:
        >>> deps = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b"}}
        >>> critical_path_priorities(deps, {"a": 1, "b": 2, "c": 5, "d": 1})
        {'d': 1.0, 'c': 5.0, 'b': 3.0, 'a': 6.0}
    """
    dependents: dict[str, set[str]] = {node: set() for node in deps}
    for node, parents in deps.items():
        for parent in parents:
            dependents[parent].add(node)
    priority: dict[str, float] = {}
    for node in reversed(_topological(dependents, deps)):
        tail = max((priority[child] for child in dependents[node]), default=0.0)
        priority[node] = float(weights[node]) + tail
    return priority


def slack(deps: Mapping[str, Set[str]], weights: Mapping[str, float]) -> dict[str, float]:
    """How long each node can be delayed without lengthening the whole DAG.

    Example:
        >>> deps = {"a": set(), "b": set(), "c": {"a", "b"}}
        >>> slack(deps, {"a": 1, "b": 3, "c": 1})
        {'a': 2.0, 'b': 0.0, 'c': 0.0}
    """
    tail = critical_path_priorities(deps, weights)
    head: dict[str, float] = {}
    dependents: dict[str, set[str]] = {node: set() for node in deps}
    for node, parents in deps.items():
        for parent in parents:
            dependents[parent].add(node)
    for node in _topological(dependents, deps):
        head[node] = max((head[p] + float(weights[p]) for p in deps[node]), default=0.0)
    makespan = max((head[n] + tail[n] for n in deps), default=0.0)
    return {node: makespan - head[node] - tail[node] for node in sorted(deps)}
