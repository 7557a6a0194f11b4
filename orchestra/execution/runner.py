"""The node runner: one task, from its prompt to its `NodeResult`.

It fills the prompt from the dependencies' outputs and the run's inputs, places the node on a
model (the task's pin, else the agent's, else the routing policy), and runs the tool loop: call
the model; if it asks for tools, run them (concurrently) and call again, at most
`agent.max_steps` calls. Failures are returned as values, never raised into the scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from orchestra._clock import utc_now
from orchestra.agents import Agent
from orchestra.checks import Answer, AskModel, CheckContext, latest_answer, shorten
from orchestra.errors import ConfigError, ModelError, OrchestraError
from orchestra.events import CheckFailed, Escalated, EventSink, NodeRouted
from orchestra.execution.work import NodeOutcome, NodeWork, RunScope
from orchestra.memory import NOTES, Notes, Summarise, compact, context_budget
from orchestra.models.breaker import CircuitBreakers
from orchestra.models.budget import BudgetRefused
from orchestra.models.calls import CallKeys, CallRequest, CallSite, ModelCalls
from orchestra.models.client import Completion, ToolCall
from orchestra.models.constellation import Constellation
from orchestra.models.spec import ModelSpec
from orchestra.models.structured import OutputCheck, schema_instruction
from orchestra.models.tokens import estimate_tokens
from orchestra.plan import Task, as_text, render_prompt
from orchestra.results import Attempt, NodeResult, Usage
from orchestra.routing.base import RouteDecision, RouteRequest, RoutingPolicy, decide
from orchestra.routing.estimate import price
from orchestra.tools import Tool

__all__ = ["NodeRunner", "as_text"]


# At most this many rounds of models per node, whatever the routing policy asks.
_MAX_STAGES = 16


@dataclass
class _Tally:
    """What a node (or one of its models) has spent so far."""

    usage: Usage = field(default_factory=Usage)

    def add(self, completion: Completion) -> None:
        self.usage = (
            self.usage
            + Usage.of(
                completion.model,
                input_tokens=completion.input_tokens,
                output_tokens=completion.output_tokens,
                cost_usd=completion.cost_usd,
                estimated=completion.estimated,
            )
            + completion.extra
        )


def _messages(agent: Agent, prompt: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if agent.instructions:
        messages.append({"role": "system", "content": agent.instructions})
    if agent.output_type is not None:
        prompt = f"{prompt}\n\n{schema_instruction(agent.output_type.model_json_schema())}"
    messages.append({"role": "user", "content": prompt})
    return messages


@dataclass(frozen=True)
class NodeRunner:
    """Runs single nodes with one Orchestra's models, agents, router and model-call door."""

    constellation: Constellation
    agents: Mapping[str, Agent]
    router: RoutingPolicy
    calls: ModelCalls
    breakers: CircuitBreakers

    async def run(self, work: NodeWork, scope: RunScope) -> NodeOutcome:
        """Run `work`'s task, given the outputs of the tasks it depends on, for `scope`'s run."""
        agent = self.agents[work.task.agent]
        site = CallSite(
            run_id=work.run_id,
            task_id=work.task.id,
            agent=agent.name,
            priority=work.priority,
            account=scope.account_for(work),
            keys=None if work.key is None else CallKeys(work.key),
            cache=scope.cache if scope.caches(agent.name) else None,
            emit=scope.emit,
        )
        node = _NodeRun(
            constellation=self.constellation,
            agents=self.agents,
            router=self.router,
            calls=self.calls,
            breakers=self.breakers,
            work=work,
            site=site,
            notes=scope.notes,
        )
        try:
            return await node.run(work.task, work.outputs)
        except BaseException:
            scope.cut = scope.cut + site.spent
            raise


