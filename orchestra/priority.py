"""Critical-path priorities: which ready node to dispatch first.

A node's priority is the length of the longest path from it to the end of the DAG, counting
its own estimated duration (its "remaining critical path"). Dispatching the node with the
longest remaining path first keeps the makespan short when slots are scarce; ties go to the
smaller task id so the order is deterministic. Computed apart from execution (as in dask's
`order.py`), over a DAG that may have grown since the last call.

`node_timings` says where each node stands on the estimated schedule (its slack, and how much
it may be slowed without lengthening the DAG); the scheduler hands it, with the budget left, to
the node it dispatches (in its `NodeWork`), so routing policies can trade speed for price where
the schedule allows it (`orchestra.routing.SlackAware`). The node's priority also travels with
its model calls: they wait in admission queues in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

__all__ = [
    "DagShape",
    "NodeTiming",
    "critical_path_priorities",
    "node_timings",
    "slack",
]


@dataclass(frozen=True)
class DagShape:
    """A DAG's structure, computed once and reused by every pass over new weights (the
    scheduler recomputes priorities as it learns durations; the shape changes only when nodes
    are added).

    Example:
        >>> shape = DagShape.of({"a": set(), "b": {"a"}})
        >>> shape.priorities({"a": 1, "b": 2})
        {'b': 2.0, 'a': 3.0}
    """

    deps: Mapping[str, Set[str]]
    dependents: Mapping[str, Sequence[str]]
    order: Sequence[str]
    """A topological order: parents first, otherwise in the order the nodes were given."""

    @classmethod
    def of(cls, deps: Mapping[str, Set[str]]) -> DagShape:
        """The shape of the DAG given by each node's dependencies (every node is a key).

        Raises:
            ValueError: the graph has a cycle.
        """
        dependents: dict[str, list[str]] = {node: [] for node in deps}
        for node, parents in deps.items():
            for parent in parents:
                dependents[parent].append(node)
        pending = {node: len(parents) for node, parents in deps.items()}
        order = [node for node, count in pending.items() if count == 0]
        for node in order:  # the list grows while iterated: Kahn's algorithm
            for child in dependents[node]:
                pending[child] -= 1
                if pending[child] == 0:
                    order.append(child)
        if len(order) != len(deps):
            raise ValueError("the graph has a cycle")
        return cls(deps, dependents, order)

    def priorities(self, weights: Mapping[str, float]) -> dict[str, float]:
        """Each node's longest weighted path to a sink, its own weight included."""
        priority: dict[str, float] = {}
        dependents = self.dependents
        for node in reversed(self.order):
            children = dependents[node]
            tail = max([priority[child] for child in children]) if children else 0.0
            priority[node] = float(weights[node]) + tail
        return priority

    def timings(
        self, weights: Mapping[str, float], priorities: Mapping[str, float] | None = None
    ) -> dict[str, NodeTiming]:
        """Each node's place on the estimated schedule (`priorities`: this shape's, for these
        weights, if already computed)."""
        tail = self.priorities(weights) if priorities is None else priorities
        head: dict[str, float] = {}
        deps = self.deps
        for node in self.order:
            parents = deps[node]
            head[node] = max([head[p] + float(weights[p]) for p in parents]) if parents else 0.0
        makespan = max((head[n] + tail[n] for n in self.order), default=0.0)
        return {
            node: NodeTiming(float(weights[node]), head[node] + tail[node], makespan)
            for node in self.order
        }


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
    return DagShape.of(deps).priorities(weights)


def slack(deps: Mapping[str, Set[str]], weights: Mapping[str, float]) -> dict[str, float]:
    """How long each node can be delayed without lengthening the whole DAG.

    Example:
        >>> deps = {"a": set(), "b": set(), "c": {"a", "b"}}
        >>> slack(deps, {"a": 1, "b": 3, "c": 1})
        {'a': 2.0, 'b': 0.0, 'c': 0.0}
    """
    return {node: timing.slack for node, timing in node_timings(deps, weights).items()}


@dataclass(frozen=True)
class NodeTiming:
    """Where a node stands on the DAG's estimated schedule (seconds are estimates).

    Example:
        >>> timing = NodeTiming(duration=1.0, path=2.0, makespan=4.0)
        >>> timing.slack, timing.stretch, timing.critical
        (2.0, 2.0, False)
    """

    duration: float
    """The node's own estimated duration."""
    path: float
    """The longest estimated path through the node (what must run before it, it, and after)."""
    makespan: float
    """The DAG's critical path: its estimated length."""

    @property
    def slack(self) -> float:
        """How long the node can be delayed without lengthening the DAG."""
        return max(0.0, self.makespan - self.path)

    @property
    def critical(self) -> bool:
        """True when the node is on a critical path (no slack)."""
        return self.slack <= 1e-9 * max(1.0, self.makespan)

    @property
    def stretch(self) -> float:
        """How many times slower the node may run without lengthening the DAG (>= 1).

        The slack is shared by every node of the node's longest path in proportion to their
        durations, so if *each* node is slowed by at most its own stretch, no path grows past
        the makespan (each node's stretch is at most that of any path through it).
        """
        return self.makespan / self.path if self.path > 0 else 1.0


def node_timings(
    deps: Mapping[str, Set[str]], weights: Mapping[str, float]
) -> dict[str, NodeTiming]:
    """Each node's estimated duration, longest path through it, and the DAG's makespan.

    Example:
        >>> deps = {"a": set(), "b": set(), "c": {"a", "b"}}
        >>> timings = node_timings(deps, {"a": 1, "b": 3, "c": 1})
        >>> timings["a"].slack, timings["a"].stretch, timings["b"].critical
        (2.0, 2.0, True)
    """
    return DagShape.of(deps).timings(weights)
