"""The digest of one run: its events and/or its `RunResult`, folded into what a report shows.

`digest(events, result)` keeps, per node, the times (seconds from the run's start), model and
why, attempts, tokens, cost, slack and output; per model, the calls, tokens and cost; the
timeline's bars; every routing decision; every other decision (retries, fallbacks, hedges,
budget stops, plan rejections); and the critical path. The result gives times, attempts and
outputs; the events add the routing reasons, the boss's planning and every decision.

The critical path is the chain of dependencies with the longest total measured duration
(`orchestra.priority`); a node's slack is how long it could have taken longer
without delaying the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from orchestra.events import Event, ModelCalled, NodeRouted
from orchestra.observe.charts import NO_MODEL, Bar
from orchestra.observe.tracker import BOSS_TASK, ModelTrack, RunTrack
from orchestra.plan import as_text, placeholders, render_prompt
from orchestra.priority import critical_path_priorities, slack

if TYPE_CHECKING:
    from orchestra.results import Attempt, RunResult

__all__ = ["Decision", "NodeDigest", "Note", "RunDigest", "critical_path", "digest", "display_text"]

Decision = tuple[float | None, str, str, str, str]
"""A routing decision: seconds from the start, node, model, reason, outcome."""
Note = tuple[float | None, str, str, str]
"""Another decision: seconds from the start, event kind, node, details."""


@dataclass
class NodeDigest:
    """One node as the report shows it (times in seconds from the start of the run)."""

    task_id: str
    agent: str | None
    after: tuple[str, ...]
    status: str
    model: str | None = None
    reason: str | None = None
    started: float | None = None
    finished: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    attempts: tuple[Attempt, ...] = ()
    error: str | None = None
    prompt: str | None = None
    """The prompt as sent (its template when a placeholder's value is not known)."""
    output: str | None = None
    slack: float | None = None
    critical: bool = False

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return max(0.0, self.finished - self.started)


@dataclass
class RunDigest:
    """One run as the report shows it."""

    run_id: str
    status: str
    task: str | None
    seconds: float
    cost_usd: float
    input_tokens: int
    output_tokens: int
    nodes: list[NodeDigest]
    by_model: dict[str, tuple[int, int, int, float]]
    """calls, input tokens, output tokens, cost per model."""
    calls: int = 0
    """Every model call, the failed ones and the boss's included."""
    failed_calls: int = 0
    bars: list[Bar] = field(default_factory=list[Bar])
    models: list[str] = field(default_factory=list[str])
    decisions: list[Decision] = field(default_factory=list[Decision])
    notes: list[Note] = field(default_factory=list[Note])
    output: str | None = None
    critical: list[str] = field(default_factory=list[str])
    critical_seconds: float = 0.0
    stopped: str | None = None
    admission: dict[str, ModelTrack] = field(default_factory=dict[str, ModelTrack])
    """Per model: rate-limit pauses, the lowest concurrency they left, time spent waiting."""


def display_text(value: Any) -> str:
    """A value as text: strings as they are, models and data as indented JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=2)
    return json.dumps(value, indent=2, default=str)


def critical_path(
    deps: dict[str, set[str]], seconds: dict[str, float]
) -> tuple[list[str], dict[str, float]]:
    """The chain with the longest total duration, and every node's slack.

    Example:
        >>> critical_path({"a": set(), "b": set(), "c": {"a", "b"}}, {"a": 1, "b": 3, "c": 1})
        (['b', 'c'], {'a': 2.0, 'b': 0.0, 'c': 0.0})
    """
    if not deps:
        return [], {}
    priority = critical_path_priorities(deps, seconds)
    children: dict[str, list[str]] = {node: [] for node in deps}
    for node, parents in deps.items():
        for parent in parents:
            children[parent].append(node)

    def longest(candidates: Iterable[str]) -> str | None:
        ordered = sorted(candidates)  # ties go to the smaller task id
        best = max((priority[n] for n in ordered), default=0.0)
        return next((n for n in ordered if priority[n] == best and best > 0), None)

    path: list[str] = []
    step = longest(node for node, parents in deps.items() if not parents)
    while step is not None:
        path.append(step)
        step = longest(children[step])
    return path, slack(deps, seconds)


@dataclass(frozen=True)
class _Clock:
    """Seconds from the start of the run."""

    start: datetime

    def at(self, when: datetime) -> float:
        return (when - self.start).total_seconds()

    def maybe(self, when: datetime | None) -> float | None:
        return None if when is None else self.at(when)


def digest(
    events: Sequence[Event], result: RunResult | None, inputs: Mapping[str, str] | None = None
) -> RunDigest:
    """Fold a run's events and/or result into its digest (one of them may be empty); with the
    run's `inputs`, prompts are shown as they were sent."""
    track = RunTrack()
    for event in events:
        track.apply(event)
    if result is not None:
        clock = _Clock(result.started)
    else:
        clock = _Clock(track.started or min(e.at for e in events))
    rel = clock.maybe

    tasks = {t.id: t for t in (result.plan.tasks if result and result.plan else ())}
    order = list(dict.fromkeys([*tasks, *track.nodes, *(result.nodes if result else ())]))
    nodes: list[NodeDigest] = []
    for task_id in order:
        task, seen = tasks.get(task_id), track.nodes.get(task_id)
        done = result.nodes.get(task_id) if result is not None else None
        node = NodeDigest(
            task_id=task_id,
            agent=(done.agent if done else task.agent if task else seen.agent if seen else None),
            after=tuple(task.after) if task else seen.after if seen else (),
            status="not_run",
            prompt=task.prompt if task else None,
        )
        if seen is not None:
            node.status, node.model, node.reason, node.calls = (
                seen.status,
                seen.model,
                seen.reason,
                seen.calls,
            )
            node.started, node.finished, node.error = (
                rel(seen.started),
                rel(seen.finished),
                seen.error,
            )
            node.input_tokens, node.output_tokens = seen.input_tokens, seen.output_tokens
            node.cost_usd = seen.cost_usd
            if node.status in ("waiting", "running", "retrying") and (track.ended or result):
                node.status = "not_run"
        if done is not None:
            node.status = "succeeded" if done.ok else "failed"
            node.model = done.model or node.model
            node.started, node.finished = rel(done.started), rel(done.finished)
            node.input_tokens = done.usage.input_tokens
            node.output_tokens = done.usage.output_tokens
            node.cost_usd, node.error, node.attempts = done.cost_usd, done.error, done.attempts
            node.calls = max(node.calls, len(done.attempts))
            node.output = display_text(done.output) if done.ok else None
        nodes.append(node)
    _fill_prompts(nodes, result, inputs or {})

    if result is not None:
        by_model = {
            name: (u.calls, u.input_tokens, u.output_tokens, u.cost_usd)
            for name, u in result.usage.by_model.items()
        }
    else:
        by_model: dict[str, tuple[int, int, int, float]] = {}
        for call in track.calls:
            calls, tin, tout, cost = by_model.get(call.model, (0, 0, 0, 0.0))
            by_model[call.model] = (
                calls + 1,
                tin + call.input_tokens,
                tout + call.output_tokens,
                cost + call.cost_usd,
            )
    run = RunDigest(
        run_id=(result.run_id if result else track.run_id) or "?",
        status=result.status if result else track.status,
        task=track.task,
        seconds=result.seconds if result else track.seconds(events[-1].at if events else None),
        cost_usd=result.cost_usd if result else track.cost_usd,
        input_tokens=result.usage.input_tokens if result else track.input_tokens,
        output_tokens=result.usage.output_tokens if result else track.output_tokens,
        nodes=nodes,
        by_model=by_model,
        output=None if result is None or result.output is None else display_text(result.output),
        stopped=track.stopped,
        admission=track.models,
    )
    if events:
        run.calls = len(track.calls)
        run.failed_calls = sum(call.error is not None for call in track.calls)
    else:  # the usage counts answered calls; the attempts add the failed ones
        failed = [a for n in nodes for a in n.attempts if a.error is not None]
        run.calls = sum(calls for calls, _, _, _ in by_model.values()) + len(failed)
        run.failed_calls = len(failed)
    _mark_critical(run)
    _timeline(run, track, clock)
    _decisions(run, track, clock, events_known=bool(events))
    return run


def _fill_prompts(
    nodes: list[NodeDigest], result: RunResult | None, inputs: Mapping[str, str]
) -> None:
    """Each template filled with its dependencies' outputs and the run's inputs, as the runner
    sent it, when every value is known."""
    values = dict(inputs)
    if result is not None:
        values.update({t: as_text(n.output) for t, n in result.nodes.items() if n.ok})
    for node in nodes:
        if node.prompt is not None and all(p in values for p in placeholders(node.prompt)):
            node.prompt = render_prompt(node.prompt, values)


def _mark_critical(run: RunDigest) -> None:
    ids = {n.task_id for n in run.nodes}
    deps = {n.task_id: {d for d in n.after if d in ids} for n in run.nodes}
    seconds = {n.task_id: n.seconds or 0.0 for n in run.nodes}
    try:
        path, slacks = critical_path(deps, seconds)
    except ValueError:  # a cycle: not from a validated plan; draw without a critical path
        return
    run.critical = path
    run.critical_seconds = sum(seconds[n] for n in path)
    for node in run.nodes:
        node.critical = node.task_id in path
        node.slack = slacks.get(node.task_id) if node.seconds is not None else None


def _timeline(run: RunDigest, track: RunTrack, clock: _Clock) -> None:
    critical = set(run.critical)
    bars: list[Bar] = []

    def bar(task_id: str, model: str, start: float, end: float, error: str | None) -> None:
        tip = f"{task_id} on {model}: {start:.2f}s → {end:.2f}s ({end - start:.2f}s)"
        if error:
            tip += f"\nerror: {error}"
        bars.append(Bar(task_id, model, start, end, error is not None, task_id in critical, tip))

    for call in track.calls:
        if call.task_id == BOSS_TASK:
            end = clock.at(call.at)
            bar(BOSS_TASK, call.model, max(0.0, end - call.seconds), end, call.error)
    calls_by_task: dict[str, list[ModelCalled]] = {}
    for call in track.calls:
        calls_by_task.setdefault(call.task_id, []).append(call)
    for node in run.nodes:
        if node.attempts:
            for attempt in node.attempts:
                start, end = clock.at(attempt.started), clock.at(attempt.finished)
                bar(node.task_id, attempt.model, start, end, attempt.error)
        elif node.task_id in calls_by_task:
            for call in calls_by_task[node.task_id]:
                end = clock.at(call.at)
                bar(node.task_id, call.model, max(0.0, end - call.seconds), end, call.error)
        elif node.started is not None and node.finished is not None:
            bar(node.task_id, node.model or NO_MODEL, node.started, node.finished, node.error)
    first: dict[str, float] = {}
    for b in bars:
        first[b.model] = min(first.get(b.model, b.start), b.start)
    names = set(first) | set(run.by_model) | {n.model for n in run.nodes if n.model}
    run.models = sorted(names, key=lambda m: (first.get(m, float("inf")), m))
    run.bars = bars


def _detail(event: Event) -> str:
    fields = event.model_dump(mode="json", exclude={"run_id", "at", "kind", "task_id"})
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in fields.items())


