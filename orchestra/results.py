"""What a run produces: usage and cost, one result per node, and the run's result."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestra.plan import Plan

if TYPE_CHECKING:
    from orchestra.events import Event

__all__ = ["Attempt", "NodeResult", "RunResult", "Usage"]


class Usage(BaseModel):
    """Tokens and cost, in total and per model spec name.

    Cost is the provider's reported tokens times the spec's prices (USD per 1M tokens).

    Example:
        >>> u = Usage.of("fast", input_tokens=1000, output_tokens=500, cost_usd=0.0001)
        >>> (u + u).by_model["fast"].input_tokens
        2000
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    input_tokens: int = 0
    """Prompt tokens, as the provider reported them."""
    output_tokens: int = 0
    """Completion tokens, as the provider reported them."""
    cost_usd: float = 0.0
    """Tokens times the spec's prices."""
    calls: int = 0
    """Model calls made."""
    estimated: bool = False
    """True when some of these figures are orchestra's estimate: a provider reported no usage
    for some call (see docs/budgets.md)."""
    by_model: dict[str, Usage] = Field(default_factory=dict[str, "Usage"])
    """The same figures per model spec name (their own `by_model` is empty)."""

    @classmethod
    def of(
        cls,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        estimated: bool = False,
    ) -> Usage:
        """Usage of one call on `model` (`estimated`: the provider reported no usage)."""
        # Built from counts the client checked: the hot path skips re-validating them.
        counts: dict[str, Any] = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": cost_usd,
            "calls": 1,
            "estimated": estimated,
        }
        one = cls.model_construct(**counts, by_model={})
        return cls.model_construct(**counts, by_model={model: one})

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        by_model = dict(self.by_model)
        for name, usage in other.by_model.items():
            mine = by_model.get(name)
            by_model[name] = usage if mine is None else mine + usage
        return Usage.model_construct(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            calls=self.calls + other.calls,
            estimated=self.estimated or other.estimated,
            by_model=by_model,
        )


class Attempt(BaseModel):
    """One model call made for a node: which model, when, and how it ended."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    model: str
    """Spec name of the model called."""
    started: datetime
    finished: datetime
    error: str | None = None
    """None when the call answered; else the error, with any API key removed."""
    status_code: int | None = None
    cached: bool = False
    """True when the response cache answered: no request was sent and nothing was paid."""
    finish_reason: str | None = None
    """Why the model stopped, as the provider said (`stop`, `length`, `tool_calls`...); None
    for a failed call."""

    @property
    def truncated(self) -> bool:
        """True when the answer was cut at the token limit (`finish_reason` `length`)."""
        return self.finish_reason == "length"


class NodeResult(BaseModel):
    """The result of one task of the plan.

    A node that failed has `error` set and `output` None; its attempts say what was tried.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    task_id: str
    agent: str
    output: Any = None
    """The answer: a string, or the agent's structured output."""
    model: str | None = None
    """Spec name of the model that answered (None if no model answered)."""
    usage: Usage = Field(default_factory=Usage)
    started: datetime
    finished: datetime
    attempts: tuple[Attempt, ...] = ()
    error: str | None = None
    route: str | None = None
    """Why the node ran where it did: the pin or the routing policy's reason, and for a
    cascade every stage and check verdict (`; `-separated). None if it was never routed."""

    @property
    def cost_usd(self) -> float:
        """USD spent on this node, over every call it made."""
        return self.usage.cost_usd

    @property
    def ok(self) -> bool:
        """True when the node produced an output."""
        return self.error is None

    @property
    def truncated(self) -> bool:
        """True when the node's last answer was cut at the token limit: its output may be
        incomplete."""
        answered = [a for a in self.attempts if a.error is None]
        return bool(answered) and answered[-1].truncated

    @property
    def seconds(self) -> float:
        """Wall time of the node."""
        return (self.finished - self.started).total_seconds()


RunStatus = Literal["succeeded", "failed", "budget_exceeded"]


class RunResult(BaseModel):
    """The result of a run: the final output, the plan that ran, every node, and the usage."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    run_id: str
    status: RunStatus
    output: Any = None
    """The sink's output (see `Plan.output`); None if the run stopped early."""
    plan: Plan | None
    """The plan that ran (None if the run stopped while the boss was planning)."""
    nodes: dict[str, NodeResult]
    """Finished (and failed) nodes by task id, in completion order."""
    usage: Usage
    started: datetime
    finished: datetime

    @property
    def cost_usd(self) -> float:
        """Total USD spent by the run."""
        return self.usage.cost_usd

    @property
    def seconds(self) -> float:
        """Wall time of the run."""
        return (self.finished - self.started).total_seconds()

    def report(self, path: str | os.PathLike[str], *, events: Iterable[Event] = ()) -> Path:
        """Write this run's HTML report to `path`: one self-contained file; returns the path.

        Pass the run's events (collected with `on_event` or `Orchestra.stream`) to add the
        routing reasons, retries, fallbacks and the boss's planning. See
        `orchestra.observe.report`.
        """
        # The report (charts, templates) loads when asked for, not with the result types.
        from orchestra.observe.report import write_report

        return write_report(path, events=events, result=self)
