"""The local backend: nodes run in the driver's own task group, in this process."""

from __future__ import annotations

from dataclasses import dataclass

from orchestra.execution.runner import NodeRunner
from orchestra.execution.work import NodeOutcome, NodeWork, RunScope

__all__ = ["LocalBackend"]


@dataclass(frozen=True)
class LocalBackend:
    """Runs each node with the Orchestra's node runner, in the calling task."""

    runner: NodeRunner

    async def run(self, work: NodeWork, run: RunScope) -> NodeOutcome:
        """Run one node to its outcome."""
        return await self.runner.run(work, run)
