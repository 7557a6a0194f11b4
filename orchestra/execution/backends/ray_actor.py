"""The process side of the Ray backend: one long-lived async actor of the pool.

Each actor is one Python process holding the Orchestra's configuration; it imports litellm
once, when it starts, and then serves many calls at a time (`max_concurrency`) on its own
event loop. The pool (`orchestra.execution.backends.ray`) wraps `NodeHost` with `ray.remote`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from orchestra.models.client import load_litellm

__all__ = ["HostInfo", "NodeHost"]


@dataclass(frozen=True)
class HostInfo:
    """Where an actor runs: its process and its Ray node."""

    pid: int
    node_id: str


class NodeHost:
    """One actor of the pool (see the module docstring).

    Args:
        setup: what the actor runs with (the Orchestra's configuration), as the driver sent it.
    """

    def __init__(self, setup: Any) -> None:
        self.setup = setup
        load_litellm()  # once per actor, now, rather than inside the first call

    async def info(self) -> HostInfo:
        """This actor's process and node (the pool waits on it to know the actor is up)."""
        ray: Any = importlib.import_module("ray")  # present: this runs in a Ray actor
        return HostInfo(pid=os.getpid(), node_id=str(ray.get_runtime_context().get_node_id()))
