"""Routing: policies choosing each node's model(s) — single, cascades, slack-aware — and fitting.
Model calls, the checks themselves (`orchestra.checks`) and scheduling live elsewhere."""

from orchestra.routing.base import RouteDecision, RouteRequest, RoutingPolicy
from orchestra.routing.cascade import Cascade, Stage, dump_cascades, load_cascades
from orchestra.routing.fit import Outcome, cross_validate, fit_cascades, replay
from orchestra.routing.policies import Cheapest, Fixed, PerAgent
from orchestra.routing.slack import SlackAware

__all__ = [
    "Cascade",
    "Cheapest",
    "Fixed",
    "Outcome",
    "PerAgent",
    "RouteDecision",
    "RouteRequest",
    "RoutingPolicy",
    "SlackAware",
    "Stage",
    "cross_validate",
    "dump_cascades",
    "fit_cascades",
    "load_cascades",
    "replay",
]
