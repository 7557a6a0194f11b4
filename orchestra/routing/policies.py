"""The simplest routing policies: a fixed model, and the cheapest good-enough model."""

from __future__ import annotations

from dataclasses import dataclass

from orchestra.errors import ConfigError
from orchestra.models.spec import ModelSpec
from orchestra.routing.base import RouteDecision, RouteRequest

__all__ = ["Cheapest", "Fixed"]


def _price(spec: ModelSpec) -> float:
    # A typical call reads more than it writes; weight prices like a 3:1 prompt:answer call.
    return 3 * spec.input_cost + spec.output_cost


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

    Example:
        >>> import orchestra as oc
        >>> policy = oc.routing.Cheapest(min_quality=0.5)
    """

    min_quality: float = 0.0

    def choose(self, request: RouteRequest) -> RouteDecision:
        """Pick the cheapest candidate at or above `min_quality` (ties: higher quality)."""
        good = [s for s in request.candidates if s.quality >= self.min_quality]
        if not good:
            best = max(request.candidates, key=lambda s: s.quality)
            return RouteDecision(
                best.name,
                f"no model reaches quality {self.min_quality}; strongest is {best.quality}",
            )
        pick = min(good, key=lambda s: (_price(s), -s.quality))
        return RouteDecision(
            pick.name, f"cheapest with quality >= {self.min_quality} (quality {pick.quality})"
        )
