"""The scheduler's state machine: which nodes are waiting, ready, running, done or failed.

Pure and synchronous (no I/O, no time), so property tests can drive it through any order of
completions. The DAG may grow at any time: `add` takes new nodes whose dependencies are already
known, and a node whose dependencies are all done is ready at once. Among ready nodes `pop`
returns the highest critical-path priority first, ties broken by task id.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Set
from dataclasses import dataclass, field

from orchestra.priority import DagShape, NodeTiming

__all__ = ["DagState"]


@dataclass
class DagState:
    """Nodes by status, with the ready set ordered by (priority, task id)."""

    deps: dict[str, frozenset[str]] = field(default_factory=dict[str, frozenset[str]])
    weights: dict[str, float] = field(default_factory=dict[str, float])
    done: set[str] = field(default_factory=set[str])
    failed: set[str] = field(default_factory=set[str])
    running: set[str] = field(default_factory=set[str])
    _dependents: dict[str, set[str]] = field(default_factory=dict[str, set[str]])
    _missing: dict[str, int] = field(default_factory=dict[str, int])
    _ready: set[str] = field(default_factory=set[str])
    _heap: list[tuple[float, str]] = field(default_factory=list[tuple[float, str]])
    _priority: dict[str, float] = field(default_factory=dict[str, float])
    _stale: bool = False
    _shape: DagShape | None = None  # rebuilt after nodes are added, not when weights change

    def add(self, node: str, deps: Iterable[str] = (), weight: float = 1.0) -> None:
        """Add a node; it is ready at once if its dependencies are all done.

        Raises:
            ValueError: the node exists already, or a dependency is unknown (dependencies
                must be added first, which also rules out cycles).
        """
        if node in self.deps:
            raise ValueError(f"node {node!r} was added already")
        parents = frozenset(deps)
        unknown = sorted(parents - self.deps.keys())
        if unknown:
            raise ValueError(f"node {node!r} depends on unknown node(s) {unknown}")
        self.deps[node] = parents
        self.weights[node] = weight
        self._dependents[node] = set()
        for parent in parents:
            self._dependents[parent].add(node)
        self._missing[node] = len(parents - self.done)
        if self._missing[node] == 0 and not parents & self.failed:
            self._ready.add(node)
        # Ancestors' remaining paths may have grown: recompute priorities before the next pop.
        self._stale = True
        self._shape = None

    def add_settled(self, node: str, deps: Iterable[str] = (), *, ok: bool = True) -> None:
        """Add a node that already ran (done, or failed when not `ok`): a resumed or replanned
        run continues from it without running it again."""
        self.add(node, deps, 0.0)
        self._ready.discard(node)
        (self.done if ok else self.failed).add(node)

    def expand(self, node: str, children: Iterable[tuple[str, Iterable[str], float]]) -> None:
        """Turn a running node into a join: `children` (id, dependencies, weight) are added and
        the node waits for them (a map node fanning out over its items)."""
        if node not in self.running:
            raise ValueError(f"node {node!r} is not running")
        added: list[str] = []
        for child, deps, weight in children:
            self.add(child, deps, weight)
            added.append(child)
        self.running.discard(node)
        for parent in self.deps[node]:
            self._dependents[parent].discard(node)
        self.deps[node] = frozenset(added)
        for child in added:
            self._dependents[child].add(node)
        self._missing[node] = len(added)
        if not added:
            self._ready.add(node)
        self._stale = True
        self._shape = None

    def reweight(self, node: str, weight: float) -> None:
        """Change a node's estimated duration (a better estimate was learned): priorities are
        recomputed before the next pop."""
        if self.weights[node] != weight:
            self.weights[node] = weight
            self._stale = True

    def abandon(self, node: str) -> None:
        """Take a running node back without an outcome: it is neither done nor failed (a run
        that stops early lists it as not run)."""
        self._settle(node)

    def _current_shape(self) -> DagShape:
        if self._shape is None:
            self._shape = DagShape.of(self.deps)
        return self._shape

    def _refresh(self) -> None:
        self._priority = self._current_shape().priorities(self.weights)
        self._heap = [(-self._priority[n], n) for n in self._ready]
        heapq.heapify(self._heap)
        self._stale = False

    def priority(self, node: str) -> float:
        """The node's current critical-path priority (longest remaining estimated path)."""
        if self._stale:
            self._refresh()
        return self._priority[node]

    def timings(self) -> dict[str, NodeTiming]:
        """Each node's place on the estimated schedule, with the current estimates."""
        if self._stale:
            self._refresh()
        return self._current_shape().timings(self.weights, self._priority)

    def pop(self) -> str | None:
        """Take the ready node with the highest priority (ties: smallest id) and mark it running."""
        if self._stale:
            self._refresh()
        while self._heap:
            _, node = heapq.heappop(self._heap)
            if node in self._ready:
                self._ready.discard(node)
                self.running.add(node)
                return node
        return None

    def finish(self, node: str) -> list[str]:
        """Mark a running node done; return the nodes that became ready, sorted."""
        self._settle(node)
        self.done.add(node)
        newly: list[str] = []
        for child in sorted(self._dependents[node]):
            self._missing[child] -= 1
            if self._missing[child] == 0 and not self.deps[child] & self.failed:
                newly.append(child)
                self._ready.add(child)
                if not self._stale:
                    heapq.heappush(self._heap, (-self._priority[child], child))
        return newly

    def fail(self, node: str) -> None:
        """Mark a running node failed; nothing that depends on it will become ready."""
        self._settle(node)
        self.failed.add(node)

    def _settle(self, node: str) -> None:
        if node not in self.running:
            raise ValueError(f"node {node!r} is not running")
        self.running.discard(node)

    @property
    def ready(self) -> Set[str]:
        """Nodes whose dependencies are all done and that have not been dispatched."""
        return frozenset(self._ready)

    @property
    def finished(self) -> bool:
        """True when nothing is ready or running: the DAG as known so far is settled."""
        return not self._ready and not self.running

    def waiting(self) -> list[str]:
        """Nodes not yet ready: some dependency is not done (or failed, so they never will be)."""
        settled = self.done | self.failed | self.running | self._ready
        return sorted(n for n in self.deps if n not in settled)
