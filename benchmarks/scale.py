"""Scale: batches (`orch.map`) and a big DAG; every ratio against a baseline of the same run.

(a) batch: `orch.map` of RUNS runs of a 5-node plan against the instant in-process provider
    (FakeModel, zero latency) -> model calls per second and CPU ms per call, against bare
    `litellm.acompletion` calls to the same fake in a loop; with the journal off and on (what
    the driver's journal costs per call).
(b) Ray (`--ray`): the same batch on a local Ray cluster with 1 and 2 actors -> calls/s, the
    ratio to local, and the CPU per call of the driver, of the actors and of the admission
    service (what Ray adds per call, and what limits throughput as machines are added). Ray
    binds every interface, so this part re-runs itself in a loopback-only network namespace
    (`unshare`, as root); it needs the `ray` extra.
(c) big DAG: a DAG of DAG nodes (each one call to the same fake) run by orchestra and by
    LangGraph (`StateGraph`, each node its own state key, joins waiting for all their
    predecessors), each in a fresh process: peak memory above the process's baseline, and µs
    per node. LangGraph comes from the `bench` extra (`pip install -e '.[bench]'`); without it
    that part says so and is skipped. With `--ray`, the same DAG as one run on 2 Ray actors
    (each node sent to an actor) against the same run local: µs per node.

Run: python benchmarks/scale.py [--runs 2000] [--dag 10000] [--concurrency 64] [--ray]
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - keeps litellm offline: imported before orchestra
import anyio

import orchestra as oc
from orchestra.models.client import load_litellm
from orchestra.testing import FakeModel, fake_constellation

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="w", prompt="facts on {topic}"),
        oc.Task(id="risks", agent="w", prompt="risks of {topic}"),
        oc.Task(id="costs", agent="w", prompt="costs of {topic}"),
        oc.Task(
            id="draft",
            agent="w",
            prompt="{facts} {risks} {costs}",
            after=["facts", "risks", "costs"],
        ),
        oc.Task(id="final", agent="w", prompt="polish {draft}", after=["draft"]),
    ]
)


def orchestra(fake: FakeModel, journal: Path | None) -> oc.Orchestra:
    agents = [oc.Agent(name="w", model="fast")]
    return oc.Orchestra(models=fake_constellation(fake), agents=agents, journal=journal)


async def measured(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Wall and CPU seconds of `work` (this process's CPU: the driver, and here everything)."""
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


async def mapped(orch: oc.Orchestra, rows: list[dict[str, str]], concurrency: int) -> None:
    """The batch, to the end."""
    async with orch.map(PLAN, inputs=rows, concurrency=concurrency, progress=False) as results:
        async for _ in results:
            pass
    assert results.failed == 0, results.errors


async def bare(fake: FakeModel, calls: int) -> None:
    litellm = load_litellm()
    for i in range(calls):
        await litellm.acompletion(
            model=fake.model("fast"),
            messages=[{"role": "user", "content": f"facts on topic {i}"}],
            max_retries=0,
            num_retries=0,
        )


async def batch(args: argparse.Namespace) -> dict[str, float]:
    fake = FakeModel(default="ok")
    rows = [{"topic": f"topic {i}"} for i in range(args.runs)]
    calls = args.runs * len(PLAN.tasks)
    await orchestra(fake, None).execute(PLAN, inputs=rows[0])  # warm litellm up
    bare_calls = min(calls, 2000)
    bare_wall, bare_cpu = await measured(lambda: bare(fake, bare_calls))

    off_wall, off_cpu = await measured(
        lambda: mapped(orchestra(fake, None), rows, args.concurrency)
    )
    with tempfile.TemporaryDirectory() as folder:
        journaled = orchestra(fake, Path(folder) / "runs.sqlite")
        on_wall, on_cpu = await measured(lambda: mapped(journaled, rows, args.concurrency))
    return {
        "runs": args.runs,
        "calls": calls,
        "bare_calls_per_s": bare_calls / bare_wall,
        "bare_cpu_ms_per_call": bare_cpu / bare_calls * 1000,
        "map_calls_per_s": calls / off_wall,
        "map_cpu_ms_per_call": off_cpu / calls * 1000,
        "map_vs_bare_throughput": (calls / off_wall) / (bare_calls / bare_wall),
        "map_vs_bare_cpu": (off_cpu / calls) / (bare_cpu / bare_calls),
        "journal_calls_per_s": calls / on_wall,
        "journal_cpu_ms_per_call": (on_cpu - off_cpu) / calls * 1000,
    }


