"""`SlackAware`: fast models on the critical path, cheaper slower ones where there is slack.

Vocabulary (from `orchestra.priority.NodeTiming`): a node's *path* is the longest
estimated chain of work through it; the *makespan* is the longest path of the whole DAG; the
*stretch* `makespan / path` is how many times slower every node of that path could run, together,
without lengthening the DAG. A critical node has stretch 1.

The policy predicts each usable candidate's latency for the node's prompt and keeps those at or
above `min_quality`. The fastest of them sets the pace; the node may take up to `stretch` times
as long as that, so the policy picks the cheapest candidate predicted to fit. Because every
node of a path uses at most its own stretch, and a node's stretch is at most that of any path
through it, no path is predicted to outgrow the makespan: the run should take about as long as
with the fastest model everywhere, for less. `safety` keeps part of the slack unused, for
estimates that are off and queues that form.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestra.routing.base import RouteDecision, RouteRequest
from orchestra.routing.estimate import TYPICAL_OUTPUT_TOKENS, predicted_latency, price

__all__ = ["SlackAware"]


@dataclass(frozen=True)
class SlackAware:
    """The cheapest model fast enough for the node's place in the schedule (module docstring).

    Without schedule information (a node run outside the scheduler) it picks the fastest model.

    Example:
        >>> import orchestra as oc
        >>> orch = oc.simulated.orchestra(router=oc.routing.SlackAware(min_quality=0.6))
    """

    min_quality: float = 0.0
    safety: float = 0.9
    """Fraction of the slack the policy may use, in (0, 1]."""
    output_tokens: int = TYPICAL_OUTPUT_TOKENS
    """Answer length assumed when predicting latencies."""

    def __post_init__(self) -> None:
        if not 0 < self.safety <= 1:
            raise ValueError(f"SlackAware safety must be in (0, 1], not {self.safety}")

    def choose(self, request: RouteRequest) -> RouteDecision:
        """Pick the cheapest candidate predicted to finish within the node's stretch."""
        usable = request.usable()
        good = [s for s in usable if s.quality >= self.min_quality]
        if not good:
            good = [max(usable, key=lambda s: s.quality)]
        latency = {
            s.name: predicted_latency(s, request.prompt, output_tokens=self.output_tokens)
            for s in good
        }
        fastest = min(good, key=lambda s: (latency[s.name], price(s)))
        timing = request.timing
        if timing is None:
            return RouteDecision(fastest.name, "no schedule information: fastest model")
        stretch = 1 + (timing.stretch - 1) * self.safety
        allowed = latency[fastest.name] * stretch * (1 + 1e-9)
        pick = min(
            (s for s in good if latency[s.name] <= allowed),
            key=lambda s: (price(s), latency[s.name]),
        )
        if timing.critical:
            return RouteDecision(pick.name, "on the critical path: fastest model")
        return RouteDecision(
            pick.name,
            f"slack {timing.slack:.2f}s (may take x{stretch:.2f} the fastest's "
            f"{latency[fastest.name]:.2f}s): cheapest that fits ({latency[pick.name]:.2f}s)",
        )
