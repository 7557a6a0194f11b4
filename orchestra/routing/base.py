"""The routing seam: a policy is any object with a `choose` method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestra.agents import Agent
from orchestra.models.spec import ModelSpec
from orchestra.plan import Task

__all__ = ["RouteDecision", "RouteRequest", "RoutingPolicy"]


@dataclass(frozen=True)
class RouteRequest:
    """What a policy knows about the node it places.

    `candidates` are the constellation's specs allowed for the agent (tag-filtered), in
    constellation order; never empty.
    """

    task: Task
    agent: Agent
    prompt: str
    candidates: tuple[ModelSpec, ...]


@dataclass(frozen=True)
class RouteDecision:
    """The chosen spec name and why it was chosen (shown in events and results)."""

    model: str
    reason: str


class RoutingPolicy(Protocol):
    """Chooses the model for a node. Must return one of `request.candidates`' names."""

    def choose(self, request: RouteRequest) -> RouteDecision:
        """Pick a model for the node described by `request`."""
        ...
