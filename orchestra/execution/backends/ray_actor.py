"""The process side of the Ray backend: one long-lived async actor of the pool.

Each actor is one Python process holding the Orchestra's configuration (`HostSetup`: models,
agents, router) and a node runner built from it, whose model calls go through the cluster's
admission service (`ray_service.ServiceAdmission`). It imports litellm once, when it starts,
and then runs many nodes at a time (`max_concurrency`) on its own event loop.

A node comes as a `NodeJob` (the `NodeWork`, the run's budget accounts by name, the run's notes
so far) and goes back as a `NodeReport`: its outcome, the events it produced, and the notes it
wrote. The driver emits the events and records the outcome: the actor writes nothing.
"""

from __future__ import annotations

import importlib
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestra.agents import Agent
from orchestra.events import Event
from orchestra.execution.runner import NodeRunner
from orchestra.execution.work import NodeOutcome, NodeWork, RunScope
from orchestra.memory import Notes
from orchestra.models.breaker import CircuitBreakers
from orchestra.models.budget import Account, Budget
from orchestra.models.calls import ModelCalls
from orchestra.models.client import ModelClient, load_litellm
from orchestra.models.constellation import Constellation
from orchestra.models.resilience import Resilience
from orchestra.routing.base import RoutingPolicy

__all__ = ["HostInfo", "HostSetup", "NodeHost", "NodeJob", "NodeReport"]


@dataclass(frozen=True)
class HostSetup:
    """What every actor runs with: the Orchestra's models, agents and router, and where the
    admission service is."""

    models: Constellation
    agents: Mapping[str, Agent]
    router: RoutingPolicy
    service: str
    """The admission service's actor name."""
    namespace: str
    fakes: tuple[Any, ...] = ()
    """FakeModels answering the constellation's fake models (a test's, or the simulated
    constellation's): unpickled in the actor, they answer there."""


@dataclass(frozen=True)
class NodeJob:
    """One node for an actor to run."""

    work: NodeWork
    accounts: tuple[tuple[str, Budget], ...]
    """The run's budget account and those enclosing it, outermost first, by name."""
    notes: tuple[tuple[str, str], ...] = ()
    """The run's notes so far (author, text)."""


@dataclass(frozen=True)
class NodeReport:
    """What running a node gave: its outcome, its events in order, and the notes it wrote."""

    outcome: NodeOutcome
    events: tuple[Event, ...] = ()
    notes: tuple[tuple[str, str], ...] = field(default_factory=tuple[tuple[str, str], ...])


@dataclass(frozen=True)
class HostInfo:
    """Where an actor runs (its process and its Ray node), and the CPU it used so far."""

    pid: int
    node_id: str
    cpu_seconds: float = 0.0


def _account(path: tuple[tuple[str, Budget], ...]) -> Account:
    account: Account | None = None
    for name, budget in path:
        account = Account(name, budget, parent=account)
    return account or Account("run", Budget())


class NodeHost:
    """One actor of the pool (see the module docstring).

    Args:
        setup: what the actor runs with, as the driver sent it.
    """

    def __init__(self, setup: HostSetup) -> None:
        from orchestra.execution.backends.ray_service import ServiceAdmission

        load_litellm()  # once per actor, now, rather than inside the first call
        ray: Any = importlib.import_module("ray")  # present: this runs in a Ray actor
        self._node_id = str(ray.get_runtime_context().get_node_id())
        service = ray.get_actor(setup.service, namespace=setup.namespace)
        # A restarted actor keeps its actor id; its calls from an earlier life are released.
        owner = f"{ray.get_runtime_context().get_actor_id()}/{uuid.uuid4().hex[:8]}"
        service.restarted.remote(owner.partition("/")[0], owner)
        breakers = CircuitBreakers()
        calls = ModelCalls(
            models=setup.models,
            client=ModelClient(),
            admission=ServiceAdmission(service, owner, ray),
            resilience=Resilience(breakers=breakers),
        )
        self.runner = NodeRunner(
            constellation=setup.models,
            agents=setup.agents,
            router=setup.router,
            calls=calls,
            breakers=breakers,
        )

    async def info(self) -> HostInfo:
        """This actor's process and node (the pool waits on it to know the actor is up)."""
        return HostInfo(pid=os.getpid(), node_id=self._node_id, cpu_seconds=time.process_time())

    async def run(self, job: NodeJob) -> NodeReport:
        """Run one node; its outcome, events and new notes."""
        events: list[Event] = []
        notes = Notes(list(job.notes))
        scope = RunScope(
            run_id=job.work.run_id, account=_account(job.accounts), emit=events.append, notes=notes
        )
        outcome = await self.runner.run(job.work, scope)
        return NodeReport(outcome, tuple(events), tuple(notes.entries[len(job.notes) :]))
