"""orchestra: a boss model plans a task as a DAG; a constellation of models executes it.

Example:
    >>> import orchestra as oc
    >>> plan = oc.Plan(tasks=[oc.Task(id="facts", agent="researcher", prompt="Facts on {topic}")])
    >>> list(plan.graph().nodes)
    ['facts']

`import orchestra` stays fast: litellm is imported on the first model call.
"""

from orchestra import checks, routing
from orchestra.agents import Agent
from orchestra.errors import (
    BudgetExceeded,
    ConfigError,
    ModelError,
    NodeFailed,
    OrchestraError,
    PlanError,
)
from orchestra.execution.limits import Budget
from orchestra.models import simulated
from orchestra.models.breaker import BreakerPolicy
from orchestra.models.constellation import Constellation
from orchestra.models.resilience import HedgePolicy, RetryPolicy
from orchestra.models.spec import ModelSpec
from orchestra.observe.events import Event
from orchestra.orchestra import Orchestra
from orchestra.plan import Plan, Task
from orchestra.results import Attempt, NodeResult, RunResult, Usage
from orchestra.routing import RouteDecision, RouteRequest, RoutingPolicy
from orchestra.tools import Tool
from orchestra.validation import plan_problems, validate_plan

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "Attempt",
    "BreakerPolicy",
    "Budget",
    "BudgetExceeded",
    "ConfigError",
    "Constellation",
    "Event",
    "HedgePolicy",
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
    "RunResult",
    "Task",
    "Tool",
    "Usage",
    "checks",
    "plan_problems",
    "routing",
    "simulated",
    "validate_plan",
]