# -- on Ray ---------------------------------------------------------------------------------------


async def on_ray(args: argparse.Namespace) -> dict[str, float]:
    """The batch on 1 and 2 actors of a local Ray cluster (run inside the namespace)."""
    fake = FakeModel(default="ok")
    rows = [{"topic": f"topic {i}"} for i in range(args.runs)]
    calls = args.runs * len(PLAN.tasks)
    local = orchestra(fake, None)
    await local.execute(PLAN, inputs=rows[0])
    local_wall, local_cpu = await measured(lambda: mapped(local, rows, args.concurrency))
    figures: dict[str, float] = {
        "ray_local_calls_per_s": calls / local_wall,
        "ray_local_cpu_ms_per_call": local_cpu / calls * 1000,
    }
    for actors in (1, 2):
        backend = oc.backends.Ray(actors=actors, actor_concurrency=args.concurrency, actor_cpus=0)
        orch = orchestra(fake, None).with_backend(backend)
        await orch.execute(PLAN, inputs=rows[0])  # starts the cluster and the actors
        pool = await backend.start()
        before = await pool.info()
        served = await pool.stats()
        wall, cpu = await measured(functools.partial(mapped, orch, rows, args.concurrency))
        after = await pool.info()
        served_after = await pool.stats()
        actor_cpu = sum(a.cpu_seconds - b.cpu_seconds for a, b in zip(after, before, strict=True))
        service_cpu = served_after["cpu_seconds"] - served["cpu_seconds"]
        figures[f"ray{actors}_calls_per_s"] = calls / wall
        figures[f"ray{actors}_vs_local"] = (calls / wall) / (calls / local_wall)
        figures[f"ray{actors}_driver_cpu_ms_per_call"] = cpu / calls * 1000
        figures[f"ray{actors}_actor_cpu_ms_per_call"] = actor_cpu / calls * 1000
        figures[f"ray{actors}_service_cpu_ms_per_call"] = service_cpu / calls * 1000
        await backend.close()
    deps = dag(args.dag)
    dag_wall, _ = await measured(lambda: run_orchestra(local, deps))
    backend = oc.backends.Ray(actors=2, actor_concurrency=args.concurrency, actor_cpus=0)
    on_two = orchestra(fake, None).with_backend(backend)
    await on_two.execute(PLAN, inputs=rows[0])
    ray_dag_wall, _ = await measured(lambda: run_orchestra(on_two, deps))
    await backend.close()
    figures["dag_local_us_per_node"] = dag_wall / len(deps) * 1e6
    figures["dag_ray2_us_per_node"] = ray_dag_wall / len(deps) * 1e6
    figures["ray_added_cpu_ms_per_call"] = (
        figures["ray1_driver_cpu_ms_per_call"]
        + figures["ray1_actor_cpu_ms_per_call"]
        + figures["ray1_service_cpu_ms_per_call"]
        - local_cpu / calls * 1000
    )
    return figures


