"""Folds a run's events into the state of the run and of each node.

`RunTrack.apply` takes the events of one run in the order they were emitted and keeps what a
viewer needs: each node's status, model and why, attempts, tokens, cost and times; the plan's
edges; every model call; the boss's planning; and every other event (retries, fallbacks,
hedges, escalations, budget stops...) attached to its node, or to the run when it names none.
The live view draws it while a run goes on; the HTML report starts from it afterwards. Event
kinds it does not know are kept as notes, so new events never break a viewer.

Nodes may be heard of before the plan is: a streaming boss's first tasks start while it is
still writing the rest, and `plan_ready` comes when it is done (with every edge).

Vocabulary: a node is *waiting* until dispatched, *running* once started, *retrying* after a
failed call until it answers, then *succeeded* or *failed*; a node the run never finished is
*not_run*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from orchestra.events import PLAN_TASK as BOSS_TASK
from orchestra.events import (
    BudgetStopped,
    CallTimedOut,
    ConcurrencyRestored,
    Event,
    ModelCalled,
    NodeFinished,
    NodeRouted,
    NodeStarted,
    PlanReady,
    PlanRejected,
    RateLimited,
    RunFinished,
    RunStarted,
)

__all__ = ["BOSS_TASK", "RETRY_KINDS", "ModelTrack", "NodeStatus", "NodeTrack", "RunTrack"]

RETRY_KINDS = frozenset({"retry_scheduled", "fallback_used", "escalated"})
"""Events that start another attempt at a node: a retry, a fallback, an escalation."""

NodeStatus = Literal["waiting", "running", "retrying", "succeeded", "failed", "not_run"]


@dataclass
class NodeTrack:
    """What is known of one node (or of the boss's planning, as task `(plan)`)."""

    task_id: str
    agent: str | None = None
    after: tuple[str, ...] = ()
    status: NodeStatus = "waiting"
    model: str | None = None
    """The spec name the node was routed to, then the one that answered."""
    reason: str | None = None
    """Why that model: a pin, or the routing policy's reason."""
    calls: int = 0
    """Model calls that reported (answered or failed)."""
    failed_calls: int = 0
    retries: int = 0
    """Retries, fallbacks and escalations announced for this node."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    started: datetime | None = None
    finished: datetime | None = None
    error: str | None = None
    notes: list[Event] = field(default_factory=list[Event])
    """Every other event about this node: retries, fallbacks, hedges, timeouts..."""

    @property
    def attempt(self) -> int:
        """The attempt the node is on (or ended on), from 1."""
        return 1 + max(self.retries, self.failed_calls)

    @property
    def tokens(self) -> int:
        """Input plus output tokens of the node's calls."""
        return self.input_tokens + self.output_tokens

    @property
    def done(self) -> bool:
        """True once the node succeeded, failed or will not run."""
        return self.status in ("succeeded", "failed", "not_run")

    def seconds(self, now: datetime | None = None) -> float | None:
        """Wall time so far (to `now` while running), or None before it started."""
        if self.started is None:
            return None
        end = self.finished or now
        return None if end is None else max(0.0, (end - self.started).total_seconds())


@dataclass
class ModelTrack:
    """How one model's admission went: rate-limit pauses and its effective concurrency."""

    name: str
    pauses: int = 0
    """429s that paused the model's queue."""
    paused_seconds: float = 0.0
    """Seconds of those pauses, added up."""
    paused_until: datetime | None = None
    concurrency: int | None = None
    """Calls it may have in flight after the last 429 (None: its full concurrency)."""
    lowest: int | None = None
    """The lowest concurrency 429s brought it to (None: never lowered)."""
    waited: float = 0.0
    """Seconds its calls spent waiting for admission, added up."""

    def paused(self, now: datetime) -> bool:
        """True while a pause is on."""
        return self.paused_until is not None and now < self.paused_until


@dataclass
class RunTrack:
    """What is known of one run, folded from its events by `apply`.

    Example:
        >>> from orchestra.events import NodeStarted, PlanReady, RunStarted
        >>> track = RunTrack()
        >>> for event in (RunStarted(run_id="r"), PlanReady(run_id="r", task_ids=("a",),
        ...               edges=()), NodeStarted(run_id="r", task_id="a", agent="writer")):
        ...     track.apply(event)
        >>> track.nodes["a"].status, track.done_count, track.total
        ('running', 0, 1)
    """

    run_id: str | None = None
    task: str | None = None
    status: str = "starting"
    """`starting`, `planning`, `running`, then the run's final status."""
    started: datetime | None = None
    finished: datetime | None = None
    nodes: dict[str, NodeTrack] = field(default_factory=dict[str, NodeTrack])
    """Nodes in plan order (nodes first heard of later are appended)."""
    edges: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    boss: NodeTrack | None = None
    """The boss's planning calls, when the run was planned by the boss."""
    plan_rejections: list[PlanRejected] = field(default_factory=list[PlanRejected])
    calls: list[ModelCalled] = field(default_factory=list[ModelCalled])
    """Every model call in order: the routing decisions and what they cost."""
    routes: list[NodeRouted] = field(default_factory=list[NodeRouted])
    """Every placement of a node on a model, with the candidates it was chosen among."""
    notes: list[Event] = field(default_factory=list[Event])
    """Events that name no node of the plan (breaker changes, budget stops, unknown kinds)."""
    stopped: str | None = None
    """The budget limit that stopped the run, if one did."""
    models: dict[str, ModelTrack] = field(default_factory=dict[str, ModelTrack])
    """Models whose calls waited for admission or were rate limited, by spec name."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    events: int = 0

    @property
    def total(self) -> int:
        """Nodes known (the plan's tasks once it is ready)."""
        return len(self.nodes)

    @property
    def done_count(self) -> int:
        """Nodes that succeeded or failed."""
        return sum(n.status in ("succeeded", "failed") for n in self.nodes.values())

    @property
    def tokens(self) -> int:
        """Input plus output tokens of every call so far."""
        return self.input_tokens + self.output_tokens

    @property
    def ended(self) -> bool:
        """True once the run finished."""
        return self.finished is not None

    def seconds(self, now: datetime | None = None) -> float:
        """Wall time of the run so far (to `now` while it runs)."""
        if self.started is None:
            return 0.0
        end = self.finished or now or self.started
        return max(0.0, (end - self.started).total_seconds())

    def node(self, task_id: str) -> NodeTrack:
        """The node's track, created on first mention."""
        if task_id == BOSS_TASK:
            if self.boss is None:
                self.boss = NodeTrack(task_id=BOSS_TASK, agent="boss", started=self.started)
            return self.boss
        track = self.nodes.get(task_id)
        if track is None:
            track = self.nodes[task_id] = NodeTrack(task_id=task_id)
        return track

    def apply(self, event: Event) -> None:
        """Fold one event of this run into the state."""
        self.events += 1
        self.run_id = self.run_id or event.run_id
        match event:
            case RunStarted():
                self.started, self.task = event.at, event.task
                self.status = "planning" if event.task is not None else "running"
                if event.task is not None:  # the boss plans first
                    boss = self.node(BOSS_TASK)
                    boss.status, boss.reason = "running", "planning the task"
            case PlanRejected():
                self.plan_rejections.append(event)
                self.node(BOSS_TASK).notes.append(event)
            case PlanReady():
                self._plan(event)
            case NodeStarted():
                node = self.node(event.task_id)
                node.agent, node.started, node.status = event.agent, event.at, "running"
                self.status = "running"  # a streaming boss's first tasks run while it plans
            case NodeRouted():
                self.routes.append(event)
                node = self.node(event.task_id)
                node.model, node.reason = event.model, event.reason
            case ModelCalled():
                self._called(event)
            case NodeFinished():
                node = self.node(event.task_id)
                node.status = "succeeded" if event.error is None else "failed"
                node.finished, node.error = event.at, event.error
                node.model = event.model or node.model
                node.cost_usd = event.cost_usd
                if node.started is None:
                    node.started = event.at - timedelta(seconds=event.seconds)
            case RunFinished():
                self.status, self.finished, self.cost_usd = event.status, event.at, event.cost_usd
                for node in self.nodes.values():
                    if not node.done:
                        node.status = "not_run"
            case BudgetStopped():
                self.stopped = event.limit
                self.notes.append(event)
            case RateLimited():
                model = self.model(event.model)
                model.pauses += 1
                model.paused_seconds += event.pause
                model.paused_until = event.at + timedelta(seconds=event.pause)
                model.concurrency = event.concurrency
                if event.concurrency is not None:
                    model.lowest = min(model.lowest or event.concurrency, event.concurrency)
                self._note(event)
            case ConcurrencyRestored():
                self.model(event.model).concurrency = None
                self._note(event)
            case _:
                self._note(event)

    def model(self, name: str) -> ModelTrack:
        """The model's admission track, created on first mention."""
        track = self.models.get(name)
        if track is None:
            track = self.models[name] = ModelTrack(name)
        return track

    def _plan(self, event: PlanReady) -> None:
        if self.boss is not None:
            self.boss.status, self.boss.finished = "succeeded", event.at
            self.boss.reason = f"planned {len(event.task_ids)} tasks"
        self.status = "running"
        deps: dict[str, list[str]] = {task: [] for task in event.task_ids}
        for parent, child in event.edges:
            deps.setdefault(child, []).append(parent)
        for task in event.task_ids:
            self.node(task).after = tuple(deps[task])
        self.edges.extend(edge for edge in event.edges if edge not in self.edges)

    def _called(self, event: ModelCalled) -> None:
        self.calls.append(event)
        if event.waited > 0:
            self.model(event.model).waited += event.waited
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.cost_usd += event.cost_usd
        node = self.node(event.task_id)
        if node is self.boss:
            node.model = event.model
            node.status = "running" if node.status == "waiting" else node.status
        else:
            node.model, node.reason = event.model, event.reason
        node.calls += 1
        node.input_tokens += event.input_tokens
        node.output_tokens += event.output_tokens
        node.cost_usd += event.cost_usd
        if event.error is not None:
            node.failed_calls += 1
            if not node.done:
                node.status = "retrying"

    def _note(self, event: Event) -> None:
        task_id: object = getattr(event, "task_id", None)
        if not isinstance(task_id, str) or (task_id not in self.nodes and task_id != BOSS_TASK):
            self.notes.append(event)
            return
        node = self.node(task_id)
        node.notes.append(event)
        if event.kind in RETRY_KINDS:
            node.retries += 1
            if not node.done:
                node.status = "retrying"
        elif isinstance(event, CallTimedOut) and not node.done:
            node.status = "retrying"
