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
from orchestra.routing.cluster import ClusterRouter, fit_cluster_router
from orchestra.routing.evaluate import Case, cross_validate, cross_validate_fitters
from orchestra.routing.fit import Outcome, fit_cascades, replay
from orchestra.routing.llm import LLMRouter
from orchestra.routing.policies import Cheapest, Fixed, Mixture, PerAgent
from orchestra.routing.scored import Scored
from orchestra.routing.slack import SlackAware
from orchestra.routing.threshold import ThresholdRouter, fit_threshold_router

__all__ = [
    "AsyncRoutingPolicy",
    "Cascade",
    "Case",
    "Cheapest",
    "ClusterRouter",
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
    "ThresholdRouter",
    "cross_validate",
    "cross_validate_fitters",
    "decide",
    "dump_cascades",
    "fit_cascades",
    "fit_cluster_router",
    "fit_threshold_router",
    "load_cascades",
    "replay",
]