@dataclass
class _NodeRun:
    """One node being run: the runner's parts, the work, and where its calls come from."""

    constellation: Constellation
    agents: Mapping[str, Agent]
    router: RoutingPolicy
    calls: ModelCalls
    breakers: CircuitBreakers
    work: NodeWork
    site: CallSite
    notes: Notes = field(default_factory=Notes)

    @property
    def run_id(self) -> str:
        """The run the node belongs to."""
        return self.work.run_id

    @property
    def emit(self) -> EventSink:
        """Where the node's events go."""
        return self.site.emit

    async def route(
        self,
        task: Task,
        agent: Agent,
        prompt: str,
        ask: AskModel,
        *,
        answers: Sequence[Answer] = (),
        stage: int = 0,
        spent: float = 0.0,
    ) -> RouteDecision:
        """Choose the node's model(s): the task's pin, the agent's pin, else the router.

        For an escalation, `answers` holds the node's answers so far, `stage` the round about
        to start and `spent` what the node has cost; the router is asked again with them.
        A router that calls a model to decide (`achoose`) does so through `ask`, as the node.
        """
        if task.model is not None:
            return RouteDecision(task.model, "pinned by the task")
        if agent.model is not None:
            return RouteDecision(agent.model, f"pinned by agent {agent.name!r}")
        candidates = self._candidates(agent)
        if not candidates:
            raise ConfigError(
                f"no model has all of agent {agent.name!r}'s tags {sorted(agent.tags)}; "
                "tag a model with them or drop tags from the agent"
            )
        request = self._request(task, agent, prompt, candidates, answers, stage, spent)
        decision = await decide(self.router, request, ask)
        names = {s.name for s in candidates}
        for chosen in decision.models:
            if chosen not in names:
                raise ConfigError(
                    f"routing policy {type(self.router).__name__} chose {chosen!r}, which is "
                    f"not a candidate for agent {agent.name!r}"
                )
        return decision

    def _candidates(self, agent: Agent) -> tuple[ModelSpec, ...]:
        """The models the router may place the agent's tasks on (those with its tags)."""
        return tuple(s for s in self.constellation if agent.tags <= s.tags)

    def _request(
        self,
        task: Task,
        agent: Agent,
        prompt: str,
        candidates: tuple[ModelSpec, ...],
        answers: Sequence[Answer],
        stage: int,
        spent: float,
    ) -> RouteRequest:
        left = self.work.budget_left_usd
        return RouteRequest(
            task,
            agent,
            prompt,
            candidates,
            unavailable=self.breakers.unavailable(),
            budget_left_usd=None if left is None else left - spent,
            timing=self.work.timing,
            stage=stage,
            answers=tuple(answers),
        )

    async def run(self, task: Task, outputs: Mapping[str, Any]) -> NodeOutcome:
        """Run `task` given the outputs of the tasks it depends on."""
        started = utc_now()
        agent = self.agents[task.agent]
        tally = _Tally()
        attempts = self.site.attempts
        model: str | None = None
        route: str | None = None
        try:
            deps = {dep: as_text(outputs[dep]) for dep in task.after}
            values = {NOTES: self.notes.read(), **self.work.inputs, **deps}
            prompt = render_prompt(task.prompt, values)
            router = self._asker(task, agent, attempts, tally, reason="routing: choosing a model")
            decision = await self.route(task, agent, prompt, router)
            model, route = decision.model, decision.reason
            pinned = task.model is not None or agent.model is not None
            self.emit(
                NodeRouted(
                    run_id=self.run_id,
                    task_id=task.id,
                    model=model,
                    reason=route,
                    candidates=() if pinned else tuple(s.name for s in self._candidates(agent)),
                )
            )
            prompt = await self._fit(task, agent, decision, values, deps, attempts, tally) or prompt
            if decision.also or decision.check is not None or decision.escalate:
                answer, route = await self._staged(task, agent, prompt, decision, attempts, tally)
                output, model = answer.text, answer.model
            else:
                messages = _messages(agent, prompt)
                completion = await self._converse(task, agent, decision, messages, attempts, tally)
                output, model = completion.content, completion.model
            if agent.output_type is not None:
                output = OutputCheck(agent.output_type, task.id).parse(output, model=model)
            return NodeOutcome(
                NodeResult(
                    task_id=task.id,
                    agent=agent.name,
                    output=output,
                    model=model,
                    usage=self.site.spent,
                    started=started,
                    finished=utc_now(),
                    attempts=tuple(attempts),
                    route=route,
                )
            )
        except OrchestraError as exc:
            failed = NodeResult(
                task_id=task.id,
                agent=agent.name,
                model=model,
                usage=self.site.spent,
                started=started,
                finished=utc_now(),
                attempts=tuple(attempts),
                error=str(exc),
                route=route,
            )
            return NodeOutcome(failed, exc)

    async def _converse(
        self,
        task: Task,
        agent: Agent,
        decision: RouteDecision,
        messages: list[dict[str, Any]],
        attempts: list[Attempt],
        tally: _Tally,
    ) -> Completion:
        """The tool loop on one model: call it, run the tools it asks for, call it again
        (and, with an output type, ask again while the answer does not validate)."""
        shape = None if agent.output_type is None else OutputCheck(agent.output_type, task.id)
        for step in range(agent.max_steps):
            completion = await self._call(
                task,
                agent,
                decision,
                messages,
                step,
                attempts,
                shape=shape,
                tool_choice=agent.tool_choice_at(step),
            )
            tally.add(completion)
            if not completion.tool_calls:
                again = None if shape is None else shape.follow_up(completion)
                if again is None:
                    return completion
                messages.extend(again)
                continue
            messages.append(completion.raw_message)
            messages.extend(await self._run_tools(self._tools(task, agent), completion.tool_calls))
        raise OrchestraError(
            f"task {task.id!r}: agent {agent.name!r} was still calling tools after "
            f"max_steps={agent.max_steps} model calls; raise max_steps or simplify the task"
        )

    async def _staged(
        self,
        task: Task,
        agent: Agent,
        prompt: str,
        decision: RouteDecision,
        attempts: list[Attempt],
        tally: _Tally,
    ) -> tuple[Answer, str]:
        """Ask rounds of models until a check accepts; returns the answer kept and the route.

        Each round asks the decision's models at once; its check judges every answer so far
        (a round with no check accepts its first usable answer). On a rejection — a failed or
        flawed answer included — the router is asked again if the decision says `escalate`;
        otherwise, or when it names nothing new, the best guess is kept.
        """
        answers: list[Answer] = []
        notes = [decision.reason]
        best: Answer | None = None
        context = CheckContext(prompt, self._asker(task, agent, attempts, tally))
        router = self._asker(task, agent, attempts, tally, reason="routing: choosing a model")
        for stage in range(_MAX_STAGES):
            asked = {a.asked or a.model for a in answers}
            fresh = [m for m in decision.models if m not in asked]
            if not fresh:
                notes.append("nothing new to ask")
                break
            asked_now = await self._ask(
                task, agent, prompt, decision, fresh, stage, attempts, tally
            )
            answers.extend(asked_now)
            if decision.check is None:
                kept = next((a for a in asked_now if a.ok), None)
                if kept is not None:
                    best = kept
                    break
                reason = "; ".join(
                    f"{a.model} failed: {shorten(a.error or '', 160)}" for a in asked_now
                )
            else:
                verdict = await decision.check.judge(tuple(answers), context)
                best, reason = verdict.answer or best, verdict.reason
                if verdict.accepted:
                    notes.append(reason)
                    break
            notes.append(reason)
            self.emit(CheckFailed(run_id=self.run_id, task_id=task.id, stage=stage, reason=reason))
            if not decision.escalate:
                notes.append("kept the best guess")
                break
            decision = await self.route(
                task,
                agent,
                prompt,
                router,
                answers=answers,
                stage=stage + 1,
                spent=self.site.spent.cost_usd,
            )
            notes.append(decision.reason)
            self.emit(
                Escalated(
                    run_id=self.run_id,
                    task_id=task.id,
                    stage=stage + 1,
                    models=decision.models,
                    reason=decision.reason,
                )
            )
        best = best or latest_answer(answers)
        if best is None:
            # No usable answer: a flawed one (cut off, off-schema) beats losing the node.
            best = next((a for a in reversed(answers) if a.text), None)
        if best is not None and not best.ok:
            notes.append(f"no usable answer; kept {best.model}'s ({best.error})")
        if best is None or best.text is None:
            errors = "; ".join(f"{a.model}: {a.error}" for a in answers if a.error)
            raise ModelError(
                f"task {task.id!r}: no model answered ({errors or 'nothing was asked'})",
                model=decision.model,
            )
        return best, "; ".join(notes)

    async def _ask(
        self,
        task: Task,
        agent: Agent,
        prompt: str,
        decision: RouteDecision,
        models: Sequence[str],
        stage: int,
        attempts: list[Attempt],
        tally: _Tally,
    ) -> list[Answer]:
        """One round: every model at once, each in its own tool loop; failures become answers
        (with no text), and so do flawed replies (empty, or cut off at the output limit)."""
        answers: list[Answer | None] = [None] * len(models)
        refused: list[BudgetRefused] = []

        async def one(index: int, name: str) -> None:
            mine = _Tally()
            try:
                routed = RouteDecision(name, decision.reason)
                done = await self._converse(
                    task, agent, routed, _messages(agent, prompt), attempts, mine
                )
                text = done.content or ""
                flaw = None
                if not text.strip():
                    flaw = "answered with empty content"
                elif done.finish_reason == "length":
                    flaw = "cut off at its output token limit (finish_reason 'length')"
                answers[index] = Answer(
                    model=done.model,
                    text=text if text.strip() else None,
                    cost_usd=mine.usage.cost_usd,
                    stage=stage,
                    error=flaw,
                    asked=name if done.model != name else None,
                    output_tokens=mine.usage.output_tokens,
                )
            except BudgetRefused as exc:
                refused.append(exc)  # a spent budget stops the node, it is not a wrong answer
            except OrchestraError as exc:
                answers[index] = Answer(
                    model=name, text=None, cost_usd=mine.usage.cost_usd, stage=stage, error=str(exc)
                )
            finally:
                tally.usage = tally.usage + mine.usage

        async with anyio.create_task_group() as group:
            for index, name in enumerate(models):
                group.start_soon(one, index, name)
        if refused:
            raise refused[0]
        return [a for a in answers if a is not None]

    def _asker(
        self,
        task: Task,
        agent: Agent,
        attempts: list[Attempt],
        tally: _Tally,
        *,
        reason: str = "asked by a check",
    ) -> AskModel:
        """How a check (e.g. `Verify`) or a router asks a model: a call of this node, in its
        usage; `reason` goes in its `model_called` event."""

        async def ask(model: str, prompt: str) -> str:
            if model not in self.constellation:
                raise ConfigError(
                    f"{reason} for task {task.id!r}: asked unknown model {model!r}; "
                    f"known: {', '.join(self.constellation.names)}"
                )
            decision = RouteDecision(model, reason)
            message = [{"role": "user", "content": prompt}]
            completion = await self._call(task, agent, decision, message, 0, attempts)
            tally.add(completion)
            return completion.content or ""

        return ask

    async def _call(
        self,
        task: Task,
        agent: Agent,
        decision: RouteDecision,
        messages: list[dict[str, Any]],
        step: int,
        attempts: list[Attempt],
        *,
        shape: OutputCheck | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> Completion:
        """One model call of the node, through the door (attempts go to the node's site)."""
        tools = [t.schema() for t in self._tools(task, agent)]
        # The spec is looked up per call, so a hot swap reaches the next call of this node.
        hedge = agent.hedge or self.constellation[decision.model].hedge
        request = CallRequest(
            messages=list(messages),
            reason=decision.reason,
            tools=tools,
            response_format=None if shape is None else shape.response_format,
            hedge=hedge,
            step=step,
            tool_choice=tool_choice,
        )
        return await self.calls.call(self.site, decision.model, request)

    def _tools(self, task: Task, agent: Agent) -> tuple[Tool, ...]:
        """The agent's tools, and the run's note tools if the agent takes notes."""
        return (*agent.tools, *self.notes.tools(task.id)) if agent.notes else agent.tools

    async def _fit(
        self,
        task: Task,
        agent: Agent,
        decision: RouteDecision,
        values: Mapping[str, str],
        deps: Mapping[str, str],
        attempts: list[Attempt],
        tally: _Tally,
    ) -> str | None:
        """The prompt with its dependencies' outputs compacted to fit the chosen model's window
        (None when it fits as it is)."""
        budget = context_budget(self.constellation[decision.model].max_context)
        if budget is None:
            return None
        fixed = agent.instructions + render_prompt(
            task.prompt, {**values, **dict.fromkeys(deps, "")}
        )
        if estimate_tokens(fixed) + sum(estimate_tokens(v) for v in deps.values()) <= budget:
            return None
        summarise = (
            self._summariser(task, agent, attempts, tally)
            if agent.compaction == "summarize"
            else None
        )
        shorter = await compact(fixed, deps, budget, summarise)
        return render_prompt(task.prompt, {**values, **shorter})

    def _summariser(
        self, task: Task, agent: Agent, attempts: list[Attempt], tally: _Tally
    ) -> Summarise:
        """Summaries by the cheapest model of the constellation, paid by the node."""
        cheapest = min(self.constellation, key=lambda s: (price(s), s.name))
        decision = RouteDecision(cheapest.name, "compaction: the cheapest model summarises")

        async def summarise(text: str, tokens: int) -> str:
            ask = (
                f"Summarise the text below in at most {max(tokens * 3 // 4, 20)} words, keeping "
                f"every fact, figure and name a reader needs.\n\n{text}"
            )
            messages: list[dict[str, Any]] = [{"role": "user", "content": ask}]
            completion = await self._call(task, agent, decision, messages, 0, attempts)
            tally.add(completion)
            return completion.content or ""

        return summarise

    async def _run_tools(
        self, tools: Sequence[Tool], calls: tuple[ToolCall, ...]
    ) -> list[dict[str, Any]]:
        answers = [""] * len(calls)
        by_name = {t.name: t for t in tools}

        async def answer(index: int, call: ToolCall) -> None:
            tool = by_name.get(call.name)
            if tool is None:
                known = ", ".join(by_name) or "none"
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
