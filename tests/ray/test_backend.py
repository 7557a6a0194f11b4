"""The Ray backend on a two-node cluster: batches on actors, limits and budgets held across
the cluster, and the faults (an actor or a machine lost, the driver cancelled or killed)."""

from __future__ import annotations

import runpy
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.events import Event, ModelCalled
from orchestra.execution.backends.ray import ActorPool
from orchestra.execution.backends.ray_actor import HostInfo
from orchestra.testing import FakeModel, OpenAICompatibleServer, RecordedRequest, Reply

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="w", prompt="facts on {topic}"),
        oc.Task(id="memo", agent="w", prompt="memo from {facts}", after=["facts"]),
    ]
)
ROWS = [{"topic": f"t{i}"} for i in range(8)]


def _spec(server: OpenAICompatibleServer, name: str = "w", **limits: Any) -> oc.ModelSpec:
    return oc.ModelSpec(name=name, model="openai/w", api_base=server.url, api_key="k", **limits)


@pytest.fixture(scope="module")
def ray_backend(cluster: Any) -> Iterator[oc.backends.Ray]:
    """A two-actor pool shared by the tests of this module (each Orchestra binds it anew)."""
    backend = oc.backends.Ray(actors=2, actor_concurrency=8, actor_cpus=0.5)
    yield backend
    anyio.run(backend.close, backend="asyncio")


class Gate:
    """A server handler counting requests in flight; each waits until `width` are in flight
    (or a second has passed), so more than `width` at once would be seen."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.running = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.full = threading.Event()

    def __call__(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            if self.running >= self.width:
                self.full.set()
        self.full.wait(1.0)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        return Reply("ok", output_tokens=300, input_tokens=10)


def test_batches_on_actors_are_journaled_and_hold_limits_and_budgets_across_the_cluster(
    ray_backend: oc.backends.Ray, openai_server: OpenAICompatibleServer, tmp_path: Path
) -> None:
    """One Orchestra (its actors started once) on three models: a batch's runs succeed with
    the scripted answers, each node recorded once by the driver, the actors' events reach
    it; max_concurrency=2 holds over both actors; a run's $0.10 budget over eight parallel
    $0.03 calls on both actors lets exactly three through."""
    fake = FakeModel(responses={"facts": "the facts", "memo": "the memo"})
    gate = Gate(width=2)
    openai_server.handler = gate
    events: list[Event] = []
    orch = oc.Orchestra(
        models=[
            oc.ModelSpec(name="w", model=fake.model("w")),
            _spec(openai_server, "c", max_concurrency=2),
            _spec(openai_server, "b", input_cost=0.0, output_cost=100.0),
        ],
        agents=[oc.Agent(name=name, model=name) for name in ("w", "c", "b")],
        journal=tmp_path / "runs.sqlite",
        on_event=events.append,
    )

    results = orch.map_sync(PLAN, inputs=ROWS, batch_id="ray", backend=ray_backend)
    assert (results.succeeded, results.failed) == (8, 0), results.errors
    assert {r.output for r in results} == {"the memo"}
    assert sum(isinstance(e, ModelCalled) for e in events) == 16
    assert fake.calls == []  # the calls were made in the actors' processes
    assert orch.journal is not None
    recorded = _recorded(orch.journal)
    assert len(recorded) == 16 and set(recorded.values()) == {1}

    one = oc.Plan(tasks=[oc.Task(id="only", agent="c", prompt="go {topic}")])
    limited = orch.map_sync(one, inputs=ROWS, backend=ray_backend)
    assert limited.succeeded == 8
    assert gate.peak == 2

    before = len(openai_server.requests)
    wide = oc.Plan(tasks=[oc.Task(id=f"n{i}", agent="b", prompt=f"part {i}") for i in range(8)])
    on_ray = orch.with_backend(ray_backend)
    with pytest.raises(oc.BudgetExceeded) as stopped:
        on_ray.execute_sync(wide, budget=oc.Budget(max_usd=0.10))
    assert len(openai_server.requests) - before == 3
    assert stopped.value.result.cost_usd == pytest.approx(0.09)


# -- faults --------------------------------------------------------------------------------------


HELD = {2, 3, 4, 5}
"""Runs whose `memo` call the server holds: by run affinity, two on each actor."""


class Held:
    """A server handler that holds the `memo` calls of the runs in HELD until released, and
    logs every request's idempotency key in order."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, request: RecordedRequest) -> Reply:
        key = request.headers["idempotency-key"]
        with self.lock:
            self.keys.append(key)
        run, node, _ = key.rsplit(":", 2)
        if node == "memo" and int(run.rpartition(":")[2]) in HELD:
            self.release.wait(120)
        return Reply(f"{node} done")

    def held(self) -> int:
        with self.lock:
            return sum(
                1
                for k in self.keys
                if k.rsplit(":", 2)[1] == "memo" and int(k.split(":")[1]) in HELD
            )


