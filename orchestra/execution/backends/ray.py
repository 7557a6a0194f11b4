"""The Ray backend: nodes run on a pool of long-lived async Ray actors.

`Ray(address=..., actors=N, actor_concurrency=M)` joins a cluster (or starts one on this
machine) when its first node comes, and keeps N actors (`ray_actor.NodeHost`): each one process
that imports litellm once and runs up to M nodes at a time on its own event loop, spread over
the cluster's nodes. Every model call of every actor asks one admission service first
(`ray_service`, a named actor on the driver's node): per-model concurrency, rate windows, AIMD
and budgets hold for the whole cluster.

The driver keeps the scheduler, the journal and the run's events: an actor returns a node's
outcome with the events it produced, and the driver emits them and records the outcome.
Placement has run affinity: the nodes of one run go to the same actor, unless it is full
(a big run spills onto the others). Faults:

- an actor that dies mid-node (or whose whole machine does) loses nothing recorded: Ray
  restarts it (on another node if its node is gone) and the driver sends the same node, with
  the same idempotency key, to a live actor; only its result is recorded, once;
- a cancelled node (a stop, a deadline, the caller leaving) cancels its remote call
  (`ray.cancel`), which releases its admission slot and reservation.

Ray is imported only when a `Ray` backend is made: without it that raises ImportError naming
the extra to install.
"""

from __future__ import annotations

import importlib
import time
import uuid
import weakref
import zlib
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, final

import anyio

from orchestra.errors import ConfigError, OrchestraError
from orchestra.execution.backends.ray_actor import HostInfo, HostSetup, NodeHost, NodeJob
from orchestra.execution.backends.ray_service import AdmissionService
from orchestra.execution.runner import NodeRunner
from orchestra.execution.work import NodeOutcome, NodeWork, RunScope
from orchestra.models.budget import Account

__all__ = ["RAY_EXTRA", "ActorPool", "Ray", "load_ray"]

RAY_EXTRA = "pip install 'orchestra-dag[ray]'"
"""How to install what the Ray backend needs."""

# How long a node waits for a live actor after losing one (Ray restarts actors in seconds).
_PATIENCE = 300.0


def load_ray() -> Any:
    """The `ray` module.

    Raises:
        ImportError: Ray is not installed; the message names the extra to install.
    """
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ImportError(
            f"the Ray backend needs Ray, which is not installed: {RAY_EXTRA}"
        ) from exc


@dataclass
class ActorPool:
    """The backend's actors and admission service on a connected cluster."""

    actors: list[Any]
    """Ray actor handles of `NodeHost`s."""
    service: Any
    """The admission service's actor handle."""
    capacity: int
    """Nodes one actor runs at a time."""
    started_ray: bool
    """Ray was started by this pool (a local cluster): closing the pool shuts it down."""
    runner: NodeRunner | None = None
    """The Orchestra's node runner the actors were started with."""
    load: list[int] = field(default_factory=list[int])
    """Nodes in flight on each actor (as this driver sent them)."""

    def __post_init__(self) -> None:
        self.load = [0] * len(self.actors)

    def pick(self, run_id: str, tried: int = 0) -> int:
        """The actor for a node of `run_id`: the run's own while it has room, else the least
        loaded; after `tried` losses, the next ones round the pool."""
        home = (zlib.crc32(run_id.encode()) + tried) % len(self.actors)
        if self.load[home] < self.capacity or tried:
            return home
        return min(range(len(self.actors)), key=lambda i: (self.load[i], i))

    async def info(self) -> list[HostInfo]:
        """Where each actor runs (waits until every actor is up)."""
        return [await actor.info.remote() for actor in self.actors]

    async def stats(self) -> dict[str, Any]:
        """The admission service's counts (calls admitted, held, in flight per model)."""
        return await self.service.stats.remote()

    async def close(self) -> None:
        """Stop the actors and the service (and Ray itself, if this pool started it)."""
        ray = load_ray()
        for actor in [*self.actors, self.service]:
            ray.kill(actor, no_restart=True)
        self.actors = []
        if self.started_ray:
            await anyio.to_thread.run_sync(ray.shutdown)


