"""Backends: where a node runs (this process, or a cluster). The scheduler, budgets and the
journal stay with the driver; a backend only runs the nodes it is handed."""

from __future__ import annotations

from typing import Protocol

from orchestra.execution.work import NodeOutcome, NodeWork, RunScope

__all__ = ["Backend"]


class Backend(Protocol):
    """Runs nodes the scheduler hands it.

    A backend gets a fully described node (`NodeWork`: picklable data) and the driver's side
    of its run (`RunScope`: budget account, event sink, notes, cache), and returns the node's
    outcome as a value (failures included; it raises only when cancelled).
    """

    async def run(self, work: NodeWork, run: RunScope) -> NodeOutcome:
        """Run one node to its outcome."""
        ...