def _recorded(journal: oc.Journal) -> Counter[tuple[str, str]]:
    return Counter(
        (run.run_id, node.task_id)
        for run in journal.runs()
        for node in journal.nodes(run.run_id)
        if node.status == "succeeded"
    )


async def _until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 180
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.05)


async def _hosts_once(
    pool: ActorPool, settled: Callable[[list[HostInfo]], bool], what: str
) -> list[HostInfo]:
    """Where each actor runs, once every actor answers and `settled` holds (a kill or a lost
    machine lands asynchronously; a restarting actor does not answer)."""
    import ray

    deadline = time.monotonic() + 180
    while True:
        try:
            hosts = await pool.info()
            if settled(hosts):
                return hosts
        except ray.exceptions.RayActorError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.2)


async def _batch_through_a_loss(
    orch: oc.Orchestra, backend: oc.backends.Ray, held: Held, lose: Any
) -> tuple[oc.MapStream, Counter[tuple[str, str]], int]:
    """Run the batch; once four runs are done and four hold a call, `lose` something, then
    let the held calls answer. Returns the stream, what was recorded at the loss, and how
    many requests had been made by then."""
    assert orch.journal is not None
    async with orch.map(
        PLAN, inputs=ROWS, concurrency=8, batch_id="lossy", backend=backend
    ) as results:
        await _until(lambda: held.held() >= 4 and results.succeeded >= 4, "four held calls")
        at_loss = _recorded(orch.journal)
        requests = len(held.keys)
        await lose()
        held.release.set()
        async for _ in results:
            pass
    return results, at_loss, requests


def _check_nothing_recorded_twice(
    orch: oc.Orchestra,
    held: Held,
    at_loss: Counter[tuple[str, str]],
    requests: int,
    lost: int = 0,
) -> None:
    """Every node recorded once; nothing recorded before the loss asked again; at least
    `lost` calls (those lost with their actor) sent again with the same key."""
    assert orch.journal is not None
    recorded = _recorded(orch.journal)
    assert len(recorded) == 16 and set(recorded.values()) == {1}
    after = held.keys[requests:]
    # No node recorded before the loss was asked again; the lost calls went again, same key.
    assert not {tuple(k.rsplit(":", 2)[:2]) for k in after} & set(at_loss)
    repeated = [k for k, n in Counter(held.keys).items() if n > 1]
    assert len(repeated) >= lost and all(k.rsplit(":", 2)[1] == "memo" for k in repeated)


@pytest.mark.anyio
async def test_actors_killed_mid_call_lose_nothing_recorded(
    ray_backend: oc.backends.Ray, openai_server: OpenAICompatibleServer, tmp_path: Path
) -> None:
    """Both actors killed while four calls are in flight: Ray restarts them, the driver sends
    the four nodes again (same idempotency keys), the batch completes, every node is recorded
    once, and no node recorded before the kill is asked again."""
    held = Held()
    openai_server.handler = held
    orch = oc.Orchestra(
        models=[_spec(openai_server)],
        agents=[oc.Agent(name="w", model="w")],
        journal=tmp_path / "runs.sqlite",
    )

    async def kill_actors() -> None:
        """Kill both actors and wait for their new processes (a kill lands asynchronously:
        an actor still alive could answer its held call)."""
        import ray

        pool = ray_backend.pool
        assert pool is not None
        before = {h.pid for h in await pool.info()}
        for actor in pool.actors:
            ray.kill(actor, no_restart=False)
        await _hosts_once(pool, lambda hosts: not {h.pid for h in hosts} & before, "restarts")

    results, at_loss, requests = await _batch_through_a_loss(orch, ray_backend, held, kill_actors)
    assert (results.succeeded, results.failed) == (8, 0), results.errors
    _check_nothing_recorded_twice(orch, held, at_loss, requests, lost=4)


