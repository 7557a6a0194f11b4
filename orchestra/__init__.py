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

from orchestra.agents import Agent
from orchestra.errors import (
    BudgetExceeded,
    ConfigError,
    JournalError,
    ModelError,
    NodeFailed,
    OrchestraError,
    PlanError,
)
from orchestra.models.breaker import BreakerPolicy
from orchestra.models.budget import Budget
from orchestra.models.constellation import Constellation
from orchestra.models.resilience import HedgePolicy, RetryPolicy
from orchestra.models.spec import ModelSpec
from orchestra.plan import Plan, Task
from orchestra.results import Attempt, NodeResult, RunResult, Usage

if TYPE_CHECKING:
    from orchestra import backends, checks, routing, simulated
    from orchestra.batches import MapResult, MapStream
    from orchestra.events import Event
    from orchestra.journal import Cache, Journal, RunRecord
    from orchestra.orchestra import Orchestra
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


# Loaded on first use, so that `import orchestra` (and defining plans, models and budgets)
# stays fast: the engine, routing, checks, the journal and the simulated constellation (which
# brings the testing kit and its HTTP server) build many models and pull in more modules.
_LAZY_MODULES = {"backends", "checks", "routing", "simulated"}
_LAZY_NAMES = {
    "Cache": "orchestra.journal",
    "Event": "orchestra.events",
    "Journal": "orchestra.journal",
    "MapResult": "orchestra.batches",
    "MapStream": "orchestra.batches",
    "Orchestra": "orchestra.orchestra",
    "RouteDecision": "orchestra.routing",
    "RouteRequest": "orchestra.routing",
    "RoutingPolicy": "orchestra.routing",
    "RunRecord": "orchestra.journal",
    "Tool": "orchestra.tools",
    "plan_problems": "orchestra.validation",
    "validate_plan": "orchestra.validation",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        value: Any = importlib.import_module(f"orchestra.{name}")
    elif name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    else:
        raise AttributeError(f"module 'orchestra' has no attribute {name!r}")
    globals()[name] = value  # found here from now on, without this function
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__"})
