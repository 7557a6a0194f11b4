"""The routing seam: a policy is any object with a `choose` method.

A policy is asked once per node, and again each time the node escalates: a decision may name
several models to ask at once (`also`) and a check that judges their answers (`check`); when the
check rejects them and the decision says `escalate`, the policy is asked again with the answers
so far (`RouteRequest.answers`, `RouteRequest.stage`) and names the next models. `Cascade` is
built on this; single-model policies never see a second request.

A policy that must call a model to decide (`LLMRouter`) also has an async `achoose(request,
ask)`: the runner awaits it instead of `choose`, and `ask` makes the call as the node's own (in
its usage and events). `decide` is that dispatch; `choose` must still work without a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from orchestra.agents import Agent
from orchestra.checks import Answer, AskModel, Check
from orchestra.models.spec import ModelSpec
from orchestra.plan import Task
from orchestra.priority import NodeTiming
from orchestra.routing.estimate import predicted_cost

__all__ = ["AsyncRoutingPolicy", "RouteDecision", "RouteRequest", "RoutingPolicy", "decide"]


@dataclass(frozen=True)
class RouteRequest:
    """What a policy knows about the node it places.

    `candidates` are the constellation's specs allowed for the agent (tag-filtered), in
    constellation order; never empty. Policies should prefer `usable()`, which also leaves out
    models whose circuit is open and models the budget left cannot pay for.
    """

    task: Task
    agent: Agent
    prompt: str
    candidates: tuple[ModelSpec, ...]
    unavailable: frozenset[str] = frozenset()
    """Models whose circuit breaker is open: calls to them would be skipped."""
    budget_left_usd: float | None = None
    """USD the run may still spend, this node's spending so far deducted (None: no limit)."""
    timing: NodeTiming | None = None
    """Where the node stands on the run's estimated schedule (None: unknown)."""
    stage: int = 0
    """How many rounds of models this node has asked already (0 on the first request)."""
    answers: tuple[Answer, ...] = ()
    """Every answer the node has so far, in the order the models were asked."""

    @property
    def slack(self) -> float | None:
        """Estimated seconds the node can be late without delaying the run (None: unknown)."""
        return None if self.timing is None else self.timing.slack

    @property
    def critical(self) -> bool:
        """True when the node is known to be on the run's critical path."""
        return self.timing is not None and self.timing.critical

    @property
    def asked(self) -> frozenset[str]:
        """Models this node has asked already."""
        return frozenset(a.asked or a.model for a in self.answers)

    def usable(self) -> tuple[ModelSpec, ...]:
        """The candidates worth asking, in constellation order; never empty.

        Leaves out `unavailable` models (unless all are), then models whose predicted cost
        exceeds `budget_left_usd` (unless all do: then the cheapest is kept, and the budget
        stops the run after it).
        """
        up = tuple(s for s in self.candidates if s.name not in self.unavailable)
        up = up or self.candidates
        if self.budget_left_usd is None:
            return up
        left = self.budget_left_usd
        affordable = tuple(s for s in up if predicted_cost(s, self.prompt) <= left)
        return affordable or (min(up, key=lambda s: predicted_cost(s, self.prompt)),)


@dataclass(frozen=True)
class RouteDecision:
    """The chosen spec name and why it was chosen (shown in events and results).

    Beyond one model: `also` names more models asked the same prompt at the same time;
    `check` judges the answers (None: the first answer is kept); `escalate` says the policy
    has more to try when the check rejects them.
    """

    model: str
    reason: str
    also: tuple[str, ...] = ()
    """More models asked in parallel with `model` (for a vote or an agreement check)."""
    check: Check | None = None
    """Judges every answer the node has so far; None keeps the first answer of `model`."""
    escalate: bool = False
    """On a rejection, ask the policy again (True) or keep the check's best guess (False)."""

    @property
    def models(self) -> tuple[str, ...]:
        """Every model this decision asks, `model` first."""
        return (self.model, *self.also)


class RoutingPolicy(Protocol):
    """Chooses the model for a node. Must return one of `request.candidates`' names."""

    def choose(self, request: RouteRequest) -> RouteDecision:
        """Pick a model for the node described by `request`."""
        ...


@runtime_checkable
class AsyncRoutingPolicy(RoutingPolicy, Protocol):
    """A policy that may call a model to decide: the runner awaits `achoose` instead of `choose`."""

    async def achoose(self, request: RouteRequest, ask: AskModel) -> RouteDecision:
        """Pick a model for the node; `ask(model, prompt)` is a call of the node, in its usage."""
        ...


async def decide(policy: RoutingPolicy, request: RouteRequest, ask: AskModel) -> RouteDecision:
    """Ask `policy` for a decision: awaits its `achoose` when it has one, else calls `choose`."""
    if isinstance(policy, AsyncRoutingPolicy):
        return await policy.achoose(request, ask)
    return policy.choose(request)
