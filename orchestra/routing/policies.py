"""The simplest routing policies: a fixed model, the cheapest good-enough model, and a policy
per agent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestra.errors import ConfigError
from orchestra.routing.base import RouteDecision, RouteRequest, RoutingPolicy
from orchestra.routing.estimate import price

__all__ = ["Cheapest", "Fixed", "PerAgent"]


@dataclass(frozen=True)
class Fixed:
    """Send every node to one model (when the agent allows it).

    Example:
        >>> import orchestra as oc
        >>> policy = oc.routing.Fixed("fast")
    """

    model: str

    def choose(self, request: RouteRequest) -> RouteDecision:
        """Pick `self.model`.

        Raises:
            ConfigError: the model is not among the agent's candidates.
        """
        if not any(spec.name == self.model for spec in request.candidates):
            names = ", ".join(spec.name for spec in request.candidates)
            raise ConfigError(
                f"Fixed({self.model!r}) cannot run agent {request.agent.name!r}: the model is not "
                f"among its candidates ({names}); check the agent's tags or the constellation"
            )
        return RouteDecision(self.model, "fixed policy")


@dataclass(frozen=True)
class Cheapest:
    """The cheapest model whose quality is at least `min_quality`.

    When no candidate reaches the bar, the strongest candidate is used, and the reason says so.
    Models whose circuit is open, or that the budget left cannot pay for, are passed over
    (`RouteRequest.usable`).

    Example:
        >>> import orchestra as oc
        >>> policy = oc.routing.Cheapest(min_quality=0.5)
    """

    min_quality: float = 0.0

    def choose(self, request: RouteRequest) -> RouteDecision:
        """Pick the cheapest candidate at or above `min_quality` (ties: higher quality)."""
        usable = request.usable()
        good = [s for s in usable if s.quality >= self.min_quality]
        if not good:
            best = max(usable, key=lambda s: s.quality)
            return RouteDecision(
                best.name,
                f"no model reaches quality {self.min_quality}; strongest is {best.quality}",
            )
        pick = min(good, key=lambda s: (price(s), -s.quality))
        return RouteDecision(
            pick.name, f"cheapest with quality >= {self.min_quality} (quality {pick.quality})"
        )


@dataclass(frozen=True)
class PerAgent:
    """A policy per agent name (e.g. a cascade fitted per task type), `default` for the rest.

    Example:
        >>> import orchestra as oc
        >>> policy = oc.routing.PerAgent({"coder": oc.routing.Fixed("mid")}, default=Cheapest(0.5))
    """

    policies: Mapping[str, RoutingPolicy]
    default: RoutingPolicy = field(default_factory=Cheapest)

    def choose(self, request: RouteRequest) -> RouteDecision:
        """Ask the agent's policy (or the default)."""
        return self.policies.get(request.agent.name, self.default).choose(request)
