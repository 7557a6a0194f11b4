"""Routing: policies that choose a model spec for each node, with the reason.
Calling models and scheduling nodes live elsewhere."""

from orchestra.routing.base import RouteDecision, RouteRequest, RoutingPolicy
from orchestra.routing.policies import Cheapest, Fixed

__all__ = ["Cheapest", "Fixed", "RouteDecision", "RouteRequest", "RoutingPolicy"]
