"""orchestra: a boss model plans a task as a DAG; a constellation of models executes it.

Example:
    >>> import orchestra as oc
    >>> plan = oc.Plan(tasks=[oc.Task(id="facts", agent="researcher", prompt="Facts on {topic}")])
    >>> list(plan.graph().nodes)
    ['facts']

`import orchestra` stays fast: litellm is imported on the first model call.
"""

import importlib
from typing import TYPE_CHECKING, Any

from orchestra import backends, checks, routing
from orchestra.agents import Agent
from orchestra.batches import MapResult, MapStream
from orchestra.errors import (
    BudgetExceeded,
    ConfigError,
    JournalError,
    ModelError,
    NodeFailed,
    OrchestraError,
    PlanError,
)
from orchestra.events import Event
from orchestra.journal import Cache, Journal, RunRecord
from orchestra.models.breaker import BreakerPolicy
from orchestra.models.budget import Budget
from orchestra.models.constellation import Constellation
from orchestra.models.resilience import HedgePolicy, RetryPolicy
from orchestra.models.spec import ModelSpec
from orchestra.orchestra import Orchestra
from orchestra.plan import Plan, Task
from orchestra.results import Attempt, NodeResult, RunResult, Usage
from orchestra.routing import RouteDecision, RouteRequest, RoutingPolicy
from orchestra.tools import Tool
from orchestra.validation import plan_problems, validate_plan

if TYPE_CHECKING:
    from orchestra import simulated

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "Attempt",
    "BreakerPolicy",
    "Budget",
    "BudgetExceeded",
    "Cache",
    "ConfigError",
    "Constellation",
    "Event",
    "HedgePolicy",
    "Journal",
    "JournalError",
    "MapResult",
    "MapStream",
    "ModelError",
    "ModelSpec",
    "NodeFailed",
    "NodeResult",
    "Orchestra",
    "OrchestraError",
    "Plan",
    "PlanError",
    "RetryPolicy",
    "RouteDecision",
    "RouteRequest",
    "RoutingPolicy",
    "RunRecord",
    "RunResult",
    "Task",
    "Tool",
    "Usage",
    "backends",
    "checks",
    "plan_problems",
    "routing",
    "simulated",
    "validate_plan",
]


def __getattr__(name: str) -> Any:
    # The simulated constellation brings the testing kit (and its HTTP server) with it: load
    # it on first use, so `import orchestra` stays fast.
    if name == "simulated":
        return importlib.import_module("orchestra.simulated")
    raise AttributeError(f"module 'orchestra' has no attribute {name!r}")