@dataclass
class _Runs:
    """What this driver charged each run's account for nodes run on actors (the rest of its
    spending, the boss's calls, is what the service must be told about)."""

    charged: dict[int, tuple[float, int]] = field(default_factory=dict[int, tuple[float, int]])

    def add(self, scope: RunScope, usd: float, tokens: int) -> None:
        usd0, tokens0 = self.charged.get(id(scope), (0.0, 0))
        self.charged[id(scope)] = (usd0 + usd, tokens0 + tokens)

    def outside(self, scope: RunScope) -> tuple[float, int]:
        usd, tokens = self.charged.get(id(scope), (0.0, 0))
        account = scope.account
        return account.spent_usd - usd, account.spent_tokens - tokens


def _fakes(runner: NodeRunner) -> tuple[Any, ...]:
    """The FakeModels the constellation's models need (none for real providers)."""
    models = [spec.model for spec in runner.constellation]
    if not any(model.startswith("orchestra-fake/") for model in models):
        return ()
    from orchestra.testing.fake import fakes_in

    return tuple(fakes_in(models))


def _path(account: Account) -> tuple[tuple[str, Any], ...]:
    return tuple((a.name, a.budget) for a in reversed(account.chain()))


@final
class Ray:
    """Run nodes on a Ray cluster: a pool of long-lived async actors (see docs/scale.md).

    Give it to an Orchestra (`Orchestra(backend=oc.backends.Ray(...))`) or to one batch
    (`orch.map(..., backend=...)`). The cluster is joined when the first node comes; `close`
    stops the actors (they also end with this process).

    Example:
        >>> import orchestra as oc
        >>> oc.backends.Ray(actors=4, actor_concurrency=50)  # doctest: +SKIP
        Ray(address=None, actors=4, actor_concurrency=50)

    Args:
        address: the cluster: None starts Ray on this machine (or uses the cluster this
            process already joined), `"auto"` joins the cluster running on this machine
            (`ray start`), `"ray://host:10001"` connects through Ray Client.
        actors: long-lived actors to spread the nodes over.
        actor_concurrency: nodes each actor runs at a time.
        actor_cpus: CPUs Ray reserves for each actor (its litellm work is CPU-bound); actors
            are spread over the nodes that have them free.
        namespace: the Ray namespace of the actors and of the admission service.

    Raises:
        ConfigError: fewer than one actor, an actor concurrency below one, negative CPUs.
        ImportError: Ray is not installed (the message names the extra).
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        actors: int = 2,
        actor_concurrency: int = 100,
        actor_cpus: float = 1.0,
        namespace: str = "orchestra",
    ) -> None:
        if actors < 1:
            raise ConfigError(f"a Ray backend needs at least 1 actor, not {actors}")
        if actor_concurrency < 1:
            raise ConfigError(f"actor_concurrency must be at least 1, not {actor_concurrency}")
        if actor_cpus < 0:
            raise ConfigError(f"actor_cpus cannot be negative ({actor_cpus})")
        load_ray()
        self.address = address
        self.actors = actors
        self.actor_concurrency = actor_concurrency
        self.actor_cpus = actor_cpus
        self.namespace = namespace
        self.pool: ActorPool | None = None
        """The actors, once the first node started them."""
        self._runner: NodeRunner | None = None
        self._starting = anyio.Lock()
        self._runs = _Runs()

    def bind(self, runner: NodeRunner) -> None:
        """Take the Orchestra's models, agents and router (its node runner), which every
        actor is started with. The Orchestra calls this when it is given the backend."""
        self._runner = runner

    async def start(self) -> ActorPool:
        """Join (or start) the cluster and start the service and the actors; returns once
        every actor is up. Done by the first node if not before.

        Raises:
            ConfigError: the backend was given to no Orchestra (it has nothing to run with).
        """
        async with self._starting:
            if self.pool is not None and self.pool.runner is not self._runner:
                # Given to another Orchestra since: its actors hold the old one's setup.
                await self.close()
            if self.pool is None:
                self.pool = await self._start()
            return self.pool

    async def _start(self) -> ActorPool:
        runner = self._runner
        if runner is None:
            raise ConfigError(
                "this Ray backend belongs to no Orchestra: pass it as "
                "Orchestra(backend=...) or orch.map(..., backend=...)"
            )
        ray = load_ray()
        started = False
        if not ray.is_initialized():
            started = self.address is None

            def connect() -> None:
                ray.init(
                    address=self.address,
                    namespace=self.namespace,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )

            await anyio.to_thread.run_sync(connect)
        strategies: Any = importlib.import_module("ray.util.scheduling_strategies")
        name = f"orchestra-admission-{uuid.uuid4().hex[:12]}"
        here = ray.get_runtime_context().get_node_id()
        service = (
            ray.remote(AdmissionService)
            .options(
                name=name,
                namespace=self.namespace,
                max_concurrency=100_000,  # calls waiting for their turn are parked coroutines
                max_restarts=-1,
                num_cpus=0,
                # With the driver: if its machine is gone, so is the run.
                scheduling_strategy=strategies.NodeAffinitySchedulingStrategy(here, soft=False),
            )
            .remote(runner.calls.admission.state.max_calls)
        )
        setup = HostSetup(
            models=runner.constellation,
            agents=runner.agents,
            router=runner.router,
            service=name,
            namespace=self.namespace,
            fakes=_fakes(runner),
        )
        host = ray.remote(NodeHost).options(
            max_concurrency=self.actor_concurrency,
            # The driver re-dispatches what a dead actor did not return; Ray only restarts it.
            max_restarts=-1,
            max_task_retries=0,
            # Actors that hold CPUs are spread over the nodes (measured: actors holding none
            # are often packed onto one node, whatever the strategy says).
            num_cpus=self.actor_cpus,
            scheduling_strategy="SPREAD",
        )
        pool = ActorPool(
            actors=[host.remote(setup) for _ in range(self.actors)],
            service=service,
            capacity=self.actor_concurrency,
            started_ray=started,
            runner=runner,
        )
        try:
            await pool.info()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await pool.close()
            raise
        return pool

    async def run(self, work: NodeWork, run: RunScope) -> NodeOutcome:
        """Run one node on an actor; its events are emitted and its outcome returned here."""
        ray = load_ray()
        pool = await self.start()
        account = run.account_for(work)
        if account.limited():
            await self._count_outside(pool, run)
        job = NodeJob(work, _path(run.account), tuple(run.notes.entries))
        lost: list[str] = []
        deadline = time.monotonic() + _PATIENCE
        while True:
            index = pool.pick(work.run_id, len(lost))
            pool.load[index] += 1
            ref = pool.actors[index].run.remote(job)
            try:
                report = await ref
            except ray.exceptions.RayActorError as exc:
                # The actor (or its machine) died: nothing of this node was recorded. Ray
                # restarts the actor; the node goes again, with the same idempotency key.
                lost.append(type(exc).__name__)
                if time.monotonic() > deadline:
                    raise OrchestraError(
                        f"node {work.task.id!r} of run {work.run_id!r} lost {len(lost)} actors "
                        f"and found no live one in {_PATIENCE:.0f} s: {', '.join(lost)}"
                    ) from exc
                await anyio.sleep(min(0.05 * len(lost), 1.0))
                continue
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, BaseException) else exc) from None
            except BaseException:
                ray.cancel(ref)  # cancelled here: the remote call stops too
                raise
            finally:
                pool.load[index] -= 1
            break
        for event in report.events:
            run.emit(event)
        run.notes.entries.extend(report.notes)
        usage = report.outcome.result.usage
        account.charge(usd=usage.cost_usd, tokens=usage.total_tokens, estimated=usage.estimated)
        self._runs.add(run, usage.cost_usd, usage.total_tokens)
        return report.outcome

    async def _count_outside(self, pool: ActorPool, run: RunScope) -> None:
        """Tell the service what the run spent outside it (the boss) before a node goes; the
        first time, its ledger account is opened, and closed when the run is done with."""
        if id(run) not in self._runs.charged:
            self._runs.charged[id(run)] = (0.0, 0)
            name = run.account.name
            weakref.finalize(run, self._forget, pool.service, name, id(run))
        usd, tokens = self._runs.outside(run)
        await pool.service.base.remote(_path(run.account), usd, tokens)

    def _forget(self, service: Any, name: str, key: int) -> None:
        self._runs.charged.pop(key, None)
        # Called when the run's scope is collected, perhaps after Ray was shut down.
        with suppress(Exception):
            service.forget.remote(name)

    async def close(self) -> None:
        """Stop the actors and the admission service (and Ray, if this backend started it)."""
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()

    def __repr__(self) -> str:
        return (
            f"Ray(address={self.address!r}, actors={self.actors}, "
            f"actor_concurrency={self.actor_concurrency})"
        )