@pytest.mark.anyio
async def test_losing_a_machine_mid_batch_loses_nothing_recorded(
    cluster: Any,
    ray_backend: oc.backends.Ray,
    openai_server: OpenAICompatibleServer,
    tmp_path: Path,
) -> None:
    """The worker node's raylet and processes killed mid-batch, two calls in flight on it:
    its actor comes back on the head node (both actors run there after), its nodes go again
    (same keys), the batch completes, nothing is recorded twice."""
    held = Held()
    openai_server.handler = held
    orch = oc.Orchestra(
        models=[_spec(openai_server)],
        agents=[oc.Agent(name="w", model="w")],
        journal=tmp_path / "runs.sqlite",
    )

    async def lose_the_worker() -> None:
        cluster.lose_worker()

    try:
        results, at_loss, requests = await _batch_through_a_loss(
            orch, ray_backend, held, lose_the_worker
        )
        assert ray_backend.pool is not None
        head = {cluster.head_node}
        await _hosts_once(
            ray_backend.pool,
            lambda hosts: {h.node_id for h in hosts} == head,
            "both actors on the head node",
        )
    finally:
        cluster.start_worker()
    assert (results.succeeded, results.failed) == (8, 0), results.errors
    _check_nothing_recorded_twice(orch, held, at_loss, requests, lost=2)


@pytest.mark.anyio
async def test_cancelling_the_driver_cancels_the_remote_calls(ray_backend: oc.backends.Ray) -> None:
    """Leaving the batch while every call would take ten minutes: the remote calls are
    cancelled (ray.cancel) and their admission slots freed at once, not in ten minutes."""
    fake = FakeModel(default="slow", latency=600.0)
    orch = oc.Orchestra(
        models=[oc.ModelSpec(name="w", model=fake.model("w"))],
        agents=[oc.Agent(name="w", model="w")],
        journal=None,
    )
    async with orch.map(PLAN, inputs=ROWS, backend=ray_backend) as results:
        pool = await ray_backend.start()
        await _until_async(lambda: _in_flight(pool), 8, "eight calls in flight")
    assert results.succeeded == 0
    await _until_async(lambda: _in_flight(pool), 0, "the calls to be released")
    assert (await pool.stats())["held"] == 0


async def _in_flight(pool: Any) -> int:
    return sum((await pool.stats())["in_flight"].values())


async def _until_async(measure: Any, target: int, what: str) -> None:
    deadline = time.monotonic() + 180
    while await measure() != target:
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.1)


DRIVER = Path(__file__).with_name("ray_driver.py")


def _recorded_so_far(journal: Path) -> Counter[tuple[str, str]]:
    try:
        return _recorded(oc.Journal(journal))
    except oc.JournalError:  # the driver is creating the file
        return Counter()


def test_a_driver_killed_mid_batch_is_finished_by_resume_map(
    cluster: Any,
    ray_backend: oc.backends.Ray,
    openai_server: OpenAICompatibleServer,
    tmp_path: Path,
) -> None:
    """SIGKILL to the driver process of a batch on Ray (its actors die with it): resume_map
    from another driver finishes the batch; no recorded node is asked again, every node is
    recorded once."""
    held = Held()
    openai_server.handler = held
    journal = tmp_path / "runs.sqlite"
    driver = subprocess.Popen(
        [sys.executable, str(DRIVER), cluster.address, openai_server.url, str(journal)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    try:
        while held.held() < 4 or len(_recorded_so_far(journal)) < 12:
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "the driver did not reach the held calls"
            time.sleep(0.05)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.communicate()
    at_kill = _recorded(oc.Journal(journal))
    requests = len(held.keys)
    held.release.set()
    worker = runpy.run_path(str(DRIVER))
    orch: oc.Orchestra = worker["orchestra"](openai_server.url, str(journal), "resumed")
    done = {run for run, node in at_kill if node == "memo"}
    result = orch.resume_map_sync("driven", backend=ray_backend, progress=False)
    assert (result.finished_before, result.failed) == (len(done), 0), result.errors
    _check_nothing_recorded_twice(orch, held, at_kill, requests)
