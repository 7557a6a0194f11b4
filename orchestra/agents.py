"""`Agent`: a role the plan's tasks are given to — instructions, tools, and optionally a model."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, field_validator

from orchestra._base import Frozen, Tags
from orchestra.models.resilience import HedgePolicy
from orchestra.tools import Tool, ToolFunction, tool_from_function

__all__ = ["Agent"]


class Agent(Frozen):
    """A role of the system: what it does, how, with which tools, on which model.

    An agent with no `model` is placed by the router; `tags` narrow the router's candidates to
    models having all of them.

    Example:
        >>> def lookup(term: str) -> str:
        ...     '''Look a term up in the glossary.'''
        ...     return {"TTFT": "time to first token"}.get(term, "unknown")
        >>> agent = Agent(name="researcher", description="finds facts", tools=[lookup])
        >>> agent.tools[0].name
        'lookup'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    if TYPE_CHECKING:
        # What callers may pass: tools as plain functions (stored as `Tool`s), any sequences.
        def __init__(
            self,
            *,
            name: str,
            description: str = "",
            instructions: str = "",
            model: str | None = None,
            tags: AbstractSet[str] = frozenset(),
            tools: Sequence[Tool | ToolFunction] = (),
            max_steps: int = 8,
            hedge: HedgePolicy | None = None,
            notes: bool = False,
            compaction: Literal["truncate", "summarize"] = "truncate",
        ) -> None: ...

    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    """Name tasks use to pick this agent."""
    description: str = ""
    """One line for the boss: what this agent is good for."""
    instructions: str = ""
    """The system prompt of every call this agent makes."""
    model: str | None = None
    """Pin the agent to a model spec (bypasses the router)."""
    tags: Tags = frozenset()
    """Only models having all these tags may run the agent's tasks."""
    tools: tuple[Tool, ...] = ()
    """Functions the agent may call (plain typed Python functions, sync or async)."""
    max_steps: int = Field(default=8, ge=1)
    """At most this many model calls per task in the tool loop."""
    hedge: HedgePolicy | None = None
    """Hedge this agent's slow calls (overrides the model spec's `hedge`)."""
    notes: bool = False
    """Give the agent the run's note tools (`write_note`, `read_notes`)."""
    compaction: Literal["truncate", "summarize"] = "truncate"
    """How dependency outputs too long for the model's window are shortened: cut with a
    marker, or summarised by the cheapest model (its cost is the node's)."""

    @field_validator("tools", mode="before")
    @classmethod
    def _functions_to_tools(cls, value: Any) -> tuple[Tool, ...]:
        if value is None:
            return ()
        items: list[Any] = list(value)
        tools = tuple(
            item if isinstance(item, Tool) else tool_from_function(item) for item in items
        )
        names = [t.name for t in tools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"two tools are named {dupes[0]!r}; tool names must be unique")
        return tools

    def tool(self, name: str) -> Tool | None:
        """The tool called `name`, if the agent has it."""
        return next((t for t in self.tools if t.name == name), None)
