"""The Ray backend: runs spread over a pool of long-lived async Ray actors.

`Ray(address=..., actors=N, actor_concurrency=M)` connects to a cluster (or starts one on this
machine) when first used and keeps N actors (`ray_actor.NodeHost`), each one process that
imports litellm once and serves up to M calls at a time on its own event loop. The actors are
spread over the cluster's nodes; Ray restarts one that dies (on another node if its node is
gone). Work is placed with run affinity: the nodes of one run go to the same actor while it
is alive. The driver keeps the scheduler state and the journal.

Ray is imported only here, when a `Ray` backend is made: without it that raises ImportError
naming the extra to install.
"""

from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass
from typing import Any, final

import anyio

from orchestra.errors import ConfigError
from orchestra.execution.backends.ray_actor import HostInfo, NodeHost

__all__ = ["RAY_EXTRA", "ActorPool", "Ray", "load_ray"]

RAY_EXTRA = "pip install 'orchestra-dag[ray]'"
"""How to install what the Ray backend needs."""


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
    """The backend's actors on a connected cluster, and whether this pool started Ray."""

    actors: list[Any]
    """Ray actor handles of `NodeHost`s."""
    started_ray: bool
    """Ray was started by this pool (a local cluster): closing the pool shuts it down."""

    def pick(self, run_id: str) -> Any:
        """The actor for a run's work: the same one for every node of the run."""
        return self.actors[zlib.crc32(run_id.encode()) % len(self.actors)]

    async def info(self) -> list[HostInfo]:
        """Where each actor runs (waits until every actor is up)."""
        return [await actor.info.remote() for actor in self.actors]

    async def close(self) -> None:
        """Stop the actors (and Ray itself, if this pool started it)."""
        ray = load_ray()
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
        if self.started_ray:
            await anyio.to_thread.run_sync(ray.shutdown)


@final
class Ray:
    """Run on a Ray cluster: a pool of long-lived async actors (see docs/scale.md).

    Example:
        >>> import orchestra as oc
        >>> oc.backends.Ray(actors=4, actor_concurrency=50)  # doctest: +SKIP
        Ray(address=None, actors=4, actor_concurrency=50)

    Args:
        address: the cluster: None starts Ray on this machine (or uses the one this process
            already joined), `"auto"` joins the cluster running on this machine (`ray start`),
            `"ray://host:10001"` connects through Ray Client.
        actors: long-lived actors to spread the work over.
        actor_concurrency: calls each actor serves at a time.
        actor_cpus: CPUs Ray reserves for each actor (its litellm work is CPU-bound); actors
            are spread over the nodes that have them free.
        namespace: the Ray namespace of the actors (and of the named services).

    Raises:
        ConfigError: fewer than one actor, or an actor concurrency below one.
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

    async def start(self, setup: Any) -> ActorPool:
        """Join (or start) the cluster and start the actors, each holding `setup`; returns
        once every actor is up."""
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
        actors = [host.remote(setup) for _ in range(self.actors)]
        pool = ActorPool(actors=actors, started_ray=started)
        try:
            await pool.info()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await pool.close()
            raise
        return pool

    def __repr__(self) -> str:
        return (
            f"Ray(address={self.address!r}, actors={self.actors}, "
            f"actor_concurrency={self.actor_concurrency})"
        )
