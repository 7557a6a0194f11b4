"""Scheduler overhead: what orchestra adds on top of the model calls themselves.

Baselines are measured in the same run (the machines are noisy):
- chain: N dependent nodes vs N sequential bare `litellm.acompletion` calls to the same fake
  model (zero latency) -> per-node overhead in ms and the ratio.
- wide: N independent nodes of 50 ms each vs the same N bare calls made concurrently in one
  anyio task group -> what dispatching through the scheduler costs when all can run at once
  (litellm's own CPU time per call, ~3 ms here, bounds both).
- state machine: dispatch/finish throughput of `DagState` on a 5,000-node random DAG.

Run: python benchmarks/scheduler.py [--nodes N]
"""

from __future__ import annotations

import argparse
import json
import random
import time

import _common  # noqa: F401 - keeps litellm offline: imported before orchestra
import anyio

import orchestra as oc
from orchestra.execution.state import DagState
from orchestra.models.loader import load_litellm
from orchestra.testing import FakeModel, FakeReply, fake_constellation


async def bare_calls(fake: FakeModel, count: int) -> float:
    litellm = load_litellm()
    started = time.perf_counter()
    for i in range(count):
        await litellm.acompletion(
            model=fake.model("fast"),
            messages=[{"role": "user", "content": f"step {i}"}],
            max_retries=0,
            num_retries=0,
        )
    return time.perf_counter() - started


async def bare_parallel(fake: FakeModel, count: int, latency: float) -> float:
    fake.handler = lambda request: FakeReply("x", latency=latency)
    litellm = load_litellm()

    async def one(i: int) -> None:
        await litellm.acompletion(
            model=fake.model("fast"),
            messages=[{"role": "user", "content": f"p{i}"}],
            max_retries=0,
            num_retries=0,
        )

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for i in range(count):
            group.start_soon(one, i)
    return time.perf_counter() - started


async def chain(fake: FakeModel, count: int) -> float:
    orch = oc.Orchestra(models=fake_constellation(fake), agents=[oc.Agent(name="w", model="fast")])
    tasks = [oc.Task(id="t0", agent="w", prompt="step 0")]
    tasks += [
        oc.Task(id=f"t{i}", agent="w", prompt=f"step {i} after {{t{i - 1}}}", after=[f"t{i - 1}"])
        for i in range(1, count)
    ]
    started = time.perf_counter()
    await orch.execute(oc.Plan(tasks=tasks))
    return time.perf_counter() - started


async def wide(fake: FakeModel, count: int, latency: float) -> float:
    fake.handler = lambda request: FakeReply("x", latency=latency)
    orch = oc.Orchestra(models=fake_constellation(fake), agents=[oc.Agent(name="w", model="fast")])
    plan = oc.Plan(tasks=[oc.Task(id=f"t{i}", agent="w", prompt=f"p{i}") for i in range(count)])
    started = time.perf_counter()
    await orch.execute(plan)
    return time.perf_counter() - started


def state_machine(count: int) -> float:
    rng = random.Random(7)
    state = DagState()
    for i in range(count):
        deps = {f"n{rng.randrange(i)}" for _ in range(min(i, 3))} if i else set[str]()
        state.add(f"n{i}", deps, weight=rng.random())
    started = time.perf_counter()
    while not state.finished:
        batch = list(iter(state.pop, None))
        for node in batch:
            state.finish(node)
    return time.perf_counter() - started


async def main(nodes: int) -> dict[str, float]:
    fake = FakeModel(default="ok")
    await bare_calls(fake, 5)  # warm litellm up before timing anything
    base = min([await bare_calls(fake, nodes) for _ in range(3)])
    ours = min([await chain(fake, nodes) for _ in range(3)])
    latency = 0.05
    spread = min([await wide(fake, nodes, latency) for _ in range(3)])
    spread_base = min([await bare_parallel(fake, nodes, latency) for _ in range(3)])
    sm = state_machine(5000)
    return {
        "chain_ratio": ours / base,
        "overhead_ms_per_node": (ours - base) / nodes * 1000,
        "bare_call_ms": base / nodes * 1000,
        "wide_ratio": spread / spread_base,
        "wide_makespan_s": spread,
        "state_machine_nodes_per_s": 5000 / sm,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    args = parser.parse_args()
    figures = anyio.run(main, args.nodes, backend="asyncio")
    print(
        f"chain of {args.nodes}: {figures['chain_ratio']:.2f}x bare litellm calls "
        f"({figures['overhead_ms_per_node']:.2f} ms/node over "
        f"{figures['bare_call_ms']:.2f} ms/call)"
    )
    print(
        f"{args.nodes} parallel 50 ms nodes: {figures['wide_ratio']:.2f}x the same calls made "
        f"concurrently without orchestra (makespan {figures['wide_makespan_s']:.2f} s)"
    )
    print(f"state machine: {figures['state_machine_nodes_per_s']:,.0f} nodes/s")
    print("RESULT " + json.dumps({k: round(v, 3) for k, v in figures.items()}))
