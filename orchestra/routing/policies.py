"""The simplest routing policies: a fixed model, the cheapest good-enough model, and a policy
per agent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orchestra.checks import Aggregate, AskModel
from orchestra.errors import ConfigError
from orchestra.routing.base import RouteDecision, RouteRequest, RoutingPolicy, decide
from orchestra.routing.estimate import price

__all__ = ["Cheapest", "Fixed", "Mixture", "PerAgent"]


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

    async def achoose(self, request: RouteRequest, ask: AskModel) -> RouteDecision:
        """Ask the agent's policy (or the default), awaiting it if it calls a model."""
        return await decide(self.policies.get(request.agent.name, self.default), request, ask)


@dataclass(frozen=True)
class Mixture:
    """Mixture-of-agents: the `proposers` answer at once, the `aggregator` writes the answer.

    A node policy built on `orchestra.checks.Aggregate`; within a cascade, use
    `Stage(proposers, Aggregate(aggregator))` instead.

    Example:
        >>> import orchestra as oc
        >>> policy = oc.routing.Mixture(("fast", "mid"), aggregator="boss")
        >>> policy.proposers, policy.aggregator
        (('fast', 'mid'), 'boss')
    """

    proposers: Sequence[str]
    """The models that answer first (stored as a tuple)."""
    aggregator: str
    """The model that reads their answers and writes the final one."""

    def __post_init__(self) -> None:
        if isinstance(self.proposers, str) or not self.proposers:
            raise ConfigError(
                f"Mixture needs a non-empty list of proposers, not {self.proposers!r}"
            )
        object.__setattr__(self, "proposers", tuple(self.proposers))

    def choose(self, request: RouteRequest) -> RouteDecision:
        """Ask every proposer that is a candidate, with the aggregator as the check.

        Raises:
            ConfigError: no proposer is a candidate for the agent.
        """
        known = {s.name for s in request.candidates}
        names = [m for m in self.proposers if m in known]
        if not names:
            raise ConfigError(
                f"no proposer of the mixture ({', '.join(self.proposers)}) is a candidate for "
                f"agent {request.agent.name!r}; check the constellation and the agent's tags"
            )
        reason = f"mixture: {', '.join(names)} propose, {self.aggregator} aggregates"
        return RouteDecision(
            names[0], reason, also=tuple(names[1:]), check=Aggregate(self.aggregator)
        )