def ray_in_namespace(args: argparse.Namespace) -> dict[str, Any]:
    """Part (b), re-run by this script inside a loopback-only network namespace."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return {"ray": "not installed: pip install -e '.[ray]'"}
    inner = (
        f"ip link set lo up && exec {sys.executable} {__file__} --ray-worker "
        f"--runs {args.runs} --concurrency {args.concurrency} --dag {args.dag}"
    )
    done = subprocess.run(
        ["unshare", "--net", "--pid", "--fork", "--mount-proc", "sh", "-c", inner],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"ray": f"failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}"}
    return json.loads(lines[-1])


# -- the big DAG, one framework per process ------------------------------------------------------


def dag(size: int, seed: int = 7) -> list[list[int]]:
    """Each node's predecessors: one or two of the 20 nodes before it (a wide, deep DAG)."""
    rng = random.Random(seed)
    return [
        [] if i == 0 else sorted(rng.sample(range(max(0, i - 20), i), min(i, rng.randint(1, 2))))
        for i in range(size)
    ]


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def dag_plan(deps: list[list[int]]) -> oc.Plan:
    """The DAG as a plan: node i is task `ti`, its prompt quoting its predecessors' outputs."""
    tasks = [
        oc.Task(
            id=f"t{i}",
            agent="w",
            prompt=f"t{i}: " + " ".join(f"{{t{d}}}" for d in ds),
            after=[f"t{d}" for d in ds],
        )
        for i, ds in enumerate(deps)
    ]
    return oc.Plan(tasks=tasks)


async def run_orchestra(orch: oc.Orchestra, deps: list[list[int]]) -> None:
    result = await orch.execute(dag_plan(deps))
    assert len(result.nodes) == len(deps)


async def run_langgraph(fake: FakeModel, deps: list[list[int]]) -> None:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    litellm = load_litellm()
    state = TypedDict("State", {f"t{i}": str for i in range(len(deps))}, total=False)  # type: ignore[misc]
    graph = StateGraph(state)
    model = fake.model("fast")

    def node(i: int, ds: list[int]) -> Callable[[dict[str, str]], Awaitable[dict[str, str]]]:
        async def call(values: dict[str, str]) -> dict[str, str]:
            prompt = f"t{i}: " + " ".join(values[f"t{d}"] for d in ds)
            reply = await litellm.acompletion(
                model=model, messages=[{"role": "user", "content": prompt}], max_retries=0
            )
            return {f"t{i}": reply.choices[0].message.content}

        return call

    needed: set[int] = set()
    for i, ds in enumerate(deps):
        graph.add_node(f"t{i}", node(i, ds))
        graph.add_edge([f"t{d}" for d in ds] if ds else START, f"t{i}")
        needed.update(ds)
    for i in range(len(deps)):
        if i not in needed:
            graph.add_edge(f"t{i}", END)
    values = await graph.compile().ainvoke({}, {"recursion_limit": len(deps) + 10})
    assert len(values) == len(deps)


async def dag_worker(framework: str, size: int) -> dict[str, float]:
    """Run the DAG with one framework in this (fresh) process; its memory and time."""
    fake = FakeModel(default="ok")
    deps = dag(size)
    await orchestra(fake, None).execute(oc.Plan(tasks=[oc.Task(id="w", agent="w", prompt="x")]))
    if framework == "langgraph":
        import langgraph.graph  # noqa: F401 - its import is not the DAG's memory
    baseline = peak_rss_kb()
    if framework == "langgraph":
        wall, _ = await measured(lambda: run_langgraph(fake, deps))
    else:
        wall, _ = await measured(lambda: run_orchestra(orchestra(fake, None), deps))
    return {"peak_mb": (peak_rss_kb() - baseline) / 1024, "us_per_node": wall / size * 1e6}