def _decisions(run: RunDigest, track: RunTrack, clock: _Clock, *, events_known: bool) -> None:
    rel = clock.at
    decisions: list[Decision] = []
    placed: list[ModelCalled | NodeRouted] = [*track.routes, *track.calls]
    for event in placed:
        if isinstance(event, NodeRouted):
            chosen = f"routed; candidates: {', '.join(event.candidates) or 'pinned'}"
            decisions.append((rel(event.at), event.task_id, event.model, event.reason, chosen))
        else:
            outcome = (
                f"failed: {event.error}"
                if event.error
                else f"{event.input_tokens + event.output_tokens:,} tokens, "
                f"${event.cost_usd:.6f}, {event.seconds:.2f}s"
            )
            at = rel(event.at) - event.seconds
            decisions.append((at, event.task_id, event.model, event.reason, outcome))
    if not events_known:  # a result alone: each node's model, with no reason recorded
        for node in run.nodes:
            if node.model is not None:
                decisions.append((node.started, node.task_id, node.model, "—", node.status))
    run.decisions = sorted(decisions, key=lambda d: (d[0] is None, d[0] or 0.0, d[1]))

    notes: list[Note] = []
    for rejected in track.plan_rejections:
        problems = "; ".join(rejected.problems)
        notes.append((rel(rejected.at), rejected.kind, BOSS_TASK, problems))
    for node in [*track.nodes.values(), *([track.boss] if track.boss else [])]:
        for event in node.notes:
            if event.kind != "plan_rejected":
                notes.append((rel(event.at), event.kind, node.task_id, _detail(event)))
    for event in track.notes:
        task_id: object = getattr(event, "task_id", "")
        notes.append((rel(event.at), event.kind, str(task_id), _detail(event)))
    if not events_known:
        for node in run.nodes:
            for attempt in node.attempts:
                if attempt.error is not None:
                    detail = f"model={attempt.model}, error={attempt.error}"
                    notes.append((rel(attempt.started), "attempt_failed", node.task_id, detail))
    run.notes = sorted(notes, key=lambda n: (n[0] is None, n[0] or 0.0, n[1]))
