"""The Ray backend's actor pool on a two-node cluster: spread, affinity, shutdown."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.testing import FakeModel

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.anyio]


def _backend(**options: Any) -> oc.backends.Ray:
    """A Ray backend given to an Orchestra on a fake model (so it has what to start with)."""
    backend = oc.backends.Ray(actor_cpus=0.5, **options)
    oc.Orchestra(models=[oc.ModelSpec(name="w", model=FakeModel().model("w"))], backend=backend)
    return backend


async def test_the_pool_spreads_over_nodes_and_keeps_runs_on_one_actor(cluster: Any) -> None:
    """Two actors land on the two nodes; every node of one run goes to the same actor, and
    different runs use both; closing the pool kills its actors. (Actors restarted after a
    kill or a lost machine: tests/ray/test_backend.py.)"""
    pool = await _backend(actors=2, actor_concurrency=4).start()
    actors: list[Any] = list(pool.actors)
    try:
        hosts = await pool.info()
        assert {h.node_id for h in hosts} == set(cluster.alive_nodes())
        assert len({h.pid for h in hosts}) == 2
        assert all(pool.pick("run-7") == pool.pick("run-7") for _ in range(5))
        assert {pool.pick(f"run-{i}") for i in range(20)} == {0, 1}
    finally:
        await pool.close()
    assert all([await _gone(actor) for actor in actors])


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
