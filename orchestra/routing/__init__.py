"""Routing: policies choosing each node's model(s) — single, cascades, slack-aware — and fitting.
Model calls, the checks themselves (`orchestra.checks`) and scheduling live elsewhere."""

from orchestra.routing.base import (
    AsyncRoutingPolicy,
    RouteDecision,
    RouteRequest,
    RoutingPolicy,
    decide,
)
from orchestra.routing.cascade import Cascade, Stage, dump_cascades, load_cascades
from orchestra.routing.fit import Outcome, cross_validate, fit_cascades, replay
from orchestra.routing.llm import LLMRouter
from orchestra.routing.policies import Cheapest, Fixed, Mixture, PerAgent
from orchestra.routing.scored import Scored
from orchestra.routing.slack import SlackAware

__all__ = [
    "AsyncRoutingPolicy",
    "Cascade",
    "Cheapest",
    "Fixed",
    "LLMRouter",
    "Mixture",
    "Outcome",
    "PerAgent",
    "RouteDecision",
    "RouteRequest",
    "RoutingPolicy",
    "Scored",
    "SlackAware",
    "Stage",
    "cross_validate",
    "decide",
    "dump_cascades",
    "fit_cascades",
    "load_cascades",
    "replay",
]
