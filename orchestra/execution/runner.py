"""The node runner: one task, from its prompt to its `NodeResult`.

It fills the prompt from the dependencies' outputs and the run's inputs, places the node on a
model (the task's pin, else the agent's, else the routing policy), and runs the tool loop: call
the model; if it asks for tools, run them (concurrently) and call again, at most
`agent.max_steps` calls. Failures are returned as values, never raised into the scheduler.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import anyio
from pydantic import BaseModel

from orchestra.agents import Agent
from orchestra.errors import ConfigError, ModelError, OrchestraError
from orchestra.execution.limits import ModelLimits, complete_within, estimate_tokens
from orchestra.models.client import Completion, ModelClient, ToolCall
from orchestra.models.constellation import Constellation
from orchestra.models.resilience import CallContext, Resilience
from orchestra.models.spec import ModelSpec
from orchestra.observe.events import EventSink, ModelCalled
from orchestra.plan import Task, render_prompt
from orchestra.results import Attempt, NodeResult, Usage
from orchestra.routing.base import RouteDecision, RouteRequest, RoutingPolicy

__all__ = ["NodeOutcome", "NodeRunner", "as_text"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def as_text(output: Any) -> str:
    """An output as it enters a dependent's prompt."""
    if isinstance(output, str):
        return output
    if isinstance(output, BaseModel):
        return output.model_dump_json()
    return json.dumps(output, default=str)


@dataclass(frozen=True)
class NodeOutcome:
    """A node's result, and the exception behind its failure (None when it succeeded)."""

    result: NodeResult
    error: BaseException | None = None


@dataclass
class NodeRunner:
    """Runs single nodes of one run; shares the Orchestra's client and limits."""

    run_id: str
    constellation: Constellation
    agents: Mapping[str, Agent]
    router: RoutingPolicy
    client: ModelClient
    limits: ModelLimits
    inputs: Mapping[str, str]
    emit: EventSink
    resilience: Resilience
    _clock: Callable[[], float] = time.monotonic

    def route(self, task: Task, agent: Agent, prompt: str) -> RouteDecision:
        """Choose the node's model: the task's pin, the agent's pin, else the router."""
        if task.model is not None:
            return RouteDecision(task.model, "pinned by the task")
        if agent.model is not None:
            return RouteDecision(agent.model, f"pinned by agent {agent.name!r}")
        candidates = tuple(s for s in self.constellation if agent.tags <= s.tags)
        if not candidates:
            raise ConfigError(
                f"no model has all of agent {agent.name!r}'s tags {sorted(agent.tags)}; "
                "tag a model with them or drop tags from the agent"
            )
        decision = self.router.choose(RouteRequest(task, agent, prompt, candidates))
        if decision.model not in {s.name for s in candidates}:
            raise ConfigError(
                f"routing policy {type(self.router).__name__} chose {decision.model!r}, which is "
                f"not a candidate for agent {agent.name!r}"
            )
        return decision

    async def run(self, task: Task, outputs: Mapping[str, Any]) -> NodeOutcome:
        """Run `task` given the outputs of the tasks it depends on."""
        started = _now()
        agent = self.agents[task.agent]
        usage = Usage()
        attempts: list[Attempt] = []
        model: str | None = None
        try:
            values = {**self.inputs, **{dep: as_text(outputs[dep]) for dep in task.after}}
            prompt = render_prompt(task.prompt, values)
            decision = self.route(task, agent, prompt)
            model = decision.model
            messages: list[dict[str, Any]] = []
            if agent.instructions:
                messages.append({"role": "system", "content": agent.instructions})
            messages.append({"role": "user", "content": prompt})
            for step in range(agent.max_steps):
                completion = await self._call(task, agent, decision, messages, step, attempts)
                usage = (
                    usage
                    + Usage.of(
                        completion.model,
                        input_tokens=completion.input_tokens,
                        output_tokens=completion.output_tokens,
                        cost_usd=completion.cost_usd,
                    )
                    + completion.extra
                )
                if not completion.tool_calls:
                    return NodeOutcome(
                        NodeResult(
                            task_id=task.id,
                            agent=agent.name,
                            output=completion.content,
                            model=completion.model,
                            usage=usage,
                            started=started,
                            finished=_now(),
                            attempts=tuple(attempts),
                        )
                    )
                messages.append(completion.raw_message)
                messages.extend(await self._run_tools(agent, completion.tool_calls))
            raise OrchestraError(
                f"task {task.id!r}: agent {agent.name!r} was still calling tools after "
                f"max_steps={agent.max_steps} model calls; raise max_steps or simplify the task"
            )
        except OrchestraError as exc:
            failed = NodeResult(
                task_id=task.id,
                agent=agent.name,
                model=model,
                usage=usage,
                started=started,
                finished=_now(),
                attempts=tuple(attempts),
                error=str(exc),
            )
            return NodeOutcome(failed, exc)

    async def _call(
        self,
        task: Task,
        agent: Agent,
        decision: RouteDecision,
        messages: list[dict[str, Any]],
        step: int,
        attempts: list[Attempt],
    ) -> Completion:
        metadata = {"run_id": self.run_id, "task_id": task.id, "agent": agent.name, "step": step}
        tools = [t.schema() for t in agent.tools]

        async def send(spec: ModelSpec) -> Completion:
            started = self._clock()
            try:
                completion = await complete_within(
                    self.limits, self.client, spec, messages, tools=tools, metadata=metadata
                )
            except ModelError as exc:
                self.emit(
                    ModelCalled(
                        run_id=self.run_id,
                        task_id=task.id,
                        model=spec.name,
                        reason=decision.reason,
                        seconds=self._clock() - started,
                        error=str(exc),
                    )
                )
                raise
            self.emit(
                ModelCalled(
                    run_id=self.run_id,
                    task_id=task.id,
                    model=spec.name,
                    reason=decision.reason,
                    input_tokens=completion.input_tokens,
                    output_tokens=completion.output_tokens,
                    cost_usd=completion.cost_usd,
                    seconds=completion.seconds,
                )
            )
            return completion

        context = CallContext(self.run_id, task.id, self.emit, attempts)
        # The spec is looked up per call, so a hot swap reaches the next call of this node.
        hedge = agent.hedge or self.constellation[decision.model].hedge
        completion = await self.resilience.call(
            self.constellation,
            decision.model,
            send,
            context,
            hedge=hedge,
            estimate_tokens=sum(estimate_tokens(str(m.get("content") or "")) for m in messages),
        )
        return replace(completion, extra=completion.extra + context.extra)

    async def _run_tools(self, agent: Agent, calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
        answers = [""] * len(calls)

        async def answer(index: int, call: ToolCall) -> None:
            tool = agent.tool(call.name)
            if tool is None:
                known = ", ".join(t.name for t in agent.tools) or "none"
                answers[index] = f"error: there is no tool {call.name!r} (tools: {known})"
            else:
                answers[index] = await tool.call(call.arguments)

        async with anyio.create_task_group() as group:
            for index, call in enumerate(calls):
                group.start_soon(answer, index, call)
        return [
            {"role": "tool", "tool_call_id": call.id, "content": text}
            for call, text in zip(calls, answers, strict=True)
        ]
