"""What the journal and the response cache add to the model calls of one node dispatch.

The journal's node wrapper sets `NODE_CALLS` in the node's own task (as the scheduler sets
`DISPATCH`), and the node runner reads it around each model call: the call's idempotency key,
and the cache to look the answer up in first. Kept free of the runner and the journal's
storage so both can import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from orchestra.models.client import Completion
from orchestra.models.spec import ModelSpec

__all__ = ["NODE_CALLS", "AnswerCache", "NodeCalls"]


class AnswerCache(Protocol):
    """Where answers are looked up before a call and stored after it (`ResponseCache`)."""

    def get(
        self,
        spec: ModelSpec,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
    ) -> Completion | None:
        """The stored answer to this exact request, if any is fresh."""
        ...

    def put(
        self,
        spec: ModelSpec,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        completion: Completion,
    ) -> None:
        """Store the answer to this request."""
        ...


@dataclass
class NodeCalls:
    """The model calls of one node dispatch: their idempotency keys and the response cache.

    The dispatch's key is `run_id:node_id:attempt` (`attempt` counts the node's dispatches,
    across resumes). The node's first request carries it; its later requests (tool loop,
    checks, compaction) carry `key/2`, `key/3`..., so no two different requests share a key,
    while retries of one request do.
    """

    key: str
    cache: AnswerCache | None = None
    _requests: int = 0

    def next_key(self) -> str:
        """The key of the node's next request."""
        self._requests += 1
        return self.key if self._requests == 1 else f"{self.key}/{self._requests}"


NODE_CALLS: ContextVar[NodeCalls | None] = ContextVar("orchestra_node_calls", default=None)
"""The current node dispatch's `NodeCalls` (None outside a journaled run)."""