def in_process(framework: str, size: int) -> dict[str, float] | str:
    """The DAG run in a fresh process: its figures, or why it could not run."""
    done = subprocess.run(
        [sys.executable, __file__, "--dag-worker", framework, "--dag", str(size)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
    return json.loads(done.stdout.strip().splitlines()[-1])


def big_dag(size: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"dag_nodes": size}
    ours = in_process("orchestra", size)
    if isinstance(ours, str):
        raise SystemExit(f"orchestra could not run the DAG: {ours}")
    figures["orchestra_peak_mb"] = ours["peak_mb"]
    figures["orchestra_us_per_node"] = ours["us_per_node"]
    try:
        import langgraph  # noqa: F401
    except ImportError:
        figures["langgraph"] = "not installed: pip install -e '.[bench]'"
        return figures
    theirs = in_process("langgraph", size)
    if isinstance(theirs, str):
        figures["langgraph"] = theirs
        return figures
    figures["langgraph_peak_mb"] = theirs["peak_mb"]
    figures["langgraph_us_per_node"] = theirs["us_per_node"]
    figures["memory_vs_langgraph"] = ours["peak_mb"] / theirs["peak_mb"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--dag", type=int, default=10000)
    parser.add_argument("--ray", action="store_true", help="also measure part (b) on Ray")
    parser.add_argument("--dag-worker", choices=["orchestra", "langgraph"])
    parser.add_argument("--ray-worker", action="store_true")
    args = parser.parse_args()
    if args.dag_worker:
        print(json.dumps(anyio.run(dag_worker, args.dag_worker, args.dag, backend="asyncio")))
        return
    if args.ray_worker:
        print(json.dumps(anyio.run(on_ray, args, backend="asyncio")))
        return
    figures: dict[str, Any] = anyio.run(batch, args, backend="asyncio")
    print(
        f"(a) map of {args.runs} runs x 5 nodes: {figures['map_calls_per_s']:.0f} calls/s, "
        f"{figures['map_cpu_ms_per_call']:.2f} CPU ms/call; bare litellm "
        f"{figures['bare_calls_per_s']:.0f} calls/s, {figures['bare_cpu_ms_per_call']:.2f} ms/call "
        f"-> {figures['map_vs_bare_throughput']:.2f}x throughput, "
        f"{figures['map_vs_bare_cpu']:.2f}x CPU per call"
    )
    print(
        f"    with the journal: {figures['journal_calls_per_s']:.0f} calls/s, "
        f"+{figures['journal_cpu_ms_per_call']:.2f} CPU ms/call in the driver"
    )
    if args.ray:
        figures.update(ray_in_namespace(args))
        if "ray1_calls_per_s" in figures:
            for actors in (1, 2):
                print(
                    f"(b) Ray, {actors} actor(s): {figures[f'ray{actors}_calls_per_s']:.0f} "
                    f"calls/s = {figures[f'ray{actors}_vs_local']:.2f}x local; CPU ms/call: "
                    f"driver {figures[f'ray{actors}_driver_cpu_ms_per_call']:.2f}, actors "
                    f"{figures[f'ray{actors}_actor_cpu_ms_per_call']:.2f}, admission service "
                    f"{figures[f'ray{actors}_service_cpu_ms_per_call']:.2f}"
                )
            print(f"    Ray adds {figures['ray_added_cpu_ms_per_call']:.2f} CPU ms per call")
            print(
                f"(c) {args.dag}-node DAG, one run: {figures['dag_local_us_per_node']:.0f} µs/node "
                f"local, {figures['dag_ray2_us_per_node']:.0f} µs/node on 2 Ray actors"
            )
        else:
            print(f"(b) Ray: {figures['ray']}")
    figures.update(big_dag(args.dag))
    line = f"(c) {args.dag}-node DAG: orchestra {figures['orchestra_peak_mb']:.0f} MB"
    if "memory_vs_langgraph" in figures:
        line += (
            f" vs LangGraph {figures['langgraph_peak_mb']:.0f} MB = "
            f"{figures['memory_vs_langgraph']:.3f}x; µs/node orchestra "
            f"{figures['orchestra_us_per_node']:.0f}, "
            f"LangGraph {figures['langgraph_us_per_node']:.0f}"
        )
    else:
        line += f" (LangGraph: {figures['langgraph']})"
    print(line)
    print(
        "RESULT "
        + json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()})
    )


if __name__ == "__main__":
    main()
