"""The Ray backend's actor pool on a two-node cluster: spread, affinity, restarts, shutdown."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.execution.backends.ray import ActorPool
from orchestra.execution.backends.ray_actor import HostInfo
from orchestra.testing import FakeModel

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.anyio]


def _backend(**options: Any) -> oc.backends.Ray:
    """A Ray backend given to an Orchestra on a fake model (so it has what to start with)."""
    backend = oc.backends.Ray(actor_cpus=0.5, **options)
    oc.Orchestra(models=[oc.ModelSpec(name="w", model=FakeModel().model("w"))], backend=backend)
    return backend


async def _settled(pool: ActorPool, moved: Callable[[list[HostInfo]], bool]) -> list[HostInfo]:
    """Where each actor runs, once every actor answers (a restarting one does not, a while)
    and the answer shows the change the test waits for (a kill takes effect asynchronously)."""
    import ray

    deadline = time.monotonic() + 120
    while True:
        try:
            hosts = await pool.info()
            if moved(hosts):
                return hosts
        except ray.exceptions.RayActorError:
            pass
        assert time.monotonic() < deadline, "the actors did not come back"
        await anyio.sleep(0.2)


async def test_the_pool_spreads_over_nodes_and_keeps_runs_on_one_actor(cluster: Any) -> None:
    """Two actors land on the two nodes; every node of one run goes to the same actor, and
    different runs use both."""
    pool = await _backend(actors=2, actor_concurrency=4).start()
    try:
        hosts = await pool.info()
        assert {h.node_id for h in hosts} == set(cluster.alive_nodes())
        assert len({h.pid for h in hosts}) == 2
        assert all(pool.pick("run-7") == pool.pick("run-7") for _ in range(5))
        assert {pool.pick(f"run-{i}") for i in range(20)} == {0, 1}
    finally:
        await pool.close()


async def test_a_killed_actor_is_restarted_and_a_closed_pool_is_gone(cluster: Any) -> None:
    """Ray restarts an actor that died (a new process); closing the pool kills its actors."""
    import ray

    pool = await _backend(actors=1).start()
    actors: list[Any] = list(pool.actors)
    try:
        before = await pool.info()
        ray.kill(actors[0], no_restart=False)
        after = await _settled(pool, lambda hosts: hosts[0].pid != before[0].pid)
        assert after[0].node_id in cluster.alive_nodes()
    finally:
        await pool.close()
    assert await _gone(actors[0])


async def _gone(actor: Any) -> bool:
    """Whether the actor is dead, once a kill sent to it has landed (it does not at once)."""
    import ray

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            await actor.info.remote()
        except ray.exceptions.RayActorError:
            return True
        await anyio.sleep(0.1)
    return False


async def test_losing_a_node_moves_its_actors_to_the_nodes_left(cluster: Any) -> None:
    """When the worker node dies, its actor is restarted on the head node."""
    pool = await _backend(actors=2).start()
    try:
        assert len({h.node_id for h in await pool.info()}) == 2
        cluster.lose_worker()
        hosts = await _settled(pool, lambda hosts: len({h.node_id for h in hosts}) == 1)
        assert {h.node_id for h in hosts} == set(cluster.alive_nodes())
    finally:
        await pool.close()
        cluster.start_worker()
