"""Where nodes run: the `Backend` seam and its implementations.

The scheduler hands each node, fully described (`NodeWork`), to the Orchestra's backend with
the driver's side of its run (`RunScope`); the backend returns the node's outcome. The default,
`LocalBackend`, runs nodes in the driver's own task group; `Ray` runs them on a pool of Ray
actors (docs/scale.md). Write your own by implementing `Backend.run`, and pass it as
`Orchestra(backend=...)`.

Example:
    >>> import orchestra as oc
    >>> class Counting:
    ...     def __init__(self, inner: oc.backends.Backend) -> None:
    ...         self.inner, self.runs = inner, 0
    ...     async def run(self, work: oc.backends.NodeWork, run: oc.backends.RunScope):
    ...         self.runs += 1
    ...         return await self.inner.run(work, run)
    >>> orch = oc.simulated.orchestra(time_scale=0.0)
    >>> counting = Counting(orch.backend)
    >>> orch.backend = counting
    >>> plan = oc.Plan(tasks=[oc.Task(id="a", agent="analyst", prompt="hello")])
    >>> orch.execute_sync(plan).status, counting.runs
    ('succeeded', 1)
"""

from orchestra.execution.backends import Backend
from orchestra.execution.backends.local import LocalBackend
from orchestra.execution.backends.ray import Ray
from orchestra.execution.work import NodeOutcome, NodeWork, RunScope

__all__ = ["Backend", "LocalBackend", "NodeOutcome", "NodeWork", "Ray", "RunScope"]
